"""``evaluate(system, suite, tasks)``: run a system on a suite's tasks, write one result per task, reuse the rest."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyterrier_gradrel.benchmark._results import (
    SCHEMA,
    BenchmarkResult,
    ResultError,
    TaskResult,
    default_results,
    environment,
    package_versions,
    result_folder,
    round_scores,
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

__all__ = ["SystemOutputError", "earlier_results", "evaluate", "task_data", "task_pool", "validate_run"]


class SystemOutputError(ValueError):
    """A system's factory or run does not meet the factory contract (names the system and task)."""

# prepared evaluators of the last few tasks, keyed by (dataset, data fingerprint, rels, depth): evaluating
# several systems in one process converts each task's qrels once
_EVALUATORS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_EVALUATOR_SLOTS = 4


def task_data(task: Task) -> tuple[Any, Any, dict[str, str]]:
    """(topics ``qid, query``, qrels ``qid, docno, label``, qid -> article) of a task."""
    import pyterrier as pt

    import pyterrier_gradrel  # noqa: F401  (registers the gradrel datasets)
    from pyterrier_gradrel.benchmark._verify import task_articles

    ds = pt.get_dataset(f"irds:{task.dataset}")
    return ds.get_topics("text"), ds.get_qrels(), task_articles(task)


def task_pool(dataset_id: str) -> Any:
    """The document pool of a task, to index: a DataFrame ``docno, text`` in the dataset's order.

    Args:
        dataset_id: The id a system factory receives (``"gradrel/xquad-r/de/test"``; an ``irds:`` prefix is
            accepted), or a task name of the default suite (``"xquad-r-de"``).

    Example::

        def factory(dataset_id):
            pool = benchmark.task_pool(dataset_id)
            index = MyIndex(pool["docno"], pool["text"])
            return MyRetriever(index, num_results=100)
    """
    import ir_datasets
    import pandas as pd

    import pyterrier_gradrel  # noqa: F401  (registers the gradrel datasets)

    dataset = _dataset_id(dataset_id)
    rows = [(d.doc_id, d.text) for d in ir_datasets.load(dataset).docs_iter()]
    return pd.DataFrame(rows, columns=["docno", "text"])


def _dataset_id(dataset_id: str) -> str:
    dataset = dataset_id.removeprefix("irds:")
    if "/" not in dataset:
        dataset = load_suite(DEFAULT_SUITE).task(dataset).dataset
    return dataset


_POOLS: OrderedDict[str, frozenset[str]] = OrderedDict()


def _pool_docnos(dataset: str) -> frozenset[str]:
    if dataset not in _POOLS:
        import ir_datasets

        _POOLS[dataset] = frozenset(d.doc_id for d in ir_datasets.load(dataset).docs_iter())
        while len(_POOLS) > _EVALUATOR_SLOTS:
            _POOLS.popitem(last=False)
    _POOLS.move_to_end(dataset)
    return _POOLS[dataset]


def validate_run(run: Any, *, system: str, task: Task) -> None:
    """Refuse a run that cannot be scored as it stands.

    Raises:
        SystemOutputError: Naming the system and task: missing ``qid``/``docno`` or ``score``/``rank`` columns, a
            (qid, docno) pair returned twice, or docnos that are not in the task's pool.
    """
    import pandas as pd

    where = f"system {system!r} on task {task.name!r} ({task.dataset})"
    if not isinstance(run, pd.DataFrame):
        raise SystemOutputError(f"{where} returned a {type(run).__name__}, expected a DataFrame (qid, docno, score or rank)")
    if not {"qid", "docno"} <= set(run.columns) or not {"score", "rank"} & set(run.columns):
        raise SystemOutputError(f"{where} returned columns {list(run.columns)}, expected qid, docno and score or rank")
    if not len(run):
        return
    pairs = run[["qid", "docno"]].astype(str)
    repeated = pairs.duplicated()
    if repeated.any():
        first = pairs[repeated].iloc[0]
        raise SystemOutputError(f"{where} returned {int(repeated.sum())} duplicate (qid, docno) pairs, e.g. "
                         f"({first['qid']!r}, {first['docno']!r}); each document may be ranked once per query")
    outside = sorted(set(pairs["docno"].unique()) - _pool_docnos(task.dataset))
    if outside:
        raise SystemOutputError(f"{where} returned {len(outside)} docnos that are not in the task's pool, e.g. "
                         f"{outside[:3]}; rank documents of benchmark.task_pool({task.dataset!r})")


def _evaluators(task: Task, suite: Suite, qrels: Any) -> Any:
    from pyterrier_gradrel.benchmark._evaluate import prepare_evaluators

    key = (task.dataset, task.fingerprint, suite.hash)
    if key not in _EVALUATORS:
        _EVALUATORS[key] = prepare_evaluators(qrels, suite)
        while len(_EVALUATORS) > _EVALUATOR_SLOTS:
            _EVALUATORS.popitem(last=False)
    _EVALUATORS.move_to_end(key)
    return _EVALUATORS[key]


def _run_task(system: System, suite: Suite, task: Task) -> tuple[dict[str, Any], Any]:
    from pyterrier_gradrel.benchmark._evaluate import score_run

    started = time.perf_counter()
    topics, qrels, articles = task_data(task)
    loaded = time.perf_counter()
    pipeline = _pipeline(system, task)
    run = pipeline(topics)
    validate_run(run, system=system.name, task=task)
    retrieved = time.perf_counter()
    evaluators = _evaluators(task, suite, qrels)
    prepared = time.perf_counter()
    per_query = score_run(evaluators, run)
    per_query.insert(1, "article", [articles.get(q, "") for q in per_query["qid"]])
    # the JSON's means are those of the stored per-query values, so a reader recomputes them exactly
    per_query = round_scores(per_query)
    evaluated = time.perf_counter()
    measures = [c for c in per_query.columns if c not in ("qid", "article")]
    answered = len(set(per_query["qid"]) & set(run["qid"].astype(str))) if len(run) else 0
    record = {
        "schema": SCHEMA,
        "suite": {"name": suite.name, "version": suite.version, "hash": suite.hash},
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
        "versions": package_versions(tuple(system.description.get("packages") or ())),
        "environment": environment(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return record, per_query


def _pipeline(system: System, task: Task) -> Any:
    """``system.factory(task.dataset)``, checked to be a ``pt.Transformer``."""
    import pyterrier as pt

    pipeline = system.factory(task.dataset)
    if not isinstance(pipeline, pt.Transformer):
        raise SystemOutputError(f"the factory of system {system.name!r} returned {type(pipeline).__name__} "
                        f"({repr(pipeline)[:80]}) for {task.dataset!r}; expected a pt.Transformer "
                        "(a factory is dataset_id -> pt.Transformer)")
    return pipeline


def _reusable(path: Path, task: Task, suite: Suite, system: System) -> TaskResult:
    """The existing result at ``path``, verified to be this suite's, this task data's and this system's."""
    from pyterrier_gradrel.benchmark._verify import verify_result

    result = TaskResult.load(path)
    if result.data_fingerprint != task.fingerprint:
        raise DataChangedError(
            f"{path} was computed on data {result.data_fingerprint}, but task {task.name!r} now declares "
            f"{task.fingerprint}; it cannot be reused or compared (remove it or recompute it with --overwrite, overwrite=True in Python)")
    if result.record["system"]["fingerprint"] != system.fingerprint:
        raise ResultError(f"{path} belongs to system fingerprint {result.record['system']['fingerprint']}, "
                          f"not {system.fingerprint}")
    return verify_result(result, suite)


def earlier_results(system: System, suite: Suite, roots: Iterable[str | Path], *,
                    fingerprint: str | None = None) -> list[str]:
    """Notes on result folders of ``system`` made under the earlier factory fingerprint scheme, in ``roots``.

    A factory's fingerprint now covers its module, local imports and package versions
    (:func:`~pyterrier_gradrel.benchmark._systems.factory_system`); results written before record the earlier
    scheme (:func:`~pyterrier_gradrel.benchmark._systems.earlier_scheme`) and sit in the folder of the
    fingerprint that scheme gives. They are never reused: the earlier fingerprint covers only the factory
    function's source (or the given version string). A note names each such folder (under any system name) that
    exists, so that a new folder beside it is explained.

    Returns:
        One line per folder, empty for other kinds of system or when no such folder exists.
    """
    from pyterrier_gradrel.benchmark._systems import earlier_fingerprint, earlier_scheme

    if system.description.get("kind") != "factory":
        return []
    old = earlier_fingerprint(system.factory, fingerprint)
    if old is None or old == system.fingerprint:
        return []
    notes = []
    for root in dict.fromkeys(Path(r).resolve() for r in roots):
        for folder in sorted((root / suite.folder_name).glob(f"*/{old[:16]}")):
            paths = sorted(folder.glob("*.json"))
            try:
                record = TaskResult.load(paths[0], schema=None).record if paths else {}
            except ResultError:
                continue
            recorded = record.get("system") if isinstance(record.get("system"), dict) else {}
            scheme = earlier_scheme(recorded.get("description"))
            if scheme is None or recorded.get("fingerprint") != old:
                continue
            notes.append(f"{folder}: {len(paths)} results of this factory's function under the {scheme}; not "
                         f"reused: this system's fingerprint is {system.fingerprint[:16]}")
    return notes


def evaluate(
    system: Any,
    suite: str | Path = DEFAULT_SUITE,
    tasks: Iterable[str] | None = None,
    *,
    out: str | Path | None = None,
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
        out: Results root (default ``$GRADREL_HOME/benchmark``); results go to
            ``<out>/<suite folder>/<system>/<fingerprint[:16]>/<task>.json``, where the suite folder is the suite's
            name, or ``<name>@<hash[:12]>`` for a suite whose definition differs from the registered one.
        overwrite: Recompute tasks that already have a result.
        name: Display name of the system (default: the model folder's name or the factory's name).
        fingerprint: A version string of a factory's, added to its code fingerprint (the source of its module and
            of the local modules it imports, and the versions of the distributions it imports).
        precision: Inference precision of an encoder given by name: ``"float32"`` (default, like the pinned scores,
            so a score does not depend on the hardware), ``"bfloat16"``, or ``"auto"`` (bf16 where native).
        threads: torch threads while encoding.
        verbose: A progress bar over tasks (with ETA).

    Returns:
        A :class:`BenchmarkResult` (``.table()``, ``.main_scores()``, ``.computed``, ``.reused``; ``.notes`` names
        folders of the same factory under the earlier fingerprint scheme in ``out`` or the reference results,
        :func:`earlier_results`).

    Raises:
        DataChangedError: A task's data does not match the suite's fingerprint, or an existing result was
            computed on other data.
        ResultError: An existing result fails verification (another suite hash, scores that its per-query
            file does not reproduce, ...).
        SystemOutputError: A factory returned something that is not a ``pt.Transformer``, or a run repeats
            (qid, docno) pairs or returns docnos outside the task's pool.

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
    folder = result_folder(out if out is not None else default_results(), spec.folder_name, resolved.slug,
                           resolved.fingerprint)
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
                result = _reusable(path, task, spec, resolved)
                reused.append(task.name)
            else:
                record, per_query = _run_task(resolved, spec, task)
                result = TaskResult(record)
                result.write(path, per_query)
                result.verified = dict(record["scores"])
                computed.append(task.name)
            results[task.name] = result
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    from pyterrier_gradrel.benchmark._results import reference_results

    root = out if out is not None else default_results()
    reference = reference_results()
    notes = earlier_results(resolved, spec, [root] + ([reference] if reference is not None else []),
                            fingerprint=fingerprint)
    return BenchmarkResult(spec.name, {"name": resolved.name, "fingerprint": resolved.fingerprint,
                                       "description": resolved.description}, folder, results, computed, reused,
                           notes)
