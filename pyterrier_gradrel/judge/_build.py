"""Build an LLM-graded local collection: pool candidates per query, judge them, write the folder.

The folder follows the local-collection layout of ``datasets_registry/local.yaml`` and registers as
``gradrel/local/<name>/<split>``::

    docs.jsonl          the whole corpus (doc_id, text, and lang/article/split where the corpus has them)
    queries.tsv         qid<TAB>query of every pooled query
    qrels.<split>.txt   TREC 4 columns (qid 0 docno grade) for every judged pair with a grade, 0 included
                        (judged non-relevant); pairs the judge left missing are not listed
    manifest.json       name, lang, grades (the judge rubric's texts), default_rel, license, citation,
                        description (one line: judge model, prompt version, date, counts per grade)
    build.json          provenance: judge model and backend, prompt version, date, source, pool settings,
                        counts per split and grade
    judgements.jsonl    every judged pair: qid, docno, split, grade (or null), judge_raw, judge_error, p_0..p_3

The whole folder is written atomically, and only after the local-collection check (``gradrel datasets
check``) passed on the temporary folder: a build never leaves a collection the reader rejects. Records the reader
would reject are left out and counted in ``build.json`` (``counts.skipped``): documents with empty text or a
docno with whitespace (and their pooled pairs), queries with an empty qid or whitespace in it or with empty
text; a document ``split`` other than train/dev/test is dropped from its record. Judgements go through the
judge's cache, so a build that was interrupted and run again judges only what is missing.

A split's queries are those with at least one graded pair (``datasets_registry/local.yaml``). A build in
which some split has no graded pair at all (every answer missing, e.g. a broken endpoint) fails with
:class:`~pyterrier_gradrel.judge.JudgeBackendError` naming the counts, and writes nothing: no folder, no
temporary files; an existing collection it would replace stays as it was. Queries left without any graded
pair in an otherwise usable split drop out of that split: counted in ``build.json``
(``queries_without_grade``) and warned about.

Quality needs a real judge model: a collection graded by a tiny or random model is only good for testing.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pyterrier_gradrel._atomic import atomic_path
from pyterrier_gradrel.datasets import GRADES, SPLITS
from pyterrier_gradrel.judge._base import JudgeBackendError
from pyterrier_gradrel.judge._prompt import GRADE_TEXTS, PROMPT_VERSION

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FORMAT_VERSION = 1
#: the record every collection folder that :func:`build_collection` writes holds: overwrite replaces only such
#: a folder (holding nothing but the files below)
BUILD_MARKER = "build.json"
_BUILT_FILES = re.compile(r"docs\.jsonl|queries\.tsv|qrels\.[A-Za-z0-9_-]+\.txt|judgements\.jsonl|manifest\.json"
                          + "|" + re.escape(BUILD_MARKER))


def _collections_home() -> Path:
    try:
        from pyterrier_gradrel.datasets import local_home
    except ImportError:  # pragma: no cover - the datasets module ships with the package
        from pyterrier_gradrel._paths import home

        return home() / "collections"
    return local_home()


def _one_line(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _as_dataset(dataset: Any) -> tuple[Any, str | None]:
    import pyterrier as pt

    if isinstance(dataset, str):
        dataset_id = dataset[len("irds:"):] if dataset.startswith("irds:") else dataset
        return pt.get_dataset(f"irds:{dataset_id}"), dataset_id
    return dataset, None


def _pool(topics: pd.DataFrame, retrievers: Mapping[str, Any], depth: int, verbose: bool) -> pd.DataFrame:
    """(qid, docno, sources) of the union of each retriever's top ``depth`` per query."""
    runs = []
    for rname, retriever in retrievers.items():
        res = retriever.transform(topics[["qid", "query"]].copy())
        missing = [c for c in ("qid", "docno") if c not in res.columns]
        if missing:
            raise ValueError(f"retriever {rname!r} returned no {missing} column(s); it must return a result frame")
        if "rank" not in res.columns:
            if "score" not in res.columns:
                raise ValueError(f"retriever {rname!r} returned neither rank nor score")
            res = res.sort_values(["qid", "score"], ascending=[True, False])
            res["rank"] = res.groupby("qid").cumcount()
        top = res[res["rank"] < depth][["qid", "docno"]].astype(str).copy()
        top["source"] = rname
        runs.append(top)
        if verbose:
            print(f"pool: {rname} gave {len(top)} candidates for {top['qid'].nunique()} queries")
    pool = pd.concat(runs, ignore_index=True)
    pool = pool.groupby(["qid", "docno"], sort=False)["source"].agg(lambda s: ",".join(sorted(set(s)))).reset_index()
    return pool


def _check_graded(counts: Mapping[str, Mapping[str, Any]], judge: Any, folder: Path) -> None:
    """Fail when a split has no graded pair (it would have no queries); warn about queries left without one."""
    empty = [s for s, c in counts.items() if c["pooled"] - c["missing"] == 0]
    if empty:
        per_split = "; ".join(f"{s}: {c['pooled']} pairs pooled for {c['queries']} queries, "
                              f"{c['pooled'] - c['missing']} graded" for s, c in counts.items())
        if all(counts[s]["pooled"] == 0 for s in empty):
            raise ValueError(f"the retrievers returned no candidates for split(s) {empty} ({per_split}); "
                             f"nothing was written to {folder}")
        cache = getattr(judge, "cache", None)
        where = f"the judge cache {cache.path} keeps its answers" if cache is not None else "no judge cache was used"
        raise JudgeBackendError(
            f"the judge graded no pair of split(s) {empty}, so they would have no queries ({per_split}); nothing "
            f"was written to {folder}. Check the judge endpoint and model and what it answers ({where}; "
            f"`gradrel judge` shows judge_error per pair), then build again: pairs that failed transiently are "
            f"asked again, answers cached without a grade only with --retry-missing (retry_missing=True)")
    for s, c in counts.items():
        if c["queries_without_grade"]:
            warnings.warn(f"split {s!r}: {c['queries_without_grade']} of {c['queries']} queries have no graded pair "
                          f"and are left out of that split ({c['missing']} of {c['pooled']} pairs without a grade; "
                          f"--retry-missing asks again for answers cached as ungradable)", stacklevel=3)


@dataclass(frozen=True)
class _Source:
    """Where a build's queries and documents come from, with the manifest defaults the dataset supplies."""

    dataset: Any  # the dataset argument; with ``splits=``, the id of the first split
    ds: Any  # the PyTerrier dataset of ``dataset``, or None
    info: Any  # the DatasetInfo of a ``gradrel/`` dataset, or None
    sources: dict[str, str]  # split -> dataset id
    topics: pd.DataFrame | Mapping[str, pd.DataFrame]  # one frame (of ``split``) or split -> frame
    split: str  # the split of a single topics frame
    lang: str | None
    license: str | None
    citation: str | None


def _check_args(name: Any, judge: Any, depth: Any, max_queries: Any, split: Any) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"name must match {NAME_RE.pattern}, got {name!r}")
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    if max_queries is not None and (not isinstance(max_queries, int) or isinstance(max_queries, bool)
                                    or max_queries < 1):
        raise ValueError(f"max_queries must be an integer >= 1 or None, got {max_queries!r}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    for attr in ("transform", "model_id"):
        if not hasattr(judge, attr):
            raise TypeError(f"judge must be an LLMJudge (a transformer with model_id), got {type(judge).__name__}")


def _split_topics(dataset: Any, topics: Any, splits: Sequence[str]) -> tuple[dict[str, str], dict[str, pd.DataFrame]]:
    """The dataset id of each of ``splits`` of ``dataset`` (its split part replaced) and its topics."""
    if not isinstance(dataset, str):
        raise ValueError("splits=... needs dataset=... as a dataset id (e.g. gradrel/xquad-r/de)")
    if topics is not None:
        raise ValueError("pass either topics=... or splits=..., not both")
    splits = list(dict.fromkeys(splits))
    bad_splits = [s for s in splits if s not in SPLITS]
    if not splits or bad_splits:
        raise ValueError(f"splits must be a non-empty subset of {list(SPLITS)}, got {splits}")
    base = dataset[len("irds:"):] if dataset.startswith("irds:") else dataset
    if base.rsplit("/", 1)[-1] in SPLITS:
        base = base.rsplit("/", 1)[0]
    sources = {s: f"{base}/{s}" for s in splits}
    by_split = {s: _as_dataset(sid)[0].get_topics("text" if sid.startswith("gradrel/") else None)
                for s, sid in sources.items()}
    return sources, by_split


def _open_dataset(dataset: Any, topics: Any) -> tuple[Any, str | None, Any, Any]:
    """``dataset`` opened: (PyTerrier dataset, its id or None, its DatasetInfo or None, topics or its topics)."""
    ds, dataset_id = _as_dataset(dataset)
    gradrel = dataset_id is not None and dataset_id.startswith("gradrel/")
    info = None
    if gradrel:
        from pyterrier_gradrel.datasets import info as dataset_info
        from pyterrier_gradrel.datasets import require_split

        info = dataset_info(dataset_id) if topics is not None else require_split(dataset_id, "test")
    if topics is None:
        topics = ds.get_topics("text") if gradrel else ds.get_topics()
    return ds, dataset_id, info, topics


def _info_defaults(info: Any, lang: str | None, license: str | None,
                   citation: str | None) -> tuple[str | None, str | None, str | None]:
    """``lang``, ``license`` and ``citation``, each defaulting to the dataset's where not given."""
    if info is None:
        return lang, license, citation
    if lang is None and info.query_lang and info.query_lang == info.doc_lang:
        lang = info.query_lang
    return lang, (license if license is not None else info.license), (citation if citation is not None else info.citation)


def _resolve_source(dataset: Any, topics: Any, corpus: Any, *, splits: Sequence[str] | None, split: str | None,
                    lang: str | None, license: str | None, citation: str | None) -> _Source:
    ds = None
    info = None
    sources: dict[str, str] = {}
    if splits is not None:
        sources, topics = _split_topics(dataset, topics, splits)
        dataset = next(iter(sources.values()))
    if dataset is not None:
        ds, dataset_id, info, topics = _open_dataset(dataset, topics)
        split = split or (info.split if info is not None else None)
        if not sources and dataset_id is not None:
            sources = {split or "test": dataset_id}
        lang, license, citation = _info_defaults(info, lang, license, citation)
    if topics is None or (corpus is None and ds is None):
        raise ValueError("pass dataset=..., or both topics=... and corpus=...")
    return _Source(dataset, ds, info, sources, topics, split or "test", lang, license, citation)


def _usable_queries(frame: pd.DataFrame, split: str, skipped: dict[str, int]) -> pd.DataFrame:
    """``frame`` without the queries a local collection rejects (an empty qid or whitespace in it, no text), counted in
    ``skipped``; a split left without queries is an error."""
    qids = frame["qid"].astype(str)
    bad_id = qids.str.contains(_WHITESPACE) | (qids == "")
    no_text = ~bad_id & (frame["query"].map(_one_line) == "")
    skipped["queries_id_with_whitespace"] += int(bad_id.sum())
    skipped["queries_empty_text"] += int(no_text.sum())
    if bad_id.any() or no_text.any():
        warnings.warn(f"split {split!r}: {int(bad_id.sum())} queries with an empty qid or whitespace in it and "
                      f"{int(no_text.sum())} with empty text are left out (a local collection rejects them); "
                      f"counted in build.json", stacklevel=4)
    kept = frame[~bad_id & ~no_text]
    if kept.empty:
        raise ValueError(f"topics[{split!r}] has no usable query: {int(bad_id.sum())} have whitespace in the qid "
                         f"and {int(no_text.sum())} empty text")
    return kept


def _topics_by_split(topics: pd.DataFrame | Mapping[str, pd.DataFrame], split: str, max_queries: int | None,
                     skipped: dict[str, int]) -> dict[str, pd.DataFrame]:
    """split -> its queries, deduplicated by qid, without the unusable ones (counted in ``skipped``) and cut to
    ``max_queries``; qids unique across splits."""
    by_split = dict(topics) if isinstance(topics, Mapping) else {split: topics}
    bad = [s for s in by_split if s not in SPLITS]
    if bad:
        raise ValueError(f"topic splits must be in {list(SPLITS)}, got {bad}")
    for s, frame in list(by_split.items()):
        if not isinstance(frame, pd.DataFrame) or not {"qid", "query"} <= set(frame.columns):
            raise ValueError(f"topics[{s!r}] must be a frame with qid and query columns")
        if len(frame) == 0:
            raise ValueError(f"topics[{s!r}] has no queries; a split needs at least one")
        frame = _usable_queries(frame.drop_duplicates("qid"), s, skipped)
        by_split[s] = (frame.head(max_queries) if max_queries else frame).reset_index(drop=True)
    all_qids = pd.concat([f["qid"] for f in by_split.values()]).astype(str)
    if all_qids.duplicated().any():
        raise ValueError(f"qids must be unique across splits; repeated: {sorted(set(all_qids[all_qids.duplicated()]))[:5]}")
    return by_split


def _named_retrievers(retrievers: Mapping[str, Any] | Sequence[Any] | None, source: _Source, *, depth: int,
                      encoder: Any, verbose: bool) -> Mapping[str, Any]:
    """name -> retriever; by default BM25 and dense retrieval over the source dataset."""
    if retrievers is None:
        if source.ds is None:
            raise ValueError("pass retrievers=... (pt.Transformers from queries to results) or dataset=...")
        from pyterrier_gradrel.retrieval import bm25, dense

        retrievers = {"BM25": bm25(source.dataset, num_results=depth),
                      "dense": dense(encoder, source.dataset, num_results=depth, verbose=verbose)}
    if not isinstance(retrievers, Mapping):
        retrievers = {repr(r): r for r in retrievers}
    if not retrievers:
        raise ValueError("retrievers must not be empty")
    return retrievers


def _target_folder(name: str, folder: str | Path | None, overwrite: bool) -> Path:
    folder = Path(folder) if folder is not None else _collections_home() / name
    if not folder.exists() and not folder.is_symlink():
        return folder
    if not overwrite:
        raise FileExistsError(f"{folder} exists; pass overwrite=True (--overwrite) to replace it")
    _check_replaceable(folder)
    return folder


def _is_marker(path: Path) -> bool:
    """Whether ``path`` is a :data:`BUILD_MARKER` that :func:`build_collection` wrote (a JSON object with its
    ``format_version`` and ``name``)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and isinstance(record.get("format_version"), int) and "name" in record


def _check_replaceable(folder: str | Path) -> None:
    """Refuse (and touch nothing) unless ``folder`` holds a collection :func:`build_collection` wrote and only
    that: its :data:`BUILD_MARKER` and the files it writes. An empty folder may be replaced too.

    Raises:
        FileExistsError: ``folder`` is not a folder, has no marker, or holds other files or sub-folders
            (named in the message), which replacing it would delete.
    """
    folder = Path(folder)
    remedy = "choose another folder, or move it away yourself"
    if folder.is_symlink() or not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder; overwrite replaces only a collection folder "
                              f"that gradrel build wrote; {remedy}")
    entries = sorted(p.name for p in folder.iterdir())
    if not entries:
        return
    if not _is_marker(folder / BUILD_MARKER):
        shown = ", ".join(entries[:8]) + (f", ... ({len(entries)} entries)" if len(entries) > 8 else "")
        raise FileExistsError(f"{folder} is not a collection that gradrel build wrote (no {BUILD_MARKER} of its "
                              f"own; it holds {shown}): overwrite refuses to delete it; {remedy}")
    foreign = [n for n in entries if not _BUILT_FILES.fullmatch(n) or not (folder / n).is_file()]
    if foreign:
        raise FileExistsError(f"{folder} holds a built collection but also {foreign}, which overwrite would "
                              f"delete: move them out of the folder first")


_WHITESPACE = re.compile(r"\s")


def _doc_record(doc: Mapping[str, Any]) -> tuple[dict[str, str], bool]:
    """The ``docs.jsonl`` record of a corpus document, and whether its ``split`` was left out (only one of
    ``SPLITS`` is kept: the local reader rejects any other)."""
    docno = str(doc.get("docno", doc.get("doc_id", "")))
    text = doc.get("text")
    if not docno or not isinstance(text, str):
        raise ValueError(f"corpus documents need docno (or doc_id) and text; got keys {sorted(doc)}")
    record = {"doc_id": docno, "text": text}
    for key in ("lang", "article", "split"):
        if doc.get(key) not in (None, ""):
            record[key] = str(doc[key])
    dropped = record.get("split", SPLITS[0]) not in SPLITS
    if dropped:
        del record["split"]
    return record, dropped


def _unusable(record: Mapping[str, str]) -> str | None:
    """Why the local reader would reject a document record (``docs_*`` key of the skipped counts), or None."""
    if _WHITESPACE.search(record["doc_id"]):
        return "docs_id_with_whitespace"
    if not record["text"].strip():
        return "docs_empty_text"
    return None


@dataclass
class _Corpus:
    """What :func:`_write_corpus` wrote: the pooled documents' texts, the count, and what it left out."""

    texts: dict[str, str]
    n_docs: int
    skipped_docnos: set[str]
    skipped: dict[str, int]


def _write_corpus(path: Path, corpus: Iterable[Mapping[str, Any]], needed: set[str]) -> _Corpus:
    """Write ``docs.jsonl``: every document the local reader accepts.

    A document with empty or whitespace-only text or a docno with whitespace is skipped and counted; a
    ``split`` other than ``SPLITS`` is left out of its record and counted (``docs_split_dropped``).
    """
    texts: dict[str, str] = {}
    skipped: dict[str, int] = {"docs_empty_text": 0, "docs_id_with_whitespace": 0, "docs_split_dropped": 0}
    skipped_docnos: set[str] = set()
    n_docs = 0
    seen: set[str] = set()
    with open(path, "w", encoding="utf-8") as f:
        for doc in corpus:
            record, split_dropped = _doc_record(doc)
            docno = record["doc_id"]
            if docno in seen:
                raise ValueError(f"duplicate docno {docno!r} in the corpus")
            seen.add(docno)
            reason = _unusable(record)
            if reason is not None:
                skipped[reason] += 1
                skipped_docnos.add(docno)
                continue
            skipped["docs_split_dropped"] += int(split_dropped)
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n_docs += 1
            if docno in needed:
                texts[docno] = record["text"]
    unknown = sorted(needed - set(texts) - skipped_docnos)
    if unknown:
        raise ValueError(f"retrievers returned docnos that are not in the corpus, e.g. {unknown[:5]}")
    if skipped["docs_empty_text"] or skipped["docs_id_with_whitespace"]:
        warnings.warn(f"{skipped['docs_empty_text']} document(s) with empty text and "
                      f"{skipped['docs_id_with_whitespace']} with whitespace in the docno are left out of the "
                      f"collection (a local collection rejects them); counted in build.json", stacklevel=3)
    return _Corpus(texts, n_docs, skipped_docnos, skipped)


def _drop_skipped(pools: Mapping[str, pd.DataFrame], skipped_docnos: set[str]) -> tuple[dict[str, pd.DataFrame], int]:
    """The pools without the pairs of skipped documents, and how many pairs that removed."""
    kept = {s: pool[~pool["docno"].isin(skipped_docnos)].reset_index(drop=True) for s, pool in pools.items()}
    return kept, sum(len(pools[s]) - len(kept[s]) for s in pools)


def _split_counts(out: pd.DataFrame, queries: pd.DataFrame) -> dict[str, Any]:
    """The counts of one split's judged pool (``build.json``'s ``counts.splits.<split>``)."""
    grades = out["grade"].dropna().astype(int)
    n_queries = int(queries["qid"].nunique())
    graded_queries = int(out.loc[out["grade"].notna(), "qid"].nunique())
    return {"queries": n_queries, "pooled": int(len(out)),
            "per_grade": {str(g): int((grades == g).sum()) for g in sorted(GRADE_TEXTS)},
            "missing": int(out["grade"].isna().sum()),
            "queries_with_grade_ge_2": int(out[out["grade"].fillna(-1) >= 2]["qid"].nunique()),
            "queries_without_grade": n_queries - graded_queries}


def _judge_pools(judge: Any, pools: Mapping[str, pd.DataFrame], by_split: Mapping[str, pd.DataFrame],
                 texts: Mapping[str, str]) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Every split's pool judged (with source and split columns), and the counts per split."""
    counts: dict[str, dict[str, Any]] = {}
    judged_frames = []
    for s, pool in pools.items():
        queries = by_split[s][["qid", "query"]].astype({"qid": str})
        frame = pool.merge(queries, on="qid", how="inner")
        frame["text"] = frame["docno"].map(texts)
        out = judge.transform(frame[["qid", "query", "docno", "text"]]).reset_index(drop=True)
        out["source"] = frame["source"].to_numpy()
        out["split"] = s
        judged_frames.append(out)
        counts[s] = _split_counts(out, queries)
    return pd.concat(judged_frames, ignore_index=True), counts


def _write_queries(path: Path, by_split: Mapping[str, pd.DataFrame]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for frame in by_split.values():
            for qid, query in zip(frame["qid"].astype(str), frame["query"], strict=True):
                f.write(f"{_one_line(qid)}\t{_one_line(query)}\n")


def _write_qrels(folder: Path, splits: Iterable[str], judged: pd.DataFrame) -> None:
    for s in splits:
        part = judged[(judged["split"] == s) & judged["grade"].notna()]
        with open(folder / f"qrels.{s}.txt", "w", encoding="utf-8") as f:
            for qid, docno, grade in zip(part["qid"], part["docno"], part["grade"].astype(int), strict=True):
                f.write(f"{qid} 0 {docno} {grade}\n")


def _write_judgements(path: Path, judged: pd.DataFrame) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in judged.itertuples(index=False):
            probs = [getattr(row, f"p_{g}") for g in GRADES]
            f.write(json.dumps({
                "qid": row.qid, "docno": row.docno, "split": row.split, "source": row.source,
                "grade": None if pd.isna(row.grade) else int(row.grade), "judge_raw": row.judge_raw,
                "judge_error": row.judge_error,
                **{f"p_{g}": (None if p is None or math.isnan(p) else float(p)) for g, p in enumerate(probs)},
            }, ensure_ascii=False) + "\n")


def _check_readable(tmp: Path, folder: Path) -> None:
    """Run the local-collection check (``gradrel datasets check``) on the written folder ``tmp``.

    Raises:
        ValueError: the reader would reject it; every problem found is listed (paths as ``folder``'s) and
            nothing is written.
    """
    from pyterrier_gradrel.datasets import _local

    report = _local.check(tmp)
    if report.errors:
        problems = "; ".join(e.replace(str(tmp), str(folder)) for e in report.errors[:5])
        more = f" (and {len(report.errors) - 5} more)" if len(report.errors) > 5 else ""
        raise ValueError(f"the collection built for {folder} fails the local-collection check, so nothing was "
                         f"written: {problems}{more}")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_metadata(folder: Path, *, name: str, source: _Source, judge: Any, retrievers: Mapping[str, Any],
                    depth: int, max_queries: int | None, created: str, n_docs: int,
                    counts: Mapping[str, Mapping[str, Any]], skipped: Mapping[str, int]) -> None:
    """Write ``manifest.json`` and ``build.json`` (``counts.skipped``: what was left out as unusable)."""
    totals = {str(g): sum(c["per_grade"][str(g)] for c in counts.values()) for g in sorted(GRADE_TEXTS)}
    missing = sum(c["missing"] for c in counts.values())
    description = (f"LLM-graded by {judge.model_id} (prompt {PROMPT_VERSION}) on {created}; pool: "
                   f"{'+'.join(retrievers)} depth {depth}; grades "
                   + ", ".join(f"{g}:{n}" for g, n in totals.items()) + f", missing {missing}")
    manifest = {"name": name, "grades": {int(g): t for g, t in GRADE_TEXTS.items()}, "default_rel": 2,
                "license": source.license or "", "citation": source.citation or "", "description": description}
    if source.lang:
        manifest["lang"] = source.lang
    _write_json(folder / "manifest.json", manifest)
    backend = getattr(judge, "backend", None)
    dataset = source.dataset
    build = {
        "format_version": FORMAT_VERSION, "name": name, "created": created,
        "judge": {"model": judge.model_id, "backend": type(backend).__name__ if backend is not None else None,
                  "repr": repr(judge), "prompt_version": PROMPT_VERSION},
        "grades": {str(g): t for g, t in GRADE_TEXTS.items()},
        "source": {"dataset": dataset if isinstance(dataset, str) else (repr(dataset) if dataset is not None else None),
                   "datasets": source.sources,
                   "structural_reference": bool(source.info.structural) if source.info is not None else None},
        "pool": {"depth": depth, "retrievers": {k: repr(v) for k, v in retrievers.items()},
                 "max_queries": max_queries},
        "counts": {"docs": n_docs, "queries": sum(c["queries"] for c in counts.values()), "per_grade": totals,
                   "missing": missing, "splits": counts, "skipped": dict(skipped)},
        "note": "Judge quality depends on the judge model; grades from a small or random model are for tests only.",
    }
    _write_json(folder / BUILD_MARKER, build)


def build_collection(name: str, *, judge: Any, dataset: Any = None,
                     topics: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
                     corpus: Iterable[Mapping[str, Any]] | None = None,
                     retrievers: Mapping[str, Any] | Sequence[Any] | None = None, depth: int = 20,
                     split: str | None = None, splits: Sequence[str] | None = None, max_queries: int | None = None, folder: str | Path | None = None,
                     overwrite: bool = False, lang: str | None = None, license: str | None = None,
                     citation: str | None = None, encoder: Any = "multilingual-e5-small", register: bool = True,
                     verbose: bool = False) -> Path:
    """Pool, judge and write an LLM-graded local collection; returns its folder.

    Args:
        name: the collection name (``gradrel/local/<name>``): letters, digits, ``_``, ``.``, ``-``.
        judge: an :class:`~pyterrier_gradrel.judge.LLMJudge` (its cache makes the build resumable).
        dataset: an ir_datasets id (``"gradrel/xquad-r/de/test"``, ``"irds:..."``) or a PyTerrier dataset;
            supplies ``topics``, ``corpus``, ``split``, language, license and citation where not given.
        topics: query frame(s) with ``qid`` and ``query``: one frame (for ``split``) or a mapping
            split -> frame (qids unique across splits).
        corpus: the documents, as dicts with ``docno`` (or ``doc_id``) and ``text`` (e.g.
            ``dataset.get_corpus_iter()``); all of them go into ``docs.jsonl``.
        retrievers: name -> retriever (any ``pt.Transformer`` from a query frame to a result frame), or a
            sequence of them (named by ``repr``). Default with ``dataset``: BM25 and dense retrieval with
            ``encoder`` from :mod:`pyterrier_gradrel.retrieval`.
        depth: candidates per query and retriever (>= 1); the pool is their union.
        split: the split of a single ``topics`` frame (default: the dataset's split, else ``"test"``).
        splits: build these splits of ``dataset`` (an id; its split part, if any, is replaced), e.g.
            ``dataset="gradrel/xquad-r/de", splits=["train", "dev", "test"]`` for a collection that can
            also be trained on. The documents (one pool) come from the first split.
        max_queries: judge only the first ``max_queries`` queries of each split (a slice), >= 1.
        folder: where to write (default ``$GRADREL_HOME/collections/<name>``, where it is found by name).
        overwrite: replace an existing folder, only if it holds a collection this function wrote (its
            :data:`BUILD_MARKER`) and nothing else; any other folder is refused and left as it is.
        lang: the collection language for the manifest (default: the dataset's language when queries
            and documents share one).
        license: the data's license (default: the dataset's).
        citation: BibTeX of the sources (default: the dataset's).
        encoder: the dense encoder of the default retrievers.
        register: register ``gradrel/local/<name>`` with ir_datasets when done.
        verbose: progress messages and bars.

    Returns:
        The collection folder.

    Raises:
        JudgeBackendError: the judge graded no pair of some split (nothing is written), or the endpoint
            failed (see :class:`~pyterrier_gradrel.judge.OpenAIChatBackend`).
        ValueError: invalid arguments, a split without (usable) topics, retrievers that found no candidates, or
            a written folder that fails the local-collection check (nothing is written).
        FileExistsError: ``folder`` exists and ``overwrite`` is off, or it is not a folder this function wrote.
    """
    _check_args(name, judge, depth, max_queries, split)
    folder = _target_folder(name, folder, overwrite)  # before any work: a refused folder costs nothing
    source = _resolve_source(dataset, topics, corpus, splits=splits, split=split, lang=lang, license=license,
                             citation=citation)
    skipped = {"queries_id_with_whitespace": 0, "queries_empty_text": 0}
    by_split = _topics_by_split(source.topics, source.split, max_queries, skipped)
    retrievers = _named_retrievers(retrievers, source, depth=depth, encoder=encoder, verbose=verbose)

    pools = {s: _pool(frame, retrievers, depth, verbose) for s, frame in by_split.items()}
    needed = set().union(*(set(p["docno"]) for p in pools.values()))
    if corpus is None:  # opened only now, so that its progress bar does not include the pooling
        corpus = source.ds.get_corpus_iter(verbose=verbose)
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        docs = _write_corpus(tmp / "docs.jsonl", corpus, needed)
        pools, skipped["pooled_pairs_of_skipped_docs"] = _drop_skipped(pools, docs.skipped_docnos)
        skipped.update(docs.skipped)
        judged, counts = _judge_pools(judge, pools, by_split, docs.texts)
        _check_graded(counts, judge, folder)
        _write_queries(tmp / "queries.tsv", by_split)
        _write_qrels(tmp, by_split, judged)
        _write_judgements(tmp / "judgements.jsonl", judged)
        _write_metadata(tmp, name=name, source=source, judge=judge, retrievers=retrievers, depth=depth,
                        max_queries=max_queries, created=created, n_docs=docs.n_docs, counts=counts,
                        skipped=skipped)
        _check_readable(tmp, folder)  # before the rename: a build never leaves a collection the reader rejects

    if register:
        from pyterrier_gradrel.datasets import register_local

        register_local(name, folder)
    return folder
