"""Paired significance tests against each baseline, multiple-testing correction, article-level bootstrap.

Everything here works on the experiment's **per-query** long frame (one row per scenario, target,
system, variant, seed, fraction, noise, query and measure; see :mod:`._store`).

Procedure (what the report states):

1. **Seeds are averaged first.** For each fine-tuned variant the per-query score is the mean over its
   training seeds; the test then pairs these seed-averaged scores with the baseline's per-query scores
   (the baselines have no seed). A difference that only one seed shows is thus diluted, not tested on
   its own.
2. **Paired test per query** (configurable): two-sided paired t-test (``scipy.stats.ttest_rel``, the
   default and PyTerrier's), Wilcoxon signed-rank (``scipy.stats.wilcoxon``) or a paired sign-flip
   permutation test on the mean difference.
3. **Correction** over the experiment's family: for each (measure, baseline), every test split target
   of every scenario × variant (τ and graded loss) × fraction × noise rate forms one family. The default
   is **Holm-Bonferroni**: it controls the family-wise error rate under any dependence between the
   tests (our tests share queries, so they are strongly dependent) and is uniformly more powerful than
   Bonferroni. The paper's claims are per language ("τ = 2 beats zero-shot in Thai"), so we want each
   claimed difference to hold, not merely a bounded share of false ones; Benjamini-Hochberg (``bh``,
   FDR control, valid under positive dependence) is available for exploratory sweeps.
4. **Cluster bootstrap over articles**: XQuAD-R's test questions come from 12 articles and questions
   of one article are correlated, so confidence intervals resample whole articles (queries carry
   ``article``); a query without an article is a cluster of its own, and datasets without articles
   resample queries (the table says which).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np
import pandas as pd

from pyterrier_gradrel.experiments._config import SignificanceSpec

if TYPE_CHECKING:
    from pyterrier_gradrel.experiments._plan import Variant

KEY = ["scenario", "label", "target", "split", "system", "variant", "fraction", "noise", "measure"]
#: typed columns that follow from ``KEY`` (τ and loss from the variant, rel and base from the measure), kept by
#: :func:`seed_average`
TYPED = ["tau", "loss", "rel", "base"]
K = TypeVar("K")


def seed_average(perquery: pd.DataFrame) -> pd.DataFrame:
    """Average per-query scores over seeds.

    Args:
        perquery: the per-query long frame (columns ``KEY`` + ``seed``, ``qid``, ``article``, ``value``).

    Returns:
        One row per ``KEY`` + ``qid`` with ``article``, ``value`` (seed mean), ``n_seeds`` and the ``TYPED``
        columns the frame has.
    """
    cols = KEY + ["qid"]
    typed = [c for c in TYPED if c in perquery.columns]
    if perquery.empty:
        return pd.DataFrame(columns=cols + typed + ["article", "value", "n_seeds"])
    grouped = perquery.groupby(cols, sort=False, dropna=False)
    out = grouped.agg(value=("value", "mean"), n_seeds=("seed", "nunique"), article=("article", "first"),
                      **{c: (c, "first") for c in typed})
    return out.reset_index()


#: paired differences of at most this size are ties (seed means of equal scores differ by an ulp or so:
#: ``(0.1 + 0.1 + 0.1) / 3 != 0.1``)
TIE = 1e-12


def clean_differences(diff: np.ndarray) -> np.ndarray:
    """``diff`` (as floats) with every value of absolute size at most :data:`TIE` set to exactly 0."""
    diff = np.asarray(diff, dtype=float)
    return np.where(np.abs(diff) <= TIE, 0.0, diff)


def paired_test(x: np.ndarray, y: np.ndarray, *, test: str = "t", permutations: int = 10000,
                random_seed: int = 0) -> tuple[float, float]:
    """Two-sided paired test of ``x`` against ``y`` (same queries, same order).

    The rank and sign tests run on the differences ``x − y`` after :func:`clean_differences` (a difference of at
    most :data:`TIE` is exactly 0): a seed mean of equal scores can be one ulp off the score itself, and such a
    difference is a tie, which Wilcoxon drops (``zero_method="wilcox"``) instead of ranking it, and which the
    permutation test does not flip. The t-test (``ttest_rel(x, y)``) is continuous in the differences, so an
    ulp moves its p-value by about 1e-16: it runs on the scores as given, which keeps p-values already reported
    bit for bit. When every cleaned difference is (close to) 0 the result is ``(0.0, 1.0)``.

    Args:
        x: per-query scores of the system.
        y: per-query scores of the baseline.
        test: ``t`` (``scipy.stats.ttest_rel``), ``wilcoxon`` (``scipy.stats.wilcoxon``) or ``permutation``
            (sign-flip test of the mean difference, ``(hits + 1) / (permutations + 1)``).
        permutations: resamples of the permutation test.
        random_seed: seeds the permutation test.

    Returns:
        ``(statistic, p_value)``; identical inputs (differences all within ``np.allclose`` of 0) give
        ``(0.0, 1.0)``.

    Raises:
        ValueError: different lengths, fewer than 2 queries, or an unknown test.
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired test needs two 1-d arrays of equal length, got {x.shape} and {y.shape}")
    if len(x) < 2:
        raise ValueError(f"paired test needs at least 2 queries, got {len(x)}")
    diff = clean_differences(x - y)
    if np.allclose(diff, 0.0):
        return 0.0, 1.0
    if test == "t":
        res = stats.ttest_rel(x, y)
        return float(res.statistic), float(res.pvalue)
    if test == "wilcoxon":
        res = stats.wilcoxon(diff)
        return float(res.statistic), float(res.pvalue)
    if test == "permutation":
        rng = np.random.default_rng(random_seed)
        observed = abs(diff.mean())
        signs = rng.choice(np.array([-1.0, 1.0]), size=(permutations, len(diff)))
        perm = np.abs((signs * diff).mean(axis=1))
        hits = int((perm >= observed - 1e-12).sum())
        return float(diff.mean()), (hits + 1) / (permutations + 1)
    raise ValueError(f"unknown test {test!r}: expected one of ['t', 'wilcoxon', 'permutation']")


#: our correction names -> ``statsmodels.stats.multitest.multipletests`` methods
_MULTIPLETESTS = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh"}


def correct(p_values: Sequence[float], *, method: str = "holm") -> np.ndarray:
    """Adjust p-values for multiple testing (``statsmodels.stats.multitest.multipletests``).

    Args:
        p_values: the family's raw p-values.
        method: ``holm`` (Holm-Bonferroni step-down), ``bonferroni``, ``bh`` (Benjamini-Hochberg step-up)
            or ``none``.

    Returns:
        Adjusted p-values (same order), capped at 1; compare them with alpha. A NaN p-value counts in the
        family size and stays NaN (under ``bh`` it makes the whole family NaN).
    """
    if method not in (*_MULTIPLETESTS, "none"):
        raise ValueError(f"unknown correction {method!r}: expected one of ['holm', 'bonferroni', 'bh', 'none']")
    p = np.asarray(p_values, dtype=float)
    if len(p) == 0 or method == "none":
        return p.copy()
    from statsmodels.stats.multitest import multipletests

    return multipletests(p, method=_MULTIPLETESTS[method])[1]


def paired_row(a: pd.Series, b: pd.Series, sig: SignificanceSpec, *,
               means: tuple[str, str] = ("mean", "baseline_mean")) -> dict[str, object] | None:
    """Align two per-query score series (index ``qid``) on their common queries and test them (:func:`paired_test`
    with ``sig``'s test, permutations and seed).

    Returns:
        The fields of a test row: the two means (named ``means``), ``delta`` (mean of ``a`` − ``b``), ``n_queries``,
        ``wins`` and ``losses`` (queries whose difference is above / below 0 after :func:`clean_differences`, so an
        ulp-sized difference is a tie), ``statistic`` and ``p_value``; ``None`` when fewer than 2 queries are
        shared.
    """
    qids = a.index.intersection(b.index)
    if len(qids) < 2:
        return None
    x, y = a.loc[qids].to_numpy(dtype=float), b.loc[qids].to_numpy(dtype=float)
    stat, p = paired_test(x, y, test=sig.test, permutations=sig.permutations, random_seed=sig.random_seed)
    diff = clean_differences(x - y)
    return {means[0]: float(x.mean()), means[1]: float(y.mean()), "delta": float((x - y).mean()),
            "n_queries": len(x), "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()), "statistic": stat,
            "p_value": p}


def effects_and_interactions(where: Mapping[str, object], pairs: Iterable[tuple[str, pd.Series, pd.Series]],
                             sig: SignificanceSpec, *, means: tuple[str, str] = ("mean", "baseline_mean"),
                             order: Callable[[str], object] | None = None) -> list[dict]:
    """The test rows (:func:`paired_row`, each starting with ``where``) of one group of variants: an ``effect`` per
    ``(variant, a, b)`` of ``pairs`` (``a`` against ``b``), then an ``interaction`` per two tested variants sorted by
    ``order`` (the per-query effect of ``variant`` against that of ``other``)."""
    effects: dict[str, pd.Series] = {}
    rows = []
    for variant, a, b in pairs:
        if (row := paired_row(a, b, sig, means=means)) is not None:
            rows.append(dict(where, kind="effect", variant=variant, other="", **row))
            qids = a.index.intersection(b.index)
            effects[variant] = a.loc[qids] - b.loc[qids]
    for v, w in itertools.combinations(sorted(effects, key=order), 2):
        if (row := paired_row(effects[v], effects[w], sig, means=means)) is not None:
            rows.append(dict(where, kind="interaction", variant=v, other=w, **row))
    return rows


def correct_families(rows: Sequence[Mapping[str, object]], columns: Sequence[str], by: list[str],
                     sig: SignificanceSpec, *, skip_untested: bool = False) -> pd.DataFrame:
    """The tests ``rows`` as a frame of ``columns``, with ``p_adjusted``, ``family_size`` and ``significant``:
    ``p_value`` corrected (:func:`correct` with ``sig``'s correction, compared with its ``alpha``) within each group
    of ``by`` (``[]``: every row is one family); with ``skip_untested`` the rows without a p-value (no test ran) are
    in no family and keep NaN. Empty (``columns`` only) when there are no rows."""
    if not rows:
        return pd.DataFrame(columns=list(columns))
    out = pd.DataFrame(rows)
    out["p_adjusted"], out["family_size"] = np.nan, 0
    tested = out[out["p_value"].notna()] if skip_untested else out
    for idx in tested.groupby(by, sort=False).groups.values() if by else [tested.index]:
        out.loc[idx, "p_adjusted"] = correct(out.loc[idx, "p_value"].to_numpy(), method=sig.correction)
        out.loc[idx, "family_size"] = len(idx)
    out["significant"] = out["p_adjusted"] < sig.alpha
    return out[list(columns)]


def compare_to_baselines(perquery: pd.DataFrame, *, baselines: Sequence[str],
                         significance: SignificanceSpec | None = None) -> pd.DataFrame:
    """Test every fine-tuned condition (seed-averaged) against every baseline on the test split.

    Args:
        perquery: the per-query long frame.
        baselines: baseline system names present in ``perquery``.
        significance: the paired test (:func:`paired_test`), the correction (:func:`correct`; the family is every
            test of one (measure, baseline)) and ``alpha`` (default: :class:`SignificanceSpec`'s).

    Returns:
        One row per (scenario, label, target, variant, fraction, noise, measure, baseline) with ``n_queries``,
        ``n_seeds``, ``mean``, ``baseline_mean``, ``delta``, ``wins``, ``losses``, ``statistic``, ``p_value``,
        ``p_adjusted``, ``significant`` and ``family_size``.
    """
    sig = significance or SignificanceSpec()
    columns = ["scenario", "label", "target", "variant", "fraction", "noise", "measure", "baseline", "n_queries",
               "n_seeds", "mean", "baseline_mean", "delta", "wins", "losses", "statistic", "p_value",
               "p_adjusted", "significant", "family_size"]
    avg = seed_average(perquery[perquery["split"] == "test"])
    rows = []
    ft = avg[avg["system"] == "fine-tuned"]
    base_scores = {key: grp.set_index("qid")["value"] for key, grp
                   in avg[avg["system"].isin(baselines)].groupby(["system", "scenario", "target", "measure"])}
    for key, grp in ft.groupby(["scenario", "label", "target", "variant", "fraction", "noise", "measure"], sort=True):
        scenario, label, target, variant, fraction, noise, measure = key
        sys_scores = grp.set_index("qid")["value"]
        for baseline in baselines:
            b = base_scores.get((baseline, scenario, target, measure))
            if b is not None and (row := paired_row(sys_scores, b, sig)) is not None:
                rows.append(dict(scenario=scenario, label=label, target=target, variant=variant, fraction=fraction,
                                 noise=noise, measure=measure, baseline=baseline, n_seeds=int(grp["n_seeds"].max()),
                                 **row))
    return correct_families(rows, columns, ["measure", "baseline"], sig)


def winner_pairs(scores: Mapping[K, pd.Series], best: K, sig: SignificanceSpec, *,
                 means: tuple[str, str] = ("best_mean", "other_mean")) -> list[tuple[K, K, dict[str, object]]]:
    """Every pair of the variants ``scores`` (per-query series, index ``qid``) tested with :func:`paired_row`.

    The pairs are ``itertools.combinations`` of the sorted keys; a pair that holds ``best`` is oriented with
    ``best`` first (its ``delta`` and ``statistic`` are ``best`` − the other), any other pair in sorted order.
    All of them belong to the correction family: choosing the winner by its mean and testing it only against the
    others does not control the family-wise error (the winner is the variant that drew the luckiest queries).

    Returns:
        ``(first, second, row)`` per pair with at least 2 shared queries.
    """
    out = []
    for a, b in itertools.combinations(sorted(scores), 2):
        first, second = (b, a) if b == best else (a, b)
        if (row := paired_row(scores[first], scores[second], sig, means=means)) is not None:
            out.append((first, second, row))
    return out


def compare_thresholds(perquery: pd.DataFrame, *, measure: str,
                       significance: SignificanceSpec | None = None) -> pd.DataFrame:
    """Which fine-tuned variant (τ, or the graded loss) wins on each target, and is it separable from the rest?

    For every test (scenario, label, target, fraction, noise) the variant with the highest seed-averaged mean of
    ``measure`` is the winner. Every pair of variants of the target is compared with a paired test on per-query
    scores averaged over seeds (:func:`winner_pairs`), and the correction runs over every pair of the experiment
    (all targets × fractions × noise rates × k(k−1)/2 pairs of k variants), which controls the family-wise error
    of the claims made from the winner's rows. The rows returned are the winner's pairs; the winner is
    significantly above every other variant only when all its rows are ``significant``.

    Args:
        perquery: the per-query long frame.
        measure: the measure label (e.g. the primary ``nDCG@10``).
        significance: the test, correction and ``alpha``, as for :func:`compare_to_baselines`.

    Returns:
        One row per (target, fraction, noise, other variant) with ``best``, ``other``, ``best_mean``,
        ``other_mean``, ``delta`` (``best`` − ``other``), ``n_queries``, ``n_seeds``, ``statistic``, ``p_value``,
        ``p_adjusted``, ``significant`` and ``family_size`` (every pair of the experiment, the winner's or not);
        empty when no target has two variants.
    """
    sig = significance or SignificanceSpec()
    columns = ["scenario", "label", "target", "fraction", "noise", "measure", "best", "other", "best_mean",
               "other_mean", "delta", "n_queries", "n_seeds", "statistic", "p_value", "p_adjusted", "significant",
               "family_size"]
    sel = perquery[(perquery["split"] == "test") & (perquery["system"] == "fine-tuned")
                   & (perquery["measure"] == measure)]
    avg = seed_average(sel)
    rows = []
    for key, grp in avg.groupby(["scenario", "label", "target", "fraction", "noise"], sort=True):
        scores = {v: g.set_index("qid")["value"] for v, g in grp.groupby("variant", sort=True)}
        if len(scores) < 2:
            continue
        means = {v: float(x.mean()) for v, x in scores.items()}
        best = max(sorted(means), key=means.__getitem__)
        rows += [dict(zip(columns[:5], key, strict=True), measure=measure, best=first, other=second,
                      n_seeds=int(grp["n_seeds"].max()), winners=first == best, **row)
                 for first, second, row in winner_pairs(scores, best, sig)]
    out = correct_families(rows, [*columns, "winners"], [], sig)
    return out[out["winners"].astype(bool)][columns].reset_index(drop=True) if len(out) else out[columns]


def compare_levels(perquery: pd.DataFrame, *, measure: str,
                   significance: SignificanceSpec | None = None) -> pd.DataFrame:
    """How each variant responds to less training data or to grade noise, and whether the variants differ.

    On the test split, the reference level is the largest training fraction at the lowest noise rate. Each other
    fraction (at the lowest noise rate) and each other noise rate (at the largest fraction) is a *level*. Two
    kinds of test, both paired per query on scores averaged over seeds:

    * ``effect``: one variant at the level against the same variant at the reference (``delta`` = level −
      reference; negative = the variant loses effectiveness with less data / more noise);
    * ``interaction``: the effect of variant ``variant`` against the effect of variant ``other`` (``delta`` =
      effect of ``variant`` − effect of ``other``; positive = ``variant`` is hurt less). This is the test of
      the paper's claim that a good τ needs less data and resists noise.

    Each kind is one correction family over the whole experiment (all targets × levels × variants, or
    variant pairs).

    Args:
        perquery: the per-query long frame.
        measure: the measure label (e.g. the primary ``nDCG@10``).
        significance: the test, correction and ``alpha``, as for :func:`compare_to_baselines`.

    Returns:
        One row per test with ``scenario``, ``label``, ``target``, ``axis`` (``fraction`` or ``noise``),
        ``level``, ``reference``, ``measure``, ``kind``, ``variant``, ``other`` (empty for effects), ``delta``,
        ``n_queries``, ``statistic``, ``p_value``, ``p_adjusted``, ``significant`` and ``family_size``; empty
        when the experiment varies neither fractions nor noise.
    """
    sig = significance or SignificanceSpec()
    columns = ["scenario", "label", "target", "axis", "level", "reference", "measure", "kind", "variant", "other",
               "delta", "n_queries", "statistic", "p_value", "p_adjusted", "significant", "family_size"]
    sel = perquery[(perquery["split"] == "test") & (perquery["system"] == "fine-tuned")
                   & (perquery["measure"] == measure)]
    f_ref, n_ref = float(sel["fraction"].max()), float(sel["noise"].min())
    levels = [("fraction", float(f), (float(f), n_ref), f_ref) for f in sorted(sel["fraction"].unique()) if f != f_ref]
    levels += [("noise", float(n), (f_ref, float(n)), n_ref) for n in sorted(sel["noise"].unique()) if n != n_ref]
    avg = seed_average(sel)
    scores = {key: g.set_index("qid")["value"]
              for key, g in avg.groupby(["scenario", "label", "target", "variant", "fraction", "noise"], sort=True)}
    rows = []
    for (scenario, label, target), g in avg.groupby(["scenario", "label", "target"], sort=True):
        for axis, level, (f, n), reference in levels:
            where = dict(scenario=scenario, label=label, target=target, axis=axis, level=level, reference=reference,
                         measure=measure)
            pairs = [(v, scores.get((scenario, label, target, v, f, n)),
                      scores.get((scenario, label, target, v, f_ref, n_ref))) for v in sorted(g["variant"].unique())]
            rows += effects_and_interactions(where, [(v, a, b) for v, a, b in pairs if a is not None and b is not None],
                                             sig)
    return correct_families(rows, columns, ["kind"], sig)


def cluster_bootstrap(values: np.ndarray, clusters: np.ndarray | None, *, samples: int = 1000,
                      confidence: float = 0.95, random_seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling whole clusters with replacement.

    Args:
        values: per-query values (scores, or paired differences).
        clusters: the cluster (article) of each query; None resamples single queries.
        samples: bootstrap resamples.
        confidence: coverage, e.g. 0.95.
        random_seed: seeds the resampling.

    Returns:
        ``(low, high)``.
    """
    values = np.asarray(values, dtype=float)
    if clusters is None:
        clusters = np.arange(len(values))
    codes, _ = pd.factorize(pd.Series(clusters).astype(str))
    k = codes.max() + 1
    sums = np.bincount(codes, weights=values, minlength=k)
    counts = np.bincount(codes, minlength=k).astype(float)
    rng = np.random.default_rng(random_seed)
    idx = rng.integers(0, k, size=(samples, k))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


class PooledDifference(NamedTuple):
    """A mean paired difference pooled over targets, with its article-clustered bootstrap interval."""

    estimate: float
    low: float
    high: float
    n_targets: int
    n_queries: int
    n_clusters: int


def pooled_difference(perquery: pd.DataFrame, *, treatment: Variant | str, control: Variant | str, measure: str,
                      targets: Sequence[str] | None = None, fraction: float | None = None, noise: float | None = None,
                      significance: SignificanceSpec | None = None) -> PooledDifference:
    """Mean test difference ``treatment − control`` over the targets both have, with an article-clustered interval.

    For parallel collections (XQuAD-R's languages translate the same questions of the same articles) the targets
    are not independent samples: the interval resamples whole articles, one draw shared by every target, so a
    question counts once however many languages ask it. Seeds are averaged first (:func:`seed_average`). With
    equal query counts per target the estimate is the mean over targets of each target's mean difference.

    Fine-tuned rows are taken at one level only: ``fraction`` and ``noise``, by default the reference level (the
    largest fraction and the lowest noise rate of the fine-tuned test rows of ``measure``); baselines are not
    trained and keep all their rows.

    Args:
        perquery: the per-query long frame.
        treatment: a fine-tuned :class:`~pyterrier_gradrel.experiments.Variant` (``Variant(tau=3)``; ``Variant(None)``
            the graded loss) or a baseline system's name (``"mE5-zero-shot"``).
        control: the same, for the other side.
        measure: the measure's canonical name, e.g. ``"nDCG@10"``.
        targets: restrict to these test targets (default: all targets both sides have).
        fraction: the training fraction of the fine-tuned rows (default: the largest).
        noise: the grade-noise rate of the fine-tuned rows (default: the lowest).
        significance: resamples, coverage and seed (default: :class:`SignificanceSpec`'s).

    Returns:
        :class:`PooledDifference`.

    Raises:
        ValueError: when the two sides share no test query, a query lacks its article, or a side holds a
            (target, query) twice after the selection (e.g. two scenarios test the same target: select one first).
    """
    sig = significance or SignificanceSpec()
    test = perquery[(perquery["split"] == "test") & (perquery["measure"] == measure)]
    trained = test["system"] == "fine-tuned"
    if trained.any():
        f = float(test.loc[trained, "fraction"].max()) if fraction is None else float(fraction)
        n = float(test.loc[trained, "noise"].min()) if noise is None else float(noise)
        test = test[~trained | ((test["fraction"] == f) & (test["noise"] == n))]
    if targets is not None:
        test = test[test["target"].isin(list(targets))]
    avg = seed_average(test)

    def side(which: Variant | str) -> pd.DataFrame:
        if isinstance(which, str):
            chosen = (avg["system"] == which) & (avg["system"] != "fine-tuned")
        else:
            tau = avg["tau"].isna() if which.tau is None else (avg["tau"] == which.tau)
            chosen = (avg["system"] == "fine-tuned") & (avg["loss"] == which.loss) & tau
        rows = avg[chosen]
        if (dup := rows.duplicated(["target", "qid"])).any():
            first = rows[dup].iloc[0]
            raise ValueError(f"{which!r} has {int(dup.sum())} (target, qid) pairs more than once on {measure!r}, e.g. "
                             f"({first['target']!r}, {first['qid']!r}) in scenarios "
                             f"{sorted(set(rows['scenario']))}: expected one row per query; select one scenario")
        return rows.set_index(["target", "qid"])

    a, b = side(treatment), side(control)
    shared = a.index.intersection(b.index)
    if shared.empty:
        raise ValueError(f"{treatment!r} and {control!r} share no test query on {measure!r}; expected a fine-tuned "
                         "Variant or a baseline system name, both present on the same targets")
    articles = a.loc[shared, "article"]
    if articles.isna().any() or articles.astype(str).eq("").any():
        raise ValueError("pooled_difference resamples articles: every query needs its article")
    diff = (a.loc[shared, "value"] - b.loc[shared, "value"]).to_numpy()
    low, high = cluster_bootstrap(diff, articles.to_numpy(), samples=sig.bootstrap_samples,
                                  confidence=sig.confidence, random_seed=sig.random_seed)
    return PooledDifference(float(diff.mean()), low, high, int(shared.get_level_values(0).nunique()), len(shared),
                            int(articles.nunique()))


def bootstrap_table(perquery: pd.DataFrame, *, baselines: Sequence[str],
                    significance: SignificanceSpec | None = None) -> pd.DataFrame:
    """Bootstrap CIs of each system's test mean and of each fine-tuned variant's difference from each baseline.

    Scores are seed-averaged first (as for the tests). ``significance`` (default: :class:`SignificanceSpec`'s) gives
    the resamples, the coverage, the seed and the unit: ``bootstrap_unit='article'`` resamples articles, a query
    without an article being a cluster of its own (:func:`bootstrap_clusters`; column ``unit`` says ``article``,
    ``article+query`` when some queries had none, or ``query``; ``n_clusters`` counts the clusters resampled).

    Returns:
        Rows with ``scenario``, ``label``, ``target``, ``system``, ``variant``, ``fraction``, ``noise``,
        ``measure``, ``versus`` (``""`` for the mean itself, else the baseline), ``estimate``, ``low``,
        ``high``, ``unit``, ``n_clusters``.
    """
    sig = significance or SignificanceSpec()
    columns = ["scenario", "label", "target", "system", "variant", "fraction", "noise", "measure", "versus",
               "estimate", "low", "high", "unit", "n_clusters"]
    avg = seed_average(perquery[perquery["split"] == "test"])
    rows = []
    base = {k: g.set_index("qid") for k, g in avg[avg["system"].isin(baselines)]
            .groupby(["system", "scenario", "target", "measure"])}
    for key, grp in avg.groupby(["scenario", "label", "target", "system", "variant", "fraction", "noise", "measure"],
                                sort=True):
        scenario, label, target, system, variant, fraction, noise, measure = key
        g = grp.set_index("qid")
        comparisons: list[tuple[str, pd.Series]] = [("", g["value"])]
        if system == "fine-tuned":
            for b in baselines:
                bg = base.get((b, scenario, target, measure))
                if bg is not None:
                    qids = g.index.intersection(bg.index)
                    comparisons.append((b, g.loc[qids, "value"] - bg.loc[qids, "value"]))
        for versus, vals in comparisons:
            if len(vals) < 2:
                continue
            clusters, unit = bootstrap_clusters(g.loc[vals.index, "article"], sig.bootstrap_unit)
            low, high = cluster_bootstrap(vals.to_numpy(), clusters, samples=sig.bootstrap_samples,
                                          confidence=sig.confidence, random_seed=sig.random_seed)
            rows.append(dict(
                scenario=scenario, label=label, target=target, system=system, variant=variant, fraction=fraction,
                noise=noise, measure=measure, versus=versus, estimate=float(vals.mean()), low=low, high=high,
                unit=unit, n_clusters=int(pd.Series(clusters).nunique())))
    return pd.DataFrame(rows, columns=columns)


def bootstrap_clusters(articles: pd.Series, bootstrap_unit: str) -> tuple[np.ndarray, str]:
    """The resampling cluster of each query (``articles``: its article, index ``qid``) and the unit's name.

    With ``bootstrap_unit='article'`` a query's cluster is its article, and a query without one (NaN or ``""``)
    is a cluster of its own (keyed by its qid), so one query lacking an article leaves the others clustered;
    otherwise every query is its own cluster.

    Returns:
        ``(clusters, unit)``: ``unit`` is ``"article"`` when every query has an article, ``"query"`` when
        the queries are resampled one by one (no article at all, or ``bootstrap_unit='query'``), and
        ``"article+query"`` when articles are resampled and some queries without one are single clusters.
    """
    qids = articles.index.astype(str)
    missing = (articles.isna() | articles.astype(str).eq("")).to_numpy()
    if bootstrap_unit != "article" or missing.all():
        return np.array(["query:" + q for q in qids], dtype=object), "query"
    clusters = np.where(missing, "query:" + qids, "article:" + articles.astype(str).to_numpy()).astype(object)
    return clusters, "article+query" if missing.any() else "article"
