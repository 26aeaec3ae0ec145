"""The paper's experiments as declarative configs run through ``pt.Experiment``-style evaluation.

``run_experiment("experiments/quickstart.yaml")`` trains and evaluates every condition of a config
(reusing finished runs), tests each fine-tuned variant against each baseline with a multiple-testing
correction, bootstraps confidence intervals over test articles, calibrates τ on dev and writes a
Markdown report with plots into ``experiments/results/<name>/``. The command line is
``gradrel run experiments/<name>.yaml`` and ``gradrel report experiments/<name>.yaml``. The τ ×
evaluation-threshold diagonal (``compare_diagonal``) is part of every report; ``compare_units`` and
``replay_positive_grades`` compare a ``unit: pair`` experiment with its ``unit: query`` control.

Importing this sub-package is cheap (pandas, numpy, yaml); torch and the retrieval stack load when a
condition actually runs.
"""
from pyterrier_gradrel.experiments._calibration import calibrate, calibration_summary
from pyterrier_gradrel.experiments._config import (
    CalibrationSpec,
    ConfigError,
    ExperimentConfig,
    ScenarioSpec,
    SignificanceSpec,
    load_config,
)
from pyterrier_gradrel.experiments._diagonal import (
    add_unit_comparison,
    compare_diagonal,
    compare_units,
    diagonal_sign_test,
    refresh_diagonal,
)
from pyterrier_gradrel.experiments._executor import LocalExecutor, RayExecutor
from pyterrier_gradrel.experiments._measures import MeasureSpec, evaluate, parse_measures
from pyterrier_gradrel.experiments._positives import (
    positive_grades_from_logs,
    positive_shares,
    replay_positive_grades,
)
from pyterrier_gradrel.experiments._report import aggregate, write_report
from pyterrier_gradrel.experiments._runner import (
    Components,
    ConditionsFailed,
    ExperimentResult,
    run_experiment,
    run_key,
)
from pyterrier_gradrel.experiments._scenarios import Condition, Target, plan, scenario_datasets
from pyterrier_gradrel.experiments._significance import (
    bootstrap_table,
    cluster_bootstrap,
    compare_levels,
    compare_thresholds,
    compare_to_baselines,
    correct,
    paired_test,
    seed_average,
)

__all__ = [
    "CalibrationSpec",
    "Components",
    "Condition",
    "ConditionsFailed",
    "ConfigError",
    "ExperimentConfig",
    "ExperimentResult",
    "LocalExecutor",
    "MeasureSpec",
    "RayExecutor",
    "ScenarioSpec",
    "SignificanceSpec",
    "Target",
    "add_unit_comparison",
    "aggregate",
    "bootstrap_table",
    "calibrate",
    "calibration_summary",
    "cluster_bootstrap",
    "compare_diagonal",
    "compare_levels",
    "compare_thresholds",
    "compare_to_baselines",
    "compare_units",
    "correct",
    "diagonal_sign_test",
    "evaluate",
    "load_config",
    "paired_test",
    "parse_measures",
    "plan",
    "positive_grades_from_logs",
    "positive_shares",
    "refresh_diagonal",
    "replay_positive_grades",
    "run_experiment",
    "run_key",
    "scenario_datasets",
    "seed_average",
    "write_report",
]
