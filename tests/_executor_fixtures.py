"""Scripted back-ends for executor tests, importable by Ray workers (tests/ is on their PYTHONPATH).

Unlike the runner tests' doubles, these are deterministic across processes (seeds from sha256, not
``hash()``), keep their evidence in files (a worker's memory is lost with it), and can be told to die
mid-condition or to fail for a real reason.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd

from pyterrier_gradrel.experiments import Components
from pyterrier_gradrel.experiments._data import DataCache

LIMIT = 6


def config(**changes) -> dict:
    cfg = {
        "name": "exec",
        "scenarios": [{"type": "monolingual", "collection": "xquad-r", "languages": ["en"]}],
        "thresholds": [1, 3],
        "graded_loss": False,
        "seeds": [0],
        "training": {"max_steps": 2},
        "measures": {"graded": ["nDCG@10"], "binary": ["RR"], "rels": [2]},
        "calibration": {"enabled": False},
        "limit_queries": LIMIT,
    }
    cfg.update(changes)
    return cfg


class LightData(DataCache):
    """Real topics/qrels; an empty corpus (the scripted trainer does not read it)."""

    def corpus(self, ds_ids):
        return pd.DataFrame(columns=["docno", "text"])


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


def scripted_system(qrels: pd.DataFrame, key: str, strength: float):
    """A pipeline ranking each query's judged sentences by ``strength`` × grade + noise seeded by (key, qid),
    then five unjudged ones."""
    import pyterrier as pt

    def fn(topics):
        rows = []
        for qid in topics["qid"]:
            rng = np.random.default_rng(_seed(key, qid))
            judged = qrels[qrels["qid"] == qid]
            for docno, label in zip(judged["docno"], judged["label"], strict=True):
                rows.append((qid, docno, strength * label + rng.normal()))
            for i in range(5):
                rows.append((qid, f"unjudged-{i}", rng.normal() - 1))
        return pt.model.add_ranks(pd.DataFrame(rows, columns=["qid", "docno", "score"]))

    return pt.apply.generic(fn)


class FileScripted:
    """Scripted systems and a scripted trainer with a checkpoint in the condition's partial folder.

    Args:
        log: a folder for evidence: ``attempts.jsonl`` gets one line per training attempt.
        data: the topics/qrels the scripted systems rank by.
        kill_once: an attempt that finds no checkpoint writes one and SIGKILLs its own process.
        fail_variant: this variant raises ``ValueError`` (bad data) on every attempt.
    """

    def __init__(self, log: Path, data: DataCache, *, kill_once: bool = False, fail_variant: str | None = None) -> None:
        self.log = Path(log)
        self.data = data
        self.kill_once = kill_once
        self.fail_variant = fail_variant

    def components(self) -> Components:
        return Components(baseline=self.baseline, dense=self.dense, train=self.train, fingerprint=lambda: "f" * 64)

    def _system(self, key: str, ds_id: str, strength: float):
        return scripted_system(self.data.get(ds_id).qrels, key, strength)

    def baseline(self, name: str, ds_id: str):
        return self._system(name, ds_id, 0.5 if name == "BM25" else 1.0)

    def dense(self, model, ds_id: str):
        return self._system(repr(model), ds_id, 1.5)

    def train(self, cond, topics, qrels, corpus, run_dir, cfg):
        run_dir = Path(run_dir)
        ckpt = run_dir / "checkpoint.json"
        resumed_from = json.loads(ckpt.read_text())["step"] if ckpt.exists() else None
        self.log.mkdir(parents=True, exist_ok=True)
        with open(self.log / "attempts.jsonl", "a") as fh:
            fh.write(json.dumps({"variant": cond.variant, "pid": os.getpid(), "resumed_from": resumed_from}) + "\n")
        if cond.variant == self.fail_variant:
            raise ValueError(f"bad data: the training qrels of {cond.train[0]} have no grade-3 pairs")
        if resumed_from is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.write_text(json.dumps({"step": 1}))
            if self.kill_once:
                os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-condition, after its checkpoint
        return (cond.variant, cond.seed), {"steps": cfg.training.max_steps, "resumed_from": resumed_from}


def attempts(log: Path) -> list[dict]:
    path = Path(log) / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
