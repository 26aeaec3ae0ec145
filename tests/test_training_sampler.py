"""Sampling units, hard-negative rules, label-aware masking, nested fractions and grade noise."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from _graded_fixture import graded_collection

from pyterrier_gradrel.binarize import binarize
from pyterrier_gradrel.training import PairSampler, grade_noise, nested_fraction


@pytest.fixture(scope="module")
def data():
    return graded_collection(n_articles=4, paras=2, sents=3)


def _sampler(data, *, rel=2, negatives="zero", unit="query", hard=2, seed=0, batch_size=4):
    topics, qrels, docs = data
    b = binarize(qrels, rel=rel, negatives=negatives, qids=topics["qid"])
    return PairSampler(b, topics, docs, unit=unit, batch_size=batch_size, hard_negatives=hard, seed=seed), b


def _raw(data):
    topics, qrels, docs = data
    grade = {(q, d): int(g) for q, d, g in zip(qrels["qid"], qrels["docno"], qrels["label"], strict=True)}
    text = dict(zip(docs["docno"], docs["text"], strict=True))
    return grade, text


POLICIES = [(1, "zero"), (2, "zero"), (3, "zero"), (2, "below"), (3, "below"), (3, 1)]


@pytest.mark.parametrize("rel, negatives", POLICIES)
def test_hard_negatives_are_legal_and_from_the_training_split(data, rel, negatives):
    topics, qrels, docs = data
    grade, text = _raw(data)
    s, b = _sampler(data, rel=rel, negatives=negatives, hard=2)
    split = dict(zip(docs["docno"], docs["split"], strict=True))
    article = dict(zip(docs["docno"], docs["article"], strict=True))
    q_article = dict(zip(topics["qid"], topics["article"], strict=True))
    seen_judged = 0
    for epoch in range(6):
        for batch in s.epoch(epoch):
            for ex in batch:
                assert len(ex.hard) == 2 and len(set(ex.hard)) == 2
                blocked = {text[d] for (q, d), g in grade.items() if q == ex.qid and g > b.neg_max}
                for d in ex.hard:
                    assert split[d] == "train"
                    assert grade.get((ex.qid, d), 0) <= b.neg_max
                    assert text[d] not in blocked
                    if (ex.qid, d) in grade:
                        seen_judged += 1
                    else:
                        assert article[d] != q_article[ex.qid]  # unjudged: outside the query's article
    if negatives == "below" or negatives == 1:
        assert seen_judged > 0  # the structurally close judged negatives are used
    else:
        assert seen_judged == 0  # "zero": no judged grade-0 rows in this fixture


@pytest.mark.parametrize("rel, negatives", POLICIES)
def test_in_batch_mask_matches_an_independent_computation(data, rel, negatives):
    grade, text = _raw(data)
    s, b = _sampler(data, rel=rel, negatives=negatives, hard=1, batch_size=8)
    n_masked = 0
    for epoch in range(4):
        for batch in s.epoch(epoch):
            cands = s.candidates(batch)
            assert cands[:len(batch)] == [ex.positive for ex in batch]
            m = s.mask(batch)
            for i, ex in enumerate(batch):
                blocked = {text[d] for (q, d), g in grade.items() if q == ex.qid and g > b.neg_max}
                for j, d in enumerate(cands):
                    expected = j != i and (grade.get((ex.qid, d), 0) > b.neg_max or text[d] in blocked)
                    assert m[i, j] == expected, (ex.qid, d)
                    n_masked += expected
                # no positive (>= rel) ever survives as a negative
                for j, d in enumerate(cands):
                    if j != i and grade.get((ex.qid, d), 0) >= rel:
                        assert m[i, j]
    assert n_masked > 0


def test_identical_text_is_never_a_negative(data):
    s, b = _sampler(data, rel=3)
    # a1-p0-s2 has the text of a0-p0-s0, the answer of q0-0
    assert b.grades["q0-0"]["a0-p0-s0"] == 3 and "a1-p0-s2" not in b.grades["q0-0"]
    assert s.grade("q0-0", "a1-p0-s2") == 3 and not s.is_legal_negative("q0-0", "a1-p0-s2")
    from pyterrier_gradrel.training import Example

    batch = [Example("q0-0", "a0-p0-s0"), Example("q1-0", "a1-p0-s2")]
    # both ways: a1-p0-s2 is judged 2 for q1-0, so its twin a0-p0-s0 is grey for q1-0 at rel=3
    assert s.mask(batch).tolist() == [[False, True], [True, False]]


def test_sampling_units(data):
    for rel in (1, 2, 3):
        s, b = _sampler(data, rel=rel, unit="query")
        for epoch in range(3):
            exs = [ex for batch in s.epoch(epoch) for ex in batch]
            assert sorted(ex.qid for ex in exs) == sorted(b.qids)  # each query once per epoch
            assert all(ex.positive in b.positives[ex.qid] for ex in exs)
        assert s.steps_per_epoch() == -(-len(b.qids) // 4)
    steps = {rel: _sampler(data, rel=rel, unit="query")[0].steps_per_epoch() for rel in (1, 2, 3)}
    assert len(set(steps.values())) == 1  # same number of steps for every τ
    pairs = {}
    for rel in (1, 2, 3):
        s, b = _sampler(data, rel=rel, unit="pair")
        exs = [ex for batch in s.epoch(0) for ex in batch]
        assert sorted((ex.qid, ex.positive) for ex in exs) == sorted((q, d) for q in b.qids for d in b.positives[q])
        pairs[rel] = len(exs)
    assert pairs[1] > pairs[2] > pairs[3]
    with pytest.raises(ValueError, match=r"unit must be one of \['query', 'pair'\]"):
        _sampler(data, unit="doc")


def test_sampler_is_seeded(data):
    a, _ = _sampler(data, seed=3)
    b, _ = _sampler(data, seed=3)
    c, _ = _sampler(data, seed=4)
    assert a.epoch(1) == b.epoch(1)
    assert a.epoch(0) != a.epoch(1)
    assert a.epoch(1) != c.epoch(1)


def test_steps_walk_the_epochs_in_order_and_resume_where_they_stopped(data):
    s, _ = _sampler(data, seed=3)
    per_epoch = s.steps_per_epoch()
    walked = list(s.steps(0, 2 * per_epoch + 1))
    assert [b for _, b in walked] == s.epoch(0) + s.epoch(1) + s.epoch(2)[:1]
    assert [e for e, _ in walked] == [0] * per_epoch + [1] * per_epoch + [2]
    assert list(s.steps(per_epoch - 1, 2 * per_epoch + 1)) == walked[per_epoch - 1:]
    assert list(s.steps(5, 5)) == []


def test_positives_missing_from_corpus_are_an_error(data):
    topics, qrels, docs = data
    b = binarize(qrels, rel=3)
    with pytest.raises(ValueError, match="positive passages are not in the corpus"):
        PairSampler(b, topics, docs[docs["docno"] != "a0-p0-s0"])


def test_nested_fraction_is_nested_and_stratified():
    topics = pd.DataFrame({"qid": [f"q{i}" for i in range(200)], "lang": ["en"] * 120 + ["th"] * 80})
    sets = {f: set(nested_fraction(topics, f, seed=5)["qid"]) for f in (0.1, 0.25, 0.5, 1.0)}
    assert sets[0.1] < sets[0.25] < sets[0.5] < sets[1.0]
    sub = nested_fraction(topics, 0.25, seed=5)
    assert (sub["lang"] == "en").sum() == 30 and (sub["lang"] == "th").sum() == 20
    assert set(nested_fraction(topics, 0.25, seed=6)["qid"]) != sets[0.25]
    assert nested_fraction(topics, 0.25, seed=5)["qid"].tolist() == sub["qid"].tolist()
    with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\]"):
        nested_fraction(topics, 0)


def test_grade_noise_model():
    rng = np.random.default_rng(0)
    qrels = pd.DataFrame({"qid": [f"q{i // 10}" for i in range(4000)], "docno": [f"d{i}" for i in range(4000)],
                          "label": rng.integers(1, 4, size=4000)})
    assert (grade_noise(qrels, 0.0, seed=1)["label"].to_numpy() ==
            qrels.sort_values(["qid", "docno"])["label"].to_numpy()).all()
    n1, n2 = grade_noise(qrels, 0.1, seed=1), grade_noise(qrels, 0.3, seed=1)
    base = qrels.sort_values(["qid", "docno"], kind="stable").reset_index(drop=True)
    for n, p in ((n1, 0.1), (n2, 0.3)):
        changed = n["label"] != base["label"]
        assert (changed == n["noisy"]).all()  # a replaced grade is always another grade
        assert abs(changed.mean() - p) < 0.03
        assert set(n.loc[changed, "label"]) <= {0, 1, 2, 3}
    assert (n1["noisy"] <= n2["noisy"]).all()  # nested in p
    assert (n1.loc[n1["noisy"], "label"] == n2.loc[n1["noisy"], "label"]).all()
    # uniform over the other grades: from grade 1 the replacements are 0, 2, 3 about equally
    repl = n2.loc[n2["noisy"] & (base["label"] == 1), "label"].value_counts(normalize=True)
    assert set(repl.index) == {0, 2, 3} and all(abs(v - 1 / 3) < 0.08 for v in repl)
    assert not grade_noise(qrels, 0.3, seed=2)["label"].equals(n2["label"])
    with pytest.raises(ValueError, match=r"noise rate p must be a number in \[0, 1\]"):
        grade_noise(qrels, 1.5)


def test_mask_covers_every_pair_of_candidates(data):
    s, b = _sampler(data, rel=1, hard=0, batch_size=16)
    batch = s.epoch(0)[0]
    m = s.mask(batch)
    assert m.shape == (len(batch), len(batch))
    # at rel=1 with "zero", every same-article candidate is masked, every other-article one is not
    art = {q: q.split("-")[0][1:] for q in b.qids}
    for (i, ex), (j, other) in itertools.product(enumerate(batch), enumerate(batch)):
        if i != j:
            same = art[ex.qid] == other.positive.split("-")[0][1:]
            twin = (ex.qid.startswith("q0") and other.positive == "a1-p0-s2") or \
                   (ex.qid.startswith("q1") and other.positive == "a0-p0-s0")
            assert m[i, j] == (same or twin)


def test_a_languages_fraction_subset_depends_on_the_other_languages_present():
    # the stratum order is seeded by (seed, 1000 + position among the languages present), not by the language:
    # committed data-efficiency subsets depend on it, so this pins what the docs say
    from pyterrier_gradrel.training._subsets import _rng

    topics = pd.DataFrame({"qid": [f"q{i:03d}" for i in range(200)], "lang": ["en"] * 120 + ["th"] * 80})
    th = topics[topics["lang"] == "th"]
    alone = set(nested_fraction(th, 0.25, seed=5)["qid"])
    in_multi = set(nested_fraction(topics, 0.25, seed=5).query("lang == 'th'")["qid"])
    qids = sorted(th["qid"])
    assert alone == {qids[j] for j in _rng(5, 1000 + 0).permutation(80)[:20]}  # th is the only language: i = 0
    assert in_multi == {qids[j] for j in _rng(5, 1000 + 1).permutation(80)[:20]}  # after en: i = 1
    assert alone != in_multi and len(alone) == len(in_multi) == 20


def test_noise_to_grade_zero_makes_a_judged_hard_negative_exempt_from_the_own_article_rule(data):
    # a grade replaced by 0 keeps its row (label 0): under negatives="zero" it is a judged negative, drawn first,
    # and may come from the query's own article, which no unjudged hard negative can
    topics, qrels, docs = data
    article = dict(zip(docs["docno"], docs["article"], strict=True))
    q_article = dict(zip(topics["qid"], topics["article"], strict=True))

    def own_article_hard_negatives(labels):
        b = binarize(labels, rel=2, negatives="zero", qids=topics["qid"])
        s = PairSampler(b, topics, docs, unit="query", batch_size=2, hard_negatives=1, seed=0)
        hard = [(ex.qid, h) for epoch in range(10) for batch in s.epoch(epoch) for ex in batch for h in ex.hard]
        return b, s, sum(article[h] == q_article[q] for q, h in hard)

    noisy = grade_noise(qrels, 0.4, seed=0)
    zeroed = noisy[noisy["noisy"] & (noisy["label"] == 0)]
    assert len(noisy) == len(qrels) and len(zeroed) > 0  # kept, with label 0
    b, s, own = own_article_hard_negatives(noisy)
    same_article = [(q, d) for q, d in zip(zeroed["qid"], zeroed["docno"], strict=True)
                    if q in b.positives and article[d] == q_article[q] and s._in_split(d)]
    assert same_article and all(d in b.negatives_judged[q] and d in s._judged_neg[q] for q, d in same_article)
    assert own > 0
    assert own_article_hard_negatives(qrels)[2] == 0  # without noise the rule keeps every hard negative out


def test_own_article_rule_without_query_articles_warns_that_it_is_off(data):
    """Topics without ``article`` (what ``get_topics("text")`` returns) cannot apply the own-article rule the config
    asks for: training says so instead of silently drawing hard negatives from the query's own article."""
    import warnings

    from pyterrier_gradrel.training import TrainConfig
    from pyterrier_gradrel.training._data import prepare

    topics, qrels, docs = data
    cfg = TrainConfig(rel=2, exclude_own_article=True)
    with pytest.warns(UserWarning, match="own-article rule is off"):
        _, report, _ = prepare(cfg, topics[["qid", "query"]], qrels, docs)
    assert report["own_article_rule"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, report, _ = prepare(cfg, topics, qrels, docs)  # with the articles: applied, nothing to say
        assert report["own_article_rule"] is True
        prepare(TrainConfig(rel=2, exclude_own_article=False), topics[["qid", "query"]], qrels, docs)
