"""AfriQA as graded passage retrieval, with African-language queries or their human translations.

Unit of retrieval: a deduplicated gold passage. There are two pools: English (the gold passages of bem, hau,
ibo, kin, swa, twi, yor and zul) and French (fon). Each pool holds every non-null gold passage of every
split of its languages, deduplicated by exact text; docno ``<pivot>-<md5(text)[:12]>``. A passage's
``split`` is the most held-out split it is gold for (test > dev > train), so a filter on ``split == "train"``
never exposes a dev/test gold passage.

Structural grades for question q (nobody judged these pairs):

* 3: q's gold passage,
* 2: another pool passage with the same Wikipedia title (whitespace-normalised; a passage keeps the first
  title it is given) that contains a pivot answer string (case-folded
  substring match; the strings are ``answer_pivot.text``, or the human ``translated_answer`` when that is
  empty),
* 1: another pool passage with the same title without such a string,
* 0: the rest (not listed).

Official splits, with their gaps: AfriQA ships gold passages for swa (test only), yor (train, test) and not at
all for wol; an id exists only for a (language, split) with a gold file. Queries without a usable gold
passage (absent from the gold file, or ``context`` null) are dropped, since no grade can be given to them;
:func:`dropped` reports them. The source files are JSON Lines despite ``.json``, hold bare ``NaN`` tokens
(treated as missing, like ``null``) and Python list literals in ``answers``/``translated_answer``.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ir_datasets.formats import TrecQrel

from pyterrier_gradrel.datasets import SPLITS
from pyterrier_gradrel.datasets._base import DocPool, MemoryDocs, MemoryQrels, MemoryQueries
from pyterrier_gradrel.datasets._download import fetch
from pyterrier_gradrel.datasets._registry import FileSpec, collection
from pyterrier_gradrel.datasets._types import AfriqaDoc, AfriqaQuery

COLLECTION = "afriqa"
NAMESPACE = "gradrel/afriqa"
_HELD_OUT = {"train": 0, "dev": 1, "test": 2}




@dataclass(frozen=True)
class Question:
    """A kept question with its graded passages."""

    afriqa_id: str
    question: str
    translated: str
    title: str
    grades: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class SplitData:
    """One (language, split): kept questions in file order and the ids of dropped ones."""

    lang: str
    split: str
    questions: tuple[Question, ...]
    dropped: tuple[str, ...]


@dataclass(frozen=True)
class Pool:
    """A passage pool with a title index."""

    pivot: str
    docs: DocPool
    by_title: dict[str, tuple[str, ...]]
    by_text: dict[str, str]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _read_jsonl(file: FileSpec) -> list[dict[str, Any]]:
    rows = []
    with open(fetch(file), encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))  # Python's json accepts the bare NaN tokens
            except json.JSONDecodeError as exc:
                raise ValueError(f"{file.relpath}:{lineno}: not valid JSON ({exc.msg})") from None
    return rows


def _title(value: Any) -> str:
    """A Wikipedia title with surrounding/repeated whitespace removed ("" when missing)."""
    return "" if _missing(value) else " ".join(str(value).split())


def _literal_list(value: Any) -> list[str]:
    if _missing(value):
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return [str(value)]
    return [str(v) for v in parsed] if isinstance(parsed, (list, tuple)) else [str(parsed)]


def languages() -> dict[str, dict[str, Any]]:
    """The languages declared in ``datasets_registry/afriqa.yaml``."""
    return collection(COLLECTION).languages


def language_splits(lang: str) -> tuple[str, ...]:
    """The splits of ``lang`` that have gold passages (``ValueError`` for an unknown language)."""
    langs = languages()
    if lang not in langs:
        raise ValueError(f"afriqa has no language {lang!r}; languages: {sorted(langs)}")
    return tuple(s for s in SPLITS if s in (langs[lang].get("splits") or []))


@functools.cache
def load_pool(pivot: str) -> Pool:
    """The deduplicated gold-passage pool of ``pivot`` ("en" or "fr"), parsed once per process."""
    spec = collection(COLLECTION)
    members = [lang for lang in sorted(spec.languages) if spec.languages[lang]["pivot"] == pivot]
    if not members:
        pivots = sorted({v["pivot"] for v in spec.languages.values()})
        raise ValueError(f"afriqa has no pool {pivot!r}; pools: {pivots}")
    passages: dict[str, dict[str, Any]] = {}  # text -> {title, held_out}
    for lang in members:
        for split in language_splits(lang):
            for row in _read_jsonl(spec.file(f"gold/{lang}/{split}")):
                text = row.get("context")
                if _missing(text) or not str(text).strip():
                    continue
                entry = passages.setdefault(text, {"title": "", "held_out": split})
                if not entry["title"]:
                    entry["title"] = _title(row.get("title"))
                if _HELD_OUT[split] > _HELD_OUT[entry["held_out"]]:
                    entry["held_out"] = split
    docs, by_text, by_title = [], {}, {}
    for text, entry in passages.items():
        docno = f"{pivot}-{hashlib.md5(text.encode('utf-8')).hexdigest()[:12]}"
        docs.append(AfriqaDoc(docno, text, pivot, entry["title"], entry["held_out"], entry["title"]))
        by_text[text] = docno
        if entry["title"]:
            by_title.setdefault(entry["title"], []).append(docno)
    return Pool(pivot, DocPool.build(docs, source=f"afriqa {pivot} pool"),
                {t: tuple(d) for t, d in by_title.items()}, by_text)


@functools.cache
def load_split(lang: str, split: str) -> SplitData:
    """The kept questions of (``lang``, ``split``) with their grades, parsed once per process."""
    if split not in language_splits(lang):
        raise ValueError(f"afriqa {lang} has gold passages for splits {list(language_splits(lang))}, not {split!r}")
    spec = collection(COLLECTION)
    pool = load_pool(spec.languages[lang]["pivot"])
    gold = {str(row["id"]): row for row in _read_jsonl(spec.file(f"gold/{lang}/{split}"))}
    kept, dropped = [], []
    for row in _read_jsonl(spec.file(f"queries/{lang}/{split}")):
        qid = str(row["id"])
        g = gold.get(qid)
        if g is None or _missing(g.get("context")) or g["context"] not in pool.by_text:
            dropped.append(qid)
            continue
        gold_docno = pool.by_text[g["context"]]
        gold_doc = pool.docs.docs[pool.docs.index[gold_docno]]
        title = _title(g.get("title")) or gold_doc.title
        answers = [a for a in (g.get("answer_pivot") or {}).get("text") or [] if isinstance(a, str) and a.strip()]
        if not answers:
            answers = [a for a in _literal_list(row.get("translated_answer")) if a.strip()]
        needles = [a.casefold() for a in answers]
        graded = [(gold_docno, 3)]
        for docno in pool.by_title.get(title, ()):
            if docno == gold_docno:
                continue
            text = pool.docs.docs[pool.docs.index[docno]].text.casefold()
            graded.append((docno, 2 if any(n in text for n in needles) else 1))
        kept.append(Question(qid, str(row["question"]), str(row["translated_question"]), title, tuple(graded)))
    return SplitData(lang, split, tuple(kept), tuple(dropped))


def dropped(lang: str, split: str) -> tuple[str, ...]:
    """AfriQA ids of the queries of (``lang``, ``split``) that were dropped for lack of a usable gold passage."""
    return load_split(lang, split).dropped


@functools.cache
def queries(lang: str, split: str, translated: bool) -> tuple[AfriqaQuery, ...]:
    """The kept queries, in the African language or (``translated``) in the pivot language."""
    pivot = languages()[lang]["pivot"]
    return tuple(
        AfriqaQuery(f"{lang}-{q.afriqa_id}", q.translated if translated else q.question,
                    pivot if translated else lang, q.title)
        for q in load_split(lang, split).questions
    )


def qrels(lang: str, split: str) -> Iterator[TrecQrel]:
    """The graded qrels of (``lang``, ``split``)."""
    for q in load_split(lang, split).questions:
        for docno, grade in q.grades:
            yield TrecQrel(f"{lang}-{q.afriqa_id}", docno, grade, "0")


def dataset_ids() -> dict[str, tuple[str, str | None, bool]]:
    """Every id of the collection → (language, split or None for the pool only, translated queries)."""
    out: dict[str, tuple[str, str | None, bool]] = {}
    for lang in sorted(languages()):
        splits = language_splits(lang)
        if not splits:
            continue
        out[f"{NAMESPACE}/{lang}"] = (lang, None, False)
        for split in splits:
            out[f"{NAMESPACE}/{lang}/{split}"] = (lang, split, False)
            out[f"{NAMESPACE}/{lang}-translated/{split}"] = (lang, split, True)
    return out


def build_dataset(lang: str, split: str | None, translated: bool):
    """The ir_datasets ``Dataset`` for one id (components load their data on first use)."""
    from ir_datasets.datasets.base import Dataset

    spec = collection(COLLECTION)
    pivot = spec.languages[lang]["pivot"]
    docs = MemoryDocs(lambda: load_pool(pivot).docs, AfriqaDoc, lang=pivot, namespace=f"{NAMESPACE}/{pivot}")
    if split is None:
        return Dataset(docs)
    qlang = pivot if translated else spec.languages[lang].get("iso639_1")
    return Dataset(
        docs,
        MemoryQueries(functools.partial(queries, lang, split, translated), AfriqaQuery, lang=qlang,
                      namespace=NAMESPACE),
        MemoryQrels(functools.partial(qrels, lang, split), spec.grades),
    )
