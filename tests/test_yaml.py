"""One YAML reader for every file the package reads: a key written twice is refused, naming file, line and key."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pyterrier_gradrel._yaml import YAMLFileError, load_file, loads

REPO = Path(__file__).resolve().parents[1]


def test_a_repeated_key_is_refused_with_file_line_and_key():
    with pytest.raises(YAMLFileError, match=r"^c\.yaml:3: key 'depth' is written twice \(first on line 1\)"):
        loads("depth: 100\nname: x\ndepth: 10\n", source="c.yaml")
    with pytest.raises(YAMLFileError, match=r"^c\.yaml:2: key 'k' is written twice"):  # nested, flow style
        loads("a:\n  - {k: 1, k: 2}\n", source="c.yaml")


def test_merges_and_distinct_keys_are_kept():
    text = "base: &b {p: 1, q: 2}\nc:\n  <<: *b\n  p: 3\nd: {x: 1, y: [1, 1]}\n"
    assert loads(text, source="c.yaml") == {"base": {"p": 1, "q": 2}, "c": {"p": 3, "q": 2}, "d": {"x": 1, "y": [1, 1]}}
    assert loads("", source="c.yaml") is None
    with pytest.raises(YAMLFileError, match=r"^c\.yaml: not valid YAML: .*line 1"):
        loads("a: [1\n", source="c.yaml")
    with pytest.raises(YAMLFileError, match="could not determine a constructor"):  # safe: no Python objects
        loads("a: !!python/object/apply:os.system [echo]\n", source="c.yaml")


def test_load_file_names_the_file_on_bad_bytes(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: \xff\n")
    with pytest.raises(YAMLFileError, match=re.escape(f"{path}: not valid UTF-8")):
        load_file(path)


def test_no_yaml_is_read_past_the_loader():
    """Every YAML read of the package (and of benchmarks/) goes through pyterrier_gradrel._yaml."""
    pattern = re.compile(r"\byaml\.(?:safe_load|load|full_load|unsafe_load|load_all|safe_load_all)\b|SafeLoader\b")
    found = [f"{p.relative_to(REPO)}:{n}" for root in ("pyterrier_gradrel", "benchmarks")
             for p in sorted((REPO / root).rglob("*.py")) if p.name != "_yaml.py"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not found


def _with_duplicate(src: Path, dst: Path, key_line: str) -> Path:
    """``src`` copied to ``dst`` with ``key_line`` (a top-level key already in the file) appended again."""
    text = src.read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(key_line.split(':')[0])}:", text, re.M)
    dst.write_text(text + key_line + "\n", encoding="utf-8")
    return dst


def test_an_experiment_config_with_a_repeated_key_is_refused(tmp_path):
    from pyterrier_gradrel.experiments import ConfigError, load_config

    path = _with_duplicate(REPO / "experiments" / "quickstart.yaml", tmp_path / "quickstart.yaml", "seeds: [1]")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:\d+: key 'seeds' is written twice"):
        load_config(path)


def test_a_suite_and_its_expectations_with_a_repeated_key_are_refused(tmp_path):
    from pyterrier_gradrel.benchmark._check import load_expectations
    from pyterrier_gradrel.benchmark._suite import load_suite, suite_path

    suite = _with_duplicate(suite_path("gradrel-v1"), tmp_path / "gradrel-v1.yaml", "depth: 10")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(suite))}:\d+: key 'depth' is written twice"):
        load_suite(suite)
    src = suite_path("gradrel-v1").with_name("gradrel-v1.expected.yaml")
    expected = _with_duplicate(src, tmp_path / "gradrel-v1.expected.yaml", "suite: gradrel-v1")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(expected))}:\d+: key 'suite' is written twice"):
        load_expectations(expected)


def test_a_local_manifest_with_a_repeated_key_is_refused(tmp_path):
    from _local_fixture import judged_collection

    from pyterrier_gradrel.datasets import LocalCollectionError
    from pyterrier_gradrel.datasets._local import read_manifest

    folder = judged_collection(tmp_path, "dup")
    manifest = folder / "manifest.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "default_rel: 3\n", encoding="utf-8")
    with pytest.raises(LocalCollectionError, match=rf"^{re.escape(str(manifest))}:7: key 'default_rel' is written twice"):
        read_manifest(folder)


def test_the_datasets_registry_is_read_with_the_loader(tmp_path, monkeypatch):
    from pyterrier_gradrel.datasets import _registry

    package = tmp_path / "registry"
    shutil.copytree(REPO / "datasets_registry", package, ignore=shutil.ignore_patterns("suites", "__pycache__"))
    _with_duplicate(REPO / "datasets_registry" / "afriqa.yaml", package / "afriqa.yaml", "default_rel: 3")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_registry, "REGISTRY_PACKAGE", "registry")
    _registry.collections.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"afriqa\.yaml:\d+: key 'default_rel' is written twice"):
            _registry.collections()
    finally:
        _registry.collections.cache_clear()
