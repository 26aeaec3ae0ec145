"""Experiment configs (``experiments/*.yaml``): the schema as pydantic models, read, validated and planned in one pass.

A config names one experiment: its scenarios (monolingual, multilingual mixture, cross-lingual), the
τ sweep (+ the graded-aware loss), seeds, training-data fractions, grade-noise rates, the training
hyper-parameters, the baselines, the measures, and the significance / bootstrap / calibration settings.

:func:`load_config` turns a YAML file or a mapping into an :class:`ExperimentConfig` with one
``ExperimentConfig.model_validate``: each key's type and allowed values (YAML scalars as written: ``"false"`` is
no boolean, ``"16"`` no integer; numbers finite), then what spans keys (the datasets each scenario needs, their
grade scales), then the plan (:func:`._plan.plan`), kept as :attr:`ExperimentConfig.conditions` for the runner.
Every error names the key's location and what was expected, e.g. ``scenarios[0].languages: unknown language 'xx'
for xquad-r: expected one of ['ar', 'de', ...]``. This module imports pydantic: nothing imports it until a config
is read.

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
import functools
import operator
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    create_model,
    field_validator,
    model_validator,
)

from pyterrier_gradrel._device import PRECISION_ALIASES, PRECISIONS
from pyterrier_gradrel._evaluation import MeasureSpec, parse_measures
from pyterrier_gradrel.binarize import NEGATIVE_POLICIES
from pyterrier_gradrel.datasets import GRADES, SPLITS, collection_languages, info
from pyterrier_gradrel.experiments._plan import Condition, Variant, plan
from pyterrier_gradrel.experiments._scenarios import scenario_datasets
from pyterrier_gradrel.retrieval._names import BASELINES, DEFAULT_BASELINES
from pyterrier_gradrel.training._config import SIDES, TrainConfig
from pyterrier_gradrel.training._sampler import UNITS

SCENARIOS = ("monolingual", "multilingual", "crosslingual", "transfer")
COLLECTIONS = ("xquad-r", "afriqa", "local")
TESTS = ("t", "wilcoxon", "permutation")
CORRECTIONS = ("holm", "bonferroni", "bh", "none")
BOOTSTRAP_UNITS = ("article", "query")
# TrainConfig fields that the sweep itself sets per condition; a config may not fix them in `training:`
SWEEP_KEYS = ("rel", "seed", "fraction", "noise", "loss")
# TrainConfig fields that the training datasets set (their grade scale); a config may not set them either
DATASET_KEYS = ("grades",)
_TRANSFER_KEYS = ("type", "train", "test", "label")


class ConfigError(ValueError):
    """A config is invalid; the message says where and what was expected."""


# ---------------------------------------------------------------------------------------------------------
# value types: YAML scalars are taken as written, numbers are finite

Bool = Annotated[bool, Strict()]
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]
Str = Annotated[str, Strict()]


def _keep_int(value: Any, handler: Any) -> Any:
    """A finite number; an int stays an int (``warmup: 100`` reaches ``TrainConfig`` as written)."""
    out = handler(value)
    return value if type(value) is int else out


Number = Annotated[float, Strict(), AllowInfNan(False), WrapValidator(_keep_int)]


def _unique(values: tuple) -> tuple:
    repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
    if repeated:  # a repeated threshold, seed, fraction, ... would plan the same runs twice
        raise ValueError(f"must be unique, got {list(values)} ({repeated} repeated)")
    return values


def _rule(ok: Callable[[Any], Any], expected: str) -> AfterValidator:
    """A check of one value: ``expected`` says what a value must be (``must be at least 100``)."""
    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(f"{expected}, got {list(value) if isinstance(value, tuple) else value!r}")
        return value
    return AfterValidator(check)


def _expect(expected: str) -> WrapValidator:
    """One message, naming ``expected``, for a value that none of a union's types takes."""
    def wrap(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"expected {expected}, got {value!r}") from None
    return WrapValidator(wrap)


def _pair(value: Any) -> Any:
    """``'de-en'`` or ``[de, en]``: a (query language, document language) pair."""
    if isinstance(value, str) and "-" in value:
        return tuple(value.split("-", 1))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(value)
    raise ValueError(f"expected [qlang, dlang] or 'qlang-dlang', got {value!r}")


_RELS = [g for g in GRADES if g > 0]
Unique = AfterValidator(_unique)
NotEmpty = _rule(len, "expected at least one entry")
Positive = Annotated[Int, _rule(lambda x: x >= 1, "must be at least 1")]
Probability = Annotated[Float, _rule(lambda x: 0 < x < 1, "must lie in (0, 1)")]
Resamples = Annotated[Int, _rule(lambda x: x >= 100, "must be at least 100")]
Rel = Annotated[Int, _rule(lambda r: r in _RELS, f"must be a relevance level, one of {_RELS} (the minimum grade counted "
                                                  f"relevant)")]
Pair = Annotated[tuple[Str, Str], BeforeValidator(_pair)]
# dataset ids: a list, or one id alone
DatasetIds = Annotated[tuple[Str, ...], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]
FolderName = Annotated[Str, _rule(lambda n: re.fullmatch(r"[^/\\ .][^/\\ ]*", n),
                                  "must be a plain folder name (no '/', '\\', spaces, leading '.')")]
Label = Annotated[Str, _rule(lambda s: re.fullmatch(r"[A-Za-z0-9_.+-]*", s),
                             "must be letters, digits, '_', '.', '+' or '-'")]


# ---------------------------------------------------------------------------------------------------------
# the schema

class _Section(BaseModel):
    """A mapping of the config: frozen, unknown keys refused with the keys it takes named."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    _noun: ClassVar[str] = "key"

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            keys = cls._keys(data)
            unknown = sorted(str(k) for k in data if k not in keys)
            if unknown:
                raise ValueError(f"unknown {cls._noun}(s) {unknown}: expected some of {sorted(keys)}")
        return data

    @classmethod
    def _keys(cls, data: Mapping) -> set[str]:
        """The keys this section takes from ``data``."""
        return {f.alias or name for name, f in cls.model_fields.items()}


class ScenarioSpec(_Section):
    """One scenario of an experiment (``scenarios[]``)."""

    type: Literal[SCENARIOS]
    """``monolingual`` | ``multilingual`` | ``crosslingual`` | ``transfer``."""
    collection: Literal[COLLECTIONS] = "xquad-r"
    """``xquad-r`` | ``afriqa`` | ``local`` (your own or an LLM-judged collection, ``gradrel/local/<name>``; then
    ``languages`` names the collections, each trained on its own train split and tested on its test split, under
    type monolingual or crosslingual, which a collection with ``query_lang`` != ``lang`` is); not for ``transfer``."""
    languages: Annotated[tuple[Str, ...], Unique] = ()
    """monolingual: one model per language; multilingual: the union trained once; crosslingual AfriQA: the query
    languages (passages in the pivot language); ``all``: every language of the collection."""
    pairs: Annotated[tuple[Pair, ...], Unique] = ()
    """crosslingual XQuAD-R ``[qlang, dlang]`` pairs (or ``qlang-dlang``)."""
    translated_control: Bool = True
    """AfriQA only: also test on the human-translated queries (``<lang>-translated``)."""
    multi_pool: Bool = True
    """multilingual XQuAD-R only: also test on the ``multi`` pool."""
    train: DatasetIds = ()
    """transfer only: the training dataset ids (``.../train``; one id may stand alone), trained as one union."""
    test: DatasetIds = ()
    """transfer only: the test dataset ids (``.../test``)."""
    label: Label = ""
    """transfer only: names the scenario (``transfer-<label>``); default derived from the ids."""

    @classmethod
    def _keys(cls, data: Mapping) -> set[str]:
        if data.get("type") == "transfer":
            return set(_TRANSFER_KEYS)
        return super()._keys(data) - set(_TRANSFER_KEYS[1:])

    @field_validator("languages", mode="before")
    @classmethod
    def _all_languages(cls, value: Any, info: ValidationInfo) -> Any:
        return collection_languages(info.data["collection"]) if value == "all" and "collection" in info.data else value

    @field_validator("languages", "pairs")
    @classmethod
    def _known_languages(cls, value: tuple, info: ValidationInfo) -> tuple:
        if "collection" in info.data and info.data.get("type") != "transfer":
            known = collection_languages(info.data["collection"])
            for lang in (x for item in value for x in ((item,) if isinstance(item, str) else item)):
                if lang not in known:
                    raise ValueError(f"unknown language {lang!r} for {info.data['collection']}: "
                                     f"expected one of {list(known)}")
        return value

    @field_validator("train", "test")
    @classmethod
    def _split_ids(cls, ids: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """Each id of the role's split: ``gradrel/local/mine`` → ``gradrel/local/mine/<role>``."""
        role, out = info.field_name, []
        for v in ids:
            if not v.startswith("gradrel/"):
                raise ValueError(f"expected gradrel dataset ids, got {v!r}")
            last = v.rstrip("/").rsplit("/", 1)[-1]
            if last in SPLITS and last != role:
                raise ValueError(f"{v!r} is a {last} split; {role} takes .../{role} ids")
            out.append(v.rstrip("/") if last == role else f"{v.rstrip('/')}/{role}")
        return _unique(tuple(out))

    @model_validator(mode="after")
    def _shape(self) -> ScenarioSpec:
        """The keys the scenario's type and collection need."""
        if self.type == "transfer":
            if not self.train or not self.test:
                raise ValueError("a transfer scenario needs 'train' and 'test': dataset ids such as "
                                 "gradrel/xquad-r/de/train or gradrel/local/<name>/test")
        elif self.type == "crosslingual":
            _check_crosslingual(self)
        else:
            _check_languages(self)
        return self

    @property
    def name(self) -> str:
        """A short, file-safe name, e.g. ``monolingual-xquad-r`` or ``transfer-xquad-r.de-to-local.mine``."""
        if self.type == "transfer":
            return "transfer-" + (self.label or f"{_short(self.train)}-to-{_short(self.test)}")
        return f"{self.type}-{self.collection}"


def _short(ids: Sequence[str]) -> str:
    """``gradrel/xquad-r/de/train`` → ``xquad-r.de``; several ids joined by ``+``."""
    return "+".join(".".join(i.split("/")[1:-1]) for i in ids)


def _check_crosslingual(s: ScenarioSpec) -> None:
    if s.collection == "xquad-r":
        if not s.pairs or s.languages:
            raise ValueError("crosslingual xquad-r takes 'pairs' ([qlang, dlang]), not 'languages'")
        for q, d in s.pairs:
            if q == d:
                raise ValueError(f"pair {q}-{d} is monolingual; use a monolingual scenario")
    elif not s.languages or s.pairs:
        what = "the collections (gradrel/local/<name>)" if s.collection == "local" else "the query languages"
        raise ValueError(f"crosslingual {s.collection} takes 'languages' ({what}), not 'pairs'")


def _check_languages(s: ScenarioSpec) -> None:
    """A monolingual or multilingual scenario: ``languages`` only, and a type its collection supports."""
    if s.pairs:
        raise ValueError("'pairs' belong to crosslingual scenarios; use 'languages'")
    if not s.languages:
        raise ValueError("give 'languages' (a list, or 'all')")
    if s.collection == "local" and s.type != "monolingual":
        raise ValueError("a local collection is one pool with its own queries; use type 'monolingual' (or "
                         "'crosslingual', for collections whose query_lang differs from lang) with 'languages' "
                         "naming the collections (gradrel/local/<name>), or a 'transfer' scenario to train on "
                         "several datasets at once")
    if s.collection == "afriqa" and s.type == "monolingual":
        raise ValueError("AfriQA pairs African-language queries with pivot-language passages; use type "
                         "'crosslingual' (or 'multilingual' for one model over several languages)")


class MeasuresSpec(_Section):
    """The measures every run is scored with (``measures:``)."""

    graded: Annotated[tuple[Str, ...], Unique] = ("nDCG@10",)
    """measures evaluated with gains 2^g - 1 over the grades."""
    binary: Annotated[tuple[Str, ...], Unique] = ("nDCG@10", "R@100", "RR", "P@10")
    """measures evaluated at each evaluation threshold of ``measures.rels``."""
    rels: Annotated[tuple[Rel, ...], Unique] = (1, 2, 3)
    """the evaluation thresholds (minimum grade counted relevant) of the binary measures."""
    primary: Str = "nDCG@10"
    """the measure that tables, significance and calibration use, a graded measure's name or a binary one's label."""

    @field_validator("graded", "binary")
    @classmethod
    def _known(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        parse_measures(**{"graded": (), "binary": (), "rels": (1,), info.field_name: names})
        return names


class SignificanceSpec(_Section):
    """How fine-tuned systems are compared with each baseline (``significance:``)."""

    test: Literal[TESTS] = "t"
    """``t`` (paired t-test), ``wilcoxon`` (signed-rank) or ``permutation`` (paired sign-flip)."""
    correction: Literal[CORRECTIONS] = "holm"
    """``holm`` (Holm-Bonferroni, default), ``bonferroni``, ``bh`` (Benjamini-Hochberg) or ``none``."""
    alpha: Probability = 0.05
    """the family-wise (or FDR, for ``bh``) level."""
    bootstrap_samples: Resamples = 1000
    """resamples of the cluster bootstrap."""
    bootstrap_unit: Literal[BOOTSTRAP_UNITS] = "article"
    """``article`` (resample whole articles) or ``query``."""
    confidence: Probability = 0.95
    """the bootstrap interval's coverage."""
    permutations: Resamples = 10000
    """resamples of the permutation test."""
    random_seed: Int = 0
    """seeds the bootstrap and permutation resampling."""


class CalibrationSpec(_Section):
    """Choosing τ per language on dev (``calibration:``)."""

    enabled: Bool = True
    """evaluate fine-tuned models on the dev split too and report the chosen τ."""
    measure: Str | None = None
    """the label (see :mod:`pyterrier_gradrel._evaluation`) that picks τ; defaults to the primary measure."""


class _Training(_Section):
    """``training:``: the :class:`~pyterrier_gradrel.training.TrainConfig` fields a config may set, and ``device``."""

    _noun: ClassVar[str] = "hyper-parameter"

    @classmethod
    def _keys(cls, data: Mapping) -> set[str]:
        swept = sorted(set(data) & set(SWEEP_KEYS))
        if swept:
            raise ValueError(f"{swept} are set by the sweep (thresholds, seeds, fractions, noise_rates, graded_loss); "
                             f"remove them from 'training'")
        from_data = sorted(set(data) & set(DATASET_KEYS))
        if from_data:
            raise ValueError(f"{from_data}: the grade scale comes from the training datasets (their registry entry or "
                             f"a local collection's manifest); remove it from 'training'")
        return super()._keys(data)

    def given(self) -> dict[str, object]:
        """The keys the config sets, as written (the ``TrainConfig`` defaults are not repeated)."""
        return self.model_dump(exclude_unset=True)


_STRICT = {bool: Bool, int: Int, float: Number, str: Str}
# training fields whose YAML values are narrower than their TrainConfig type says
_TRAINING_TYPES: dict[str, Any] = {
    "negatives": Annotated[Literal[NEGATIVE_POLICIES] | Int,
                           _expect(f"one of {list(NEGATIVE_POLICIES)} or an integer (the highest negative grade)")],
    "grade_weights": Annotated[dict[Int, Number] | tuple[tuple[Int, Number], ...] | None,
                               _expect("a mapping grade: weight, a list of [grade, weight] pairs or null")],
    "unit": Literal[UNITS],
    "precision": Literal[(*PRECISIONS, *PRECISION_ALIASES)],
    "side": Literal[SIDES],
    "device": Annotated[Str, _expect("'auto', 'cpu', 'cuda' or a torch device such as 'cuda:1'")],
}


def _strict(hint: Any) -> Any:
    """A TrainConfig field type with YAML scalars taken strictly (``tuple[int, ...]`` → ``tuple[Int, ...]``)."""
    args = typing.get_args(hint)
    if not args:
        return _STRICT.get(hint, hint)
    inner = tuple(a if a is Ellipsis else _strict(a) for a in args)
    if typing.get_origin(hint) in (Union, types.UnionType):
        return functools.reduce(operator.or_, inner)
    return typing.get_origin(hint)[inner]


def _training_spec() -> type[_Training]:
    """The ``training:`` model, made from :class:`TrainConfig`'s fields (defaults and descriptions included), less
    the sweep's keys and the datasets' ``grades``, with ``exclude_own_article`` defaulting to ``None`` (the
    training datasets' rule, resolved by the plan), plus ``device`` (where a model trains, never part of a run
    key)."""
    hints, docs = typing.get_type_hints(TrainConfig), TrainConfig.field_descriptions()
    fields: dict[str, Any] = {
        f.name: (_TRAINING_TYPES.get(f.name, _strict(hints[f.name])), Field(f.default, description=docs[f.name]))
        for f in dataclasses.fields(TrainConfig) if f.name not in (*SWEEP_KEYS, *DATASET_KEYS)}
    fields["exclude_own_article"] = (Annotated[Bool | None, _expect("true, false or null")], Field(None, description=(
        "draw unjudged hard negatives from outside the query's article; null (default): the training datasets' "
        "rule, as in gradrel train: true for structure-derived grades (XQuAD-R, AfriQA), false for judged ones "
        "(a local collection without 'structural: true')")))
    fields["device"] = (_TRAINING_TYPES["device"], Field("auto", description=(
        "where fine-tuning runs: auto (CUDA when available, else CPU), cpu, cuda or a torch device such as cuda:1; "
        "never part of a run key")))
    return create_model("TrainingSpec", __base__=_Training, __module__=__name__, __doc__=_Training.__doc__, **fields)


TrainingSpec = _training_spec()


def _distinct_scenarios(scenarios: tuple[ScenarioSpec, ...]) -> tuple[ScenarioSpec, ...]:
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ValueError(f"must differ in (type, collection), transfer ones in their ids or label; merge the "
                         f"duplicates of {names}")
    return scenarios


class ExperimentConfig(_Section):
    """A validated experiment config and its plan; each field is the YAML key of that name."""

    _noun: ClassVar[str] = "config key"

    name: FolderName
    """names the results folder (``experiments/results/<name>``); default: the YAML file's stem."""
    scenarios: Annotated[tuple[ScenarioSpec, ...], NotEmpty, AfterValidator(_distinct_scenarios)]
    """what is trained and tested (``scenarios[]`` keys below); at least one."""
    thresholds: Annotated[tuple[Int, ...], Unique] = (1, 2, 3)
    """the τ sweep: one InfoNCE model per τ, positives at grade >= τ."""
    graded_loss: Bool = True
    """also train one model with the grade-weighted multi-positive loss."""
    seeds: Annotated[tuple[Int, ...], NotEmpty, Unique] = (0, 1, 2)
    """one model per seed and variant."""
    fractions: Annotated[tuple[Annotated[Float, _rule(lambda f: 0 < f <= 1, "must lie in (0, 1]")], ...], Unique] = (1.0,)
    """fractions of the training queries kept (nested, stratified by language; a language's order is seeded by its
    position among the training set's languages, so its subset differs between training sets)."""
    noise_rates: Annotated[tuple[Annotated[Float, _rule(lambda n: 0 <= n < 1, "must lie in [0, 1)")], ...], Unique] = (0.0,)
    """grade-noise rates: the probability that a judged grade is replaced by a random other grade (a grade replaced
    by 0 stays a judged grade-0 pair: a hard negative exempt from the own-article rule)."""
    training: TrainingSpec = TrainingSpec()
    """the trainer's hyper-parameters (``training.*`` keys below)."""
    base_model: Str = "multilingual-e5-small"
    """the encoder fine-tuned and evaluated zero-shot (a name, hub id or folder)."""
    baselines: Annotated[tuple[Literal[BASELINES], ...], Unique] = DEFAULT_BASELINES
    """the baselines evaluated beside the fine-tuned models."""
    measures_spec: MeasuresSpec = Field(MeasuresSpec(), alias="measures")
    """the measures (``measures.*`` keys below)."""
    significance: SignificanceSpec = SignificanceSpec()
    """how fine-tuned models are compared with the baselines (``significance.*`` keys below)."""
    calibration: CalibrationSpec = CalibrationSpec()
    """choosing τ on dev (``calibration.*`` keys below)."""
    limit_queries: Annotated[Positive | None, _expect("a positive integer or null")] = None
    """use only the first N queries of every dataset, training and test (smoke runs; part of the run keys)."""
    run_depth: Positive = 100
    """results kept per query (at least the deepest measure cut-off)."""
    keep_models: Bool = False
    """save each fine-tuned model in its run folder (``model/``; ~0.5 GB for mE5-small)."""
    description: Str = ""
    """free text shown at the top of the report."""
    note: Str = ""
    """free text shown in the report."""

    _conditions: tuple[Condition, ...] = PrivateAttr(default=())
    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_and_plan(self) -> ExperimentConfig:
        """What spans keys (the datasets each scenario needs and their grade scales, the measures other keys name),
        then the plan, made here once: a hyper-parameter the trainer refuses fails now, naming the condition."""
        if not self.thresholds and not self.graded_loss:
            raise ValueError("nothing to fine-tune: give 'thresholds' (e.g. [1, 2, 3]) and/or 'graded_loss: true'")
        labels = [m.label for m in self.measures]
        for key, label in (("measures.primary", self.primary_measure),
                           ("calibration.measure", self.calibration.measure)):
            if label is not None and label not in labels:
                raise ValueError(f"{key}: unknown measure {label!r}: expected one of {labels}")
        deepest = max((m.cutoff for m in self.measures if m.cutoff is not None), default=1)
        if self.run_depth < deepest:
            raise ValueError(f"run_depth: must be at least the deepest measure cut-off ({deepest}), got {self.run_depth}")
        for i, scenario in enumerate(self.scenarios):
            self._check_datasets(i, scenario)
        self._conditions = tuple(plan(self))
        return self

    def _check_datasets(self, index: int, scenario: ScenarioSpec) -> None:
        """Every dataset the scenario needs exists; thresholds and rels fit its training grade scale, which the
        training datasets of one model share."""
        where, sp = f"scenarios[{index}] ({scenario.name})", scenario_datasets(scenario)
        needed = [(d, "train") for d in sp.train] + [(d, "test") for d in sp.test]
        needed += [(d, "dev") for d in sp.dev] if self.calibration.enabled else []
        for ds_id, role in needed:
            try:
                facts = info(ds_id)
            except Exception as exc:  # the datasets module says it does not know this id
                hint = " (set 'calibration: {enabled: false}' to run without dev)" if role == "dev" else ""
                raise ValueError(f"{where}: missing {role} split {ds_id!r}: {str(exc) or 'not registered'}{hint}") from None
            if role == "train":
                self._check_grade_scale(ds_id, facts.grade_scale, f"scenarios[{index}]")
        for group in sp.groups:
            scales = {d: info(d).grade_scale for d in group.train}
            if len(set(scales.values())) > 1:
                raise ValueError(f"{where}: the training datasets of one model must share a grade scale, got "
                                 + ", ".join(f"{d}: {list(g)}" for d, g in scales.items()))

    def _check_grade_scale(self, ds_id: str, grades: tuple[int, ...], where: str) -> None:
        allowed = [g for g in grades if g > 0]
        for key, noun, values in (("thresholds", "threshold", self.thresholds),
                                  ("measures.rels", "rel", self.measures_spec.rels)):
            for j, value in enumerate(values):
                if value not in allowed:
                    raise ValueError(f"{key}[{j}]: {noun} {value} is outside the grade scale of {ds_id} ({where} trains "
                                     f"on it): expected one of {allowed}")

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """The plan (:func:`._plan.plan`: :class:`~._plan.Condition` objects), made once when the config was validated."""
        return self._conditions

    @property
    def source(self) -> str | None:
        """The YAML file the config was read from (``None`` for a mapping)."""
        return self._source

    @property
    def measures(self) -> list[MeasureSpec]:
        """The expanded measures (graded first)."""
        m = self.measures_spec
        return parse_measures(graded=m.graded, binary=m.binary, rels=m.rels)

    @property
    def primary_measure(self) -> str:
        """``measures.primary``."""
        return self.measures_spec.primary

    @property
    def variants(self) -> tuple[Variant, ...]:
        """The fine-tuning variants: one per threshold τ, then the graded loss when it is on."""
        return tuple(Variant(tau=t) for t in self.thresholds) + ((Variant(tau=None),) if self.graded_loss else ())

    @property
    def hyperparameters(self) -> dict[str, object]:
        """The ``training:`` entries the config sets that are ``TrainConfig`` fields (the device says where a model
        trains, not what it trains to)."""
        return {k: v for k, v in self.training.given().items() if k != "device"}

    def with_overrides(self, **changes: object) -> ExperimentConfig:
        """This config with some top-level keys replaced (e.g. ``limit_queries``), validated and planned anew."""
        return _validated({**self.model_dump(by_alias=True, exclude_unset=True), **changes}, self.source)


# ---------------------------------------------------------------------------------------------------------
# reading

def load_config(config: str | os.PathLike | Mapping[str, object] | ExperimentConfig,
                **overrides: object) -> ExperimentConfig:
    """Read, validate and plan an experiment config, in one pass.

    Args:
        config: a path to ``experiments/<name>.yaml``, an already parsed mapping, or a config.
        **overrides: top-level keys that replace the config's before it is validated (e.g. ``limit_queries=2``).

    Returns:
        The validated :class:`ExperimentConfig`; its :attr:`~ExperimentConfig.conditions` are the plan. A config
        given without overrides is returned as it is (it was validated when it was made).

    Raises:
        ConfigError: one line per problem: the file, the key's location and what was expected.
        FileNotFoundError: the path does not exist.
    """
    if isinstance(config, ExperimentConfig):
        return config.with_overrides(**overrides) if overrides else config
    source = None
    if isinstance(config, (str, os.PathLike)):
        from pyterrier_gradrel._yaml import YAMLFileError, load_file

        path = source = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"no experiment config at {path}")
        try:
            raw = load_file(path) or {}
        except YAMLFileError as exc:  # not UTF-8, not YAML, or a key written twice: file and line named
            raise ConfigError(str(exc)) from None
        raw = {"name": path.stem, **raw} if isinstance(raw, Mapping) else raw
    elif isinstance(config, Mapping):
        raw = dict(config)
    else:
        raise TypeError(f"config must be a path, a mapping or an ExperimentConfig, got {type(config).__name__}")
    return _validated({**raw, **overrides} if overrides else raw, None if source is None else str(source))


def _validated(raw: object, source: str | None) -> ExperimentConfig:
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        head = f"{source}: " if source else ""
        raise ConfigError("\n".join(head + _problem(e) for e in exc.errors(include_url=False))) from None
    cfg._source = source
    return cfg


_EXPECTED = {"bool_type": "true or false (an unquoted YAML boolean)", "int_type": "an integer",
             "float_type": "a finite number", "finite_number": "a finite number", "string_type": "a string",
             "tuple_type": "a list", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
             "model_attributes_type": "a mapping"}


def _problem(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``<the key's location>: <what was expected>, got <the value>``."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    kind, ctx, got = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in ("value_error", "assertion_error"):
        text = str(ctx["error"])
    elif kind == "literal_error":
        text = f"expected one of {ctx['expected']}, got {got!r}"
    elif kind == "missing":
        text = "missing: this key is required"
    else:
        text = f"expected {_EXPECTED[kind]}, got {got!r}" if kind in _EXPECTED else f"{error['msg']}, got {got!r}"
    return f"{where}: {text}" if where else text
