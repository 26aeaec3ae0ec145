"""The README's Findings table states what the committed per-query scores give.

Each number of the table is recomputed here from ``experiments/results/<experiment>/perquery.csv.gz`` with the
analyses that write the reports (:mod:`pyterrier_gradrel.experiments._analyses`, ``._diagonal``,
``._significance``), under each experiment's own significance settings, and looked up in the README. No derived
file (``aggregate.csv``, ``thresholds.csv``, ``diagonal.csv``, ...) is read, so neither a regenerated result nor a
stale derived CSV can leave a sentence that the per-query scores do not support.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import pandas as pd
import pytest

from pyterrier_gradrel.experiments import _analyses
from pyterrier_gradrel.experiments._config import ExperimentConfig, load_config
from pyterrier_gradrel.experiments._diagonal import (
    compare_diagonal,
    diagonal_match_test,
    load_results_perquery,
)
from pyterrier_gradrel.experiments._significance import bootstrap_table

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"


@pytest.fixture(scope="module")
def findings() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Findings")
    return text[start:text.index("\n## ", start + 1)]


@functools.cache
def _perquery(experiment: str) -> pd.DataFrame:
    """The committed per-query frame of ``experiment`` (read once per session)."""
    return load_results_perquery(EXPERIMENTS / "results" / experiment)


@functools.cache
def _config(experiment: str) -> ExperimentConfig:
    return load_config(EXPERIMENTS / f"{experiment}.yaml")


def _base(experiment: str, base: str) -> pd.DataFrame:
    """The rows of one base measure (graded and binary at every rel: each correction family stays whole)."""
    pq = _perquery(experiment)
    return pq[pq["base"] == base]


@functools.cache
def _thresholds(experiment: str) -> pd.DataFrame:
    """Which variant wins per target on the primary measure (graded nDCG@10), winner vs each other, Holm."""
    cfg = _config(experiment)
    return _analyses.thresholds(_base(experiment, cfg.primary_measure), cfg)


def _significant(experiment: str) -> pd.DataFrame:
    return _thresholds(experiment)[lambda t: t.significant]


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def _minus(x: float) -> str:
    """``-0.005`` as the README writes it (U+2212)."""
    return f"{x:.3f}".replace("-", "−")


def test_significant_tau_winners_differ_by_task(findings):
    """Row 1: the significant winners per task, and the per-pair AfriQA ones with their margins."""
    mono = _significant("monolingual_budget")
    assert set(mono.best) == {"tau=3"}
    n_languages = _thresholds("monolingual_budget").label.nunique()
    assert len(mono) == mono.label.nunique() == 2  # one significant comparison per language
    assert f"monolingual: {mono.label.nunique()} of {n_languages} significant, both τ=3" in findings
    order = mono.sort_values("delta", ascending=False)  # as the README lists them
    assert f"τ=3 (monolingual {', '.join(order.label)};" in findings

    mix = _thresholds("multilingual_queryside")
    won = mix.groupby("label").apply(lambda g: bool((g.best == "tau=3").all() and g.significant.all()),
                                     include_groups=False)
    assert f"query-side mixture, {int(won.sum())}/{len(won)} targets)" in findings

    assert set(_significant("data_efficiency_budget").best) == {"tau=2"}
    assert "τ=2 (th → en)" in findings

    # AfriQA per pair: the best τ of kin and hau, and how far each is from significance over all pairs of variants
    assert _significant("crosslingual_afriqa_queryside_pair").empty
    pair = _thresholds("crosslingual_afriqa_queryside_pair").set_index(["label", "other"])
    kin, hau = pair.loc[("kin", "tau=3")], pair.loc[("hau", "tau=3")]
    assert (kin.best, hau.best) == ("tau=1", "graded")
    assert (f"none on AfriQA sampled per pair (kin: τ=1 over τ=3 {_signed(kin.delta)}, adj. p {kin.p_adjusted:.3f}; "
            f"hau: graded loss over τ=3 {_signed(hau.delta)}, adj. p {hau.p_adjusted:.3f})") in findings


def test_a_poorly_chosen_tau(findings):
    """Row 5: which τ loses, by how much, per task."""
    mix = _thresholds("multilingual_queryside")
    t3_t1 = mix[(mix.best == "tau=3") & (mix.other == "tau=1")].set_index("label").delta
    assert f"τ=1 below τ=3 by {t3_t1.min():.3f}–{t3_t1.max():.3f}" in findings
    mono = _significant("monolingual_budget").set_index("label")
    assert (mono.other == "tau=1").all()
    assert f"on zh/th ({_minus(-mono.delta['zh'])}/{_minus(-mono.delta['th'])})" in findings
    eff = _thresholds("data_efficiency_budget").set_index(["fraction", "best", "other"])
    at10 = eff.loc[(0.1, "tau=2", "tau=3")]
    assert at10.significant
    assert f"strict loses on th → en at 10 % data (τ=3 {_minus(-at10.delta)} vs τ=2) |" in findings
    assert _significant("crosslingual_afriqa_queryside_pair").empty  # no strict loss claimed there


def test_mixture_range(findings):
    """Row 2: τ=3 − τ=1 in the query-side mixture, smallest on en, largest on the multi pool."""
    mix = _thresholds("multilingual_queryside")
    assert mix.significant.all()
    t3_t1 = mix[(mix.best == "tau=3") & (mix.other == "tau=1")].set_index("label").delta
    assert (t3_t1.idxmin(), t3_t1.idxmax()) == ("en", "multi")
    assert f"τ=3 − τ=1 = {_signed(t3_t1['en'])} on en to {_signed(t3_t1['multi'])} on `multi`" in findings


def test_monolingual_calibration_means(findings):
    """Row 2: the mean over the 12 languages of each fixed τ and of the dev-calibrated choice."""
    cfg = _config("monolingual_budget")
    cal = _analyses.calibration(_base("monolingual_budget", cfg.primary_measure), cfg)
    assert len(cal) == 12
    fixed = [cal[f"test[tau={t}]"].mean() for t in cfg.thresholds]
    assert (f"best fixed τ {max(fixed):.3f}, worst {min(fixed):.3f}, dev-calibrated {cal.test_chosen.mean():.3f}"
            in findings)


def test_afriqa_gain_over_zero_shot(findings):
    """Row 2: every τ's gain over zero-shot on AfriQA's own-language queries (the shared-encoder budget runs and the
    query-side runs), and hau's best τ with its bootstrap interval."""
    gains = []
    for experiment in ("crosslingual_afriqa_budget", "crosslingual_afriqa_queryside"):
        cfg = _config(experiment)
        pq = _base(experiment, cfg.primary_measure)
        pq = pq[(pq.measure == cfg.primary_measure) & (pq.role == "main")]
        sig = _analyses.significance(pq, cfg)
        gains.append(sig[sig.baseline == "mE5-zero-shot"].delta)
    gains = pd.concat(gains)
    low, high = math.floor(gains.min() * 100) / 100, math.ceil(gains.max() * 100) / 100
    assert f"fine-tuning's gain on AfriQA ({low:+.2f} to {high:+.2f} over zero-shot" in findings

    cfg = _config("crosslingual_afriqa_budget")
    pq = _base("crosslingual_afriqa_budget", cfg.primary_measure)
    hau = pq[(pq.label == "hau") & (pq.measure == cfg.primary_measure)]
    boot = bootstrap_table(hau, baselines=["mE5-zero-shot"], significance=cfg.significance)
    best = boot[boot.versus == "mE5-zero-shot"].sort_values("estimate").iloc[-1]
    assert f"hau {_signed(best.estimate)} [{_signed(best.low)}, {_signed(best.high)}]" in findings
    assert _significant("crosslingual_afriqa_budget").empty  # "does not depend on τ"


def test_data_efficiency(findings):
    """Row 3: th → en at 25 % / 10 % of the training queries."""
    cfg = _config("data_efficiency_budget")
    lv = _analyses.levels(_base("data_efficiency_budget", cfg.primary_measure), cfg)
    effect = lv[lv.kind == "effect"].set_index(["level", "variant"])
    inter = lv[(lv.kind == "interaction") & (lv.variant == "tau=2") & (lv.other == "tau=3")].set_index("level")
    assert effect.loc[(0.25, "tau=3")].significant and effect.loc[(0.1, "tau=3")].significant
    assert not effect.loc[(0.25, "tau=2")].significant and not effect.loc[(0.1, "tau=2")].significant
    assert (f"τ=3 loses {_minus(effect.loc[(0.25, 'tau=3')].delta)} / {_minus(effect.loc[(0.1, 'tau=3')].delta)} "
            f"at 25 % / 10 % of the queries (significant)" in findings)
    assert f"τ=2 {_signed(effect.loc[(0.25, 'tau=2')].delta)} / {_signed(effect.loc[(0.1, 'tau=2')].delta)}" in findings
    assert f"interaction {_signed(inter.delta[0.25])} / {_signed(inter.delta[0.1])}" in findings
    assert inter.significant.all() and inter.p_adjusted.max() <= 1.5e-04


def test_noise(findings):
    """Row 4: grade noise at 20 % and 40 % changes no τ significantly."""
    cfg = _config("noise_budget")
    lv = _analyses.levels(_base("noise_budget", cfg.primary_measure), cfg)
    assert sorted(lv.level.unique()) == [0.2, 0.4] and not lv.significant.any()
    assert round(lv[lv.kind == "effect"].delta.abs().max(), 3) <= 0.003
    assert "no τ changed significantly (all within ±0.003" in findings
    assert f"smallest adj. p of an interaction {lv[lv.kind == 'interaction'].p_adjusted.min():.2f}" in findings


def test_train_at_the_evaluation_threshold_counts(findings):
    """Row 6: per evaluation threshold rel, in how many languages τ=rel has the best binary nDCG@10, in how many it
    beats both other τ significantly, and the clustered permutation test's p-values (per rel and pooled)."""
    cfg = _config("monolingual_budget")
    pq = _base("monolingual_budget", "nDCG@10")
    diag = _analyses.diagonal(pq, cfg)
    counts = diagonal_match_test(pq, permutations=cfg.significance.permutations,
                                 random_seed=cfg.significance.random_seed).set_index("rel")
    n_languages = diag.label.nunique()
    phrases = []
    for rel in (1, 2, 3):
        matches, n_targets = counts.loc[rel, ["matches", "n_targets"]]
        assert n_targets == n_languages  # no tied cell
        at = diag[diag.rel == rel]
        wins = at[at.is_best & (at.tau == rel)].label
        significant = [lang for lang in wins if at[(at.label == lang) & ~at.is_best].significant.all()]
        sig = f"significantly in {len(significant)}" if significant else "none significant"
        phrases.append(f"τ={rel} best in {matches}/{n_targets}" + (" languages" if rel == 3 else "") + f", {sig}")
    assert f"at rel ≥ 3 {phrases[2]}; at rel ≥ 1 {phrases[0]}; at rel ≥ 2 {phrases[1]}" in findings
    p = {rel: f"{counts.loc[rel, 'p_value']:.2g}" for rel in (1, 2, 3, "all")}
    assert f"gives p = {p[3]} at rel ≥ 3, {p[1]} at rel ≥ 1, {p[2]} at rel ≥ 2, {p['all']} pooled" in findings


@functools.cache
def _mixture_diagonal() -> pd.DataFrame:
    """The query-side mixture's diagonal on binary nDCG@10."""
    return _analyses.diagonal(_base("multilingual_queryside", "nDCG@10"), _config("multilingual_queryside"))


def _mixture_winners() -> pd.DataFrame:
    """The winning τ of every untied (target, rel) cell of the query-side mixture's diagonal."""
    diag = _mixture_diagonal()
    return diag[diag.is_best & ~diag.tied]


def test_mixture_does_not_train_at_the_evaluation_threshold(findings):
    """Row 6: in the query-side mixture τ=1 is never best at rel ≥ 1 nor τ=2 at rel ≥ 2; τ=3 is best at rel ≥ 3."""
    winners = _mixture_winners()
    n_targets = winners.label.nunique()
    matches = {rel: int((winners[winners.rel == rel].tau == rel).sum()) for rel in (1, 2, 3)}
    assert matches == {1: 0, 2: 0, 3: n_targets}
    assert "not in the query-side mixture" in findings


def test_mixture_every_rel_claim(findings):
    """Row 6's parenthetical: τ=3 best in every (target, rel) cell of the mixture but one, τ=2 on en at rel ≥ 1."""
    winners = _mixture_winners()
    others = winners[winners.tau != 3]
    assert [(r.label, int(r.rel), int(r.tau)) for r in others.itertuples()] == [("en", 1, 2)]
    diag = _mixture_diagonal()
    (tau3,) = diag[(diag.label == "en") & (diag.rel == 1) & (diag.tau == 3)].itertuples()
    assert not tau3.significant
    assert f"on en at rel ≥ 1 τ=2 by {-tau3.delta:+.4f}, not significant" in findings
    assert f"τ=3 best at every rel on {winners.label.nunique() - 1} of {winners.label.nunique()} targets" in findings


def test_resource_level_on_the_budget_run(findings):
    from pyterrier_gradrel.experiments._resource import resource_level_test

    cfg = _config("monolingual_budget")
    res = resource_level_test(_perquery("monolingual_budget"), measure=cfg.primary_measure, low=1, high=3)
    assert res.assignments == 27720 and res.verdict() == "not supported at this size"
    assert f"Spearman ρ = {res.rho:+.2f} between Joshi class and τ=1 − τ=3, exact permutation p = {res.p:.2f}" in findings


def test_resource_level_on_afriqa_query_side(findings):
    from pyterrier_gradrel.experiments._resource import resource_level_test

    cfg = _config("crosslingual_afriqa_queryside")
    res = resource_level_test(_perquery("crosslingual_afriqa_queryside"), measure=cfg.primary_measure, low=1, high=3)
    assert len(res.table) == 6 and set(res.table["joshi_class"]) <= {0, 1, 2} and res.verdict() == "contradicted"
    assert res.table["D"].abs().max() <= 0.004
    assert (f"on AfriQA query-side (6 languages, classes 0–2; exploratory) ρ = {res.rho:+.2f}, p = {res.p:.3f}, "
            "the opposite direction, on differences of at most 0.004") in findings


def _ci(r) -> str:
    """A pooled difference as the README writes it: ``+0.020 [+0.015, +0.025]`` (minus signs U+2212)."""
    return f"{r.estimate:+.3f} [{r.low:+.3f}, {r.high:+.3f}]".replace("-", "−")


def _pooled(experiment: str, treatment, control, measure: str, targets: list[str]) -> str:
    from pyterrier_gradrel.experiments import pooled_difference

    cfg = _config(experiment)
    r = pooled_difference(_perquery(experiment), treatment=treatment, control=control, measure=measure,
                          targets=targets, significance=cfg.significance)
    assert r.n_targets == len(targets) and r.n_clusters == 12
    return _ci(r)


def _protocol_row(findings: str, claim: str) -> str:
    table = findings[findings.index("| claim | verdict (protocol scale)"):findings.index("**Budget runs**")]
    (row,) = [line for line in table.splitlines() if line.startswith(f"| {claim} |")]
    return row


def _test_targets(experiment: str) -> pd.Series:
    pq = _perquery(experiment)
    return pq[pq["split"] == "test"]["target"].drop_duplicates()


def test_protocol_monolingual(findings):
    """The protocol table's monolingual numbers: winners, pooled differences, zero-shot, the diagonal, resource level."""
    from pyterrier_gradrel.experiments import Variant
    from pyterrier_gradrel.experiments._resource import resource_level_test

    name = "protocol_monolingual"
    cfg, pq = _config(name), _perquery(name)
    targets = sorted(_test_targets(name))
    ft = pq[(pq["system"] == "fine-tuned") & (pq["split"] == "test")]
    assert sorted(ft["seed"].unique()) == [0, 1, 2] and ft[["label", "variant", "seed"]].drop_duplicates().shape[0] == 144
    assert "(12 XQuAD-R languages, 144 models)" in findings
    varies = _protocol_row(findings, "The best τ varies across languages and tasks, with resource level")
    thr = _thresholds(name).groupby("label").agg(best=("best", "first"), beats_all=("significant", "all"))
    assert (thr["best"] == "tau=3").sum() == 12
    assert ("τ=3 has the best graded score in all 12 languages trained one by one (significantly above every other "
            f"variant in {thr['beats_all'].sum()})") in varies
    res = resource_level_test(pq, measure=cfg.primary_measure, low=1, high=3)
    assert res.verdict() == "not supported at this size"
    assert f"ρ = {res.rho:+.2f} between Joshi class and τ=1 − τ=3, exact p = {res.p:.3f}".replace("-", "−") in varies
    well = _protocol_row(findings, "A well-chosen τ improves effectiveness")
    graded = cfg.primary_measure
    assert f"τ=3 − τ=1: monolingual {_pooled(name, Variant(3), Variant(1), graded, targets)}," in well
    sig = _analyses.significance(_base(name, graded), cfg)
    zs = sig[(sig["measure"] == graded) & (sig["baseline"] == "mE5-zero-shot")]
    assert not (zs["significant"] & (zs["delta"] > 0)).any()
    assert (f"τ=3 − zero-shot: monolingual {_pooled(name, Variant(3), 'mE5-zero-shot', graded, targets)} "
            "(no language significant)") in well
    poor = _protocol_row(findings, "A poorly chosen τ degrades performance")
    below = zs[zs["significant"] & (zs["delta"] < 0)].groupby("variant")["label"].nunique()
    assert below["tau=1"] == 8
    assert (f"τ=1 − zero-shot: monolingual {_pooled(name, Variant(1), 'mE5-zero-shot', graded, targets)} "
            "(significantly below in 8 of 12 languages)") in poor
    ours = _protocol_row(findings, "Ours: train at the threshold you will be evaluated at")
    counts = diagonal_match_test(_base(name, "nDCG@10"), permutations=cfg.significance.permutations,
                                 random_seed=cfg.significance.random_seed).set_index("rel")
    assert counts.loc[[1, 2, 3], "matches"].tolist() == [12, 0, 12] and set(counts["n_targets"]) == {12, 36}
    assert (f"τ=1 at rel ≥ 1 in 12/12 languages (clustered permutation p = {counts.loc[1, 'p_value']:.2g}) and τ=3 "
            f"at rel ≥ 3 in 12/12 (p = {counts.loc[3, 'p_value']:.2g})") in ours
    diag = compare_diagonal(_base(name, "nDCG@10"), significance=cfg.significance)
    assert (diag[diag["is_best"] & (diag["rel"] == 2)]["tau"] == 3).sum() == 12 and "τ=3 at rel ≥ 2 in 12/12" in ours
    r1 = _pooled(name, Variant(3), Variant(1), "nDCG(rel=1)@10", targets)
    r3 = _pooled(name, Variant(3), Variant(1), "nDCG(rel=3)@10", targets)
    assert f"τ=3 − τ=1 is {r1} at rel ≥ 1 and {r3} at rel ≥ 3" in ours
    means = ft[ft["measure"] == graded].groupby(["label", "variant"])["value"].mean().unstack()
    assert (means.idxmin(axis=1) == "tau=1").sum() == 11 and "ranking τ=1 lowest in 11 languages" in ours


def test_protocol_mixture(findings):
    """The protocol table's mixture numbers, per kind of target: the 12 languages, the 11 X → en pairs, ``multi``."""
    from pyterrier_gradrel.experiments import Variant

    name = "protocol_mixture"
    cfg, pq = _config(name), _perquery(name)
    targets = _test_targets(name)
    languages = sorted(t for t in targets if len(t.split("/")[2]) == 2)
    pairs = sorted(t for t in targets if t.endswith("-en/test"))
    multi = ["gradrel/xquad-r/multi/test"]
    assert (len(languages), len(pairs), len(targets)) == (12, 11, 24)
    ft = pq[(pq["system"] == "fine-tuned") & (pq["split"] == "test")]
    seeds = sorted(ft["seed"].unique())
    assert ft[["variant", "seed"]].drop_duplicates().shape[0] == 4 * len(seeds)
    assert {2: "seeds 0 and 1 of 3 so far", 3: "3 seeds"}[len(seeds)] in findings
    graded = cfg.primary_measure
    thr = _thresholds(name).groupby("target").agg(best=("best", "first"), beats_all=("significant", "all"))
    varies = _protocol_row(findings, "The best τ varies across languages and tasks, with resource level")
    assert (f"on {(thr['best'] == 'tau=3').sum()}/24 mixture targets (significantly above every other variant on "
            f"{thr['beats_all'].sum()})") in varies
    well = _protocol_row(findings, "A well-chosen τ improves effectiveness")
    for control, label in ((Variant(1), "τ=3 − τ=1"), ("mE5-zero-shot", "τ=3 − zero-shot")):
        ci = [_pooled(name, Variant(3), control, graded, t) for t in (languages, pairs, multi)]
        assert (f"mixture {ci[0]} on the languages, {ci[1]} on the pairs, {ci[2]} on `multi`") in well, label
    sig = _analyses.significance(_base(name, graded), cfg)
    zs = sig[(sig["measure"] == graded) & (sig["baseline"] == "mE5-zero-shot")]
    above = zs[zs["significant"] & (zs["delta"] > 0) & (zs["variant"] == "tau=3")]["target"]
    above = ", ".join(sorted(t.split("/")[2].replace("-", " → ") for t in above))
    assert f"(τ=3 significantly above zero-shot on {len(above.split(', '))} of 24 targets: {above})" in well
    below = zs[zs["significant"] & (zs["delta"] < 0)].groupby("variant")["target"].nunique()
    poor = _protocol_row(findings, "A poorly chosen τ degrades performance")
    assert (f"mixture {_pooled(name, Variant(1), 'mE5-zero-shot', graded, languages)} on the languages "
            f"(significantly below on {below['tau=1']} of 24 targets)") in poor
    assert f"the graded loss is significantly below zero-shot on {below['graded']} of 24 mixture targets" in poor
    ours = _protocol_row(findings, "Ours: train at the threshold you will be evaluated at")
    counts = diagonal_match_test(_base(name, "nDCG@10"), permutations=cfg.significance.permutations,
                                 random_seed=cfg.significance.random_seed).set_index("rel")
    winners = _analyses.diagonal(_base(name, "nDCG@10"), cfg)
    winners = winners[winners["is_best"] & (winners["rel"] == 1)]["tau"].value_counts()
    assert (f"mixture: τ=3 at rel ≥ 3 on {counts.loc[3, 'matches']}/24 targets (p = {counts.loc[3, 'p_value']:.2g}), "
            f"τ=1 at rel ≥ 1 on {counts.loc[1, 'matches']}/24 (p = {counts.loc[1, 'p_value']:.2g}; τ=2 on "
            f"{winners.get(2, 0)}), τ=2 at rel ≥ 2 on {counts.loc[2, 'matches']}/24 "
            f"(p = {counts.loc[2, 'p_value']:.2g})") in ours


def _label(target: str) -> str:
    """``gradrel/afriqa/hau/test`` -> ``hau``."""
    return target.split("/")[2]


def _level_interactions(name: str) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame, pd.Series]:
    """Per main test target: the τ best at the reference level (all the training data, no noise); the interactions
    of that τ with each other τ at every other level (``favour`` > 0: the reference-best τ is hurt less); each
    variant's own change from the reference."""
    cfg, pq = _config(name), _perquery(name)
    main = sorted(pq[(pq["role"] == "main") & (pq["split"] == "test")]["target"].unique())
    thr = _thresholds(name)
    reference = thr[(thr["fraction"] == max(cfg.fractions)) & (thr["noise"] == min(cfg.noise_rates))]
    best = reference.groupby("target")["best"].first().loc[main]
    lv = _analyses.levels(_base(name, cfg.primary_measure), cfg)
    lv = lv[lv["target"].isin(main)]
    rows = [{"target": r.target, "level": r.level, "significant": r.significant,
             "favour": r.delta if r.variant == best[r.target] else -r.delta}
            for r in lv[lv["kind"] == "interaction"].itertuples() if best[r.target] in (r.variant, r.other)]
    clear = reference.groupby("target")["significant"].all().loc[main]
    return best, pd.DataFrame(rows), lv[lv["kind"] == "effect"], clear


def _check_level_row(name: str, row: str, best_at: str, level: float) -> None:
    """The verdict and numbers of a protocol row on the τ × level interaction (data efficiency, noise)."""
    best, inter, effects, clear = _level_interactions(name)
    favour = int((inter["significant"] & (inter["favour"] > 0)).sum())
    against = int((inter["significant"] & (inter["favour"] < 0)).sum())
    verdict = {(True, False): "supported", (True, True): "mixed"}.get((favour > 0, against > 0), "not supported")
    assert row.split(" | ")[1].startswith(f"**{verdict}**")
    winners = "; ".join(f"τ={tau[4:]} on {', '.join(_label(t) for t in g.index)}"
                        for tau, g in best.groupby(best, sort=True))
    against_on = ", ".join(dict.fromkeys(_label(t) for t in inter[inter["significant"] & (inter["favour"] < 0)]["target"]))
    assert (f"the τ best {best_at} ({winners}) is hurt significantly less than another τ in {favour} of "
            f"{len(inter)} comparisons and significantly more in {against}" + (f" (all on {against_on})" if against
                                                                                else "")) in row
    assert f"that τ is significantly above every other τ on {int(clear.sum())} of the {len(best)} targets" in row
    for tau in ("tau=1", "tau=3"):
        e = effects[(effects["level"] == level) & (effects["variant"] == tau)].set_index("target").loc[best.index]
        changes = ", ".join(f"{_label(t)} {_signed(d).replace('-', '−')}" for t, d in e["delta"].items())
        assert f"τ={tau[4:]} {changes}" in row, tau


def test_protocol_data_efficiency(findings):
    """The protocol table's data-efficiency row: the pre-registered τ × fraction interaction, per target."""
    name = "protocol_data_efficiency"
    pq = _perquery(name)
    ft = pq[(pq["system"] == "fine-tuned") & (pq["split"] == "test") & (pq["role"] == "main")]
    assert sorted(ft["seed"].unique()) == [0, 1, 2] and sorted(ft["fraction"].unique()) == [0.1, 0.25, 0.5, 1.0]
    assert ft[["label", "variant", "seed", "fraction"]].drop_duplicates().shape[0] == 144
    assert "[data efficiency](experiments/results/protocol_data_efficiency/report.md) (en, th, hau, kin; 144 models)" \
        in findings
    row = _protocol_row(findings, "It reduces the fine-tuning data needed")
    _check_level_row(name, row, "with all the data", 0.1)


def test_protocol_noise(findings):
    """The protocol table's noise row: the pre-registered τ × noise-rate interaction, per target."""
    name = "protocol_noise"
    pq = _perquery(name)
    ft = pq[(pq["system"] == "fine-tuned") & (pq["split"] == "test") & (pq["role"] == "main")]
    assert sorted(ft["seed"].unique()) == [0, 1, 2] and sorted(ft["noise"].unique()) == [0.0, 0.2, 0.4]
    assert ft[["label", "variant", "seed", "noise"]].drop_duplicates().shape[0] == 108
    assert "[noise](experiments/results/protocol_noise/report.md) (en, th, hau, kin; 108 models)" in findings
    row = _protocol_row(findings, "It mitigates annotation noise")
    _check_level_row(name, row, "without noise", 0.4)
    _, _, effects, _ = _level_interactions(name)
    mean_change = effects[effects["level"] == 0.4].groupby("variant")["delta"].mean()
    assert list(mean_change.sort_values(ascending=False).index) == ["tau=1", "tau=2", "tau=3"]
    assert "The lenient τ=1 is the most robust to this noise, the strict τ=3 the least" in row
