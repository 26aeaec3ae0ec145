"""Local graded collections: a user's own docs, queries and TREC qrels in a folder (``gradrel/local/<name>/<split>``).

Folder layout (see ``datasets_registry/local.yaml``)::

    docs.jsonl                      {"doc_id": ..., "text": ..., optional "lang", "article", "split" (train|dev|test)}
    queries.<split>.tsv|.jsonl      query_id<TAB>text  |  {"query_id", "text", optional "lang", "article"}
    queries.tsv|.jsonl              for splits without their own file (restricted to the split's qrels)
    qrels.<split>.txt               TREC 4 columns: query_id iteration doc_id grade (a split exists iff this does)
    manifest.yaml|.json             optional: name, lang, query_lang, structural, grades {int: text}, default_rel,
                                    license, citation, description

Everything is validated when a split is first loaded; every problem raises :class:`LocalCollectionError` with
``file:line``. :func:`check` instead collects every error (``gradrel datasets check``). Parsed data is cached
per process and re-read when a file changes.
"""
from __future__ import annotations

import codecs
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ir_datasets.formats import TrecQrel

from pyterrier_gradrel.datasets import SPLITS
from pyterrier_gradrel.datasets._base import DocPool, MemoryDocs, MemoryQrels, MemoryQueries
from pyterrier_gradrel.datasets._registry import collection
from pyterrier_gradrel.datasets._types import LocalDoc, LocalQuery

COLLECTION = "local"
NAMESPACE = "gradrel/local"
MANIFEST_KEYS = ("name", "lang", "query_lang", "structural", "grades", "default_rel", "license", "citation",
                 "description")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class LocalCollectionError(ValueError):
    """A local collection is malformed; the message names the file and, where it applies, the line."""




@dataclass(frozen=True)
class Manifest:
    """A collection's optional manifest, with the defaults of ``datasets_registry/local.yaml`` filled in."""

    name: str
    lang: str | None
    grades: dict[int, str]
    default_rel: int
    license: str
    citation: str
    query_lang: str | None = None
    structural: bool = False

    @property
    def queries_lang(self) -> str | None:
        """The queries' language: ``query_lang``, else ``lang``."""
        return self.query_lang or self.lang


@dataclass(frozen=True)
class SplitData:
    """A validated split: the collection's docs, the split's queries and its qrels."""

    pool: DocPool
    queries: tuple[LocalQuery, ...]
    qrels: tuple[TrecQrel, ...]


def _err(path: Path, line: int | None, msg: str) -> LocalCollectionError:
    where = f"{path}:{line}" if line is not None else str(path)
    return LocalCollectionError(f"{where}: {msg}")


def _manifest_file(folder: Path) -> tuple[Path | None, dict[str, Any]]:
    """The manifest file of ``folder`` and its parsed mapping (``(None, {})`` when there is none)."""
    for candidate in ("manifest.yaml", "manifest.yml", "manifest.json"):
        path = folder / candidate
        if not path.is_file():
            continue
        from pyterrier_gradrel._yaml import YAMLFileError, load_file  # JSON is YAML: one parser reads both

        try:
            data = load_file(path) or {}
        except YAMLFileError as exc:  # not UTF-8, not YAML/JSON, or a key written twice: file and line named
            raise LocalCollectionError(str(exc)) from None
        if not isinstance(data, dict):
            raise _err(path, None, "the manifest must be a mapping")
        return path, data
    return None, {}


_YAML_BOOLEANS = "YAML reads unquoted yes/no/on/off/true/false as booleans: quote them"


def _grade_key(path: Path | None, key: Any) -> int:
    """A manifest grade key as an int: an int (not a bool) or a string of digits; anything else is an error."""
    if isinstance(key, bool):
        raise _err(path, None, f"grades: key {key!r} is a boolean, not a grade ({_YAML_BOOLEANS}); "
                               f"keys must be non-negative integers")
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.strip().isascii() and key.strip().isdigit():
        return int(key.strip())
    raise _err(path, None, f"grades: key {key!r} is not a grade; keys must be non-negative integers such as 0 or '2'")


def _manifest_grades(path: Path | None, data: dict[str, Any], default: dict[int, str]) -> dict[int, str]:
    """The manifest's ``grades`` (integer grade -> text), validated; ``default`` when absent.

    Keys must be ints (not booleans) or digit strings, two keys may not name one grade (``1`` and ``'1'``), and
    every text must be a string (an unquoted YAML ``no`` is the boolean ``False``, not a text).
    """
    if "grades" not in data:
        return default
    if not isinstance(data["grades"], dict):
        raise _err(path, None, f"grades must map integer grades to texts, got {data['grades']!r}")
    grades: dict[int, str] = {}
    written: dict[int, Any] = {}
    for key, text in data["grades"].items():
        grade = _grade_key(path, key)
        if grade in written:
            raise _err(path, None, f"grades: keys {written[grade]!r} and {key!r} both name grade {grade}; "
                                   f"write each grade once")
        if not isinstance(text, str):
            hint = f" ({_YAML_BOOLEANS})" if isinstance(text, bool) else ""
            raise _err(path, None, f"grades: the text of grade {grade} must be a string, got {text!r}{hint}")
        written[grade] = key
        grades[grade] = text
    if not grades or min(grades) < 0:
        raise _err(path, None, f"grades must be non-negative integers, got {sorted(grades)}")
    return grades


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of ``folder`` (``manifest.yaml`` or ``manifest.json``), defaults where absent."""
    folder = Path(folder)
    defaults = collection(COLLECTION)
    path, data = _manifest_file(folder)
    unknown = sorted(set(data) - set(MANIFEST_KEYS))
    if unknown:
        raise _err(path, None, f"unknown keys {unknown}; allowed: {list(MANIFEST_KEYS)}")
    grades = _manifest_grades(path, data, defaults.grades)
    default_rel = data.get("default_rel", defaults.default_rel)
    allowed = sorted(g for g in grades if g > 0)
    if isinstance(default_rel, bool) or not isinstance(default_rel, int) or default_rel not in allowed:
        raise _err(path, None, f"default_rel must be one of {allowed} (the declared grades above 0), got {default_rel!r}")
    for key in ("lang", "query_lang"):
        if data.get(key) is not None and (not isinstance(data[key], str) or not data[key].strip()):
            raise _err(path, None, f"{key} must be a language code such as 'en', got {data[key]!r}")
    structural = data.get("structural", defaults.structural)
    if not isinstance(structural, bool):
        raise _err(path, None, f"structural must be true (grades derived from the data's structure) or false "
                               f"(judged by people or an LLM), got {structural!r}")
    return Manifest(
        name=str(data.get("name", folder.name)), lang=data.get("lang"), grades=grades, default_rel=default_rel,
        license=str(data.get("license", "")), citation=str(data.get("citation", "")),
        query_lang=data.get("query_lang"), structural=structural,
    )


def available_splits(folder: str | Path) -> tuple[str, ...]:
    """The splits of ``folder``: those with a ``qrels.<split>.txt``."""
    folder = Path(folder)
    return tuple(s for s in SPLITS if (folder / f"qrels.{s}.txt").is_file())


def check_folder(folder: str | Path) -> Path:
    """``folder`` as a Path if it looks like a collection (``docs.jsonl`` and at least one qrels file)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LocalCollectionError(f"{folder}: not a folder")
    if not (folder / "docs.jsonl").is_file():
        raise LocalCollectionError(f"{folder / 'docs.jsonl'}: missing (every local collection needs docs.jsonl)")
    if not available_splits(folder):
        raise LocalCollectionError(
            f"{folder}: no qrels file; a split exists when qrels.<split>.txt is present, split in {list(SPLITS)}"
        )
    return folder


class _Full(Exception):
    """Raised by :class:`Problems` when its limit is reached."""


class Problems:
    """Collects validation errors instead of raising the first (``gradrel datasets check``).

    Readers take ``problems=None`` (raise at the first error, as loading does) or a :class:`Problems`
    (record the error, skip the offending line, go on; stop once ``limit`` errors are recorded).
    """

    def __init__(self, limit: int = 50):
        self.limit = limit
        self.messages: list[str] = []

    def add(self, exc: LocalCollectionError) -> None:
        message = str(exc)
        if message not in self.messages:  # a shared queries file is read once per split
            self.messages.append(message)
        if len(self.messages) >= self.limit:
            raise _Full


def _report(problems: Problems | None, exc: LocalCollectionError) -> None:
    if problems is None:
        raise exc
    problems.add(exc)


def _lines(path: Path, problems: Problems | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of ``path``, decoded as UTF-8 (an undecodable line names file:line).

    A UTF-8 byte-order mark at the start of the file (what some editors write) is dropped, not read as part of
    the first id.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                _report(problems, _err(path, lineno, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                                                     f"{exc.start + 1}); save the file as UTF-8"))


def _json_lines(path: Path, problems: Problems | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in _lines(path, problems):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            _report(problems, _err(path, lineno, f"not valid JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            _report(problems, _err(path, lineno, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        yield lineno, obj


def _no_whitespace(path: Path, lineno: int, value: str, key: str) -> str:
    """``value`` unchanged; an id with whitespace is an error (qrels are split on whitespace, so no qrel could
    name it)."""
    if re.search(r"\s", value):
        raise _err(path, lineno, f"{key!r} {value!r} contains whitespace; ids must not (the qrels file is split on "
                                 f"whitespace, so no judgement could name it)")
    return value


def _id(path: Path, lineno: int, obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise _err(path, lineno, f"{key!r} must be a non-empty string, got {value!r}")
    return _no_whitespace(path, lineno, str(value), key)


def _split(path: Path, lineno: int, value: Any) -> str:
    """A document's optional ``split``: empty (absent, null or ``""``) or one of ``SPLITS``."""
    if value is None or value == "":
        return ""
    if value not in SPLITS:
        raise _err(path, lineno, f"'split' must be one of {list(SPLITS)} or left out, got {value!r} (a document "
                                 f"with another split would never be a training negative)")
    return value


def _text(path: Path, lineno: int, value: Any, key: str = "text") -> str:
    """A query's or document's text; empty or whitespace-only text is an error (nothing could match it)."""
    if not isinstance(value, str):
        raise _err(path, lineno, f"{key!r} must be a string, got {value!r}")
    if not value.strip():
        raise _err(path, lineno, f"{key!r} is empty or only whitespace ({value!r}); give it text or leave the line out")
    return value


def _read_docs(path: Path, lang: str, problems: Problems | None = None) -> DocPool:
    docs: list[LocalDoc] = []
    first: dict[str, int] = {}
    for lineno, obj in _json_lines(path, problems):
        try:
            doc_id = _id(path, lineno, obj, "doc_id")
            if doc_id in first:
                raise _err(path, lineno, f"duplicate doc_id {doc_id!r} (first on line {first[doc_id]})")
            doc = LocalDoc(doc_id, _text(path, lineno, obj.get("text")), str(obj.get("lang") or lang),
                           str(obj.get("article") or ""), _split(path, lineno, obj.get("split")))
        except LocalCollectionError as exc:
            _report(problems, exc)
            continue
        first[doc_id] = lineno
        docs.append(doc)
    if not docs:
        raise _err(path, None, "no documents")
    return DocPool.build(docs, source=str(path))


_HEADER_IDS = ("query_id", "qid", "queryid", "query-id", "id")
_HEADER_TEXTS = ("text", "query", "query_text", "question")


def _is_header(cols: list[str]) -> bool:
    """Whether two TSV columns are a header such as ``query_id<TAB>text`` rather than a query."""
    return cols[0].strip().lower() in _HEADER_IDS and cols[1].strip().lower() in _HEADER_TEXTS


def _read_queries(path: Path, lang: str, problems: Problems | None = None) -> dict[str, LocalQuery]:
    out: dict[str, LocalQuery] = {}
    first: dict[str, int] = {}

    def parse(lineno: int, line: str | dict[str, Any]) -> LocalQuery:
        if isinstance(line, dict):
            return LocalQuery(_id(path, lineno, line, "query_id"), _text(path, lineno, line.get("text")),
                              str(line.get("lang") or lang), str(line.get("article") or ""))
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0].strip():
            raise _err(path, lineno, f"expected 2 tab-separated columns query_id<TAB>text, got {len(cols)}")
        if _is_header(cols):
            raise _err(path, lineno, f"a header line ({line!r}); the file has none: every line is "
                                     f"query_id<TAB>text of one query, remove this line")
        qid = _no_whitespace(path, lineno, cols[0].strip(), "query_id")
        return LocalQuery(qid, _text(path, lineno, cols[1]), lang, "")

    if path.suffix == ".jsonl":
        rows: Iterator[tuple[int, str | dict[str, Any]]] = _json_lines(path, problems)
    else:
        rows = ((n, line.rstrip("\r\n")) for n, line in _lines(path, problems) if line.strip())
    for lineno, row in rows:
        try:
            query = parse(lineno, row)
            if query.query_id in first:
                raise _err(path, lineno, f"duplicate query_id {query.query_id!r} "
                                         f"(first on line {first[query.query_id]})")
        except LocalCollectionError as exc:
            _report(problems, exc)
            continue
        first[query.query_id] = lineno
        out[query.query_id] = query
    return out


def _queries_file(folder: Path, split: str) -> tuple[Path, bool]:
    for name in (f"queries.{split}.tsv", f"queries.{split}.jsonl"):
        if (folder / name).is_file():
            return folder / name, True
    for name in ("queries.tsv", "queries.jsonl"):
        if (folder / name).is_file():
            return folder / name, False
    raise LocalCollectionError(
        f"{folder}: no queries for split {split!r}; expected queries.{split}.tsv, queries.{split}.jsonl, "
        f"queries.tsv or queries.jsonl"
    )


def _qrel(path: Path, lineno: int, cols: list[str], manifest: Manifest, pool: DocPool,
          queries: dict[str, LocalQuery]) -> TrecQrel:
    scale = sorted(manifest.grades)
    if len(cols) != 4:
        raise _err(path, lineno, f"expected 4 columns 'query_id iteration doc_id grade', got {len(cols)}")
    qid, iteration, doc_id, grade_text = cols
    try:
        grade = int(grade_text)
    except ValueError:
        raise _err(path, lineno, f"grade must be an integer in {scale}, got {grade_text!r}") from None
    if grade not in manifest.grades:
        raise _err(path, lineno, f"grade {grade} is outside the declared scale {scale}")
    if doc_id not in pool.index:
        raise _err(path, lineno, f"unknown doc_id {doc_id!r} (not in docs.jsonl)")
    if qid not in queries:
        raise _err(path, lineno, f"unknown query_id {qid!r} (not in the split's queries)")
    return TrecQrel(qid, doc_id, grade, iteration)


def _read_qrels(path: Path, manifest: Manifest, pool: DocPool, queries: dict[str, LocalQuery],
                problems: Problems | None = None) -> tuple[TrecQrel, ...]:
    out: list[TrecQrel] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, line in _lines(path, problems):
        cols = line.split()
        if not cols:
            continue
        try:
            qrel = _qrel(path, lineno, cols, manifest, pool, queries)
            if (qrel.query_id, qrel.doc_id) in seen:
                raise _err(path, lineno, f"duplicate judgement for ({qrel.query_id!r}, {qrel.doc_id!r}) "
                                         f"(first on line {seen[qrel.query_id, qrel.doc_id]})")
        except LocalCollectionError as exc:
            _report(problems, exc)
            continue
        seen[qrel.query_id, qrel.doc_id] = lineno
        out.append(qrel)
    return tuple(out)


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir() if p.is_file()))


@functools.lru_cache(maxsize=32)
def _load_docs(folder: Path, signature: tuple) -> DocPool:
    return _read_docs(folder / "docs.jsonl", read_manifest(folder).lang or "")


@functools.lru_cache(maxsize=64)
def _load_split(folder: Path, split: str, signature: tuple) -> SplitData:
    manifest = read_manifest(folder)
    pool = _load_docs(folder, signature)
    qpath, own = _queries_file(folder, split)
    all_queries = _read_queries(qpath, manifest.queries_lang or "")
    qrels = _read_qrels(folder / f"qrels.{split}.txt", manifest, pool, all_queries)
    if own:
        queries = tuple(all_queries.values())
    else:
        judged = {q.query_id for q in qrels}
        queries = tuple(q for q in all_queries.values() if q.query_id in judged)
    return SplitData(pool, queries, qrels)


def load_docs(folder: str | Path) -> DocPool:
    """The validated documents of ``folder`` (cached until a file changes)."""
    folder = check_folder(folder).resolve()
    return _load_docs(folder, _signature(folder))


def load_split(folder: str | Path, split: str) -> SplitData:
    """The validated ``split`` of ``folder`` (cached until a file changes)."""
    folder = check_folder(folder).resolve()
    if split not in available_splits(folder):
        raise LocalCollectionError(
            f"{folder}: no split {split!r}; available: {list(available_splits(folder))} (from qrels.<split>.txt)"
        )
    return _load_split(folder, split, _signature(folder))


def validate(folder: str | Path) -> dict[str, SplitData]:
    """Load and validate every split of ``folder`` now (instead of on first use)."""
    return {split: load_split(folder, split) for split in available_splits(folder)}


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check` found: every error (up to a limit) and, per split, what was read."""

    folder: Path
    errors: tuple[str, ...]
    truncated: bool
    splits: dict[str, SplitData]
    manifest: Manifest | None

    def features(self) -> list[str]:
        """One line per feature of the collection (what training and evaluation will do with it)."""
        if self.manifest is None or not self.splits:
            return []
        m = self.manifest
        docs = next(iter(self.splits.values())).pool.docs
        n = len(docs)
        with_split = sum(1 for d in docs if d.split)
        with_article = sum(1 for d in docs if d.article)
        doc_langs = sorted({d.lang for d in docs if d.lang})
        query_langs = sorted({q.lang for data in self.splits.values() for q in data.queries if q.lang})
        train = self.splits.get("train")
        q_article = sum(1 for q in train.queries if q.article) if train else 0
        lines = [
            f"grades: {'structural (derived from the data)' if m.structural else 'judged'}, scale "
            f"{sorted(m.grades)}, default_rel {m.default_rel}",
            f"languages: queries {query_langs or ['unknown']}, documents {doc_langs or ['unknown']}"
            + (" (cross-lingual)" if query_langs and doc_langs and query_langs != doc_langs else ""),
            f"document split: on {with_split} of {n} documents"
            + (" (documents without one may be hard negatives in training)" if with_split < n else ""),
            f"document article: on {with_article} of {n} documents",
        ]
        if train is None:
            lines.append("fine-tuning: not possible (no train split: add qrels.train.txt)")
        elif q_article:
            lines.append(f"own-article rule: possible for {q_article} of {len(train.queries)} training queries "
                         f"(those with an article)")
        else:
            lines.append("own-article rule: off (no training query has an article)")
        return lines


def check(folder: str | Path, *, limit: int = 50) -> CheckReport:
    """Validate every file of ``folder`` and collect all errors (up to ``limit``) instead of stopping at the first.

    Lines with an error are skipped and reading goes on, so one bad document can also make the qrels that
    name it "unknown doc_id". Loading a split (:func:`load_split`) still raises at the first error.
    """
    problems = Problems(limit)
    splits: dict[str, SplitData] = {}
    manifest = None
    path = Path(folder).expanduser()
    try:
        try:
            path = check_folder(folder)
            manifest = read_manifest(path)
            pool = _read_docs(path / "docs.jsonl", manifest.lang or "", problems)
        except LocalCollectionError as exc:
            problems.add(exc)
            pool = None
        if manifest is not None and pool is not None:
            for split in available_splits(path):
                try:
                    qpath, own = _queries_file(path, split)
                    queries = _read_queries(qpath, manifest.queries_lang or "", problems)
                    qrels = _read_qrels(path / f"qrels.{split}.txt", manifest, pool, queries, problems)
                except LocalCollectionError as exc:
                    problems.add(exc)
                    continue
                judged = {q.query_id for q in qrels}
                kept = tuple(q for q in queries.values() if own or q.query_id in judged)
                splits[split] = SplitData(pool, kept, qrels)
        truncated = False
    except _Full:
        truncated = True
    return CheckReport(path, tuple(problems.messages), truncated, splits, manifest)


def dataset_ids(name: str, folder: str | Path) -> dict[str, str | None]:
    """The ids of collection ``name`` in ``folder`` → split (None: the documents only)."""
    out: dict[str, str | None] = {f"{NAMESPACE}/{name}": None}
    for split in available_splits(folder):
        out[f"{NAMESPACE}/{name}/{split}"] = split
    return out


def build_dataset(folder: str | Path, split: str | None, *, name: str):
    """The ir_datasets ``Dataset`` for one split of ``folder``, collection ``name`` (validated on first use)."""
    from ir_datasets.datasets.base import Dataset

    folder = Path(folder)
    manifest = read_manifest(folder)
    docs = MemoryDocs(functools.partial(load_docs, folder), LocalDoc, lang=manifest.lang,
                      namespace=f"{NAMESPACE}/{name}")
    if split is None:
        return Dataset(docs)
    return Dataset(
        docs,
        MemoryQueries(lambda: load_split(folder, split).queries, LocalQuery, lang=manifest.queries_lang,
                      namespace=NAMESPACE),
        MemoryQrels(lambda: load_split(folder, split).qrels, manifest.grades),
    )
