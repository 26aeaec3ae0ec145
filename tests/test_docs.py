"""The reference docs build without a warning and cover the public API, the command line and the config keys; the
commands, options and Python snippets written in the user docs exist."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTED = ["datasets", "models", "binarize", "training", "retrieval", "experiments", "judge", "benchmark"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """``sphinx-build -W`` of ``pyterrier_gradrel/pt_docs`` with ``docs/conf.py`` (what .ci/run runs)."""
    out = tmp_path_factory.mktemp("docs")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           "-c", str(REPO / "docs"), str(REPO / "pyterrier_gradrel" / "pt_docs"), str(out)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def _ids(html: Path) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', html.read_text(encoding="utf-8")))


def test_docs_build_with_warnings_as_errors_and_document_every_export(built):
    """Every class and function a documented module exports (``__all__``) has an entry in the API page
    (constants and type aliases are shown where autodoc finds their comment; they are not required here)."""
    import importlib
    import inspect

    ids = _ids(built / "api.html")
    missing = []
    for name in DOCUMENTED:
        module = importlib.import_module(f"pyterrier_gradrel.{name}")
        exported = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")
                                                        and getattr(vars(module)[n], "__module__", "") == module.__name__]
        missing += [f"{module.__name__}.{n}" for n in exported
                    if (inspect.isclass(getattr(module, n)) or inspect.isfunction(getattr(module, n)))
                    and f"{module.__name__}.{n}" not in ids]
    assert not missing, f"exported but not in api.html: {missing}"


def test_cli_reference_has_every_command_and_option(built):
    from pyterrier_gradrel.cli import build_parser

    text = (built / "cli.html").read_text(encoding="utf-8")

    def walk(parser: argparse.ArgumentParser, path: str):  # every command, nested ones (datasets check) included
        yield path, parser
        for name, sub in _subparsers(parser).items():
            yield from walk(sub, f"{path} {name}")

    commands = list(walk(build_parser(), "gradrel"))[1:]
    assert {"gradrel datasets check", "gradrel benchmark verify"} <= {path for path, _ in commands}
    for path, command in commands:
        assert path in text, f"{path} missing from cli.html"
        for action in command._actions:
            for option in action.option_strings:
                if action.help != argparse.SUPPRESS:
                    assert option in text, f"{path} {option} missing from cli.html"


def test_config_reference_has_every_key(built):
    from pyterrier_gradrel._sphinx import config_keys

    text = (built / "config.html").read_text(encoding="utf-8")
    keys = config_keys()
    assert {"thresholds", "scenarios[].type", "training.max_steps", "training.device", "significance.test",
            "calibration.enabled", "measures.rels"} <= {k.key for k in keys}
    for key in keys:
        assert f">{key.key}<" in text, key.key


def test_config_keys_are_read_from_the_schema(mirror):
    """Defaults, types and allowed values are the validating models', and the keys with a row are exactly the keys
    the validator takes."""
    from pyterrier_gradrel._sphinx import config_keys
    from pyterrier_gradrel.experiments import ConfigError, _config, load_config

    keys = {k.key: k for k in config_keys()}
    assert keys["seeds"].default == "[0, 1, 2]" and keys["seeds"].type == "list of int"
    assert keys["scenarios[].collection"].default == "xquad-r"
    assert keys["significance.correction"].allowed == ", ".join(_config.CORRECTIONS)
    assert keys["training.max_steps"].type == "int or null" and keys["training.max_steps"].default == "null"
    assert not {f"training.{k}" for k in _config.SWEEP_KEYS} & set(keys)
    assert "τ" in keys["thresholds"].description
    assert keys["training.unit"].allowed == "query, pair" and keys["measures.rels"].default == "[1, 2, 3]"
    sections = {"": (), "scenarios[].": ("scenarios", 0), "training.": ("training",), "measures.": ("measures",),
                "significance.": ("significance",), "calibration.": ("calibration",)}
    for prefix, path in sections.items():
        config = {"name": "x", "scenarios": [{"type": "monolingual", "languages": ["en"]}], "training": {},
                  "measures": {}, "significance": {}, "calibration": {}}
        section = config
        for step in path:
            section = section[step]
        section["new_key"] = 1
        rows = {k.removeprefix(prefix).split(".")[0].removesuffix("[]") for k in keys if k.startswith(prefix)}
        if prefix == "scenarios[].":
            rows -= {"train", "test", "label"}  # a transfer scenario's own keys
        with pytest.raises(ConfigError, match=r"unknown .*" + re.escape(f": expected some of {sorted(rows)}")):
            load_config(config)


def test_citation_names_the_package_and_suite_versions():
    """CITATION.cff cites this package's version and the default suite with its number of tasks."""
    import yaml

    import pyterrier_gradrel
    from pyterrier_gradrel.benchmark import load_suite
    from pyterrier_gradrel.benchmark._suite import DEFAULT_SUITE

    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["version"] == cff["preferred-citation"]["version"] == pyterrier_gradrel.__version__
    n_tasks = len(load_suite(DEFAULT_SUITE).tasks)
    for text in (cff["abstract"], cff["preferred-citation"]["notes"], cff["message"]):
        assert re.search(rf"{DEFAULT_SUITE}\W+{n_tasks} tasks", text), text


def test_developing_maps_every_module():
    """DEVELOPING.md's package map has a line for every module of the package (and none for a removed one)."""
    root = REPO / "pyterrier_gradrel"
    modules = {p.relative_to(root).as_posix() for p in root.rglob("*.py")}
    text = (REPO / "DEVELOPING.md").read_text(encoding="utf-8")
    mapped = set(re.findall(r"^\| `([\w/]+\.py)` \|", text, flags=re.M))
    assert mapped == modules, f"not mapped: {sorted(modules - mapped)}; no such module: {sorted(mapped - modules)}"


#: the user-facing documents whose commands and snippets the tests below keep honest
USER_DOCS = ["README.md", "DEVELOPING.md", "experiments/README.md", "examples/systems/README.md", "benchmarks/README.md",
             *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "pyterrier_gradrel" / "pt_docs").glob("*.rst"))]


def _code(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every code block (Markdown fences, ``.. code-block::``) and inline code span."""
    import textwrap

    out = [(lang, body) for lang, body in re.findall(r"```(\w*)[^\n]*\n(.*?)```", text, flags=re.S)]
    out += [(lang, textwrap.dedent(body)) for lang, body in
            re.findall(r"^\.\. code-block:: *(\w*)\n((?:[ \t]*\n|[ \t]+[^\n]*\n)+)", text, flags=re.M)]
    out += [("inline", a or b) for a, b in re.findall(r"``(.+?)``|(?<!`)`([^`\n]+)`(?!`)", text, flags=re.S)]
    return out


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def test_every_gradrel_command_and_option_in_the_docs_exists():
    """Each ``gradrel <command> [<sub-command>] ... --option`` written in a code block or code span of the user docs
    names a command the parser has and options that command takes (a renamed or removed option fails here)."""
    from pyterrier_gradrel.cli import build_parser

    root = build_parser()
    wrong, seen = [], 0
    for doc in USER_DOCS:
        for _lang, code in _code((REPO / doc).read_text(encoding="utf-8")):
            for line in code.replace("\\\n", " ").splitlines():
                # a command ends at a shell separator or a comment
                for match in re.finditer(r"(?<![\w/.-])gradrel((?:[ \t]+[^\s|;&#>]+)*)", line):
                    parser, path = root, ["gradrel"]
                    for token in (t.strip("[](),'\"") for t in match.group(1).split()):
                        subs = _subparsers(parser)
                        if token.startswith("--"):
                            seen += 1
                            option = token.split("=")[0]
                            if option not in {o for a in parser._actions for o in a.option_strings}:
                                wrong.append(f"{doc}: `{' '.join(path)}` has no {option}: {line.strip()}")
                        elif token in subs:
                            parser = subs[token]
                            path.append(token)
                        elif subs and len(path) < 3 and re.fullmatch(r"[a-z][a-z0-9-]*", token):
                            wrong.append(f"{doc}: `{' '.join(path)}` has no command {token!r}: {line.strip()}")
                            break
    assert seen > 40  # the docs' commands were found
    assert not wrong, "\n".join(wrong)


def test_python_snippets_of_the_docs_parse_and_their_gr_names_exist():
    """Every Python block of the user docs is valid Python, and every ``gr.<name>`` (``gr.experiments.<name>``) the
    docs write is a public name of the package (read from the lazy exports: nothing heavy is imported)."""
    import ast

    import pyterrier_gradrel as gr

    blocks, names = 0, set()
    for doc in USER_DOCS:
        for lang, code in _code((REPO / doc).read_text(encoding="utf-8")):
            if lang == "python":
                blocks += 1
                ast.parse(code, filename=doc)
            names |= set(re.findall(r"(?<![\w.])gr\.(\w+(?:\.\w+)?)", code))
    assert blocks >= 10 and {"bm25", "dense", "FineTuned", "experiments.load"} <= names
    missing = []
    for name in sorted(names):
        head, _, tail = name.partition(".")
        if head not in dir(gr):
            missing.append(name)
        elif tail and head == "experiments" and tail not in dir(gr.experiments):
            missing.append(name)
    assert not missing, f"gr names in the docs that the package does not have: {missing}"
