"""Synthetic benchmark results on the real tasks' queries (so that they pass verification), for leaderboard tests."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from pyterrier_gradrel.benchmark._evaluate import measure_names
from pyterrier_gradrel.benchmark._results import SCHEMA, TaskResult, result_folder, round_scores
from pyterrier_gradrel.benchmark._verify import task_articles


def fingerprint(system: str) -> str:
    return hashlib.sha256(system.encode()).hexdigest()


def write_result(out: Path, suite, task, system: str, scores: np.ndarray, *, fp: str | None = None) -> Path:
    """One verified-shaped result of ``system`` on ``task``: every measure gets ``scores`` (one per query)."""
    articles = task_articles(task)
    qids = sorted(articles)
    frame = pd.DataFrame({"qid": qids, "article": [articles[q] for q in qids]})
    for m in measure_names(suite):
        frame[m] = np.asarray(scores, dtype=float)[: len(qids)]
    frame = round_scores(frame)
    fp = fp or fingerprint(system)
    record = {
        "schema": SCHEMA, "suite": {"name": suite.name, "version": suite.version, "hash": suite.hash},
        "task": {"name": task.name, "dataset": task.dataset, "group": task.group, "version": task.version,
                 "data_fingerprint": task.fingerprint, "cluster_scope": task.scope},
        "system": {"name": system, "fingerprint": fp, "description": {"kind": "test"}},
        "main_score": suite.main_score, "queries": len(qids), "depth": suite.depth,
        "scores": {m: float(frame[m].mean()) for m in measure_names(suite)},
    }
    path = result_folder(out, suite.folder_name, system, fp) / f"{task.name}.json"
    TaskResult(record).write(path, frame)
    return path


def query_count(task) -> int:
    return len(task_articles(task))
