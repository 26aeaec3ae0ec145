"""The ``gradrel`` command line: cheap to start, documented options, one-line errors."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyterrier_gradrel import cli

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "pyterrier", "pyterrier_dr", "pyterrier_pisa", "faiss", "pandas", "scipy",
         "matplotlib", "pydantic")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_help_imports_nothing_heavy():
    code = ("import json, sys\n"
            "from pyterrier_gradrel import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "usage: gradrel" in proc.stdout
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_module_help_and_version_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "pyterrier_gradrel.cli", "--version"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    from importlib.metadata import version

    assert proc.stdout.strip() == f"gradrel {version('pyterrier-gradrel')}"


def _parsers():
    return list(cli._all_parsers(cli.build_parser()))


def test_every_option_has_help_and_shows_its_default():
    parsers = _parsers()
    assert {p.prog for p in parsers} >= {"gradrel train", "gradrel baselines", "gradrel datasets list",
                                         "gradrel judge", "gradrel run"}
    for parser in parsers:
        text = parser.format_help()
        assert "``" not in text, f"reStructuredText markup in `{parser.prog} --help`"
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            name = f"{parser.prog} {action.option_strings[-1]}"
            assert action.help, f"{name} has no help text"
            shown = parser._get_formatter()._get_help_string(action)
            if action.default is not None and action.default is not False and action.default != argparse.SUPPRESS:
                assert "default" in shown.lower(), f"{name} does not show its default: {shown!r}"


def test_train_options_match_the_trainer():
    from pyterrier_gradrel.training import TrainConfig
    from pyterrier_gradrel.training import _cli as train_cli
    from pyterrier_gradrel.training._config import LOSSES

    assert tuple(train_cli.LOSSES) == LOSSES
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--dataset", "gradrel/xquad-r/th/train", "--precision", "bf16"])
    assert TrainConfig(precision=args.precision) == TrainConfig(precision="bfloat16")
    assert parser.parse_args(["train", "--dataset", "x"]).precision == "float32"
    assert TrainConfig(precision="fp32").run_name() == TrainConfig().run_name()


def test_baselines_out_defaults_to_gradrel_home_not_the_working_directory(tmp_path, monkeypatch):
    import pandas as pd

    from pyterrier_gradrel.retrieval import _cli as retrieval_cli

    args = cli.build_parser().parse_args(["baselines"])
    assert args.out is None
    home = tmp_path / "home"
    monkeypatch.setenv("GRADREL_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    table = pd.DataFrame({"name": ["BM25"], "nDCG@10": [0.5]})
    retrieval_cli._write(args.out, "baselines", "Baselines", [], table, {"command": "test"})
    assert (home / "results" / "baselines" / "baselines.csv").is_file()
    assert not (tmp_path / "experiments").exists()


# ---- errors: one line on stderr, exit 1; the traceback only with --debug / GRADREL_DEBUG ----

def _failing(monkeypatch, exc: BaseException) -> None:
    from pyterrier_gradrel.datasets import _cli as datasets_cli

    def boom(args):
        raise exc

    monkeypatch.setattr(datasets_cli, "_list", boom)  # read when the parser is built


@pytest.mark.parametrize(("exc", "line"), [
    (ValueError("rel must be one of [1, 2, 3], got 4"), "gradrel datasets: rel must be one of [1, 2, 3], got 4"),
    (KeyError("unknown dataset id 'x'"), "gradrel datasets: unknown dataset id 'x'"),
    (FileNotFoundError("no experiment config at a.yaml"), "gradrel datasets: no experiment config at a.yaml"),
])
def test_user_errors_print_one_line(monkeypatch, capsys, exc, line):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    _failing(monkeypatch, exc)
    assert cli.main(["datasets", "list"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [line]
    assert out == ""


def test_unexpected_errors_print_one_line_and_the_debug_hint(monkeypatch, capsys):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    _failing(monkeypatch, IndexError("list index out of range"))
    assert cli.main(["datasets", "list"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "gradrel datasets: unexpected IndexError: list index out of range"
    assert "--debug" in err[1] and cli.DEBUG_ENV in err[1]
    assert len(err) == 2


def test_debug_flag_and_env_show_the_exception(monkeypatch):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    _failing(monkeypatch, ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        cli.main(["--debug", "datasets", "list"])
    with pytest.raises(ValueError, match="bad"):
        cli.main(["datasets", "list", "--debug"])
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ValueError, match="bad"):
        cli.main(["datasets", "list"])
    monkeypatch.setenv(cli.DEBUG_ENV, "0")
    assert cli.main(["datasets", "list"]) == 1


class _ClosedPipe:
    """A stdout whose reader is gone: the buffered output fails at the flush."""

    def write(self, text):
        return len(text)

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self):
        raise ValueError("no file descriptor")


@pytest.mark.parametrize("status", [0, 1])
def test_output_closed_early_keeps_the_commands_status(monkeypatch, status):
    """`gradrel ... | head` where the closed pipe shows only at the final flush: the command's own status is the exit
    status (a failing command used to exit 0)."""
    from pyterrier_gradrel.datasets import _cli as datasets_cli

    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)

    def listing(args):
        print("a line")
        return status

    monkeypatch.setattr(datasets_cli, "_list", listing)
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(["datasets", "list"]) == status


def test_interrupt_exits_130(monkeypatch, capsys):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    _failing(monkeypatch, KeyboardInterrupt())
    assert cli.main(["datasets", "list"]) == 130
    assert capsys.readouterr().err.strip() == "gradrel datasets: interrupted"


def test_a_real_error_in_a_subprocess_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "pyterrier_gradrel.cli", "datasets", "stats", "gradrel/nope/x"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != cli.DEBUG_ENV})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradrel datasets: unknown dataset id 'gradrel/nope/x'")
    debug = subprocess.run([sys.executable, "-m", "pyterrier_gradrel.cli", "--debug", "datasets", "stats",
                            "gradrel/nope/x"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_baselines_loader_prints_no_multiple_query_fields_notice(mirror, capfd):
    from pyterrier_gradrel.retrieval._study import load_eval

    _, topics, qrels = load_eval("gradrel/xquad-r/en/test")
    out, err = capfd.readouterr()
    assert "multiple query fields" not in out + err
    assert list(topics.columns) == ["qid", "query"] and len(topics) == qrels["qid"].nunique()
