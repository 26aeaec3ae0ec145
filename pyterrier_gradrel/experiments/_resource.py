"""The resource-level test: does the effect of τ follow the query language's resource class?

Per test target L (one query language), ``D(L)`` is the primary measure of τ = ``low`` minus that of τ = ``high``
(each the mean over seeds of the per-seed query mean, at one training level: by default the largest fraction
without noise). The statistic is Spearman's ρ between the language's
resource class (Joshi et al. 2020, the registry's ``joshi_class``) and ``D``; its two-sided p-value is exact:
the share of all distinct assignments of the observed classes to the targets whose ``|ρ|`` reaches the observed
one. Classes move between whole targets, so the test keeps whatever the targets share (XQuAD-R's languages
translate the same questions) and never treats queries of different languages as independent samples.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pyterrier_gradrel._markdown import table_lines

if TYPE_CHECKING:
    from pyterrier_gradrel.experiments._config import ExperimentConfig

__all__ = ["ResourceTest", "resource_level_test", "resource_lines", "resource_tests"]


@dataclass(frozen=True)
class ResourceTest:
    """The test's result: ``table`` has one row per target (``label``, ``joshi_class``, ``D``), ``rho`` the
    observed Spearman ρ, ``p`` its exact two-sided permutation p-value over ``assignments`` distinct assignments."""

    table: pd.DataFrame
    rho: float
    p: float
    assignments: int

    def verdict(self, alpha: float = 0.05) -> str:
        """``supported`` (ρ < 0: lower class, larger ``D``, with p < α), ``contradicted`` (ρ > 0, p < α) or
        ``not supported at this size``."""
        if self.p < alpha:
            return "supported" if self.rho < 0 else "contradicted"
        return "not supported at this size"


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's ρ uses them."""
    return pd.Series(x).rank(method="average").to_numpy()


def _assignments(classes: np.ndarray) -> np.ndarray:
    """Every distinct arrangement of ``classes`` over its positions (``n! / prod(k_c!)`` rows)."""
    values, counts = np.unique(classes, return_counts=True)
    rows: list[np.ndarray] = []

    def fill(row: np.ndarray, free: tuple[int, ...], i: int) -> None:
        if i == len(values):
            rows.append(row.copy())
            return
        for chosen in itertools.combinations(free, counts[i]):
            row[list(chosen)] = values[i]
            fill(row, tuple(f for f in free if f not in chosen), i + 1)

    fill(np.empty(len(classes), dtype=classes.dtype), tuple(range(len(classes))), 0)
    return np.array(rows)


def resource_level_test(perquery: pd.DataFrame, *, measure: str, low: int = 1, high: int = 3,
                        split: str = "test", fraction: float | None = None, noise: float | None = None,
                        max_assignments: int = 1_000_000) -> ResourceTest:
    """Spearman's ρ between resource class and ``D = measure(τ=low) − measure(τ=high)`` over the test targets.

    ``D`` is computed at one training level: ``fraction`` and ``noise``, by default the reference level (the
    largest fraction and the lowest noise rate of the τ=``low`` and τ=``high`` rows), never pooled over levels.

    Args:
        perquery: the experiment's per-query frame (typed ``tau`` column, ``fraction``, ``noise``, ``seed``,
            ``qid``).
        measure: the measure's label (e.g. ``nDCG@10``).
        low, high: the two thresholds τ whose difference is ``D``.
        split: the targets' split.
        fraction: the training fraction (default: the largest).
        noise: the grade-noise rate (default: the lowest).
        max_assignments: refuse larger exact enumerations.

    Raises:
        ValueError: fewer than three targets with a known class and both thresholds, one class only, more
            distinct assignments than ``max_assignments``, or a (target, τ, seed, qid) present twice after the
            selection (e.g. two scenarios testing one target: pass one scenario's rows).
    """
    from pyterrier_gradrel.datasets import info

    sel = perquery[(perquery["split"] == split) & (perquery["measure"] == measure) & perquery["tau"].isin([low, high])]
    f = float(sel["fraction"].max()) if fraction is None else float(fraction)
    n = float(sel["noise"].min()) if noise is None else float(noise)
    sel = sel[(sel["fraction"] == f) & (sel["noise"] == n)]
    if (dup := sel.duplicated(["target", "tau", "seed", "qid"])).any():
        first = sel[dup].iloc[0]
        raise ValueError(f"{int(dup.sum())} (target, τ, seed, qid) rows appear twice at fraction {f:g}, noise {n:g}, "
                         f"e.g. ({first['target']!r}, τ={first['tau']}, seed {first['seed']}, {first['qid']!r}): "
                         "expected one row per query; pass one scenario's rows")
    per_seed = sel.groupby(["target", "label", "tau", "seed"])["value"].mean()
    means = per_seed.groupby(level=["target", "label", "tau"]).mean().unstack("tau").reindex(columns=[low, high])
    rows = [(label, info(target).joshi_class, means.loc[(target, label), low] - means.loc[(target, label), high])
            for target, label in means.index if not means.loc[(target, label)].isna().any()]
    table = pd.DataFrame([r for r in rows if r[1] is not None], columns=["label", "joshi_class", "D"])
    classes = table["joshi_class"].to_numpy(dtype=int)
    if len(table) < 3 or len(set(classes)) < 2:
        raise ValueError(f"the resource-level test needs >= 3 {split} targets with a known class and both τ={low} "
                         f"and τ={high}, in >= 2 classes; got {table.to_dict('records')}")
    sizes = np.unique(classes, return_counts=True)[1]
    n = math.factorial(len(classes)) // math.prod(math.factorial(int(k)) for k in sizes)
    if n > max_assignments:
        raise ValueError(f"{n} distinct class assignments exceed max_assignments={max_assignments}")
    centre = (len(table) + 1) / 2
    d = _ranks(table["D"].to_numpy()) - centre
    rank_of = np.vectorize(dict(zip(classes, _ranks(classes), strict=True)).get)  # tied classes share a rank
    c = rank_of(_assignments(classes)) - centre  # one row per assignment; the ranks' norm is the same in all
    rhos = c @ d / np.sqrt((c[0] ** 2).sum() * (d ** 2).sum())
    observed = float((rank_of(classes) - centre) @ d / np.sqrt((c[0] ** 2).sum() * (d ** 2).sum()))
    p = float(np.mean(np.abs(rhos) >= abs(observed) - 1e-12))
    return ResourceTest(table, observed, p, len(rhos))


def resource_tests(perquery: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Per scenario, the resource-level test of the lowest against the highest configured τ on the primary measure;
    scenarios whose test targets do not span two known classes are left out."""
    rows = []
    if len(cfg.thresholds) >= 2 and not perquery.empty:
        low, high = min(cfg.thresholds), max(cfg.thresholds)
        for scenario, sel in perquery.groupby("scenario", sort=False):
            try:
                res = resource_level_test(sel, measure=cfg.primary_measure, low=low, high=high)
            except ValueError:
                continue
            rows += [dict(scenario=scenario, low=low, high=high, rho=res.rho, p=res.p, assignments=res.assignments,
                          verdict=res.verdict(cfg.significance.alpha), **r) for r in res.table.to_dict("records")]
    return pd.DataFrame(rows, columns=["scenario", "low", "high", "rho", "p", "assignments", "verdict", "label",
                                       "joshi_class", "D"])


def resource_lines(res: pd.DataFrame, cfg: ExperimentConfig) -> list[str]:
    """The report's "Resource level" section (empty when no scenario spans two resource classes)."""
    if res.empty:
        return []
    low, high = int(res["low"].iloc[0]), int(res["high"].iloc[0])
    lines = [f"## Resource level (test, `{cfg.primary_measure}`)", "",
             f"D = τ={low} − τ={high} per test language (mean over seeds of the query mean, at the reference level: "
             f"all training data, no noise); ρ = Spearman's ρ "
             f"between the language's resource class (Joshi et al. 2020) and D; p = exact two-sided permutation "
             f"p over every distinct assignment of the classes to the languages. ρ < 0 (lower class, larger D) "
             f"with p < {cfg.significance.alpha} supports the hypothesis that lower-resource languages prefer a "
             f"lower τ.", ""]
    for scenario, g in res.groupby("scenario", sort=False):
        order = g.sort_values(["joshi_class", "label"], ascending=[False, True])
        lines += [f"**{scenario}**: ρ = {g['rho'].iloc[0]:+.3f}, p = {g['p'].iloc[0]:.3g} "
                  f"({int(g['assignments'].iloc[0])} assignments): {g['verdict'].iloc[0]}.", ""]
        lines += table_lines(["language", "class", "D"],
                             [[r.label, str(int(r.joshi_class)), f"{r.D:+.4f}"] for r in order.itertuples()])
        lines.append("")
    return lines
