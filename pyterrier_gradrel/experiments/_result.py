"""What a run of an experiment returns: a plain record of its config, per-query frame and bookkeeping (the analyses
of the frame are in :mod:`._analyses`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pyterrier_gradrel.experiments._config import ExperimentConfig

__all__ = ["ConditionsFailed", "ExperimentResult"]


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns (and what the report is made from).

    Attributes:
        config: the validated config.
        perquery: the per-query long frame (columns :data:`PERQUERY_COLUMNS`).
        runs_dir: ``experiments/runs/<name>``.
        results_dir: ``experiments/results/<name>``.
        wall_time: seconds this call took.
        n_run: conditions computed now; n_reused: conditions reused from disk; n_missing: conditions
            without a finished run (not computed with ``compute=False``, or failed).
        conditions: ``run key -> condition.json`` content (``_store.read_condition``).
        failed: ``run key -> error`` of the conditions that failed in this call.
        options: the ``gradrel run`` options beyond the config's path that reproduce these results
            (``--limit-queries N`` of a smoke run), for the report.
    """

    config: ExperimentConfig
    perquery: pd.DataFrame
    runs_dir: Path
    results_dir: Path
    wall_time: float = 0.0
    n_run: int = 0
    n_reused: int = 0
    n_missing: int = 0
    conditions: dict[str, dict] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    options: str = ""

    def aggregate(self) -> pd.DataFrame:
        """Mean ± sd over seeds per scenario, target, split, system, variant, level and measure
        (:func:`._analyses.aggregate` of :attr:`perquery`)."""
        from pyterrier_gradrel.experiments import _analyses

        return _analyses.aggregate(self.perquery)

    def significance(self) -> pd.DataFrame:
        """Paired tests of each fine-tuned variant against each baseline, corrected, with the config's significance
        settings (:func:`._analyses.significance`)."""
        from pyterrier_gradrel.experiments import _analyses

        return _analyses.significance(self.perquery, self.config)

    def bootstrap(self) -> pd.DataFrame:
        """Cluster-bootstrap confidence intervals of the differences to each baseline (:func:`._analyses.bootstrap`)."""
        from pyterrier_gradrel.experiments import _analyses

        return _analyses.bootstrap(self.perquery, self.config)

    def calibration(self) -> pd.DataFrame:
        """τ chosen on dev against the oracle and each fixed τ, on test (:func:`._analyses.calibration`; empty when
        the config turns calibration off)."""
        from pyterrier_gradrel.experiments import _analyses

        return _analyses.calibration(self.perquery, self.config)


class ConditionsFailed(RuntimeError):
    """Some conditions of a sweep failed; the others finished and are in :attr:`result`.

    Each failed condition's error is also in ``<run key>.partial/error.txt`` under the runs folder.
    """

    def __init__(self, result: ExperimentResult) -> None:
        self.result = result
        lines = [f"{len(result.failed)} condition(s) of {result.config.name} failed; the other conditions finished:"]
        lines += [f"  {key}: {last_line(error)}" for key, error in result.failed.items()]
        super().__init__("\n".join(lines))


def last_line(error: str) -> str:
    """The last non-empty line of a traceback (the exception itself)."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else error
