"""Results are verified, not believed: every score read is recomputed from its per-query file.

A result (``<task>.json`` + ``<task>.queries.csv.gz``) is accepted only when

* its schema is complete and its suite hash is the suite's (:attr:`Suite.hash`): same tasks, data
  fingerprints, measures and depth;
* its task, data fingerprint, main score and depth are the suite's, and its place on disk
  (``<system>/<fingerprint[:16]>/<task>.json``) matches the system it names;
* its per-query file exists, hashes to the sha256 the JSON records, has exactly the suite's measure columns
  and exactly one row per query of the task (with the task's article per query), every value finite in [0, 1];
* every stored mean equals the mean recomputed from the per-query file (within :data:`TOLERANCE`).

Anything else raises :class:`ResultError` naming the file. What a result cannot prove: that its per-query values
came from a real run of the system it names (the runs are not stored); a consistent forgery of the per-query
file, its hash and its means passes. The task's queries come from the dataset itself (ir_datasets), so
verification needs the task's data, not its pool.
"""
from __future__ import annotations

import gzip
import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.benchmark._results import (
    SCHEMA,
    ResultError,
    TaskResult,
    per_query_sha256,
)
from pyterrier_gradrel.benchmark._suite import Suite, Task

__all__ = ["TOLERANCE", "VerifyReport", "legacy_names", "load_verified", "task_articles", "upgrade_folder",
           "verify_folder", "verify_result"]

#: largest accepted |stored mean - recomputed mean|: per-query values are stored with 6 significant digits,
#: so the mean of the stored values is within 5e-7 of the mean of the exact ones (results written before the
#: means were taken from the stored values)
TOLERANCE = 1e-6
_RECORD_KEYS = {"schema": (), "suite": ("name", "version", "hash"),
                "task": ("name", "dataset", "group", "version", "data_fingerprint"),
                "system": ("name", "fingerprint"), "main_score": (), "scores": (), "queries": (), "depth": (),
                "per_query": ("file", "sha256")}

#: fields a result names things with (folders, files, hashes): anything but a string is refused, not crashed on
_STRING_FIELDS = (("suite", "hash"), ("task", "name"), ("system", "name"), ("system", "fingerprint"),
                  ("per_query", "file"), ("per_query", "sha256"))


@lru_cache(maxsize=64)
def _articles(dataset: str, fingerprint: str | None) -> tuple[tuple[str, str], ...]:
    import ir_datasets

    import pyterrier_gradrel  # noqa: F401  (registers the gradrel datasets)

    return tuple((str(q.query_id), str(getattr(q, "article", "") or "")) for q in ir_datasets.load(dataset).queries_iter())


def task_articles(task: Task) -> dict[str, str]:
    """qid -> article of every query of the task, read from the dataset (cached per data fingerprint)."""
    return dict(_articles(task.dataset, task.fingerprint))


def _slug(name: str) -> str:
    from pyterrier_gradrel.benchmark._systems import slug

    return slug(name)


def _check_schema(path: Path, record: dict[str, Any]) -> None:
    if record.get("schema") != SCHEMA:
        hint = (" (an earlier schema: `gradrel benchmark upgrade <results root>` checks it and brings it to "
                f"schema {SCHEMA})" if record.get("schema") in (1, 2) else "")
        raise ResultError(f"{path}: result schema {record.get('schema')!r}, expected {SCHEMA}{hint}")
    for key, inner in _RECORD_KEYS.items():
        if key not in record:
            raise ResultError(f"{path}: missing key {key!r} (a result has {sorted(_RECORD_KEYS)})")
        missing = [k for k in inner if not isinstance(record[key], dict) or k not in record[key]]
        if missing:
            raise ResultError(f"{path}: {key!r} lacks {missing}")
    for key, inner in _STRING_FIELDS:
        value = record[key][inner]
        if not isinstance(value, str) or not value:
            raise ResultError(f"{path}: {key}.{inner} must be a non-empty string, got {value!r}")


def _check_identity(path: Path, record: dict[str, Any], suite: Suite) -> Task:
    """The suite's task the result is about, after checking suite hash, task, place on disk."""
    if record["suite"]["hash"] != suite.hash:
        raise ResultError(f"{path}: scored under suite hash {record['suite']['hash']} ({record['suite']['name']} "
                          f"version {record['suite']['version']}), but {suite.name} is {suite.hash}: another suite "
                          "definition (tasks, fingerprints, measures or depth); it is not a result of this suite")
    name = record["task"]["name"]
    try:
        task = suite.task(name)
    except KeyError:
        raise ResultError(f"{path}: task {name!r} is not a task of suite {suite.name}") from None
    declared = {"dataset": task.dataset, "group": task.group, "version": task.version,
                "data_fingerprint": task.fingerprint}
    wrong = {k: record["task"][k] for k, v in declared.items() if record["task"][k] != v}
    if wrong:
        raise ResultError(f"{path}: task fields {wrong} differ from suite {suite.name}'s {declared}")
    if path.name != f"{name}.json":
        raise ResultError(f"{path}: holds task {name!r}, expected the file name {name}.json")
    system = record["system"]
    if path.parent.name != str(system["fingerprint"])[:16] or path.parent.parent.name != _slug(system["name"]):
        raise ResultError(f"{path}: system {system['name']!r} with fingerprint {system['fingerprint']} belongs in "
                          f"{_slug(system['name'])}/{str(system['fingerprint'])[:16]}/, not "
                          f"{path.parent.parent.name}/{path.parent.name}/")
    if record["main_score"] != suite.main_score or record["depth"] != suite.depth:
        raise ResultError(f"{path}: main score {record['main_score']!r} at depth {record['depth']!r}, but suite "
                          f"{suite.name} has {suite.main_score!r} at depth {suite.depth}")
    return task


def _finite_unit(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _check_stored_scores(path: Path, record: dict[str, Any], measures: list[str]) -> None:
    scores = record["scores"]
    if not isinstance(scores, dict) or sorted(scores) != sorted(measures):
        raise ResultError(f"{path}: scores must have exactly the measures {measures}, got "
                          f"{sorted(scores) if isinstance(scores, dict) else scores!r}")
    bad = {m: v for m, v in scores.items() if not _finite_unit(v)}
    if bad:
        raise ResultError(f"{path}: scores must be finite numbers in [0, 1], got {bad}")


def _read_per_query(result: TaskResult, measures: list[str]) -> pd.DataFrame:
    path, queries = result.path, result.queries_path
    if result.record["per_query"]["file"] != queries.name:
        raise ResultError(f"{path}: names per-query file {result.record['per_query']['file']!r}, expected {queries.name}")
    if not queries.is_file():
        raise ResultError(f"{queries}: missing (the per-query scores of {path})")
    try:
        digest = per_query_sha256(queries)
        frame = pd.read_csv(queries, dtype={"qid": str, "article": str}, keep_default_na=False)
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise ResultError(f"{queries}: not a readable per-query file ({exc})") from exc
    if digest != result.record["per_query"]["sha256"]:
        raise ResultError(f"{queries}: its content hashes to {digest}, but {path} records "
                          f"{result.record['per_query']['sha256']}: the per-query scores were changed")
    expected = ["qid", "article", *measures]
    if list(frame.columns) != expected:
        raise ResultError(f"{queries}: columns {list(frame.columns)}, expected {expected}")
    return frame


def _check_per_query(queries: Path, frame: pd.DataFrame, articles: dict[str, str], measures: list[str]) -> None:
    qids = frame["qid"].tolist()
    duplicated = sorted({q for q in qids if qids.count(q) > 1}) if len(set(qids)) != len(qids) else []
    missing = sorted(set(articles) - set(qids))
    extra = sorted(set(qids) - set(articles))
    if duplicated or missing or extra:
        raise ResultError(f"{queries}: must hold each of the task's {len(articles)} queries once; "
                          f"{len(missing)} missing {missing[:3]}, {len(extra)} not in the task {extra[:3]}, "
                          f"{len(duplicated)} repeated {duplicated[:3]}")
    wrong = [q for q, a in zip(frame["qid"], frame["article"], strict=True) if articles[q] != a]
    if wrong:
        raise ResultError(f"{queries}: articles differ from the task's for {len(wrong)} queries, e.g. {wrong[0]!r} "
                          f"({frame.loc[frame['qid'] == wrong[0], 'article'].iloc[0]!r}, expected {articles[wrong[0]]!r})")
    values = frame[measures].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~values.apply(lambda col: col.between(0, 1))
    if bad.to_numpy().any():
        col = bad.any().idxmax()
        row = int(bad[col].to_numpy().argmax())
        raise ResultError(f"{queries}: {col} of query {frame['qid'].iloc[row]!r} is {frame[col].iloc[row]!r}, "
                          "expected a finite number in [0, 1]")


def verify_result(result: TaskResult, suite: Suite) -> TaskResult:
    """Check ``result`` against ``suite`` and its per-query file; set its scores to the recomputed means.

    Returns:
        The same result, with :attr:`TaskResult.verified` holding measure -> mean recomputed from the per-query file.

    Raises:
        ResultError: Anything listed in the module docstring, naming the file.
    """
    from pyterrier_gradrel.benchmark._evaluate import measure_names

    path = Path(result.path) if result.path is not None else Path("<unsaved result>")
    record = result.record
    _check_schema(path, record)
    task = _check_identity(path, record, suite)
    measures = measure_names(suite)
    _check_stored_scores(path, record, measures)
    frame = _read_per_query(result, measures)
    articles = task_articles(task)
    _check_per_query(result.queries_path, frame, articles, measures)
    if record["queries"] != len(articles):
        raise ResultError(f"{path}: records {record['queries']!r} queries, the task has {len(articles)}")
    recomputed = {m: float(frame[m].astype(float).mean()) for m in measures}
    differ = {m: (record["scores"][m], recomputed[m]) for m in measures
              if abs(record["scores"][m] - recomputed[m]) > TOLERANCE}
    if differ:
        m, (stored, actual) = next(iter(differ.items()))
        raise ResultError(f"{path}: stored {m} {stored!r} but its per-query file averages to {actual:.6f} "
                          f"({len(differ)} measure(s) disagree beyond {TOLERANCE:g})")
    result.verified = recomputed
    result._per_query = frame
    return result


def load_verified(path: str | Path, suite: Suite) -> TaskResult:
    """Read a result JSON and :func:`verify_result` it."""
    return verify_result(TaskResult.load(path), suite)


def result_paths(folder: Path) -> Iterator[Path]:
    """The result JSONs of a suite folder: ``<system>/<fingerprint>/<task>.json``."""
    return iter(sorted(folder.glob("*/*/*.json")))


def suite_folder(root: str | Path, suite: Suite) -> Path:
    """The suite's folder in a results root (``root`` itself when it is already that folder).

    Raises:
        ResultError: ``root`` does not exist or is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ResultError(f"results folder {root} does not exist or is not a folder")
    return root if root.name == suite.folder_name else root / suite.folder_name


@dataclass
class VerifyReport:
    """What :func:`verify_folder` found.

    Attributes:
        folder: The suite folder checked.
        verified: The results that passed.
        errors: One message per refused file (each names the file).
        stray: Files in the folder that are neither a result, its per-query file nor a leaderboard file.
        copies: Notes on results of different systems whose per-query files are identical (a copied folder
            passes verification when renamed consistently; two systems may also agree honestly).
        refingerprinted: Notes on results of one system name under two fingerprints whose per-query files are
            identical (e.g. a factory evaluated again after its fingerprint scheme changed).
        earlier: One note per system whose fingerprint was made by an earlier scheme
            (:func:`pyterrier_gradrel.benchmark._systems.earlier_scheme`): evaluating it today writes a new folder.
        leftovers: Temporaries of interrupted atomic writes (``.<name>.<pid>@<host>.<random>.tmp``) and
            moved-aside old versions (``.<name>.old-<pid>@<host>``), and the files in them: not results,
            reported as notes (the next write of the same file removes those of dead writers).
    """

    folder: Path
    verified: list[TaskResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stray: list[Path] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    refingerprinted: list[str] = field(default_factory=list)
    earlier: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every result passed and at least one was found."""
        return not self.errors and bool(self.verified)


def _stray_files(folder: Path, results: list[Path]) -> tuple[list[Path], list[Path]]:
    """(files that are neither a result, its per-query file nor a leaderboard file; the files inside or named as
    an atomic write's temporary, :func:`pyterrier_gradrel._atomic.is_temporary`)."""
    from pyterrier_gradrel._atomic import is_temporary

    expected = set(results) | {p.with_name(p.stem + ".queries.csv.gz") for p in results}
    stray, leftovers = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path in expected or (path.parent == folder and path.name.startswith("leaderboard")):
            continue
        if any(is_temporary(part) for part in path.relative_to(folder).parts):
            leftovers.append(path)
        else:
            stray.append(path)
    return stray, leftovers


def _identical_results(results: list[TaskResult]) -> tuple[list[str], list[str]]:
    """(notes on identical per-query files of differently named systems, of one name under two fingerprints)."""
    seen: dict[str, TaskResult] = {}
    copies, refingerprinted = [], []
    for result in results:
        first = seen.setdefault(result.record["per_query"]["sha256"], result)
        if first is not result and first.path is not None and first.path.parent != result.path.parent:
            note = f"{result.path}: its per-query scores are identical to {first.path}"
            same = first.record["system"]["name"] == result.record["system"]["name"]
            (refingerprinted if same else copies).append(note)
    return copies, refingerprinted


def earlier_scheme_notes(results: Iterable[TaskResult]) -> dict[tuple[str, str], str]:
    """(system name, fingerprint) -> what its fingerprint covers, for the systems whose results record an earlier
    fingerprint scheme (:func:`pyterrier_gradrel.benchmark._systems.earlier_scheme`)."""
    from pyterrier_gradrel.benchmark._systems import earlier_scheme

    notes = {}
    for result in results:
        system = result.record["system"]
        scheme = earlier_scheme(system.get("description"))
        if scheme is not None:
            notes.setdefault((system["name"], system["fingerprint"]), scheme)
    return notes


def verify_folder(root: str | Path, suite: Suite) -> VerifyReport:
    """Verify every result of ``suite`` in a results root (or its suite folder), e.g. a folder received to merge.

    Also reports, as errors, two results of one system (same fingerprint) and task that differ, and per-query
    files without their JSON; the temporaries of interrupted atomic writes are notes (``leftovers``), not errors.
    """
    folder = suite_folder(root, suite)
    report = VerifyReport(folder)
    if not folder.is_dir():
        report.errors.append(f"{folder}: no results of suite {suite.name} (expected <system>/<fingerprint>/<task>.json)")
        return report
    paths = list(result_paths(folder))
    for path in paths:
        try:
            report.verified.append(load_verified(path, suite))
        except ResultError as exc:
            report.errors.append(str(exc))
    report.copies, report.refingerprinted = _identical_results(report.verified)
    from pyterrier_gradrel.benchmark._systems import earlier_scheme_note

    report.earlier = [f"{name} ({fingerprint[:16]}): {earlier_scheme_note(scheme)}, so a new folder, and never "
                      "reuses these results" for (name, fingerprint), scheme in earlier_scheme_notes(report.verified).items()]
    stray, report.leftovers = _stray_files(folder, paths)
    for path in stray:
        if path.name.endswith(".queries.csv.gz"):
            report.errors.append(f"{path}: a per-query file without its result JSON")
        else:
            report.stray.append(path)
    return report


def legacy_names(suite: Suite) -> dict[str, str]:
    """The measure names of schema 1 and 2 results -> the current names (:func:`measure_names`), in table order.

    Schemas 1 and 2 wrote a binary nDCG as ``nDCG@10(rel=r)`` and every other binary measure as
    ``R(rel=r)@100`` / ``RR(rel=r)@100`` (``rel=1`` spelled out); the graded main score was already ``nDCG@10``.
    """
    from pyterrier_gradrel.benchmark._suite import suite_measures

    names = {}
    for spec in suite_measures(suite):
        if spec.rel is None:
            old = spec.label
        elif spec.measure.NAME == "nDCG":
            old = f"nDCG@{spec.cutoff}(rel={spec.rel})"
        else:
            old = f"{spec.measure.NAME}(rel={spec.rel})@{spec.cutoff}"
        names[old] = spec.label
    return names


def _renamed_per_query(result: TaskResult, names: dict[str, str], recorded: str | None) -> bytes:
    """The per-query file's CSV text with its header in the current names; values untouched (byte for byte).

    ``recorded`` (a schema-2 result's per-query sha256) must be the hash of the file with the old header: a
    file changed since it was written is refused. A header already renamed (an upgrade stopped between the two
    writes) is accepted when the old header gives back the recorded hash.
    """
    queries = result.queries_path
    if not queries.is_file():
        raise ResultError(f"{queries}: missing (the per-query scores of {result.path})")
    with gzip.open(queries, "rb") as handle:
        text = handle.read()
    header, newline, body = text.partition(b"\n")
    old = ",".join(["qid", "article", *names]).encode("utf-8")
    new = ",".join(["qid", "article", *names.values()]).encode("utf-8")
    if header not in (old, new):
        raise ResultError(f"{queries}: header {header.decode('utf-8', 'replace')!r}, expected {old.decode()!r}")
    if recorded is not None and "sha256:" + hashlib.sha256(old + newline + body).hexdigest() != recorded:
        raise ResultError(f"{queries}: its content does not hash to the {recorded} that {result.path} records: "
                          "the per-query scores were changed")
    return new + newline + body


def upgrade_result(path: Path, suite: Suite) -> bool:
    """Bring a schema-1 or schema-2 result to the current schema, then verify it.

    Schema 1 gains the suite hash and the per-query sha256; both schemas get the current measure names
    (:func:`legacy_names`) in the JSON's scores and the per-query file's header. No value changes: the per-query
    file's rows are kept byte for byte and the scores keep their values. Only a result of this suite's name and
    version (and, for schema 2, its hash), whose per-query file is unchanged (schema 2: its recorded sha256), is
    upgraded; it must then pass :func:`verify_result` (queries complete, means recomputed) before its JSON is
    written (a refused result's per-query file is put back as it was). Returns False when the file already has
    the current schema.

    Raises:
        ResultError: The file cannot be upgraded (the message names it and why).
    """
    result = TaskResult.load(path, schema=None)
    record = result.record
    schema = record.get("schema")
    if schema == SCHEMA:
        return False
    if schema not in (1, 2):
        raise ResultError(f"{path}: schema {schema!r} cannot be upgraded (knows 1, 2 -> {SCHEMA})")
    claimed = record.get("suite") or {}
    if (claimed.get("name"), claimed.get("version")) != (suite.name, suite.version):
        raise ResultError(f"{path}: a result of suite {claimed.get('name')!r} version {claimed.get('version')!r}, "
                          f"not {suite.name} version {suite.version}")
    if schema == 2 and claimed.get("hash") != suite.hash:
        raise ResultError(f"{path}: scored under suite hash {claimed.get('hash')}, but {suite.name} is {suite.hash}")
    names = legacy_names(suite)
    scores = record.get("scores")
    if not isinstance(scores, dict) or sorted(scores) != sorted(names):
        raise ResultError(f"{path}: scores must have exactly the measures {list(names)}, got "
                          f"{sorted(scores) if isinstance(scores, dict) else scores!r}")
    recorded = (record.get("per_query") or {}).get("sha256") if schema == 2 else None
    if schema == 2 and not recorded:
        raise ResultError(f"{path}: a schema-2 result without its per-query sha256")
    text = _renamed_per_query(result, names, recorded)
    record["schema"] = SCHEMA
    record["suite"] = {"name": suite.name, "version": suite.version, "hash": suite.hash}
    record["scores"] = {names[m]: v for m, v in scores.items()}
    original = result.queries_path.read_bytes()
    with _atomic.atomic_path(result.queries_path) as tmp, gzip.GzipFile(tmp, "wb", mtime=0) as handle:
        handle.write(text)
    record["per_query"] = {"file": result.queries_path.name, "sha256": per_query_sha256(result.queries_path)}
    try:
        verify_result(result, suite)
    except ResultError:
        _atomic.write_bytes(result.queries_path, original)
        raise
    result.write_record()
    return True


def upgrade_folder(root: str | Path, suite: Suite) -> tuple[int, list[str]]:
    """:func:`upgrade_result` on every result of ``suite`` under ``root``; (upgraded count, error messages)."""
    folder = suite_folder(root, suite)
    upgraded, errors = 0, []
    for path in result_paths(folder):
        try:
            upgraded += upgrade_result(path, suite)
        except ResultError as exc:
            errors.append(str(exc))
    return upgraded, errors
