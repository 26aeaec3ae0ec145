"""Self-describing results: one JSON per (system, task) and its per-query scores.

Layout: ``<out>/<suite>/<system>/<system fingerprint[:16]>/<task>.json`` beside ``<task>.queries.csv.gz``
(qid, article, one column per measure). Both are written atomically, the per-query file first, so a JSON
that exists always has its per-query scores.
"""
from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pyterrier_gradrel import _atomic

__all__ = ["SCHEMA", "BenchmarkResult", "TaskResult", "environment", "package_versions", "result_folder"]

#: version of the result file format
SCHEMA = 1
DEFAULT_OUT = Path("experiments/results/benchmark")
_PACKAGES = ("pyterrier-gradrel", "python-terrier", "pyterrier-pisa", "pyterrier-dr", "pyterrier-alpha",
             "ir_datasets", "ir_measures", "pytrec-eval-terrier", "torch", "transformers", "numpy", "pandas")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that decide a result."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def environment() -> dict[str, Any]:
    """Machine facts: platform, processor and (when torch is loaded) its thread count."""
    env: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                           "processor": platform.processor() or None}
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = bool(torch.cuda.is_available())
    return env


def result_folder(out: str | Path, suite: str, system_slug: str, system_fingerprint: str) -> Path:
    """``<out>/<suite>/<system>/<fingerprint[:16]>``."""
    return Path(out) / suite / system_slug / system_fingerprint[:16]


@dataclass
class TaskResult:
    """One system's result on one task.

    Attributes:
        record: The JSON record (suite, task, data fingerprint, system, scores, versions, timings).
        path: Where the JSON lies.
    """

    record: dict[str, Any]
    path: Path | None = None
    _per_query: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.record["task"]["name"]

    @property
    def data_fingerprint(self) -> str:
        return self.record["task"]["data_fingerprint"]

    @property
    def scores(self) -> dict[str, float]:
        """Measure -> mean over the task's queries."""
        return dict(self.record["scores"])

    @property
    def main_score(self) -> float:
        return float(self.record["scores"][self.record["main_score"]])

    @property
    def queries_path(self) -> Path:
        assert self.path is not None
        return self.path.with_name(f"{self.task}.queries.csv.gz")

    def per_query(self) -> pd.DataFrame:
        """The per-query scores (qid, article and one column per measure)."""
        if self._per_query is None:
            self._per_query = pd.read_csv(self.queries_path, dtype={"qid": str, "article": str},
                                          keep_default_na=False)
        return self._per_query

    def write(self, path: Path, per_query: pd.DataFrame) -> None:
        """Write the per-query scores, then the JSON, each atomically."""
        self.path = Path(path)
        self._per_query = per_query
        with _atomic.atomic_path(self.queries_path) as tmp:
            per_query.to_csv(tmp, index=False, float_format="%.6g", compression={"method": "gzip", "mtime": 0})
        _atomic.write_text(self.path, json.dumps(self.record, indent=2, ensure_ascii=False, default=str) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TaskResult:
        """Read a result JSON (its per-query scores are read on first use)."""
        path = Path(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable benchmark result ({exc})") from exc
        if record.get("schema") != SCHEMA:
            raise ValueError(f"{path}: result schema {record.get('schema')!r}, expected {SCHEMA}")
        return cls(record, path)


@dataclass
class BenchmarkResult:
    """What :func:`pyterrier_gradrel.benchmark.evaluate` returns.

    Attributes:
        suite: Suite name.
        system: The system's name, fingerprint and description.
        folder: Where its results lie.
        results: Task name -> :class:`TaskResult`, in suite order.
        computed: Tasks evaluated by this call.
        reused: Tasks whose existing results were reused.
    """

    suite: str
    system: dict[str, Any]
    folder: Path
    results: dict[str, TaskResult]
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per task: ``task``, ``group`` and every measure (means over queries)."""
        rows = [{"task": name, "group": r.record["task"]["group"], **r.scores} for name, r in self.results.items()]
        return pd.DataFrame(rows)

    def main_scores(self) -> dict[str, float]:
        """Task -> main score."""
        return {name: r.main_score for name, r in self.results.items()}

    def __repr__(self) -> str:
        return (f"BenchmarkResult(suite={self.suite!r}, system={self.system.get('name')!r}, "
                f"tasks={len(self.results)}, computed={len(self.computed)}, reused={len(self.reused)})")
