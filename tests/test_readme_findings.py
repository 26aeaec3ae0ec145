"""The README's Findings table states what the committed result files hold: each number is recomputed here from
``experiments/results/<experiment>/*.csv`` and looked up in the README, so a regenerated result cannot leave a
stale sentence."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"


@pytest.fixture(scope="module")
def findings() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Findings")
    return text[start:text.index("\n## ", start + 1)]


def _csv(experiment: str, name: str) -> pd.DataFrame:
    return pd.read_csv(RESULTS / experiment / f"{name}.csv")


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def test_train_at_the_evaluation_threshold_counts(findings):
    """Per evaluation threshold: in how many languages the matching τ has the best mean, and in how many it beats
    both other τ significantly (binary nDCG@10, monolingual sweep)."""
    diag = _csv("monolingual_budget", "diagonal")
    diag = diag[(diag.base == "nDCG@10") & (diag.fraction == 1.0) & (diag.noise == 0.0)]
    n_languages = diag.label.nunique()
    phrases = []
    for rel in (1, 2, 3):
        at = diag[diag.rel == rel]
        best = at[at.is_best & ~at.tied]
        wins = best[best.tau == rel].label
        significant = [lang for lang in wins if at[(at.label == lang) & ~at.is_best].significant.all()]
        sig = f"significantly in {len(significant)}" if significant else "none significant"
        phrases.append(f"τ={rel} best in {len(wins)}/{n_languages}" + (" languages" if rel == 3 else "") + f", {sig}")
    for phrase in phrases:
        assert phrase in findings, phrase


def test_significant_tau_winners_on_afriqa_per_pair(findings):
    thr = _csv("crosslingual_afriqa_queryside_pair", "thresholds")
    sig = thr[thr.significant & (thr.measure == "nDCG@10")].set_index("label")
    kin, hau = sig.loc["kin"], sig.loc["hau"]
    assert (kin.best, kin.other, hau.best, hau.other) == ("tau=1", "tau=3", "graded", "tau=3")
    assert f"kin, per-pair sampling: {_signed(kin.delta)} over τ=3, adj. p {kin.p_adjusted:.3f}" in findings
    assert f"graded loss (hau: {_signed(hau.delta)}, adj. p {hau.p_adjusted:.3f})" in findings


def test_monolingual_separations_and_means(findings):
    thr = _csv("monolingual_budget", "thresholds")
    sig = thr[thr.significant & (thr.measure == "nDCG@10")]
    assert set(sig.best) == {"tau=3"}
    assert f"monolingual: {len(sig)} of {thr.label.nunique()} significant, both τ=3" in findings
    cal = _csv("monolingual_budget", "calibration")
    fixed = [cal[f"test[tau={t}]"].mean() for t in (1, 2, 3)]
    assert f"best fixed τ {max(fixed):.3f}, worst {min(fixed):.3f}, dev-calibrated {cal.test_chosen.mean():.3f}" in findings


def test_mixture_range(findings):
    thr = _csv("multilingual_queryside", "thresholds")
    t3_t1 = thr[(thr.measure == "nDCG@10") & (thr.best == "tau=3") & (thr.other == "tau=1")].set_index("label").delta
    assert thr[thr.measure == "nDCG@10"].significant.all()
    assert f"τ=3 − τ=1 = {_signed(t3_t1['en'])} on en to {_signed(t3_t1.max())} on `multi`" in findings
    assert t3_t1.idxmax() == "multi"


def test_data_efficiency_and_noise(findings):
    lv = _csv("data_efficiency_budget", "levels")
    lv = lv[lv.measure == "nDCG@10"]
    effect = lv[lv.kind == "effect"].set_index(["level", "variant"])
    inter = lv[(lv.kind == "interaction") & (lv.variant == "tau=2") & (lv.other == "tau=3")].set_index("level")
    assert effect.loc[(0.25, "tau=3")].significant and effect.loc[(0.1, "tau=3")].significant
    assert not effect.loc[(0.25, "tau=2")].significant and not effect.loc[(0.1, "tau=2")].significant
    assert (f"τ=3 loses {effect.loc[(0.25, 'tau=3')].delta:.3f} / {effect.loc[(0.1, 'tau=3')].delta:.3f}"
            .replace("-", "−") in findings)
    assert f"τ=2 {_signed(effect.loc[(0.25, 'tau=2')].delta)} / {_signed(effect.loc[(0.1, 'tau=2')].delta)}" in findings
    assert f"interaction {_signed(inter.delta[0.25])} / {_signed(inter.delta[0.1])}" in findings
    assert inter.significant.all() and inter.p_adjusted.max() <= 1.5e-04
    noise = _csv("noise_budget", "levels")
    noise = noise[noise.measure == "nDCG@10"]
    assert not noise.significant.any()
    assert noise[noise.kind == "effect"].delta.abs().max() <= 0.003 + 5e-4
    assert f"smallest adj. p of an interaction {noise[noise.kind == 'interaction'].p_adjusted.min():.2f}" in findings
