"""Every key of an experiment config as rows (key, type, default, allowed values, description), read from the schema.

:func:`config_keys` is the one function the reference docs (``pt_docs/config.rst``) are generated from. It reads
the schema where it lives: the dataclasses of :mod:`._config` (:class:`~._config.ExperimentConfig`,
:class:`~._config.ScenarioSpec`, :class:`~._config.SignificanceSpec`, :class:`~._config.CalibrationSpec`) and
:class:`~pyterrier_gradrel.training.TrainConfig` for ``training:``; defaults are what :func:`~._config.read_config`
makes of a config that omits the key, descriptions the ``Attributes:`` sections of those classes' docstrings.
It fails when a key the reader accepts has no row, so the reference cannot fall behind the reader.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigKey", "config_keys"]


@dataclass(frozen=True)
class ConfigKey:
    """One key of an experiment config.

    Attributes:
        key: the dotted YAML path, e.g. ``significance.test`` or ``scenarios[].type``.
        type: the value's type as written in YAML, e.g. ``list of int``.
        default: the value a config that omits the key gets, as YAML (``""`` when the key is required).
        allowed: the allowed values, comma-separated (``""``: any value of the type).
        description: what the key means (from the schema's docstrings).
    """

    key: str
    type: str
    default: str
    allowed: str
    description: str


# ExperimentConfig fields that YAML spells as a nested key
_YAML_NAMES = {"graded_measures": "measures.graded", "binary_measures": "measures.binary",
               "binary_rels": "measures.rels", "primary_measure": "measures.primary"}
# ExperimentConfig fields that are not config keys (where the config was read from)
_NOT_KEYS = ("source",)
# fields whose values expand into sections of their own below
_SECTIONS = ("scenarios", "training", "significance", "calibration")


def _yaml(value: Any) -> str:
    """``value`` as it would be written in a YAML config."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _type_name(hint: Any) -> str:
    """A type hint as a YAML reader names it: ``tuple[int, ...]`` → ``list of int``, ``int | None`` → ``int or null``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        if len(inner) == 1 or (args and args[-1] is Ellipsis):
            return f"list of {_type_name(inner[0])}"
        return "[" + ", ".join(_type_name(a) for a in inner) + "]"
    if origin is not None and getattr(origin, "__name__", "") == "Mapping":
        return "mapping"
    if dataclasses.is_dataclass(hint):  # a nested section, e.g. a scenario
        return "mapping"
    names = {type(None): "null", bool: "bool", int: "int", float: "number", str: "string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of a Google-style class docstring, as name → one-line description."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    in_section, current = False, None
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        if line and not line.startswith(" "):  # the next section
            break
        match = re.match(r"^ {4}(\w+)(?: \([^)]*\))?: ?(.*)$", line)
        if match:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current and line.strip():
            out[current] += " " + line.strip()
    return out


def _rows(cls: type, prefix: str, defaults: dict[str, Any], allowed: dict[str, tuple], skip: tuple = ()) -> list[ConfigKey]:
    hints = typing.get_type_hints(cls)
    docs = _attribute_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        key = prefix + _YAML_NAMES.get(f.name, f.name)
        default = _yaml(defaults[f.name]) if f.name in defaults else ""
        rows.append(ConfigKey(key=key, type=_type_name(hints[f.name]), default=default,
                              allowed=", ".join(_yaml(v) for v in allowed.get(f.name, ())),
                              description=docs.get(f.name, "")))
    return rows


def config_keys() -> list[ConfigKey]:
    """Every key an experiment config accepts, top-level keys first, then ``scenarios[]``, ``training``,
    ``significance`` and ``calibration``.

    Raises:
        RuntimeError: a key the config reader accepts has no row (the schema and this function disagree).
    """
    from pyterrier_gradrel._device import PRECISIONS
    from pyterrier_gradrel.binarize import NEGATIVE_POLICIES
    from pyterrier_gradrel.experiments import _config as c
    from pyterrier_gradrel.retrieval._names import BASELINES
    from pyterrier_gradrel.training import TrainConfig
    from pyterrier_gradrel.training._config import LOSSES, SIDES
    from pyterrier_gradrel.training._sampler import UNITS

    # the reader's defaults: what a config with only the required keys becomes
    minimal = c.read_config({"name": "x", "scenarios": [{"type": "monolingual", "languages": ["en"]}]})
    top_defaults = {f.name: getattr(minimal, f.name) for f in dataclasses.fields(c.ExperimentConfig)
                    if f.name not in ("name", "scenarios")}
    top_defaults["graded_loss"] = minimal.graded_loss
    rows = _rows(c.ExperimentConfig, "", top_defaults, {"baselines": tuple(BASELINES)},
                 skip=(*_NOT_KEYS, "significance", "calibration", "training"))
    scenario = minimal.scenarios[0]
    scenario_defaults = {f.name: getattr(scenario, f.name) for f in dataclasses.fields(c.ScenarioSpec)
                         if f.name not in ("type", "languages", "collection")}
    scenario_defaults["collection"] = scenario.collection
    rows += _rows(c.ScenarioSpec, "scenarios[].", scenario_defaults,
                  {"type": c.SCENARIOS, "collection": c.COLLECTIONS})
    train_defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    train_defaults["grades"] = tuple(train_defaults["grades"])
    rows += _rows(TrainConfig, "training.", train_defaults,
                  {"negatives": NEGATIVE_POLICIES, "unit": UNITS, "loss": LOSSES, "precision": PRECISIONS,
                   "side": SIDES}, skip=c.SWEEP_KEYS)
    rows += [ConfigKey(key=f"training.{k}", type="string", default="auto", allowed="",
                       description="where fine-tuning runs: auto (CUDA when available, else CPU), cpu, cuda "
                                   "or a torch device such as cuda:1; never part of a run key")
             for k in c.RUNTIME_TRAINING_KEYS]
    rows += _rows(c.SignificanceSpec, "significance.", dataclasses.asdict(minimal.significance),
                  {"test": c.TESTS, "correction": c.CORRECTIONS, "bootstrap_unit": c.BOOTSTRAP_UNITS})
    rows += _rows(c.CalibrationSpec, "calibration.", dataclasses.asdict(minimal.calibration), {})
    _check_complete(rows, c)
    return rows


def _check_complete(rows: list[ConfigKey], c: types.ModuleType) -> None:
    top = {r.key.split(".")[0].removesuffix("[]") for r in rows}
    missing = sorted(set(c._TOP_KEYS) - top)
    if missing:
        raise RuntimeError(f"config_keys() has no row for the config key(s) {missing}: document them in "
                           f"pyterrier_gradrel/experiments/_config_reference.py")
