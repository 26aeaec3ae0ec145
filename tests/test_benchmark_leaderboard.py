"""gradrel leaderboard: tables, ties, incomplete systems and files, from synthetic result folders."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pyterrier_gradrel.benchmark._evaluate import measure_names
from pyterrier_gradrel.benchmark._leaderboard import build, collect, leaderboard
from pyterrier_gradrel.benchmark._results import SCHEMA, TaskResult, result_folder
from pyterrier_gradrel.benchmark._suite import load_suite, suite_path

TASKS = ["xquad-r-en", "xquad-r-de-en", "xquad-r-multi", "afriqa-hau"]


def _fp(system: str) -> str:
    return hashlib.sha256(system.encode()).hexdigest()


def _write_result(out: Path, suite, task, system: str, fingerprint: str, per_query: pd.DataFrame) -> None:
    record = {
        "schema": SCHEMA, "suite": {"name": suite.name, "version": suite.version},
        "task": {"name": task.name, "dataset": task.dataset, "group": task.group, "version": task.version,
                 "data_fingerprint": task.fingerprint, "cluster_scope": task.scope},
        "system": {"name": system, "fingerprint": fingerprint, "description": {"kind": "test"}},
        "main_score": suite.main_score,
        "scores": {m: float(per_query[m].mean()) for m in measure_names(suite.rels)},
    }
    folder = result_folder(out, suite.name, system, fingerprint)
    TaskResult(record).write(folder / f"{task.name}.json", per_query)


@pytest.fixture
def results(tmp_path):
    """Systems strong > mid ~ mid2 (equal up to noise), and 'partial' with one task missing."""
    suite = load_suite()
    rng = np.random.default_rng(0)
    shifts = {"strong": 0.25, "mid": 0.0, "mid2": 0.0, "partial": 0.1}
    for name in TASKS:
        task = suite.task(name)
        n, articles = 120, 12
        base = rng.uniform(0.2, 0.6, size=n)
        for system, shift in shifts.items():
            if system == "partial" and name == "afriqa-hau":
                continue
            noise = rng.normal(0, 0.01, size=n) if system == "mid2" else 0
            score = np.clip(base + shift + noise, 0, 1)
            frame = pd.DataFrame({"qid": [f"{name}-{i}" for i in range(n)],
                                  "article": [f"a{i % articles}" for i in range(n)]})
            for m in measure_names(suite.rels):
                frame[m] = score
            _write_result(tmp_path, suite, task, system, _fp(system), frame)
    return tmp_path


def test_leaderboard_ranks_ties_and_incomplete_systems(results, tmp_path):
    board = leaderboard("gradrel-v1", results=results, out=tmp_path / "board", tasks=TASKS, n_boot=300)
    table = board.table.set_index("system")
    assert list(board.table["system"])[0] == "strong"
    assert table.at["strong", "rank_interval"] == "1"
    assert table.at["strong", "tied_with"] == ""
    assert set(table.at["mid", "tied_with"].split(", ")) == {"mid2"}
    assert table.at["mid", "rank_interval"] == "2-3"
    assert board.incomplete == {"partial": ["afriqa-hau"]}
    # overall = mean of group means
    tasks = board.tasks.set_index("system")
    groups = {"xquad-r-en": "monolingual", "xquad-r-de-en": "cross-lingual", "xquad-r-multi": "multi",
              "afriqa-hau": "afriqa"}
    assert table.at["strong", "overall"] == pytest.approx(np.mean([tasks.at["strong", t] for t in groups]))
    md = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "| rank | rank_interval | system |" in md and "Incomplete (not ranked)" in md and "partial" in md
    assert "Threshold profile" in md
    csv = pd.read_csv(tmp_path / "board" / "leaderboard.csv")
    assert list(csv["system"]) == list(board.table["system"]) and "nDCG@10(rel=3)" in csv.columns
    assert (tmp_path / "board" / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(tmp_path / "board" / "leaderboard_tasks.csv").shape == (3, 1 + len(TASKS))


def test_results_on_other_data_are_not_compared(results):
    suite = load_suite()
    path = next(results.glob("gradrel-v1/mid/*/xquad-r-en.json"))
    path.write_text(path.read_text().replace(suite.task("xquad-r-en").fingerprint, "sha256:" + "2" * 64))
    from pyterrier_gradrel.benchmark import DataChangedError

    with pytest.raises(DataChangedError, match="cannot be compared"):
        collect(results, suite, TASKS)


def test_two_fingerprints_of_one_name_are_two_rows(results):
    suite = load_suite()
    for name in TASKS:
        src = next(results.glob(f"gradrel-v1/mid/*/{name}.json"))
        result = TaskResult.load(src)
        result.record["system"]["fingerprint"] = "f" * 64
        TaskResult(result.record).write(result_folder(results, suite.name, "mid", "f" * 64) / f"{name}.json",
                                        result.per_query())
    board = build(collect(results, suite, TASKS), suite, TASKS, n_boot=50)
    assert {s for s in board.table["system"] if s.startswith("mid@")} == {"mid@ffffffff", f"mid@{_fp('mid')[:8]}"}


def test_cli_leaderboard_writes_the_files(results, tmp_path):
    from pyterrier_gradrel.cli import main

    assert main(["leaderboard", "--results", str(results), "--tasks", ",".join(TASKS), "--bootstrap", "100",
                 "--no-figure"]) == 0
    assert (results / "gradrel-v1" / "leaderboard.md").exists()
    assert not (results / "gradrel-v1" / "leaderboard.png").exists()


def test_building_the_benchmark_parser_imports_nothing_heavy():
    code = ("import argparse, sys; from pyterrier_gradrel.benchmark import _cli; "
            "p = argparse.ArgumentParser(); _cli.add_parser(p.add_subparsers()); "
            "print(sorted(m for m in ('torch', 'pandas', 'pyterrier', 'ir_measures', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_suite_yaml_ships_as_package_data():
    setup = (Path(__file__).resolve().parents[1] / "setup.cfg").read_text()
    assert "suites/*.yaml" in setup and "pyterrier_gradrel.benchmark" in setup
    assert suite_path("gradrel-v1").name == "gradrel-v1.yaml"


def test_cli_baseline_choices_are_the_retrieval_baselines():
    from pyterrier_gradrel.benchmark import _cli
    from pyterrier_gradrel.retrieval import BASELINES

    assert _cli.BASELINES is BASELINES
