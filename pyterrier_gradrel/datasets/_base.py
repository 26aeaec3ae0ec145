"""In-memory ir_datasets components shared by the collection loaders.

The benchmark's collections are small (a few thousand sentences or passages), so each loader parses its
source files once per process into tuples of namedtuples; these components serve them to ir_datasets and
PyTerrier (iteration with slicing, ``docs_store`` lookups for ``text_loader``, counts, graded qrels).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, TrecQrel
from ir_datasets.indices import Docstore


@dataclass(frozen=True)
class DocPool:
    """Parsed documents in a fixed order, with an id index."""

    docs: tuple[Any, ...]
    index: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, docs: Iterable[Any], *, source: str) -> DocPool:
        """Build a pool; ``ValueError`` (naming ``source``) on duplicate ``doc_id``s."""
        docs = tuple(docs)
        index: dict[str, int] = {}
        for i, doc in enumerate(docs):
            if doc.doc_id in index:
                raise ValueError(f"{source}: duplicate doc_id {doc.doc_id!r}")
            index[doc.doc_id] = i
        return cls(docs, index)


class SliceableIter(Iterator):
    """An iterator over a sequence that also supports ``it[i]`` and ``it[a:b]`` (ir_datasets' docs_iter API)."""

    def __init__(self, items: Sequence[Any]):
        self._items = items
        self._pos = 0

    def __iter__(self) -> SliceableIter:
        return self

    def __next__(self) -> Any:
        if self._pos >= len(self._items):
            raise StopIteration
        item = self._items[self._pos]
        self._pos += 1
        return item

    def __len__(self) -> int:
        return len(self._items) - self._pos

    def __getitem__(self, key: int | slice) -> Any:
        rest = self._items[self._pos:]
        if isinstance(key, slice):
            return SliceableIter(rest[key])
        return rest[key]


class MemoryDocstore(Docstore):
    """A docstore over a :class:`DocPool` (used by ``docs_store()`` and PyTerrier's ``text_loader``)."""

    def __init__(self, pool: DocPool, doc_cls: type):
        super().__init__(doc_cls, "doc_id")
        self._pool = pool

    def get_many_iter(self, doc_ids: Iterable[str]) -> Iterator[Any]:
        for doc_id in doc_ids:
            i = self._pool.index.get(doc_id)
            if i is not None:
                yield self._pool.docs[i]

    def count(self) -> int:
        return len(self._pool.docs)

    def built(self) -> bool:
        return True


class MemoryDocs(BaseDocs):
    """Documents served from a lazily loaded :class:`DocPool`."""

    def __init__(self, load: Callable[[], DocPool], doc_cls: type[NamedTuple], *, lang: str | None,
                 namespace: str):
        self._load = load
        self._doc_cls = doc_cls
        self._lang = lang
        self._namespace = namespace

    def docs_iter(self) -> SliceableIter:
        return SliceableIter(self._load().docs)

    def docs_count(self) -> int:
        return len(self._load().docs)

    def docs_store(self, field: str = "doc_id") -> MemoryDocstore:
        if field != "doc_id":
            raise ValueError(f"docs_store supports field='doc_id' only, got {field!r}")
        return MemoryDocstore(self._load(), self._doc_cls)

    def docs_cls(self) -> type[NamedTuple]:
        return self._doc_cls

    def docs_namespace(self) -> str:
        return self._namespace

    def docs_lang(self) -> str | None:
        return self._lang


class MemoryQueries(BaseQueries):
    """Queries served from a lazily loaded tuple."""

    def __init__(self, load: Callable[[], Sequence[Any]], query_cls: type[NamedTuple], *, lang: str | None,
                 namespace: str):
        self._load = load
        self._query_cls = query_cls
        self._lang = lang
        self._namespace = namespace

    def queries_iter(self) -> Iterator[Any]:
        return iter(self._load())

    def queries_count(self) -> int:
        return len(self._load())

    def queries_cls(self) -> type[NamedTuple]:
        return self._query_cls

    def queries_namespace(self) -> str:
        return self._namespace

    def queries_lang(self) -> str | None:
        return self._lang


class MemoryQrels(BaseQrels):
    """Graded qrels (``TrecQrel``: query_id, doc_id, relevance, iteration) produced by a function."""

    def __init__(self, produce: Callable[[], Iterable[TrecQrel]], qrels_defs: dict[int, str]):
        self._produce = produce
        self._defs = dict(qrels_defs)

    def qrels_iter(self) -> Iterator[TrecQrel]:
        return iter(self._produce())

    def qrels_defs(self) -> dict[int, str]:
        return dict(self._defs)

    def qrels_cls(self) -> type[TrecQrel]:
        return TrecQrel
