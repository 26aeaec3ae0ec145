"""``evaluate(system, suite, tasks)``: run a system on a suite's tasks, write one result per task, reuse the rest."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyterrier_gradrel.benchmark._results import (
    DEFAULT_OUT,
    SCHEMA,
    BenchmarkResult,
    TaskResult,
    environment,
    package_versions,
    result_folder,
)
from pyterrier_gradrel.benchmark._suite import (
    DEFAULT_SUITE,
    DataChangedError,
    Suite,
    Task,
    check_task_data,
    load_suite,
)
from pyterrier_gradrel.benchmark._systems import System, as_system

__all__ = ["evaluate", "task_data"]

# prepared evaluators of the last few tasks, keyed by (dataset, data fingerprint, rels, depth): evaluating
# several systems in one process converts each task's qrels once
_EVALUATORS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_EVALUATOR_SLOTS = 4


def task_data(task: Task) -> tuple[Any, Any, dict[str, str]]:
    """(topics ``qid, query``, qrels ``qid, docno, label``, qid -> article) of a task."""
    import ir_datasets
    import pyterrier as pt

    import pyterrier_gradrel  # noqa: F401  (registers the gradrel datasets)

    ds = pt.get_dataset(f"irds:{task.dataset}")
    articles = {q.query_id: str(getattr(q, "article", "") or "") for q in ir_datasets.load(task.dataset).queries_iter()}
    return ds.get_topics("text"), ds.get_qrels(), articles


def _evaluators(task: Task, suite: Suite, qrels: Any) -> Any:
    from pyterrier_gradrel.benchmark._evaluate import prepare_evaluators

    key = (task.dataset, task.fingerprint, suite.rels, suite.depth)
    if key not in _EVALUATORS:
        _EVALUATORS[key] = prepare_evaluators(qrels, rels=suite.rels, depth=suite.depth)
        while len(_EVALUATORS) > _EVALUATOR_SLOTS:
            _EVALUATORS.popitem(last=False)
    _EVALUATORS.move_to_end(key)
    return _EVALUATORS[key]


def _run_task(system: System, suite: Suite, task: Task) -> tuple[dict[str, Any], Any]:
    from pyterrier_gradrel.benchmark._evaluate import score_run

    started = time.perf_counter()
    topics, qrels, articles = task_data(task)
    loaded = time.perf_counter()
    pipeline = system.factory(task.dataset)
    run = pipeline(topics)
    retrieved = time.perf_counter()
    evaluators = _evaluators(task, suite, qrels)
    prepared = time.perf_counter()
    per_query = score_run(evaluators, run)
    per_query.insert(1, "article", [articles.get(q, "") for q in per_query["qid"]])
    evaluated = time.perf_counter()
    measures = [c for c in per_query.columns if c not in ("qid", "article")]
    answered = len(set(per_query["qid"]) & set(run["qid"].astype(str))) if len(run) else 0
    record = {
        "schema": SCHEMA,
        "suite": {"name": suite.name, "version": suite.version},
        "task": {"name": task.name, "dataset": task.dataset, "group": task.group, "version": task.version,
                 "data_fingerprint": task.fingerprint, "cluster_scope": task.scope},
        "system": {"name": system.name, "fingerprint": system.fingerprint, "description": system.description,
                   "pipeline": repr(pipeline)[:2000]},
        "main_score": suite.main_score,
        "scores": {m: float(per_query[m].mean()) for m in measures},
        "queries": len(per_query),
        "answered": answered,
        "depth": suite.depth,
        "seconds": {"data": round(loaded - started, 3), "retrieval": round(retrieved - loaded, 3),
                    # evaluator_setup: converting the qrels once per task and process (0 when already prepared)
                    "evaluator_setup": round(prepared - retrieved, 3), "evaluation": round(evaluated - prepared, 3),
                    "total": round(evaluated - started, 3)},
        "versions": package_versions(),
        "environment": environment(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return record, per_query


def evaluate(
    system: Any,
    suite: str | Path = DEFAULT_SUITE,
    tasks: Iterable[str] | None = None,
    *,
    out: str | Path = DEFAULT_OUT,
    overwrite: bool = False,
    name: str | None = None,
    fingerprint: str | None = None,
    precision: str = "float32",
    threads: int | None = None,
    verbose: bool = True,
) -> BenchmarkResult:
    """Evaluate ``system`` on a suite's tasks; one self-describing result per task, existing ones reused.

    Args:
        system: A model name or folder, an encoder (``E5BiEncoder``), a baseline name (``"BM25"``,
            ``"mE5-zero-shot"``, ``"BM25>>mE5"``, ``"RRF(BM25,mE5)"``), a factory
            ``dataset_id -> pt.Transformer`` or a :class:`~pyterrier_gradrel.benchmark.System`.
        suite: Suite name or YAML path.
        tasks: Task names, dataset ids or group names (default: every task of the suite).
        out: Results root; results go to ``<out>/<suite>/<system>/<fingerprint[:16]>/<task>.json``.
        overwrite: Recompute tasks that already have a result.
        name: Display name of the system (default: the model folder's name or the factory's name).
        fingerprint: A factory's identity (default: hash of its qualified name and source).
        precision: Inference precision of an encoder given by name: ``"float32"`` (default, like the pinned scores,
            so a score does not depend on the hardware), ``"bfloat16"``, or ``"auto"`` (bf16 where native).
        threads: torch threads while encoding.
        verbose: A progress bar over tasks (with ETA).

    Returns:
        A :class:`BenchmarkResult` (``.table()``, ``.main_scores()``, ``.computed``, ``.reused``).

    Raises:
        DataChangedError: A task's data does not match the suite's fingerprint, or an existing result was
            computed on other data.

    Example:
        >>> from pyterrier_gradrel.retrieval import bm25
        >>> result = evaluate(lambda ds: bm25(ds) % 100, tasks=["xquad-r-en"], name="BM25-top100")
        >>> result.main_scores()
    """
    spec = load_suite(suite)
    chosen = spec.select(tasks)
    if not chosen:
        raise ValueError(f"no task selected from suite {spec.name!r}; known: {[t.name for t in spec.tasks]}")
    fingerprints: dict[str, str] = {}
    for task in chosen:  # refuse changed data before spending any compute
        check_task_data(task, cache=fingerprints)
    resolved = as_system(system, name=name, fingerprint=fingerprint, precision=precision, threads=threads)
    folder = result_folder(out, spec.name, resolved.slug, resolved.fingerprint)
    results: dict[str, TaskResult] = {}
    computed: list[str] = []
    reused: list[str] = []
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(chosen), desc=f"{resolved.name} on {spec.name}", unit="task")
    try:
        for task in chosen:
            path = folder / f"{task.name}.json"
            if bar is not None:
                bar.set_postfix_str(task.name)
            if path.exists() and not overwrite:
                result = TaskResult.load(path)
                if result.data_fingerprint != task.fingerprint:
                    raise DataChangedError(
                        f"{path} was computed on data {result.data_fingerprint}, but task {task.name!r} now declares "
                        f"{task.fingerprint}; it cannot be reused or compared (remove it or pass overwrite=True)")
                if result.record["system"]["fingerprint"] != resolved.fingerprint:
                    raise ValueError(f"{path} belongs to system fingerprint {result.record['system']['fingerprint']}, "
                                     f"not {resolved.fingerprint}")
                reused.append(task.name)
            else:
                record, per_query = _run_task(resolved, spec, task)
                result = TaskResult(record)
                result.write(path, per_query)
                computed.append(task.name)
            results[task.name] = result
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return BenchmarkResult(spec.name, {"name": resolved.name, "fingerprint": resolved.fingerprint,
                                       "description": resolved.description}, folder, results, computed, reused)
