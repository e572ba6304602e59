"""MkDocs hook: before each build, write the command-line and configuration references from the parser and the
schema, so they cannot drift from the code, and render the notebooks in ``notebooks/`` (stored with their
outputs) as pages: markdown cells as they are, code cells as Python blocks, text outputs as text blocks and
PNG outputs as image files beside the page (``make docs``; the generated pages are not kept in git)."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REFERENCE = DOCS / "reference"
NOTEBOOKS = DOCS.parent / "notebooks"
NOTEBOOK_PAGES = DOCS / "notebooks"


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


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _fence(text: str, language: str) -> str:
    """``text`` as a fenced block, the fence longer than any backtick run inside it."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def output_blocks(output: dict, image_name: str, images: dict[str, bytes]) -> list[str]:
    """Markdown for one cell output; a PNG goes into ``images`` under ``image_name``."""
    kind = output.get("output_type")
    if kind == "stream":
        return [_fence(_text(output.get("text", "")), "text")]
    if kind == "error":
        return [_fence(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}", "text")]
    data = output.get("data", {})
    if "image/png" in data:
        images[image_name] = base64.b64decode(_text(data["image/png"]))
        return [f"![output]({image_name})"]
    if "text/plain" in data:
        return [_fence(_text(data["text/plain"]), "text")]
    return []


def notebook_page(notebook: dict, stem: str) -> tuple[str, dict[str, bytes]]:
    """(markdown page, {image file name: PNG bytes}) of a notebook given as its JSON content."""
    parts, images = [], {}
    for k, cell in enumerate(notebook.get("cells", [])):
        source = _text(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            parts.append(source)
        elif cell.get("cell_type") == "code":
            parts.append(_fence(source, "python"))
            for j, output in enumerate(cell.get("outputs", [])):
                parts += output_blocks(output, f"{stem}_{k}_{j}.png", images)
    return "\n\n".join(parts) + "\n", images


def write_notebook_pages() -> None:
    NOTEBOOK_PAGES.mkdir(exist_ok=True)
    for old in NOTEBOOK_PAGES.iterdir():
        old.unlink()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        page, images = notebook_page(json.loads(path.read_text()), path.stem)
        note = f"\n\n*Rendered from `notebooks/{path.name}` with its stored outputs.*\n"
        (NOTEBOOK_PAGES / f"{path.stem}.md").write_text(page + note)
        for name, png in images.items():
            (NOTEBOOK_PAGES / name).write_bytes(png)


def on_pre_build(config, **kwargs) -> None:  # noqa: ARG001 - the MkDocs hook signature
    REFERENCE.mkdir(exist_ok=True)
    (REFERENCE / "cli.md").write_text(cli_page())
    (REFERENCE / "config.md").write_text(config_page())
    write_notebook_pages()
