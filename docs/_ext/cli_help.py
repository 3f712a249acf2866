"""A Sphinx directive that prints the ``descramble`` command's help, from its own parser.

``.. descramble-cli::`` (in MyST: a ``{descramble-cli}`` fence) inserts ``descramble --help``
and then, for every subcommand the parser has, a section with ``descramble <command> --help``.
The text comes from :func:`descramble.cli.main.build_parser` at build time, so the page
always matches the installed command (a new subcommand appears without editing the page).
The width is fixed (``COLUMNS=88``) so that the output does not depend on the terminal.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

WIDTH = "88"


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        return parser.format_help().rstrip() + "\n"
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def subcommands(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``parser``, in the order they were added."""
    for action in parser._actions:  # argparse has no public accessor for them
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def help_texts() -> List[tuple]:
    """``[(title, help text)]``: the command, then each subcommand."""
    from descramble.cli.main import build_parser

    parser = build_parser()
    texts = [("descramble", _help(parser))]
    texts += [(f"descramble {name}", _help(sub)) for name, sub in subcommands(parser).items()]
    return texts


class DescrambleCli(SphinxDirective):
    has_content = False

    def run(self) -> List[nodes.Node]:
        result: List[nodes.Node] = []
        for title, text in help_texts():
            section_id = nodes.make_id(f"cli-{title}")
            section = nodes.section(ids=[section_id])
            section += nodes.title(text=title)
            block = nodes.literal_block(text, text)
            block["language"] = "text"
            section += block
            result.append(section)
        return result


def setup(app: Sphinx) -> Dict[str, Any]:
    app.add_directive("descramble-cli", DescrambleCli)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
