"""The analyses of an experiment, each a function of its per-query frame and its config.

Everything a report shows is computed here from the per-query long frame (:data:`._store.PERQUERY_COLUMNS`) with
the config's significance settings: the statistics ``pt.Experiment`` does not offer (seed averaging, the
family-wise correction across targets, the article bootstrap, dev calibration, the τ × rel diagonal in
:mod:`._diagonal`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from pyterrier_gradrel.experiments._calibration import calibrate
from pyterrier_gradrel.experiments._diagonal import compare_diagonal
from pyterrier_gradrel.experiments._significance import (
    bootstrap_table,
    compare_levels,
    compare_thresholds,
    compare_to_baselines,
)

if TYPE_CHECKING:
    from pyterrier_gradrel.experiments._config import ExperimentConfig

__all__ = ["aggregate", "bootstrap", "calibration", "diagonal", "levels", "resource", "significance", "thresholds"]


def aggregate(perquery: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, label, target, split, system, variant, fraction, noise, measure): mean ± sd over seeds.

    The per-seed value is the mean over queries; ``mean`` and ``sd`` are over seeds (``sd`` is NaN for a
    single seed), ``n_queries`` counts the evaluated queries.
    """
    cols = ["scenario", "label", "target", "split", "system", "variant", "fraction", "noise", "measure"]
    if perquery.empty:
        return pd.DataFrame(columns=cols + ["mean", "sd", "n_seeds", "n_queries"])
    per_seed = perquery.groupby(cols + ["seed"], dropna=False).agg(value=("value", "mean"), nq=("qid", "nunique"))
    out = per_seed.groupby(level=cols, dropna=False).agg(
        mean=("value", "mean"), sd=("value", lambda v: v.std(ddof=1) if len(v) > 1 else float("nan")),
        n_seeds=("value", "size"), n_queries=("nq", "max"))
    return out.reset_index()


def significance(perquery: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Paired tests of each fine-tuned variant against each baseline, corrected (``_significance.compare_to_baselines``)."""
    return compare_to_baselines(perquery, baselines=list(cfg.baselines), significance=cfg.significance)


def thresholds(perquery: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Per target, the winning variant on the primary measure tested against the others
    (``_significance.compare_thresholds``)."""
    return compare_thresholds(perquery, measure=cfg.primary_measure, significance=cfg.significance)


def levels(perquery: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Each variant's change with less training data / grade noise, and the differences between variants' changes,
    on the primary measure (``_significance.compare_levels``)."""
    return compare_levels(perquery, measure=cfg.primary_measure, significance=cfg.significance)


def diagonal(perquery: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """The τ × evaluation-threshold diagonal with the config's test, correction and α
    (``_diagonal.compare_diagonal``)."""
    return compare_diagonal(perquery, significance=cfg.significance)


def resource(perquery: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """The resource-level test per scenario (``_resource.resource_tests``)."""
    from pyterrier_gradrel.experiments._resource import resource_tests

    return resource_tests(perquery, cfg)


def bootstrap(perquery: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Article-level bootstrap CIs (``_significance.bootstrap_table``)."""
    return bootstrap_table(perquery, baselines=list(cfg.baselines), significance=cfg.significance)


def calibration(perquery: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Dev-chosen τ vs oracle vs fixed τ (``_calibration.calibrate``); empty when calibration is off."""
    if not cfg.calibration.enabled:
        return pd.DataFrame()
    return calibrate(perquery, measure=cfg.calibration.measure or cfg.primary_measure,
                     variants=[v.label for v in cfg.variants])
