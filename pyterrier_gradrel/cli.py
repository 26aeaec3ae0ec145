"""The ``gradrel`` command line. Each sub-command lives beside the code it drives.

Sub-commands are registered from ``_COMMANDS`` ("module:function"); the function takes an ``argparse``
sub-parsers object and adds its parser, with ``set_defaults(func=...)``. Building the parser must stay cheap
(``gradrel --help`` imports no torch, pyterrier or transformers): the ``_cli`` modules import their heavy
dependencies inside the command functions.

Errors: a command that fails prints one line, ``gradrel <command>: <message>``, on stderr and exits with 1
(130 on Ctrl-C). ``--debug`` (or ``GRADREL_DEBUG=1``) lets the exception propagate with its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator

_COMMANDS = [
    "pyterrier_gradrel.datasets._cli:add_parser",     # gradrel datasets ...
    "pyterrier_gradrel.models._cli:add_parser",       # gradrel convert ...
    "pyterrier_gradrel.retrieval._cli:add_parser",    # gradrel baselines ...
    "pyterrier_gradrel.training._cli:add_parser",     # gradrel train ...
    "pyterrier_gradrel.experiments._cli:add_parser",  # gradrel run ...
    "pyterrier_gradrel.judge._cli:add_parser",        # gradrel judge / build / agreement ...
    "pyterrier_gradrel.benchmark._cli:add_parser",    # gradrel evaluate / leaderboard / benchmark ...
]

#: environment variable that turns on ``--debug`` (any value but "", "0", "false", "no")
DEBUG_ENV = "GRADREL_DEBUG"

#: exceptions that report a problem with the user's input or environment: the message is the whole story
#: (``ConfigError``, ``LocalCollectionError`` and ``UnicodeDecodeError`` are ``ValueError`` s); the package's
#: ``DownloadError`` and ``JudgeBackendError`` are added by :func:`is_user_error`
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, OSError, ImportError)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless the help text already states one or there is nothing to show.

    ``None`` (meaning "not set": the help says what happens then) and ``False`` (a switch that is off) are
    not shown.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if "default" in help_text.lower() or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return help_text
        return super()._get_help_string(action)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyterrier-gradrel")
    except PackageNotFoundError:  # running from a source tree that is not installed
        from pyterrier_gradrel import __version__

        return __version__


def _all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield from _all_parsers(sub)


def build_parser() -> argparse.ArgumentParser:
    """The ``gradrel`` parser with every sub-command (imports only the light ``_cli`` modules)."""
    parser = argparse.ArgumentParser(prog="gradrel", description=__doc__.splitlines()[0].replace("``", ""),
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (also: {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for target in _COMMANDS:
        module_name, func = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        getattr(module, func)(sub)
    for p in _all_parsers(parser):
        p.formatter_class = HelpFormatter
        if p is not parser:  # `gradrel train ... --debug` works as well as `gradrel --debug train ...`
            p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _debug_requested(args: argparse.Namespace) -> bool:
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return bool(getattr(args, "debug", False)) or env not in ("", "0", "false", "no")


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` reports bad input or a missing resource (shown without the "--debug" hint)."""
    from pyterrier_gradrel.datasets._download import DownloadError
    from pyterrier_gradrel.judge._base import JudgeBackendError

    if isinstance(exc, IndexError):  # an IndexError is a LookupError but nearly always a bug
        return False
    return isinstance(exc, (*USER_ERRORS, DownloadError, JudgeBackendError))


def error_message(exc: BaseException) -> str:
    """The one line shown for ``exc``: its message (a ``KeyError``'s key without repr quotes)."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]
    else:
        text = str(exc)
    if is_user_error(exc) and text:
        return text
    return f"unexpected {type(exc).__name__}: {text}" if text else f"unexpected {type(exc).__name__}"


def main(argv: list[str] | None = None) -> int:
    """Run ``gradrel``; returns the exit status (0 ok, 1 error, 2 usage error, 130 interrupted).

    A reader that closes the output early (``gradrel datasets list | head``) ends the command quietly, as it
    does for other command-line tools, with status 0 when nothing else failed.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if _debug_requested(args):
        return int(args.func(args) or 0)
    status = 0  # a closed pipe while the command writes: nothing else failed (yet)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return status  # the command's own status when the pipe shows only at the flush
    except KeyboardInterrupt:
        print(f"gradrel {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command line's last resort: one line instead of a traceback
        print(f"gradrel {args.command}: {error_message(exc)}", file=sys.stderr)
        if not is_user_error(exc):
            print(f"gradrel: run with --debug (or {DEBUG_ENV}=1) for the traceback", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not raise again on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
