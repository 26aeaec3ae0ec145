"""Run persistence: run keys, run folders, and the evaluation files a finished run holds.

Each condition gets a folder ``experiments/runs/<config name>/<run key>/`` holding

* ``condition.json`` – the key material, the condition (its ``TrainConfig`` included) and timings: ``train``,
  ``retrieve`` and ``total`` seconds of the call that finished it, and ``earlier_sessions``, the training seconds
  of the sessions before it when it resumed from a checkpoint (``None`` when unknown, :func:`read_condition`);
* ``train_log.json`` – the trainer's report (fine-tuned systems);
* per evaluated dataset ``eval/<dataset>/run.res.gz`` (the raw run), ``perquery.csv.gz`` and
  ``metrics.json`` (means);
* ``model/`` – only with ``keep_models: true`` (a fine-tuned mE5-small is ~0.5 GB).

A run folder restored from a results folder's run record (:mod:`._records`) has all of these but the raw runs and the
model, and its ``condition.json`` records ``restored_from``.

A condition whose run key another experiment under the same root has finished (``runs/<other>/<run key>``) is
not computed again: :func:`adopt_run` copies that run folder, recording where it came from.

The run key is ``<readable prefix>-<identity_key of the key material>`` (the one key function,
``training._config.identity_key``). For a fine-tuned condition the material is its ``TrainConfig``'s key
(τ, loss, seed, fraction, noise and every hyper-parameter) plus the base model's fingerprint, the training
and evaluated datasets (their ids, a hash of their topics + qrels and their pool's text identity), the
query limit and the run depth; for a baseline the same without training, and for the baselines BM25 makes
(``retrieval._names.BM25_BASELINES``) the BM25 engine (pyterrier-pisa's version, the resolved tokenizer) unless
it is the reference engine (``retrieval._engine.REFERENCE_BM25_ENGINE``, which keeps the keys computed before the
engine entered them). Changing any of them gives a new key, so a stale run is never reused. Measures are not part of it: metrics are recomputed from the stored
run file when the configured measures change.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.retrieval._engine import bm25_engine as installed_bm25_engine
from pyterrier_gradrel.retrieval._engine import engine_material
from pyterrier_gradrel.retrieval._names import BM25_BASELINES
from pyterrier_gradrel.training._config import identity_key

if TYPE_CHECKING:
    from pyterrier_gradrel.experiments._config import ExperimentConfig
    from pyterrier_gradrel.experiments._data import DataCache
    from pyterrier_gradrel.experiments._plan import Condition
    from pyterrier_gradrel.experiments._scenarios import Target

__all__ = ["PERQUERY_COLUMNS", "default_root", "key_material", "read_condition", "run_key"]

#: the per-query long frame: ``variant`` is the variant's label for tables (``tau=2``, ``graded``, ``""``); the values
#: analyses compute with are typed: ``tau`` (Int64; NA for the graded loss and baselines), ``loss`` (``infonce``,
#: ``graded``, ``""``), ``seed``, ``fraction``, ``noise``, and the measure's evaluation ``rel`` (Int64; NA for the
#: graded nDCG) and ``base`` (its name without ``rel``, ``R@100``), from the configured :class:`MeasureSpec`
PERQUERY_COLUMNS = ["scenario", "label", "target", "split", "role", "system", "variant", "tau", "loss", "seed",
                    "fraction", "noise", "qid", "article", "measure", "rel", "base", "value"]


#: the columns of a run folder's ``eval/<dataset>/perquery.csv.gz``
EVAL_COLUMNS = ["qid", "article", "measure", "value"]


def default_root() -> Path:
    """Where ``experiments/`` lives: ``$GRADREL_EXPERIMENTS`` or ``./experiments``."""
    return Path(os.environ.get("GRADREL_EXPERIMENTS", "experiments"))


def run_key(material: Mapping[str, object]) -> str:
    """``<prefix>-<hash>`` for a condition's key material (see the module docstring)."""
    digest = identity_key(material, length=16)
    if material["system"] == "fine-tuned":
        train = "+".join(d["dataset"].split("/")[2] for d in material["train"])
        if len(train) > 40:
            train = f"{len(material['train'])}langs"
        tau = "graded" if material["tau"] is None else f"tau{material['tau']}"
        prefix = (f"ft-{train}-{tau}-s{material['seed']}-f{material['fraction']:g}-n{material['noise']:g}")
    else:
        target = material["targets"][0]["dataset"].split("/", 1)[1].replace("/", "_")
        prefix = f"{material['system']}-{target}"
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in prefix)
    return f"{safe}-{digest}"


def key_material(cond: Condition, cfg: ExperimentConfig, data: DataCache, fingerprint: Callable[[], str],
                 bm25_engine: Callable[[], Mapping[str, str | None] | None] | None = None) -> dict[str, object]:
    """Everything that decides a condition's results (see the module docstring).

    Args:
        cond: The condition.
        cfg: Its config (query limit, run depth).
        data: Topics, qrels and pools (their fingerprints).
        fingerprint: The base model's fingerprint, asked only for conditions that use the model.
        bm25_engine: The BM25 engine, asked only for the baselines BM25 makes (default: the installed one,
            ``retrieval._engine.bm25_engine``; None from it: no engine). It enters the material unless it is the
            reference engine.
    """

    def dataset(ds_id: str) -> dict[str, object]:
        return {"dataset": ds_id, "data": data.get(ds_id).fingerprint, "pool": data.pool(ds_id)}

    material: dict[str, object] = {
        "system": cond.system,
        "targets": [{**dataset(t.dataset), "split": t.split} for t in sorted(cond.targets, key=lambda t: t.dataset)],
        "limit_queries": cfg.limit_queries,
        "depth": cfg.run_depth,
    }
    if cond.system != "BM25":
        material["model"] = fingerprint()
    if cond.system in BM25_BASELINES:
        engine = (bm25_engine or installed_bm25_engine)()
        extra = None if engine is None else engine_material(dict(engine))
        if extra is not None:
            material["bm25_engine"] = extra
    if cond.train_config is not None:
        tc = cond.train_config
        material.update(training=tc.key(), tau=cond.tau, loss=tc.loss, seed=tc.seed, fraction=tc.fraction,
                        noise=tc.noise, train=[dataset(d) for d in cond.train])
    return material


def is_done(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run (it appears in one atomic rename once complete)."""
    return (run_dir / "condition.json").is_file() and (run_dir / "eval").is_dir()


def finished_elsewhere(run_dir: Path, *, with_model: bool = False) -> Path | None:
    """A finished run with ``run_dir``'s key in another experiment's runs folder (``runs/<other>/<run key>``),
    holding its model when ``with_model``; ``None`` when there is none. A run restored from a run record is not one:
    it has no raw run to score with another experiment's measures."""
    for other in sorted(run_dir.parent.parent.glob(f"*/{run_dir.name}")):
        if (other.parent != run_dir.parent and is_done(other) and (not with_model or (other / "model").is_dir())
                and "restored_from" not in json.loads((other / "condition.json").read_text(encoding="utf-8"))):
            return other
    return None


def adopt_run(run_dir: Path, source: Path, *, with_model: bool = False) -> None:
    """Copy the finished run ``source`` of another experiment into ``run_dir`` in one atomic rename.

    Equal run keys mean equal key material, so ``source`` holds the run this condition would compute. The copy's
    ``condition.json`` records ``copied_from`` (``<experiment>/<run key>``); its model is copied only
    ``with_model``; ``source`` is left untouched.
    """
    with _atomic.atomic_path(run_dir) as tmp:
        shutil.copytree(source, tmp, ignore=lambda folder, names: [] if with_model or Path(folder) != source
                        else [n for n in names if n == "model"])
        meta = json.loads((tmp / "condition.json").read_text(encoding="utf-8"))
        meta["copied_from"] = f"{source.parent.name}/{source.name}"
        (tmp / "condition.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    shutil.rmtree(partial_dir(run_dir), ignore_errors=True)


def partial_dir(run_dir: Path) -> Path:
    """Where an unfinished run keeps its training checkpoints and, when it failed, ``error.txt``."""
    return run_dir.with_name(run_dir.name + ".partial")


def earlier_sessions_seconds(train_report: Mapping[str, object]) -> float | None:
    """Training seconds a run spent in the sessions before the one that finished it.

    0 for a baseline or a run trained in one session; ``None`` when unknown: the run resumed from a checkpoint
    written before checkpoints recorded their training time.
    """
    if not train_report:
        return 0.0
    if "seconds" in train_report:  # every session's training time, as the trainer reports it
        total = train_report["seconds"]
        return None if total is None else round(float(total) - float(train_report["seconds_this_session"]), 1)
    return 0.0 if train_report.get("steps_this_session") == train_report.get("steps") else None


def read_condition(run_dir: Path) -> dict:
    """A finished run's ``condition.json``, with ``seconds.earlier_sessions`` taken from its ``train_log.json``
    when the run was written before ``condition.json`` recorded it."""
    meta = json.loads((run_dir / "condition.json").read_text(encoding="utf-8"))
    if "earlier_sessions" not in meta["seconds"]:
        log = run_dir / "train_log.json"
        report = json.loads(log.read_text(encoding="utf-8")) if log.is_file() else {}
        meta["seconds"]["earlier_sessions"] = earlier_sessions_seconds(report)
    return meta


def eval_dir(run_dir: Path, target: Target) -> Path:
    """The evaluation folder of ``target`` in a run folder."""
    return run_dir / "eval" / target.dataset.replace("/", "__")


def write_run(run_dir: Path, cond: Condition, material: Mapping[str, object], runs: Mapping[str, pd.DataFrame], *,
              cfg: ExperimentConfig, data: DataCache, train_report: Mapping[str, object],
              model: Callable[[Path], None] | None, seconds: Mapping[str, float]) -> None:
    """Write a finished condition's run folder in one atomic rename, then drop its partial folder.

    Args:
        runs: dataset id -> the condition's run on it.
        model: writes the fine-tuned model into the folder it is given (``keep_models``), or ``None``.
        seconds: timings of this call for ``condition.json`` (``earlier_sessions`` is added from
            ``train_report``).
    """
    import pyterrier as pt

    with _atomic.atomic_path(run_dir) as tmp:
        tmp.mkdir(parents=True)
        for target in cond.targets:
            edir = eval_dir(tmp, target)
            edir.mkdir(parents=True)
            res = runs[target.dataset]
            pt.io.write_results(res, str(edir / "run.res.gz"), format="trec")
            write_metrics(edir, res, target, cfg, data)
        if train_report:
            (tmp / "train_log.json").write_text(json.dumps(train_report, indent=2, default=str), encoding="utf-8")
        if model is not None:
            model(tmp / "model")
        seconds = {**seconds, "earlier_sessions": earlier_sessions_seconds(train_report)}
        meta = {"key": material, "condition": cond.to_dict(), "describe": cond.describe(), "seconds": seconds,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "condition.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    shutil.rmtree(partial_dir(run_dir), ignore_errors=True)


def write_metrics(edir: Path, res: pd.DataFrame, target: Target, cfg: ExperimentConfig, data: DataCache) -> None:
    """Evaluate ``res`` on ``target`` with ``pt.Experiment``: ``perquery.csv.gz`` (with each query's article) and
    ``metrics.json``."""
    d = data.get(target.dataset)
    per_query = data.per_query(target.dataset, res, cfg.measures)
    articles = d.topics.set_index("qid")["article"].astype(str) if "article" in d.topics.columns else None
    per_query["article"] = per_query["qid"].map(articles) if articles is not None else ""
    write_evaluation(edir, per_query[EVAL_COLUMNS], target.dataset)


def write_evaluation(edir: Path, per_query: pd.DataFrame, dataset: str) -> None:
    """Write an evaluation folder's ``perquery.csv.gz`` (columns :data:`EVAL_COLUMNS`) and ``metrics.json`` (the
    query count and each measure's mean)."""
    _atomic.write_bytes(edir / "perquery.csv.gz", csv_gz(per_query))
    means = per_query.groupby("measure")["value"].mean().to_dict()
    _atomic.write_text(edir / "metrics.json", json.dumps(
        {"dataset": dataset, "n_queries": int(per_query["qid"].nunique()), "means": means}, indent=2))


def csv_gz(df: pd.DataFrame) -> bytes:
    """``df`` as gzipped CSV bytes without a timestamp (the same frame always gives the same bytes)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(df.to_csv(index=False).encode("utf-8"))
    return buf.getvalue()


def refresh_metrics(run_dir: Path, cond: Condition, cfg: ExperimentConfig, data: DataCache) -> None:
    """Re-evaluate a reused run from its stored run file when the configured measures changed.

    Raises:
        ValueError: the run has no stored run file (restored from a run record, :mod:`._records`).
    """
    import pyterrier as pt

    wanted = {m.label for m in cfg.measures}
    for target in cond.targets:
        edir = eval_dir(run_dir, target)
        pq = pd.read_csv(edir / "perquery.csv.gz", dtype={"qid": str, "article": str})
        if wanted <= set(pq["measure"]):
            continue
        if not (edir / "run.res.gz").is_file():
            raise ValueError(f"{run_dir} has no raw run to score {sorted(wanted - set(pq['measure']))} with (it "
                             f"was restored from a results folder's run record): delete the folder to compute the run "
                             f"again")
        res = pt.io.read_results(str(edir / "run.res.gz"))
        write_metrics(edir, res, target, cfg, data)


def load_perquery(run_dir: Path, cond: Condition, cfg: ExperimentConfig,
                  targets_by_scenario: Mapping[str, list[Target]]) -> pd.DataFrame:
    """A finished run's per-query scores as rows of the long frame (columns :data:`PERQUERY_COLUMNS`)."""
    specs = {m.label: m for m in cfg.measures}
    frames = []
    for target in cond.targets:
        pq = pd.read_csv(eval_dir(run_dir, target) / "perquery.csv.gz", dtype={"qid": str, "article": str},
                         keep_default_na=False)
        pq = pq[pq["measure"].isin(list(specs))]
        pq = pq.assign(rel=pd.array([specs[m].rel for m in pq["measure"]], dtype="Int64"),
                       base=[specs[m].base for m in pq["measure"]])
        # a baseline is shared: attach its scores to every scenario that evaluates this dataset
        scenarios = [cond.scenario] if cond.fine_tuned else [
            s for s, ts in targets_by_scenario.items() if any(t.dataset == target.dataset for t in ts)]
        for scenario in scenarios:
            t = target if cond.fine_tuned else next(
                t for t in targets_by_scenario[scenario] if t.dataset == target.dataset)
            frames.append(pq.assign(scenario=scenario, label=t.label, target=t.dataset, split=t.split, role=t.role,
                                    system=cond.system, variant=cond.variant,
                                    tau=pd.array([cond.tau] * len(pq), dtype="Int64"), loss=cond.loss or "",
                                    seed=cond.seed, fraction=cond.fraction, noise=cond.noise))
    if not frames:
        return pd.DataFrame(columns=PERQUERY_COLUMNS)
    return pd.concat(frames, ignore_index=True)[PERQUERY_COLUMNS]
