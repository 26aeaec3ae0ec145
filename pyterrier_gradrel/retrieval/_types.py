"""The types the retrieval API accepts: datasets, document records and dense encoders.

Protocols, so that PyTerrier datasets, the package's encoders and test doubles all fit without importing
pyterrier-dr, torch or ir_datasets here.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import pyterrier as pt

__all__ = ["CorpusDataset", "DatasetLike", "DenseEncoder", "DocRecord", "EncoderLike"]

#: One document: a mapping with at least ``docno`` and ``text``.
DocRecord: TypeAlias = Mapping[str, object]


class CorpusDataset(Protocol):
    """A dataset whose documents can be read: a PyTerrier dataset, or anything with ``get_corpus_iter``.

    Its identity (the cache key of its pool, :func:`pyterrier_gradrel.retrieval.corpus_key`) is its
    ``irds_id``/``_irds_id`` (an ir_datasets dataset), else its ``name`` with a hash of its documents.
    """

    def get_corpus_iter(self, verbose: bool = ...) -> Iterable[DocRecord]:
        """The documents, each with ``docno`` and ``text``."""
        ...


#: A dataset id (``"gradrel/xquad-r/th/test"``, optionally ``"irds:..."``) or a dataset object.
DatasetLike: TypeAlias = str | CorpusDataset


class DenseEncoder(Protocol):
    """A bi-encoder whose passage vectors can be cached: ``E5BiEncoder``, ``QueryTunedEncoder``.

    ``fingerprint()`` (or ``doc_fingerprint()`` where passages and queries use different weights) names its
    passage vectors: a hex digest of at least 16 characters.
    """

    def fingerprint(self) -> str:
        """A hex digest of everything that decides the vectors."""
        ...

    def encode_docs(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """``(len(texts), dim)`` float32 passage vectors."""
        ...

    def query_encoder(self) -> pt.Transformer:
        """A transformer adding ``query_vec`` to a query frame."""
        ...


#: A dense encoder, or a model name/folder for :func:`pyterrier_gradrel.models.load_encoder`.
EncoderLike: TypeAlias = str | os.PathLike[str] | DenseEncoder
