"""The ``gradrel`` command line. Each sub-command lives beside the code it drives.

Sub-commands are registered lazily from ``_COMMANDS`` ("module:function"); the function takes an
``argparse`` sub-parsers object and adds its parser, with ``set_defaults(func=...)``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

_COMMANDS = [
    "pyterrier_gradrel.datasets._cli:add_parser",     # gradrel datasets ...
    "pyterrier_gradrel.models._cli:add_parser",       # gradrel convert ...
    "pyterrier_gradrel.retrieval._cli:add_parser",    # gradrel baselines ...
    "pyterrier_gradrel.training._cli:add_parser",     # gradrel train ...
    "pyterrier_gradrel.experiments._cli:add_parser",  # gradrel run ...
    "pyterrier_gradrel.judge._cli:add_parser",        # gradrel judge / build / agreement ...
    "pyterrier_gradrel.benchmark._cli:add_parser",    # gradrel evaluate / leaderboard / benchmark ...
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradrel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for target in _COMMANDS:
        module_name, func = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        getattr(module, func)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
