"""XQuAD-R (11 languages) and XQuAD Romanian as graded sentence retrieval.

Unit of retrieval: one sentence of an XQuAD paragraph. For question q and sentence d of the same language
file the structural grades are

* 3: d is in q's paragraph and overlaps an answer span (``answer_start`` .. ``answer_start + len(text)``),
* 2: d is in q's paragraph without overlapping it,
* 1: d is in another paragraph of q's article,
* 0: any other sentence (not listed).

Sentences are the ``sentences`` strings of XQuAD-R (their ``sentence_breaks`` offsets are off by one in one
Turkish paragraph, so the strings are located in the context instead; a sentence that does not occur
verbatim, one Turkish sentence with a mis-encoded character, takes the gap between its neighbours).
Romanian has no sentence breaks and is split by :func:`~pyterrier_gradrel.datasets._sentences.split_sentences`.

Splits by article (file order i = 0..47, identical in every language): test i % 4 == 0, dev i % 8 == 1,
train the rest. The corpus of every id is the whole pool of its document language(s); ``split`` on each
sentence says which split its article belongs to.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass

from ir_datasets.formats import TrecQrel

from pyterrier_gradrel.datasets import SPLITS, collection_languages
from pyterrier_gradrel.datasets._base import DocPool, MemoryDocs, MemoryQrels, MemoryQueries
from pyterrier_gradrel.datasets._download import fetch
from pyterrier_gradrel.datasets._registry import collection
from pyterrier_gradrel.datasets._sentences import split_sentences
from pyterrier_gradrel.datasets._types import XQuadDoc, XQuadQuery

COLLECTION = "xquad-r"
NAMESPACE = "gradrel/xquad-r"
N_ARTICLES = 48




@dataclass(frozen=True)
class _Question:
    squad_id: str
    text: str
    article: str
    split: str


@dataclass(frozen=True)
class LanguageData:
    """One parsed language file: its sentence pool, its questions and every question's graded sentences."""

    lang: str
    pool: DocPool
    questions: tuple[_Question, ...]
    grades: dict[str, tuple[tuple[str, int], ...]]


def languages() -> tuple[str, ...]:
    """The languages declared in ``datasets_registry/xquad-r.yaml`` (sorted)."""
    return collection_languages(COLLECTION)


def article_split(index: int) -> str:
    """The split of the article at position ``index`` (0-based) of every language file."""
    if index % 4 == 0:
        return "test"
    if index % 8 == 1:
        return "dev"
    return "train"


def align_sentences(context: str, sentences: list[str]) -> list[tuple[int, int]]:
    """Character spans of ``sentences`` in ``context``.

    Each sentence is searched for verbatim after the previous one. A sentence that is not found gets the
    span from the end of the previous sentence (skipping spaces) to the start of the next one found.
    """
    found: list[tuple[int, int] | None] = []
    pos = 0
    for sentence in sentences:
        i = context.find(sentence, pos)
        if i < 0:
            found.append(None)
        else:
            found.append((i, i + len(sentence)))
            pos = i + len(sentence)
    spans: list[tuple[int, int]] = []
    for k, span in enumerate(found):
        if span is None:
            start = spans[-1][1] if spans else 0
            while start < len(context) and context[start].isspace():
                start += 1
            end = next((f[0] for f in found[k + 1:] if f is not None), len(context))
            while end > start and context[end - 1].isspace():
                end -= 1
            span = (start, max(start, end))
        spans.append(span)
    return spans


@functools.cache
def load_language(lang: str) -> LanguageData:
    """Parse one language file (fetched and md5-checked on first use), once per process."""
    spec = collection(COLLECTION)
    if lang not in spec.languages:
        raise ValueError(f"xquad-r has no language {lang!r}; languages: {sorted(spec.languages)}")
    file = spec.file(spec.languages[lang]["file"])
    with open(fetch(file), encoding="utf-8") as f:
        articles = json.load(f)["data"]
    if len(articles) != N_ARTICLES:
        raise ValueError(f"{file.relpath}: expected {N_ARTICLES} articles, found {len(articles)}")
    docs: list[XQuadDoc] = []
    questions: list[_Question] = []
    grades: dict[str, tuple[tuple[str, int], ...]] = {}
    for a, article in enumerate(articles):
        title, split = article["title"], article_split(a)
        para_docnos: list[list[str]] = []
        para_grades: list[list[tuple[str, dict[str, int]]]] = []
        for p, para in enumerate(article["paragraphs"]):
            context = para["context"]
            if "sentences" in para:
                texts = list(para["sentences"])
                spans = align_sentences(context, texts)
            else:
                spans = split_sentences(context)
                texts = [context[s:e] for s, e in spans]
            docnos = [f"{lang}-a{a:02d}-p{p}-s{s}" for s in range(len(texts))]
            docs.extend(XQuadDoc(d, _clean(t), lang, title, split) for d, t in zip(docnos, texts, strict=True))
            para_docnos.append(docnos)
            local: list[tuple[str, dict[str, int]]] = []
            for qa in para["qas"]:
                answers = [(ans["answer_start"], ans["answer_start"] + len(ans["text"])) for ans in qa["answers"]]
                own = {
                    docno: 3 if any(s < a_end and a_start < e for a_start, a_end in answers) else 2
                    for docno, (s, e) in zip(docnos, spans, strict=True)
                }
                questions.append(_Question(qa["id"], _clean(qa["question"]), title, split))
                local.append((qa["id"], own))
            para_grades.append(local)
        for p, local in enumerate(para_grades):
            others = [d for q, docnos in enumerate(para_docnos) if q != p for d in docnos]
            for squad_id, own in local:
                if squad_id in grades:
                    raise ValueError(f"{file.relpath}: question id {squad_id!r} occurs twice")
                grades[squad_id] = tuple(own.items()) + tuple((d, 1) for d in others)
    return LanguageData(lang, DocPool.build(docs, source=file.relpath), tuple(questions), grades)


def _clean(text: str) -> str:
    """Text as indexed: U+FEFF (a byte-order mark left inside sentences of 10 of the 12 source files, up to 9 per
    pool) removed; the grades are computed on the untouched context, so they do not change."""
    return text.replace("\ufeff", "")


@functools.cache
def pool(dlangs: tuple[str, ...]) -> DocPool:
    """The sentence pool of one or several document languages (concatenated in the given order)."""
    if len(dlangs) == 1:
        return load_language(dlangs[0]).pool
    return DocPool.build((d for lang in dlangs for d in load_language(lang).pool.docs), source="xquad-r multi")


@functools.cache
def queries(qlangs: tuple[str, ...], split: str) -> tuple[XQuadQuery, ...]:
    """The questions of ``split`` in the query languages, in file order."""
    return tuple(
        XQuadQuery(f"{lang}-{q.squad_id}", q.text, lang, q.article)
        for lang in qlangs for q in load_language(lang).questions if q.split == split
    )


def qrels(qlangs: tuple[str, ...], dlangs: tuple[str, ...], split: str) -> Iterator[TrecQrel]:
    """Graded qrels: each question of ``qlangs`` gets the grades of its parallel copy in every ``dlangs`` file."""
    for qlang in qlangs:
        for q in load_language(qlang).questions:
            if q.split != split:
                continue
            qid = f"{qlang}-{q.squad_id}"
            for dlang in dlangs:
                graded = load_language(dlang).grades.get(q.squad_id)
                if graded is None:
                    raise ValueError(f"question {q.squad_id!r} of {qlang} has no parallel copy in {dlang}")
                for docno, grade in graded:
                    yield TrecQrel(qid, docno, grade, "0")


def dataset_ids() -> dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]]:
    """Every id of the collection → (query languages, document languages, split or None for docs only)."""
    langs = languages()
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]] = {}
    for lang in langs:
        out[f"{NAMESPACE}/{lang}"] = ((), (lang,), None)
        for split in SPLITS:
            out[f"{NAMESPACE}/{lang}/{split}"] = ((lang,), (lang,), split)
    for qlang in langs:
        for dlang in langs:
            if qlang != dlang:
                for split in SPLITS:
                    out[f"{NAMESPACE}/{qlang}-{dlang}/{split}"] = ((qlang,), (dlang,), split)
    out[f"{NAMESPACE}/multi"] = ((), langs, None)
    for split in SPLITS:
        out[f"{NAMESPACE}/multi/{split}"] = (langs, langs, split)
    return out


def build_dataset(qlangs: tuple[str, ...], dlangs: tuple[str, ...], split: str | None):
    """The ir_datasets ``Dataset`` for one id (components load their data on first use)."""
    from ir_datasets.datasets.base import Dataset

    defs = collection(COLLECTION).grades
    docs = MemoryDocs(functools.partial(pool, dlangs), XQuadDoc,
                      lang=dlangs[0] if len(dlangs) == 1 else None,
                      namespace=f"{NAMESPACE}/{dlangs[0] if len(dlangs) == 1 else 'multi'}")
    if split is None:
        return Dataset(docs)
    return Dataset(
        docs,
        MemoryQueries(functools.partial(queries, qlangs, split), XQuadQuery,
                      lang=qlangs[0] if len(qlangs) == 1 else None, namespace=NAMESPACE),
        MemoryQrels(functools.partial(qrels, qlangs, dlangs, split), defs),
    )
