"""Dense retrieval through pyterrier-dr, with document embeddings cached per (encoder fingerprint, corpus).

A corpus is encoded once per model: ``encoder.doc_encoder() >> FlexIndex(...).indexer()`` writes the vectors to
``_paths.cache_dir('embeddings')/<fingerprint[:16]>/<collection>.<lang>.flex`` (atomically), together with
``gradrel_embeddings.json`` holding the full fingerprint. A sweep that evaluates the same model again reuses the
vectors; a changed model has a different fingerprint, hence a different folder, and is re-encoded. A folder
whose stored fingerprint disagrees with the encoder's (a prefix clash or a tampered cache) is rebuilt.

Within a benchmark collection a docno names one passage, so a new pool can take the vectors of passages already
cached for the same model and collection and encode only the rest (``dense_index(..., reuse_collection=...)``;
:func:`dense` turns it on for the package's fixed collections, never for local ones, whose files may change):
XQuAD-R's ``multi`` pool, the union of the 12 language pools, costs no encoding once those are cached.

Retrievers over the cached ``FlexIndex``: ``"numpy"`` and ``"torch"`` (exact, brute force), ``"faiss-flat"``
(exact, FAISS) and ``"faiss-hnsw"`` (approximate; for larger pools; the graph is cached in the same folder,
written atomically under the pool's lock). The exact back-ends agree on every score, but passages with exactly
equal scores (duplicate texts) come in a back-end-specific order, so at a ``num_results`` cut-off they may keep
different ones of them (trec_eval-style evaluation re-sorts ties by docno, so measures above the cut-off agree).
"""
from __future__ import annotations

import collections
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyterrier as pt
import pyterrier_alpha as pta

from pyterrier_gradrel import _atomic, _lock, _paths
from pyterrier_gradrel.retrieval._bm25 import (
    _as_pt_dataset,
    _LazyCorpus,
    _pool_identity,
    _slug,
    fixed_collection,
    folder_lock,
    index_folder_ready,
    pool_scope,
    validate_frame,
)
from pyterrier_gradrel.retrieval._types import DatasetLike, DenseEncoder, DocRecord, EncoderLike

if TYPE_CHECKING:
    from pyterrier_dr import FlexIndex

__all__ = ["BACKENDS", "HNSW_MIN_DOCS", "DenseRetriever", "DenseScorer", "dense", "dense_index", "dense_scorer",
           "encode_count"]

_log = logging.getLogger(__name__)

#: retrieval back-ends accepted by :func:`dense` (``"auto"``: exact numpy below :data:`HNSW_MIN_DOCS`, else HNSW)
BACKENDS = ("numpy", "torch", "faiss-flat", "faiss-hnsw", "auto")

#: pool size from which ``backend="auto"`` switches from exact search to FAISS HNSW (when faiss is installed)
HNSW_MIN_DOCS = 200_000
#: how to get the optional FAISS back-ends
FAISS_HINT = "pip install 'pyterrier-gradrel[faiss]' (or faiss-cpu / faiss-gpu)"


def has_faiss() -> bool:
    """Whether the optional ``faiss`` package can be imported (the ``[faiss]`` extra)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True

_META = "gradrel_embeddings.json"
_RESULT_COLUMNS = ["qid", "query", "docno", "score", "rank"]

#: corpus encodings per index path in this process (tests use it to prove reuse / invalidation)
_ENCODES: collections.Counter[str] = collections.Counter()


def encode_count(path: str | Path | None = None) -> int:
    """How many times this process encoded the corpus cached at ``path`` (all caches if ``None``)."""
    if path is None:
        return sum(_ENCODES.values())
    return _ENCODES[str(Path(path))]


def _fingerprint(encoder: DenseEncoder) -> str:
    """The identity of ``encoder``'s passage vectors: ``doc_fingerprint()`` where an encoder has one
    (a :class:`~pyterrier_gradrel.models.QueryTunedEncoder` shares its base model's vectors), else ``fingerprint()``."""
    fingerprint = getattr(encoder, "doc_fingerprint", None) or getattr(encoder, "fingerprint", None)
    if not callable(fingerprint):
        raise TypeError(
            f"encoder must have a fingerprint() method (e.g. pyterrier_gradrel.models.E5BiEncoder), "
            f"got {type(encoder).__name__}"
        )
    value = str(fingerprint())
    if len(value) < 16 or not value.isalnum():
        raise ValueError(f"encoder.fingerprint() must be a hex digest of at least 16 characters, got {value!r}")
    return value


def _resolve_encoder(encoder: EncoderLike) -> DenseEncoder:
    if isinstance(encoder, str | os.PathLike):
        from pyterrier_gradrel.models import load_encoder

        return load_encoder(str(encoder))
    return encoder


def dense_index(
    encoder: DenseEncoder,
    docs: Iterable[DocRecord],
    *,
    corpus: str,
    verbose: bool = False,
    reuse_collection: str | None = None,
    path: str | os.PathLike | None = None,
) -> FlexIndex:
    """Encode ``docs`` with ``encoder`` into a cached ``FlexIndex`` (once per fingerprint and corpus).

    Args:
        encoder: A pyterrier-dr ``BiEncoder`` with ``fingerprint()`` (``E5BiEncoder``).
        docs: Records with ``docno`` and ``text``; only read when the vectors are not cached yet.
        corpus: The corpus identity, e.g. ``"xquad-r.th"`` (part of the cache path).
        verbose: Progress bars while encoding.
        reuse_collection: The collection part of ``corpus`` (``"xquad-r"`` for ``"xquad-r.multi"``) when docnos
            identify passage texts across that collection's pools: passages already cached for this model in
            another ``<reuse_collection>.<lang>`` pool are not encoded again. ``None`` (default): encode all.
            Only within the cache (not with ``path``).
        path: The index folder to build or open instead of the cache (the ``index=`` of :func:`dense`). A
            folder holding the vectors of another model or corpus, or anything but such an index, is refused.

    Returns:
        ``pyterrier_dr.FlexIndex`` over the vectors.

    Raises:
        ValueError: when ``path`` holds something else than this model's index of this corpus.
    """
    from pyterrier_dr import FlexIndex

    fingerprint = _fingerprint(encoder)
    if path is not None:
        path = Path(path).expanduser()
        reuse_collection = None  # sibling pools are looked up in the cache layout only
        folder = path
        lock = folder_lock(path)
        expect = {"fingerprint": fingerprint, "corpus": corpus}

        def cached() -> bool:
            return index_folder_ready(folder, _META, kind="dense", expect=expect)
    else:
        path = _paths.cache_dir("embeddings", fingerprint[:16]) / f"{_slug(corpus)}.flex"
        meta_path = path / _META
        lock = path

        def cached() -> bool:
            return meta_path.exists() and json.loads(meta_path.read_text(encoding="utf-8")).get("fingerprint") == fingerprint

    if not cached():
        # another process encoding the same pool for the same model: wait for it and reuse its vectors
        with _lock.file_lock(lock):
            if not cached():
                _encode_pool(encoder, docs, path, fingerprint=fingerprint, corpus=corpus, verbose=verbose,
                             reuse_collection=reuse_collection)
    return FlexIndex(str(path), verbose=False)  # `verbose` is for encoding; scoring bars would only add noise


def _encode_pool(encoder: DenseEncoder, docs: Iterable[DocRecord], path: Path, *, fingerprint: str, corpus: str,
                 verbose: bool, reuse_collection: str | None) -> None:
    from pyterrier_dr import FlexIndex

    meta_path = path / _META
    if meta_path.exists():
        _log.warning("embedding cache %s belongs to another model; re-encoding", path)
    started = time.time()
    siblings = _sibling_pools(path, fingerprint, _slug(reuse_collection)) if reuse_collection else []
    row, table = _vector_table(siblings)
    with _atomic.atomic_path(path) as tmp:
        index = FlexIndex(str(tmp), verbose=verbose)
        records = [{"docno": str(d["docno"]), "text": str(d["text"])} for d in docs]
        if len(records) == 1:  # npids' fixed-width docno store divides by zero on a single docno
            raise ValueError(f"cannot build dense index for corpus {corpus!r}: it has one document; a dense pool "
                             "needs at least two")
        todo = [r for r in records if r["docno"] not in row]
        fresh: dict[str, np.ndarray] = {}
        if todo:
            vecs = _encode_texts(encoder, [r["text"] for r in todo], verbose=verbose)
            fresh = dict(zip((r["docno"] for r in todo), vecs, strict=True))
        encoded = len(todo)
        index.indexer().index(
            {"docno": r["docno"], "doc_vec": fresh[r["docno"]] if r["docno"] in fresh else table[row[r["docno"]]]}
            for r in records
        )
        if len(index) == 0:
            raise ValueError(f"cannot build dense index for corpus {corpus!r}: it has no documents")
        (tmp / _META).write_text(json.dumps({
            "fingerprint": fingerprint, "corpus": corpus, "docs": len(index), "encoder": repr(encoder),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "encode_seconds": round(time.time() - started, 3), "encoded": encoded,
            "reused": len(index) - encoded,
        }, indent=2), encoding="utf-8")
    if encoded:
        _ENCODES[str(path)] += 1
    _log.info("corpus %s into %s: %d passages encoded, %d reused", corpus, path, encoded, len(index) - encoded)


#: Texts per ``encode_docs`` call when encoding a pool: large enough that the encoder's own length sort
#: pads little (a whole XQuAD-R or AfriQA pool is one block), small enough to bound the token lists in memory.
POOL_BLOCK = 8192


def _encode_texts(encoder: DenseEncoder, texts: list[str], *, verbose: bool) -> np.ndarray:
    """Embed a pool's passages through ``encoder.encode_docs`` in large blocks.

    pyterrier-dr's ``doc_encoder() >> indexer()`` hands the encoder chunks in corpus order, so each forward
    batch pads to the longest of texts that merely sit next to each other; one ``encode_docs`` call over a
    whole block lets the encoder sort by length first (measured: ``benchmarks/bench_pool_encode.py``).
    """
    blocks = range(0, len(texts), POOL_BLOCK)
    if verbose and len(texts) > POOL_BLOCK:
        from tqdm.auto import tqdm

        blocks = tqdm(blocks, desc="Encoding pool", unit="block")
    # the encoder's own per-batch bar (pyterrier-dr's ``BiEncoder.verbose``) while this pool is encoded
    previous = getattr(encoder, "verbose", None)
    if verbose and previous is not None:
        encoder.verbose = True
    try:
        parts = [np.asarray(encoder.encode_docs(texts[start:start + POOL_BLOCK]), dtype=np.float32) for start in blocks]
    finally:
        if verbose and previous is not None:
            encoder.verbose = previous
    return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)


def _sibling_pools(path: Path, fingerprint: str, collection: str) -> list[FlexIndex]:
    """The other ``<collection>.<lang>`` pools cached beside ``path`` for the same model, as ``FlexIndex``es."""
    from pyterrier_dr import FlexIndex

    pools = []
    for other in sorted(path.parent.glob(f"{collection}.*.flex")):
        meta = other / _META
        if other == path or not meta.exists() or other.name[:-len(".flex")].rsplit(".", 1)[0] != collection:
            continue
        if json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
            pools.append(FlexIndex(str(other), verbose=False))
    return pools


def _vector_table(indexes: Iterable[FlexIndex]) -> tuple[dict[str, int], np.ndarray]:
    """One float32 table stacking the vectors of several ``FlexIndex``es, and docno -> its row.

    The first index holding a docno wins; an index whose path came before is skipped (datasets of one pool, e.g.
    AfriQA's languages, share its vectors).
    """
    row: dict[str, int] = {}
    parts: list[np.ndarray] = []
    seen: set[Path] = set()
    offset = 0
    for index in indexes:
        if Path(index.index_path) in seen:
            continue
        seen.add(Path(index.index_path))
        docnos, dvecs, _ = index.payload()
        for i, docno in enumerate(docnos):
            row.setdefault(str(docno), offset + i)
        parts.append(np.asarray(dvecs, dtype=np.float32))
        offset += len(parts[-1])
    return row, (np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32))


def _empty(inp: pd.DataFrame) -> pd.DataFrame:
    extra = [c for c in inp.columns if c not in _RESULT_COLUMNS and c != "query_vec"]
    return pd.DataFrame(columns=[*_RESULT_COLUMNS, *extra])


_RANKED_INPUT_HINT = ("The input already holds results (a 'docno' column), and dense retrieval searches the whole "
                      "pool for a query frame (qid, query). To re-rank results, use the scorer: "
                      "gr.dense_scorer(encoder, dataset), e.g. bm25 % 100 >> gr.dense_scorer(encoder, dataset) "
                      "(pyterrier_gradrel.dense_scorer).")
_QUERY_INPUT_HINT = ("DenseScorer re-ranks results (qid, query, docno) and got a query frame: retrieve first "
                     "(e.g. gr.bm25(dataset) % 100 >> scorer), or use pyterrier_gradrel.dense(encoder, dataset) to "
                     "retrieve from the whole pool.")


class DenseRetriever(pt.Transformer):
    """Query encoder >> FlexIndex retriever. Input: ``qid``, ``query``; output: a result frame (no vectors)."""

    def __init__(self, encoder: DenseEncoder, index: FlexIndex, *, backend: str = "numpy",
                 num_results: int = 1000) -> None:
        """Args:
            encoder: The bi-encoder whose vectors ``index`` holds.
            index: ``FlexIndex`` (from :func:`dense_index`).
            backend: One of :data:`BACKENDS`.
            num_results: Results per query (>= 1).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        if int(num_results) < 1:
            raise ValueError(f"num_results must be >= 1, got {num_results!r}")
        self.encoder = encoder
        self.index = index
        self.backend = backend
        self.num_results = int(num_results)
        self._retriever = None

    def _get_retriever(self) -> pt.Transformer:
        if self._retriever is None:
            n = self.num_results
            backend = self.backend
            if backend == "auto":  # exact numpy search when faiss is not installed
                backend = "faiss-hnsw" if len(self.index) >= HNSW_MIN_DOCS and has_faiss() else "numpy"
            if backend.startswith("faiss") and not has_faiss():
                raise ImportError(f"backend={backend!r} needs faiss, which is not installed: {FAISS_HINT}; "
                                  "or use backend='numpy' (exact)")
            if backend == "numpy":
                retr = self.index.np_retriever(num_results=n, drop_query_vec=True)
            elif backend == "torch":
                retr = self.index.torch_retriever(num_results=n, device="cpu", drop_query_vec=True)
            elif backend == "faiss-flat":
                retr = self.index.faiss_flat_retriever(drop_query_vec=True)
                retr.num_results = n  # pyterrier-dr's factory has no num_results argument
            else:
                retr = _hnsw_retriever(self.index, num_results=n)
            self._retriever = retr
        return self._retriever

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        validate_frame(inp, hint=_RANKED_INPUT_HINT if "docno" in inp.columns else None)
        if inp.empty:
            return _empty(inp)
        queries = self.encoder.query_encoder()(inp.drop(columns=["query_vec"], errors="ignore"))
        res = self._get_retriever()(queries)
        extra = [c for c in inp.columns if c not in _RESULT_COLUMNS and c != "query_vec"]
        return res[[*_RESULT_COLUMNS, *extra]].reset_index(drop=True)

    def __repr__(self) -> str:
        return f"DenseRetriever(index={str(self.index.index_path)!r}, backend={self.backend!r}, num_results={self.num_results})"


#: pyterrier-dr's HNSW graph parameters (``faiss_hnsw_retriever``'s defaults) and the file it caches the graph in
_HNSW_NEIGHBOURS = 32
_HNSW_EF_CONSTRUCTION = 40
HNSW_GRAPH = f"hnsw_n-{_HNSW_NEIGHBOURS}_ef-{_HNSW_EF_CONSTRUCTION}.faiss"


def _hnsw_retriever(index: FlexIndex, *, num_results: int) -> pt.Transformer:
    """pyterrier-dr's FAISS HNSW retriever over ``index``, its graph file built once, atomically, under a lock.

    pyterrier-dr caches the graph in the index folder (:data:`HNSW_GRAPH`), and the file it writes cannot be read
    back by FAISS >= 1.15 (an HNSW index whose emptied storage holds 0 of its ``ntotal`` vectors is refused), so
    every process after the one that built it failed; it also writes it in place and unlocked, so a process
    killed while writing, or two writing at once, leave a truncated file. The graph is therefore built here, with
    the same parameters, written without its storage (``IO_FLAG_SKIP_STORAGE``: pyterrier-dr attaches its flat
    index on reading, as before) and renamed into place under the pool's lock; a graph FAISS cannot read is rebuilt.
    """
    graph = Path(index.index_path) / HNSW_GRAPH
    if not graph.exists():
        with _lock.file_lock(folder_lock(graph)):
            if not graph.exists():
                _build_hnsw(index, graph)
    try:
        return index.faiss_hnsw_retriever(num_results=num_results, drop_query_vec=True)
    except RuntimeError:
        if _hnsw_readable(graph):
            raise
        _log.warning("HNSW graph %s cannot be read (a build killed while writing it?); rebuilding it", graph)
        with _lock.file_lock(folder_lock(graph)):
            if not _hnsw_readable(graph):
                _build_hnsw(index, graph)
        return index.faiss_hnsw_retriever(num_results=num_results, drop_query_vec=True)


def _hnsw_readable(graph: Path) -> bool:
    import faiss

    try:
        faiss.read_index(str(graph))
    except RuntimeError:
        return False
    return True


def _build_hnsw(index: FlexIndex, graph: Path) -> None:
    """Write the HNSW graph of ``index``'s vectors to ``graph`` atomically, as ``faiss_hnsw_retriever`` builds it
    (same parameters), without the vectors themselves (pyterrier-dr attaches its flat index on reading)."""
    import faiss

    dvecs, meta = index.payload(return_docnos=False)
    hnsw = faiss.IndexHNSWFlat(meta["vec_size"], _HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    for start in range(0, dvecs.shape[0], 4096):
        hnsw.add(np.array(dvecs[start:start + 4096], dtype=np.float32))
    skip = getattr(faiss, "IO_FLAG_SKIP_STORAGE", None)
    with _atomic.atomic_path(graph) as tmp:
        if skip is None:  # a FAISS without the flag (older than the storage check too): pyterrier-dr's own form
            hnsw.storage = faiss.IndexFlatIP(meta["vec_size"])
            faiss.write_index(hnsw, str(tmp))
        else:
            faiss.write_index(hnsw, str(tmp), skip)
    _log.info("built HNSW graph %s (%d passages)", graph, dvecs.shape[0])


class DenseScorer(pt.Transformer):
    """Re-score and re-rank a result frame with a dense encoder (e.g. BM25's top 100).

    Input: ``qid``, ``query``, ``docno`` (plus ``text`` when there is no ``index``), one ``query`` text per ``qid``
    (a qid with several raises ``ValueError``); output: the same rows with the encoder's ``score`` (query vector ·
    passage vector) and ``rank``, best first per query; other columns are kept.
    With an ``index`` the passage vectors are read from it (the pool cache of :func:`dense_index`: nothing is
    encoded per query), each row's vector found by its ``docno``: an input ``docid`` column (another engine's row
    numbers) is kept but never used, and a docno not in the pool raises ``ValueError`` naming a few of them.
    Without an index each input row's ``text`` is encoded (once per docno and call).
    """

    def __init__(self, encoder: DenseEncoder, index: FlexIndex | None = None, *, verbose: bool = False) -> None:
        """Args:
            encoder: The bi-encoder (``encode_queries``/``encode_docs``; with ``index``: the one whose vectors it holds).
            index: ``FlexIndex`` of the pool (from :func:`dense_index`), or ``None`` to encode the input's ``text``.
            verbose: A progress bar over the queries scored from ``index`` (on stderr); ``False``: none.
        """
        self.encoder = encoder
        self.index = index
        self.verbose = verbose

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        self._validate(inp)
        if inp.empty:
            return _empty(inp)
        inp = inp.drop(columns=["query_vec", "score", "rank"], errors="ignore")
        topics = inp[["qid", "query"]].drop_duplicates("qid")
        if self.index is not None:
            res = self._index_scores(inp, topics)
        else:
            res = pt.model.add_ranks(inp.assign(score=self._text_scores(inp, topics)))
            res = res.sort_values(["qid", "rank"], kind="stable")
        extra = [c for c in inp.columns if c not in _RESULT_COLUMNS]
        return res[[*_RESULT_COLUMNS, *extra]].reset_index(drop=True)

    def _validate(self, inp: pd.DataFrame) -> None:
        """Refuse what the scorer cannot answer: not a result frame, no ``text`` without a pool, or a ``qid``
        with several query texts (one query vector per qid: the other texts would be scored as the first)."""
        validate_frame(inp, results=True, hint=_QUERY_INPUT_HINT if "docno" not in inp.columns else None)
        texts = inp[["qid", "query"]].drop_duplicates()
        if len(texts) > inp["qid"].nunique():
            shared = texts[texts["qid"].duplicated(keep=False)].groupby("qid", sort=False)["query"]
            examples = {str(qid): [str(q) for q in group[:3]] for qid, group in list(shared)[:3]}
            raise ValueError(
                f"DenseScorer scores each qid with one query, but {shared.ngroups} qid(s) carry several different "
                f"'query' texts, e.g. {examples}: all their rows would be scored against one of them; give each "
                "query text its own qid")
        if self.index is None:
            try:
                pta.validate.columns(inp, includes=["text"])
            except pt.validate.InputValidationError as exc:
                raise pt.validate.InputValidationError(
                    f"{exc.args[0]} DenseScorer without a pool encodes each row's 'text': give the pool "
                    "(pyterrier_gradrel.dense_scorer(encoder, dataset)) or add the texts first "
                    "(>> pt.text.get_text(dataset, 'text')).", exc.modes) from None

    def _pool_rows(self, docnos: np.ndarray) -> np.ndarray:
        """The pool rows of ``docnos`` in :attr:`index`; a docno not in the pool raises ``ValueError``."""
        lookup, _ = self.index.payload(return_dvecs=False)
        rows = np.asarray(lookup.inv[docnos], dtype=np.int64)
        missing = pd.unique(docnos[(rows < 0) | (rows >= len(lookup))])
        if len(missing):
            raise ValueError(
                f"DenseScorer: {len(missing)} docno(s) of the input are not in the pool whose vectors it reads "
                f"({self.index.index_path}), e.g. {[str(d) for d in missing[:5]]}; re-score results retrieved "
                "from the same dataset the scorer was given")
        return rows

    def _index_scores(self, inp: pd.DataFrame, topics: pd.DataFrame) -> pd.DataFrame:
        """Score ``inp`` with the pool's vectors, each row's vector found by its ``docno``.

        An incoming ``docid`` (another engine's row numbers) is never used for the look-up: it is kept as a
        column only. Scores are pyterrier-dr's numpy scorer's (``NumpyScorer.score``: the same vectors and
        arithmetic), ranked per qid as its ``transform`` ranks them; that ``transform`` is not called because it
        draws a progress bar on every call (``pt.tqdm``, no way to turn it off), a bar shown here only when
        :attr:`verbose`.
        """
        rows = self._pool_rows(inp["docno"].to_numpy())
        vecs = self.encoder.query_encoder()(topics)
        query_vec = dict(zip(vecs["qid"], vecs["query_vec"], strict=True))
        scorer = self.index.np_scorer()
        inp = inp.reset_index(drop=True)
        groups = inp.groupby("qid").indices  # qid -> positions of its rows, in input order
        keys = sorted(groups)
        if self.verbose:
            keys = pt.tqdm(keys, desc="DenseScorer", unit="query")
        order, scores, ranks = [], [], []
        for qid in keys:
            positions = groups[qid]
            score = scorer.score(np.asarray(query_vec[qid]).reshape(1, -1), rows[positions]).reshape(-1)
            best = (-score).argsort()
            order.append(positions[best])
            scores.append(score[best])
            ranks.append(np.arange(len(best)))
        res = inp.iloc[np.concatenate(order)]
        return res.assign(score=np.concatenate(scores), rank=np.concatenate(ranks))

    def _text_scores(self, inp: pd.DataFrame, topics: pd.DataFrame) -> np.ndarray:
        docs = inp[["docno", "text"]].drop_duplicates("docno")
        qvecs = np.asarray(self.encoder.encode_queries(topics["query"].astype(str).tolist()), dtype=np.float32)
        dvecs = _encode_texts(self.encoder, docs["text"].astype(str).tolist(), verbose=False)
        qrow = pd.Series(np.arange(len(topics)), index=topics["qid"].to_numpy())
        drow = pd.Series(np.arange(len(docs)), index=docs["docno"].to_numpy())
        q = qvecs[qrow.loc[inp["qid"].to_numpy()].to_numpy()]
        d = dvecs[drow.loc[inp["docno"].to_numpy()].to_numpy()]
        return np.einsum("ij,ij->i", q, d)

    def __repr__(self) -> str:
        if self.index is None:
            return f"DenseScorer(encoder={self.encoder!r}, index=None)"
        return f"DenseScorer(index={str(self.index.index_path)!r})"


def dense_scorer(
    encoder: EncoderLike,
    dataset: DatasetLike | None = None,
    *,
    verbose: bool = False,
    index: str | os.PathLike | None = None,
) -> DenseScorer:
    """Re-rank retrieved results with a dense encoder: ``bm25 % 100 >> dense_scorer(encoder, dataset)``.

    The re-ranking counterpart of :func:`dense` (which retrieves from the whole pool and refuses ranked input).

    Args:
        encoder: An ``E5BiEncoder`` (anything with ``fingerprint()``), a model name/folder for
            :func:`pyterrier_gradrel.models.load_encoder`, or, without ``dataset``, any pyterrier-dr ``BiEncoder``.
        dataset: Dataset id or PyTerrier dataset whose pool the results come from: the passage vectors are then
            read from (or encoded once into) the same per-model pool cache :func:`dense` uses. ``None``: encode
            each input row's ``text`` instead (add it with ``pt.text.get_text``).
        verbose: Progress bars while encoding the pool and over the queries scored; ``False``: none.
        index: A folder for the pool's vectors instead of the package cache (as in :func:`dense`); needs ``dataset``.

    Returns:
        A :class:`DenseScorer` (result frame -> the same rows re-scored and re-ranked).

    Example:
        >>> import pyterrier_gradrel as gr
        >>> ds = "gradrel/xquad-r/de-en/test"
        >>> rerank = gr.bm25(ds) % 100 >> gr.dense_scorer("multilingual-e5-small", ds)
    """
    encoder = _resolve_encoder(encoder)
    if dataset is None:
        if index is not None:
            raise ValueError("index= names the folder of a pool's vectors: pass the dataset too, "
                             "dense_scorer(encoder, dataset, index=...)")
        return DenseScorer(encoder, verbose=verbose)
    return DenseScorer(encoder, _pool_index(encoder, dataset, verbose=verbose, path=index), verbose=verbose)


def dense(
    encoder: EncoderLike,
    dataset: DatasetLike,
    *,
    backend: str = "numpy",
    num_results: int = 1000,
    verbose: bool = False,
    index: str | os.PathLike | None = None,
) -> DenseRetriever:
    """Dense retrieval of ``encoder`` over the document pool of ``dataset`` (vectors cached per model and pool).

    Args:
        encoder: An ``E5BiEncoder`` (anything with ``fingerprint()``) or a model name/folder for
            :func:`pyterrier_gradrel.models.load_encoder`.
        dataset: Dataset id (``"gradrel/xquad-r/de-en/test"``, ``"irds:..."``) or a PyTerrier dataset.
        backend: One of :data:`BACKENDS`: exact ``"numpy"``/``"torch"``/``"faiss-flat"``, approximate
            ``"faiss-hnsw"`` (for larger pools), or ``"auto"`` (numpy below :data:`HNSW_MIN_DOCS` documents).
        num_results: Results per query.
        verbose: Progress bars.
        index: A folder for the vectors instead of the package cache: encoded there once (atomically) and
            opened by later calls; a folder holding the vectors of another model or pool is refused. The
            index is a plain ``pyterrier_dr.FlexIndex`` (``DenseRetriever.index``), so it can be shared like
            any PyTerrier artifact (``.to_hf(...)``).

    Returns:
        A :class:`DenseRetriever` (query frame -> result frame); its ``index`` is the ``FlexIndex``. To re-rank
        another retriever's results instead, use :func:`dense_scorer`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    encoder = _resolve_encoder(encoder)
    flex = _pool_index(encoder, dataset, verbose=verbose, path=index)
    return DenseRetriever(encoder, flex, backend=backend, num_results=num_results)


def _pool_index(encoder: DenseEncoder, dataset: DatasetLike, *, verbose: bool = False,
                path: str | os.PathLike | None = None) -> FlexIndex:
    collection, lang, digest = _pool_identity(dataset)
    docs = _LazyCorpus(_as_pt_dataset(dataset), verbose=verbose, digest=digest)
    return dense_index(encoder, docs, corpus=f"{collection}.{lang}", verbose=verbose,
                       reuse_collection=fixed_collection(dataset), path=path)


def passage_vectors(encoder: EncoderLike, datasets: Iterable[DatasetLike], *, verbose: bool = False) -> Callable[[Sequence[str]], np.ndarray]:
    """A docno -> vector lookup over the cached pools of ``datasets`` (encoded once if not cached yet).

    Query-side fine-tuning (``TrainConfig(side="query")``) scores its training passages with exactly the
    vectors retrieval will use; this reads them from the same cache :func:`dense` fills.

    Args:
        encoder: The (base) encoder whose passage vectors to read.
        datasets: Dataset ids or PyTerrier datasets whose pools to cover (e.g. the training datasets).
        verbose: Progress bars if a pool has to be encoded.

    Returns:
        ``lookup(docnos) -> (len(docnos), dim) float32 array``; an unknown docno raises ``KeyError``.
    """
    encoder = _resolve_encoder(encoder)
    datasets = list(datasets)
    if not datasets:
        raise ValueError("datasets must name at least one dataset")
    with pool_scope():  # a dataset object listed twice is read once for its identity
        row, table = _vector_table([_pool_index(encoder, dataset, verbose=verbose) for dataset in datasets])

    def lookup(docnos: Sequence[str]) -> np.ndarray:
        missing = [d for d in docnos if d not in row]
        if missing:
            raise KeyError(f"{len(missing)} docnos are in none of the cached pools, e.g. {missing[:3]}")
        return table[[row[d] for d in docnos]]

    return lookup
