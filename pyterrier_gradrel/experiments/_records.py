"""Run records: the finished runs of a results folder, kept so that a fresh clone can restore them.

Run folders (``experiments/runs/<name>/``) are a local cache: a fresh clone or another machine has none, so a sweep
longer than one working session would start over. The report therefore also writes ``results/<name>/runs.json``:
for every finished run it holds, by run key,

* ``condition``: the run's ``condition.json`` (key material, condition, timings; without the local provenance
  ``restored_from`` and ``copied_from``);
* ``train_log``: its ``train_log.json`` (``null`` for a baseline);
* ``perquery_sha256``: per evaluated dataset, the sha256 of the run's rows of the per-query frame that the report
  writes to ``results/<name>/perquery.csv.gz`` (:func:`_rows`: the file :func:`restore_runs` rebuilds from them).

``gradrel run --restore`` (:func:`restore_runs`) writes back the run folder of every planned condition whose run key
the record holds and whose folder is missing: ``condition.json`` (with ``restored_from``), ``train_log.json`` and per
dataset ``perquery.csv.gz`` and ``metrics.json``. Equal run keys mean equal key material (``RUN_VERSION``
included), and a rebuilt per-query file whose hash differs from the record is an error, so nothing stale or edited is
restored. A run's rows are found by the scenario its record names, so renaming a scenario does not orphan them. The
raw run (``run.res.gz``) and the model are not kept: a restored run cannot be re-scored with other measures
(``_store.refresh_metrics`` says so), so restoring needs a record of the configured measures, while a record of other
measures does not stop a report whose runs are all on this machine.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.experiments._store import EVAL_COLUMNS, csv_gz, eval_dir, is_done, write_evaluation

if TYPE_CHECKING:
    from pyterrier_gradrel.experiments._config import ExperimentConfig
    from pyterrier_gradrel.experiments._plan import Condition

__all__ = ["RECORDS_FILE", "recorded_keys", "restore_runs", "write_records"]

#: the record's file name in ``results/<name>/``
RECORDS_FILE = "runs.json"
_FORMAT = 1
_READ = {"dtype": {"qid": str, "article": str}, "keep_default_na": False}


def write_records(finished: Iterable[tuple[Condition, str]], perquery: pd.DataFrame, runs_dir: Path,
                  results_dir: Path, cfg: ExperimentConfig) -> Path:
    """Write ``results_dir/runs.json`` for the ``finished`` (condition, run key) pairs, whose run folders are under
    ``runs_dir`` and whose rows ``perquery`` (the report's per-query frame) holds; returns its path."""
    labels = [m.label for m in cfg.measures]
    runs = {}
    for cond, key in sorted(finished, key=lambda pair: pair[1]):
        run_dir = runs_dir / key
        condition = json.loads((run_dir / "condition.json").read_text(encoding="utf-8"))
        for local in ("restored_from", "copied_from"):  # where this machine's folder came from, not the run
            condition.pop(local, None)
        log = run_dir / "train_log.json"
        runs[key] = {
            "condition": condition,
            "train_log": json.loads(log.read_text(encoding="utf-8")) if log.is_file() else None,
            "perquery_sha256": {t.dataset: _sha(_rows(perquery, cond, t.dataset, labels)) for t in cond.targets},
        }
    path = results_dir / RECORDS_FILE
    _atomic.write_text(path, json.dumps({"format": _FORMAT, "experiment": cfg.name, "measures": labels, "runs": runs},
                                        indent=1, default=str) + "\n")
    return path


def restore_runs(keyed: list[tuple[Condition, dict[str, object], str]], runs_dir: Path, results_dir: Path,
                 cfg: ExperimentConfig) -> int:
    """Rebuild from ``results_dir`` (``runs.json`` and ``perquery.csv.gz``) the run folder of every condition of
    ``keyed`` that the record holds and ``runs_dir`` lacks; returns how many were restored (0 without a record).

    Raises:
        ValueError: the record is not this experiment's, there are runs to restore and the record was made with other
            measures or the results folder has no ``perquery.csv.gz``, or a rebuilt per-query file differs from the
            hash the record holds for it (the committed files were edited or do not belong together).
    """
    record = _load(results_dir, cfg)
    if record is None:
        return 0
    todo = [(cond, key) for cond, _material, key in keyed if key in record["runs"] and not is_done(runs_dir / key)]
    if not todo:
        return 0
    labels = [m.label for m in cfg.measures]
    if record.get("measures") != labels:
        raise ValueError(f"{results_dir / RECORDS_FILE} records {len(todo)} run(s) to restore, scored with the "
                         f"measures {record.get('measures')}; this config's are {labels}, and a restored run has no raw "
                         f"run to score again: run the experiment with the recorded measures, or compute those runs")
    if not (results_dir / "perquery.csv.gz").is_file():
        raise ValueError(f"{results_dir / RECORDS_FILE} records {len(todo)} run(s) to restore, but their scores, "
                         f"{results_dir / 'perquery.csv.gz'}, are missing")
    perquery = pd.read_csv(results_dir / "perquery.csv.gz", **_READ)
    for cond, key in todo:
        _restore(runs_dir / key, cond, record["runs"][key], perquery, record["measures"],
                 source=results_dir / RECORDS_FILE)
    return len(todo)


def recorded_keys(results_dir: Path, cfg: ExperimentConfig) -> set[str]:
    """The run keys that ``results_dir``'s run record holds (none without a record), whatever its measures.

    Raises:
        ValueError: as :func:`restore_runs`, for a record of another experiment or format.
    """
    record = _load(results_dir, cfg)
    return set() if record is None else set(record["runs"])


def _load(results_dir: Path, cfg: ExperimentConfig) -> dict | None:
    """The run record of ``results_dir``, checked to be of ``cfg``'s experiment; ``None`` when there is none."""
    path = results_dir / RECORDS_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}): restore it from git (e.g. after a merge conflict)") from exc
    if not isinstance(record, dict) or record.get("format") != _FORMAT or record.get("experiment") != cfg.name:
        found = (record.get("format"), record.get("experiment")) if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"{path} is not a run record of format {_FORMAT} of {cfg.name!r}: found {found}")
    return record


def _restore(run_dir: Path, cond: Condition, run: dict, perquery: pd.DataFrame, labels: list[str], *,
             source: Path) -> None:
    """Write one run folder from its record and its rows of the results' per-query frame, atomically."""
    scenario = run["condition"]["condition"]["scenario"]  # the name its rows were written under
    with _atomic.atomic_path(run_dir) as tmp:
        for target in cond.targets:
            frame = _rows(perquery, cond, target.dataset, labels, scenario=scenario)
            expected = run["perquery_sha256"].get(target.dataset)
            if frame.empty:
                raise ValueError(f"cannot restore {run_dir.name} from {source}: perquery.csv.gz has no rows of it on "
                                 f"{target.dataset} in scenario {scenario!r} (the record and the scores do not belong "
                                 f"together)")
            if _sha(frame) != expected:
                raise ValueError(f"cannot restore {run_dir.name} from {source}: its {len(frame)} per-query rows on "
                                 f"{target.dataset} in perquery.csv.gz do not hash to the recorded {expected}")
            edir = eval_dir(tmp, target)
            edir.mkdir(parents=True)
            write_evaluation(edir, frame, target.dataset)
        if run["train_log"] is not None:
            (tmp / "train_log.json").write_text(json.dumps(run["train_log"], indent=2, default=str), encoding="utf-8")
        condition = {**run["condition"], "restored_from": f"results/{source.parent.name}/{source.name}"}
        (tmp / "condition.json").write_text(json.dumps(condition, indent=2, default=str), encoding="utf-8")


def _rows(perquery: pd.DataFrame, cond: Condition, dataset: str, labels: list[str], *,
          scenario: str | None = None) -> pd.DataFrame:
    """``cond``'s per-query rows on ``dataset`` in the report's per-query frame, as its run folder's file holds them
    (columns ``_store.EVAL_COLUMNS``, the configured measures, in frame order); a fine-tuned run's are those of
    ``scenario`` (default: ``cond``'s); a baseline's rows repeat in every scenario that evaluates ``dataset``, so those
    of the first are taken."""
    sel = (perquery["system"] == cond.system) & (perquery["target"] == dataset) & perquery["measure"].isin(labels)
    if cond.fine_tuned:
        sel &= ((perquery["scenario"] == (scenario or cond.scenario)) & (perquery["variant"] == cond.variant)
                & (perquery["seed"] == cond.seed) & (perquery["fraction"] == cond.fraction)
                & (perquery["noise"] == cond.noise))
    rows = perquery[sel]
    if not cond.fine_tuned and not rows.empty:
        rows = rows[rows["scenario"] == rows["scenario"].iloc[0]]
    return rows[EVAL_COLUMNS].reset_index(drop=True)


def _sha(frame: pd.DataFrame) -> str:
    return hashlib.sha256(csv_gz(frame)).hexdigest()
