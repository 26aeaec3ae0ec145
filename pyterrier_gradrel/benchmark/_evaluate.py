"""The benchmark's measures: the graded main score and the threshold profile, scored per query.

A suite declares its measures (``main_score`` and ``profile: {rels, measures}`` in its YAML);
:func:`pyterrier_gradrel.benchmark._suite.suite_measures` parses them with :func:`pyterrier_gradrel._evaluation.parse_measures` and names them with
:func:`pyterrier_gradrel._evaluation.label`, the vocabulary of the experiments and the retrieval studies. For
``gradrel-v1`` (main score ``nDCG@10``, profile ``nDCG@10``, ``R@100``, ``RR@100`` at rel 1, 2, 3, depth 100):

* ``nDCG@10``, gains 2^g − 1 (:func:`pyterrier_gradrel._evaluation.graded_ndcg`), the main score;
* for each threshold ``rel`` r: ``nDCG(rel=r)@10`` (gain 1 for grades ≥ r, 0 below), ``R(rel=r)@100`` and
  ``RR(rel=r)@100`` (ir_measures leaves out its default ``rel=1``: ``R@100``, ``RR@100``).

One :class:`pyterrier_gradrel._evaluation.Evaluator` is prepared per task (the qrels are converted once, which
matters for XQuAD-R's ``multi`` pool with 1.26M qrels rows) and reused for every system. Systems are scored in their
own order (``keep_order``: by score as ``pt.Experiment`` sorts, score ties by rank, else in row order; by rank
only for a run without scores), cut to the suite's depth, so ``RR`` is
``RR@depth`` whatever depth a system returns; queries a system does not answer score 0.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pyterrier_gradrel._evaluation import Evaluator
from pyterrier_gradrel.benchmark._suite import DEFAULT_SUITE, Suite, load_suite, suite_measures

__all__ = ["measure_names", "prepare_evaluators", "score_run", "suite_measures"]


def measure_names(suite: Suite) -> list[str]:
    """The label of each of the suite's measures (:func:`suite_measures`): per-query columns and JSON scores."""
    return [spec.label for spec in suite_measures(suite)]


def prepare_evaluators(qrels: pd.DataFrame, suite: Suite | str | Path = DEFAULT_SUITE) -> Evaluator:
    """The task's evaluator of the suite's measures, from its qrels (``qid, docno, label``).

    Args:
        qrels: The task's qrels.
        suite: The suite (or its name or YAML path) whose measures and depth apply.
    """
    spec = suite if isinstance(suite, Suite) else load_suite(suite)
    return Evaluator(qrels, [m.measure for m in suite_measures(spec)], keep_order=True, depth=spec.depth)


def score_run(evaluator: Evaluator, run: pd.DataFrame) -> pd.DataFrame:
    """Per-query scores of ``run`` (``qid, docno`` and ``rank`` or ``score``).

    Returns:
        One row per query of the qrels (``qid`` and one column per measure, named by its label);
        unanswered queries score 0.
    """
    return evaluator.table(run)
