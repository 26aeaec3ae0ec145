"""The benchmark's named baselines as reusable PyTerrier pipelines.

* ``BM25``: :func:`pyterrier_gradrel.retrieval.bm25` (PISA over script/subword terms).
* ``mE5-zero-shot``: multilingual-e5-small (not fine-tuned), exact dense retrieval.
* ``BM25>>mE5``: BM25's top ``rerank_depth`` re-scored with the cached mE5 document vectors.
* ``RRF(BM25,mE5)``: reciprocal-rank fusion (Cormack et al. 2009; ``pyterrier_alpha.fusion.RRFusion``, k=60).
"""
from __future__ import annotations

import pandas as pd
import pyterrier as pt
import pyterrier_alpha as pta

from pyterrier_gradrel.retrieval._bm25 import bm25, pool_scope, validate_frame
from pyterrier_gradrel.retrieval._dense import (
    BACKENDS,
    DenseRetriever,
    DenseScorer,
    _pool_index,
    _resolve_encoder,
)
from pyterrier_gradrel.retrieval._names import BASELINES
from pyterrier_gradrel.retrieval._tokenize import Bm25Tokenizer
from pyterrier_gradrel.retrieval._types import DatasetLike, EncoderLike

__all__ = ["BASELINES", "RRF", "baselines"]

_RESULT_COLUMNS = ["qid", "query", "docno", "score", "rank"]


class RRF(pta.fusion.RRFusion):
    """Reciprocal-rank fusion of several retrievers (``pyterrier_alpha.fusion.RRFusion``), empty-frame safe.

    A query that only one retriever answers keeps that retriever's ranking; score = sum of 1/(k + rank),
    with PyTerrier's 0-based ranks. The input's other columns (e.g. ``lang``) are kept on every result row,
    as :class:`~pyterrier_gradrel.retrieval.BM25` and dense retrieval keep them (``RRFusion`` drops them).
    """

    def __init__(self, *transformers: pt.Transformer, k: int = 60, num_results: int = 1000) -> None:
        """Args:
            transformers: Two or more retrievers (query frame -> result frame).
            k: The RRF constant (> 0; 60 as in Cormack et al.).
            num_results: Results kept per query (>= 1).
        """
        if len(transformers) < 2:
            raise ValueError(f"RRF needs at least 2 transformers, got {len(transformers)}")
        if not k > 0:
            raise ValueError(f"k must be > 0, got {k!r}")
        if int(num_results) < 1:
            raise ValueError(f"num_results must be >= 1, got {num_results!r}")
        super().__init__(*transformers, k=k, num_results=int(num_results))

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        validate_frame(inp)
        extra = [c for c in inp.columns if c not in _RESULT_COLUMNS]
        columns = [*_RESULT_COLUMNS, *extra]
        if inp.empty:
            return pd.DataFrame(columns=columns)
        runs = [t(inp) for t in self.transformers]
        runs = [r[_RESULT_COLUMNS] for r in runs if not r.empty]
        if not runs:
            return pd.DataFrame(columns=columns)
        fused = pta.fusion.rr_fusion(*runs, k=self.k, num_results=self.num_results)[_RESULT_COLUMNS]
        if extra:
            fused = fused.merge(inp[["qid", *extra]].drop_duplicates("qid"), on="qid", how="left")
        return fused[columns].reset_index(drop=True)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transformers)
        return f"RRF({inner}, k={self.k}, num_results={self.num_results})"


def baselines(
    dataset: DatasetLike,
    *,
    encoder: EncoderLike | None = None,
    tokenizer: str | Bm25Tokenizer = "auto",
    backend: str = "numpy",
    num_results: int = 1000,
    rerank_depth: int = 100,
    rrf_k: int = 60,
    verbose: bool = False,
) -> dict[str, pt.Transformer]:
    """The named baselines over ``dataset``'s document pool, in :data:`BASELINES` order.

    Args:
        dataset: Dataset id (``"gradrel/xquad-r/th-en/test"``) or a PyTerrier dataset.
        encoder: The dense model: ``None`` for zero-shot multilingual-e5-small, a model name/folder, or an
            ``E5BiEncoder`` (e.g. a fine-tuned one; the names still say ``mE5``).
        tokenizer: BM25 tokenizer spec (see :func:`pyterrier_gradrel.retrieval.get_tokenizer`).
        backend: Dense retrieval back-end, one of :data:`pyterrier_gradrel.retrieval.BACKENDS`.
        num_results: Results per query for BM25, dense and the fusion.
        rerank_depth: How many BM25 results ``BM25>>mE5`` re-ranks (>= 1).
        rrf_k: The RRF constant.
        verbose: Progress bars.

    The dense baselines read the pool's vectors from the cache :func:`pyterrier_gradrel.retrieval.dense` fills
    (and, for a fixed collection, take the vectors of its cached sibling pools: XQuAD-R's ``multi`` pool costs
    no encoding once the 12 language pools are cached).

    Returns:
        ``{"BM25": ..., "mE5-zero-shot": ..., "BM25>>mE5": ..., "RRF(BM25,mE5)": ...}``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if int(rerank_depth) < 1:
        raise ValueError(f"rerank_depth must be >= 1, got {rerank_depth!r}")
    encoder = _resolve_encoder("multilingual-e5-small" if encoder is None else encoder)
    with pool_scope():  # a dataset object's documents are read once for the identity of both caches
        sparse = bm25(dataset, tokenizer=tokenizer, num_results=num_results, verbose=verbose)
        # the pool cache dense() uses, with its reuse of the vectors of sibling pools (XQuAD-R's multi pool)
        index = _pool_index(encoder, dataset, verbose=verbose)
    dense_retr = DenseRetriever(encoder, index, backend=backend, num_results=num_results)
    return {
        "BM25": sparse,
        "mE5-zero-shot": dense_retr,
        # PISA retrieves only the re-ranking depth (not 1000 results cut afterwards)
        "BM25>>mE5": (sparse.fuse_rank_cutoff(int(rerank_depth)) or sparse) >> DenseScorer(encoder, index,
                                                                                          verbose=verbose),
        "RRF(BM25,mE5)": RRF(sparse, dense_retr, k=rrf_k, num_results=num_results),
    }
