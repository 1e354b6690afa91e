"""The command line describes itself: a program description, ``--version``, and a help text
for every option of every command (issue 30)."""
from __future__ import annotations

import argparse

import pytest

import critheory
from critheory.cli.main import build_parser, main


def _subcommands():
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_option_has_help():
    missing = [f"{name} {' '.join(a.option_strings) or a.dest}"
               for name, sp in _subcommands().items() for a in sp._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, "options without help: " + ", ".join(missing)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"critheory {critheory.__version__}"


def test_description_is_the_program(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "criticality of wide and deep neural networks" in out and "examples:" in out
    assert "Command-line interface" not in out
