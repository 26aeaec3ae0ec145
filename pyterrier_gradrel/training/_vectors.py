"""Query-side training (``side="query"``): the base model's fixed passage vectors, looked up by docno."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pyterrier_gradrel.models import E5BiEncoder


class OnDemandVectors:
    """docnos -> the base encoder's passage vectors, encoded on first use and kept (``side="query"``)."""

    def __init__(self, encoder: E5BiEncoder, text: Mapping[str, str]) -> None:
        self.encoder, self.text, self.cache = encoder, text, {}

    def __call__(self, docnos: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(d for d in docnos if d not in self.cache))
        if missing:
            for d, v in zip(missing, self.encoder.encode_docs([self.text[d] for d in missing]), strict=True):
                self.cache[d] = v
        return np.stack([self.cache[d] for d in docnos])


def checked_vectors(fn: Callable[[Sequence[str]], np.ndarray], *, dim: int) -> Callable[[Sequence[str]], np.ndarray]:
    """``fn``, checked to return one ``dim``-wide row per docno."""

    def lookup(docnos: Sequence[str]) -> np.ndarray:
        out = np.asarray(fn(list(docnos)))
        if out.shape != (len(docnos), dim):
            raise ValueError(f"doc_vectors returned shape {out.shape} for {len(docnos)} docnos; expected "
                             f"({len(docnos)}, {dim})")
        return out
    return lookup
