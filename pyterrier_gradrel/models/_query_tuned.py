"""``QueryTunedEncoder``: a fine-tuned query encoder over the passage vectors of a frozen base encoder.

Query-side fine-tuning keeps the passage index fixed: passages stay with the base model, so their
vectors (cached once per base model and pool) are shared by every fine-tuned model, and only queries are
re-encoded per model. On a large pool that turns a fine-tuning run's evaluation from minutes of passage
encoding into seconds (AfriQA's 5,401-passage English pool: ~18 min of encoding per model on two CPU
cores without AMX). It is the usual choice when re-indexing a corpus per model is too expensive, and a
different protocol from the paper's shared-tower fine-tuning: results of the two are not interchangeable
(run keys and reports keep them apart).

The fine-tuned folder is a normal encoder folder whose ``gradrel_encoder.json`` carries
``doc_encoder: {"path": ..., "fingerprint": ...}``; :func:`pyterrier_gradrel.models.load_encoder` returns
a ``QueryTunedEncoder`` for it and refuses a base whose weights changed since training.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyterrier_dr

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: The settings key that marks a query-tuned folder.
DOC_ENCODER_KEY = "doc_encoder"


class QueryTunedEncoder(pyterrier_dr.BiEncoder):
    """Queries through ``query`` (fine-tuned), passages through ``docs`` (the frozen base).

    Example::

        enc = load_encoder("experiments/runs/.../model")        # a folder trained with side="query"
        pipe = retrieval.dense(enc, "gradrel/afriqa/hau/test")   # reuses the base model's passage vectors
    """

    def __init__(self, query: Any, docs: Any) -> None:
        """Args:
        query: The fine-tuned ``E5BiEncoder`` (used for queries only).
        docs: The base ``E5BiEncoder`` whose passage vectors the query encoder was trained against.
        """
        for name, enc in (("query", query), ("docs", docs)):
            if not callable(getattr(enc, "fingerprint", None)):
                raise TypeError(f"{name} must be an encoder with fingerprint() (E5BiEncoder), "
                                f"got {type(enc).__name__}")
        if query.dim != docs.dim:
            raise ValueError(f"query and docs encoders differ in dimension: {query.dim} vs {docs.dim}")
        super().__init__(batch_size=query.batch_size, text_field=docs.text_field, verbose=query.verbose)
        self.query = query
        self.docs = docs
        self.path = query.path
        self.settings = query.settings

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.query.dim)

    def __repr__(self) -> str:
        return f"QueryTunedEncoder(query={self.query!r}, docs={self.docs!r})"

    def encode_queries(self, texts: Iterable[str], batch_size: int | None = None) -> np.ndarray:
        """Embed queries with the fine-tuned encoder."""
        return self.query.encode_queries(texts, batch_size=batch_size)

    def encode_docs(self, texts: Iterable[str], batch_size: int | None = None) -> np.ndarray:
        """Embed passages with the frozen base encoder."""
        return self.docs.encode_docs(texts, batch_size=batch_size)

    def encode_queries_torch(self, texts: Sequence[str], batch_size: int | None = None) -> torch.Tensor:
        """Embed queries with the fine-tuned encoder, keeping the autograd graph (pyterrier-dr's training hook)."""
        return self.query.encode_queries_torch(texts, batch_size=batch_size)

    def encode_docs_torch(self, texts: Sequence[str], batch_size: int | None = None) -> torch.Tensor:
        """Embed passages with the frozen base encoder as a tensor (pyterrier-dr's training hook).

        The base is never trained with it (query-side training reads its cached vectors), but the
        graph is the base model's, like :meth:`encode_docs`' vectors.
        """
        return self.docs.encode_docs_torch(texts, batch_size=batch_size)

    def doc_fingerprint(self) -> str:
        """The identity of the passage vectors: the base encoder's fingerprint (shared embedding cache)."""
        return str(self.docs.fingerprint())

    def fingerprint(self) -> str:
        """Hex sha256 over both encoders' fingerprints (the retrieval model's identity)."""
        material = f"query-tuned|{self.query.fingerprint()}|{self.docs.fingerprint()}"
        return hashlib.sha256(material.encode()).hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the query encoder's folder, with the reference to the base in its settings, atomically."""
        from pyterrier_gradrel.models._encoder import E5BiEncoder

        q = self.query
        return E5BiEncoder.from_model(q.model, q.tokenizer, with_doc_reference(q.settings, self.docs),
                                   device=q.device, precision=q.precision).save(path)


def with_doc_reference(settings: dict[str, Any], docs: Any) -> dict[str, Any]:
    """``settings`` plus the ``doc_encoder`` entry that ties a query-tuned folder to its base encoder ``docs``."""
    if getattr(docs, "path", None) is None:
        raise ValueError("the base encoder must be loaded from a folder (its path is stored with the query encoder)")
    reference = {"path": str(Path(docs.path).resolve()), "fingerprint": str(docs.fingerprint()),
                 "precision": str(docs.precision)}
    return {**settings, DOC_ENCODER_KEY: reference}


def load_doc_encoder(reference: Any, **kwargs: Any) -> Any:
    """Load the base encoder a query-tuned folder refers to, checking its fingerprint.

    The base is loaded in the precision its passage vectors were made with (``reference['precision']``),
    so a model trained against bf16 vectors on one machine keeps them on another.

    Raises:
        ValueError: the reference is malformed, or the folder's weights are not the ones trained against.
        FileNotFoundError: the base folder is gone.
    """
    from pyterrier_gradrel.models._encoder import E5BiEncoder

    if not isinstance(reference, dict) or not {"path", "fingerprint"} <= set(reference):
        raise ValueError(f"{DOC_ENCODER_KEY} must be a dict with 'path' and 'fingerprint', got {reference!r}")
    path = Path(reference["path"])
    if not path.is_dir():
        raise FileNotFoundError(f"the base encoder of this query-tuned model is missing: {path} "
                                f"(fingerprint {reference['fingerprint'][:12]})")
    kwargs.setdefault("precision", reference.get("precision", "auto"))
    docs = E5BiEncoder.from_pretrained(path, **kwargs)
    if docs.fingerprint() != reference["fingerprint"]:
        raise ValueError(f"the base encoder at {path} has fingerprint {docs.fingerprint()[:12]}, but the query "
                         f"encoder was trained against {reference['fingerprint'][:12]} (different weights or "
                         "precision); retrain, or load the original base")
    return docs
