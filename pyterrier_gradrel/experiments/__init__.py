"""The paper's experiments as declarative configs, each target's runs evaluated with ``pt.Experiment``.

``run_experiment("experiments/quickstart.yaml")`` trains every condition of a config and retrieves with it
(reusing finished runs), scores each run on each target with ``pt.Experiment`` (``perquery=True``), tests
each fine-tuned variant against each baseline with a multiple-testing correction, bootstraps confidence
intervals over test articles, calibrates τ on dev and writes a Markdown report with plots into
``experiments/results/<name>/``. The command line is
``gradrel run experiments/<name>.yaml`` and ``gradrel report experiments/<name>.yaml``. The τ ×
evaluation-threshold diagonal (``compare_diagonal``) is part of every report; ``compare_units`` and
``replay_positive_grades`` compare a ``unit: pair`` experiment with its ``unit: query`` control.

Importing this sub-package is cheap (pandas, numpy, yaml); torch and the retrieval stack load when a
condition actually runs.
"""
from __future__ import annotations

from pyterrier_gradrel._lazy import lazy_exports

# public name -> "module:attribute", imported on first access (``gradrel --help`` must not load torch)
_LAZY: dict[str, str] = {
    "add_unit_comparison": "pyterrier_gradrel.experiments._diagonal:add_unit_comparison",
    "aggregate": "pyterrier_gradrel.experiments._analyses:aggregate",
    "bootstrap_table": "pyterrier_gradrel.experiments._significance:bootstrap_table",
    "calibrate": "pyterrier_gradrel.experiments._calibration:calibrate",
    "calibration_summary": "pyterrier_gradrel.experiments._calibration:calibration_summary",
    "cluster_bootstrap": "pyterrier_gradrel.experiments._significance:cluster_bootstrap",
    "compare_diagonal": "pyterrier_gradrel.experiments._diagonal:compare_diagonal",
    "compare_levels": "pyterrier_gradrel.experiments._significance:compare_levels",
    "compare_thresholds": "pyterrier_gradrel.experiments._significance:compare_thresholds",
    "compare_to_baselines": "pyterrier_gradrel.experiments._significance:compare_to_baselines",
    "compare_units": "pyterrier_gradrel.experiments._diagonal:compare_units",
    "correct": "pyterrier_gradrel.experiments._significance:correct",
    "diagonal_match_test": "pyterrier_gradrel.experiments._diagonal:diagonal_match_test",
    "evaluate": "pyterrier_gradrel._evaluation:evaluate",
    "load": "pyterrier_gradrel.experiments._notebook:load",
    "load_config": "pyterrier_gradrel.experiments._config:load_config",
    "paired_test": "pyterrier_gradrel.experiments._significance:paired_test",
    "parse_measures": "pyterrier_gradrel._evaluation:parse_measures",
    "plan": "pyterrier_gradrel.experiments._plan:plan",
    "pooled_difference": "pyterrier_gradrel.experiments._significance:pooled_difference",
    "positive_grades_from_logs": "pyterrier_gradrel.experiments._positives:positive_grades_from_logs",
    "positive_shares": "pyterrier_gradrel.experiments._positives:positive_shares",
    "refresh_report": "pyterrier_gradrel.experiments._report:refresh_report",
    "replay_positive_grades": "pyterrier_gradrel.experiments._positives:replay_positive_grades",
    "run_experiment": "pyterrier_gradrel.experiments._runner:run_experiment",
    "run_key": "pyterrier_gradrel.experiments._store:run_key",
    "scenario_datasets": "pyterrier_gradrel.experiments._scenarios:scenario_datasets",
    "seed_average": "pyterrier_gradrel.experiments._significance:seed_average",
    "write_report": "pyterrier_gradrel.experiments._report:write_report",
    "CalibrationSpec": "pyterrier_gradrel.experiments._config:CalibrationSpec",
    "Components": "pyterrier_gradrel.experiments._components:Components",
    "Condition": "pyterrier_gradrel.experiments._plan:Condition",
    "ConditionsFailed": "pyterrier_gradrel.experiments._result:ConditionsFailed",
    "ConfigError": "pyterrier_gradrel.experiments._config:ConfigError",
    "ExperimentConfig": "pyterrier_gradrel.experiments._config:ExperimentConfig",
    "ExperimentResult": "pyterrier_gradrel.experiments._result:ExperimentResult",
    "LocalExecutor": "pyterrier_gradrel.experiments._executor:LocalExecutor",
    "PooledDifference": "pyterrier_gradrel.experiments._significance:PooledDifference",
    "MeasureSpec": "pyterrier_gradrel._evaluation:MeasureSpec",
    "Scenario": "pyterrier_gradrel.experiments._notebook:Scenario",
    "RayExecutor": "pyterrier_gradrel.experiments._executor:RayExecutor",
    "ScenarioSpec": "pyterrier_gradrel.experiments._config:ScenarioSpec",
    "SignificanceSpec": "pyterrier_gradrel.experiments._config:SignificanceSpec",
    "Target": "pyterrier_gradrel.experiments._scenarios:Target",
    "Variant": "pyterrier_gradrel.experiments._plan:Variant",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
