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

A ``transfer`` scenario names its datasets itself: one model per variant trained on (the union of) ``train``
and tested on every ``test`` id, e.g. fine-tune on XQuAD-R German and test on a local collection::

      - {type: transfer, train: [gradrel/xquad-r/de/train], test: [gradrel/local/mine/test], label: de-to-mine}
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyterrier_gradrel._evaluation import MeasureSpec, parse_measures

SCENARIOS = ("monolingual", "multilingual", "crosslingual", "transfer")
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
        data["scenarios"] = tuple(_respec(s) for s in data["scenarios"])
        data["significance"] = SignificanceSpec(**data["significance"])
        data["calibration"] = CalibrationSpec(**data["calibration"])
        config = ExperimentConfig(**data)
        validate(config)
        return config


def _respec(s: Any) -> ScenarioSpec:
    if not isinstance(s, Mapping):
        return s
    s = dict(s)
    for key in ("languages", "train", "test"):
        s[key] = tuple(s.get(key, ()))
    s["pairs"] = tuple(tuple(p) for p in s.get("pairs", ()))
    return ScenarioSpec(**s)


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
    """Names of the local collections: those registered in this process (``register_local``) and the folders
    under ``$GRADREL_HOME/collections`` that look like a collection (``docs.jsonl`` and a
    ``qrels.<split>.txt``; the manifest, ``.yaml`` or ``.json``, is optional)."""
    from pyterrier_gradrel.datasets import local_collections

    return tuple(sorted(local_collections()))


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
        try:
            with open(path, encoding="utf-8") as f:  # a stream, so that YAML's marks name the file
                raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
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
        graded_loss=_bool(raw.get("graded_loss", True), "graded_loss"),
        seeds=tuple(_as_list(raw.get("seeds", [0, 1, 2]), "seeds")),
        fractions=tuple(_number(x, "fractions") for x in _as_list(raw.get("fractions", [1.0]), "fractions")),
        noise_rates=tuple(_number(x, "noise_rates") for x in _as_list(raw.get("noise_rates", [0.0]), "noise_rates")),
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
        keep_models=_bool(raw.get("keep_models", False), "keep_models"),
        description=str(raw.get("description", "")),
        note=str(raw.get("note", "")),
        source=source,
    )
    return ExperimentConfig(**kwargs)


def _bool(value: Any, key: str) -> bool:
    """``value`` if it is a real boolean (YAML ``true``/``false``); a string such as ``"false"`` is an error."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key!r} must be true or false (an unquoted YAML boolean), got {value!r}")
    return value


def _number(value: Any, key: str) -> float:
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


def _check_fields(values: Mapping[str, Any], cls: type, where: str) -> None:
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
        translated_control=_bool(raw.get("translated_control", True), f"{where}.translated_control"),
        multi_pool=_bool(raw.get("multi_pool", True), f"{where}.multi_pool"),
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


def validate(cfg: ExperimentConfig) -> None:
    """Check a config against the datasets and the allowed values; raise :class:`ConfigError` on the first problem."""
    from pyterrier_gradrel.experiments._scenarios import scenario_datasets

    if not cfg.name or any(c in cfg.name for c in "/\\ ") or cfg.name.startswith("."):
        raise ConfigError(f"name must be a plain folder name (no '/', '\\\\', spaces, leading '.'), got {cfg.name!r}")
    for key in ("graded_loss", "keep_models"):
        _bool(getattr(cfg, key), key)
    for key in ("fractions", "noise_rates"):
        for x in getattr(cfg, key):
            _number(x, key)
    _check_fields(asdict(cfg.significance), SignificanceSpec, "significance")
    _check_fields(asdict(cfg.calibration), CalibrationSpec, "calibration")
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
    if cfg.limit_queries is not None and (isinstance(cfg.limit_queries, bool) or not isinstance(cfg.limit_queries, int)
                                          or cfg.limit_queries < 1):
        raise ConfigError(f"limit_queries must be a positive integer or null, got {cfg.limit_queries!r}")

    names = [s.name for s in cfg.scenarios]
    if len(set(names)) != len(names):
        raise ConfigError(f"scenarios must differ in (type, collection), transfer ones in their ids or label; "
                          f"merge the duplicates of {names}")
    for i, scenario in enumerate(cfg.scenarios):
        where = f"scenarios[{i}] ({scenario.type}, {scenario.collection or scenario.name})"
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
        for group in plan.groups:
            scales = {d: dataset_facts(d).grades for d in group.train}
            if len(set(scales.values())) > 1:
                raise ConfigError(f"{where}: the training datasets of one model must share a grade scale, got "
                                  + ", ".join(f"{d}: {list(g)}" for d, g in scales.items()))
    _validate_train_configs(cfg)


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
        if s.collection == "xquad-r":
            if not s.pairs or s.languages:
                raise ConfigError(f"{where}: crosslingual xquad-r takes 'pairs' ([qlang, dlang]), not 'languages'")
            for q, d in s.pairs:
                if q == d:
                    raise ConfigError(f"{where}: pair {q}-{d} is monolingual; use a monolingual scenario")
        elif not s.languages or s.pairs:
            what = "the collections (gradrel/local/<name>)" if s.collection == "local" else "the query languages"
            raise ConfigError(f"{where}: crosslingual {s.collection} takes 'languages' ({what}), not 'pairs'")
    else:
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
    _check_fields(training, TrainConfig, "training")


def _validate_train_configs(cfg: ExperimentConfig) -> None:
    """Build the trainer's ``TrainConfig`` of every planned fine-tuned condition now, so that a bad
    hyper-parameter (``batch_size: 0``, ``negatives`` outside the grade scale, ...) fails before any work."""
    try:
        from pyterrier_gradrel.experiments._runner import train_config
    except ImportError:  # the trainer is not there yet: the runner will say so when it needs it
        return
    from pyterrier_gradrel.experiments._scenarios import plan

    seen: set[tuple[Any, ...]] = set()
    for cond in plan(cfg):
        key = (cond.train, cond.variant, cond.seed, cond.fraction, cond.noise)
        if not cond.fine_tuned or key in seen:
            continue
        seen.add(key)
        try:
            train_config(cond, cfg)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"training: {exc} (in the trainer's config for {cond.describe()})") from None
