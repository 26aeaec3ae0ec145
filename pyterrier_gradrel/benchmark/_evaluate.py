"""The benchmark's measures: the graded main score and the threshold profile, scored per query.

One :class:`pyterrier_gradrel._evaluation.Evaluator` is prepared per task (the qrels are converted once,
which matters for XQuAD-R's ``multi`` pool with 1.26M qrels rows) and reused for every system:

* ``nDCG@10`` with gains 2^g − 1 (:func:`pyterrier_gradrel._evaluation.graded_ndcg`), the main score;
* for each threshold ``rel`` r: nDCG@10 with gain 1 for grades ≥ r (0 below), ``R(rel=r)@100`` and ``RR(rel=r)``.

Systems are scored in their own order (``keep_order``: by rank, else by score with ties in row order), cut to
the suite's depth (100), so ``RR`` is ``RR@100`` whatever depth a system returns; queries a system does not
answer score 0.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pyterrier_gradrel._evaluation import Evaluator

__all__ = ["measure_names", "prepare_evaluators", "score_run"]

MAIN = "nDCG@10"


def measure_names(rels: Sequence[int] = (1, 2, 3)) -> list[str]:
    """Column names in table order: the main score, then nDCG@10, R@100 and RR@100 for each ``rel``."""
    names = [MAIN]
    for r in rels:
        names += [f"nDCG@10(rel={r})", f"R(rel={r})@100", f"RR(rel={r})@100"]
    return names


def prepare_evaluators(qrels: pd.DataFrame, *, rels: Sequence[int] = (1, 2, 3), depth: int = 100) -> Evaluator:
    """The task's evaluator of the main score and the profile at ``rels``, from its qrels (``qid, docno, label``)."""
    import ir_measures

    from pyterrier_gradrel._evaluation import binary_gains, graded_ndcg

    measures = [graded_ndcg(10)]
    for r in rels:
        measures += [ir_measures.nDCG(gains=binary_gains(r)) @ 10, ir_measures.R(rel=r) @ 100, ir_measures.RR(rel=r)]
    return Evaluator(qrels, measures, names=measure_names(rels), keep_order=True, depth=depth)


def score_run(evaluator: Evaluator, run: pd.DataFrame) -> pd.DataFrame:
    """Per-query scores of ``run`` (``qid, docno`` and ``rank`` or ``score``).

    Returns:
        One row per query of the qrels (``qid`` and :func:`measure_names`); unanswered queries score 0.
    """
    return evaluator.table(run)
