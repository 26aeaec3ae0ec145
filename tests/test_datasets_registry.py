"""The declarative registry, ``register()``, ``info()`` and the ``gradrel datasets`` command."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pyterrier_gradrel import datasets
from pyterrier_gradrel.datasets import _registry

SHARED_README_ROW = re.compile(r"\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{32})` \| [^|]* \| (\S+) \|")


def test_collections_are_declared_with_grades_and_default_rel():
    specs = datasets.collections()
    assert sorted(specs) == ["afriqa", "local", "xquad-r"]
    for spec in specs.values():
        assert sorted(spec.grades) == list(datasets.GRADES)
        assert spec.default_rel == datasets.DEFAULT_REL == 2
        assert spec.license
    for name in ("xquad-r", "afriqa"):
        spec = specs[name]
        assert spec.structural
        assert all(text.startswith("structural:") for text in spec.grades.values())  # honest: not judged
        assert "@" in spec.citation
    assert not specs["local"].structural


def test_languages_carry_resource_levels():
    xq = datasets.collection("xquad-r").languages
    assert sorted(xq) == sorted("ar de el en es hi ro ru th tr vi zh".split())
    af = datasets.collection("afriqa").languages
    assert sorted(af) == sorted("bem fon hau ibo kin swa twi wol yor zul".split())
    for lang in (*xq.values(), *af.values()):
        level = {5: "high", 4: "high", 3: "medium"}.get(lang["joshi_class"], "low")
        assert lang["resource"] == level
    assert {af[x]["pivot"] for x in af} == {"en", "fr"} and af["fon"]["pivot"] == "fr"
    assert "Joshi" in datasets.collection("xquad-r").raw["resource_levels"]["source"]


@pytest.mark.parametrize("folder", ["xquad-r", "xquad", "afriqa"])
def test_files_match_the_shared_readme(mirror, folder):
    """Every URL/md5/size row of ../shared/data/<folder>/README.md is declared, byte for byte."""
    rows = {m[0]: (int(m[1].replace(",", "")), m[2], m[3])
            for m in SHARED_README_ROW.findall((mirror / folder / "README.md").read_text(encoding="utf-8"))}
    declared = {f.path: (f.bytes, f.md5, f.url) for name in ("xquad-r", "afriqa")
                for f in datasets.collection(name).files.values() if f.folder == folder}
    assert rows and declared == rows


def test_bad_yaml_is_rejected_with_the_allowed_values():
    with pytest.raises(ValueError, match="missing required keys"):
        _registry._parse("x.yaml", {"collection": "x"})
    base = {"collection": "x", "title": "t", "loader": "l", "structural": True, "license": "", "citation": ""}
    with pytest.raises(ValueError, match=r"default_rel must be one of \[1, 2, 3\]"):
        _registry._parse("x.yaml", {**base, "grades": {0: "", 1: "", 2: "", 3: ""}, "default_rel": 0})
    with pytest.raises(ValueError, match="without gaps"):
        _registry._parse("x.yaml", {**base, "grades": {0: "", 2: ""}, "default_rel": 2})
    with pytest.raises(ValueError, match="needs folder, path, url, md5, bytes"):
        _registry._parse("x.yaml", {**base, "grades": {0: "", 1: ""}, "default_rel": 1, "files": {"a": {"url": "u"}}})
    with pytest.raises(ValueError, match=r"declared collections: \['afriqa', 'local', 'xquad-r'\]"):
        datasets.collection("mlqa")


def test_import_registers_cheaply_and_register_is_idempotent():
    code = (
        "import sys, time; t = time.time(); import pyterrier_gradrel, ir_datasets; "
        "ids = [k for k in ir_datasets.registry if k.startswith('gradrel/')]; "
        "from pyterrier_gradrel.datasets import register; register(); register(); "
        "ids2 = [k for k in ir_datasets.registry if k.startswith('gradrel/')]; "
        "print(len(ids), len(ids2), 'torch' in sys.modules, 'pyterrier' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    # xquad-r: 12 pools + 12*3 monolingual + 132*3 cross-lingual + multi pool + 3 multi = 448;
    # afriqa: 9 pools + 24 splits * 2 (native + translated) = 57
    assert out == ["505", "505", "False", "False"]


def _fresh(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter (no ir_datasets imported yet); a hang fails after 60 s."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


_COUNT = "print(sum(k.startswith('gradrel/') for k in ir_datasets.registry))"


@pytest.mark.parametrize("first", [
    "from pyterrier_gradrel.datasets import register; register()",  # imports ir_datasets itself: re-entered
    "import pyterrier_gradrel.datasets._afriqa",  # a dataset module imports ir_datasets: registration deferred
    "import importlib.util, pyterrier_gradrel; importlib.util.find_spec('ir_datasets')",  # a probe, no import
])
def test_register_from_any_entry_point_in_a_fresh_interpreter(first):
    code = (f"{first}\nimport ir_datasets\nir_datasets.load('gradrel/xquad-r/de/test')\n"
            f"from pyterrier_gradrel.datasets import register; register()\n{_COUNT}")
    assert _fresh(code) == ["505"]


def test_register_is_thread_safe_while_ir_datasets_is_being_imported():
    code = (
        "import threading, pyterrier_gradrel\n"
        "from pyterrier_gradrel.datasets import register\n"
        "barrier = threading.Barrier(6)\n"
        "def call(i):\n"
        "    barrier.wait()\n"
        "    if i % 2: import ir_datasets\n"
        "    else: register()\n"
        "threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]\n"
        "[t.start() for t in threads]; [t.join(50) for t in threads]\n"
        "assert not any(t.is_alive() for t in threads), 'a thread hangs'\n"
        f"import ir_datasets\n{_COUNT}"
    )
    assert _fresh(code) == ["505"]


def test_dataset_ids_and_validation():
    ids = datasets.dataset_ids("xquad-r")
    assert "gradrel/xquad-r/th-en/test" in ids and "gradrel/xquad-r/multi/dev" in ids
    assert "gradrel/afriqa/hau-translated/test" in datasets.dataset_ids("afriqa")
    with pytest.raises(ValueError, match=r"\['xquad-r', 'afriqa', 'local'\]"):
        datasets.dataset_ids("squad")


def test_info():
    mono = datasets.info("gradrel/xquad-r/de/test")
    assert (mono.collection, mono.split, mono.query_lang, mono.doc_lang) == ("xquad-r", "test", "de", "de")
    assert mono.grades == datasets.collection("xquad-r").grades and mono.default_rel == 2 and mono.structural
    assert mono.grade_scale == datasets.GRADES
    assert mono.resource == "high" and datasets.info("gradrel/xquad-r/th/dev").resource == "medium"
    cross = datasets.info("gradrel/xquad-r/th-en/test")
    assert (cross.query_lang, cross.doc_lang) == ("th", "en")
    multi = datasets.info("gradrel/xquad-r/multi/train")
    assert multi.query_lang is None and len(multi.doc_langs) == 12
    pool = datasets.info("gradrel/xquad-r/ro")
    assert pool.split is None and pool.doc_lang == "ro"
    af = datasets.info("gradrel/afriqa/fon/dev")
    assert (af.query_lang, af.doc_lang, af.resource, af.structural) == ("fon", "fr", "low", True)
    assert datasets.info("gradrel/afriqa/fon-translated/dev").query_lang == "fr"
    # pool identity facts: both benchmark collections are fixed; XQuAD-R's texts are at version 2 (no U+FEFF)
    assert (mono.fixed, mono.text_version) == (True, datasets.collection("xquad-r").text_version) == (True, 2)
    assert (af.fixed, af.text_version) == (True, 1)
    for bad in ("gradrel/xquad-r/xx/test", "gradrel/xquad-r/de/validation", "gradrel/afriqa/wol/test",
                "gradrel/afriqa/yor/dev", "msmarco/dev", "gradrel/xquad-r/de-de/test"):
        with pytest.raises(ValueError, match="unknown dataset id"):
            datasets.info(bad)


def _gradrel(capsys, *args: str) -> tuple[int, str]:
    from pyterrier_gradrel.cli import main

    capsys.readouterr()
    code = main(["datasets", *args])
    return code, capsys.readouterr().out


def test_cli_list_stats_fetch(mirror, capsys):
    import json

    code, out = _gradrel(capsys, "list", "--collection", "afriqa")
    assert code == 0 and len(out.split()) == 48 and "gradrel/afriqa/swa/test" in out.split()
    code, out = _gradrel(capsys, "stats", "gradrel/afriqa/yor/test", "gradrel/xquad-r/tr/dev", "--json")
    yor, tr = json.loads(out)
    assert yor["queries"] == 253 and yor["dropped_queries_without_gold"] == 79 and yor["docs"] == 5401
    assert tr["qrels_per_grade"] == {"1": 3020, "2": 582, "3": 156} and tr["queries_with_grade_3"] == 154
    code, out = _gradrel(capsys, "fetch", "xquad-r")
    assert code == 0 and len(out.split()) == len(datasets.collection("xquad-r").files)
    with pytest.raises(SystemExit):
        _gradrel(capsys, "fetch", "mlqa")
    assert "invalid choice: 'mlqa'" in capsys.readouterr().err
