"""A Sphinx extension that generates the reference pages from the code: the ``gradrel`` command line from its
argparse parsers and the experiment-config keys from the config schema.

``docs/conf.py`` loads it (``extensions = [..., "pyterrier_gradrel._sphinx"]``); any Sphinx site that includes
``pyterrier_gradrel/pt_docs`` can load it the same way. Directives:

* ``.. gradrel-cli::`` — every ``gradrel`` sub-command (``pyterrier_gradrel.cli.build_parser``): usage,
  description and each option with its help text and default, as ``gradrel <command> --help`` prints them.
* ``.. gradrel-config-keys::`` — one table per config section from
  :func:`pyterrier_gradrel.experiments._config_reference.config_keys`.

Help texts and descriptions are written as the code holds them (inline reStructuredText is rendered), so a
renamed option or key changes the page, and a key the schema lacks fails the build.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

__all__ = ["setup"]


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


class ConfigKeysDirective(Directive):
    """``.. gradrel-config-keys::``: a table per experiment-config section, generated from ``config_keys()``."""

    has_content = False

    def _inline(self, text: str) -> list[nodes.Node]:
        inline, messages = self.state.inline_text(text, self.lineno)
        return [*inline, *messages]

    def run(self) -> list[nodes.Node]:
        from pyterrier_gradrel.experiments._config_reference import config_keys

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
