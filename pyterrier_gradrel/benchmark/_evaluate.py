"""Per-query scores of one run on one task: the graded main score and the threshold profile.

Three ir_measures evaluators are prepared once per task (the qrels are converted once, which matters for
XQuAD-R's ``multi`` pool with 1.26M qrels rows) and reused for every system:

* graded: ``nDCG@10`` with gains 2^g − 1 (:func:`pyterrier_gradrel._evaluation.graded_ndcg`), the main score;
* binary: for each threshold ``rel`` r, nDCG@10 with gain 1 for grades ≥ r (0 below);
* deep: ``R(rel=r)@100`` and ``RR(rel=r)`` for each r.

The graded and binary nDCGs are never one evaluator (ir_measures 0.4.3 mixes up nDCG variants evaluated in
one call); the nDCG evaluators get each query's top 10 only and the deep one its top 100, because pytrec_eval's
cost is converting the run, once per threshold. Runs are cut to the suite's depth (100), so ``RR`` is
``RR@100`` whatever depth a system returns; queries a system does not answer score 0.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Evaluators", "measure_names", "prepare_evaluators", "score_run"]

MAIN = "nDCG@10"


def measure_names(rels: Sequence[int] = (1, 2, 3)) -> list[str]:
    """Column names in table order: the main score, then nDCG@10, R@100 and RR@100 for each ``rel``."""
    names = [MAIN]
    for r in rels:
        names += [f"nDCG@10(rel={r})", f"R(rel={r})@100", f"RR(rel={r})@100"]
    return names


def _binary_gains(rel: int) -> dict[int, int]:
    from pyterrier_gradrel._evaluation import GRADES

    return {g: int(g >= rel) for g in GRADES}


@dataclass
class Evaluators:
    """The prepared ir_measures evaluators of a task and the mapping of their measures to column names.

    Attributes:
        graded: Evaluator of the main score (graded nDCG@10).
        binary: Evaluator of the profile's binary nDCG@10 at each ``rel``.
        deep: Evaluator of the profile's R@100 and RR@100 at each ``rel``.
        names: ir_measures measure -> column name.
        qids: The evaluated queries (those with qrels); missing from a run means 0.
        depth: Results per query evaluated.
        columns: Column names in table order.
    """

    graded: Any
    binary: Any
    deep: Any
    names: dict[Any, str]
    qids: list[str]
    depth: int
    columns: list[str]


def prepare_evaluators(qrels: pd.DataFrame, *, rels: Sequence[int] = (1, 2, 3), depth: int = 100) -> Evaluators:
    """Prepare the task's evaluators once from its qrels frame (``qid, docno, label``, PyTerrier's names)."""
    import ir_measures

    from pyterrier_gradrel._evaluation import graded_ndcg

    if not {"qid", "docno", "label"} <= set(qrels.columns):
        raise ValueError(f"qrels must have columns qid, docno, label; got {list(qrels.columns)}")
    ir_qrels = qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"})
    ir_qrels = ir_qrels[["query_id", "doc_id", "relevance"]].astype({"query_id": str, "doc_id": str, "relevance": int})
    main = graded_ndcg(10)
    names = {main: MAIN}
    binary, deep = [], []
    for r in rels:
        ndcg, recall, rr = ir_measures.nDCG(gains=_binary_gains(r)) @ 10, ir_measures.R(rel=r) @ 100, ir_measures.RR(rel=r)
        names.update({ndcg: f"nDCG@10(rel={r})", recall: f"R(rel={r})@100", rr: f"RR(rel={r})@100"})
        binary.append(ndcg)
        deep += [recall, rr]
    qrels_dict: dict[str, dict[str, int]] = {}
    for qid, docno, label in ir_qrels.itertuples(index=False):
        qrels_dict.setdefault(qid, {})[docno] = label
    return Evaluators(
        graded=ir_measures.evaluator([main], qrels_dict),
        binary=ir_measures.evaluator(binary, qrels_dict),
        deep=ir_measures.evaluator(deep, qrels_dict),
        names=names, qids=sorted(qrels_dict), depth=int(depth), columns=measure_names(rels),
    )


def _run_dict(run: pd.DataFrame, depth: int) -> dict[str, dict[str, float]]:
    """``{qid: {docno: -position}}`` of each query's top ``depth`` results (by rank when given, else by score)."""
    if run.empty:
        return {}
    if "rank" in run.columns:
        # cheap pre-filter of large runs: 0- or 1-based ranks below depth + 1 hold every query's top depth
        top = run.loc[run["rank"].to_numpy() <= depth, ["qid", "docno", "rank"]]
        top = top.sort_values(["qid", "rank"], kind="stable")
    else:
        top = run[["qid", "docno", "score"]].sort_values(["qid", "score"], ascending=[True, False], kind="stable")
    top = top.groupby("qid", sort=False).head(depth)
    # pytrec_eval ranks by score: the score becomes minus the position, so the system's order is kept exactly
    # (pytrec_eval would break ties in a system's scores by docno)
    position = top.groupby("qid", sort=False).cumcount().to_numpy()
    qids = top["qid"].astype(str).to_numpy(dtype=object)
    docnos = top["docno"].astype(str).tolist()
    scores = (-position).astype(float).tolist()
    starts = [0, *(np.flatnonzero(qids[1:] != qids[:-1]) + 1).tolist(), len(qids)]
    return {qids[a]: dict(zip(docnos[a:b], scores[a:b], strict=True)) for a, b in zip(starts, starts[1:], strict=False)
            if b > a}


def _cut(run: dict[str, dict[str, float]], depth: int) -> dict[str, dict[str, float]]:
    """The top ``depth`` of a run from :func:`_run_dict` (its scores are minus the position)."""
    return {q: {d: s for d, s in docs.items() if s > -depth} if len(docs) > depth else docs for q, docs in run.items()}


def score_run(evaluators: Evaluators, run: pd.DataFrame) -> pd.DataFrame:
    """Per-query scores of ``run`` (``qid, docno`` and ``rank`` or ``score``).

    Returns:
        One row per evaluated query (``qid`` and :attr:`Evaluators.columns`); unanswered queries score 0.
    """
    missing = {"qid", "docno"} - set(run.columns)
    if missing or not ({"rank", "score"} & set(run.columns)):
        raise ValueError(f"a run needs columns qid, docno and rank or score; got {list(run.columns)}")
    deep = _run_dict(run, max(evaluators.depth, 10))
    top10 = _cut(deep, 10)
    values: dict[str, dict[str, float]] = {c: {} for c in evaluators.columns}
    if deep:
        by_id = {id(m): name for m, name in evaluators.names.items()}
        for evaluator, run_dict in ((evaluators.graded, top10), (evaluators.binary, top10), (evaluators.deep, deep)):
            # ir_measures' public iter_calc hashes every (measure, query) pair to fill in missing queries (its
            # measures hash through repr: ~2 s on the multi pool); missing queries are filled with 0 below instead
            calc = getattr(evaluator, "_iter_calc", evaluator.iter_calc)
            for metric in calc(run_dict):
                name = by_id.get(id(metric.measure)) or evaluators.names[metric.measure]
                values[name][metric.query_id] = float(metric.value)
    index = pd.Index(evaluators.qids, name="qid")
    table = pd.DataFrame({c: pd.Series(v, dtype=float).reindex(index).fillna(0.0) for c, v in values.items()},
                         index=index)
    return table[evaluators.columns].reset_index()
