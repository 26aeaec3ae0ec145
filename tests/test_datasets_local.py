"""Local graded collections (``gradrel/local/<name>/<split>``): loading, discovery and every bad input."""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from pyterrier_gradrel.datasets import LocalCollectionError, _local, info, register_local

_names = itertools.count()

DOCS = [
    {"doc_id": "d1", "text": "Nairobi is the capital of Kenya.", "lang": "en", "article": "Nairobi"},
    {"doc_id": "d2", "text": "Kenya lies in East Africa.", "article": "Kenya"},
    {"doc_id": "d3", "text": "Mombasa is a port city.", "split": "train"},
]
QUERIES_TEST = "q1\tWhat is the capital of Kenya?\nq2\tWhere is Kenya?\n"
QRELS_TEST = "q1 0 d1 2\nq1 0 d2 1\nq2 0 d2 2\nq2 0 d3 0\n"


def _write(folder: Path, files: dict[str, str | None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is not None:
            (folder / name).write_text(content, encoding="utf-8")
    return folder


def make(tmp_path: Path, **files: str | None) -> Path:
    """A valid collection (test split, 0-2 scale, English) with some files replaced or removed (None)."""
    base = {
        "docs.jsonl": "".join(json.dumps(d) + "\n" for d in DOCS),
        "queries.test.tsv": QUERIES_TEST,
        "qrels.test.txt": QRELS_TEST,
        "manifest.yaml": "name: kenya\nlang: en\ngrades: {0: not relevant, 1: related, 2: answers it}\ndefault_rel: 1\n",
    }
    base.update({k.replace("__", "."): v for k, v in files.items()})
    return _write(tmp_path / f"coll{next(_names)}", base)


def _name() -> str:
    return f"t{next(_names)}"


def test_valid_collection_through_pyterrier(tmp_path):
    import pyterrier as pt

    folder = make(tmp_path)
    name = _name()
    ids = register_local(name, folder)
    assert ids == [f"gradrel/local/{name}", f"gradrel/local/{name}/test"]
    assert register_local(name, folder) == ids  # idempotent
    ds = pt.get_dataset(f"irds:gradrel/local/{name}/test")
    topics = ds.get_topics("text")
    assert list(topics["qid"]) == ["q1", "q2"] and topics["query"][0] == "What is the capital of Kenya?"
    qrels = ds.get_qrels()
    assert sorted(zip(qrels.qid, qrels.docno, qrels.label, strict=True)) == [
        ("q1", "d1", 2), ("q1", "d2", 1), ("q2", "d2", 2), ("q2", "d3", 0)]
    corpus = list(ds.get_corpus_iter(verbose=False))
    assert [d["docno"] for d in corpus] == ["d1", "d2", "d3"]
    assert corpus[1]["lang"] == "en" and corpus[2]["split"] == "train"  # manifest lang fills the gap
    import pandas as pd

    loaded = ds.text_loader("text")(pd.DataFrame({"qid": ["q1"], "docno": ["d3"]}))
    assert loaded["text"].tolist() == ["Mombasa is a port city."]
    meta = info(f"gradrel/local/{name}/test")
    assert meta.grades == {0: "not relevant", 1: "related", 2: "answers it"} and meta.default_rel == 1
    assert meta.grade_scale == (0, 1, 2)  # the manifest's scale, not the benchmark's 0..3
    assert meta.structural is False and meta.doc_lang == "en" and meta.split == "test"
    assert meta.fixed is False  # its files may be edited: pools are keyed on a hash of the documents


def test_shared_queries_file_is_restricted_to_each_split(tmp_path):
    import ir_datasets

    folder = make(
        tmp_path, queries__test__tsv=None,
        queries__jsonl='{"query_id": "q1", "text": "capital?"}\n{"query_id": "q2", "text": "where?"}\n'
                       '{"query_id": "q3", "text": "port?", "lang": "sw"}\n',
        qrels__train__txt="q3 0 d3 2\n",
    )
    name = _name()
    assert register_local(name, folder)[1:] == [f"gradrel/local/{name}/train", f"gradrel/local/{name}/test"]
    train = list(ir_datasets.load(f"gradrel/local/{name}/train").queries_iter())
    assert [(q.query_id, q.lang) for q in train] == [("q3", "sw")]
    assert [q.query_id for q in ir_datasets.load(f"gradrel/local/{name}/test").queries_iter()] == ["q1", "q2"]


def test_discovery_under_gradrel_home(tmp_path, monkeypatch):
    import ir_datasets

    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    name = _name()
    src = make(tmp_path)
    (tmp_path / "home" / "collections").mkdir(parents=True)
    src.rename(tmp_path / "home" / "collections" / name)
    ds = ir_datasets.load(f"gradrel/local/{name}/test")
    assert [q.query_id for q in ds.queries_iter()] == ["q1", "q2"]
    assert info(f"gradrel/local/{name}/test").default_rel == 1
    with pytest.raises(LocalCollectionError, match=r"no split 'dev'; available: \['test'\]"):
        ir_datasets.load(f"gradrel/local/{name}/dev")
    with pytest.raises(LocalCollectionError, match="register_local"):
        ir_datasets.load(f"gradrel/local/{_name()}/test")


@pytest.mark.parametrize("discovered", [True, False])
def test_pyterrier_shows_which_splits_exist(tmp_path, monkeypatch, discovered):
    """pt.get_dataset turns a provider's KeyError into "not found in provider 'irds'"; ours must get through."""
    import pyterrier as pt

    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    name = _name()
    if discovered:
        (tmp_path / "home" / "collections").mkdir(parents=True)
        make(tmp_path).rename(tmp_path / "home" / "collections" / name)
    else:
        register_local(name, make(tmp_path))
    with pytest.raises(LocalCollectionError, match=r"has no split 'train'; available: \['test'\]"):
        pt.get_dataset(f"irds:gradrel/local/{name}/train")
    with pytest.raises(LocalCollectionError, match=f"no local collection 'nope{name}'.*register_local"):
        pt.get_dataset(f"irds:gradrel/local/nope{name}/test")
    assert len(pt.get_dataset(f"irds:gradrel/local/{name}/test").get_qrels()) == 4


def test_name_conflicts_and_bad_names(tmp_path):
    name = _name()
    register_local(name, make(tmp_path))
    with pytest.raises(ValueError, match="already registered"):
        register_local(name, make(tmp_path))
    with pytest.raises(ValueError, match="must match"):
        register_local("bad/name", make(tmp_path))


@pytest.mark.parametrize("files, where, message", [
    ({"docs__jsonl": '{"doc_id": "d1", "text": "a"}\n{"doc_id": "d1", "text": "b"}\n'},
     "docs.jsonl:2", "duplicate doc_id 'd1' (first on line 1)"),
    ({"docs__jsonl": '{"doc_id": "d1", "text": "a"}\n{"doc_id": "d2", "text": \n'}, "docs.jsonl:2", "not valid JSON"),
    ({"docs__jsonl": '{"doc_id": "d1", "body": "a"}\n'}, "docs.jsonl:1", "'text' must be a string"),
    ({"docs__jsonl": '["d1", "a"]\n'}, "docs.jsonl:1", "expected a JSON object"),
    ({"docs__jsonl": '{"text": "a"}\n'}, "docs.jsonl:1", "'doc_id' must be a non-empty string"),
    ({"queries__test__tsv": "q1\tWhat?\nq1\tAgain?\n"}, "queries.test.tsv:2", "duplicate query_id 'q1'"),
    ({"queries__test__tsv": "q1 What?\n"}, "queries.test.tsv:1", "expected 2 tab-separated columns"),
    ({"qrels__test__txt": "q1 0 d1\n"}, "qrels.test.txt:1", "expected 4 columns"),
    ({"qrels__test__txt": "q1 0 d1 high\n"}, "qrels.test.txt:1", "grade must be an integer in [0, 1, 2]"),
    ({"qrels__test__txt": "q1 0 d1 2\nq1 0 d2 3\n"}, "qrels.test.txt:2", "grade 3 is outside the declared scale [0, 1, 2]"),
    ({"qrels__test__txt": "q1 0 d9 2\n"}, "qrels.test.txt:1", "unknown doc_id 'd9'"),
    ({"qrels__test__txt": "q7 0 d1 2\n"}, "qrels.test.txt:1", "unknown query_id 'q7'"),
    ({"qrels__test__txt": "q1 0 d1 2\nq1 0 d1 1\n"}, "qrels.test.txt:2", "duplicate judgement for ('q1', 'd1')"),
    ({"queries__test__tsv": None}, "coll", "no queries for split 'test'"),
    ({"docs__jsonl": '{"doc_id": "d1", "text": "a"}\n{"doc_id": "d2", "text": "  \\t "}\n'},
     "docs.jsonl:2", "'text' is empty or only whitespace"),
    ({"docs__jsonl": '{"doc_id": "d1", "text": ""}\n'}, "docs.jsonl:1", "'text' is empty or only whitespace"),
    ({"queries__test__tsv": "q1\tWhat?\nq2\t \n"}, "queries.test.tsv:2", "'text' is empty or only whitespace"),
    ({"queries__test__tsv": "q1\t\n"}, "queries.test.tsv:1", "'text' is empty or only whitespace"),
    ({"queries__test__tsv": None, "queries__jsonl": '{"query_id": "q1", "text": "x"}\n{"query_id": "q2", "text": ""}\n'},
     "queries.jsonl:2", "'text' is empty or only whitespace"),
    # a split other than train/dev/test: the sampler would silently never draw the document as a negative
    ({"docs__jsonl": '{"doc_id": "d1", "text": "a", "split": "train"}\n{"doc_id": "d2", "text": "b", "split": "Train"}\n'},
     "docs.jsonl:2", "'split' must be one of ['train', 'dev', 'test'] or left out, got 'Train'"),
    ({"docs__jsonl": '{"doc_id": "d1", "text": "a", "split": "training"}\n'},
     "docs.jsonl:1", "'split' must be one of ['train', 'dev', 'test'] or left out, got 'training'"),
    # ids with whitespace: qrels are split on whitespace, so no judgement could name them
    ({"docs__jsonl": '{"doc_id": "d1 ", "text": "a"}\n'}, "docs.jsonl:1", "'doc_id' 'd1 ' contains whitespace"),
    ({"docs__jsonl": '{"doc_id": "d1", "text": "a"}\n{"doc_id": "d 2", "text": "b"}\n'},
     "docs.jsonl:2", "'doc_id' 'd 2' contains whitespace"),
    ({"queries__test__tsv": "q1\tWhat?\nq 2\tWhere?\n"}, "queries.test.tsv:2", "'query_id' 'q 2' contains whitespace"),
    ({"queries__test__tsv": None, "queries__jsonl": '{"query_id": "q1", "text": "x"}\n{"query_id": "q2\\t", "text": "y"}\n'},
     "queries.jsonl:2", "'query_id' 'q2\\t' contains whitespace"),
    # a header line is not a query
    ({"queries__test__tsv": "query_id\ttext\nq1\tWhat?\nq2\tWhere?\n"}, "queries.test.tsv:1",
     "a header line ('query_id\\ttext'); the file has none: every line is query_id<TAB>text of one query"),
])
def test_bad_inputs_name_file_and_line(tmp_path, files, where, message):
    import ir_datasets

    folder = make(tmp_path, **files)
    name = _name()
    register_local(name, folder)  # registration is cheap; validation happens on load
    with pytest.raises(LocalCollectionError) as err:
        ds = ir_datasets.load(f"gradrel/local/{name}/test")
        list(ds.qrels_iter())
        list(ds.docs_iter())
    assert where in str(err.value) and message in str(err.value)
    assert str(folder) in str(err.value)


@pytest.mark.parametrize("files, message", [
    ({"manifest__yaml": "name: x\ncolour: blue\n"}, "unknown keys ['colour']"),
    ({"manifest__yaml": "grades: {0: none, 1: some}\ndefault_rel: 2\n"}, "default_rel must be one of [1]"),
    ({"manifest__yaml": "grades: [a, b]\n"}, "grades must map integer grades to texts"),
    ({"manifest__yaml": "grades: {0: none, 1.7: some}\ndefault_rel: 1\n"}, "grades: key 1.7 is not a grade"),
    ({"manifest__yaml": "grades: {0: none, true: some}\ndefault_rel: 1\n"},
     "grades: key True is a boolean, not a grade (YAML reads unquoted yes/no/on/off/true/false as booleans"),
    ({"manifest__yaml": "grades: {0: none, 1: some, '1': again}\ndefault_rel: 1\n"},
     "grades: keys 1 and '1' both name grade 1"),
    ({"manifest__yaml": "grades: {0: no, 1: some}\ndefault_rel: 1\n"},
     "grades: the text of grade 0 must be a string, got False (YAML reads unquoted"),
    ({"manifest__yaml": "grades: {0: none, 1: 5}\ndefault_rel: 1\n"}, "the text of grade 1 must be a string, got 5"),
    ({"manifest__yaml": "grades: {0: none, 1: some}\ndefault_rel: true\n"},
     "default_rel must be one of [1] (the declared grades above 0), got True"),
    ({"docs__jsonl": None}, "docs.jsonl: missing"),
    ({"qrels__test__txt": None}, "no qrels file"),
])
def test_bad_folder_or_manifest_fails_at_registration(tmp_path, files, message):
    with pytest.raises(LocalCollectionError) as err:
        register_local(_name(), make(tmp_path, **files))
    assert message in str(err.value)


def test_manifest_grade_keys_may_be_digit_strings(tmp_path):
    """JSON keys are strings: '0'..'2' are the grades 0..2, the same scale as YAML's integer keys."""
    manifest = json.dumps({"grades": {"0": "not relevant", "1": "related", "2": "answers it"}, "default_rel": 2})
    folder = make(tmp_path, manifest__yaml=None, manifest__json=manifest)
    m = _local.read_manifest(folder)
    assert m.grades == {0: "not relevant", 1: "related", 2: "answers it"} and m.default_rel == 2
    assert len(_local.load_split(folder, "test").qrels) == 4


def test_the_default_scale_is_0_to_3_and_json_manifest_works(tmp_path):
    folder = make(tmp_path, manifest__yaml=None, qrels__test__txt="q1 0 d1 3\nq2 0 d2 4\n")
    name = _name()
    register_local(name, folder)
    assert info(f"gradrel/local/{name}/test").grades.keys() == {0, 1, 2, 3}
    with pytest.raises(LocalCollectionError, match=re.escape("grade 4 is outside the declared scale [0, 1, 2, 3]")):
        _local.load_split(folder, "test")
    folder2 = make(tmp_path, manifest__yaml=None, manifest__json=json.dumps({"lang": "sw", "default_rel": 3}))
    assert _local.read_manifest(folder2).lang == "sw"


def test_edits_are_picked_up_and_validated_again(tmp_path):
    folder = make(tmp_path)
    assert len(_local.load_split(folder, "test").qrels) == 4
    (folder / "qrels.test.txt").write_text(QRELS_TEST + "q2 0 d1 1\n", encoding="utf-8")
    assert len(_local.load_split(folder, "test").qrels) == 5
    (folder / "qrels.test.txt").write_text(QRELS_TEST + "q2 0 dX 1\n", encoding="utf-8")
    with pytest.raises(LocalCollectionError, match=r"qrels.test.txt:5: unknown doc_id 'dX'"):
        _local.load_split(folder, "test")


def test_cli_check(tmp_path, capsys):
    from pyterrier_gradrel.cli import main

    folder = make(tmp_path)
    name = _name()
    assert main(["datasets", "check", str(folder), "--name", name]) == 0
    out = capsys.readouterr().out
    assert "test: 3 docs, 2 queries, qrels per grade {0: 1, 1: 1, 2: 2}" in out
    assert f"gradrel/local/{name}/test" in out


@pytest.mark.parametrize("file, content, where", [
    ("docs.jsonl", b'{"doc_id": "d1", "text": "Nairobi"}\n{"doc_id": "d2", "text": "Kenya \xe9t\xe9"}\n', "docs.jsonl:2"),
    ("queries.test.tsv", b"q1\tcapital?\nq2\twhere?\n\n q3\t\xff\n", "queries.test.tsv:4"),
    ("qrels.test.txt", b"q1 0 d1 2\nq2 0 d2 2\xa0\n", "qrels.test.txt:2"),
])
def test_non_utf8_bytes_name_file_and_line(tmp_path, file, content, where):
    """Latin-1 bytes in a collection file: not a bare UnicodeDecodeError but file:line and the byte."""
    folder = make(tmp_path)
    (folder / file).write_bytes(content)
    with pytest.raises(LocalCollectionError) as err:
        _local.load_split(folder, "test")
    assert str(folder / where.split(":")[0]) + ":" + where.split(":")[1] in str(err.value)
    assert "not valid UTF-8" in str(err.value) and "byte 0x" in str(err.value)


BOM = "\ufeff"


@pytest.mark.parametrize("bom_in", ["queries.test.tsv", "qrels.test.txt", "docs.jsonl", "manifest.yaml"])
def test_a_utf8_byte_order_mark_at_the_start_of_a_file_is_ignored(tmp_path, bom_in):
    """Editors that save 'UTF-8 with BOM' put U+FEFF before the first id: it is not part of it."""
    folder = make(tmp_path)
    path = folder / bom_in
    path.write_text(BOM + path.read_text(encoding="utf-8"), encoding="utf-8")
    split = _local.load_split(folder, "test")
    assert sorted(q.query_id for q in split.queries) == ["q1", "q2"]
    assert sorted((r.query_id, r.doc_id) for r in split.qrels) == [("q1", "d1"), ("q1", "d2"), ("q2", "d2"),
                                                                   ("q2", "d3")]
    assert [d.doc_id for d in _local.load_docs(folder).docs] == ["d1", "d2", "d3"]
    assert _local.read_manifest(folder).default_rel == 1
    assert not _local.check(folder).errors


def test_a_byte_order_mark_inside_a_file_is_still_part_of_the_text(tmp_path):
    folder = make(tmp_path, queries__test__tsv=f"q1\tWhat is the capital of Kenya?\n{BOM}q2\tWhere is Kenya?\n")
    with pytest.raises(LocalCollectionError, match=re.escape("qrels.test.txt:3: unknown query_id 'q2'")):
        _local.load_split(folder, "test")


def test_non_utf8_manifest_names_the_file(tmp_path):
    folder = make(tmp_path, manifest__yaml=None)
    (folder / "manifest.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(LocalCollectionError, match=re.escape(f"{folder / 'manifest.yaml'}: not valid UTF-8")):
        _local.read_manifest(folder)


def test_check_reports_bad_splits_ids_and_headers_each_with_its_line(tmp_path):
    docs = ('{"doc_id": "d1", "text": "a", "split": "Train"}\n{"doc_id": "d2 ", "text": "b"}\n'
            '{"doc_id": "d3", "text": "c", "split": "dev"}\n')
    folder = make(tmp_path, docs__jsonl=docs, queries__test__tsv="query_id\ttext\nq1\tx\n",
                  qrels__test__txt="q1 0 d3 2\n")
    report = _local.check(folder)
    assert [e.split(": ", 1)[0].rsplit("/", 1)[-1] for e in report.errors] == [
        "docs.jsonl:1", "docs.jsonl:2", "queries.test.tsv:1"]
    assert [q.query_id for q in report.splits["test"].queries] == ["q1"]  # the header is not a query
    assert [d.split for d in report.splits["test"].pool.docs] == ["dev"]
