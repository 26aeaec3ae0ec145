"""The threshold policy τ that turns graded qrels into contrastive training data.

``rel`` has ir_measures' meaning: the minimum grade counted relevant (inclusive). A judged passage
with grade ``>= rel`` is a **positive**. The **negatives policy** decides which passages may serve as
(hard) negatives:

* ``"zero"`` (default): only grade 0, i.e. passages judged 0 and all unjudged passages;
* ``"below"``: any grade below ``rel`` (``neg_max = rel - 1``);
* an ``int`` ``neg_max``: grades ``<= neg_max``, which must be below ``rel``. Grades strictly between
  ``neg_max`` and ``rel`` form a *grey band*: neither positive nor negative (never trained on, and
  masked wherever they would act as a negative).

A query with no positive at ``rel`` is **dropped and counted** (see :class:`BinarizedQrels`), never
turned into a query that only has negatives.
"""
from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyterrier as pt
import pyterrier_alpha as pta

from pyterrier_gradrel.datasets import GRADES

__all__ = ["Binarize", "BinarizedQrels", "binarize", "neg_max_for"]

logger = logging.getLogger(__name__)

NEGATIVE_POLICIES = ("zero", "below")


def _check_grades(grades: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(sorted({int(g) for g in grades}))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"grades must be a sequence of integers such as (0, 1, 2, 3), got {grades!r}") from exc
    if len(out) < 2 or out[0] != 0:
        raise ValueError(f"grades must contain 0 and at least one positive grade, e.g. (0, 1, 2, 3), got {grades!r}")
    return out


def _is_int(value: object) -> bool:
    """An integer (Python's or numpy's, e.g. a value of a frame's int column), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_rel(rel: int, grades: tuple[int, ...]) -> int:
    allowed = [g for g in grades if g > 0]
    if not _is_int(rel) or int(rel) not in allowed:
        raise ValueError(f"rel must be one of {allowed} (the dataset's positive grades), got {rel!r}")
    return int(rel)


def _check_labels(label: pd.Series, grades: tuple[int, ...]) -> np.ndarray:
    """The labels as int grades of ``grades``.

    Raises:
        ValueError: a missing label, or one that is not an integer grade of the scale (``2.5`` is not truncated
            to 2, nor ``-0.5`` to 0).
    """
    if label.isna().any():
        raise ValueError(f"qrels labels must be grades in {list(grades)}, found {int(label.isna().sum())} "
                         f"missing label(s) (NaN)")
    try:
        values = np.asarray(label.to_numpy(), dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"qrels labels must be grades in {list(grades)}, got non-numeric labels") from exc
    ints = np.rint(values)
    bad = (values != ints) | ~np.isin(ints, grades)
    if bad.any():
        found = sorted({int(v) if float(v).is_integer() else float(v) for v in values[bad]})
        raise ValueError(f"qrels labels must be grades in {list(grades)}, found {found}")
    return ints.astype(np.int64)


def neg_max_for(negatives: str | int, rel: int, grades: Sequence[int] = GRADES) -> int:
    """The highest grade that may act as a negative under a negatives policy.

    Args:
        negatives: ``"zero"``, ``"below"`` or an integer ``neg_max`` (a grade below ``rel``).
        rel: The positive threshold τ (minimum positive grade).
        grades: The dataset's grade scale.

    Returns:
        ``neg_max``: passages with grade ``<= neg_max`` (unjudged passages count as grade 0) may be negatives.

    Raises:
        ValueError: For an unknown policy or a ``neg_max`` outside ``[0, rel)`` on the grade scale.
    """
    grades = _check_grades(grades)
    rel = _check_rel(rel, grades)
    if isinstance(negatives, str):
        if negatives == "zero":
            return 0
        if negatives == "below":
            return max(g for g in grades if g < rel)
        raise ValueError(f"negatives must be one of {list(NEGATIVE_POLICIES)} or an integer grade below rel, got {negatives!r}")
    allowed = [g for g in grades if g < rel]
    if not _is_int(negatives) or int(negatives) not in allowed:
        raise ValueError(
            f"negatives as an integer neg_max must be one of {allowed} (grades below rel={rel}), got {negatives!r}"
        )
    return int(negatives)


def policy_name(negatives: str | int) -> str:
    """A short name of a negatives policy for run names: ``zero``, ``below`` or ``le<neg_max>``."""
    return negatives if isinstance(negatives, str) else f"le{negatives}"


@dataclass
class BinarizedQrels:
    """The result of :func:`binarize`.

    Attributes:
        rel: The positive threshold τ.
        neg_max: Highest grade usable as a negative (unjudged passages count as grade 0).
        negatives: The negatives policy it came from.
        positives: qid → docnos with grade ``>= rel`` (sorted; only kept queries).
        negatives_judged: qid → judged docnos with grade ``<= neg_max`` (sorted; only kept queries).
        grey: qid → judged docnos in the grey band ``neg_max < grade < rel``.
        grades: qid → {docno: grade} of every judged passage of a kept query.
        dropped: qids without any positive at ``rel`` (dropped, in input order).
    """

    rel: int
    neg_max: int
    negatives: str | int
    positives: dict[str, list[str]] = field(default_factory=dict)
    negatives_judged: dict[str, list[str]] = field(default_factory=dict)
    grey: dict[str, list[str]] = field(default_factory=dict)
    grades: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    @property
    def qids(self) -> list[str]:
        """The kept queries (those with at least one positive), sorted."""
        return sorted(self.positives)

    def n_pairs(self) -> int:
        """Number of (query, positive) pairs."""
        return sum(len(v) for v in self.positives.values())

    def report(self) -> dict:
        """A JSON-able summary: kept/dropped query counts, pair counts, policy."""
        return {
            "rel": self.rel,
            "negatives": self.negatives,
            "neg_max": self.neg_max,
            "queries_kept": len(self.positives),
            "queries_dropped": len(self.dropped),
            "positive_pairs": self.n_pairs(),
            "judged_negative_pairs": sum(len(v) for v in self.negatives_judged.values()),
            "grey_pairs": sum(len(v) for v in self.grey.values()),
        }


def binarize(
    qrels: pd.DataFrame,
    *,
    rel: int = 2,
    negatives: str | int = "zero",
    grades: Sequence[int] = GRADES,
    qids: Iterable[str] | None = None,
) -> BinarizedQrels:
    """Split graded qrels into positives, judged negatives and grey band per query at threshold ``rel``.

    Args:
        qrels: Frame with ``qid``, ``docno``, ``label`` (integer grades on the ``grades`` scale; a float column
            of whole numbers, ``2.0``, is read as those grades).
        rel: τ, the minimum grade counted positive (must be a positive grade of ``grades``; a Python or numpy int).
        negatives: ``"zero"``, ``"below"`` or an integer ``neg_max`` (see the module docstring).
        grades: The dataset's grade scale (must include 0).
        qids: The training queries. A query listed here but without a positive (or without any
            judgement) is dropped and counted. Defaults to the queries in ``qrels``.

    Returns:
        A :class:`BinarizedQrels`.

    Raises:
        ValueError: For a bad ``rel``/``negatives``/``grades``, missing columns, or labels that are missing, not
            whole numbers (``2.5``) or off the scale.
    """
    grades_t = _check_grades(grades)
    rel = _check_rel(rel, grades_t)
    neg_max = neg_max_for(negatives, rel, grades_t)
    missing = [c for c in ("qid", "docno", "label") if c not in qrels.columns]
    if missing:
        raise ValueError(f"qrels must have columns ['qid', 'docno', 'label'], missing {missing}")
    labels = _check_labels(qrels["label"], grades_t)
    negatives = negatives if isinstance(negatives, str) else neg_max

    out = BinarizedQrels(rel=rel, neg_max=neg_max, negatives=negatives)
    by_q: dict[str, dict[str, int]] = {}
    for qid, docno, label in zip(qrels["qid"].astype(str), qrels["docno"].astype(str), labels, strict=True):
        judged = by_q.setdefault(qid, {})
        judged[docno] = max(int(label), judged.get(docno, 0))  # duplicate judgements: keep the highest
    order = list(dict.fromkeys(str(q) for q in qids)) if qids is not None else list(by_q)
    for qid in order:
        judged = by_q.get(qid, {})
        pos = sorted(d for d, g in judged.items() if g >= rel)
        if not pos:
            out.dropped.append(qid)
            continue
        out.positives[qid] = pos
        out.negatives_judged[qid] = sorted(d for d, g in judged.items() if g <= neg_max)
        out.grey[qid] = sorted(d for d, g in judged.items() if neg_max < g < rel)
        out.grades[qid] = dict(judged)
    if out.dropped:
        logger.info("binarize(rel=%d): dropped %d of %d queries without a positive", rel, len(out.dropped), len(order))
    return out


class Binarize(pt.Transformer):
    """A PyTerrier transformer that binarizes a graded qrels frame at threshold ``rel``: :func:`binarize` as a frame.

    Input: a frame with ``qid``, ``docno``, ``label``. Output: the judgements of the queries that
    :func:`binarize` keeps (those with at least one positive), one row per (``qid``, ``docno``) in input
    order, with three boolean columns added: ``positive`` (grade ``>= rel``), ``negative`` (grade
    ``<= neg_max``) and ``grey`` (neither). Duplicate judgements of a pair follow :func:`binarize`'s rule,
    the highest grade counts: the row with the highest ``label`` is kept (the first of equals). Queries
    without a positive are dropped and logged; :func:`binarize` names them (``.dropped``). The
    transformer keeps no state between calls.

    Example::

        train = Binarize(rel=3, negatives="below")(dataset.get_qrels())
    """

    def __init__(self, *, rel: int = 2, negatives: str | int = "zero", grades: Sequence[int] = GRADES):
        """Create the policy.

        Args:
            rel: τ, the minimum grade counted positive (one of the positive grades).
            negatives: ``"zero"``, ``"below"`` or an integer ``neg_max`` below ``rel``.
            grades: The dataset's grade scale (must include 0).
        """
        self.grades = _check_grades(grades)
        self.rel = _check_rel(rel, self.grades)
        self.neg_max = neg_max_for(negatives, self.rel, self.grades)
        self.negatives = negatives if isinstance(negatives, str) else self.neg_max

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        """Add ``positive``/``negative``/``grey`` columns, keep one row per pair, drop queries without a positive."""
        pta.validate.columns(inp, includes=["qid", "docno", "label"])
        b = binarize(inp, rel=self.rel, negatives=self.negatives, grades=self.grades)
        qid, docno = inp["qid"].astype(str).to_numpy(), inp["docno"].astype(str).to_numpy()
        # the highest-graded row of each pair (the first of equal grades), kept in input order
        by_grade = np.argsort(-_check_labels(inp["label"], self.grades), kind="stable")
        repeated = pd.DataFrame({"qid": qid[by_grade], "docno": docno[by_grade]}).duplicated().to_numpy()
        keep = np.zeros(len(inp), dtype=bool)
        keep[by_grade[~repeated]] = True
        keep &= np.isin(qid, list(b.positives))
        out = inp[keep].reset_index(drop=True)
        grade = np.array([b.grades[q][d] for q, d in zip(qid[keep], docno[keep], strict=True)], dtype=np.int64)
        out["positive"] = grade >= b.rel
        out["negative"] = grade <= b.neg_max
        out["grey"] = ~(out["positive"] | out["negative"])
        return out

    def __repr__(self) -> str:
        return f"Binarize(rel={self.rel!r}, negatives={self.negatives!r}, grades={self.grades!r})"
