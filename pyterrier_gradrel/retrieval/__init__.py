"""Retrieval: multilingual BM25 (pyterrier-pisa), cached dense retrieval (pyterrier-dr) and named baselines.

Importing this sub-package is cheap: pyterrier-pisa, pyterrier-dr, faiss and torch load on first use.
"""
from __future__ import annotations

from pyterrier_gradrel._lazy import lazy_exports

# public name -> "module:attribute", imported on first access (``gradrel --help`` must not load torch)
_LAZY: dict[str, str] = {
    "AUTO_TOKENIZER": "pyterrier_gradrel.retrieval._tokenize:AUTO_TOKENIZER",
    "BACKENDS": "pyterrier_gradrel.retrieval._dense:BACKENDS",
    "BASELINES": "pyterrier_gradrel.retrieval._names:BASELINES",
    "BM25": "pyterrier_gradrel.retrieval._bm25:BM25",
    "HNSW_MIN_DOCS": "pyterrier_gradrel.retrieval._dense:HNSW_MIN_DOCS",
    "RRF": "pyterrier_gradrel.retrieval._baselines:RRF",
    "TOKENIZER_KINDS": "pyterrier_gradrel.retrieval._tokenize:TOKENIZER_KINDS",
    "Bm25Tokenizer": "pyterrier_gradrel.retrieval._tokenize:Bm25Tokenizer",
    "CorpusDataset": "pyterrier_gradrel.retrieval._types:CorpusDataset",
    "DatasetLike": "pyterrier_gradrel.retrieval._types:DatasetLike",
    "DenseEncoder": "pyterrier_gradrel.retrieval._types:DenseEncoder",
    "DocRecord": "pyterrier_gradrel.retrieval._types:DocRecord",
    "EncoderLike": "pyterrier_gradrel.retrieval._types:EncoderLike",
    "DenseRetriever": "pyterrier_gradrel.retrieval._dense:DenseRetriever",
    "DenseScorer": "pyterrier_gradrel.retrieval._dense:DenseScorer",
    "ScriptTokenizer": "pyterrier_gradrel.retrieval._tokenize:ScriptTokenizer",
    "SubwordTokenizer": "pyterrier_gradrel.retrieval._tokenize:SubwordTokenizer",
    "baselines": "pyterrier_gradrel.retrieval._baselines:baselines",
    "bm25": "pyterrier_gradrel.retrieval._bm25:bm25",
    "bm25_index": "pyterrier_gradrel.retrieval._bm25:bm25_index",
    "build_count": "pyterrier_gradrel.retrieval._bm25:build_count",
    "corpus_key": "pyterrier_gradrel.retrieval._bm25:corpus_key",
    "dense": "pyterrier_gradrel.retrieval._dense:dense",
    "dense_index": "pyterrier_gradrel.retrieval._dense:dense_index",
    "dense_scorer": "pyterrier_gradrel.retrieval._dense:dense_scorer",
    "encode_count": "pyterrier_gradrel.retrieval._dense:encode_count",
    "get_tokenizer": "pyterrier_gradrel.retrieval._tokenize:get_tokenizer",
    "passage_vectors": "pyterrier_gradrel.retrieval._dense:passage_vectors",
    "tokenize": "pyterrier_gradrel.retrieval._tokenize:tokenize",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
