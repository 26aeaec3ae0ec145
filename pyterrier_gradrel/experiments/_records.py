"""Run records: the finished runs of a results folder, kept so that a fresh clone can restore them.

Run folders (``experiments/runs/<name>/``) are a local cache: a fresh clone or another machine has none, so a sweep
longer than one working session would start over. The report therefore also writes ``results/<name>/runs.json``:
for every finished run it holds, by run key,

* ``condition``: the run's ``condition.json`` (key material, condition, timings; without ``restored_from``);
* ``train_log``: its ``train_log.json`` (``null`` for a baseline);
* ``perquery_sha256``: per evaluated dataset, the sha256 of the per-query file that
  :func:`restore_runs` rebuilds from ``results/<name>/perquery.csv.gz`` (the rows of the configured measures).

``gradrel run --restore`` (:func:`restore_runs`) writes back the run folder of every planned condition whose run key
the record holds and whose folder is missing: ``condition.json`` (with ``restored_from``), ``train_log.json`` and per
dataset ``perquery.csv.gz`` and ``metrics.json``. Equal run keys mean equal key material (``RUN_VERSION`` included), and a
rebuilt per-query file whose hash differs from the record is an error, so nothing stale or edited is restored. The raw
run (``run.res.gz``) and the model are not kept: a restored run cannot be re-scored with other measures
(``_store.refresh_metrics`` says so).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.experiments._store import csv_gz, eval_dir, is_done, write_evaluation

if TYPE_CHECKING:
    from pyterrier_gradrel.experiments._config import ExperimentConfig
    from pyterrier_gradrel.experiments._plan import Condition

__all__ = ["RECORDS_FILE", "recorded_keys", "restore_runs", "write_records"]

#: the record's file name in ``results/<name>/``
RECORDS_FILE = "runs.json"
_FORMAT = 1
_PERQUERY = ["qid", "article", "measure", "value"]
_READ = {"dtype": {"qid": str, "article": str}, "keep_default_na": False}


def write_records(keys: Iterable[str], runs_dir: Path, results_dir: Path, cfg: ExperimentConfig) -> Path:
    """Write ``results_dir/runs.json`` for the finished runs ``keys`` under ``runs_dir``; returns its path."""
    labels = [m.label for m in cfg.measures]
    runs = {}
    for key in sorted(keys):
        run_dir = runs_dir / key
        if not is_done(run_dir):
            continue
        condition = json.loads((run_dir / "condition.json").read_text(encoding="utf-8"))
        condition.pop("restored_from", None)
        log = run_dir / "train_log.json"
        runs[key] = {
            "condition": condition,
            "train_log": json.loads(log.read_text(encoding="utf-8")) if log.is_file() else None,
            "perquery_sha256": {
                _dataset(edir): _sha(_measure_rows(pd.read_csv(edir / "perquery.csv.gz", **_READ), labels))
                for edir in sorted((run_dir / "eval").iterdir())},
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
        ValueError: the record is not this experiment's, was made with other measures, the results folder has no
            ``perquery.csv.gz``, or a rebuilt per-query file
            differs from the hash the record holds for it (the committed files were edited or do not belong
            together).
    """
    record = _load(results_dir, cfg)
    if record is None:
        return 0
    todo = [(cond, key) for cond, _material, key in keyed if key in record["runs"] and not is_done(runs_dir / key)]
    if not todo:
        return 0
    if not (results_dir / "perquery.csv.gz").is_file():
        raise ValueError(f"{results_dir / RECORDS_FILE} records {len(todo)} run(s) to restore, but their scores, "
                         f"{results_dir / 'perquery.csv.gz'}, are missing")
    perquery = pd.read_csv(results_dir / "perquery.csv.gz", **_READ)
    for cond, key in todo:
        _restore(runs_dir / key, cond, record["runs"][key], perquery, record["measures"],
                 source=results_dir / RECORDS_FILE)
    return len(todo)


def recorded_keys(results_dir: Path, cfg: ExperimentConfig) -> set[str]:
    """The run keys that ``results_dir``'s run record holds (none without a record).

    Raises:
        ValueError: as :func:`restore_runs`, for a record of another experiment or other measures.
    """
    record = _load(results_dir, cfg)
    return set() if record is None else set(record["runs"])


def _load(results_dir: Path, cfg: ExperimentConfig) -> dict | None:
    """The run record of ``results_dir``, checked to be ``cfg``'s; ``None`` when there is none."""
    path = results_dir / RECORDS_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    labels = [m.label for m in cfg.measures]
    if record.get("format") != _FORMAT or record.get("experiment") != cfg.name or record.get("measures") != labels:
        raise ValueError(f"{path} records format {record.get('format')} runs of {record.get('experiment')!r} with "
                         f"measures {record.get('measures')}; expected format {_FORMAT}, {cfg.name!r} and {labels}")
    return record


def _restore(run_dir: Path, cond: Condition, run: dict, perquery: pd.DataFrame, labels: list[str], *,
             source: Path) -> None:
    """Write one run folder from its record and its rows of the results' per-query frame, atomically."""
    rows = _condition_rows(perquery, cond)
    with _atomic.atomic_path(run_dir) as tmp:
        for target in cond.targets:
            sel = rows[rows["target"] == target.dataset]
            if cond.system != "fine-tuned" and not sel.empty:  # a baseline's rows repeat in every scenario
                sel = sel[sel["scenario"] == sel["scenario"].iloc[0]]
            frame = _measure_rows(sel, labels)
            expected = run["perquery_sha256"].get(target.dataset)
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


def _condition_rows(perquery: pd.DataFrame, cond: Condition) -> pd.DataFrame:
    """The rows of ``perquery`` that ``cond`` produced (a baseline's in every scenario that evaluates its targets)."""
    sel = perquery["system"] == cond.system
    if cond.system == "fine-tuned":
        sel &= ((perquery["scenario"] == cond.scenario) & (perquery["variant"] == cond.variant)
                & (perquery["seed"] == cond.seed) & (perquery["fraction"] == cond.fraction)
                & (perquery["noise"] == cond.noise))
    return perquery[sel]


def _measure_rows(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """A per-query file's columns, only the rows of the configured measures, in file order."""
    return frame.loc[frame["measure"].isin(labels), _PERQUERY].reset_index(drop=True)


def _dataset(edir: Path) -> str:
    """The dataset id an evaluation folder scores (its ``metrics.json`` says)."""
    return json.loads((edir / "metrics.json").read_text(encoding="utf-8"))["dataset"]


def _sha(frame: pd.DataFrame) -> str:
    return hashlib.sha256(csv_gz(frame)).hexdigest()
