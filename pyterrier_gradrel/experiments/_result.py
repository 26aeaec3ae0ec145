"""What a run of an experiment returns: the per-query frame and the analyses made from it."""
from __future__ import annotations

import os
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
        conditions: ``run key -> condition.json`` content.
        failed: ``run key -> error`` of the conditions that failed in this call.
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

    def aggregate(self) -> pd.DataFrame:
        """Mean ± sd over seeds of each system's mean score (columns ``mean``, ``sd``, ``n_seeds``)."""
        from pyterrier_gradrel.experiments._report import aggregate

        return aggregate(self.perquery)

    def significance(self) -> pd.DataFrame:
        """Paired tests of each fine-tuned variant against each baseline, corrected (see ``_significance``)."""
        from pyterrier_gradrel.experiments._significance import compare_to_baselines

        s = self.config.significance
        return compare_to_baselines(self.perquery, baselines=list(self.config.baselines), test=s.test,
                                    correction=s.correction, alpha=s.alpha, permutations=s.permutations,
                                    random_seed=s.random_seed)

    def thresholds(self) -> pd.DataFrame:
        """Per target, the winning variant on the primary measure tested against the others (see
        ``_significance.compare_thresholds``)."""
        from pyterrier_gradrel.experiments._significance import compare_thresholds

        s = self.config.significance
        return compare_thresholds(self.perquery, measure=self.config.primary_measure, test=s.test,
                                  correction=s.correction, alpha=s.alpha, permutations=s.permutations,
                                  random_seed=s.random_seed)

    def levels(self) -> pd.DataFrame:
        """Each variant's change with less training data / grade noise, and the differences between variants'
        changes, on the primary measure (see ``_significance.compare_levels``)."""
        from pyterrier_gradrel.experiments._significance import compare_levels

        s = self.config.significance
        return compare_levels(self.perquery, measure=self.config.primary_measure, test=s.test,
                              correction=s.correction, alpha=s.alpha, permutations=s.permutations,
                              random_seed=s.random_seed)

    def bootstrap(self) -> pd.DataFrame:
        """Article-level bootstrap CIs (see ``_significance.bootstrap_table``)."""
        from pyterrier_gradrel.experiments._significance import bootstrap_table

        s = self.config.significance
        return bootstrap_table(self.perquery, baselines=list(self.config.baselines), unit=s.bootstrap_unit,
                               samples=s.bootstrap_samples, confidence=s.confidence, random_seed=s.random_seed)

    def calibration(self) -> pd.DataFrame:
        """Dev-chosen τ vs oracle vs fixed τ (see ``_calibration``)."""
        from pyterrier_gradrel.experiments._calibration import calibrate

        measure = self.config.calibration.measure or self.config.primary_measure
        return calibrate(self.perquery, measure=measure, variants=[v.label for v in self.config.variants])

    def write_report(self, results_dir: str | os.PathLike | None = None) -> Path:
        """Write ``report.md``, CSVs and PNG plots into ``results_dir`` (default: :attr:`results_dir`)."""
        from pyterrier_gradrel.experiments._report import write_report

        return write_report(self, Path(results_dir) if results_dir is not None else self.results_dir)


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
