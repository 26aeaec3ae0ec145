"""The resource-level test: Spearman's ρ between resource class and the τ=1 − τ=3 difference, exact permutation p."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from pyterrier_gradrel.datasets import info
from pyterrier_gradrel.experiments._resource import _assignments, resource_level_test

# XQuAD-R languages by Joshi class (datasets_registry/xquad-r.yaml): 3 el ro th, 4 hi ru tr vi, 5 ar de en es zh
NINE = {"el": 3, "ro": 3, "th": 3, "hi": 4, "ru": 4, "tr": 4, "ar": 5, "de": 5, "en": 5}


def _frame(d: dict[str, float], *, seeds: int = 2, fraction: float = 1.0, noise: float = 0.0) -> pd.DataFrame:
    """Per-query rows whose τ=1 − τ=3 difference per language is ``d[lang]`` (two queries, ``seeds`` seeds)."""
    rows = []
    for lang, diff in d.items():
        for seed, qid, tau in itertools.product(range(seeds), ("q1", "q2"), (1, 2, 3)):
            value = 0.5 + (diff if tau == 1 else 0.0) + 0.01 * seed
            rows.append(dict(target=f"gradrel/xquad-r/{lang}/test", label=lang, split="test", measure="nDCG@10",
                             tau=tau, seed=seed, fraction=fraction, noise=noise, qid=f"{lang}-{qid}", value=value))
    return pd.DataFrame(rows).astype({"tau": "Int64"})


def test_classes_come_from_the_registry() -> None:
    assert [info(f"gradrel/xquad-r/{lang}/test").joshi_class for lang in ("th", "vi", "zh")] == [3, 4, 5]
    assert info("gradrel/xquad-r/th-en/test").joshi_class == 3  # the query language's class
    assert [info(f"gradrel/afriqa/{lang}/test").joshi_class for lang in ("kin", "hau")] == [1, 2]
    assert info("gradrel/xquad-r/multi/test").joshi_class is None
    assert info("gradrel/afriqa/hau-translated/test").joshi_class is None


def test_assignments_are_every_distinct_arrangement() -> None:
    classes = np.array([1, 1, 2, 2, 3, 3])
    got = {tuple(r) for r in _assignments(classes)}
    assert got == set(itertools.permutations(classes)) and len(_assignments(classes)) == 90


def test_rho_equals_scipy_and_p_is_exact() -> None:
    rng = np.random.default_rng(0)
    d = {lang: float(x) for lang, x in zip(NINE, rng.normal(size=9), strict=True)}
    res = resource_level_test(_frame(d), measure="nDCG@10")
    assert res.assignments == 1680  # 9! / (3! 3! 3!)
    assert res.rho == pytest.approx(spearmanr(list(NINE.values()), list(d.values())).statistic)
    # the p-value by brute force over all 9! orderings (each distinct assignment 3!^3 times)
    obs = abs(res.rho)
    orderings = set(itertools.permutations(NINE.values()))
    hits = sum(abs(spearmanr(p, list(d.values())).statistic) >= obs - 1e-12 for p in orderings)
    assert res.p == pytest.approx(hits / 1680)


def test_a_perfect_monotone_trend_is_supported_or_contradicted() -> None:
    falling = {lang: 0.1 * (6 - c) + 0.001 * i for i, (lang, c) in enumerate(NINE.items())}
    res = resource_level_test(_frame(falling), measure="nDCG@10")
    assert res.rho < -0.9 and res.p < 0.05 and res.verdict() == "supported"
    rising = {lang: -v for lang, v in falling.items()}
    assert resource_level_test(_frame(rising), measure="nDCG@10").verdict() == "contradicted"
    assert list(res.table["label"]) == sorted(NINE)


def test_one_class_or_a_missing_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="in >= 2 classes"):
        resource_level_test(_frame({"ar": 0.1, "de": 0.2, "en": 0.3}), measure="nDCG@10")
    with pytest.raises(ValueError, match="both τ=1 and τ=4"):
        resource_level_test(_frame(dict.fromkeys(NINE, 0.1)), measure="nDCG@10", high=4)


def test_the_report_section_names_the_verdict_per_scenario() -> None:
    from pyterrier_gradrel.experiments._config import load_config
    from pyterrier_gradrel.experiments._resource import resource_lines, resource_tests

    cfg = load_config(Path(__file__).parents[1] / "experiments" / "monolingual_budget.yaml")  # τ ∈ {1, 2, 3}, primary nDCG@10
    falling = {lang: 0.1 * (6 - c) + 0.001 * i for i, (lang, c) in enumerate(NINE.items())}
    frame = pd.concat([_frame(falling).assign(scenario="mono"),
                       _frame({"ar": 0.1, "de": 0.2, "en": 0.3}).assign(scenario="one-class")])
    res = resource_tests(frame, cfg)
    assert set(res["scenario"]) == {"mono"} and len(res) == 9  # one class only: left out
    text = "\n".join(resource_lines(res, cfg))
    assert "## Resource level (test, `nDCG@10`)" in text and "**mono**: ρ = -0.9" in text and "supported" in text


def test_d_is_taken_at_one_training_level_not_pooled() -> None:
    rng = np.random.default_rng(1)
    d = {lang: float(x) for lang, x in zip(NINE, rng.normal(size=9), strict=True)}
    other = {lang: float(x) for lang, x in zip(NINE, rng.normal(size=9), strict=True)}
    # the reference level (fraction 1, noise 0) next to a smaller fraction and a noise rate with other differences
    frame = pd.concat([_frame(d), _frame(other, fraction=0.25), _frame(other, noise=0.4)])
    res = resource_level_test(frame, measure="nDCG@10")
    assert dict(zip(res.table["label"], res.table["D"], strict=True)) == pytest.approx(d)
    assert res.rho == pytest.approx(spearmanr(list(NINE.values()), list(d.values())).statistic)
    at = resource_level_test(frame, measure="nDCG@10", fraction=0.25)
    assert dict(zip(at.table["label"], at.table["D"], strict=True)) == pytest.approx(other)
    # one query twice at the level (two scenarios on one target) is refused, not averaged in
    with pytest.raises(ValueError, match="appear twice"):
        resource_level_test(pd.concat([_frame(d), _frame(other)]), measure="nDCG@10")
