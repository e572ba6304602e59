"""The generated reference pages of the documentation site cover the whole parser and the whole schema."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_has_every_subcommand_and_flag():
    from mflow_sbi.cli import build_parser

    page = hooks().cli_page()
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in subparsers.choices.items():
        assert f"## `mflow-sbi {name}`" in page
        for action in parser._actions:
            assert all(option in page for option in action.option_strings), (name, action.option_strings)


def test_config_reference_has_every_key_with_its_default():
    from mflow_sbi.config import RunConfig

    module = hooks()
    page = module.config_page()
    defaults = RunConfig()
    for table in dataclasses.fields(RunConfig):
        assert f"## `[{table.name}]`" in page
        for item in dataclasses.fields(table.default_factory):
            value = getattr(getattr(defaults, table.name), item.name)
            assert f"| `{item.name}` | `{module.toml_value(value)}` |" in page
    assert module.toml_value([0.3, True, None, "a"]) == '[0.3, true, unset, "a"]'
