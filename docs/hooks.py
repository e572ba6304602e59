"""MkDocs hook: write the command-line and configuration references from the parser and the schema before
each build, so they cannot drift from the code (``make docs``; the pages are not kept in git)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "reference"


def cli_page() -> str:
    from mflow_sbi.cli import build_parser

    parser = build_parser()
    parser.prog = "mflow-sbi"
    lines = ["# Command line", "", "Generated from the argument parser (`mflow_sbi.cli`).", "",
             "```", parser.format_help().rstrip(), "```", ""]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        lines += [f"## `mflow-sbi {name}`", "", "```", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def toml_value(value) -> str:
    """``value`` as it is written in a configuration file (unset values are left out of files: "unset")."""
    import json

    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def config_page() -> str:
    import sys

    from mflow_sbi.config import RunConfig

    lines = ["# Configuration", "",
             "Generated from the schema (`mflow_sbi.config`). Every key is optional: a missing key takes the",
             "default below, which is also the embedded default job (`mflow-sbi run` without a file).", ""]
    for table in dataclasses.fields(RunConfig):
        cls = table.default_factory
        lines += [f"## `[{table.name}]`", "", "| key | default | allowed |", "|---|---|---|"]
        for item in dataclasses.fields(cls):
            rule = item.metadata.get("rule")
            allowed = getattr(rule, "allowed", "") if rule is not None else ""
            default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
            lines.append(f"| `{item.name}` | `{toml_value(default)}` | {str(allowed).replace('|', '/')} |")
        lines += ["", f"From `{cls.__module__}`:", "", "```", (sys.modules[cls.__module__].__doc__ or "").strip(), "```", ""]
    return "\n".join(lines)


def on_pre_build(config, **kwargs) -> None:  # noqa: ARG001 - the MkDocs hook signature
    REFERENCE.mkdir(exist_ok=True)
    (REFERENCE / "cli.md").write_text(cli_page())
    (REFERENCE / "config.md").write_text(config_page())
