"""Evaluation measures of the experiments, and their evaluation through ``pt.Experiment``.

Measures are written in configs as short labels and turned into ``ir_measures`` objects here:

* **graded** labels (``"nDCG@10"``) use exponential gains ``2^g - 1`` over the dataset's grades
  (grade 1 → 1, 2 → 3, 3 → 7), i.e. ``nDCG(gains={0: 0, 1: 1, 2: 3, 3: 7})@10``. This is the
  headline measure: it rewards placing a grade-3 passage above a grade-1 one.
* **binary** labels are expanded at every requested ``rel`` level (ir_measures' meaning: the minimum
  grade counted relevant, inclusive): ``R@100`` → ``R(rel=r)@100``, ``RR`` → ``RR(rel=r)``,
  ``P@10`` → ``P(rel=r)@10``, ``AP`` → ``AP(rel=r)``, ``Success@10`` → ``Success(rel=r)@10``, and
  ``nDCG@10`` → binary nDCG with gain 1 for every grade ``>= r`` and 0 below
  (``nDCG(gains={g: int(g >= r)})@10``; ir_measures' ``nDCG`` has no ``rel=`` parameter).

ir_measures 0.4.3 returns wrong values when ``nDCG@10`` and ``nDCG(gains=...)@10`` share one call,
so :func:`evaluate` gives **every nDCG variant its own** ``pt.Experiment`` call; the other binary
measures share one call (see :func:`evaluation_groups`).

Runs are cut to ``depth`` results per query before they are stored and evaluated (default 100, the
deepest cut-off we report): ``RR`` is therefore reciprocal rank within the top 100.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

GRADED_FAMILIES = ("nDCG",)
BINARY_FAMILIES = ("R", "RR", "P", "nDCG", "AP", "Success")
_CUTOFF_REQUIRED = {"R", "P", "Success", "nDCG"}
_LABEL_RE = re.compile(r"^(?P<family>[A-Za-z]+)(@(?P<cutoff>\d+))?$")


@dataclass(frozen=True)
class MeasureSpec:
    """One evaluated measure: a readable ``label`` and how to build its ir_measures object.

    Attributes:
        label: the name used in tables and files, e.g. ``"nDCG@10"`` (graded) or ``"R@100(rel>=2)"``.
        family: the ir_measures family (``"nDCG"``, ``"R"``, ...).
        cutoff: the rank cut-off, or None.
        rel: the binary relevance level, or None for the graded measure.
    """

    label: str
    family: str
    cutoff: int | None
    rel: int | None

    @property
    def graded(self) -> bool:
        """True for the graded (exponential-gain) measure."""
        return self.rel is None

    def ir_measure(self, grades: Sequence[int]) -> Any:
        """The ir_measures object for a dataset whose grades are ``grades`` (e.g. ``[0, 1, 2, 3]``)."""
        import ir_measures

        family = getattr(ir_measures, self.family)
        if self.family == "nDCG":
            if self.rel is None:
                from pyterrier_gradrel._gains import exponential_gains

                gains = exponential_gains(grades)
            else:
                gains = {int(g): int(int(g) >= self.rel) for g in grades}
            measure = family(gains=gains)
        else:
            measure = family(rel=self.rel)
        return measure @ self.cutoff if self.cutoff is not None else measure


def parse_measures(*, graded: Iterable[str], binary: Iterable[str], rels: Iterable[int]) -> list[MeasureSpec]:
    """Expand configured measure labels into :class:`MeasureSpec` objects.

    Args:
        graded: graded labels, e.g. ``["nDCG@10"]`` (only the nDCG family is graded).
        binary: binary labels, e.g. ``["R@100", "RR", "P@10", "nDCG@10"]``; each is expanded per ``rels``.
        rels: the binary relevance levels, e.g. ``[1, 2, 3]``.

    Returns:
        The specs, graded first, in configuration order.

    Raises:
        ValueError: an unknown family, a missing or superfluous cut-off, or a duplicate label.
    """
    specs: list[MeasureSpec] = []
    for label in graded:
        family, cutoff = _parse_label(label, allowed=GRADED_FAMILIES, kind="graded")
        specs.append(MeasureSpec(label=label, family=family, cutoff=cutoff, rel=None))
    rels = [int(r) for r in rels]
    for label in binary:
        family, cutoff = _parse_label(label, allowed=BINARY_FAMILIES, kind="binary")
        for rel in rels:
            specs.append(MeasureSpec(label=f"{label}(rel>={rel})", family=family, cutoff=cutoff, rel=rel))
    labels = [s.label for s in specs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(f"measures must be unique, got duplicates {dupes}")
    return specs


def _parse_label(label: str, *, allowed: Sequence[str], kind: str) -> tuple[str, int | None]:
    match = _LABEL_RE.match(str(label).strip())
    if not match or match["family"] not in allowed:
        raise ValueError(
            f"unknown {kind} measure {label!r}: expected one of {list(allowed)} with an optional @cutoff, "
            f"e.g. 'nDCG@10', 'R@100', 'RR'"
        )
    cutoff = int(match["cutoff"]) if match["cutoff"] else None
    if match["family"] in _CUTOFF_REQUIRED and cutoff is None:
        raise ValueError(f"{kind} measure {label!r} needs a cut-off, e.g. '{match['family']}@10'")
    if match["family"] == "RR" and cutoff is not None:
        raise ValueError(f"{kind} measure {label!r}: use 'RR' (the cut-off is the run depth)")
    return match["family"], cutoff


def evaluation_groups(measures: Sequence[MeasureSpec]) -> list[list[MeasureSpec]]:
    """Split measures into ``pt.Experiment`` calls: every nDCG alone, all other measures together.

    ir_measures 0.4.3 mixes up nDCG variants with different gains inside one call; the other families
    (``R``, ``RR``, ``P``, ``AP``, ``Success`` at any ``rel``) are computed correctly together (tested in
    ``tests/test_experiments_significance.py``), and one call for them saves a pass over the run.
    """
    ndcg = [[m] for m in measures if m.family == "nDCG"]
    rest = [m for m in measures if m.family != "nDCG"]
    return ndcg + ([rest] if rest else [])


def evaluate(
    run: pd.DataFrame,
    topics: pd.DataFrame,
    qrels: pd.DataFrame,
    measures: Sequence[MeasureSpec],
    *,
    grades: Sequence[int],
) -> pd.DataFrame:
    """Per-query scores of one run (see :func:`evaluation_groups` for how the calls are split).

    Queries in ``topics`` that have qrels but no retrieved documents score 0 (PyTerrier's
    behaviour); queries without qrels are dropped (they carry no relevance information).

    Args:
        run: the run (``qid``, ``docno``, ``score``, ``rank``).
        topics: the evaluated topics (``qid``, ``query``).
        qrels: ``qid``, ``docno``, ``label``.
        measures: what to evaluate.
        grades: the dataset's grades (for the graded gains), e.g. ``[0, 1, 2, 3]``.

    Returns:
        A long frame with columns ``qid``, ``measure`` (the spec's label) and ``value``.
    """
    import pyterrier as pt

    columns = ["qid", "measure", "value"]
    if not len(topics) or not measures:
        return pd.DataFrame(columns=columns)
    topics = topics[topics["qid"].isin(set(qrels["qid"]))]
    frames = []
    for group in evaluation_groups(measures):
        objs = {spec.ir_measure(grades): spec for spec in group}
        per_query = pt.Experiment(
            [run], topics, qrels, list(objs), names=["run"], perquery=True, verbose=False,
        )
        labels = {str(m): spec.label for m, spec in objs.items()}
        per_query = per_query[["qid", "measure", "value"]].copy()
        per_query["measure"] = per_query["measure"].map(labels)
        frames.append(per_query)
    out = pd.concat(frames, ignore_index=True)[columns]
    out["qid"] = out["qid"].astype(str)
    out["value"] = out["value"].astype(float).fillna(0.0)
    return out
