"""Choose τ per language on dev, and report what that choice achieves on test.

This makes the paper's recommendation executable: "tune the relevance threshold per language on held-out
data". For every (scenario, language, fraction, noise) that has both a dev and a test evaluation, the
variant (``tau=1|2|3`` or ``graded``) with the best **dev** mean of the calibration measure (seed-averaged)
is chosen; the table then shows its **test** mean next to the oracle (the best test mean, unattainable in
practice) and every fixed choice. Ties on dev go to the variant listed first in the config.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def calibrate(perquery: pd.DataFrame, *, measure: str, variants: Sequence[str]) -> pd.DataFrame:
    """The calibration table.

    Args:
        perquery: the per-query long frame (fine-tuned rows on both ``dev`` and ``test``).
        measure: the measure label that picks τ.
        variants: the candidate variants, in config order (tie-break order).

    Returns:
        One row per (scenario, label, fraction, noise) with ``chosen`` (the dev-best variant),
        ``dev_chosen``, ``test_chosen``, ``oracle`` (the test-best variant), ``test_oracle``, ``regret``
        (``test_oracle - test_chosen``) and one ``test[<variant>]`` column per variant.
    """
    ft = perquery[(perquery["system"] == "fine-tuned") & (perquery["measure"] == measure)]
    base_cols = ["scenario", "label", "fraction", "noise", "chosen", "dev_chosen", "test_chosen", "oracle",
                 "test_oracle", "regret"]
    columns = base_cols + [f"test[{v}]" for v in variants]
    if ft.empty:
        return pd.DataFrame(columns=columns)
    # mean over queries per seed, then over seeds (equal to the mean of seed-averaged per-query scores
    # when every seed evaluates the same queries)
    per_seed = ft.groupby(["scenario", "label", "split", "fraction", "noise", "variant", "seed"])["value"].mean()
    means = per_seed.groupby(level=["scenario", "label", "split", "fraction", "noise", "variant"]).mean()
    rows = []
    for (scenario, label, fraction, noise), grp in means.groupby(level=["scenario", "label", "fraction", "noise"]):
        g = grp.droplevel(["scenario", "label", "fraction", "noise"])
        if "dev" not in g.index.get_level_values("split") or "test" not in g.index.get_level_values("split"):
            continue
        dev = g.xs("dev", level="split")
        test = g.xs("test", level="split")
        cands = [v for v in variants if v in dev.index and v in test.index]
        if not cands:
            continue
        chosen = max(cands, key=lambda v: (dev[v], -cands.index(v)))
        oracle = max(cands, key=lambda v: (test[v], -cands.index(v)))
        row = dict(scenario=scenario, label=label, fraction=fraction, noise=noise, chosen=chosen,
                   dev_chosen=float(dev[chosen]), test_chosen=float(test[chosen]), oracle=oracle,
                   test_oracle=float(test[oracle]), regret=float(test[oracle] - test[chosen]))
        for v in variants:
            row[f"test[{v}]"] = float(test[v]) if v in test.index else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def calibration_summary(table: pd.DataFrame, *, variants: Sequence[str]) -> pd.DataFrame:
    """Mean test score over languages of: calibrated choice, oracle, and each fixed variant.

    Returns:
        One row per (scenario, fraction, noise) with ``n_languages``, ``calibrated``, ``oracle`` and
        ``fixed[<variant>]`` columns.
    """
    cols = ["scenario", "fraction", "noise", "n_languages", "calibrated", "oracle"] + [f"fixed[{v}]" for v in variants]
    if table.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (scenario, fraction, noise), g in table.groupby(["scenario", "fraction", "noise"]):
        row = dict(scenario=scenario, fraction=fraction, noise=noise, n_languages=len(g),
                   calibrated=g["test_chosen"].mean(), oracle=g["test_oracle"].mean())
        for v in variants:
            row[f"fixed[{v}]"] = g[f"test[{v}]"].mean()
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)
