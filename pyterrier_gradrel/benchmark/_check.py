"""Pinned reproductions: expected main scores in YAML, checked as OK / OKish / FAIL with a stated tolerance.

The expectations of suite ``<name>`` lie beside it in ``datasets_registry/suites/<name>.expected.yaml``::

    suite: gradrel-v1
    measure: nDCG@10
    tolerance: {ok: 0.00005, okish: 0.005}
    systems:
      BM25:                      # a system spec for evaluate(): baseline name, model name or folder
        scores: {xquad-r-en: 0.6539, xquad-r-de: null}   # null: not pinned yet

Status per task: ``OK`` when |measured − expected| ≤ ``ok`` (equal to 4 decimals), ``OKish`` when ≤ ``okish``
(e.g. another BLAS or CPU), ``FAIL`` beyond, ``NOT PINNED`` when the expectation is null.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pyterrier_gradrel.benchmark._suite import DEFAULT_SUITE, suite_path

__all__ = ["Expectations", "check_scores", "expectations_path", "load_expectations"]

STATUSES = ("OK", "OKish", "FAIL", "NOT PINNED", "NOT RUN")


@dataclass(frozen=True)
class Expectations:
    """Parsed expectations.

    Attributes:
        suite: The suite they pin.
        measure: The pinned measure (the suite's main score).
        ok: Tolerance for OK.
        okish: Tolerance for OKish.
        systems: System spec -> {"scores": task -> expected or None, "precision": ...}.
        path: The YAML file.
    """

    suite: str
    measure: str
    ok: float
    okish: float
    systems: dict[str, dict[str, Any]]
    path: Path | None = None

    def scores(self, system: str) -> dict[str, float | None]:
        """Task -> expected score of ``system`` (None: not pinned)."""
        if system not in self.systems:
            raise KeyError(f"{self.path}: no expectations for system {system!r}; pinned: {list(self.systems)}")
        return dict(self.systems[system].get("scores") or {})


def expectations_path(suite: str | Path = DEFAULT_SUITE) -> Path:
    """``<suite>.expected<suffix>`` beside the suite's YAML (``x.yml`` -> ``x.expected.yml``)."""
    path = suite_path(suite)
    return path.with_name(path.stem + ".expected" + path.suffix)


def load_expectations(path: str | Path | None = None, *, suite: str | Path = DEFAULT_SUITE) -> Expectations:
    """Read an expectations YAML (default: the suite's own).

    Raises:
        ValueError: Missing keys, tolerances that are not 0 <= ok <= okish, or (when the file pins the suite
            ``suite`` names) a task key that is not one of that suite's tasks; the message names the file.
    """
    from pyterrier_gradrel._yaml import load_file
    from pyterrier_gradrel.benchmark._suite import load_suite

    path = Path(path) if path is not None else expectations_path(suite)
    raw = load_file(path) or {}
    missing = [k for k in ("suite", "measure", "tolerance", "systems") if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    ok, okish = float(raw["tolerance"]["ok"]), float(raw["tolerance"]["okish"])
    if not 0 <= ok <= okish:
        raise ValueError(f"{path}: tolerances must satisfy 0 <= ok <= okish, got ok={ok}, okish={okish}")
    systems = {str(k): dict(v or {}) for k, v in (raw["systems"] or {}).items()}
    exp = Expectations(str(raw["suite"]), str(raw["measure"]), ok, okish, systems, path)
    spec = load_suite(suite)
    if spec.name == exp.suite:  # another suite's file is refused by check(), which names both suites
        check_task_keys(exp, [t.name for t in spec.tasks])
    return exp


def check_task_keys(exp: Expectations, tasks: Iterable[str]) -> None:
    """Refuse expectations that pin a task the suite does not have (a misspelled key would pin nothing).

    Raises:
        ValueError: Naming the file, the system and the unknown task keys.
    """
    known = list(tasks)
    for system, entry in exp.systems.items():
        unknown = [str(t) for t in (entry.get("scores") or {}) if str(t) not in known]
        if unknown:
            raise ValueError(f"{exp.path}: system {system!r} pins unknown tasks {unknown}; suite {exp.suite}'s "
                             f"tasks are {known}")


def status(measured: float | None, expected: float | None, *, ok: float, okish: float) -> str:
    """OK / OKish / FAIL / NOT PINNED / NOT RUN for one task."""
    if expected is None:
        return "NOT PINNED"
    if measured is None:
        return "NOT RUN"
    diff = abs(measured - expected)
    # a hair of slack for the float representation of the tolerance itself
    if diff <= ok + 1e-12:
        return "OK"
    if diff <= okish + 1e-12:
        return "OKish"
    return "FAIL"


def check_scores(measured: Mapping[str, float], expected: Mapping[str, float | None], *, ok: float, okish: float,
                 tasks: Iterable[str] | None = None) -> pd.DataFrame:
    """Compare measured and expected scores per task.

    Returns:
        ``task, expected, measured, diff, status`` for each task in ``tasks`` (default: the expected ones).
    """
    rows = []
    for task in (list(tasks) if tasks is not None else list(expected)):
        exp = expected.get(task)
        got = measured.get(task)
        rows.append({"task": task, "expected": exp, "measured": got,
                     "diff": None if exp is None or got is None else got - exp,
                     "status": status(got, exp, ok=ok, okish=okish)})
    return pd.DataFrame(rows, columns=["task", "expected", "measured", "diff", "status"])


def checked_any(table: pd.DataFrame) -> bool:
    """Whether a :func:`check_scores` table compared at least one task (OK, OKish or FAIL)."""
    return bool(table["status"].isin(("OK", "OKish", "FAIL")).any())


def check(system: str, suite: str | Path = DEFAULT_SUITE, tasks: Iterable[str] | None = None, *,
          expectations: str | Path | Expectations | None = None, out: str | Path | None = None,
          pinned_only: bool = True, precision: str | None = None, verbose: bool = True) -> pd.DataFrame:
    """Evaluate a pinned system (reusing existing results) and compare its main scores with the expectations.

    Args:
        system: A system spec named in the expectations (``"BM25"``, ``"mE5-zero-shot"``).
        suite: The suite.
        tasks: Restrict to these tasks / groups (default: every task of the suite).
        expectations: The YAML (path or parsed); default: the suite's ``.expected.yaml``.
        out: Results root (default: ``$GRADREL_HOME/benchmark``). Reused results are verified and their scores
            recomputed from their per-query files.
        pinned_only: Evaluate only tasks with a pinned score (others are reported NOT PINNED, not run).
        precision: Encoder precision to evaluate in (default: the one the expectations pin for the system,
            else ``"float32"``, :func:`~pyterrier_gradrel.benchmark.evaluate`'s default); e.g. ``"bfloat16"``
            checks that bf16 inference stays within the tolerance.
        verbose: Progress bar.

    Returns:
        ``task, expected, measured, diff, status`` (see :func:`check_scores`).
    """
    from pyterrier_gradrel.benchmark._runner import evaluate
    from pyterrier_gradrel.benchmark._suite import load_suite

    exp = expectations if isinstance(expectations, Expectations) else load_expectations(expectations, suite=suite)
    spec = load_suite(suite)
    if exp.suite != spec.name or exp.measure != spec.main_score:
        raise ValueError(f"{exp.path} pins {exp.measure} of suite {exp.suite}, not {spec.main_score} of {spec.name}")
    check_task_keys(exp, [t.name for t in spec.tasks])
    expected = exp.scores(system)
    names = [t.name for t in spec.select(tasks)]
    run = [t for t in names if expected.get(t) is not None] if pinned_only else names
    measured: dict[str, float] = {}
    if run:
        if precision is None:
            precision = exp.systems[system].get("precision", "float32")
        result = evaluate(system, spec.path or suite, run, out=out, precision=precision,
                          verbose=verbose)
        measured = result.main_scores()
    return check_scores(measured, expected, ok=exp.ok, okish=exp.okish, tasks=names)
