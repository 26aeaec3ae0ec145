"""A Sphinx extension that generates the reference pages from the code: the ``gradrel`` command line from its
argparse parsers and the experiment-config keys from the config schema.

``docs/conf.py`` loads it (``extensions = [..., "pyterrier_gradrel._sphinx"]``); any Sphinx site that includes
``pyterrier_gradrel/pt_docs`` can load it the same way. Directives:

* ``.. gradrel-cli::`` — every ``gradrel`` sub-command (``pyterrier_gradrel.cli.build_parser``): usage,
  description and each option with its help text and default, as ``gradrel <command> --help`` prints them.
* ``.. gradrel-config-keys::`` — one table per config section from :func:`config_keys`, which walks the pydantic
  models of :mod:`pyterrier_gradrel.experiments._config` from ``ExperimentConfig``: a field is a key (named by its
  alias where it has one) and a field holding models is a section of its own (``scenarios[]``, ``training``,
  ``measures``, ``significance``, ``calibration``). Types, defaults and allowed values (a ``Literal``'s) are the
  fields', descriptions the fields' own (``training``'s come from ``TrainConfig``), so the reference says what the
  validator accepts.

Help texts and descriptions are written as the code holds them (inline reStructuredText is rendered), so a
renamed option or key changes the page, and a key the schema lacks fails the build.
"""
from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

__all__ = ["ConfigKey", "config_keys", "setup"]


def _table(headers: list[str], rows: Iterable[list[list[nodes.Node]]], widths: list[int]) -> nodes.table:
    """A docutils table; each cell is a list of inline nodes."""
    table = nodes.table(classes=["colwidths-given"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    head += _row([[nodes.Text(h)] for h in headers])
    body = nodes.tbody()
    group += body
    for cells in rows:
        body += _row(cells)
    return table


def _row(cells: list[list[nodes.Node]]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        row += nodes.entry("", nodes.paragraph("", "", *cell))
    return row


def _literal(text: str) -> list[nodes.Node]:
    return [nodes.literal(text, text)] if text else []


def _section(title: str, ident: str) -> nodes.section:
    section = nodes.section(ids=[ident], names=[ident])
    section += nodes.title(title, title)
    return section


def _commands(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """(command name, parser, one-line help) for ``parser`` and, depth first, each sub-command's parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            seen: set[int] = set()
            for sub_name, sub in action.choices.items():
                if id(sub) in seen:  # an alias
                    continue
                seen.add(id(sub))
                full = f"{name} {sub_name}"
                yield full, sub, helps.get(sub_name, "")
                yield from _commands(sub, full)


def _option_rows(parser: argparse.ArgumentParser) -> list[list[list[nodes.Node]]]:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            metavar = "" if action.nargs == 0 else " " + formatter._format_args(action, action.dest.upper())
            names = ", ".join(action.option_strings) + metavar
        else:
            names = formatter._format_args(action, action.dest)
        help_text = formatter._expand_help(action) if action.help else ""
        rows.append([_literal(names), [nodes.Text(help_text)]])
    return rows


class CliDirective(Directive):
    """``.. gradrel-cli::``: a section per ``gradrel`` sub-command, generated from the argparse parsers."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from pyterrier_gradrel.cli import build_parser

        parser = build_parser()
        out: list[nodes.Node] = []
        for name, sub, summary in _commands(parser, parser.prog):
            section = _section(name, nodes.make_id(f"cli {name}"))
            if summary:
                section += nodes.paragraph(summary, summary)
            usage = sub.format_usage().removeprefix("usage: ").strip()
            section += nodes.literal_block(usage, usage)
            if sub.description and sub.description != summary:
                section += nodes.paragraph(sub.description, sub.description)
            rows = _option_rows(sub)
            if rows:
                section += _table(["argument", "meaning (default)"], rows, [30, 70])
            out.append(section)
        return out


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
    if origin is dict or _model_of(hint)[0] is not None:
        return "mapping"
    return {type(None): "null", bool: "bool", int: "int", float: "number", str: "string"}.get(hint, str(hint))


def _allowed(hint: Any) -> list[Any]:
    """The values of the ``Literal`` types in ``hint``."""
    if typing.get_origin(hint) is Literal:
        return list(typing.get_args(hint))
    return [v for a in typing.get_args(hint) for v in _allowed(a)]


def _model_of(hint: Any) -> tuple[type | None, str]:
    """The model a field holds and how its keys are written under the field's (``.`` or ``[].``)."""
    from pydantic import BaseModel

    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint, "."
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], "[]."
    return None, ""


def _key_rows(model: Any, prefix: str) -> list[ConfigKey]:
    """The keys of ``model`` (its fields), then those of each section it holds."""
    rows, sections = [], []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        sub, joint = _model_of(field.annotation)
        if sub is not None:
            sections.append((sub, key + joint))
            if joint == ".":  # a mapping's keys have rows of their own; a list of mappings has one too
                continue
        rows.append(ConfigKey(key=key, type=_type_name(field.annotation),
                              default="" if field.is_required() else _yaml(field.get_default(call_default_factory=True)),
                              allowed=", ".join(_yaml(v) for v in _allowed(field.annotation)),
                              description=field.description or ""))
    return rows + [row for sub, sub_prefix in sections for row in _key_rows(sub, sub_prefix)]


def config_keys() -> list[ConfigKey]:
    """Every key an experiment config accepts: the top-level keys, then ``scenarios[]``, ``training``,
    ``measures``, ``significance`` and ``calibration``."""
    from pyterrier_gradrel.experiments._config import ExperimentConfig

    return _key_rows(ExperimentConfig, "")


class ConfigKeysDirective(Directive):
    """``.. gradrel-config-keys::``: a table per experiment-config section, generated from ``config_keys()``."""

    has_content = False

    def _inline(self, text: str) -> list[nodes.Node]:
        inline, messages = self.state.inline_text(text, self.lineno)
        return [*inline, *messages]

    def run(self) -> list[nodes.Node]:
        sections: dict[str, list] = {}
        for key in config_keys():
            head = key.key.split(".")[0] if "." in key.key else "(top level)"
            sections.setdefault(head, []).append(key)
        out: list[nodes.Node] = []
        for head, keys in sections.items():
            section = _section(f"{head} keys" if head != "(top level)" else "Top-level keys",
                               nodes.make_id(f"config {head}"))
            rows = [[_literal(k.key), [nodes.Text(k.type)], _literal(k.default), [nodes.Text(k.allowed)],
                     self._inline(k.description)] for k in keys]
            section += _table(["key", "type", "default", "allowed values", "meaning"], rows, [18, 12, 12, 16, 42])
            out.append(section)
        return out


def setup(app: Sphinx) -> dict[str, object]:
    """Register the directives."""
    app.add_directive("gradrel-cli", CliDirective)
    app.add_directive("gradrel-config-keys", ConfigKeysDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
