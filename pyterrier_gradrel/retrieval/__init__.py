"""Retrieval: multilingual BM25 (pyterrier-pisa), cached dense retrieval (pyterrier-dr) and named baselines.

Importing this sub-package is cheap: pyterrier-pisa, pyterrier-dr, faiss and torch load on first use.
"""
from __future__ import annotations

from pyterrier_gradrel.retrieval._baselines import BASELINES, RRF, baselines
from pyterrier_gradrel.retrieval._bm25 import BM25, bm25, bm25_index, build_count, corpus_key
from pyterrier_gradrel.retrieval._dense import (
    BACKENDS,
    HNSW_MIN_DOCS,
    DenseRetriever,
    DenseScorer,
    dense,
    dense_index,
    encode_count,
    passage_vectors,
)
from pyterrier_gradrel.retrieval._tokenize import (
    AUTO_TOKENIZER,
    TOKENIZER_KINDS,
    Bm25Tokenizer,
    ScriptTokenizer,
    SubwordTokenizer,
    get_tokenizer,
    tokenize,
)

__all__ = [
    "AUTO_TOKENIZER",
    "BACKENDS",
    "BASELINES",
    "BM25",
    "HNSW_MIN_DOCS",
    "RRF",
    "TOKENIZER_KINDS",
    "Bm25Tokenizer",
    "DenseRetriever",
    "DenseScorer",
    "ScriptTokenizer",
    "SubwordTokenizer",
    "baselines",
    "bm25",
    "bm25_index",
    "build_count",
    "corpus_key",
    "dense",
    "dense_index",
    "encode_count",
    "get_tokenizer",
    "passage_vectors",
    "tokenize",
]
