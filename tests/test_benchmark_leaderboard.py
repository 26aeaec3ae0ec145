"""gradrel leaderboard: tables, ties, incomplete systems and files, from synthetic result folders."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _benchmark_results import fingerprint, query_count, write_result

from pyterrier_gradrel.benchmark._leaderboard import build, collect, leaderboard
from pyterrier_gradrel.benchmark._results import TaskResult, result_folder
from pyterrier_gradrel.benchmark._suite import load_suite, suite_path

TASKS = ["xquad-r-en", "xquad-r-de-en", "xquad-r-multi", "afriqa-hau"]


@pytest.fixture
def results(tmp_path, mirror):
    """Systems strong > mid ~ mid2 (equal up to noise) on TASKS, with the tasks' real queries."""
    suite = load_suite()
    rng = np.random.default_rng(0)
    shifts = {"strong": 0.25, "mid": 0.0, "mid2": 0.0}
    root = tmp_path / "results"
    for name in TASKS:
        task = suite.task(name)
        n = query_count(task)
        base = rng.uniform(0.2, 0.6, size=n)
        for system, shift in shifts.items():
            noise = rng.normal(0, 0.01, size=n) if system == "mid2" else 0
            write_result(root, suite, task, system, np.clip(base + shift + noise, 0, 1))
    return root


def test_leaderboard_ranks_ties_and_writes_the_files(results, tmp_path):
    board = leaderboard("gradrel-v1", results=results, reference=False, out=tmp_path / "board", tasks=TASKS,
                        n_boot=300)
    table = board.table.set_index("system")
    assert list(board.table["system"])[0] == "strong"
    assert table.at["strong", "rank_interval"] == "1"
    assert table.at["strong", "tied_with"] == ""
    assert set(table.at["mid", "tied_with"].split(", ")) == {"mid2"}
    assert table.at["mid", "rank_interval"] == "2-3"
    assert table.at["mid", "fingerprint"] == fingerprint("mid")[:12]
    assert board.incomplete == {} and board.used == TASKS
    # overall = mean of group means
    tasks = board.tasks.set_index("system")
    groups = {"xquad-r-en": "monolingual", "xquad-r-de-en": "cross-lingual", "xquad-r-multi": "multi",
              "afriqa-hau": "afriqa"}
    assert table.at["strong", "overall"] == pytest.approx(np.mean([tasks.at["strong", t] for t in groups]))
    md = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "| rank | rank_interval | system | fingerprint |" in md and "Ranked on" not in md
    assert "Threshold profile" in md
    csv = pd.read_csv(tmp_path / "board" / "leaderboard.csv")
    assert list(csv["system"]) == list(board.table["system"]) and "nDCG(rel=3)@10" in csv.columns
    assert (tmp_path / "board" / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(tmp_path / "board" / "leaderboard_tasks.csv").shape == (3, 1 + len(TASKS))
    assert board.written == [tmp_path / "board" / f for f in ("leaderboard.md", "leaderboard.csv",
                                                              "leaderboard_tasks.csv", "leaderboard.png")]


def test_a_partial_system_ranks_everyone_on_the_shared_tasks(results, tmp_path):
    suite = load_suite()
    for name in TASKS[:2]:
        write_result(results, suite, suite.task(name), "partial", np.full(query_count(suite.task(name)), 0.5))
    board = leaderboard("gradrel-v1", results=results, reference=False, out=tmp_path / "board", tasks=TASKS,
                        n_boot=100, figure=False)
    assert board.used == TASKS[:2] and board.selected == TASKS
    assert board.incomplete == {"partial": TASKS[2:]}
    assert list(board.tasks.columns) == ["system", *TASKS[:2]]
    assert set(board.table["system"]) == {"strong", "mid", "mid2", "partial"}
    assert [g for g in ("monolingual", "cross-lingual", "multi", "afriqa") if g in board.table.columns] == \
        ["monolingual", "cross-lingual"]
    md = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "Ranked on 2 of the 4 selected tasks" in md and "partial: 2 of 4 tasks" in md
    assert not (tmp_path / "board" / "leaderboard.png").exists() and len(board.written) == 3


def test_results_on_other_data_are_refused(results):
    from pyterrier_gradrel.benchmark import ResultError

    suite = load_suite()
    path = next(results.glob("gradrel-v1/mid/*/xquad-r-en.json"))
    path.write_text(path.read_text().replace(suite.task("xquad-r-en").fingerprint, "sha256:" + "2" * 64))
    with pytest.raises(ResultError, match="xquad-r-en.json: task fields"):
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
    assert {s for s in board.table["system"] if s.startswith("mid@")} == {"mid@ffffffff", f"mid@{fingerprint('mid')[:8]}"}


def test_one_name_whose_fingerprints_share_16_characters_is_two_rows_from_two_roots(results, tmp_path):
    """The same name and first 16 fingerprint characters, other full fingerprints (each root has its own
    folder ``mid/<fp[:16]>``): two rows with labels long enough to differ, never one merged row."""
    suite = load_suite()
    fp_a, fp_b = "ab" * 8 + "0" * 48, "ab" * 8 + "1" * 48
    roots = [tmp_path / "a", tmp_path / "b"]
    for root, fp in zip(roots, (fp_a, fp_b), strict=True):
        for name in TASKS:
            result = TaskResult.load(next(results.glob(f"gradrel-v1/mid/*/{name}.json")))
            result.record["system"]["fingerprint"] = fp
            TaskResult(result.record).write(result_folder(root, suite.name, "mid", fp) / f"{name}.json",
                                            result.per_query())
    collected = collect(roots, suite, TASKS)
    assert sorted(collected) == [f"mid@{fp_a[:32]}", f"mid@{fp_b[:32]}"]
    assert all(len(tasks) == len(TASKS) for tasks in collected.values())


def test_cli_leaderboard_writes_the_files(results, tmp_path):
    from pyterrier_gradrel.cli import main

    assert main(["leaderboard", "--results", str(results), "--no-reference", "--tasks", ",".join(TASKS),
                 "--bootstrap", "100", "--no-figure"]) == 0
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
