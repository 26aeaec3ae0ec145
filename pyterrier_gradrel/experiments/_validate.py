"""Loading and validating experiment configs: every check names what was allowed.

:func:`load_config` reads a config (``_config.read_config``) and runs :func:`validate`, a sequence of small
per-section validators, each raising :class:`~._config.ConfigError` on the first problem it finds.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict

from pyterrier_gradrel.experiments._config import (
    BOOTSTRAP_UNITS,
    CORRECTIONS,
    RUNTIME_TRAINING_KEYS,
    SWEEP_KEYS,
    TESTS,
    CalibrationSpec,
    ConfigError,
    ExperimentConfig,
    ScenarioSpec,
    SignificanceSpec,
    check_bool,
    check_fields,
    check_number,
    collection_languages,
    dataset_facts,
    in_file,
    read_config,
)
from pyterrier_gradrel.experiments._plan import plan
from pyterrier_gradrel.experiments._scenarios import scenario_datasets
from pyterrier_gradrel.retrieval._names import BASELINES

__all__ = ["load_config", "validate"]


def load_config(config: str | os.PathLike | Mapping[str, object] | ExperimentConfig) -> ExperimentConfig:
    """Read (YAML path or mapping) and validate an experiment config.

    Args:
        config: a path to ``experiments/<name>.yaml``, an already parsed mapping, or a config.

    Returns:
        The validated :class:`ExperimentConfig`.

    Raises:
        ConfigError: with a message naming the offending key and the allowed values.
        FileNotFoundError: the path does not exist.
    """
    if not isinstance(config, ExperimentConfig):
        if not isinstance(config, (str, os.PathLike, Mapping)):
            raise TypeError(f"config must be a path, a mapping or an ExperimentConfig, got {type(config).__name__}")
        config = read_config(config)
    try:
        validate(config)
    except ConfigError as exc:
        raise in_file(exc, config.source) from None
    return config


def validate(cfg: ExperimentConfig) -> None:
    """Check a config against the datasets and the allowed values; raise :class:`ConfigError` on the first problem."""
    _validate_name(cfg)
    _validate_types(cfg)
    _validate_sweep(cfg)
    _validate_training(cfg)
    _validate_measures(cfg)
    _validate_significance(cfg.significance)
    _validate_limits(cfg)
    _validate_scenarios(cfg)
    _validate_train_configs(cfg)


def _validate_name(cfg: ExperimentConfig) -> None:
    if not cfg.name or any(c in cfg.name for c in "/\\ ") or cfg.name.startswith("."):
        raise ConfigError(f"name must be a plain folder name (no '/', '\\\\', spaces, leading '.'), got {cfg.name!r}")


def _validate_types(cfg: ExperimentConfig) -> None:
    for key in ("graded_loss", "keep_models"):
        check_bool(getattr(cfg, key), key)
    for key in ("fractions", "noise_rates"):
        for x in getattr(cfg, key):
            check_number(x, key)
    check_fields(asdict(cfg.significance), SignificanceSpec, "significance")
    check_fields(asdict(cfg.calibration), CalibrationSpec, "calibration")


def _validate_sweep(cfg: ExperimentConfig) -> None:
    """Thresholds, seeds, fractions, noise rates and baselines."""
    _validate_thresholds_and_seeds(cfg)
    _validate_levels_and_baselines(cfg)


def _validate_thresholds_and_seeds(cfg: ExperimentConfig) -> None:
    if not cfg.thresholds and not cfg.graded_loss:
        raise ConfigError("nothing to fine-tune: give 'thresholds' (e.g. [1, 2, 3]) and/or 'graded_loss: true'")
    for t in cfg.thresholds:
        if isinstance(t, bool) or not isinstance(t, int):
            raise ConfigError(f"thresholds must be integers (grades), got {t!r}")
    if len(set(cfg.thresholds)) != len(cfg.thresholds):
        raise ConfigError(f"thresholds must be unique, got {list(cfg.thresholds)}")
    if not cfg.seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in cfg.seeds):
        raise ConfigError(f"seeds must be a non-empty list of integers, got {list(cfg.seeds)}")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"seeds must be unique, got {list(cfg.seeds)}")


def _validate_levels_and_baselines(cfg: ExperimentConfig) -> None:
    for key in ("fractions", "noise_rates", "baselines"):  # a repeated entry would plan the same runs twice
        values = list(getattr(cfg, key))
        repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
        if repeated:
            raise ConfigError(f"{key} must be unique, got {values} ({repeated} repeated)")
    for f in cfg.fractions:
        if not 0.0 < f <= 1.0:
            raise ConfigError(f"fractions must lie in (0, 1], got {f}")
    for n in cfg.noise_rates:
        if not 0.0 <= n < 1.0:
            raise ConfigError(f"noise_rates must lie in [0, 1), got {n}")
    for b in cfg.baselines:
        if b not in BASELINES:
            raise ConfigError(f"unknown baseline {b!r}: expected some of {list(BASELINES)}")


def _validate_training(cfg: ExperimentConfig) -> None:
    """The ``training:`` keys: no sweep keys, only ``TrainConfig`` fields (and ``device``), of the right types."""
    from pyterrier_gradrel.training import TrainConfig

    training = cfg.training
    bad_keys = sorted(set(training) & set(SWEEP_KEYS))
    if bad_keys:
        raise ConfigError(
            f"training: {bad_keys} are set by the sweep (thresholds, seeds, fractions, noise_rates, graded_loss); "
            f"remove them from 'training'"
        )
    if not isinstance(training.get("device", "auto"), str):
        raise ConfigError(f"training: device must be 'auto', 'cpu', 'cuda' or a torch device such as 'cuda:1', "
                          f"got {training['device']!r}")
    fields = TrainConfig.__dataclass_fields__
    unknown = sorted(set(training) - set(fields) - set(RUNTIME_TRAINING_KEYS))
    if unknown:
        allowed = sorted((set(fields) | set(RUNTIME_TRAINING_KEYS)) - set(SWEEP_KEYS))
        raise ConfigError(f"training: unknown hyper-parameter(s) {unknown}: expected some of {allowed}")
    check_fields(training, TrainConfig, "training")


def _validate_measures(cfg: ExperimentConfig) -> None:
    from pyterrier_gradrel._evaluation import check_rels

    try:
        check_rels(cfg.binary_rels, key="measures.rels")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        measures = cfg.measures
    except ValueError as exc:
        raise ConfigError(f"measures: {exc}") from None
    labels = [m.label for m in measures]
    if not any(m.label == cfg.primary_measure for m in measures):
        raise ConfigError(f"measures.primary: unknown primary measure {cfg.primary_measure!r}: expected one of {labels}")
    if cfg.calibration.measure is not None and cfg.calibration.measure not in labels:
        raise ConfigError(f"calibration.measure: unknown calibration measure {cfg.calibration.measure!r}: expected one of {labels}")


def _validate_significance(sig: SignificanceSpec) -> None:
    if sig.test not in TESTS:
        raise ConfigError(f"significance.test: unknown significance test {sig.test!r}: expected one of {list(TESTS)}")
    if sig.correction not in CORRECTIONS:
        raise ConfigError(f"significance.correction: unknown correction {sig.correction!r}: "
                          f"expected one of {list(CORRECTIONS)}")
    if sig.bootstrap_unit not in BOOTSTRAP_UNITS:
        raise ConfigError(f"significance.bootstrap_unit: unknown unit {sig.bootstrap_unit!r}: "
                          f"expected one of {list(BOOTSTRAP_UNITS)}")
    for key in ("alpha", "confidence"):
        if not 0 < getattr(sig, key) < 1:
            raise ConfigError(f"significance.{key} must lie in (0, 1), got {getattr(sig, key)}")
    for key in ("bootstrap_samples", "permutations"):
        if getattr(sig, key) < 100:
            raise ConfigError(f"significance.{key} must be at least 100, got {getattr(sig, key)}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_limits(cfg: ExperimentConfig) -> None:
    """``run_depth`` (at least the deepest cut-off) and ``limit_queries``."""
    deepest = max((m.cutoff for m in cfg.measures if m.cutoff is not None), default=1)
    if not _is_int(cfg.run_depth) or cfg.run_depth < deepest:
        raise ConfigError(f"run_depth must be an integer >= the deepest measure cut-off ({deepest}), "
                          f"got {cfg.run_depth!r}")
    if cfg.limit_queries is not None and (not _is_int(cfg.limit_queries) or cfg.limit_queries < 1):
        raise ConfigError(f"limit_queries must be a positive integer or null, got {cfg.limit_queries!r}")


def _validate_scenarios(cfg: ExperimentConfig) -> None:
    """Unique scenario names; each scenario's shape, datasets and grade scales."""
    names = [s.name for s in cfg.scenarios]
    if len(set(names)) != len(names):
        raise ConfigError(f"scenarios must differ in (type, collection), transfer ones in their ids or label; "
                          f"merge the duplicates of {names}")
    for i, scenario in enumerate(cfg.scenarios):
        where = f"scenarios[{i}] ({scenario.type}, {scenario.collection or scenario.name})"
        _validate_scenario_shape(scenario, where)
        _validate_scenario_datasets(cfg, scenario, where)


def _validate_scenario_datasets(cfg: ExperimentConfig, scenario: ScenarioSpec, where: str) -> None:
    """Every dataset the scenario needs exists; thresholds and rels fit its training grade scale, which the
    training datasets of one model share."""
    sp = scenario_datasets(scenario)
    needed: list[tuple[str, str]] = [(d, "train") for d in sp.train] + [(d, "test") for d in sp.test]
    if cfg.calibration.enabled:
        needed += [(d, "dev") for d in sp.dev.values()]
    for ds_id, role in needed:
        facts = dataset_facts(ds_id)
        if not facts.exists:
            raise ConfigError(f"{where}: missing {role} split {ds_id!r}: {facts.reason or 'not registered'}"
                              + (" (set 'calibration: {enabled: false}' to run without dev)" if role == "dev" else ""))
        if role == "train":
            _validate_grade_scale(cfg, ds_id, facts.grades, where)
    for group in sp.groups:
        scales = {d: dataset_facts(d).grades for d in group.train}
        if len(set(scales.values())) > 1:
            raise ConfigError(f"{where}: the training datasets of one model must share a grade scale, got "
                              + ", ".join(f"{d}: {list(g)}" for d, g in scales.items()))


def _validate_grade_scale(cfg: ExperimentConfig, ds_id: str, grades: tuple[int, ...], where: str) -> None:
    allowed = [g for g in grades if g > 0]
    for t in cfg.thresholds:
        if t not in allowed:
            raise ConfigError(f"{where}: threshold {t} is outside the grade scale of {ds_id}: rel must be one of {allowed}")
    for r in cfg.binary_rels:
        if r not in allowed:
            raise ConfigError(f"measures.rels: {r} is outside the grade scale of {ds_id}: expected one of {allowed}")


def _validate_scenario_shape(s: ScenarioSpec, where: str) -> None:
    if s.type == "transfer":
        if not s.train or not s.test:
            raise ConfigError(f"{where}: a transfer scenario needs 'train' and 'test' dataset ids")
        return
    if s.train or s.test or s.label:
        raise ConfigError(f"{where}: 'train', 'test' and 'label' belong to transfer scenarios")
    langs = collection_languages(s.collection)
    for lang in list(s.languages) + [x for p in s.pairs for x in p]:
        if lang not in langs:
            raise ConfigError(f"{where}: unknown language {lang!r} for {s.collection}: expected one of {list(langs)}")
    if s.type == "crosslingual":
        _validate_crosslingual(s, where)
    else:
        _validate_languages(s, where)
    if len(set(s.languages)) != len(s.languages) or len(set(s.pairs)) != len(s.pairs):
        raise ConfigError(f"{where}: languages / pairs must be unique")


def _validate_crosslingual(s: ScenarioSpec, where: str) -> None:
    if s.collection == "xquad-r":
        if not s.pairs or s.languages:
            raise ConfigError(f"{where}: crosslingual xquad-r takes 'pairs' ([qlang, dlang]), not 'languages'")
        for q, d in s.pairs:
            if q == d:
                raise ConfigError(f"{where}: pair {q}-{d} is monolingual; use a monolingual scenario")
    elif not s.languages or s.pairs:
        what = "the collections (gradrel/local/<name>)" if s.collection == "local" else "the query languages"
        raise ConfigError(f"{where}: crosslingual {s.collection} takes 'languages' ({what}), not 'pairs'")


def _validate_languages(s: ScenarioSpec, where: str) -> None:
    """A monolingual or multilingual scenario: ``languages`` only, and a type its collection supports."""
    if s.pairs:
        raise ConfigError(f"{where}: 'pairs' belong to crosslingual scenarios; use 'languages'")
    if not s.languages:
        raise ConfigError(f"{where}: give 'languages' (a list, or 'all')")
    if s.collection == "local" and s.type != "monolingual":
        raise ConfigError(f"{where}: a local collection is one pool with its own queries; use type 'monolingual' "
                          f"(or 'crosslingual', for collections whose query_lang differs from lang) with "
                          f"'languages' naming the collections (gradrel/local/<name>), or a 'transfer' "
                          f"scenario to train on several datasets at once")
    if s.collection == "afriqa" and s.type == "monolingual":
        raise ConfigError(f"{where}: AfriQA pairs African-language queries with pivot-language passages; "
                          f"use type 'crosslingual' (or 'multilingual' for one model over several languages)")


def _validate_train_configs(cfg: ExperimentConfig) -> None:
    """Plan the experiment: :func:`~._plan.plan` builds the trainer's ``TrainConfig`` of every fine-tuned
    condition, so a bad hyper-parameter (``batch_size: 0``, ``negatives`` outside the grade scale, ...) fails
    here, before any work, as a :class:`ConfigError` naming the condition."""
    plan(cfg)
