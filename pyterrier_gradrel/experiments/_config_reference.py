"""Every key of an experiment config as rows (key, type, default, allowed values, description), read from the schema.

:func:`config_keys` is the one function the reference docs (``pt_docs/config.rst``) are generated from. It walks
the pydantic models of :mod:`._config` from :class:`~._config.ExperimentConfig`: a field is a key (named by its
alias where it has one) and a field holding models is a section of its own (``scenarios[]``, ``training``,
``measures``, ``significance``, ``calibration``). Types, defaults and allowed values (a ``Literal``'s) are the
fields', descriptions the fields' own (``training``'s come from :class:`~pyterrier_gradrel.training.TrainConfig`),
so the reference says what the validator accepts.
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

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
    """A type as a YAML reader names it: ``tuple[int, ...]`` → ``list of int``, ``int | None`` → ``int or null``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " or ".join(dict.fromkeys(_type_name(type(a)) for a in args))
    if origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        if args and args[-1] is Ellipsis:
            return f"list of {_type_name(inner[0])}"
        return "[" + ", ".join(_type_name(a) for a in inner) + "]"
    if origin is dict or _section(hint)[0] is not None:
        return "mapping"
    return {type(None): "null", bool: "bool", int: "int", float: "number", str: "string"}.get(hint, str(hint))


def _allowed(hint: Any) -> list[Any]:
    """The values of the ``Literal`` types in ``hint``."""
    if typing.get_origin(hint) is Literal:
        return list(typing.get_args(hint))
    return [v for a in typing.get_args(hint) for v in _allowed(a)]


def _section(hint: Any) -> tuple[type | None, str]:
    """The model a field holds and how its keys are written under the field's (``.`` or ``[].``)."""
    from pydantic import BaseModel

    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint, "."
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], "[]."
    return None, ""


def _rows(model: Any, prefix: str) -> list[ConfigKey]:
    """The keys of ``model`` (its fields), then those of each section it holds."""
    rows, sections = [], []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        sub, joint = _section(field.annotation)
        if sub is not None:
            sections.append((sub, key + joint))
            if joint == ".":  # a mapping's keys have rows of their own; a list of mappings has one too
                continue
        rows.append(ConfigKey(key=key, type=_type_name(field.annotation),
                              default="" if field.is_required() else _yaml(field.get_default(call_default_factory=True)),
                              allowed=", ".join(_yaml(v) for v in _allowed(field.annotation)),
                              description=field.description or ""))
    return rows + [row for sub, sub_prefix in sections for row in _rows(sub, sub_prefix)]


def config_keys() -> list[ConfigKey]:
    """Every key an experiment config accepts: the top-level keys, then ``scenarios[]``, ``training``,
    ``measures``, ``significance`` and ``calibration``."""
    from pyterrier_gradrel.experiments._config import ExperimentConfig

    return _rows(ExperimentConfig, "")
