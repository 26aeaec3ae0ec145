"""The names of the benchmark's baselines, without importing PyTerrier.

``gradrel --help``, ``benchmark`` and experiment-config validation need the names but not the pipelines
(:mod:`pyterrier_gradrel.retrieval._baselines`, which loads PyTerrier), so the tuple lives here, once.
"""
from __future__ import annotations

__all__ = ["BASELINES", "BM25_BASELINES", "DEFAULT_BASELINES"]

#: baseline names, in table order
BASELINES: tuple[str, ...] = ("BM25", "mE5-zero-shot", "BM25>>mE5", "RRF(BM25,mE5)")
#: the baselines an experiment config evaluates when it names none
DEFAULT_BASELINES: tuple[str, ...] = BASELINES[:2]
#: the baselines whose runs BM25 makes (alone, or as the first stage of a reranking or a fusion)
BM25_BASELINES: tuple[str, ...] = tuple(name for name in BASELINES if "BM25" in name)
