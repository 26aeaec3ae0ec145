"""Agreement between judge grades and a collection's existing grades (confusion matrix, weighted kappa).

The reference qrels of the benchmark list grades 1..3 only; a judged pair that the reference qrels do
not list has reference grade 0 (as ir_measures treats it).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pyterrier_gradrel._markdown import table_lines
from pyterrier_gradrel.datasets import GRADES

WEIGHTS = ("quadratic", "linear", None)


def weighted_kappa(confusion: np.ndarray, *, weights: str | None = "quadratic",
                   values: Sequence[float] | None = None) -> float:
    """Cohen's kappa of a square confusion matrix (rows: reference, columns: judge).

    Args:
        confusion: ``k x k`` counts.
        weights: ``"quadratic"`` (disagreement weight ``(a-b)^2`` between the grades ``a`` and ``b`` of a cell),
            ``"linear"`` (``|a-b|``) or ``None`` (unweighted).
        values: the grade of each row and column (default ``0..k-1``), so that a scale with a gap, such as
            ``(0, 1, 3)``, weighs a 1-vs-3 disagreement as two steps.

    Returns:
        Kappa, or NaN when the expected disagreement is zero (e.g. a single grade everywhere).
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {list(WEIGHTS)}, got {weights!r}")
    observed = np.asarray(confusion, dtype=float)
    if observed.ndim != 2 or observed.shape[0] != observed.shape[1]:
        raise ValueError(f"confusion must be a square matrix, got shape {observed.shape}")
    k = observed.shape[0]
    grade = np.arange(k, dtype=float) if values is None else np.asarray(values, dtype=float)
    if grade.shape != (k,):
        raise ValueError(f"values must give one grade per row of the {k} x {k} confusion, got {list(grade)}")
    n = observed.sum()
    if n == 0:
        return float("nan")
    i, j = np.meshgrid(grade, grade, indexing="ij")
    if weights == "quadratic":
        w = (i - j) ** 2
    elif weights == "linear":
        w = np.abs(i - j)
    else:
        w = (i != j).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    denominator = (w * expected).sum()
    if denominator == 0:
        return float("nan")
    return float(1.0 - (w * observed).sum() / denominator)


@dataclass(frozen=True)
class GroupAgreement:
    """Agreement within one group (a language, or everything).

    Attributes:
        n: judged pairs with a grade (pairs the judge left missing are counted in ``missing``).
        missing: pairs without a judge grade.
        confusion: ``len(grades) x len(grades)`` counts, rows = reference grade, columns = judge grade.
        kappa_quadratic: Cohen's quadratic-weighted kappa.
        kappa_linear: Cohen's linear-weighted kappa.
        exact: share of pairs with identical grades.
    """

    n: int
    missing: int
    confusion: np.ndarray = field(repr=False)
    kappa_quadratic: float
    kappa_linear: float
    exact: float


@dataclass(frozen=True)
class AgreementReport:
    """Agreement overall and per group (e.g. per language)."""

    grades: tuple[int, ...]
    overall: GroupAgreement
    groups: dict[str, GroupAgreement]
    by: str | None

    def to_frame(self) -> pd.DataFrame:
        """One row per group plus ``all``: n, missing, exact, kappa_quadratic, kappa_linear."""
        rows = [{"group": g, "n": a.n, "missing": a.missing, "exact": a.exact,
                 "kappa_quadratic": a.kappa_quadratic, "kappa_linear": a.kappa_linear}
                for g, a in [*sorted(self.groups.items()), ("all", self.overall)]]
        return pd.DataFrame(rows)

    def confusion_frame(self, group: str | None = None) -> pd.DataFrame:
        """The confusion matrix of ``group`` (default: overall) with labelled axes."""
        agreement = self.overall if group is None else self.groups[group]
        labels = [str(g) for g in self.grades]
        return pd.DataFrame(agreement.confusion, index=pd.Index(labels, name="reference"),
                            columns=pd.Index(labels, name="judge"))

    def to_markdown(self) -> str:
        """A markdown summary: per-group table and the overall confusion matrix."""
        lines = table_lines(["group", "n", "missing", "exact", "kappa (quadratic)", "kappa (linear)"],
                            ([str(r.group), str(r.n), str(r.missing), f"{r.exact:.3f}", f"{r.kappa_quadratic:.3f}",
                              f"{r.kappa_linear:.3f}"] for r in self.to_frame().itertuples()))
        conf = self.confusion_frame()
        lines += ["", "Confusion (rows: reference grade, columns: judge grade)", ""]
        lines += table_lines(["ref \\ judge", *conf.columns],
                             ([str(label), *(str(int(v)) for v in row)] for label, row in conf.iterrows()))
        return "\n".join(lines)


def _group(ref: np.ndarray, judge: np.ndarray, missing: int, grades: Sequence[int]) -> GroupAgreement:
    pos = {g: i for i, g in enumerate(grades)}
    confusion = np.zeros((len(grades), len(grades)), dtype=np.int64)
    for r, j in zip(ref, judge, strict=True):
        confusion[pos[int(r)], pos[int(j)]] += 1
    n = int(confusion.sum())
    return GroupAgreement(
        n=n, missing=int(missing), confusion=confusion,
        kappa_quadratic=weighted_kappa(confusion, weights="quadratic", values=grades),
        kappa_linear=weighted_kappa(confusion, weights="linear", values=grades),
        exact=float(np.trace(confusion) / n) if n else float("nan"),
    )


def agreement(judged: pd.DataFrame, qrels: pd.DataFrame, *, by: str | None = "lang",
              grades: Sequence[int] = GRADES) -> AgreementReport:
    """Compare judge grades with reference grades.

    Args:
        judged: frame with ``qid``, ``docno``, ``grade`` (judge; missing allowed) and, if ``by`` is set,
            the grouping column (e.g. ``lang``).
        qrels: reference qrels with ``qid``, ``docno``, ``label``; judged pairs absent from it have
            reference grade 0; a pair listed twice counts with its highest grade.
        by: column of ``judged`` to group by (``None``: overall only).
        grades: the grade scale: the rows and columns of the confusion matrix, and the grade values the kappa
            weights are distances between. Both sides must stay inside it: for a reference collection on another
            scale than the judge's 0..3, pass the union (``gradrel agreement`` does, from the dataset's grades).

    Raises:
        ValueError: a column is missing, ``judged`` repeats a pair, or a grade is outside ``grades``.

    Returns:
        An :class:`AgreementReport` (overall and per group).
    """
    for frame_name, frame, cols in (("judged", judged, ["qid", "docno", "grade"]),
                                    ("qrels", qrels, ["qid", "docno", "label"])):
        missing_cols = [c for c in cols if c not in frame.columns]
        if missing_cols:
            raise ValueError(f"{frame_name} lacks columns {missing_cols}; it needs {cols}, has {list(frame.columns)}")
    if by is not None and by not in judged.columns:
        raise ValueError(f"by={by!r} is not a column of judged; choose one of {list(judged.columns)} or None")
    grades = tuple(sorted({int(g) for g in grades}))
    if judged.duplicated(["qid", "docno"]).any():
        raise ValueError("judged has duplicate (qid, docno) pairs")
    ref = qrels[["qid", "docno", "label"]].astype({"qid": str, "docno": str})
    ref = ref.groupby(["qid", "docno"], as_index=False, sort=False)["label"].max()  # the highest grade counts
    merged = judged.astype({"qid": str, "docno": str}).merge(ref, on=["qid", "docno"], how="left")
    merged["label"] = merged["label"].fillna(0).astype(int)
    bad_ref = sorted(set(merged["label"]) - set(grades))
    present = merged["grade"].notna()
    bad_judge = sorted(set(merged.loc[present, "grade"].astype(int)) - set(grades))
    if bad_ref or bad_judge:
        raise ValueError(f"grades must be in {list(grades)}; reference has {bad_ref}, judge has {bad_judge} "
                         f"(pass grades=... with the scale of both, e.g. the reference dataset's grades and 0..3)")

    def summarise(part: pd.DataFrame) -> GroupAgreement:
        ok = part["grade"].notna()
        return _group(part.loc[ok, "label"].to_numpy(), part.loc[ok, "grade"].astype(int).to_numpy(),
                      int((~ok).sum()), grades)

    groups = {str(k): summarise(part) for k, part in merged.groupby(by, sort=True)} if by is not None else {}
    return AgreementReport(grades=grades, overall=summarise(merged), groups=groups, by=by)
