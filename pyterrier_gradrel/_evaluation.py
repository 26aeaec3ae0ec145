"""Evaluation of runs with ir_measures: the measures, their labels, and evaluators prepared once per qrels.

Measures are ``ir_measures`` objects. Configs name them in short form and :func:`parse_measures`
turns each name into objects once (with ``ir_measures.parse_measure``):

* the **graded** ``nDCG@10`` uses the benchmark's gain ``2^g - 1`` per grade (grade 1 → 1, 2 → 3,
  3 → 7): ``nDCG(gains={0: 0, 1: 1, 2: 3, 3: 7})@10``. It is the headline measure: it rewards placing
  a grade-3 passage above a grade-1 one.
* **binary** names are expanded at every requested ``rel`` (ir_measures' meaning: the minimum grade
  counted relevant, inclusive): ``R@100`` → ``R(rel=r)@100``, ``RR`` → ``RR(rel=r)``, ``P@10``,
  ``AP``, ``Success@10`` likewise, and ``nDCG@10`` → gain 1 for every grade ``>= r`` and 0 below
  (``nDCG(gains={g: int(g >= r)})@10``; ir_measures' ``nDCG`` has no ``rel=`` parameter).

:func:`label` is the one vocabulary of measure names (per-query files, report tables, ``significance.csv``,
the retrieval studies' columns): ``str(measure)``, ir_measures' canonical name (``R(rel=2)@100``,
``RR(rel=3)``, ``P(rel=2)@10``; ir_measures leaves out its default ``rel=1``: ``R@100``, ``RR``), except
for the two nDCGs whose gains ir_measures spells out: the graded nDCG with gains 2^g − 1 is ``nDCG@10``
and the binary nDCG at ``rel=r`` is ``nDCG(rel=r)@10``. (Beware: a bare ``ir_measures.nDCG@10`` uses the
grades themselves as gains, so ``pt.Experiment(..., ["nDCG@10"])`` is not this package's ``nDCG@10``; pass
:func:`graded_ndcg` instead.) Labels are made at that edge only; the measure's ``rel`` travels as an int
(:attr:`MeasureSpec.rel`).

:class:`Evaluator` prepares ``ir_measures.evaluator`` objects once per (qrels, measures) and scores
any number of runs with them. ir_measures 0.4.3 returns wrong, hash-seed-dependent values when
``nDCG@10`` and ``nDCG(gains=...)@10`` share one evaluator, so every nDCG variant gets **its own**
evaluator; the other families (``R``, ``RR``, ``P``, ``AP``, ``Success`` at any ``rel``) share one.
The qrels are converted to ir_measures' dict form once and each run once per call, whatever the number
of evaluators.

:func:`experiment_per_query` scores runs with ``pt.Experiment`` itself (the experiment runner's path): runs go
in as DataFrames, ``perquery=True``, one call per system with every measure whose nDCG has explicit gains
(ir_measures evaluates each distinct gains mapping in its own pytrec_eval invocation); an nDCG without gains,
which ir_measures 0.4.3 files into another measure's invocation, gets a call of its own
(:func:`experiment_groups`).
"""
from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pyterrier_gradrel.datasets import GRADES

if TYPE_CHECKING:
    from ir_measures import Measure

__all__ = [
    "Evaluator", "ExperimentQrels", "MeasureSpec", "evaluate", "experiment_groups", "experiment_per_query",
    "experiment_qrels", "exponential_gains", "graded_ndcg", "label", "parse_measures",
]

GRADED_FAMILIES = ("nDCG",)
BINARY_FAMILIES = ("R", "RR", "P", "nDCG", "AP", "Success")
_CUTOFF_REQUIRED = {"R", "P", "Success", "nDCG"}
_NAME_RE = re.compile(r"^(?P<family>[A-Za-z]+)(@(?P<cutoff>\d+))?$")


def exponential_gains(grades: Iterable[int] = GRADES) -> dict[int, int]:
    """``{g: 2**g - 1}`` for each grade (0 → 0, 1 → 1, 2 → 3, 3 → 7)."""
    return {int(g): 2 ** int(g) - 1 for g in grades}


def binary_gains(rel: int, grades: Iterable[int] = GRADES) -> dict[int, int]:
    """``{g: 1 if g >= rel else 0}`` for each grade: nDCG with binary relevance at threshold ``rel``."""
    return {int(g): int(int(g) >= rel) for g in grades}


def graded_ndcg(cutoff: int = 10, grades: Iterable[int] = GRADES) -> Measure:
    """``nDCG(gains=2^g - 1)@cutoff``, the benchmark's graded nDCG."""
    import ir_measures

    return ir_measures.nDCG(gains=exponential_gains(grades)) @ cutoff


def _ndcg_rel(measure: Measure) -> int | None:
    """``None`` for nDCG with exponential gains, ``r`` for binary gains at ``rel=r``.

    Raises:
        ValueError: nDCG without gains or with gains of neither kind.
    """
    gains = measure.params.get("gains")
    if gains is None:
        raise ValueError(f"{measure}: nDCG needs explicit gains (exponential or binary) to have a label")
    gains = {int(g): v for g, v in gains.items()}
    if gains == exponential_gains(gains):
        return None
    relevant = [g for g, v in gains.items() if v]
    if relevant and gains == binary_gains(min(relevant), gains):
        return min(relevant)
    raise ValueError(f"{measure}: nDCG gains must be 2^g - 1 or binary at a rel level, got {gains}")


def label(measure: Measure) -> str:
    """The name of a measure in result files and reports (see the module docstring).

    Args:
        measure: an ir_measures measure, e.g. as built by :func:`parse_measures` or :func:`graded_ndcg`.

    Returns:
        ``str(measure)`` (``"R(rel=2)@100"``, ``"RR"``), or for nDCG ``"nDCG@10"`` (gains 2^g − 1) and
        ``"nDCG(rel=2)@10"`` (binary gains at ``rel=2``).

    Raises:
        ValueError: an nDCG without gains, or with gains of neither kind.
    """
    if measure.NAME != "nDCG":
        return str(measure)
    cutoff = measure.params.get("cutoff")
    at = f"@{cutoff}" if cutoff is not None else ""
    rel = _ndcg_rel(measure)
    return f"nDCG{at}" if rel is None else f"nDCG(rel={rel}){at}"


@dataclass(frozen=True)
class MeasureSpec:
    """One configured measure: its ir_measures object on the benchmark's grade scale (0..3).

    nDCG's gains depend on a dataset's grades; :meth:`ir_measure` gives the object for any scale.

    Attributes:
        measure: e.g. ``nDCG(gains={0: 0, 1: 1, 2: 3, 3: 7})@10``, ``R(rel=2)@100``, ``RR(rel=1)``.
    """

    measure: Measure

    @property
    def label(self) -> str:
        """The label in result files and reports (see :func:`label`)."""
        return label(self.measure)

    @property
    def base(self) -> str:
        """The measure's name without its ``rel`` (``nDCG@10``, ``R@100``, ``RR``): one row of the τ × rel diagonal."""
        if self.measure.NAME == "nDCG":
            return label(self.measure(gains=exponential_gains(self.measure.params["gains"])))
        return str(self.measure(rel=1))

    @property
    def cutoff(self) -> int | None:
        """The rank cut-off, or None."""
        return self.measure.params.get("cutoff")

    @property
    def rel(self) -> int | None:
        """The binary relevance level, or None for the graded measure."""
        if self.measure.NAME == "nDCG":
            return _ndcg_rel(self.measure)
        return self.measure.params["rel"]

    @property
    def graded(self) -> bool:
        """True for the graded (exponential-gain) measure."""
        return self.rel is None

    def ir_measure(self, grades: Sequence[int]) -> Measure:
        """The ir_measures object for a dataset whose grades are ``grades`` (e.g. ``[0, 1, 2, 3]``)."""
        if self.measure.NAME != "nDCG":
            return self.measure
        rel = self.rel
        gains = exponential_gains(grades) if rel is None else binary_gains(rel, grades)
        return self.measure(gains=gains)


def parse_measures(*, graded: Iterable[str], binary: Iterable[str], rels: Iterable[int],
                   depth: int | None = None) -> list[MeasureSpec]:
    """Turn configured measure names into measures.

    Args:
        graded: graded names, e.g. ``["nDCG@10"]`` (only the nDCG family is graded).
        binary: binary names, e.g. ``["R@100", "RR", "P@10", "nDCG@10"]``; each is expanded per ``rels``.
        rels: the binary relevance levels, e.g. ``[1, 2, 3]``.
        depth: the number of results per query that are evaluated, when the measures carry it: ``RR`` (or
            ``RR@depth``) becomes ``RR(rel=r)@depth``, labelled ``RR(rel=r)@depth``. None: ``RR`` has no cut-off
            (the run's own depth) and ``RR@k`` is refused.

    Returns:
        The measures, graded first, in configuration order.

    Raises:
        ValueError: an unknown family, a missing or superfluous cut-off (an ``RR`` cut-off other than ``depth``),
            a ``rels`` entry that is not a grade counted relevant (1..3) or is repeated, or a duplicate measure.
    """
    specs: list[MeasureSpec] = []
    for name in graded:
        specs.append(MeasureSpec(_parse_name(name, allowed=GRADED_FAMILIES, kind="graded")(gains=exponential_gains())))
    rels = check_rels(rels)
    for name in binary:
        measure = _parse_name(name, allowed=BINARY_FAMILIES, kind="binary", depth=depth)
        for rel in rels:
            specs.append(MeasureSpec(measure(gains=binary_gains(rel)) if measure.NAME == "nDCG" else measure(rel=rel)))
    labels = [s.label for s in specs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(f"measures must be unique, got duplicates {dupes}")
    return specs


def check_rels(rels: Iterable[int], *, key: str = "rels") -> list[int]:
    """``rels`` as a list of ints, each a grade counted relevant (``rel`` >= 1 of :data:`GRADES`), none repeated.

    Raises:
        ValueError: naming ``key`` and the offending value.
    """
    allowed = [g for g in GRADES if g > 0]
    out = list(rels)
    for rel in out:
        if isinstance(rel, bool) or not isinstance(rel, numbers.Integral) or rel not in allowed:
            raise ValueError(f"{key}: {rel!r} is not a relevance level: each must be one of {allowed} "
                             f"(the minimum grade counted relevant)")
    out = [int(r) for r in out]
    if len(set(out)) != len(out):
        raise ValueError(f"{key} must be unique, got {out}")
    return out


def _parse_name(name: str, *, allowed: Sequence[str], kind: str, depth: int | None = None) -> Measure:
    """``ir_measures.parse_measure`` of a configured short name, restricted to the supported families
    (``RR`` cut at ``depth`` when one is given, see :func:`parse_measures`)."""
    import ir_measures

    match = _NAME_RE.match(str(name).strip())
    if not match or match["family"] not in allowed:
        raise ValueError(
            f"unknown {kind} measure {name!r}: expected one of {list(allowed)} with an optional @cutoff, "
            f"e.g. 'nDCG@10', 'R@100', 'RR'"
        )
    if match["family"] in _CUTOFF_REQUIRED and not match["cutoff"]:
        raise ValueError(f"{kind} measure {name!r} needs a cut-off, e.g. '{match['family']}@10'")
    if match["family"] == "RR" and depth is not None:
        if match["cutoff"] and int(match["cutoff"]) != depth:
            raise ValueError(f"{kind} measure {name!r}: runs are evaluated at depth {depth}, so RR is "
                             f"'RR' or 'RR@{depth}'")
        return ir_measures.RR @ int(depth)
    if match["family"] == "RR" and match["cutoff"]:
        raise ValueError(f"{kind} measure {name!r}: use 'RR' (the cut-off is the run depth)")
    return ir_measures.parse_measure(str(name).strip())


class Evaluator:
    """Per-query scores of runs against one qrels frame, for a fixed list of measures.

    The ir_measures evaluators are built once here and reused for every run (systems, seeds, splits
    evaluated on the same qrels). Each nDCG variant has its own evaluator (ir_measures 0.4.3 mixes them
    up within one); all other measures share one. Every query of the qrels is scored: one without
    retrieved documents scores 0; retrieved queries without qrels are not scored. A pickled evaluator (e.g.
    sent to an executor's worker) carries its qrels and measures and prepares its ir_measures evaluators again.

    By default trec_eval ranks each query's documents by score and breaks ties by docno. With
    ``keep_order`` a run is scored in its own order instead: by descending score (as ``pt.Experiment``), score
    ties broken by ``rank`` where the run has that column, else by row order; by ``rank`` alone for a run
    without scores. Each document's score becomes minus its position.

    Args:
        qrels: ``qid``, ``docno``, ``label``.
        measures: the ir_measures objects to evaluate.
        names: the name of each measure in the output (default: :func:`label` of each).
        keep_order: score runs in their own order (see above) rather than by trec_eval's sort.
        depth: score only each query's top ``depth`` results (None: all of them); ``RR`` then means
            ``RR@depth``.
    """

    def __init__(self, qrels: pd.DataFrame, measures: Sequence[Measure], *,
                 names: Sequence[str] | None = None, keep_order: bool = False, depth: int | None = None) -> None:
        names = [label(m) for m in measures] if names is None else list(names)
        if len(names) != len(measures) or len(set(names)) != len(names):
            raise ValueError(f"need one unique name per measure, got {names} for {len(measures)} measures")
        if not {"qid", "docno", "label"} <= set(qrels.columns):
            raise ValueError(f"qrels must have columns qid, docno, label; got {list(qrels.columns)}")
        self.names = names
        self.keep_order = keep_order
        self.depth = None if depth is None else int(depth)
        self._qrels = _nested(qrels, "label", int)
        self.qids = sorted(self._qrels)
        self._measures = list(measures)
        self._prepare()

    def __getstate__(self) -> dict[str, Any]:
        # pytrec_eval's evaluators cannot be pickled (a Ray worker receives the qrels and prepares its own)
        return {k: v for k, v in self.__dict__.items() if k != "_groups"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._prepare()

    def _prepare(self) -> None:
        """Build the ir_measures evaluators: each nDCG variant alone, all other measures together."""
        import ir_measures

        measures, names = self._measures, self.names
        groups = [[i] for i, m in enumerate(measures) if m.NAME == "nDCG"]
        rest = [i for i, m in enumerate(measures) if m.NAME != "nDCG"]
        if len({measures[i] for i in rest}) != len(rest):
            raise ValueError(f"measures must differ, got {[str(measures[i]) for i in rest]}")
        groups += [rest] if rest else []
        # (evaluator, name by id of the measure object ir_measures yields back (hashing a Measure formats its
        # repr), the value of a query it does not yield, the run depth the group reads: an nDCG@k only sees
        # each query's top k, None = the whole run)
        self._groups: list[tuple[Any, dict[int, str], dict[str, float], int | None]] = []
        for group in groups:
            group_measures = [measures[i] for i in group]
            cutoff = group_measures[0].params.get("cutoff") if group_measures[0].NAME == "nDCG" else None
            depths = [d for d in (cutoff, self.depth) if d is not None]
            depth = min(depths) if depths else None
            self._groups.append((ir_measures.evaluator(group_measures, self._qrels),
                                 {id(measures[i]): names[i] for i in group},
                                 {names[i]: float(measures[i].DEFAULT) for i in group}, depth))

    def per_query(self, run: pd.DataFrame) -> pd.DataFrame:
        """Per-query scores of ``run`` (``qid``, ``docno``, ``score``; or ``rank`` with ``keep_order``).

        Returns:
            A long frame with columns ``qid``, ``measure`` (the measure's name) and ``value``: per evaluator
            (each nDCG variant, then the others), queries sorted, measures in the given order (not in the
            order ir_measures yields them, which follows the hash seed).
        """
        rows = []
        for (_, names, _, _), by_query in zip(self._groups, self._by_query(run), strict=True):
            rows += [(qid, name, by_query[qid][name]) for qid in sorted(by_query) for name in names.values()]
        out = pd.DataFrame(rows, columns=["qid", "measure", "value"])
        out["qid"] = out["qid"].astype(str)
        out["value"] = out["value"].astype(float).fillna(0.0)
        return out

    def table(self, run: pd.DataFrame) -> pd.DataFrame:
        """Per-query scores of ``run`` as a wide frame: ``qid`` (the qrels' queries, sorted), then one column
        per measure, named and ordered as given."""
        columns: dict[str, list[float]] = {}
        for (_, names, _, _), by_query in zip(self._groups, self._by_query(run), strict=True):
            columns.update({name: [by_query[qid][name] for qid in self.qids] for name in names.values()})
        table = pd.DataFrame({name: columns[name] for name in self.names}, dtype=float).fillna(0.0)
        table.insert(0, "qid", self.qids)
        return table

    def means(self, run: pd.DataFrame) -> dict[str, float]:
        """The mean of each measure over the qrels' queries (unanswered queries count 0)."""
        out: dict[str, float] = {}
        for by_query in self._by_query(run):
            sums: dict[str, float] = {}
            for values in by_query.values():
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + value
            out.update({name: total / len(by_query) for name, total in sums.items()})
        return {name: out[name] for name in self.names}

    def _by_query(self, run: pd.DataFrame) -> list[dict[str, dict[str, float]]]:
        """Per evaluator, ``qid -> name -> value`` for every query of the qrels."""
        at_depth = self._run_dicts(run)
        results = []
        for evaluator, names, defaults, depth in self._groups:
            run_dict = at_depth(depth)
            by_query: dict[str, dict[str, float]] = {}
            if run_dict:
                # ir_measures' public iter_calc hashes every (measure, query) pair to add the queries pytrec_eval
                # leaves out (its measures hash through repr: ~2 s on the multi pool); they are added below instead
                calc = getattr(evaluator, "_iter_calc", evaluator.iter_calc)
                for metric in calc(run_dict):
                    by_query.setdefault(metric.query_id, {})[names[id(metric.measure)]] = metric.value
            for qid in self.qids:
                values = by_query.get(qid)
                if values is None or len(values) < len(defaults):
                    by_query[qid] = {**defaults, **(values or {})}
            results.append(by_query)
        return results

    def _run_dicts(self, run: pd.DataFrame) -> Callable[[int | None], dict[str, dict[str, float]]]:
        """A function of a depth giving ir_measures' dict form of ``run``'s top ``depth`` (each computed once).

        Raises:
            ValueError: ``run`` lacks a column the evaluation needs.
        """
        columns = set(run.columns)
        ordered = {"rank", "score"} & columns if self.keep_order else "score" in columns
        if not {"qid", "docno"} <= columns or not ordered:
            need = "qid, docno and rank or score" if self.keep_order else "qid, docno and score"
            raise ValueError(f"a run needs columns {need}; got {list(run.columns)}")
        cache: dict[int | None, dict[str, dict[str, float]]] = {}
        if self.keep_order:
            cache[self.depth] = full = _positions(run, self.depth)
        else:
            run = run[["qid", "docno", "score"]].astype({"qid": str, "docno": str, "score": float})

        def at_depth(depth: int | None) -> dict[str, dict[str, float]]:
            if depth not in cache:
                if self.keep_order:
                    cache[depth] = _cut(full, depth)
                else:
                    cache[depth] = _nested(_top(run, depth) if depth else run, "score", float)
            return cache[depth]

        return at_depth


def _top(run: pd.DataFrame, depth: int) -> pd.DataFrame:
    """The rows of ``run`` that can be in a query's top ``depth``: a score at least the query's ``depth``-th
    highest (ties at the boundary all stay, so trec_eval's own tie-breaking picks the same documents)."""
    return run[run.groupby("qid", sort=False)["score"].rank(method="min", ascending=False) <= depth]


def _positions(run: pd.DataFrame, depth: int | None) -> dict[str, dict[str, float]]:
    """``{qid: {docno: -position}}`` of each query's top ``depth`` results: trec_eval, which sorts by score, then
    keeps the run's order exactly.

    The order is the one ``pt.Experiment`` scores: by score (descending) when the run has a score, score ties
    broken by ``rank`` when it has one too, else by row order; by ``rank`` only for a run without scores. A stale
    ``rank`` (a re-ranker that rewrote ``score`` without re-ranking) therefore cannot put the first stage's
    order back; a run whose ranks follow its scores is ordered exactly as by its ranks.
    """
    if run.empty:
        return {}
    if "score" in run.columns:
        ties = ["rank"] if "rank" in run.columns else []
        top = run[["qid", "docno", "score", *ties]].sort_values(
            ["qid", "score", *ties], ascending=[True, False, *(True for _ in ties)], kind="stable")
    else:
        top = run
        if depth is not None:
            # cheap pre-filter of large runs: 0- or 1-based ranks up to depth hold every query's top depth
            top = run.loc[run["rank"].to_numpy() <= depth]
        top = top[["qid", "docno", "rank"]].sort_values(["qid", "rank"], kind="stable")
    if depth is not None:
        top = top.groupby("qid", sort=False).head(depth)
    position = top.groupby("qid", sort=False).cumcount().to_numpy()
    qids = top["qid"].astype(str).to_numpy(dtype=object)
    docnos = top["docno"].astype(str).tolist()
    scores = (-position).astype(float).tolist()
    starts = [0, *(np.flatnonzero(qids[1:] != qids[:-1]) + 1).tolist(), len(qids)]
    return {qids[a]: dict(zip(docnos[a:b], scores[a:b], strict=True)) for a, b in zip(starts, starts[1:], strict=False)
            if b > a}


def _cut(run: dict[str, dict[str, float]], depth: int) -> dict[str, dict[str, float]]:
    """The top ``depth`` of a run from :func:`_positions` (its scores are minus the position)."""
    return {q: {d: s for d, s in docs.items() if s > -depth} if len(docs) > depth else docs for q, docs in run.items()}


def _nested(frame: pd.DataFrame, column: str, kind: type) -> dict[str, dict[str, Any]]:
    """``{qid: {docno: kind(value of column)}}``, ir_measures' dict form (a repeated pair keeps its last value).

    Built from Python lists: iterating pandas' Arrow-backed string columns row by row is ~10x slower.
    """
    out: dict[str, dict[str, Any]] = {}
    qids, docnos = frame["qid"].astype(str).tolist(), frame["docno"].astype(str).tolist()
    for qid, docno, value in zip(qids, docnos, frame[column].astype(kind).tolist(), strict=True):
        inner = out.get(qid)
        if inner is None:
            inner = out[qid] = {}
        inner[docno] = value
    return out


def evaluate(
    run: pd.DataFrame,
    topics: pd.DataFrame,
    qrels: pd.DataFrame,
    measures: Sequence[MeasureSpec],
    *,
    grades: Sequence[int],
) -> pd.DataFrame:
    """Per-query scores of one run, for one-off use (prepare an :class:`Evaluator` to score many runs).

    Queries of ``topics`` that have qrels but no retrieved documents score 0; queries without qrels
    are dropped (they carry no relevance information).

    Args:
        run: the run (``qid``, ``docno``, ``score``).
        topics: the evaluated topics (``qid``).
        qrels: ``qid``, ``docno``, ``label``.
        measures: what to evaluate.
        grades: the dataset's grades (for nDCG's gains), e.g. ``[0, 1, 2, 3]``.

    Returns:
        A long frame with columns ``qid``, ``measure`` (the label) and ``value``.
    """
    if not len(topics) or not measures:
        return pd.DataFrame(columns=["qid", "measure", "value"])
    qrels = qrels[qrels["qid"].isin(set(topics["qid"]))]
    return spec_evaluator(qrels, measures, grades=grades).per_query(run)


def spec_evaluator(qrels: pd.DataFrame, measures: Sequence[MeasureSpec], *, grades: Sequence[int]) -> Evaluator:
    """An :class:`Evaluator` of configured measures on a dataset with ``grades``, naming them by label."""
    return Evaluator(qrels, [m.ir_measure(grades) for m in measures], names=[m.label for m in measures])


def evaluate_runs(runs: Mapping[str, pd.DataFrame], topics: pd.DataFrame, qrels: pd.DataFrame,
                  measures: Sequence[Measure]) -> pd.DataFrame:
    """Mean scores of several runs, one row per run (the retrieval studies' tables).

    Args:
        runs: name -> run (``qid``, ``docno``, ``score``).
        topics: the query frame the runs answered (its qids define the evaluated set).
        qrels: graded qrels (``qid``, ``docno``, ``label``).
        measures: the measures; columns are named by :func:`label`.

    Returns:
        Columns ``name``, one per measure, ``queries`` and ``answered`` (queries with >= 1 result).
        Queries without results count as 0.
    """
    qids = set(topics["qid"])
    names = [label(m) for m in measures]
    evaluator = Evaluator(qrels[qrels["qid"].isin(qids)], measures, names=names)
    rows = [{"name": n, **evaluator.means(run), "queries": len(qids), "answered": len(qids & set(run["qid"]))}
            for n, run in runs.items()]
    return pd.DataFrame(rows, columns=["name", *names, "queries", "answered"])


def experiment_groups(measures: Sequence[Measure]) -> list[list[Measure]]:
    """The measures of each ``pt.Experiment`` call: every nDCG without ``gains`` alone, all others together.

    ir_measures 0.4.3 runs one pytrec_eval invocation per distinct (``rel``, ``gains``) and puts an nDCG
    without gains into whichever invocation exists first, so its value would depend on the other measures of
    the call; nDCGs with explicit gains (every nDCG of :func:`parse_measures`) have invocations of their own.
    A measure given twice (equal objects) is in one group once.
    """
    measures = list(dict.fromkeys(measures))  # an equal measure given twice is evaluated once
    plain = [[m] for m in measures if m.NAME == "nDCG" and m.params.get("gains") is None]
    rest = [m for m in measures if not (m.NAME == "nDCG" and m.params.get("gains") is None)]
    return ([rest] if rest else []) + plain


@dataclass(frozen=True, eq=False)
class ExperimentQrels:
    """Qrels made ready for ``pt.Experiment`` once per evaluated pool (topics + qrels) and reused for every run.

    ``pt.Experiment`` turns its qrels frame into ir_measures' form on every call; what can be done once is done
    here: the qrels restricted to the topics' queries (so ``pt.Experiment`` is called with
    ``filter_by_topics=False`` and merges nothing), only ``qid, docno, label``, as object columns and int labels
    (ir_measures reads the frames row by row, ~3x slower over Arrow-backed strings). Build it with
    :func:`experiment_qrels`.

    Attributes:
        topics: The topics' ``qid`` column (object).
        qrels: ``qid``, ``docno`` (object), ``label`` (int) of the topics' queries.
        qids: The judged queries, sorted.
    """

    topics: pd.DataFrame
    qrels: pd.DataFrame
    qids: tuple[str, ...]

    def check_topics(self, topics: pd.DataFrame) -> None:
        """Raise ``ValueError`` unless ``topics`` holds the queries these qrels were prepared for."""
        if len(topics) != len(self.topics) or set(topics["qid"].astype(str)) != set(self.topics["qid"]):
            raise ValueError(f"qrels prepared for {len(self.topics)} topics were given {len(topics)} other topics: "
                             "prepare them with experiment_qrels(topics, qrels) for these topics")


def experiment_qrels(topics: pd.DataFrame, qrels: pd.DataFrame) -> ExperimentQrels:
    """:class:`ExperimentQrels` of ``topics`` (``qid``) and ``qrels`` (``qid``, ``docno``, ``label``).

    Raises:
        ValueError: ``qrels`` lacks a column.
    """
    if not {"qid", "docno", "label"} <= set(qrels.columns):
        raise ValueError(f"qrels must have columns qid, docno, label; got {list(qrels.columns)}")
    topics = topics[["qid"]].astype({"qid": str}).astype({"qid": object}).reset_index(drop=True)
    qrels = qrels[qrels["qid"].astype(str).isin(set(topics["qid"]))][["qid", "docno", "label"]]
    qrels = qrels.astype({"qid": str, "docno": str}).astype({"qid": object, "docno": object, "label": int})
    return ExperimentQrels(topics, qrels.reset_index(drop=True), tuple(sorted(set(qrels["qid"]))))


def experiment_per_query(runs: Mapping[str, pd.DataFrame], topics: pd.DataFrame,
                         qrels: pd.DataFrame | ExperimentQrels, measures: Sequence[Measure], *,
                         names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-query scores of runs, computed by ``pt.Experiment`` (runs passed as DataFrames, ``perquery=True``).

    Every query of ``topics`` that has qrels is scored; one a run does not answer scores 0 (ir_measures'
    default), also when the run is empty. A query without qrels is not scored, also when a run answers it (as
    :class:`Evaluator`). ``qid`` and ``docno`` are compared as strings. Measures that are equal under two names
    (graded nDCG and ``nDCG(rel=1)`` on grades ``{0, 1}``) are evaluated once and give rows under each name.

    Args:
        runs: system name -> run (``qid``, ``docno``, ``score``).
        topics: the evaluated queries (``qid``); qrels of other queries are ignored.
        qrels: ``qid``, ``docno``, ``label``; or the same prepared once for these topics by :func:`experiment_qrels`
            (what a caller that scores many runs on one pool passes).
        measures: ir_measures objects (see :func:`experiment_groups` for how they are split into calls).
        names: the name of each measure in the output (default: :func:`label` of each).

    Returns:
        Columns ``name`` (the system), ``qid``, ``measure`` (its name) and ``value``; per system the rows of each
        nDCG, then of the other measures, queries sorted, measures in the given order (as :meth:`Evaluator.per_query`).

    Raises:
        ValueError: prepared ``qrels`` of other topics.
    """
    import pyterrier as pt

    names = [label(m) for m in measures] if names is None else list(names)
    by_measure: dict[Measure, list[str]] = {}
    for measure, name in zip(measures, names, strict=True):
        by_measure.setdefault(measure, []).append(name)
    if isinstance(qrels, ExperimentQrels):
        qrels.check_topics(topics)
        prepared = qrels
    else:
        prepared = experiment_qrels(topics, qrels)
    judged = set(prepared.qids)
    # pt.Experiment gives every topic a row (NaN without qrels): only the judged ones are passed
    judged_topics = prepared.topics[prepared.topics["qid"].isin(judged)]
    frames = []
    for name, run in runs.items():
        # ids as strings, as the prepared qrels (and the Evaluator's dict form) have them; a query the qrels do not
        # judge is not scored (pt.Experiment would give it NaN, i.e. 0 below, when the run answers it)
        run = run[["qid", "docno", "score"]].astype({"qid": str, "docno": str, "score": float})
        run = run[run["qid"].isin(judged)].astype({"qid": object, "docno": object})
        if run.empty:  # pt.Experiment refuses an empty run: every judged query scores 0
            frames.append(pd.DataFrame([{"name": name, "qid": q, "measure": m, "value": 0.0}
                                        for q in prepared.qids for m in names]))
            continue
        for group in experiment_groups(measures):
            pq = pt.Experiment([run], judged_topics, prepared.qrels, group, names=[name], perquery=True,
                               verbose=False, filter_by_topics=False)
            # one row per name: equal measures under two names (graded nDCG and nDCG(rel=1) on grades {0, 1})
            pq = pq.assign(measure=pq["measure"].map({str(m): by_measure[m] for m in group})).explode("measure")
            frames.append(pq)
    if not frames:
        return pd.DataFrame(columns=["name", "qid", "measure", "value"])
    out = pd.concat(frames, ignore_index=True)[["name", "qid", "measure", "value"]]
    out = out.astype({"qid": str, "value": float}).fillna({"value": 0.0})
    block = {n: i if m.NAME == "nDCG" else len(names) for i, (m, n) in enumerate(zip(measures, names, strict=True))}
    order = {n: i for i, n in enumerate(names)}
    system = {n: i for i, n in enumerate(runs)}
    keys = pd.DataFrame({"s": out["name"].map(system), "b": out["measure"].map(block), "q": out["qid"],
                         "m": out["measure"].map(order)})
    return out.loc[keys.sort_values(["s", "b", "q", "m"], kind="stable").index].reset_index(drop=True)
