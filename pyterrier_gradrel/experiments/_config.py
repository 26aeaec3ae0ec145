"""Declarative experiment configs (``experiments/*.yaml``), validated before anything runs.

A config names one experiment: its scenarios (monolingual, multilingual mixture, cross-lingual), the
τ sweep (+ the graded-aware loss), seeds, training-data fractions, grade-noise rates, the training
hyper-parameters, the baselines, the measures, and the significance / bootstrap / calibration settings.
:func:`load_config` reads and validates it; every error names what was allowed, e.g.
``unknown language 'xx' for xquad-r: expected one of [ar, de, ...]``.

Example::

    name: quickstart
    scenarios:
      - {type: monolingual, collection: xquad-r, languages: [en, th]}
      - {type: crosslingual, collection: xquad-r, pairs: [[de, en]]}
    thresholds: [1, 2, 3]
    graded_loss: true
    seeds: [0]
    training: {epochs: 1, max_steps: 40}
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyterrier_gradrel.experiments._measures import MeasureSpec, parse_measures

SCENARIOS = ("monolingual", "multilingual", "crosslingual")
COLLECTIONS = ("xquad-r", "afriqa", "local")
SPLITS = ("train", "dev", "test")
BASELINES = ("BM25", "mE5-zero-shot", "BM25>>mE5", "RRF(BM25,mE5)")
TESTS = ("t", "wilcoxon", "permutation")
CORRECTIONS = ("holm", "bonferroni", "bh", "none")
BOOTSTRAP_UNITS = ("article", "query")
#: `training:` keys that are not TrainConfig fields: where training runs (never part of a run key)
RUNTIME_TRAINING_KEYS = ("device",)
# TrainConfig fields that the sweep itself sets per condition; a config may not fix them in `training:`
SWEEP_KEYS = ("rel", "seed", "fraction", "noise", "loss")

XQUAD_R_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
# Observed in the AfriQA release (gold passages per language and split); used only when the datasets
# module is not importable. Queries of fon/wol are in French, all others against English passages.
_AFRIQA_FALLBACK_SPLITS = {
    "bem": SPLITS, "fon": SPLITS, "hau": SPLITS, "ibo": SPLITS, "kin": SPLITS, "twi": SPLITS, "zul": SPLITS,
    "swa": ("test",), "yor": ("train", "test"),
}
_TOP_KEYS = {
    "name", "description", "scenarios", "thresholds", "graded_loss", "seeds", "fractions", "noise_rates",
    "training", "base_model", "baselines", "measures", "significance", "calibration", "limit_queries",
    "keep_models", "note", "run_depth",
}


class ConfigError(ValueError):
    """A config is invalid; the message says where and what was expected."""


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario of an experiment.

    Attributes:
        type: ``monolingual`` | ``multilingual`` | ``crosslingual``.
        collection: ``xquad-r`` | ``afriqa`` | ``local`` (your own or an LLM-judged collection,
            ``gradrel/local/<name>``; then ``languages`` names the collections and the type is monolingual).
        languages: monolingual: one model per language; multilingual: the union trained once;
            crosslingual AfriQA: the query languages (passages in the pivot language).
        pairs: crosslingual XQuAD-R ``(qlang, dlang)`` pairs.
        translated_control: AfriQA only: also test on the human-translated queries (``<lang>-translated``).
        multi_pool: multilingual XQuAD-R only: also test on the ``multi`` pool.
    """

    type: str
    collection: str
    languages: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    translated_control: bool = True
    multi_pool: bool = True

    @property
    def name(self) -> str:
        """A short, file-safe name, e.g. ``monolingual-xquad-r``."""
        return f"{self.type}-{self.collection}"


@dataclass(frozen=True)
class SignificanceSpec:
    """How fine-tuned systems are compared with each baseline.

    Attributes:
        test: ``t`` (paired t-test), ``wilcoxon`` (signed-rank) or ``permutation`` (paired sign-flip).
        correction: ``holm`` (Holm-Bonferroni, default), ``bonferroni``, ``bh`` (Benjamini-Hochberg) or ``none``.
        alpha: the family-wise (or FDR, for ``bh``) level.
        bootstrap_samples: resamples of the cluster bootstrap.
        bootstrap_unit: ``article`` (resample whole articles) or ``query``.
        confidence: the bootstrap interval's coverage.
        permutations: resamples of the permutation test.
        random_seed: seeds the bootstrap and permutation resampling.
    """

    test: str = "t"
    correction: str = "holm"
    alpha: float = 0.05
    bootstrap_samples: int = 1000
    bootstrap_unit: str = "article"
    confidence: float = 0.95
    permutations: int = 10000
    random_seed: int = 0


@dataclass(frozen=True)
class CalibrationSpec:
    """Choosing τ per language on dev.

    Attributes:
        enabled: evaluate fine-tuned models on the dev split too and report the chosen τ.
        measure: the label (see :mod:`._measures`) that picks τ; defaults to the primary measure.
    """

    enabled: bool = True
    measure: str | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment config (see the module docstring)."""

    name: str
    scenarios: tuple[ScenarioSpec, ...]
    thresholds: tuple[int, ...] = (1, 2, 3)
    graded_loss: bool = True
    seeds: tuple[int, ...] = (0, 1, 2)
    fractions: tuple[float, ...] = (1.0,)
    noise_rates: tuple[float, ...] = (0.0,)
    training: Mapping[str, Any] = field(default_factory=dict)
    base_model: str = "multilingual-e5-small"
    baselines: tuple[str, ...] = ("BM25", "mE5-zero-shot")
    graded_measures: tuple[str, ...] = ("nDCG@10",)
    binary_measures: tuple[str, ...] = ("nDCG@10", "R@100", "RR", "P@10")
    binary_rels: tuple[int, ...] = (1, 2, 3)
    primary_measure: str = "nDCG@10"
    significance: SignificanceSpec = SignificanceSpec()
    calibration: CalibrationSpec = CalibrationSpec()
    limit_queries: int | None = None
    run_depth: int = 100
    keep_models: bool = False
    description: str = ""
    note: str = ""
    source: str | None = None

    @property
    def measures(self) -> list[MeasureSpec]:
        """The expanded measures (graded first)."""
        return parse_measures(graded=self.graded_measures, binary=self.binary_measures, rels=self.binary_rels)

    @property
    def variants(self) -> list[str]:
        """The fine-tuning variants: ``tau=1``, ``tau=2``, ... and ``graded`` when the graded loss is on."""
        return [f"tau={t}" for t in self.thresholds] + (["graded"] if self.graded_loss else [])

    @property
    def device(self) -> str:
        """Where fine-tuning runs: ``training: {device: ...}``, default ``"auto"`` (see ``_device.resolve_device``)."""
        return str(self.training.get("device", "auto"))

    def training_hash(self) -> str:
        """A short hash of the training hyper-parameters and base model (part of every run key).

        The device is left out: it says where a model trains, not what it trains to.
        """
        training = {k: v for k, v in self.training.items() if k not in RUNTIME_TRAINING_KEYS}
        payload = json.dumps({"training": training, "base": self.base_model}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def with_overrides(self, **changes: Any) -> ExperimentConfig:
        """A copy with some fields replaced (e.g. ``limit_queries``), re-validated."""
        data = asdict(self)
        data.update(changes)
        data["scenarios"] = tuple(ScenarioSpec(**s) if isinstance(s, Mapping) else s for s in data["scenarios"])
        data["significance"] = SignificanceSpec(**data["significance"])
        data["calibration"] = CalibrationSpec(**data["calibration"])
        config = ExperimentConfig(**data)
        validate(config)
        return config


# ---------------------------------------------------------------------------------------------------------
# dataset ids and what exists

def dataset_id(collection: str, lang: str, split: str) -> str:
    """The ir_datasets id of ``collection``/``lang``/``split`` (``lang`` may be ``q-d``, ``multi``, ``x-translated``)."""
    return f"gradrel/{collection}/{lang}/{split}"


@dataclass(frozen=True)
class DatasetFacts:
    """What validation needs to know about one dataset id."""

    exists: bool
    grades: tuple[int, ...] = (0, 1, 2, 3)
    reason: str = ""


def dataset_facts(ds_id: str) -> DatasetFacts:
    """Whether ``ds_id`` exists and its grade scale.

    Uses ``pyterrier_gradrel.datasets.info`` when the datasets module is importable; otherwise a built-in
    catalogue of XQuAD-R (12 languages, train/dev/test) and AfriQA (the splits of its release).
    """
    try:
        from pyterrier_gradrel import datasets as _datasets
        info = _datasets.info
    except (ImportError, AttributeError):
        return _fallback_facts(ds_id)
    try:
        facts = info(ds_id)
    except Exception as exc:  # the datasets module says it does not know this id
        return DatasetFacts(exists=False, reason=str(exc))
    grades = tuple(sorted(int(g) for g in getattr(facts, "grades", {0: "", 1: "", 2: "", 3: ""})))
    return DatasetFacts(exists=True, grades=grades)


def _fallback_facts(ds_id: str) -> DatasetFacts:
    parts = ds_id.split("/")
    if len(parts) != 4 or parts[0] != "gradrel":
        return DatasetFacts(exists=False, reason=f"not a gradrel dataset id: {ds_id!r}")
    _, collection, lang, split = parts
    if split not in SPLITS:
        return DatasetFacts(exists=False, reason=f"split {split!r} is not one of {list(SPLITS)}")
    if collection == "xquad-r":
        langs = lang.split("-")
        ok = lang == "multi" or (len(langs) in (1, 2) and all(x in XQUAD_R_LANGS for x in langs))
        return DatasetFacts(exists=ok, reason="" if ok else f"unknown XQuAD-R language {lang!r}")
    if collection == "afriqa":
        base = lang.removesuffix("-translated")
        splits = _afriqa_splits().get(base)
        if splits is None:
            return DatasetFacts(exists=False, reason=f"unknown AfriQA language {base!r}")
        if split not in splits:
            return DatasetFacts(exists=False, reason=f"AfriQA {base} has no {split!r} split (has {list(splits)})")
        return DatasetFacts(exists=True)
    return DatasetFacts(exists=False, reason=f"unknown collection {collection!r}")


def _afriqa_splits() -> dict[str, tuple[str, ...]]:
    mirror = os.environ.get("GRADREL_MIRROR")
    root = Path(mirror) / "afriqa" / "gold_passages" if mirror else None
    if root is None or not root.is_dir():
        return dict(_AFRIQA_FALLBACK_SPLITS)
    out: dict[str, tuple[str, ...]] = {}
    for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        names = [p.name for p in lang_dir.glob("*.json")]
        out[lang_dir.name] = tuple(s for s in SPLITS if any(n.endswith(f".{s}.json") for n in names))
    return out


def _local_names() -> tuple[str, ...]:
    """Names of the local collections found under ``$GRADREL_HOME/collections`` (each with a manifest)."""
    from pyterrier_gradrel.datasets import local_home

    root = local_home()
    return tuple(sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file())) if root.is_dir() else ()


def collection_languages(collection: str) -> tuple[str, ...]:
    """The languages a collection offers (for error messages and ``languages: all``)."""
    if collection == "xquad-r":
        return XQUAD_R_LANGS
    if collection == "afriqa":
        return tuple(sorted(_afriqa_splits()))
    if collection == "local":  # the "languages" of a local scenario are collection names (gradrel/local/<name>)
        return _local_names()
    raise ConfigError(f"unknown collection {collection!r}: expected one of {list(COLLECTIONS)}")


# ---------------------------------------------------------------------------------------------------------
# loading and validation

def load_config(config: str | os.PathLike | Mapping[str, Any] | ExperimentConfig) -> ExperimentConfig:
    """Read (YAML path or mapping) and validate an experiment config.

    Args:
        config: a path to ``experiments/<name>.yaml``, an already parsed mapping, or a config.

    Returns:
        The validated :class:`ExperimentConfig`.

    Raises:
        ConfigError: with a message naming the offending key and the allowed values.
        FileNotFoundError: the path does not exist.
    """
    if isinstance(config, ExperimentConfig):
        validate(config)
        return config
    source = None
    if isinstance(config, (str, os.PathLike)):
        import yaml

        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"no experiment config at {path}")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
        raw = dict(raw)
        raw.setdefault("name", path.stem)
        source = str(path)
    elif isinstance(config, Mapping):
        raw = dict(config)
    else:
        raise TypeError(f"config must be a path, a mapping or an ExperimentConfig, got {type(config).__name__}")
    cfg = _from_mapping(raw, source=source)
    validate(cfg)
    return cfg


def _from_mapping(raw: dict[str, Any], *, source: str | None) -> ExperimentConfig:
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown}: expected some of {sorted(_TOP_KEYS)}")
    if "name" not in raw:
        raise ConfigError("config needs a 'name' (the results folder is named after it)")
    if not raw.get("scenarios"):
        raise ConfigError(f"config {raw['name']!r} needs at least one entry under 'scenarios'")
    scenarios = tuple(_scenario(s, i) for i, s in enumerate(_as_list(raw["scenarios"], "scenarios")))
    measures = raw.get("measures") or {}
    if not isinstance(measures, Mapping):
        raise ConfigError("'measures' must be a mapping with keys graded, binary, rels, primary")
    bad = sorted(set(measures) - {"graded", "binary", "rels", "primary"})
    if bad:
        raise ConfigError(f"unknown key(s) {bad} under 'measures': expected graded, binary, rels, primary")
    sig = raw.get("significance") or {}
    cal = raw.get("calibration") or {}
    try:
        significance = SignificanceSpec(**sig)
    except TypeError as exc:
        raise ConfigError(f"significance: {exc}; allowed keys {sorted(SignificanceSpec.__dataclass_fields__)}") from None
    try:
        calibration = CalibrationSpec(**cal)
    except TypeError as exc:
        raise ConfigError(f"calibration: {exc}; allowed keys {sorted(CalibrationSpec.__dataclass_fields__)}") from None
    training = raw.get("training") or {}
    if not isinstance(training, Mapping):
        raise ConfigError("'training' must be a mapping of TrainConfig hyper-parameters")
    kwargs: dict[str, Any] = dict(
        name=str(raw["name"]),
        scenarios=scenarios,
        thresholds=tuple(_as_list(raw.get("thresholds", [1, 2, 3]), "thresholds")),
        graded_loss=bool(raw.get("graded_loss", True)),
        seeds=tuple(_as_list(raw.get("seeds", [0, 1, 2]), "seeds")),
        fractions=tuple(float(x) for x in _as_list(raw.get("fractions", [1.0]), "fractions")),
        noise_rates=tuple(float(x) for x in _as_list(raw.get("noise_rates", [0.0]), "noise_rates")),
        training=dict(training),
        base_model=str(raw.get("base_model", "multilingual-e5-small")),
        baselines=tuple(_as_list(raw.get("baselines", ["BM25", "mE5-zero-shot"]), "baselines")),
        graded_measures=tuple(_as_list(measures.get("graded", ["nDCG@10"]), "measures.graded")),
        binary_measures=tuple(_as_list(measures.get("binary", ["nDCG@10", "R@100", "RR", "P@10"]), "measures.binary")),
        binary_rels=tuple(_as_list(measures.get("rels", [1, 2, 3]), "measures.rels")),
        primary_measure=str(measures.get("primary", "nDCG@10")),
        significance=significance,
        calibration=calibration,
        limit_queries=raw.get("limit_queries"),
        run_depth=raw.get("run_depth", 100),
        keep_models=bool(raw.get("keep_models", False)),
        description=str(raw.get("description", "")),
        note=str(raw.get("note", "")),
        source=source,
    )
    return ExperimentConfig(**kwargs)


def _as_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{key!r} must be a list, got {value!r}")
    return list(value)


def _scenario(raw: Any, index: int) -> ScenarioSpec:
    where = f"scenarios[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'type' and 'collection', got {raw!r}")
    allowed = {"type", "collection", "languages", "pairs", "translated_control", "multi_pool"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}: expected some of {sorted(allowed)}")
    kind = raw.get("type")
    if kind not in SCENARIOS:
        raise ConfigError(f"{where}: unknown scenario type {kind!r}: expected one of {list(SCENARIOS)}")
    collection = raw.get("collection", "xquad-r")
    if collection not in COLLECTIONS:
        raise ConfigError(f"{where}: unknown collection {collection!r}: expected one of {list(COLLECTIONS)}")
    languages = raw.get("languages", [])
    if languages == "all":
        languages = list(collection_languages(collection))
    languages = tuple(str(x) for x in _as_list(languages, f"{where}.languages"))
    pairs = []
    for pair in _as_list(raw.get("pairs", []), f"{where}.pairs"):
        if isinstance(pair, str) and "-" in pair:
            pair = pair.split("-", 1)
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ConfigError(f"{where}.pairs: each pair must be [qlang, dlang] or 'qlang-dlang', got {pair!r}")
        pairs.append((str(pair[0]), str(pair[1])))
    return ScenarioSpec(
        type=kind, collection=collection, languages=languages, pairs=tuple(pairs),
        translated_control=bool(raw.get("translated_control", True)), multi_pool=bool(raw.get("multi_pool", True)),
    )


def validate(cfg: ExperimentConfig) -> None:
    """Check a config against the datasets and the allowed values; raise :class:`ConfigError` on the first problem."""
    from pyterrier_gradrel.experiments._scenarios import scenario_datasets

    if not cfg.name or any(c in cfg.name for c in "/\\ ") or cfg.name.startswith("."):
        raise ConfigError(f"name must be a plain folder name (no '/', '\\\\', spaces, leading '.'), got {cfg.name!r}")
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
    for f in cfg.fractions:
        if not 0.0 < f <= 1.0:
            raise ConfigError(f"fractions must lie in (0, 1], got {f}")
    for n in cfg.noise_rates:
        if not 0.0 <= n < 1.0:
            raise ConfigError(f"noise_rates must lie in [0, 1), got {n}")
    for b in cfg.baselines:
        if b not in BASELINES:
            raise ConfigError(f"unknown baseline {b!r}: expected some of {list(BASELINES)}")
    bad_keys = sorted(set(cfg.training) & set(SWEEP_KEYS))
    if bad_keys:
        raise ConfigError(
            f"training: {bad_keys} are set by the sweep (thresholds, seeds, fractions, noise_rates, graded_loss); "
            f"remove them from 'training'"
        )
    _validate_training_keys(cfg.training)
    try:
        measures = cfg.measures
    except ValueError as exc:
        raise ConfigError(f"measures: {exc}") from None
    labels = [m.label for m in measures]
    primary = [m for m in measures if m.label == cfg.primary_measure]
    if not primary:
        raise ConfigError(f"unknown primary measure {cfg.primary_measure!r}: expected one of {labels}")
    if cfg.calibration.measure is not None and cfg.calibration.measure not in labels:
        raise ConfigError(f"unknown calibration measure {cfg.calibration.measure!r}: expected one of {labels}")
    sig = cfg.significance
    if sig.test not in TESTS:
        raise ConfigError(f"unknown significance test {sig.test!r}: expected one of {list(TESTS)}")
    if sig.correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {sig.correction!r}: expected one of {list(CORRECTIONS)}")
    if sig.bootstrap_unit not in BOOTSTRAP_UNITS:
        raise ConfigError(f"unknown bootstrap_unit {sig.bootstrap_unit!r}: expected one of {list(BOOTSTRAP_UNITS)}")
    if not 0 < sig.alpha < 1 or not 0 < sig.confidence < 1:
        raise ConfigError(f"alpha and confidence must lie in (0, 1), got {sig.alpha}, {sig.confidence}")
    if sig.bootstrap_samples < 100 or sig.permutations < 100:
        raise ConfigError("bootstrap_samples and permutations must be at least 100")
    cutoffs = [m.cutoff for m in measures if m.cutoff is not None]
    if isinstance(cfg.run_depth, bool) or not isinstance(cfg.run_depth, int) or cfg.run_depth < max(cutoffs, default=1):
        raise ConfigError(f"run_depth must be an integer >= the deepest measure cut-off ({max(cutoffs, default=1)}), "
                          f"got {cfg.run_depth!r}")
    if cfg.limit_queries is not None and (not isinstance(cfg.limit_queries, int) or cfg.limit_queries < 1):
        raise ConfigError(f"limit_queries must be a positive integer or null, got {cfg.limit_queries!r}")

    names = [s.name for s in cfg.scenarios]
    if len(set(names)) != len(names):
        raise ConfigError(f"scenarios must differ in (type, collection); merge the duplicates of {names}")
    for i, scenario in enumerate(cfg.scenarios):
        where = f"scenarios[{i}] ({scenario.type}, {scenario.collection})"
        _validate_scenario_shape(scenario, where)
        plan = scenario_datasets(scenario)
        needed: list[tuple[str, str]] = [(d, "train") for d in plan.train] + [(d, "test") for d in plan.test]
        if cfg.calibration.enabled:
            needed += [(d, "dev") for d in plan.dev.values()]
        for ds_id, role in needed:
            facts = dataset_facts(ds_id)
            if not facts.exists:
                raise ConfigError(f"{where}: missing {role} split {ds_id!r}: {facts.reason or 'not registered'}"
                                  + (" (set 'calibration: {enabled: false}' to run without dev)" if role == "dev" else ""))
            if role == "train":
                allowed = [g for g in facts.grades if g > 0]
                for t in cfg.thresholds:
                    if t not in allowed:
                        raise ConfigError(
                            f"{where}: threshold {t} is outside the grade scale of {ds_id}: rel must be one of {allowed}"
                        )
                for r in cfg.binary_rels:
                    if r not in allowed:
                        raise ConfigError(f"measures.rels: {r} is outside the grade scale of {ds_id}: expected one of {allowed}")


def _validate_scenario_shape(s: ScenarioSpec, where: str) -> None:
    langs = collection_languages(s.collection)
    for lang in list(s.languages) + [x for p in s.pairs for x in p]:
        if lang not in langs:
            raise ConfigError(f"{where}: unknown language {lang!r} for {s.collection}: expected one of {list(langs)}")
    if s.type == "crosslingual":
        if s.collection == "xquad-r":
            if not s.pairs or s.languages:
                raise ConfigError(f"{where}: crosslingual xquad-r takes 'pairs' ([qlang, dlang]), not 'languages'")
            for q, d in s.pairs:
                if q == d:
                    raise ConfigError(f"{where}: pair {q}-{d} is monolingual; use a monolingual scenario")
        elif not s.languages or s.pairs:
            raise ConfigError(f"{where}: crosslingual afriqa takes 'languages' (the query languages), not 'pairs'")
    else:
        if s.pairs:
            raise ConfigError(f"{where}: 'pairs' belong to crosslingual scenarios; use 'languages'")
        if not s.languages:
            raise ConfigError(f"{where}: give 'languages' (a list, or 'all')")
        if s.collection == "local" and s.type != "monolingual":
            raise ConfigError(f"{where}: a local collection is one pool with its own queries; use type 'monolingual' "
                              f"with 'languages' naming the collections (gradrel/local/<name>)")
        if s.collection == "afriqa" and s.type == "monolingual":
            raise ConfigError(f"{where}: AfriQA pairs African-language queries with pivot-language passages; "
                              f"use type 'crosslingual' (or 'multilingual' for one model over several languages)")
    if len(set(s.languages)) != len(s.languages) or len(set(s.pairs)) != len(s.pairs):
        raise ConfigError(f"{where}: languages / pairs must be unique")


def _validate_training_keys(training: Mapping[str, Any]) -> None:
    try:
        from pyterrier_gradrel.training import TrainConfig
    except ImportError:  # the trainer is not there yet: the runner will say so when it needs it
        return
    fields = getattr(TrainConfig, "__dataclass_fields__", None)
    if not fields:
        return
    if not isinstance(training.get("device", "auto"), str):
        raise ConfigError(f"training: device must be 'auto', 'cpu', 'cuda' or a torch device such as 'cuda:1', "
                          f"got {training['device']!r}")
    unknown = sorted(set(training) - set(fields) - set(RUNTIME_TRAINING_KEYS))
    if unknown:
        allowed = sorted((set(fields) | set(RUNTIME_TRAINING_KEYS)) - set(SWEEP_KEYS))
        raise ConfigError(f"training: unknown hyper-parameter(s) {unknown}: expected some of {allowed}")
