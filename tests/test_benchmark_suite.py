"""The gradrel-v1 suite declaration and its data fingerprints: changed data is refused, not compared."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pyterrier_gradrel import benchmark
from pyterrier_gradrel.benchmark._suite import data_fingerprint, load_suite, suite_path, write_fingerprints

XQUAD_LANGS = "ar de el en es hi ro ru th tr vi zh".split()


def test_gradrel_v1_declares_every_task_with_a_fingerprint():
    suite = load_suite("gradrel-v1")
    assert (suite.name, suite.version, suite.main_score, suite.rels, suite.depth) == ("gradrel-v1", 1, "nDCG@10", (1, 2, 3), 100)
    by_group = {g: [t for t in suite.tasks if t.group == g] for g in suite.groups}
    assert [t.dataset for t in by_group["monolingual"]] == [f"gradrel/xquad-r/{lang}/test" for lang in XQUAD_LANGS]
    assert [t.dataset for t in by_group["cross-lingual"]] == [f"gradrel/xquad-r/{lang}-en/test"
                                                            for lang in XQUAD_LANGS if lang != "en"]
    assert [t.dataset for t in by_group["multi"]] == ["gradrel/xquad-r/multi/test"]
    assert len(by_group["afriqa"]) == 9
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", t.fingerprint) for t in suite.tasks)
    assert {t.scope for t in suite.tasks if t.dataset.startswith("gradrel/xquad-r")} == {"xquad-r"}


def test_the_profile_is_parsed_into_the_one_measure_vocabulary():
    """profile.measures at each rel, named by `_evaluation.label`; RR keeps the suite's depth (RR@100)."""
    import ir_measures

    from pyterrier_gradrel._evaluation import graded_ndcg
    from pyterrier_gradrel.benchmark._suite import suite_measures

    suite = load_suite("gradrel-v1")
    assert suite.measures == ("nDCG@10", "R@100", "RR@100")
    specs = suite_measures(suite)
    assert [s.label for s in specs] == [
        "nDCG@10", "nDCG(rel=1)@10", "R@100", "RR@100", "nDCG(rel=2)@10", "R(rel=2)@100", "RR(rel=2)@100",
        "nDCG(rel=3)@10", "R(rel=3)@100", "RR(rel=3)@100"]
    assert specs[0].measure == graded_ndcg(10) and specs[0].label == suite.main_score
    assert [s.rel for s in specs] == [None, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert specs[3].measure == ir_measures.RR(rel=1) @ 100 and specs[9].measure == ir_measures.RR(rel=3) @ 100


def test_every_afriqa_language_with_a_test_split_is_a_task():
    from pyterrier_gradrel.datasets import dataset_ids

    expected = sorted(i for i in dataset_ids("afriqa") if i.endswith("/test") and "-translated" not in i)
    assert sorted(t.dataset for t in load_suite().tasks if t.group == "afriqa") == expected


def test_the_declared_fingerprint_is_the_data_hash(mirror):
    task = load_suite().task("xquad-r-th-en")
    assert data_fingerprint(task.dataset) == task.fingerprint


def test_select_by_task_dataset_or_group():
    suite = load_suite()
    assert [t.name for t in suite.select(["gradrel/xquad-r/de/test", "multi"])] == ["xquad-r-de", "xquad-r-multi"]
    assert len(suite.select(["afriqa"])) == 9
    with pytest.raises(KeyError, match="no task 'xquad-r-xx'"):
        suite.select(["xquad-r-xx"])


def _copy_suite(tmp_path: Path) -> Path:
    path = tmp_path / "gradrel-test.yaml"
    shutil.copy(suite_path("gradrel-v1"), path)
    return path


def test_changed_data_is_refused_before_anything_runs(mirror, tmp_path):
    path = _copy_suite(tmp_path)
    text = path.read_text()
    declared = load_suite(path).task("xquad-r-en").fingerprint
    path.write_text(text.replace(declared, "sha256:" + "1" * 64))

    def factory(dataset_id):  # must never be called
        raise AssertionError("the factory ran on changed data")

    with pytest.raises(benchmark.DataChangedError, match=r"xquad-r-en.*hashes to sha256:db2e.*declared sha256:1111"):
        benchmark.evaluate(factory, path, tasks=["xquad-r-en"], out=tmp_path / "out", verbose=False)
    assert not (tmp_path / "out").exists()


def test_fingerprint_write_regenerates_in_place(mirror, tmp_path):
    path = _copy_suite(tmp_path)
    original = path.read_text()
    declared = load_suite(path).task("afriqa-hau").fingerprint
    path.write_text(original.replace(declared, "null"))
    assert load_suite(path).task("afriqa-hau").fingerprint is None
    written = write_fingerprints(path, ["afriqa-hau"], verbose=False)
    assert written == {"afriqa-hau": declared}
    assert path.read_text() == original  # comments, order and every other task unchanged


def test_a_task_without_fingerprint_cannot_be_evaluated(mirror, tmp_path):
    path = _copy_suite(tmp_path)
    declared = load_suite(path).task("afriqa-hau").fingerprint
    path.write_text(path.read_text().replace(declared, "null"))
    with pytest.raises(benchmark.DataChangedError, match="fingerprint --write"):
        benchmark.evaluate(lambda ds: None, path, tasks=["afriqa-hau"], out=tmp_path / "out", verbose=False)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("main_score: nDCG@10\n", ""), "missing keys \\['main_score'\\]"),
    (lambda t: t.replace("group: multi,", "group: mixed,"), "group 'mixed', not one of"),
    (lambda t: t.replace("rels: [1, 2, 3]", "rels: [1, 4]"), "profile.rels"),
    (lambda t: t.replace("name: afriqa-zul,", "name: afriqa-yor,"), "unique"),
    (lambda t: t.replace('"R@100", "RR@100"', '"R@100", "MRR"'), "unknown binary measure 'MRR'"),
    (lambda t: t.replace('"R@100", "RR@100"', '"R@100", "RR@10"'), "evaluated at depth 100, so RR is"),
    (lambda t: t.replace('"R@100", "RR@100"', '"R@1000", "RR@100"'), "cut deeper than the evaluated depth 100"),
    (lambda t: t.replace("main_score: nDCG@10\n", "main_score: R@100\n"), "unknown graded measure 'R@100'"),
])
def test_malformed_suites_are_rejected_with_the_file_named(tmp_path, edit, message):
    path = _copy_suite(tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ValueError, match=message) as info:
        load_suite(path)
    assert str(path) in str(info.value)


def test_unknown_suite_names_the_places_looked(monkeypatch):
    with pytest.raises(FileNotFoundError, match="gradrel-v99") as info:
        load_suite("gradrel-v99")
    assert "expected one of ['gradrel-v1'] or a .yaml file" in str(info.value)
    from pyterrier_gradrel.benchmark import _suite

    folder = _suite._suites_dirs()[0]  # a source checkout's folder is also the installed package's: listed once
    monkeypatch.setattr(_suite, "_suites_dirs", lambda: [folder, folder / ".." / folder.name])
    with pytest.raises(FileNotFoundError) as info:
        suite_path("gradrel-v99")
    assert str(info.value).endswith(f"(looked in [{str(folder.resolve())!r}])")


def test_a_file_that_is_not_yaml_is_no_suite_name(tmp_path, monkeypatch):
    """``--suite README.md`` is refused as it is, not looked up as ``README.md.yaml``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# not a suite\n")
    for name in ("README.md", str(tmp_path / "README.md"), "sub/gradrel-v1"):
        with pytest.raises(ValueError, match=re.escape(f"a suite is a registered name or a .yaml file, got {name!r}")):
            suite_path(name)
