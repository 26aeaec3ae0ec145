"""Rank intervals and ties, checked against an independent computation on synthetic scores with planted differences.

The independent computation is a plain loop: draw articles with ``rng.choice``, rebuild each task's
resampled query frame with pandas, take means, group means, the overall score and ranks. It shares no code
with :func:`pyterrier_gradrel.benchmark._stats.rank_intervals` (which uses multinomial cluster weights).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyterrier_gradrel.benchmark._stats import rank_intervals, ranks_of

SYSTEMS = ["A", "B", "C", "D"]


def _synthetic(seed: int = 1, articles: int = 12, per_article: int = 25) -> tuple[dict, dict, dict]:
    """Three tasks (two share a scope, like XQuAD-R), four systems: A >> B >> C, and D equal to C up to noise."""
    rng = np.random.default_rng(seed)
    scores, groups, scopes = {}, {}, {}
    effects = rng.normal(0, 0.15, size=articles)  # article difficulty, shared by all systems
    for task, group, scope in (("t1", "g1", "x"), ("t2", "g1", "x"), ("t3", "g2", "t3")):
        rows = []
        for a in range(articles):
            for q in range(per_article):
                base = 0.5 + effects[a] + rng.normal(0, 0.1)
                rows.append({"qid": f"{task}-{a}-{q}", "article": f"art{a}" if scope == "x" else f"{task}-art{a}",
                             "A": base + 0.20, "B": base + 0.10, "C": base,
                             "D": base + rng.normal(0, 0.02)})
        scores[task] = pd.DataFrame(rows)
        groups[task], scopes[task] = group, scope
    return scores, groups, scopes


def _naive(scores, groups, scopes, systems, n_boot, seed):
    """Independent bootstrap: explicit resampling of articles, their queries concatenated, one replicate at a time."""
    rng = np.random.default_rng(seed)
    clusters = {s: sorted({a for t in scores if scopes[t] == s for a in scores[t]["article"]}) for s in dict.fromkeys(scopes.values())}
    rows_of = {t: {a: np.flatnonzero(f["article"].to_numpy() == a) for a in set(f["article"])} for t, f in scores.items()}
    values = {t: f[systems].to_numpy() for t, f in scores.items()}
    group_names = sorted(set(groups.values()))
    overall = np.zeros((n_boot, len(systems)))
    for b in range(n_boot):
        drawn = {s: rng.choice(c, size=len(c), replace=True) for s, c in clusters.items()}
        task_means = {}
        for t in scores:
            idx = np.concatenate([rows_of[t][a] for a in drawn[scopes[t]] if a in rows_of[t]])
            task_means[t] = values[t][idx].mean(axis=0)
        overall[b] = np.mean([np.mean([task_means[t] for t in scores if groups[t] == g], axis=0)
                              for g in group_names], axis=0)
    ranks = np.array([[1 + sum(row[j] > row[i] for j in range(len(systems))) for i in range(len(systems))]
                      for row in overall])
    return overall, ranks


def test_ranks_of_counts_strictly_better_systems():
    assert ranks_of(np.array([[0.3, 0.5, 0.5, 0.1]])).tolist() == [[3, 1, 1, 4]]


def test_planted_differences_are_separated_and_equal_systems_tied():
    scores, groups, scopes = _synthetic()
    res = rank_intervals(scores, SYSTEMS, groups, scopes, n_boot=1000, seed=0)
    frame = res.frame().set_index("system")
    assert frame.loc["A", ["rank_low", "rank_high"]].tolist() == [1, 1]
    assert frame.loc["B", ["rank_low", "rank_high"]].tolist() == [2, 2]
    # C and D differ only by noise: both intervals span ranks 3-4, so they are tied with each other only
    assert frame.loc["C", ["rank_low", "rank_high"]].tolist() == [3, 4]
    assert frame.loc["D", ["rank_low", "rank_high"]].tolist() == [3, 4]
    ties = res.tied_with()
    assert ties == {"A": [], "B": [], "C": ["D"], "D": ["C"]}
    # the observed overall score is the mean of group means (g1 = mean of t1, t2; g2 = t3)
    g1 = (scores["t1"]["A"].mean() + scores["t2"]["A"].mean()) / 2
    assert res.observed[0] == pytest.approx((g1 + scores["t3"]["A"].mean()) / 2)


def test_matches_an_independent_bootstrap():
    scores, groups, scopes = _synthetic(seed=3)
    ours = rank_intervals(scores, SYSTEMS, groups, scopes, n_boot=3000, seed=0)
    overall, ranks = _naive(scores, groups, scopes, SYSTEMS, n_boot=3000, seed=7)
    # same sampling distribution of the overall scores (different random streams: compare moments)
    np.testing.assert_allclose(ours.replicates.mean(axis=0), overall.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(ours.replicates.std(axis=0), overall.std(axis=0), rtol=0.2)
    # same rank probabilities and the same intervals
    for i in range(len(SYSTEMS)):
        for r in range(1, len(SYSTEMS) + 1):
            assert abs((ours.ranks[:, i] == r).mean() - (ranks[:, i] == r).mean()) < 0.05
    naive_low = np.quantile(ranks, 0.025, axis=0, method="inverted_cdf")
    naive_high = np.quantile(ranks, 0.975, axis=0, method="inverted_cdf")
    assert ours.low.tolist() == naive_low.tolist()
    assert ours.high.tolist() == naive_high.tolist()


def test_clustering_by_article_widens_intervals():
    """A difference carried by a few articles is significant if queries were independent, but not by article."""
    rng = np.random.default_rng(5)
    rows = []
    for a in range(8):
        gap = rng.normal(0.02, 0.08)  # B - A varies by article, mean ~0.02
        for q in range(60):
            base = rng.uniform(0.3, 0.7)
            rows.append({"qid": f"{a}-{q}", "article": f"art{a}", "A": base, "B": base + gap})
    frame = pd.DataFrame(rows)
    clustered = rank_intervals({"t": frame}, ["A", "B"], {"t": "g"}, n_boot=1000, seed=0)
    iid = rank_intervals({"t": frame.assign(article="")}, ["A", "B"], {"t": "g"}, n_boot=1000, seed=0)
    assert clustered.tied_with()["A"] == ["B"]
    assert iid.tied_with()["A"] == []
    # and the clustered standard error is close to the between-article one: sd(article gaps)/sqrt(8)
    gaps = frame.groupby("article").apply(lambda f: (f["B"] - f["A"]).mean(), include_groups=False)
    se = np.std(clustered.replicates[:, 1] - clustered.replicates[:, 0])
    assert se == pytest.approx(gaps.std(ddof=0) / np.sqrt(len(gaps)), rel=0.15)


def test_rejects_missing_scores_and_bad_level():
    scores, groups, scopes = _synthetic()
    with pytest.raises(ValueError, match="every system needs a score"):
        rank_intervals(scores, ["A", "Z"], groups, scopes, n_boot=10)
    with pytest.raises(ValueError, match="level must be in"):
        rank_intervals(scores, SYSTEMS, groups, scopes, level=1.5)
