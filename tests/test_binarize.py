"""The τ policy: exact positives / negatives / grey band on a tiny graded fixture, and validation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyterrier_gradrel.binarize import Binarize, binarize, neg_max_for

# q1: answer a0p0s1 (3), its paragraph (2), its article (1), one judged-0 passage of another article
# q2: answer a0p1s0; q3: answer a1p0s0; q4: no grade 3; q5: only grade 1
QRELS = pd.DataFrame([
    ("q1", "a0p0s1", 3), ("q1", "a0p0s0", 2), ("q1", "a0p0s2", 2), ("q1", "a0p1s0", 1), ("q1", "a0p1s1", 1),
    ("q1", "a1p1s0", 0),
    ("q2", "a0p1s0", 3), ("q2", "a0p1s1", 2), ("q2", "a0p0s0", 1), ("q2", "a0p0s1", 1), ("q2", "a0p0s2", 1),
    ("q3", "a1p0s0", 3), ("q3", "a1p0s1", 2), ("q3", "a1p1s0", 1),
    ("q4", "a1p1s0", 2), ("q4", "a1p0s0", 1), ("q4", "a1p0s1", 1),
    ("q5", "a1p0s0", 1),
], columns=["qid", "docno", "label"])


def _pos(b):
    return {q: set(v) for q, v in b.positives.items()}


def test_positives_per_threshold():
    b1 = binarize(QRELS, rel=1)
    assert _pos(b1) == {
        "q1": {"a0p0s1", "a0p0s0", "a0p0s2", "a0p1s0", "a0p1s1"},
        "q2": {"a0p1s0", "a0p1s1", "a0p0s0", "a0p0s1", "a0p0s2"},
        "q3": {"a1p0s0", "a1p0s1", "a1p1s0"},
        "q4": {"a1p1s0", "a1p0s0", "a1p0s1"},
        "q5": {"a1p0s0"},
    }
    assert b1.dropped == [] and b1.n_pairs() == 17
    b2 = binarize(QRELS, rel=2)
    assert _pos(b2) == {"q1": {"a0p0s1", "a0p0s0", "a0p0s2"}, "q2": {"a0p1s0", "a0p1s1"},
                        "q3": {"a1p0s0", "a1p0s1"}, "q4": {"a1p1s0"}}
    assert b2.dropped == ["q5"]
    b3 = binarize(QRELS, rel=3)
    assert _pos(b3) == {"q1": {"a0p0s1"}, "q2": {"a0p1s0"}, "q3": {"a1p0s0"}}
    assert b3.dropped == ["q4", "q5"]
    assert b3.report()["queries_dropped"] == 2 and b3.report()["positive_pairs"] == 3


def test_negative_policies():
    zero = binarize(QRELS, rel=3, negatives="zero")
    assert zero.neg_max == 0
    assert zero.negatives_judged == {"q1": ["a1p1s0"], "q2": [], "q3": []}
    assert zero.grey == {"q1": ["a0p0s0", "a0p0s2", "a0p1s0", "a0p1s1"],
                         "q2": ["a0p0s0", "a0p0s1", "a0p0s2", "a0p1s1"], "q3": ["a1p0s1", "a1p1s0"]}
    below = binarize(QRELS, rel=3, negatives="below")
    assert below.neg_max == 2
    assert below.negatives_judged["q1"] == ["a0p0s0", "a0p0s2", "a0p1s0", "a0p1s1", "a1p1s0"]
    assert all(v == [] for v in below.grey.values())
    band = binarize(QRELS, rel=3, negatives=1)
    assert band.neg_max == 1
    assert band.negatives_judged["q1"] == ["a0p1s0", "a0p1s1", "a1p1s0"]
    assert band.grey["q1"] == ["a0p0s0", "a0p0s2"]
    b2 = binarize(QRELS, rel=2, negatives="below")
    assert b2.negatives_judged["q3"] == ["a1p1s0"] and b2.grey["q3"] == []
    # every judged pair of a kept query is exactly one of positive / judged negative / grey
    for b in (zero, below, band, b2):
        for q in b.positives:
            parts = b.positives[q] + b.negatives_judged[q] + b.grey[q]
            assert sorted(parts) == sorted(b.grades[q]) and len(set(parts)) == len(parts)


def test_queries_without_any_judgement_are_dropped_and_counted():
    b = binarize(QRELS, rel=3, qids=["q1", "q9", "q5"])
    assert set(b.positives) == {"q1"} and b.dropped == ["q9", "q5"]


@pytest.mark.parametrize("kwargs, message", [
    ({"rel": 4}, r"rel must be one of \[1, 2, 3\]"),
    ({"rel": 0}, r"rel must be one of \[1, 2, 3\]"),
    ({"rel": "2"}, r"rel must be one of"),
    ({"negatives": "hard"}, r"negatives must be one of \['zero', 'below'\]"),
    ({"rel": 2, "negatives": 2}, r"must be one of \[0, 1\]"),
    ({"grades": (1, 2)}, r"grades must contain 0"),
])
def test_validation_names_allowed_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        binarize(QRELS, **kwargs)
    with pytest.raises(ValueError, match=message):
        Binarize(**kwargs)


def test_labels_off_scale_are_rejected():
    bad = pd.concat([QRELS, pd.DataFrame([("q1", "x", 5)], columns=["qid", "docno", "label"])])
    with pytest.raises(ValueError, match=r"grades in \[0, 1, 2, 3\], found \[5\]"):
        binarize(bad, rel=2)
    with pytest.raises(ValueError, match=r"found \[5\]"):
        Binarize(rel=2)(bad)


def test_neg_max_for():
    assert neg_max_for("zero", 3) == 0 and neg_max_for("below", 3) == 2 and neg_max_for(1, 3) == 1
    assert neg_max_for("below", 2, grades=(0, 1, 2)) == 1


def test_transformer_adds_columns_and_drops_queries(caplog):
    t = Binarize(rel=3, negatives=1)
    with caplog.at_level("INFO", logger="pyterrier_gradrel.binarize"):
        out = t(QRELS)
    assert set(out["qid"]) == {"q1", "q2", "q3"} and "dropped 2 of 5 queries" in caplog.text
    assert not hasattr(t, "last_dropped")  # stateless: binarize(...).dropped names them
    assert {"qid", "docno", "label", "positive", "negative", "grey"} <= set(out.columns)
    row = out.set_index(["qid", "docno"])
    assert row.loc[("q1", "a0p0s1"), "positive"] and not row.loc[("q1", "a0p0s1"), "negative"]
    assert row.loc[("q1", "a0p0s0"), "grey"] and row.loc[("q1", "a0p1s0"), "negative"]
    assert (out["positive"].astype(int) + out["negative"].astype(int) + out["grey"].astype(int) == 1).all()
    assert (out["positive"] == (out["label"] >= 3)).all()
    empty = t(QRELS.iloc[:0])
    assert len(empty) == 0 and {"positive", "negative", "grey"} <= set(empty.columns)
    assert repr(t) == "Binarize(rel=3, negatives=1, grades=(0, 1, 2, 3))"


def test_transformer_requires_columns():
    import pyterrier_alpha as pta

    with pytest.raises(pta.validate.InputValidationError):
        Binarize(rel=2)(QRELS.drop(columns=["label"]))


def _as_function(b, qrels):
    """The transformer's rows as binarize()'s dicts: qid -> (positives, judged negatives, grey)."""
    out = {}
    for q, rows in qrels.groupby("qid"):
        out[q] = tuple(sorted(rows.loc[rows[col], "docno"]) for col in ("positive", "negative", "grey"))
    return out


@pytest.mark.parametrize("rel, negatives", [(1, "zero"), (2, "below"), (3, 1), (3, "zero")])
def test_transformer_is_the_function_as_a_frame(rel, negatives):
    t = Binarize(rel=rel, negatives=negatives)
    b = binarize(QRELS, rel=rel, negatives=negatives)
    out = t(QRELS)
    assert _as_function(b, out) == {q: (b.positives[q], b.negatives_judged[q], b.grey[q]) for q in b.positives}
    assert sorted(set(out["qid"])) == b.qids and not set(out["qid"]) & set(b.dropped)


def test_duplicate_judgements_count_their_highest_grade_in_both():
    # (q1, a1p1s0) judged 0 and 3, (q4, a1p0s0) judged 1 twice, (q4, a1p1s0) judged 2 and 3; a repeated index
    dup = pd.concat([QRELS, pd.DataFrame([("q1", "a1p1s0", 3), ("q4", "a1p0s0", 1), ("q4", "a1p1s0", 3)],
                                         columns=["qid", "docno", "label"])])
    b = binarize(dup, rel=3, negatives=1)
    assert "a1p1s0" in b.positives["q1"] and b.positives["q4"] == ["a1p1s0"] and b.dropped == ["q5"]
    out = Binarize(rel=3, negatives=1)(dup)
    assert not out.duplicated(["qid", "docno"]).any()
    assert _as_function(b, out) == {q: (b.positives[q], b.negatives_judged[q], b.grey[q]) for q in b.positives}
    row = out.set_index(["qid", "docno"])
    assert row.loc[("q1", "a1p1s0"), "label"] == 3 and row.loc[("q1", "a1p1s0"), "positive"]
    assert row.loc[("q4", "a1p1s0"), "label"] == 3
    # kept rows stay in input order: the two pairs whose highest grade came last are the last rows
    assert list(zip(out["qid"], out["docno"], strict=True))[-2:] == [("q1", "a1p1s0"), ("q4", "a1p1s0")]
    assert out["qid"].iloc[:-2].tolist() == ["q1"] * 5 + ["q2"] * 5 + ["q3"] * 3 + ["q4"] * 2


@pytest.mark.parametrize("label, found", [(2.5, r"found \[2.5\]"), (-0.5, r"found \[-0.5\]"),
                                          (float("nan"), r"found 1 missing label\(s\)")])
def test_labels_that_are_not_whole_grades_are_rejected_not_truncated(label, found):
    """2.5 used to count as grade 2 (a positive at τ=2) and -0.5 as grade 0; NaN failed inside int()."""
    bad = pd.concat([QRELS, pd.DataFrame([("q1", "x", label)], columns=["qid", "docno", "label"])])
    with pytest.raises(ValueError, match=r"grades in \[0, 1, 2, 3\], " + found):
        binarize(bad, rel=2)
    with pytest.raises(ValueError, match=found):
        Binarize(rel=2)(bad)
    nullable = QRELS.astype({"label": "Int64"})
    nullable.loc[0, "label"] = pd.NA
    with pytest.raises(ValueError, match=r"found 1 missing label"):
        binarize(nullable, rel=2)


def test_float_and_numpy_integer_inputs_mean_the_same_grades():
    """Whole-number float labels (2.0) are the grades; a numpy int τ or neg_max (a value read from a frame) is the
    int, in the result too (it used to be refused: 'rel must be one of [1, 2, 3] ..., got np.int64(2)')."""
    b = binarize(QRELS.astype({"label": float}), rel=np.int64(2), negatives=np.int64(1))
    ref = binarize(QRELS, rel=2, negatives=1)
    assert (b.positives, b.negatives_judged, b.grey, b.grades, b.dropped) == (
        ref.positives, ref.negatives_judged, ref.grey, ref.grades, ref.dropped)
    assert type(b.rel) is int and type(b.negatives) is int and b.report() == ref.report()
    t = Binarize(rel=np.int64(3), negatives=np.int64(1))
    pd.testing.assert_frame_equal(t(QRELS.astype({"label": float})).astype({"label": int}),
                                  Binarize(rel=3, negatives=1)(QRELS))
    assert repr(t) == "Binarize(rel=3, negatives=1, grades=(0, 1, 2, 3))"
    with pytest.raises(ValueError, match="rel must be one of"):
        binarize(QRELS, rel=np.bool_(True))
