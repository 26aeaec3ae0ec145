"""Benchmark mode: evaluate any system on the versioned ``gradrel-v1`` suite and rank systems with ties.

* :func:`evaluate` runs an encoder, a baseline or any ``dataset_id -> pt.Transformer`` factory on a suite's
  tasks and writes one self-describing JSON (+ per-query scores) per task; existing results are reused only
  when the system's fingerprint (for a factory: its code and packages) and the suite's hash match.
* :func:`task_pool` gives a task's documents (``docno``, ``text``) for a system to index.
* :func:`verify_folder` / :func:`load_verified` check results read from disk and recompute their scores.
* :func:`leaderboard` turns the results of one or more roots (and the reference results) into Markdown, CSV and
  a PNG, with rank intervals from a paired bootstrap over articles (systems whose intervals overlap are tied).
* :func:`check` compares a pinned system's main scores with ``<suite>.expected.yaml`` (OK / OKish / FAIL).

Importing this package is cheap; pandas, PyTerrier and torch load on first use.

Example::

    from pyterrier_gradrel import benchmark
    result = benchmark.evaluate("multilingual-e5-small", tasks=["xquad-r-en", "afriqa"])
    print(result.table())
"""
from __future__ import annotations

from pyterrier_gradrel._lazy import lazy_exports

_LAZY = {
    "evaluate": "pyterrier_gradrel.benchmark._runner:evaluate",
    "BenchmarkResult": "pyterrier_gradrel.benchmark._results:BenchmarkResult",
    "TaskResult": "pyterrier_gradrel.benchmark._results:TaskResult",
    "System": "pyterrier_gradrel.benchmark._systems:System",
    "as_system": "pyterrier_gradrel.benchmark._systems:as_system",
    "baseline_system": "pyterrier_gradrel.benchmark._systems:baseline_system",
    "Suite": "pyterrier_gradrel.benchmark._suite:Suite",
    "Task": "pyterrier_gradrel.benchmark._suite:Task",
    "DataChangedError": "pyterrier_gradrel.benchmark._suite:DataChangedError",
    "load_suite": "pyterrier_gradrel.benchmark._suite:load_suite",
    "data_fingerprint": "pyterrier_gradrel.benchmark._suite:data_fingerprint",
    "write_fingerprints": "pyterrier_gradrel.benchmark._suite:write_fingerprints",
    "leaderboard": "pyterrier_gradrel.benchmark._leaderboard:leaderboard",
    "rank_intervals": "pyterrier_gradrel.benchmark._stats:rank_intervals",
    "score_run": "pyterrier_gradrel.benchmark._evaluate:score_run",
    "prepare_evaluators": "pyterrier_gradrel.benchmark._evaluate:prepare_evaluators",
    "check": "pyterrier_gradrel.benchmark._check:check",
    "task_pool": "pyterrier_gradrel.benchmark._runner:task_pool",
    "validate_run": "pyterrier_gradrel.benchmark._runner:validate_run",
    "SystemOutputError": "pyterrier_gradrel.benchmark._runner:SystemOutputError",
    "ResultError": "pyterrier_gradrel.benchmark._results:ResultError",
    "default_results": "pyterrier_gradrel.benchmark._results:default_results",
    "reference_results": "pyterrier_gradrel.benchmark._results:reference_results",
    "verify_result": "pyterrier_gradrel.benchmark._verify:verify_result",
    "verify_folder": "pyterrier_gradrel.benchmark._verify:verify_folder",
    "load_verified": "pyterrier_gradrel.benchmark._verify:load_verified",
    "code_fingerprint": "pyterrier_gradrel.benchmark._systems:code_fingerprint",
    "load_expectations": "pyterrier_gradrel.benchmark._check:load_expectations",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
