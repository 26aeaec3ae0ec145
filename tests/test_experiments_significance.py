"""Significance wiring on a synthetic run set whose p-values are recomputed independently here."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pyterrier_gradrel.experiments import (
    SignificanceSpec,
    bootstrap_table,
    calibrate,
    cluster_bootstrap,
    compare_levels,
    compare_thresholds,
    compare_to_baselines,
    correct,
    evaluate,
    paired_test,
    parse_measures,
    pooled_difference,
)
from pyterrier_gradrel.experiments._plan import Variant
from pyterrier_gradrel.experiments._significance import paired_row
from pyterrier_gradrel.experiments._store import PERQUERY_COLUMNS

T_HOLM = SignificanceSpec(test="t", correction="holm")
N_Q = 40
TARGETS = {"en": "gradrel/xquad-r/en/test", "th": "gradrel/xquad-r/th/test"}
VARIANTS = ["tau=1", "tau=2", "tau=3"]
SEEDS = [0, 1, 2]
# true effects (per target, variant) relative to zero-shot; BM25 is 0.15 below zero-shot
EFFECT = {("en", "tau=1"): -0.08, ("en", "tau=2"): 0.0, ("en", "tau=3"): 0.01,
          ("th", "tau=1"): -0.02, ("th", "tau=2"): 0.09, ("th", "tau=3"): 0.05}


def synthetic_perquery(seed: int = 7) -> pd.DataFrame:
    """Per-query scores of 2 baselines and 3 τ variants × 3 seeds on 2 targets (test + dev), 4 articles."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, target in TARGETS.items():
        for split in ("test", "dev"):
            qids = [f"{label}-{split}-q{i}" for i in range(N_Q)]
            articles = [f"art{i % 4}" for i in range(N_Q)]
            base = np.clip(rng.normal(0.65, 0.2, N_Q) + np.repeat(rng.normal(0, 0.05, 4), N_Q // 4), 0, 1)

            def add(system, variant, seed_, values, qids=qids, articles=articles, label=label, split=split,
                    target=target):
                for q, a, v in zip(qids, articles, values, strict=True):
                    rows.append(dict(scenario="monolingual-xquad-r", label=label, target=target.replace("test", split),
                                     split=split, role="main", system=system, variant=variant, **_typed(variant),
                                     seed=seed_, fraction=1.0, noise=0.0, qid=q, article=a, measure="nDCG@10",
                                     value=float(v)))
            add("mE5-zero-shot", "", 0, base)
            add("BM25", "", 0, np.clip(base - 0.15 + rng.normal(0, 0.1, N_Q), 0, 1))
            for variant in VARIANTS:
                for s in SEEDS:
                    add("fine-tuned", variant, s,
                        np.clip(base + EFFECT[(label, variant)] + rng.normal(0, 0.08, N_Q), 0, 1))
    return _frame(rows)


def _typed(variant: str) -> dict[str, object]:
    """The typed columns of a row of the graded nDCG@10 for ``variant`` (``tau=<τ>`` or ``""`` for a baseline)."""
    tau = {f"tau={t}": t for t in (1, 2, 3)}.get(variant)
    return {"tau": tau, "loss": "infonce" if tau is not None else "", "rel": None, "base": "nDCG@10"}


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype({"tau": "Int64", "rel": "Int64"})[PERQUERY_COLUMNS]


def _holm_reference(p):
    """Holm step-down written as the textbook loop (independent of the vectorised implementation)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def _bh_reference(p):
    m = len(p)
    out = []
    for i in range(m):
        # adjusted p_i = min over j with p_j >= p_i of m * p_j / rank_j
        ranks = {j: sum(pk <= p[j] for pk in p) for j in range(m)}
        out.append(min(1.0, min(m * p[j] / ranks[j] for j in range(m) if p[j] >= p[i])))
    return out


def test_corrections_match_textbook_definitions():
    rng = np.random.default_rng(3)
    p = list(rng.uniform(0, 0.2, 12)) + [0.001, 0.5]
    np.testing.assert_allclose(correct(p, method="holm"), _holm_reference(p))
    np.testing.assert_allclose(correct(p, method="bh"), _bh_reference([float(x) for x in p]))
    np.testing.assert_allclose(correct(p, method="bonferroni"), np.minimum(np.array(p) * len(p), 1))
    np.testing.assert_allclose(correct(p, method="none"), p)
    with pytest.raises(ValueError, match="expected one of"):
        correct(p, method="fdr")


def _vectorised_reference(p, method):
    """The hand-written Holm/BH this package used before statsmodels (argsort, then accumulate)."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_statsmodels_corrections_equal_the_hand_written_ones(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.3, int(rng.integers(1, 40)))
    p[rng.integers(0, len(p), len(p) // 3)] = rng.choice(p, len(p) // 3)  # ties
    np.testing.assert_array_equal(correct(p, method="holm"), _vectorised_reference(p, "holm"))
    # BH: statsmodels divides by rank/m where the old code multiplied by m/rank (last-bit differences)
    np.testing.assert_allclose(correct(p, method="bh"), _vectorised_reference(p, "bh"), rtol=1e-14, atol=0)
    with_nan = np.append(p, np.nan)
    np.testing.assert_array_equal(correct(with_nan, method="holm"), _vectorised_reference(with_nan, "holm"))
    assert np.isnan(correct(with_nan, method="bh")).all() and np.isnan(_vectorised_reference(with_nan, "bh")).all()
    assert correct([], method="holm").shape == (0,)


def test_p_values_recomputed_with_scipy_on_seed_averaged_scores():
    pq = synthetic_perquery()
    sig = compare_to_baselines(pq, baselines=["BM25", "mE5-zero-shot"], significance=T_HOLM)
    # one row per target × variant × baseline, test split only
    assert len(sig) == 2 * 3 * 2
    test = pq[pq["split"] == "test"]
    expected = {}
    for label in TARGETS:
        t = test[test["label"] == label]
        for baseline in ["BM25", "mE5-zero-shot"]:
            b = t[t["system"] == baseline].set_index("qid")["value"].sort_index()
            for variant in VARIANTS:
                ft = t[(t["system"] == "fine-tuned") & (t["variant"] == variant)]
                # seed-averaged per-query scores, computed here with a pivot (independently of seed_average)
                x = ft.pivot(index="qid", columns="seed", values="value").mean(axis=1).sort_index()
                assert list(x.index) == list(b.index)
                expected[(label, variant, baseline)] = stats.ttest_rel(x.to_numpy(), b.to_numpy()).pvalue
                row = sig[(sig["label"] == label) & (sig["variant"] == variant) & (sig["baseline"] == baseline)].iloc[0]
                assert row["n_seeds"] == 3 and row["n_queries"] == N_Q
                assert math.isclose(row["mean"], x.mean()) and math.isclose(row["baseline_mean"], b.mean())
                assert math.isclose(row["p_value"], expected[(label, variant, baseline)], rel_tol=1e-12)
    # Holm over the family = all targets × variants of one (measure, baseline)
    for baseline in ["BM25", "mE5-zero-shot"]:
        keys = [k for k in expected if k[2] == baseline]
        ref = dict(zip(keys, _holm_reference([expected[k] for k in keys]), strict=True))
        fam = sig[sig["baseline"] == baseline]
        assert (fam["family_size"] == 6).all()
        for r in fam.itertuples():
            assert math.isclose(r.p_adjusted, ref[(r.label, r.variant, baseline)], rel_tol=1e-12)
            assert r.significant == (ref[(r.label, r.variant, baseline)] < 0.05)
    # the planted effects: th τ=2 (+0.09) beats zero-shot, en τ=1 (-0.08) loses, en τ=2 (0.0) does not differ
    z = sig[sig["baseline"] == "mE5-zero-shot"].set_index(["label", "variant"])
    assert z.loc[("th", "tau=2"), "significant"] and z.loc[("th", "tau=2"), "delta"] > 0
    assert z.loc[("en", "tau=1"), "significant"] and z.loc[("en", "tau=1"), "delta"] < 0
    assert not z.loc[("en", "tau=2"), "significant"]


def test_threshold_winner_reported_from_all_pairs_corrected_together():
    pq = synthetic_perquery()
    thr = compare_thresholds(pq, measure="nDCG@10", significance=T_HOLM)
    assert len(thr) == 2 * 2  # per target: the winner against the two other τ
    test = pq[(pq["split"] == "test") & (pq["system"] == "fine-tuned")]
    pairs, bests = {}, {}
    for label in TARGETS:
        t = test[test["label"] == label]
        avg = {v: t[t["variant"] == v].pivot(index="qid", columns="seed", values="value").mean(axis=1).sort_index()
               for v in VARIANTS}
        bests[label] = max(VARIANTS, key=lambda v: avg[v].mean())
        for a, b in [("tau=1", "tau=2"), ("tau=1", "tau=3"), ("tau=2", "tau=3")]:  # all k(k-1)/2 = 3 pairs
            pairs[(label, frozenset((a, b)))] = stats.ttest_rel(avg[a].to_numpy(), avg[b].to_numpy()).pvalue
    # Holm by hand over the 2 targets × 3 pairs = 6 p-values, not over the winner's 2 × 2 = 4
    ref = dict(zip(pairs, _holm_reference(list(pairs.values())), strict=True))
    for r in thr.itertuples():
        key = (r.label, frozenset((r.best, r.other)))
        assert r.best == bests[r.label] and r.delta >= 0 and r.statistic >= 0  # oriented winner − other
        assert math.isclose(r.p_value, pairs[key], rel_tol=1e-12)
        assert math.isclose(r.p_adjusted, ref[key], rel_tol=1e-12)
        assert r.significant == (ref[key] < 0.05)
        assert r.family_size == 6 and r.n_seeds == 3
    # planted: th τ=2 (+0.09) wins and beats τ=1 (-0.02); en τ=3 (+0.01) or τ=2 (0.0) wins and beats τ=1 (-0.08)
    winners = thr.groupby("label")["best"].first()
    assert winners["th"] == "tau=2" and winners["en"] in ("tau=2", "tau=3")
    sig = thr.set_index(["label", "other"])["significant"]
    assert sig[("th", "tau=1")] and sig[("en", "tau=1")]
    # one variant per target: nothing to compare
    one = pq[~((pq["system"] == "fine-tuned") & (pq["variant"] != "tau=2"))]
    assert compare_thresholds(one, measure="nDCG@10").empty


# planted noise effects at rate 0.4, relative to the same τ at rate 0 (τ=3 is hurt, τ=1 is not)
NOISE_EFFECT = {"tau=1": 0.0, "tau=2": -0.03, "tau=3": -0.12}


def synthetic_noise_perquery(seed: int = 11) -> pd.DataFrame:
    """One target, 3 τ × 3 seeds at noise 0 and 0.4 (fraction 1), plus 3 τ × 3 seeds at fraction 0.1 (noise 0)."""
    rng = np.random.default_rng(seed)
    qids = [f"q{i}" for i in range(N_Q)]
    base = np.clip(rng.normal(0.6, 0.2, N_Q), 0, 1)
    rows = []
    for variant in VARIANTS:
        for fraction, noise, shift in ((1.0, 0.0, 0.0), (1.0, 0.4, NOISE_EFFECT[variant]), (0.1, 0.0, -0.01)):
            for s in SEEDS:
                values = np.clip(base + shift + rng.normal(0, 0.05, N_Q), 0, 1)
                for q, v in zip(qids, values, strict=True):
                    rows.append(dict(scenario="crosslingual-xquad-r", label="th-en", target="gradrel/xquad-r/th-en/test",
                                     split="test", role="main", system="fine-tuned", variant=variant,
                                     **_typed(variant), seed=s, fraction=fraction, noise=noise, qid=q, article="a",
                                     measure="nDCG@10", value=float(v)))
    return _frame(rows)


def test_level_effects_and_interactions_recomputed_with_scipy():
    pq = synthetic_noise_perquery()
    lev = compare_levels(pq, measure="nDCG@10", significance=T_HOLM)
    # per axis level (fraction 0.1, noise 0.4): 3 effects + 3 variant pairs
    assert len(lev) == 2 * (3 + 3)
    assert set(lev["axis"]) == {"fraction", "noise"}
    avg = {(v, f, n): g.pivot(index="qid", columns="seed", values="value").mean(axis=1).sort_index()
           for (v, f, n), g in pq.groupby(["variant", "fraction", "noise"])}
    expected = {}
    for axis, (f, n) in (("fraction", (0.1, 0.0)), ("noise", (1.0, 0.4))):
        change = {v: avg[(v, f, n)] - avg[(v, 1.0, 0.0)] for v in VARIANTS}
        for v in VARIANTS:
            expected[(axis, "effect", v, "")] = (
                change[v].mean(), stats.ttest_rel(avg[(v, f, n)].to_numpy(), avg[(v, 1.0, 0.0)].to_numpy()).pvalue)
        for i, v in enumerate(VARIANTS):
            for w in VARIANTS[i + 1:]:
                expected[(axis, "interaction", v, w)] = (
                    (change[v] - change[w]).mean(), stats.ttest_rel(change[v].to_numpy(), change[w].to_numpy()).pvalue)
    for kind in ("effect", "interaction"):
        keys = [k for k in expected if k[1] == kind]
        ref = dict(zip(keys, _holm_reference([expected[k][1] for k in keys]), strict=True))
        fam = lev[lev["kind"] == kind]
        assert (fam["family_size"] == 6).all()
        for r in fam.itertuples():
            k = (r.axis, kind, r.variant, r.other)
            assert math.isclose(r.delta, expected[k][0], abs_tol=1e-12)
            assert math.isclose(r.p_value, expected[k][1], rel_tol=1e-9)
            assert math.isclose(r.p_adjusted, ref[k], rel_tol=1e-9)
    noise = lev[lev["axis"] == "noise"].set_index(["kind", "variant", "other"])
    assert (noise["reference"] == 0.0).all() and (noise["level"] == 0.4).all()
    # planted: noise hurts τ=3 (-0.12), not τ=1; τ=1 is hurt significantly less than τ=3
    assert noise.loc[("effect", "tau=3", ""), "significant"] and noise.loc[("effect", "tau=3", ""), "delta"] < -0.1
    assert not noise.loc[("effect", "tau=1", ""), "significant"]
    assert noise.loc[("interaction", "tau=1", "tau=3"), "significant"]
    assert noise.loc[("interaction", "tau=1", "tau=3"), "delta"] > 0.1
    # an experiment with one fraction and one noise rate has nothing to compare
    assert compare_levels(pq[(pq["fraction"] == 1.0) & (pq["noise"] == 0.0)], measure="nDCG@10").empty


def test_other_tests_match_scipy():
    rng = np.random.default_rng(5)
    x, y = rng.normal(0.6, 0.1, 30), rng.normal(0.55, 0.1, 30)
    assert paired_test(x, y, test="wilcoxon")[1] == pytest.approx(stats.wilcoxon(x, y).pvalue)
    # permutation: with 20 000 sign flips the p-value is close to scipy's exact-ish permutation test
    ref = stats.permutation_test((x - y,), np.mean, permutation_type="samples", n_resamples=20000,
                                 random_state=0).pvalue
    assert paired_test(x, y, test="permutation", permutations=20000)[1] == pytest.approx(ref, abs=0.01)
    assert paired_test(x, x) == (0.0, 1.0)
    with pytest.raises(ValueError, match="equal length"):
        paired_test(x, y[:-1])


def test_uncorrected_p_values_agree_with_pt_experiment_baseline():
    """Our per-measure evaluation + paired t-test gives pt.Experiment(baseline=...)'s p-value."""
    import pyterrier as pt

    rng = np.random.default_rng(11)
    docs = [f"d{i}" for i in range(30)]
    qrels = pd.DataFrame([(f"q{q}", d, int(rng.integers(1, 4))) for q in range(25)
                          for d in rng.choice(docs, 4, replace=False)], columns=["qid", "docno", "label"])
    topics = pd.DataFrame({"qid": [f"q{q}" for q in range(25)], "query": ["x"] * 25})

    def run(noise):
        rows = []
        for q in topics["qid"]:
            scores = rng.normal(0, 1, len(docs))
            rel = qrels[qrels["qid"] == q].set_index("docno")["label"]
            scores += np.array([rel.get(d, 0) * noise for d in docs])
            for d, s in zip(docs, scores, strict=True):
                rows.append((q, d, float(s)))
        res = pd.DataFrame(rows, columns=["qid", "docno", "score"])
        return pt.model.add_ranks(res)

    a, b = run(1.0), run(0.3)
    spec = parse_measures(graded=["nDCG@10"], binary=["RR"], rels=[2])
    for m in spec:
        exp = pt.Experiment([b, a], topics, qrels, [m.ir_measure([0, 1, 2, 3])], names=["b", "a"], baseline=0)
        p_pt = float(exp.iloc[1][[c for c in exp.columns if c.endswith("p-value")][0]])
        pa = evaluate(a, topics, qrels, [m], grades=[0, 1, 2, 3]).set_index("qid")["value"]
        pb = evaluate(b, topics, qrels, [m], grades=[0, 1, 2, 3]).set_index("qid")["value"]
        pa, pb = pa.sort_index(), pb.loc[pa.sort_index().index]
        assert paired_test(pa.to_numpy(), pb.to_numpy(), test="t")[1] == pytest.approx(p_pt, rel=1e-9)


def test_graded_and_binary_ndcg_hand_computed():
    qrels = pd.DataFrame({"qid": ["q1", "q1"], "docno": ["d1", "d2"], "label": [3, 1]})
    topics = pd.DataFrame({"qid": ["q1"], "query": ["x"]})
    run = pd.DataFrame({"qid": ["q1", "q1"], "docno": ["d2", "d1"], "score": [2.0, 1.0], "rank": [0, 1]})
    specs = parse_measures(graded=["nDCG@10"], binary=["nDCG@10", "RR"], rels=[1, 2])
    out = evaluate(run, topics, qrels, specs, grades=[0, 1, 2, 3]).set_index("measure")["value"]
    dcg = (2**1 - 1) / math.log2(2) + (2**3 - 1) / math.log2(3)
    idcg = (2**3 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    assert out["nDCG@10"] == pytest.approx(dcg / idcg)  # 0.7098: graded, gains 2^g - 1
    assert out["nDCG(rel=1)@10"] == pytest.approx(1.0)  # both relevant at rel 1: ideal order
    assert out["nDCG(rel=2)@10"] == pytest.approx(1 / math.log2(3))  # only d1 relevant, at rank 2
    assert out["RR"] == 1.0 and out["RR(rel=2)"] == 0.5


def test_cluster_bootstrap_respects_articles():
    rng = np.random.default_rng(0)
    # 12 articles whose queries share a strong article effect: query-level CIs are too narrow
    articles = np.repeat(np.arange(12), 30)
    values = np.repeat(rng.normal(0, 1, 12), 30) + rng.normal(0, 0.1, 360)
    lo_a, hi_a = cluster_bootstrap(values, articles, samples=2000)
    lo_q, hi_q = cluster_bootstrap(values, None, samples=2000)
    assert lo_a < values.mean() < hi_a and lo_q < values.mean() < hi_q
    assert (hi_a - lo_a) > 3 * (hi_q - lo_q)
    # the article interval matches the sd of the article means / sqrt(12) (normal approximation)
    se = values.reshape(12, 30).mean(axis=1).std(ddof=1) / math.sqrt(12)
    assert (hi_a - lo_a) == pytest.approx(2 * 1.96 * se, rel=0.25)


def test_pooled_difference_resamples_articles_shared_by_all_targets():
    pq = synthetic_perquery()
    got = pooled_difference(pq, treatment=Variant(2), control=Variant(1), measure="nDCG@10")
    # reference: seed-average by hand, pair per (target, query), one article draw for both targets
    test = pq[pq["split"] == "test"]
    means = test.groupby(["target", "variant", "qid"])["value"].mean()
    diff = (means.xs("tau=2", level="variant") - means.xs("tau=1", level="variant")).sort_index()
    articles = test.drop_duplicates(["target", "qid"]).set_index(["target", "qid"]).loc[diff.index, "article"]
    assert (got.n_targets, got.n_queries, got.n_clusters) == (2, 2 * N_Q, 4)
    # equal query counts: the pooled mean is the mean over targets of each target's mean difference
    assert got.estimate == pytest.approx(diff.groupby(level="target").mean().mean())
    assert (got.low, got.high) == pytest.approx(cluster_bootstrap(diff.to_numpy(), articles.to_numpy()), abs=1e-12)
    # true effects: en +0.08, th +0.11, so the pooled difference is about +0.095
    assert got.low < 0.095 < got.high and got.low > 0
    # a baseline by name, and a restriction to one target
    zs = pooled_difference(pq, treatment=Variant(1), control="mE5-zero-shot", measure="nDCG@10",
                           targets=["gradrel/xquad-r/en/test"])
    assert zs.n_targets == 1 and zs.high < 0  # τ=1 is 0.08 below zero-shot on en
    with pytest.raises(ValueError, match="share no test query"):
        pooled_difference(pq, treatment=Variant(None), control=Variant(1), measure="nDCG@10")


def test_pooled_difference_takes_one_training_level():
    pq = synthetic_perquery()
    ft = pq[pq["system"] == "fine-tuned"]
    # τ=2 at a tenth of the data is 0.5 lower, at noise 0.4 0.3 lower: pooling them in would move the estimate
    levels = pd.concat([pq, ft.assign(fraction=0.1, value=ft["value"] - 0.5), ft.assign(noise=0.4, value=ft["value"] - 0.3)])
    ref = pooled_difference(pq, treatment=Variant(2), control="mE5-zero-shot", measure="nDCG@10")
    got = pooled_difference(levels, treatment=Variant(2), control="mE5-zero-shot", measure="nDCG@10")
    assert got == ref  # the default is the reference level: largest fraction, lowest noise
    small = pooled_difference(levels, treatment=Variant(2), control="mE5-zero-shot", measure="nDCG@10", fraction=0.1)
    assert small.estimate == pytest.approx(ref.estimate - 0.5) and small.n_queries == ref.n_queries
    noisy = pooled_difference(levels, treatment=Variant(2), control=Variant(1), measure="nDCG@10", noise=0.4)
    assert noisy.estimate == pytest.approx(pooled_difference(pq, treatment=Variant(2), control=Variant(1),
                                                             measure="nDCG@10").estimate)
    # a (target, qid) twice after the selection (a second scenario on the same target) is refused
    twice = pd.concat([pq, pq.assign(scenario="transfer")])
    with pytest.raises(ValueError, match="more than once"):
        pooled_difference(twice, treatment=Variant(2), control="mE5-zero-shot", measure="nDCG@10")


def test_bootstrap_table_uses_articles_and_paired_differences():
    pq = synthetic_perquery()
    boot = bootstrap_table(pq, baselines=["BM25", "mE5-zero-shot"], significance=SignificanceSpec(bootstrap_samples=500))
    assert set(boot["unit"]) == {"article"} and set(boot["n_clusters"]) == {4}
    row = boot[(boot["label"] == "th") & (boot["variant"] == "tau=2") & (boot["versus"] == "mE5-zero-shot")].iloc[0]
    assert row["low"] <= row["estimate"] <= row["high"]
    assert row["estimate"] == pytest.approx(0.09, abs=0.04)


def test_calibration_picks_dev_best_and_reports_oracle():
    pq = synthetic_perquery()
    cal = calibrate(pq, measure="nDCG@10", variants=VARIANTS).set_index("label")
    for label in TARGETS:
        ft = pq[(pq["system"] == "fine-tuned") & (pq["label"] == label)]
        dev = ft[ft["split"] == "dev"].groupby("variant")["value"].mean()
        test = ft[ft["split"] == "test"].groupby("variant")["value"].mean()
        assert cal.loc[label, "chosen"] == dev.idxmax()
        assert cal.loc[label, "oracle"] == test.idxmax()
        assert cal.loc[label, "test_chosen"] == pytest.approx(test[dev.idxmax()])
        assert cal.loc[label, "regret"] == pytest.approx(test.max() - test[dev.idxmax()])
    assert cal.loc["th", "chosen"] == "tau=2"  # the planted best variant in Thai


def test_grouped_binary_measures_equal_separate_calls():
    """The non-nDCG measures share one pt.Experiment call; their values equal one call per measure."""
    rng = np.random.default_rng(2)
    qrels = pd.DataFrame([(f"q{q}", f"d{d}", int(rng.integers(1, 4))) for q in range(15)
                          for d in rng.choice(40, 6, replace=False)], columns=["qid", "docno", "label"])
    topics = pd.DataFrame({"qid": [f"q{q}" for q in range(15)], "query": ["x"] * 15})
    run = pd.DataFrame([(f"q{q}", f"d{d}", float(rng.normal())) for q in range(15) for d in range(40)],
                       columns=["qid", "docno", "score"])
    specs = parse_measures(graded=["nDCG@10"], binary=["nDCG@10", "R@20", "RR", "P@10", "AP"], rels=[1, 2, 3])
    together = evaluate(run, topics, qrels, specs, grades=[0, 1, 2, 3])
    assert set(together["measure"]) == {s.label for s in specs}
    for spec in specs:
        alone = evaluate(run, topics, qrels, [spec], grades=[0, 1, 2, 3]).set_index("qid")["value"].sort_index()
        grouped = together[together["measure"] == spec.label].set_index("qid")["value"].sort_index()
        pd.testing.assert_series_equal(alone, grouped, check_names=False)


def test_ulp_differences_are_ties_for_counts_and_rank_tests():
    # a seed mean of equal scores is an ulp off the score: (0.1 + 0.1 + 0.1) / 3 != 0.1
    tie = (0.1 + 0.1 + 0.1) / 3
    assert tie != 0.1
    rng = np.random.default_rng(5)
    y = rng.uniform(0.2, 0.8, 30)
    x = y + rng.normal(0, 0.05, 30)
    x[:10], y[:10] = tie, 0.1  # 10 ties, each 1 ulp above
    a, b = pd.Series(x, index=[f"q{i}" for i in range(30)]), pd.Series(y, index=[f"q{i}" for i in range(30)])
    d = x[10:] - y[10:]
    for test in ("t", "wilcoxon", "permutation"):
        row = paired_row(a, b, SignificanceSpec(test=test, permutations=2000))
        assert row["wins"] == int((d > 0).sum()) and row["losses"] == int((d < 0).sum())
        assert row["wins"] + row["losses"] == 20
    # Wilcoxon drops the ties instead of ranking them: scipy with the ties as exact zeros, which (zeros present)
    # is its normal approximation over the 20 real differences
    _, p = paired_test(x, y, test="wilcoxon")
    assert p == stats.wilcoxon(np.r_[np.zeros(10), d]).pvalue
    assert p == pytest.approx(stats.wilcoxon(d, method="approx").pvalue, rel=1e-12)
    assert p != pytest.approx(stats.wilcoxon(x - y).pvalue, rel=1e-6)  # the 10 ulps ranked as differences
    # the sign-flip test treats them as 0: the same p as with the ties written as exact zeros
    exact = x.copy()
    exact[:10] = y[:10]
    assert paired_test(x, y, test="permutation", permutations=2000) == paired_test(
        exact, y, test="permutation", permutations=2000)
    # the t-test runs on the scores as given (ttest_rel), bit for bit
    assert paired_test(x, y, test="t")[1] == stats.ttest_rel(x, y).pvalue
    # all differences ulp-sized: no test at all
    assert paired_test(np.full(5, tie), np.full(5, 0.1), test="wilcoxon") == (0.0, 1.0)


def test_a_query_without_article_is_its_own_cluster():
    pq = synthetic_perquery()
    missing = pq["qid"] == "th-test-q7"
    pq.loc[missing, "article"] = ""
    sig = SignificanceSpec(bootstrap_samples=500)
    boot = bootstrap_table(pq, baselines=["mE5-zero-shot"], significance=sig)
    th, en = boot[boot["label"] == "th"], boot[boot["label"] == "en"]
    assert set(th["unit"]) == {"article+query"} and set(th["n_clusters"]) == {5}  # 4 articles + the one query
    assert set(en["unit"]) == {"article"} and set(en["n_clusters"]) == {4}
    # the interval resamples the 4 articles and the lone query, computed here by hand
    test = pq[(pq["split"] == "test") & (pq["label"] == "th")]
    x = test[test["variant"] == "tau=2"].groupby("qid")["value"].mean()
    z = test[test["system"] == "mE5-zero-shot"].set_index("qid")["value"].loc[x.index]
    arts = test.drop_duplicates("qid").set_index("qid")["article"].loc[x.index]
    clusters = np.where(arts == "", x.index, arts)
    row = th[(th["variant"] == "tau=2") & (th["versus"] == "mE5-zero-shot")].iloc[0]
    assert (row["low"], row["high"]) == pytest.approx(cluster_bootstrap((x - z).to_numpy(), clusters, samples=500),
                                                      abs=1e-12)
    # no article at all, or the query unit asked for: single queries
    pq["article"] = ""
    assert set(bootstrap_table(pq, baselines=[], significance=sig)["unit"]) == {"query"}
    assert set(bootstrap_table(synthetic_perquery(), baselines=[],
                               significance=SignificanceSpec(bootstrap_unit="query"))["n_clusters"]) == {N_Q}
