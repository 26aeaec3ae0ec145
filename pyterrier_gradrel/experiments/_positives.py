"""Which grades the drawn training positives had, per τ and sampling unit.

With ``unit: query`` every step draws one positive per query uniformly among its passages of grade ≥ τ;
with ``unit: pair`` every (query, positive) pair is one example. At τ = 1 the two units therefore train
on different mixtures of grade-1/2/3 positives, which is what the unit × τ interaction is about.

Two sources:

* :func:`positive_grades_from_logs` reads the ``train_log.json`` of finished run folders, where the trainer
  records the grades of the positives it trained on as :data:`LOG_KEY` (``{"1": n1, "2": n2, "3": n3}``, every
  step of the run: a resumed run continues the count its checkpoint carries). A log whose count covers fewer
  steps than the run (``positive_grades_steps`` < ``steps``: resumed from a checkpoint written before
  checkpoints carried the count; or, in logs older than that key, any resumed run, ``steps_this_session`` <
  ``steps``) is partial and left out.
* :func:`replay_positive_grades` needs no log: the trainer's batches are deterministic in ``(seed, epoch)``, so
  it rebuilds each fine-tuned condition's sampler with the trainer's own data preparation (noise, fraction,
  binarization) and walks the same steps; it needs the datasets (``GRADREL_MIRROR``) but no model.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence

    from pyterrier_gradrel.experiments._config import ExperimentConfig
    from pyterrier_gradrel.training import PairSampler

logger = logging.getLogger(__name__)

LOG_KEY = "positive_grades"
COLUMNS = ["run", "scenario", "train", "variant", "unit", "loss", "rel", "seed", "fraction", "noise", "grade", "count",
           "source"]


def _rows(run: str, scenario: str, train: Sequence[str], variant: str, config: dict, counts: dict, source: str) -> list[dict]:
    return [dict(run=run, scenario=scenario, train=",".join(train or ()), variant=variant, unit=config.get("unit", "query"),
                 loss=config.get("loss", "infonce"), rel=config.get("rel"), seed=config.get("seed"),
                 fraction=config.get("fraction", 1.0), noise=config.get("noise", 0.0), grade=int(g), count=int(n),
                 source=source)
            for g, n in sorted(counts.items(), key=lambda kv: int(kv[0]))]


def positive_grades_from_logs(runs_dir: str | Path) -> pd.DataFrame:
    """Drawn positives per grade from the ``train_log.json`` of every finished run folder under ``runs_dir``.

    Args:
        runs_dir: ``experiments/runs/<config name>``.

    Returns:
        Columns :data:`COLUMNS` (``source`` = ``"log"``), one row per run and grade; runs whose log lacks
        :data:`LOG_KEY`, or counts only part of the run's steps (:func:`partial_count`), are left out (a
        warning says how many).

    Raises:
        FileNotFoundError: ``runs_dir`` is not a folder.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"expected a folder of run folders (experiments/runs/<name>), got {runs_dir}")
    rows, missing, partial = [], 0, 0
    for run in sorted(p for p in runs_dir.iterdir() if (p / "train_log.json").is_file()):
        log = json.loads((run / "train_log.json").read_text(encoding="utf-8"))
        if LOG_KEY not in log:
            missing += 1
            continue
        if partial_count(log):
            partial += 1
            continue
        # a run folder appears with both files at once (``_store.write_run``)
        cond = json.loads((run / "condition.json").read_text(encoding="utf-8"))["condition"]
        rows += _rows(run.name, cond.get("scenario", ""), cond.get("train"), cond.get("variant", ""),
                      log.get("config", {}), log[LOG_KEY], "log")
    if missing:
        logger.warning("%d run(s) under %s do not record %r in train_log.json; replay_positive_grades(config) "
                       "recomputes them", missing, runs_dir, LOG_KEY)
    if partial:
        logger.warning("%d run(s) under %s record %r for only part of their steps (resumed from a checkpoint that "
                       "did not carry the count); left out, replay_positive_grades(config) recomputes them",
                       partial, runs_dir, LOG_KEY)
    return pd.DataFrame(rows, columns=COLUMNS)


def partial_count(log: Mapping[str, object]) -> bool:
    """Whether a trainer report's :data:`LOG_KEY` counts fewer steps than the run trained.

    ``positive_grades_steps`` says how many steps the count covers; a report without it (written before the count
    travelled in checkpoints) counted its last session only, ``steps_this_session``.
    """
    steps = log.get("steps")
    covered = log.get("positive_grades_steps", log.get("steps_this_session", steps))
    return isinstance(steps, int) and isinstance(covered, int) and covered < steps


def count_drawn_positives(sampler: PairSampler, steps: int) -> Counter:
    """Grades of the positives of the first ``steps`` batches, in the trainer's order (``PairSampler.steps``)."""
    return Counter(int(sampler.grade(ex.qid, ex.positive))
                   for _, batch in sampler.steps(0, steps) for ex in batch)


def replay_positive_grades(config: str | os.PathLike | Mapping[str, object] | ExperimentConfig) -> pd.DataFrame:
    """Drawn positives per grade for every fine-tuned condition of ``config``, recomputed without training.

    Args:
        config: the experiment config (path, mapping or ``ExperimentConfig``).

    Returns:
        Columns :data:`COLUMNS` (``source`` = ``"replay"``; ``run`` describes the condition).
    """
    from pyterrier_gradrel.experiments._config import load_config
    from pyterrier_gradrel.experiments._data import DataCache
    from pyterrier_gradrel.training._data import prepare

    cfg = load_config(config)
    data = DataCache(limit_queries=cfg.limit_queries)
    rows = []
    for cond in cfg.conditions:
        if not cond.fine_tuned:
            continue
        tc = cond.train_config
        # the trainer's own preparation (noise, fraction, binarization, sampler); it loads no model
        sampler, _, _ = prepare(tc, *data.train_data(cond.train), data.corpus(cond.train))
        counts = count_drawn_positives(sampler, tc.total_steps(sampler.steps_per_epoch()))
        rows += _rows(cond.describe(), cond.scenario, cond.train, cond.variant, tc.to_dict(), dict(counts), "replay")
    return pd.DataFrame(rows, columns=COLUMNS)


def positive_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Share of drawn positives per grade within each (scenario, unit, variant, fraction, noise), summed over
    runs (targets and seeds).

    Args:
        counts: the output of :func:`positive_grades_from_logs` or :func:`replay_positive_grades` (or both
            concatenated, e.g. a ``unit: pair`` experiment and its ``unit: query`` control).

    Returns:
        Columns ``scenario``, ``unit``, ``variant``, ``fraction``, ``noise``, ``grade``, ``count``, ``share``,
        ``n_runs``.
    """
    keys = ["scenario", "unit", "variant", "fraction", "noise"]
    if counts.empty:
        return pd.DataFrame(columns=keys + ["grade", "count", "share", "n_runs"])
    out = counts.groupby(keys + ["grade"], sort=True).agg(count=("count", "sum"), n_runs=("run", "nunique"))
    out = out.reset_index()
    out["share"] = out["count"] / out.groupby(keys)["count"].transform("sum")
    return out[keys + ["grade", "count", "share", "n_runs"]]
