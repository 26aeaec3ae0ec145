"""Self-describing results: one JSON per (system, task) and its per-query scores.

Layout: ``<root>/<suite folder>/<system>/<system fingerprint[:16]>/<task>.json`` beside
``<task>.queries.csv.gz`` (qid, article, one column per measure, 6 significant digits). Both are written
atomically, the per-query file first, so a JSON that exists always has its per-query scores. The JSON's scores
are the means of the per-query file's values, and it records the file's sha256 and the suite's hash, so that a
reader can recompute and check everything it shows (:mod:`pyterrier_gradrel.benchmark._verify`).

Roots: :func:`default_results` (``$GRADREL_HOME/benchmark``) for the user's results, :func:`reference_results` for
the reference results that ship with the package.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pyterrier_gradrel import _atomic

__all__ = ["SCHEMA", "BenchmarkResult", "TaskResult", "default_results", "environment", "package_versions",
           "per_query_sha256", "reference_results", "result_folder", "ResultError", "round_scores"]

#: version of the result file format (2: suite hash and per-query sha256 recorded; 3: measures named by
#: :func:`pyterrier_gradrel._evaluation.label`, ``nDCG(rel=2)@10`` and ``R@100`` rather than ``nDCG@10(rel=2)`` and
#: ``R(rel=1)@100``)
SCHEMA = 3
#: significant digits of the per-query values (the JSON's scores are the means of these stored values)
DIGITS = 6
_PACKAGES = ("pyterrier-gradrel", "pyterrier", "python-terrier", "pyterrier-pisa", "pyterrier-dr", "pyterrier-alpha",
             "ir_datasets", "ir_measures", "pytrec-eval-terrier", "torch", "transformers", "numpy", "pandas")


def default_results() -> Path:
    """The default results root, ``$GRADREL_HOME/benchmark`` (independent of the current directory)."""
    from pyterrier_gradrel._paths import home

    return home() / "benchmark"


def reference_results() -> Path | None:
    """The reference results (the project's pinned systems) that come with the package, or None.

    A source checkout reads ``experiments/results/benchmark``; an installed wheel its copy, the package data
    ``pyterrier_gradrel.reference_results``.
    """
    package = Path(__file__).resolve().parents[1]
    checkout = package.parent / "experiments" / "results" / "benchmark"
    if checkout.is_dir():
        return checkout
    # an installed wheel: package data beside the package's modules (a data folder, not an importable package)
    shipped = package / "reference_results"
    return shipped if shipped.is_dir() else None


def _pyterrier_version() -> str | None:
    """The installed PyTerrier's own version (``python-terrier`` 1.x is a meta-package around ``pyterrier``)."""
    try:
        import pyterrier

        return str(pyterrier.__version__)
    except (ImportError, AttributeError):
        return None


def package_versions(extra: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """Versions of Python, the packages that decide a result and ``extra`` distributions (a system's own)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in (*_PACKAGES, *extra):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    installed = _pyterrier_version()
    if installed is not None:
        # what `import pyterrier` runs, whichever distribution installed it
        out["pyterrier"] = installed
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
    """``<out>/<suite folder>/<system>/<fingerprint[:16]>``."""
    return Path(out) / suite / system_slug / system_fingerprint[:16]


def per_query_sha256(path: str | Path) -> str:
    """``sha256:<hex>`` of a per-query file's CSV text (decompressed, so recompressing it keeps the hash)."""
    with gzip.open(path, "rb") as handle:
        return "sha256:" + hashlib.sha256(handle.read()).hexdigest()


def _csv_bytes(per_query: pd.DataFrame) -> bytes:
    return per_query.to_csv(index=False, float_format=f"%.{DIGITS}g").encode("utf-8")


def round_scores(per_query: pd.DataFrame) -> pd.DataFrame:
    """The per-query frame with its measure columns as they read back from the file (``DIGITS`` significant)."""
    text = _csv_bytes(per_query)
    return pd.read_csv(io.BytesIO(text), dtype={"qid": str, "article": str}, keep_default_na=False)


class ResultError(ValueError):
    """A result file is missing, malformed, or disagrees with what it claims (the message names the file)."""


@dataclass
class TaskResult:
    """One system's result on one task.

    Attributes:
        record: The JSON record (suite, task, data fingerprint, system, scores, versions, timings).
        path: Where the JSON lies.
        verified: Measure -> mean recomputed from the per-query file, once the result was verified
            (:func:`pyterrier_gradrel.benchmark._verify.verify_result`); None before.
    """

    record: dict[str, Any]
    path: Path | None = None
    _per_query: pd.DataFrame | None = field(default=None, repr=False)
    verified: dict[str, float] | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.record["task"]["name"]

    @property
    def data_fingerprint(self) -> str:
        return self.record["task"]["data_fingerprint"]

    @property
    def scores(self) -> dict[str, float]:
        """Measure -> mean over the task's queries (recomputed from the per-query file once verified)."""
        return dict(self.verified if self.verified is not None else self.record["scores"])

    @property
    def main_score(self) -> float:
        return float(self.scores[self.record["main_score"]])

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

    @property
    def system(self) -> dict[str, Any]:
        return self.record["system"]

    def write(self, path: Path, per_query: pd.DataFrame) -> None:
        """Write the per-query scores, then the JSON (with the file's sha256), each atomically.

        ``per_query`` must already hold the stored precision (:func:`round_scores`), so that the JSON's means are
        exactly those a reader recomputes.
        """
        self.path = Path(path)
        self._per_query = per_query
        with _atomic.atomic_path(self.queries_path) as tmp:
            with gzip.GzipFile(tmp, "wb", mtime=0) as handle:
                handle.write(_csv_bytes(per_query))
        self.record["per_query"] = {"file": self.queries_path.name, "sha256": per_query_sha256(self.queries_path)}
        self.write_record()

    def write_record(self) -> None:
        """Write the JSON record atomically (to :attr:`path`)."""
        assert self.path is not None
        _atomic.write_text(self.path, json.dumps(self.record, indent=2, ensure_ascii=False, default=str) + "\n")

    @classmethod
    def load(cls, path: str | Path, *, schema: int | None = SCHEMA) -> TaskResult:
        """Read a result JSON, unverified (see :func:`pyterrier_gradrel.benchmark._verify.load_verified`).

        Args:
            path: The JSON file.
            schema: The schema it must have (None: any).
        """
        path = Path(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultError(f"{path}: not a readable benchmark result ({exc})") from exc
        if not isinstance(record, dict):
            raise ResultError(f"{path}: a result must be a JSON object")
        if schema is not None and record.get("schema") != schema:
            hint = (" (an earlier schema: `gradrel benchmark upgrade <results root>` checks it and brings it to "
                    f"schema {SCHEMA})" if record.get("schema") in (1, 2) else "")
            raise ResultError(f"{path}: result schema {record.get('schema')!r}, expected {schema}{hint}")
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
        notes: Things the caller should know, one line each (e.g. results of the same factory under the
            earlier fingerprint scheme, which are not reused).
    """

    suite: str
    system: dict[str, Any]
    folder: Path
    results: dict[str, TaskResult]
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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
