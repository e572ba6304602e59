"""The generated reference pages of the documentation site cover the whole parser and the whole schema."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import importlib.util
import json
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


def test_notebook_pages_render_markdown_code_text_and_images():
    png = b"\x89PNG\r\n\x1a\nfake"
    notebook = {"cells": [
        {"cell_type": "markdown", "source": ["# Title\n", "Some *text*."]},
        {"cell_type": "code", "source": "print('a ``` b')", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["a ``` b\n"]},
            {"output_type": "display_data", "data": {"image/png": base64.b64encode(png).decode(), "text/plain": "<Image>"}},
            {"output_type": "execute_result", "data": {"text/plain": ["{'x': 1}"]}},
            {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []},
        ]},
    ]}
    page, images = hooks().notebook_page(notebook, "nb")
    assert page.startswith("# Title\nSome *text*.\n\n````python\nprint('a ``` b')\n````")
    assert "````text\na ``` b\n````" in page  # the fence outgrows the backticks inside
    assert "![output](nb_1_1.png)" in page and images == {"nb_1_1.png": png}
    assert "```text\n{'x': 1}\n```" in page and "```text\nValueError: bad\n```" in page
    assert "<Image>" not in page  # an image's text fallback is not repeated


def test_every_stored_notebook_is_a_page_in_the_site_navigation():
    module = hooks()
    nav = (ROOT / "mkdocs.yml").read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{path.stem}.md" in nav, path.name
        page, images = module.notebook_page(json.loads(path.read_text()), path.stem)
        assert page.startswith("# ") and images, path.name  # a title and at least one stored image
