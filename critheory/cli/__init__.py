"""The ``critheory`` command line: ``main`` and the parser of every sub-command."""
from critheory.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
