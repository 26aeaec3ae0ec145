"""Evaluation helpers shared by ``gradrel baselines`` and ``gradrel bm25-tokenizers``.

Measures (graded labels 1..3): ``nDCG@10`` with exponential gains 2^g - 1, ``R(rel=2)@100``, ``RR(rel=2)`` and
``RR(rel=3)``. ir_measures 0.4.3 confuses nDCG variants evaluated in one call, so the gain-weighted nDCG is
evaluated in its own ``pt.Experiment`` call; runs are computed once and passed to both calls as frames.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = ["MEASURE_NAMES", "evaluate_runs", "markdown_table", "measures"]

#: column names of the measures, in table order
MEASURE_NAMES = ("nDCG@10", "R(rel=2)@100", "RR(rel=2)", "RR(rel=3)")


def measures() -> tuple[list[Any], list[Any]]:
    """(nDCG call measures, other call measures) as ir_measures objects."""
    import ir_measures

    from pyterrier_gradrel._gains import graded_ndcg

    ndcg = graded_ndcg(10)
    others = [ir_measures.R(rel=2) @ 100, ir_measures.RR(rel=2), ir_measures.RR(rel=3)]
    return [ndcg], others


def evaluate_runs(runs: Mapping[str, pd.DataFrame], topics: pd.DataFrame, qrels: pd.DataFrame) -> pd.DataFrame:
    """Evaluate result frames with ``pt.Experiment``; one row per run.

    Args:
        runs: name -> result frame (qid, docno, score, rank).
        topics: The query frame the runs answered (its qids define the evaluated set).
        qrels: Graded qrels (qid, docno, label).

    Returns:
        Columns ``name``, the :data:`MEASURE_NAMES`, ``queries`` and ``answered`` (queries with >= 1 result).
        Queries without results count as 0 for every measure.
    """
    import pyterrier as pt

    names = list(runs)
    frames = [runs[n] for n in names]
    ndcg_m, other_m = measures()
    kwargs = {"names": names, "filter_by_qrels": False}
    first = pt.Experiment(frames, topics, qrels, ndcg_m, **kwargs)
    second = pt.Experiment(frames, topics, qrels, other_m, **kwargs)
    # pt.Experiment orders its columns its own way: select them by the measure's name, never by position
    table = first.merge(second, on="name")
    table = table[["name", *(str(m) for m in [*ndcg_m, *other_m])]]
    table.columns = ["name", *MEASURE_NAMES]
    qids = set(topics["qid"])
    table["queries"] = len(qids)
    table["answered"] = [len(qids & set(runs[n]["qid"])) for n in names]
    return table


def markdown_table(frame: pd.DataFrame, *, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (floats rounded to ``digits``)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---:" if _numeric(frame[c]) else "---"
                                                             for c in frame.columns) + "|"]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _numeric(column: Sequence[Any]) -> bool:
    return pd.api.types.is_numeric_dtype(column)
