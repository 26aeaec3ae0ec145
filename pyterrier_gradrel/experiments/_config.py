"""Declarative experiment configs (``experiments/*.yaml``), validated before anything runs.

A config names one experiment: its scenarios (monolingual, multilingual mixture, cross-lingual), the
τ sweep (+ the graded-aware loss), seeds, training-data fractions, grade-noise rates, the training
hyper-parameters, the baselines, the measures, and the significance / bootstrap / calibration settings.
This module holds the schema, the dataset catalogue the validators consult, and :func:`read_config`
(YAML or mapping → :class:`ExperimentConfig`); ``_validate.load_config`` reads and validates, and every
error names what was allowed, e.g. ``unknown language 'xx' for xquad-r: expected one of [ar, de, ...]``.

Example::

    name: quickstart
    scenarios:
      - {type: monolingual, collection: xquad-r, languages: [en, th]}
      - {type: crosslingual, collection: xquad-r, pairs: [[de, en]]}
    thresholds: [1, 2, 3]
    graded_loss: true
    seeds: [0]
    training: {epochs: 1, max_steps: 40}

A ``transfer`` scenario names its datasets itself: one model per variant trained on (the union of) ``train``
and tested on every ``test`` id, e.g. fine-tune on XQuAD-R German and test on a local collection::

      - {type: transfer, train: [gradrel/xquad-r/de/train], test: [gradrel/local/mine/test], label: de-to-mine}
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyterrier_gradrel._evaluation import MeasureSpec, parse_measures
from pyterrier_gradrel.datasets import GRADES, SPLITS, info
from pyterrier_gradrel.datasets import collection_languages as datasets_collection_languages
from pyterrier_gradrel.retrieval._names import DEFAULT_BASELINES

SCENARIOS = ("monolingual", "multilingual", "crosslingual", "transfer")
COLLECTIONS = ("xquad-r", "afriqa", "local")
TESTS = ("t", "wilcoxon", "permutation")
CORRECTIONS = ("holm", "bonferroni", "bh", "none")
BOOTSTRAP_UNITS = ("article", "query")
#: `training:` keys that are not TrainConfig fields: where training runs (never part of a run key)
RUNTIME_TRAINING_KEYS = ("device",)
# TrainConfig fields that the sweep itself sets per condition; a config may not fix them in `training:`
SWEEP_KEYS = ("rel", "seed", "fraction", "noise", "loss")

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
        type: ``monolingual`` | ``multilingual`` | ``crosslingual`` | ``transfer``.
        collection: ``xquad-r`` | ``afriqa`` | ``local`` (your own or an LLM-judged collection,
            ``gradrel/local/<name>``; then ``languages`` names the collections, each trained on its own train
            split and tested on its test split, under type monolingual or crosslingual, which a collection
            with ``query_lang`` != ``lang`` is); ``""`` for ``transfer``.
        languages: monolingual: one model per language; multilingual: the union trained once;
            crosslingual AfriQA: the query languages (passages in the pivot language).
        pairs: crosslingual XQuAD-R ``(qlang, dlang)`` pairs.
        translated_control: AfriQA only: also test on the human-translated queries (``<lang>-translated``).
        multi_pool: multilingual XQuAD-R only: also test on the ``multi`` pool.
        train: transfer only: the training dataset ids (``.../train``), trained as one union.
        test: transfer only: the test dataset ids (``.../test``).
        label: transfer only: names the scenario (``transfer-<label>``); default derived from the ids.
    """

    type: str
    collection: str
    languages: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    translated_control: bool = True
    multi_pool: bool = True
    train: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    label: str = ""

    @property
    def name(self) -> str:
        """A short, file-safe name, e.g. ``monolingual-xquad-r`` or ``transfer-xquad-r.de-to-local.mine``."""
        if self.type == "transfer":
            return "transfer-" + (self.label or f"{_short(self.train)}-to-{_short(self.test)}")
        return f"{self.type}-{self.collection}"


def _short(ids: Sequence[str]) -> str:
    """``gradrel/xquad-r/de/train`` → ``xquad-r.de``; several ids joined by ``+``."""
    return "+".join(".".join(i.split("/")[1:-1]) for i in ids)


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
        measure: the label (see :mod:`pyterrier_gradrel._evaluation`) that picks τ; defaults to the primary measure.
    """

    enabled: bool = True
    measure: str | None = None


GRADED = "graded"


@dataclass(frozen=True)
class Variant:
    """One fine-tuning variant: InfoNCE with positives at grade >= ``tau``, or the graded loss (``tau=None``).

    τ stays an int from the config to the loss; :attr:`label` (``"tau=2"``, ``"graded"``) names a variant in
    tables and files and is never read back: the per-query frame carries ``tau`` and ``loss`` as typed columns.

    Attributes:
        tau: the binarisation threshold τ, or ``None`` for the graded loss.
    """

    tau: int | None

    @property
    def loss(self) -> str:
        """The trainer's loss: ``"infonce"`` (binarised at τ) or ``"graded"``."""
        return GRADED if self.tau is None else "infonce"

    @property
    def label(self) -> str:
        """How the variant is written to files: ``"tau=<τ>"`` or ``"graded"``."""
        return GRADED if self.tau is None else f"tau={self.tau}"

    @property
    def display(self) -> str:
        """How reports name the variant: ``"τ=<τ>"`` or ``"graded loss"``."""
        return "graded loss" if self.tau is None else f"τ={self.tau}"


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment config (see the module docstring); each attribute is the YAML key of that name.

    Attributes:
        name: names the results folder (``experiments/results/<name>``); default: the YAML file's stem.
        scenarios: what is trained and tested (``scenarios[]`` keys below); at least one.
        thresholds: the τ sweep: one InfoNCE model per τ, positives at grade >= τ.
        graded_loss: also train one model with the grade-weighted multi-positive loss.
        seeds: one model per seed and variant.
        fractions: fractions of the training queries kept (nested, stratified by language).
        noise_rates: grade-noise rates: the probability that a judged grade is replaced by a random other grade.
        base_model: the encoder fine-tuned and evaluated zero-shot (a name, hub id or folder).
        baselines: the baselines evaluated beside the fine-tuned models.
        graded_measures: measures evaluated with gains 2^g - 1 over the grades (``measures.graded``).
        binary_measures: measures evaluated at each evaluation threshold of ``measures.rels`` (``measures.binary``).
        binary_rels: the evaluation thresholds (minimum grade counted relevant) of the binary measures
            (``measures.rels``).
        primary_measure: the measure that tables, significance and calibration use (``measures.primary``), a
            graded measure's name or a binary one's label.
        limit_queries: use only the first N queries of every dataset, training and test (smoke runs; part of the
            run keys).
        run_depth: results kept per query (at least the deepest measure cut-off).
        keep_models: save each fine-tuned model in its run folder (``model/``; ~0.5 GB for mE5-small).
        description: free text shown at the top of the report.
        note: free text shown in the report.
    """

    name: str
    scenarios: tuple[ScenarioSpec, ...]
    thresholds: tuple[int, ...] = (1, 2, 3)
    graded_loss: bool = True
    seeds: tuple[int, ...] = (0, 1, 2)
    fractions: tuple[float, ...] = (1.0,)
    noise_rates: tuple[float, ...] = (0.0,)
    training: Mapping[str, object] = field(default_factory=dict)
    base_model: str = "multilingual-e5-small"
    baselines: tuple[str, ...] = DEFAULT_BASELINES
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
    def variants(self) -> tuple[Variant, ...]:
        """The fine-tuning variants: one per threshold τ, then the graded loss when it is on."""
        return tuple(Variant(tau=t) for t in self.thresholds) + ((Variant(tau=None),) if self.graded_loss else ())

    @property
    def device(self) -> str:
        """Where fine-tuning runs: ``training: {device: ...}``, default ``"auto"`` (see ``_device.resolve_device``)."""
        return str(self.training.get("device", "auto"))

    @property
    def hyperparameters(self) -> dict[str, object]:
        """The ``training:`` entries that are ``TrainConfig`` fields (the device says where a model trains, not
        what it trains to)."""
        return {k: v for k, v in self.training.items() if k not in RUNTIME_TRAINING_KEYS}

    def with_overrides(self, **changes: object) -> ExperimentConfig:
        """A copy with some fields replaced (e.g. ``limit_queries``); ``load_config`` of it validates it."""
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------------------
# dataset ids and what exists

def dataset_id(collection: str, lang: str, split: str) -> str:
    """The ir_datasets id of ``collection``/``lang``/``split`` (``lang`` may be ``q-d``, ``multi``, ``x-translated``)."""
    return f"gradrel/{collection}/{lang}/{split}"


@dataclass(frozen=True)
class DatasetFacts:
    """What validation needs to know about one dataset id."""

    exists: bool
    grades: tuple[int, ...] = GRADES
    reason: str = ""


def dataset_facts(ds_id: str) -> DatasetFacts:
    """Whether ``ds_id`` exists and its grade scale, as :func:`pyterrier_gradrel.datasets.info` says."""
    try:
        facts = info(ds_id)
    except Exception as exc:  # the datasets module says it does not know this id
        return DatasetFacts(exists=False, reason=str(exc))
    return DatasetFacts(exists=True, grades=tuple(sorted(int(g) for g in facts.grades)))


def _local_names() -> tuple[str, ...]:
    """Names of the local collections: those registered in this process (``register_local``) and the folders
    under ``$GRADREL_HOME/collections`` that look like a collection (``docs.jsonl`` and a
    ``qrels.<split>.txt``; the manifest, ``.yaml`` or ``.json``, is optional)."""
    from pyterrier_gradrel.datasets import local_collections

    return tuple(sorted(local_collections()))


def collection_languages(collection: str) -> tuple[str, ...]:
    """The languages a collection offers (for error messages and ``languages: all``)."""
    if collection in ("xquad-r", "afriqa"):
        return datasets_collection_languages(collection)
    if collection == "local":  # the "languages" of a local scenario are collection names (gradrel/local/<name>)
        return _local_names()
    raise ConfigError(f"unknown collection {collection!r}: expected one of {list(COLLECTIONS)}")


# ---------------------------------------------------------------------------------------------------------
# reading

def read_config(config: str | os.PathLike | Mapping[str, object]) -> ExperimentConfig:
    """Read an experiment config (YAML path or mapping) into an :class:`ExperimentConfig`, not yet checked
    against the datasets (``_validate.load_config`` reads and validates).

    Args:
        config: a path to ``experiments/<name>.yaml`` or an already parsed mapping.

    Returns:
        The parsed :class:`ExperimentConfig`.

    Raises:
        ConfigError: with a message naming the offending key and the allowed values.
        FileNotFoundError: the path does not exist.
    """
    source = None
    if isinstance(config, (str, os.PathLike)):
        from pyterrier_gradrel._yaml import YAMLFileError, load_file

        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"no experiment config at {path}")
        try:
            raw = load_file(path) or {}
        except YAMLFileError as exc:  # not UTF-8, not YAML, or a key written twice: file and line named
            raise ConfigError(str(exc)) from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
        raw = dict(raw)
        raw.setdefault("name", path.stem)
        source = str(path)
    elif isinstance(config, Mapping):
        raw = dict(config)
    else:
        raise TypeError(f"config must be a path, a mapping or an ExperimentConfig, got {type(config).__name__}")
    try:
        return _from_mapping(raw, source=source)
    except ConfigError as exc:
        raise in_file(exc, source) from None


def in_file(exc: ConfigError, source: str | None) -> ConfigError:
    """``exc`` with the config file it is about in front of its message (unchanged without a file, or when the
    message already starts with it)."""
    text = str(exc)
    if source is None or text.startswith(source):
        return exc
    return ConfigError(f"{source}: {text}")


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
    for key, value in (("significance", sig), ("calibration", cal)):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key!r} must be a mapping, got {value!r}")
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
        graded_loss=check_bool(raw.get("graded_loss", True), "graded_loss"),
        seeds=tuple(_as_list(raw.get("seeds", [0, 1, 2]), "seeds")),
        fractions=tuple(check_number(x, "fractions") for x in _as_list(raw.get("fractions", [1.0]), "fractions")),
        noise_rates=tuple(check_number(x, "noise_rates") for x in _as_list(raw.get("noise_rates", [0.0]), "noise_rates")),
        training=dict(training),
        base_model=str(raw.get("base_model", "multilingual-e5-small")),
        baselines=tuple(_as_list(raw.get("baselines", list(DEFAULT_BASELINES)), "baselines")),
        graded_measures=tuple(_as_list(measures.get("graded", ["nDCG@10"]), "measures.graded")),
        binary_measures=tuple(_as_list(measures.get("binary", ["nDCG@10", "R@100", "RR", "P@10"]), "measures.binary")),
        binary_rels=tuple(_as_list(measures.get("rels", [1, 2, 3]), "measures.rels")),
        primary_measure=str(measures.get("primary", "nDCG@10")),
        significance=significance,
        calibration=calibration,
        limit_queries=raw.get("limit_queries"),
        run_depth=raw.get("run_depth", 100),
        keep_models=check_bool(raw.get("keep_models", False), "keep_models"),
        description=str(raw.get("description", "")),
        note=str(raw.get("note", "")),
        source=source,
    )
    return ExperimentConfig(**kwargs)


def check_bool(value: Any, key: str) -> bool:
    """``value`` if it is a real boolean (YAML ``true``/``false``); a string such as ``"false"`` is an error."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key!r} must be true or false (an unquoted YAML boolean), got {value!r}")
    return value


def check_number(value: Any, key: str) -> float:
    """``value`` as a float if it is a finite number (not a bool, not a string, not NaN or infinity)."""
    if not _is_finite_number(value):
        raise ConfigError(f"{key!r} must hold finite numbers, got {value!r}")
    return float(value)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    names = {bool: "true or false (an unquoted YAML boolean)", int: "an integer", float: "a finite number",
             str: "a string", type(None): "null"}
    return names.get(hint, str(hint))


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the dataclass field type ``hint`` (scalars strictly; containers: finite numbers)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return _is_finite_number(value)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list):  # e.g. grade_weights (which may also be given as a mapping); the class checks shape
        if isinstance(value, Mapping):
            return all(_is_finite_number(v) for v in value.values())
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            return False
        return all(_is_finite_number(v) or not isinstance(v, float) for v in _flatten(value))
    return True


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    return [value]


def check_fields(values: Mapping[str, Any], cls: type, where: str) -> None:
    """Raise :class:`ConfigError` naming ``where.<key>`` for a value that does not fit ``cls``'s field type."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key in hints and not _matches(value, hints[key]):
            raise ConfigError(f"{where}.{key} must be {_describe(hints[key])}, got {value!r}")


def _as_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{key!r} must be a list, got {value!r}")
    return list(value)


def _scenario(raw: Any, index: int) -> ScenarioSpec:
    where = f"scenarios[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'type' and 'collection', got {raw!r}")
    if raw.get("type") == "transfer":
        return _transfer(raw, where)
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
        translated_control=check_bool(raw.get("translated_control", True), f"{where}.translated_control"),
        multi_pool=check_bool(raw.get("multi_pool", True), f"{where}.multi_pool"),
    )


_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")


def _transfer(raw: Mapping[str, Any], where: str) -> ScenarioSpec:
    """A ``transfer`` scenario: explicit ``train`` and ``test`` dataset ids (a split-less id gets the role's split)."""
    allowed = {"type", "train", "test", "label"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for a transfer scenario: expected some of {sorted(allowed)}")
    ids: dict[str, tuple[str, ...]] = {}
    for role in ("train", "test"):
        value = raw.get(role)
        values = [value] if isinstance(value, str) else _as_list(value if value is not None else [], f"{where}.{role}")
        if not values:
            raise ConfigError(f"{where}: a transfer scenario needs '{role}': dataset ids such as "
                              f"gradrel/xquad-r/de/{role} or gradrel/local/<name>/{role}")
        out = []
        for v in values:
            if not isinstance(v, str) or not v.startswith("gradrel/"):
                raise ConfigError(f"{where}.{role}: expected gradrel dataset ids, got {v!r}")
            last = v.rstrip("/").rsplit("/", 1)[-1]
            if last in SPLITS and last != role:
                raise ConfigError(f"{where}.{role}: {v!r} is a {last} split; {role} takes .../{role} ids")
            out.append(v.rstrip("/") if last == role else f"{v.rstrip('/')}/{role}")
        if len(set(out)) != len(out):
            raise ConfigError(f"{where}.{role}: dataset ids must be unique, got {out}")
        ids[role] = tuple(out)
    label = raw.get("label", "")
    if not isinstance(label, str) or (label and not set(label) <= _LABEL_CHARS):
        raise ConfigError(f"{where}.label must be letters, digits, '_', '.', '+' or '-', got {label!r}")
    return ScenarioSpec(type="transfer", collection="", train=ids["train"], test=ids["test"], label=label)
