"""BM25 with pyterrier-pisa over terms made by :mod:`._tokenize` (so every script works).

The PISA index is built from term -> count dicts (``PisaIndex(stemmer='none').toks_indexer(scale=1)``), and
queries reach PISA as ``query_toks`` dicts made by the *same* tokenizer object, so queries and documents are
tokenized identically and PISA's ASCII-only text tokenizer is never used. A query that yields no terms never
reaches PISA: it gets no results and a warning.

An index is built once per (collection, document language, tokenizer, pyterrier-pisa version) under
``_paths.cache_dir('indexes')/pisa.<collection>.<lang>.<tokenizer name>[.pisa-<version>]`` (``<collection>.<lang>``
is :func:`corpus_key`'s: for a dataset object with neither a ``gradrel/`` nor an ir_datasets id, its name and a
hash of its documents; written atomically, reused by every later call and process; concurrent processes that need
it build it once under :func:`.._lock.file_lock`). The version suffix (:func:`._engine.index_suffix`) is left out for the reference
pyterrier-pisa (:data:`._engine.REFERENCE_PISA`), whose folders were named before it existed; every index records
the pyterrier-pisa that built it (``gradrel_index.json``), and an index of another version is refused on opening.
BM25's k1 and b are query-time parameters in PISA, so one index serves every (k1, b); they are part of the
transformer's ``repr``/name instead.
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import io
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyterrier as pt
import pyterrier_alpha as pta

from pyterrier_gradrel import _atomic, _lock, _paths
from pyterrier_gradrel.retrieval._engine import REFERENCE_PISA, index_suffix, pisa_version
from pyterrier_gradrel.retrieval._tokenize import Bm25Tokenizer, get_tokenizer
from pyterrier_gradrel.retrieval._types import CorpusDataset, DatasetLike, DocRecord

if TYPE_CHECKING:
    from pyterrier_pisa import PisaIndex

    from pyterrier_gradrel.datasets import DatasetInfo

__all__ = ["BM25", "bm25", "bm25_index", "build_count", "corpus_key", "pool_scope"]

_log = logging.getLogger(__name__)

#: builds per index path in this process (tests use it to prove that a second call reuses the index)
_BUILDS: collections.Counter[str] = collections.Counter()

_META = "gradrel_index.json"
#: what an index record written before a key existed was made with: indexes built before the pyterrier-pisa
#: version was recorded are taken as the reference version's (the version of the committed results)
_LEGACY_META = {"pyterrier-pisa": REFERENCE_PISA}
_RESULT_COLUMNS = ["qid", "query", "docno", "score", "rank"]


def build_count(path: str | Path | None = None) -> int:
    """How many times this process built the index at ``path`` (all indexes if ``None``)."""
    if path is None:
        return sum(_BUILDS.values())
    return _BUILDS[str(Path(path))]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def corpus_key(dataset: DatasetLike) -> tuple[str, str]:
    """(collection, doc language) of a dataset: the identity of its document pool.

    Args:
        dataset: A dataset id (``"gradrel/xquad-r/de-en/test"``, with or without ``"irds:"``) or a PyTerrier
            dataset. Benchmark datasets use :func:`pyterrier_gradrel.datasets.info`, so all splits and query
            languages that share a pool share one key (a local collection's key also carries its name and a
            hash of its documents); other ir_datasets datasets (an id, or an object with ``irds_id``/``_irds_id``)
            use their id and ``"und"``; any other object (``get_corpus_iter`` and a ``name``) uses its name and a
            hash of its documents (docno and text, in order), so changed documents under one name get a new key.
            That hash reads the documents once per call (once per outer call within :func:`pool_scope`).
    """
    return _pool_identity(dataset)[:2]


def _pool_identity(dataset: DatasetLike) -> tuple[str, str, str | None]:
    """:func:`corpus_key`, plus the document hash a dataset object's key was made from (``None`` for ids and
    ir_datasets datasets, whose build is not checked against it)."""
    dataset_id = _dataset_id(dataset)
    if dataset_id.startswith("gradrel/"):
        from pyterrier_gradrel.datasets import info

        meta = info(dataset_id)
        lang = meta.doc_lang or "+".join(meta.doc_langs) or "und"
        if not meta.fixed:
            # a local collection's files may be edited (and all report collection "local"): key on its name
            # and on a hash of the documents themselves
            name = dataset_id.split("/")[2]
            return _slug(f"local-{name}-{_corpus_digest(_as_pt_dataset(dataset))[:12]}"), _slug(lang), None
        return _collection_slug(meta), _slug(lang), None
    if _irds_backed(dataset):
        return _slug(dataset_id), "und", None
    # the user's own object: its name alone says nothing about its documents
    digest = _object_digest(dataset)
    return _slug(f"{dataset_id}-{digest[:12]}"), "und", digest


def _irds_backed(dataset: DatasetLike) -> bool:
    """Whether a dataset's documents come from ir_datasets: a dataset id, or an object naming its ir_datasets id
    (PyTerrier's ``IRDSDataset``); such a pool is identified by its id (its documents are versioned there)."""
    if isinstance(dataset, str):
        return True
    return any(isinstance(getattr(dataset, attr, None), str) and getattr(dataset, attr)
               for attr in ("_irds_id", "irds_id"))


#: per :func:`pool_scope`: id(dataset object) -> (the object, its document hash)
_SCOPE: contextvars.ContextVar[dict[int, tuple[object, str]] | None] = contextvars.ContextVar(
    "gradrel_pool_scope", default=None)


@contextlib.contextmanager
def pool_scope() -> Iterator[None]:
    """Within the block, a dataset object's documents are hashed (for :func:`corpus_key`) once.

    ``baselines`` and ``passage_vectors`` open one, so such a call reads an object's documents once for its
    identity however many caches it opens (``bm25``, ``dense`` and ``dense_scorer`` need it once anyway). Nested
    blocks share the outer one; nothing is kept after the outermost block: a later call hashes the documents
    again, so an object whose documents changed in place is never answered from the cache of its old documents.
    """
    if _SCOPE.get() is not None:
        yield
        return
    token = _SCOPE.set({})
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _object_digest(dataset: CorpusDataset) -> str:
    """sha256 of a dataset object's documents (:class:`_PoolHasher`), computed once per :func:`pool_scope`."""
    memo = _SCOPE.get()
    if memo is not None and id(dataset) in memo and memo[id(dataset)][0] is dataset:
        return memo[id(dataset)][1]
    hasher = _PoolHasher()
    for doc in dataset.get_corpus_iter(verbose=False):
        hasher.add(doc)
    digest = hasher.hexdigest()
    if memo is not None:
        memo[id(dataset)] = (dataset, digest)  # the object is held, so its id is not reused within the scope
    return digest


class _PoolHasher:
    """sha256 over a pool's (docno, text) pairs in order, each length-prefixed (no two pools share an input)."""

    def __init__(self) -> None:
        import hashlib

        self._sha = hashlib.sha256()

    def add(self, doc: DocRecord) -> None:
        docno, text = str(doc["docno"]), str(doc["text"])
        self._sha.update(f"{len(docno)}:{docno}{len(text)}:{text}".encode("utf-8", "surrogatepass"))

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _collection_slug(meta: DatasetInfo) -> str:
    """A fixed collection's cache name: its name, plus ``-t<N>`` once its texts changed (``text_version``)."""
    name = str(meta.collection)
    return _slug(name if meta.text_version == 1 else f"{name}-t{meta.text_version}")


def fixed_collection(dataset: DatasetLike) -> str | None:
    """The collection key of a dataset whose docnos name the same passage text in every pool of its collection.

    That holds for the package's benchmark collections (``DatasetInfo.fixed``: XQuAD-R, AfriQA, built from
    pinned, checksummed files), not for local collections (their files may be edited) nor for other datasets:
    ``None`` for those.
    """
    dataset_id = _dataset_id(dataset)
    if not dataset_id.startswith("gradrel/"):
        return None
    from pyterrier_gradrel.datasets import info

    meta = info(dataset_id)
    return _collection_slug(meta) if meta.fixed else None


def _corpus_digest(dataset: CorpusDataset) -> str:
    """sha256 over every (docno, text) of a dataset's corpus."""
    import hashlib

    digest = hashlib.sha256()
    for doc in dataset.get_corpus_iter(verbose=False):
        digest.update(f"{doc['docno']}\t{doc['text']}\n".encode())
    return digest.hexdigest()


def _dataset_id(dataset: DatasetLike) -> str:
    if isinstance(dataset, str):
        return dataset[len("irds:"):] if dataset.startswith("irds:") else dataset
    for attr in ("_irds_id", "irds_id", "name"):
        value = getattr(dataset, attr, None)
        if isinstance(value, str) and value:
            return value[len("irds:"):] if value.startswith("irds:") else value
    raise TypeError(f"dataset must be a dataset id str or a PyTerrier dataset with an id, got {type(dataset).__name__}")


def _as_pt_dataset(dataset: DatasetLike) -> CorpusDataset:
    if isinstance(dataset, str):
        import pyterrier_gradrel  # noqa: F401  (registers the benchmark datasets)

        return pt.get_dataset(dataset if dataset.startswith("irds:") else f"irds:{dataset}")
    return dataset


def bm25_index(
    docs: Iterable[DocRecord],
    *,
    name: str | None = None,
    tokenizer: Bm25Tokenizer,
    threads: int = 1,
    path: str | os.PathLike | None = None,
    corpus: str | None = None,
    verbose: bool = False,
) -> PisaIndex:
    """Build (once) or open the PISA index over ``docs`` tokenized by ``tokenizer``.

    Args:
        docs: Records with ``docno`` and ``text``; only read when the index is not built yet.
        name: Cache name (the folder under ``cache_dir('indexes')``, plus :func:`._engine.index_suffix`: another
            pyterrier-pisa than the reference one builds its own index); should carry collection, language
            and tokenizer, as :func:`bm25` does. Not with ``path``.
        tokenizer: The tokenizer whose terms are indexed.
        threads: PISA threads.
        path: The index folder to build or open instead of the cache (the ``index=`` of :func:`bm25`). A
            folder that holds an index of another ``corpus``, tokenizer or pyterrier-pisa version, or anything but
            an index, is refused.
        corpus: The identity of ``docs`` (``"<collection>.<lang>"``), recorded in the index and checked
            when ``path`` already holds one.
        verbose: Show PISA's build log (on stderr); otherwise it is shown only when the build fails.

    Returns:
        ``pyterrier_pisa.PisaIndex`` over the folder.

    Raises:
        ValueError: when ``path`` holds something else than an index of this corpus and tokenizer built by the
            installed pyterrier-pisa.
    """
    from pyterrier_pisa import PisaIndex

    if (name is None) == (path is None):
        raise ValueError("give exactly one of name= (a cache entry) and path= (an index folder)")
    if path is not None:
        folder = Path(path).expanduser()
        label = str(folder)
        lock = folder_lock(folder)
        expect = {"tokenizer": tokenizer.name, "corpus": corpus, "pyterrier-pisa": pisa_version()}

        def ready() -> bool:
            return index_folder_ready(folder, _META, kind="BM25", expect=expect, legacy=_LEGACY_META)
    else:
        folder = _paths.cache_dir("indexes") / (_slug(name) + index_suffix())
        label = folder.name
        lock = folder

        def ready() -> bool:
            return (folder / _META).exists()

    if not ready():
        # another process building the same index: wait for it and reuse its index
        with _lock.file_lock(lock):
            if not ready():
                _build_index(folder, docs, name=label, tokenizer=tokenizer, threads=threads, corpus=corpus,
                             verbose=verbose)
    return PisaIndex(str(folder), stemmer="none", stops="none", threads=threads)


def folder_lock(folder: Path) -> Path:
    """The lock target of a caller-given index folder: under ``cache_dir('locks')``, keyed by its absolute
    path, so that no lock file is left beside the caller's folder."""
    import hashlib

    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return _paths.cache_dir("locks") / f"{_slug(folder.name)}-{key}"


def index_folder_ready(folder: Path, meta_name: str, *, kind: str, expect: Mapping[str, object],
                       legacy: Mapping[str, object] | None = None) -> bool:
    """Whether a caller-given index folder already holds the index described by ``expect``.

    ``False`` for a missing or empty folder (build it there); ``True`` when its ``meta_name`` record matches
    ``expect`` key by key, a key the record lacks counting as its value in ``legacy`` (what records written before
    the key existed were made with).

    Raises:
        ValueError: for a folder holding an index of another corpus/model/tokenizer, or something else.
    """
    meta = folder / meta_name
    if meta.is_file():
        found = {**(legacy or {}), **json.loads(meta.read_text(encoding="utf-8"))}
        for key, want in expect.items():
            if found.get(key) != want:
                raise ValueError(f"{folder} holds a {kind} index of {key} {found.get(key)!r}, not {want!r}; "
                                 "pass another index= folder (or delete this one to rebuild it)")
        return True
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"{folder} exists but holds no pyterrier-gradrel {kind} index (no {meta_name}); "
                         "pass a new or empty folder as index=")
    return False


@contextlib.contextmanager
def native_stdout(*, verbose: bool) -> Iterator[None]:
    """Keep PISA's log lines and progress meters off stdout, and off the terminal unless ``verbose``.

    PISA writes ``[info]`` lines and meters to file descriptors 1 and 2 from native code, and pyterrier-pisa logs
    ``[INFO]`` lines and tqdm bars through Python's ``sys.stderr``. ``verbose=True``: descriptor 1 is sent to
    stderr (stdout stays clean). ``verbose=False``: descriptors 1 and 2 and Python's ``sys.stdout``/``sys.stderr``
    all go to temporary buffers, dropped when the block succeeds and copied to stderr when it raises (so a
    failing build still shows PISA's own messages). Streams are flushed before, and the C library's buffers before
    the descriptors are restored, so nothing written inside the block surfaces later.
    """
    try:
        out_fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        err_fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
    except (OSError, ValueError):  # no real descriptors (embedded interpreters): nothing to redirect
        yield
        return
    for stream in (sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    if verbose:
        with _descriptors_to(err_fd, [out_fd]):
            yield
        return
    python_text = io.StringIO()
    with tempfile.TemporaryFile() as sink:
        try:
            with _descriptors_to(sink.fileno(), [out_fd, err_fd]), contextlib.redirect_stdout(python_text), \
                    contextlib.redirect_stderr(python_text):
                yield
        except BaseException:
            sink.seek(0)
            _write_all(err_fd, sink.read() + python_text.getvalue().encode("utf-8", "replace"))
            raise


@contextlib.contextmanager
def _descriptors_to(target_fd: int, fds: list[int]) -> Iterator[None]:
    """Point each of ``fds`` at ``target_fd`` for the block (``dup2``), then restore them."""
    saved = {fd: os.dup(fd) for fd in fds}
    try:
        for fd in fds:
            os.dup2(target_fd, fd)
        yield
    finally:
        _flush_c_stdio()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(fd, view):]


def _flush_c_stdio() -> None:
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def _build_index(path: Path, docs: Iterable[DocRecord], *, name: str, tokenizer: Bm25Tokenizer,
                 threads: int, corpus: str | None, verbose: bool) -> None:
    import more_itertools
    from pyterrier_pisa import PisaIndex

    started = time.time()
    docs = more_itertools.peekable(iter(docs))
    if not docs:
        raise ValueError(f"cannot build BM25 index {name!r}: the corpus has no documents")
    count = 0

    def toks():
        nonlocal count
        for doc in docs:
            count += 1
            yield {"docno": str(doc["docno"]), "toks": tokenizer.counts(str(doc["text"]))}

    with _atomic.atomic_path(path) as tmp, native_stdout(verbose=verbose):
        index = PisaIndex(str(tmp), stemmer="none", stops="none", threads=threads)
        index.toks_indexer("toks", scale=1.0).index(toks())
        (tmp / _META).write_text(json.dumps({
            "tokenizer": tokenizer.name, "corpus": corpus, "pyterrier-pisa": pisa_version(), "docs": count,
            "terms": index.num_terms(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.time() - started, 3),
        }, indent=2), encoding="utf-8")
    _BUILDS[str(path)] += 1
    _log.info("built BM25 index %s (%d docs)", path, count)


def validate_frame(inp: pd.DataFrame, *, results: bool = False, hint: str | None = None) -> None:
    """``pta.validate.query_frame`` (or ``result_frame``) with ``query``, hinting at ``get_topics('text')``.

    The benchmark's queries have several fields, so ``dataset.get_topics()`` returns ``text`` (and ``lang``,
    ``article``) but no ``query`` column; the error then says which call gives one.

    Args:
        inp: The transformer's input frame.
        results: Expect a result frame (``qid``, ``query``, ``docno``) instead of a query frame.
        hint: Appended to the error of any other mismatch (e.g. which transformer takes this input instead).

    Raises:
        pyterrier.validate.InputValidationError: as ``pta.validate`` does, with the hint appended.
        ValueError: a query frame with a ``qid`` on several rows (each would be answered again, every
            (qid, docno) of its results repeated).
    """
    check = pta.validate.result_frame if results else pta.validate.query_frame
    try:
        check(inp, extra_columns=["query"])
    except pt.validate.InputValidationError as exc:
        if "query" not in inp.columns and "text" in inp.columns:
            raise pt.validate.InputValidationError(
                f"{exc.args[0]} The frame has a 'text' column but no 'query': load the topics with "
                "dataset.get_topics('text') (or rename 'text' to 'query').", exc.modes) from None
        if hint:
            raise pt.validate.InputValidationError(f"{exc.args[0]} {hint}", exc.modes) from None
        raise
    if not results:
        repeated = inp["qid"][inp["qid"].duplicated()]
        if len(repeated):
            raise ValueError(
                f"a query frame has one row per query, but {repeated.nunique()} qid(s) are on several rows, e.g. "
                f"{[str(q) for q in pd.unique(repeated)[:5]]}: their results would repeat every (qid, docno); drop "
                "the repeats (topics.drop_duplicates('qid')) or give each query its own qid")


def _check_built_with(folder: Path, tokenizer: Bm25Tokenizer) -> None:
    """Refuse an index (with a ``gradrel_index.json`` record) of another tokenizer or pyterrier-pisa version."""
    meta_path = folder / _META
    if not meta_path.exists():
        return
    meta = {**_LEGACY_META, **json.loads(meta_path.read_text(encoding="utf-8"))}
    if meta["tokenizer"] != tokenizer.name:
        raise ValueError(f"index {folder} was built with tokenizer {meta['tokenizer']!r}, not {tokenizer.name!r}")
    running = pisa_version()
    if meta["pyterrier-pisa"] != running:
        raise ValueError(f"index {folder} was built by pyterrier-pisa {meta['pyterrier-pisa']}, not the installed "
                         f"{running}: its format or scores may differ; build another index (bm25() names its "
                         "cache after the version, or pass another index= folder)")


class BM25(pt.Transformer):
    """BM25 retrieval over a :func:`bm25_index`, tokenizing queries with the index's own tokenizer.

    Input: a query frame (``qid``, ``query``). Output: ``qid``, ``query``, ``docno``, ``score``, ``rank``
    (plus the input's other columns), best first. Queries without terms get no results (with a warning).
    """

    def __init__(
        self,
        index: PisaIndex,
        *,
        tokenizer: Bm25Tokenizer,
        k1: float = 0.9,
        b: float = 0.4,
        num_results: int = 1000,
        threads: int = 1,
        verbose: bool = False,
    ) -> None:
        """Args:
            index: A built ``PisaIndex`` (from :func:`bm25_index`).
            tokenizer: The tokenizer the index was built with.
            k1: BM25 k1 (> 0).
            b: BM25 b (in [0, 1]).
            num_results: Results per query (>= 1).
            threads: PISA query threads.
            verbose: Progress bar over queries and PISA's log lines (on stderr; otherwise dropped).
        """
        if not k1 > 0:
            raise ValueError(f"k1 must be > 0, got {k1!r}")
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"b must be in [0, 1], got {b!r}")
        if int(num_results) < 1:
            raise ValueError(f"num_results must be >= 1, got {num_results!r}")
        _check_built_with(Path(index.path), tokenizer)
        self.index = index
        self.tokenizer = tokenizer
        self.k1 = float(k1)
        self.b = float(b)
        self.num_results = int(num_results)
        self.threads = int(threads)
        self.verbose = verbose
        with native_stdout(verbose=verbose):  # PISA logs the build of its (k1, b) score tables to stdout
            self._retriever = index.bm25(k1=self.k1, b=self.b, num_results=self.num_results,
                                         threads=self.threads, verbose=verbose, toks_scale=1.0)

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        validate_frame(inp)
        extra = [c for c in inp.columns if c not in _RESULT_COLUMNS and c != "query_toks"]
        if inp.empty:
            return pd.DataFrame(columns=[*_RESULT_COLUMNS, *extra])
        toks = [self.tokenizer.counts(str(q)) for q in inp["query"]]
        has_terms = [bool(t) for t in toks]
        if not all(has_terms):
            empty = inp.loc[[not h for h in has_terms], "qid"].tolist()
            _log.warning("%d queries have no BM25 terms under %s and get no results: %s",
                         len(empty), self.tokenizer.name, empty[:10])
        queries = inp.drop(columns=["query_toks"], errors="ignore").assign(
            query_toks=[{k: float(v) for k, v in t.items()} for t in toks])
        queries = queries[has_terms].reset_index(drop=True)
        if queries.empty:
            return pd.DataFrame(columns=[*_RESULT_COLUMNS, *extra])
        with native_stdout(verbose=self.verbose):
            res = self._retriever(queries).drop(columns=["query_toks"])
        return res[[*_RESULT_COLUMNS, *extra]]

    def fuse_rank_cutoff(self, k: int) -> BM25 | None:
        """Let ``bm25 % k`` ask PISA for only ``k`` results."""
        if k < self.num_results:
            return BM25(self.index, tokenizer=self.tokenizer, k1=self.k1, b=self.b, num_results=k,
                        threads=self.threads, verbose=self.verbose)
        return None

    def __repr__(self) -> str:
        return (f"BM25(index={str(self.index.path)!r}, tokenizer={self.tokenizer.name!r}, k1={self.k1}, "
                f"b={self.b}, num_results={self.num_results})")


def bm25(
    dataset: DatasetLike,
    *,
    tokenizer: str | Bm25Tokenizer = "auto",
    k1: float = 0.9,
    b: float = 0.4,
    num_results: int = 1000,
    threads: int = 1,
    verbose: bool = False,
    index: str | os.PathLike | None = None,
) -> BM25:
    """BM25 over the document pool of ``dataset`` (index built once per collection, language, tokenizer and
    pyterrier-pisa version).

    Args:
        dataset: Dataset id (``"gradrel/xquad-r/th/test"``, ``"irds:..."``) or a PyTerrier dataset.
        tokenizer: Tokenizer spec (see :func:`pyterrier_gradrel.retrieval.get_tokenizer`) or object.
        k1: BM25 k1 (PISA/Anserini default 0.9).
        b: BM25 b (PISA/Anserini default 0.4).
        num_results: Results per query.
        threads: PISA threads.
        verbose: Progress bars and PISA's log lines (on stderr); ``False`` keeps PISA quiet.
        index: A folder for the PISA index instead of the package cache: built there once (atomically) and
            opened by later calls; a folder holding an index of another pool, tokenizer or pyterrier-pisa
            version is refused. The
            index is a plain ``pyterrier_pisa.PisaIndex`` (``BM25.index``), so it can be shared like any
            PyTerrier artifact (``.to_hf(...)``).

    Returns:
        A :class:`BM25` transformer (query frame -> result frame); its ``index`` is the ``PisaIndex``.

    Example:
        >>> run = bm25("gradrel/xquad-r/th/test")(pt.get_dataset("irds:gradrel/xquad-r/th/test").get_topics("text"))
    """
    collection, lang, digest = _pool_identity(dataset)
    tok = get_tokenizer(tokenizer, lang=lang)
    docs = _LazyCorpus(_as_pt_dataset(dataset), verbose=verbose, digest=digest)
    corpus = f"{collection}.{lang}"
    if index is None:
        pisa = bm25_index(docs, name=f"pisa.{corpus}.{tok.name}", tokenizer=tok, threads=threads, corpus=corpus,
                          verbose=verbose)
    else:
        pisa = bm25_index(docs, path=index, tokenizer=tok, threads=threads, corpus=corpus, verbose=verbose)
    return BM25(pisa, tokenizer=tok, k1=k1, b=b, num_results=num_results, threads=threads, verbose=verbose)


class _LazyCorpus:
    """Iterates a dataset's corpus only when asked (a cached index never reads it).

    With ``digest`` (the document hash a dataset object's pool key was made from), the documents read are hashed
    again, and a corpus that no longer gives that hash raises ``ValueError`` when its last document has been
    read, so a cache is never built under the key of other documents.
    """

    def __init__(self, dataset: CorpusDataset, *, verbose: bool, digest: str | None = None) -> None:
        self.dataset = dataset
        self.verbose = verbose
        self.digest = digest

    def __iter__(self) -> Iterator[DocRecord]:
        docs = self.dataset.get_corpus_iter(verbose=self.verbose)
        if self.digest is None:
            yield from docs
            return
        hasher = _PoolHasher()
        for doc in docs:
            hasher.add(doc)
            yield doc
        if hasher.hexdigest() != self.digest:
            raise ValueError(
                f"the documents of dataset {_dataset_id(self.dataset)!r} changed between reading them for the pool's "
                "identity and building its cache (get_corpus_iter must give the same documents, in the same order, "
                "every time); nothing was cached")
