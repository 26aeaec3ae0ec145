"""The retrieval studies' evaluation (``gradrel baselines`` and ``gradrel bm25-tokenizers``) and their tables.

Measures (graded labels 1..3): ``nDCG@10`` with exponential gains 2^g - 1, ``R(rel=2)@100``, ``RR(rel=2)`` and
``RR(rel=3)``, evaluated by :func:`pyterrier_gradrel._evaluation.evaluate_runs`; columns carry ir_measures'
canonical names.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from pyterrier_gradrel import _evaluation
from pyterrier_gradrel._markdown import table_lines

if TYPE_CHECKING:
    from ir_measures import Measure

__all__ = ["MEASURE_NAMES", "evaluate_runs", "markdown_table", "measures"]

#: column names of the measures, in table order (``_evaluation.label(m)`` of :func:`measures`)
MEASURE_NAMES = ("nDCG@10", "R(rel=2)@100", "RR(rel=2)", "RR(rel=3)")


def measures() -> list[Measure]:
    """The tables' measures as ir_measures objects, in :data:`MEASURE_NAMES` order."""
    import ir_measures

    return [_evaluation.graded_ndcg(10), ir_measures.R(rel=2) @ 100, ir_measures.RR(rel=2), ir_measures.RR(rel=3)]


def evaluate_runs(runs: Mapping[str, pd.DataFrame], topics: pd.DataFrame, qrels: pd.DataFrame) -> pd.DataFrame:
    """Mean scores of result frames; one row per run.

    Args:
        runs: name -> result frame (qid, docno, score, rank).
        topics: The query frame the runs answered (its qids define the evaluated set).
        qrels: Graded qrels (qid, docno, label).

    Returns:
        Columns ``name``, the :data:`MEASURE_NAMES`, ``queries`` and ``answered`` (queries with >= 1 result).
        Queries without results count as 0 for every measure.
    """
    return _evaluation.evaluate_runs(runs, topics, qrels, measures())


def markdown_table(frame: pd.DataFrame, *, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (floats rounded to ``digits``, numeric columns right-aligned)."""
    rows = ([f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False))
    rule = ["---:" if _numeric(frame[c]) else "---" for c in frame.columns]
    return "\n".join(table_lines([str(c) for c in frame.columns], rows, rule=rule)) + "\n"


def _numeric(column: Sequence[Any]) -> bool:
    return pd.api.types.is_numeric_dtype(column)
