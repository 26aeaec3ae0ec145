"""BM25 over PISA: index built once per (collection, language, tokenizer) and reused; every script retrieves."""
from __future__ import annotations

import logging
import re

import pandas as pd
import pytest
from _retrieval_fixtures import NEW_DOCS, TINY_DOCS, DriftingDataset, TinyDataset

from pyterrier_gradrel.retrieval import BM25, ScriptTokenizer, bm25, bm25_index, build_count, get_tokenizer


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path))
    return tmp_path


def _docs():
    return [{"docno": d, "text": t} for d, t in TINY_DOCS]


def _pool_name(docs=TINY_DOCS) -> str:
    """The pool key of ``TinyDataset()`` (read from a copy, so the caller's read count stays as it was)."""
    from pyterrier_gradrel.retrieval import corpus_key

    collection, lang = corpus_key(TinyDataset(docs=docs))
    assert re.fullmatch(r"local-tiny-retrieval-[0-9a-f]{12}", collection) and lang == "und"
    return collection


def _self_retrieval(retriever):
    """Every document's own text, used as a query, must retrieve that document first."""
    topics = pd.DataFrame({"qid": [d for d, _ in TINY_DOCS], "query": [t for _, t in TINY_DOCS]})
    res = retriever(topics)
    top = res[res["rank"] == 0].set_index("qid")["docno"]
    return {qid: top.get(qid) for qid in topics["qid"]}


def test_every_script_retrieves_itself_with_the_script_tokenizer(home):
    tok = ScriptTokenizer()
    retr = BM25(bm25_index(_docs(), name="tiny.script", tokenizer=tok), tokenizer=tok)
    assert _self_retrieval(retr) == {d: d for d, _ in TINY_DOCS}


def test_every_script_retrieves_itself_with_a_subword_tokenizer(home, tiny_encoder_dir):
    tok = get_tokenizer(f"subword:{tiny_encoder_dir}")
    retr = BM25(bm25_index(_docs(), name="tiny.subword", tokenizer=tok), tokenizer=tok)
    assert _self_retrieval(retr) == {d: d for d, _ in TINY_DOCS}


def test_short_queries_in_spaceless_scripts_match(home):
    retr = bm25(TinyDataset(), tokenizer="script")
    res = retr(pd.DataFrame({"qid": ["th", "zh", "hi", "ar"], "query": ["สุนัข", "狐狸", "लोमड़ी", "الثعلب"]}))
    top = res[res["rank"] == 0].set_index("qid")["docno"].to_dict()
    assert top == {"th": "th-0", "zh": "zh-0", "hi": "hi-0", "ar": "ar-0"}
    assert list(res.columns) == ["qid", "query", "docno", "score", "rank"]


def test_index_is_built_once_and_reused(home):
    ds = TinyDataset()
    first = bm25(ds, tokenizer="script")
    path = first.index.path
    assert path.parent == home / "indexes"
    assert path.name == f"pisa.{_pool_name()}.und.{ScriptTokenizer().name}"
    mtime = (path / "gradrel_index.json").stat().st_mtime_ns
    builds, reads = build_count(path), ds.corpus_reads
    assert builds == 1 and reads == 2  # one read hashes the documents (the pool's key), one builds
    second = bm25(ds, tokenizer="script", k1=1.2, b=0.75)  # k1/b are query-time: same index
    assert second.index.path == path
    assert build_count(path) == 1 and ds.corpus_reads == 3  # hashed again, not built
    assert (path / "gradrel_index.json").stat().st_mtime_ns == mtime
    assert "k1=1.2" in repr(second) and "b=0.75" in repr(second) and str(path) in repr(second)
    q = pd.DataFrame({"qid": ["1"], "query": ["capital of France"]})
    assert first(q)["score"].iloc[0] != second(q)["score"].iloc[0]
    # another tokenizer is another index
    other = bm25(ds, tokenizer=ScriptTokenizer(ngram=3))
    assert other.index.path != path and build_count(other.index.path) == 1


def _installed_pisa(monkeypatch, version: str) -> None:
    """Make importlib.metadata report ``version`` as the installed pyterrier-pisa."""
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda dist: version if dist == "pyterrier-pisa" else real(dist))


def test_another_pyterrier_pisa_builds_its_own_index(home, monkeypatch):
    """pyterrier-pisa's wheel is PISA (index format, scoring): an upgraded one never opens the old one's index. The
    reference version keeps the folder names made before the version entered them; each index records its version."""
    import json

    from pyterrier_gradrel.retrieval import _engine

    ds = TinyDataset()
    _installed_pisa(monkeypatch, _engine.REFERENCE_PISA)
    old = bm25(ds, tokenizer="script")
    assert old.index.path.name == f"pisa.{_pool_name()}.und.{ScriptTokenizer().name}"
    assert json.loads((old.index.path / "gradrel_index.json").read_text())["pyterrier-pisa"] == _engine.REFERENCE_PISA

    _installed_pisa(monkeypatch, "0.5.0")
    new = bm25(ds, tokenizer="script")
    assert new.index.path == old.index.path.with_name(f"{old.index.path.name}.pisa-0.5.0")
    assert build_count(new.index.path) == 1 and ds.corpus_reads == 4  # hashed and built, not reopened
    assert json.loads((new.index.path / "gradrel_index.json").read_text())["pyterrier-pisa"] == "0.5.0"
    assert bm25(ds, tokenizer="script").index.path == new.index.path and ds.corpus_reads == 5  # then reused
    # the old version's index, opened directly or as an index= folder, is refused
    with pytest.raises(ValueError, match="built by pyterrier-pisa 0.4.9, not the installed 0.5.0"):
        BM25(old.index, tokenizer=ScriptTokenizer())
    with pytest.raises(ValueError, match="holds a BM25 index of pyterrier-pisa '0.4.9', not '0.5.0'"):
        bm25(ds, tokenizer="script", index=old.index.path)


def test_an_index_recorded_before_the_pisa_version_counts_as_the_reference_versions(home, tmp_path, monkeypatch):
    import json

    from pyterrier_gradrel.retrieval import _engine

    folder = tmp_path / "legacy"
    _installed_pisa(monkeypatch, _engine.REFERENCE_PISA)
    bm25(TinyDataset(), tokenizer="script", index=folder)
    meta = json.loads((folder / "gradrel_index.json").read_text())
    del meta["pyterrier-pisa"]
    (folder / "gradrel_index.json").write_text(json.dumps(meta))
    assert bm25(TinyDataset(), tokenizer="script", index=folder).index.path == folder
    assert build_count(folder) == 1
    _installed_pisa(monkeypatch, "0.5.0")
    with pytest.raises(ValueError, match="holds a BM25 index of pyterrier-pisa '0.4.9', not '0.5.0'"):
        bm25(TinyDataset(), tokenizer="script", index=folder)


def test_index_built_with_another_tokenizer_is_refused(home):
    index = bm25_index(_docs(), name="tiny.x", tokenizer=ScriptTokenizer())
    with pytest.raises(ValueError, match="was built with tokenizer 'script-ng2-arnorm'"):
        BM25(index, tokenizer=ScriptTokenizer(ngram=3))


def test_empty_frames_and_termless_queries(home, caplog):
    retr = bm25(TinyDataset(), tokenizer="script")
    empty = retr(pd.DataFrame({"qid": pd.Series([], dtype=str), "query": pd.Series([], dtype=str)}))
    assert empty.empty and list(empty.columns) == ["qid", "query", "docno", "score", "rank"]
    with caplog.at_level(logging.WARNING):
        res = retr(pd.DataFrame({"qid": ["a", "b"], "query": ["?!", "fox"]}))
    assert set(res["qid"]) == {"b"}
    assert "have no BM25 terms" in caplog.text and "'a'" in caplog.text
    only_empty = retr(pd.DataFrame({"qid": ["a"], "query": ["..."]}))
    assert only_empty.empty


def test_validation_names_allowed_values(home):
    ds = TinyDataset()
    with pytest.raises(ValueError, match="b must be in \\[0, 1\\]"):
        bm25(ds, tokenizer="script", b=2)
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        bm25(ds, tokenizer="nltk")
    with pytest.raises(ValueError, match="corpus has no documents"):
        bm25_index([], name="empty", tokenizer=ScriptTokenizer())
    assert not (home / "indexes" / "empty").exists()


def test_rank_cutoff(home):
    retr = bm25(TinyDataset(), tokenizer="script")
    query = pd.DataFrame({"qid": ["1"], "query": ["the capital fox dog"]})
    res = (retr % 2)(query)
    assert len(res) == 2 and list(res["rank"]) == [0, 1]
    # the cut-off can be pushed into PISA: it then retrieves only k results
    short = retr.fuse_rank_cutoff(2)
    assert short.num_results == 2 and short.index.path == retr.index.path
    pd.testing.assert_frame_equal(short(query), res.reset_index(drop=True))
    assert retr.fuse_rank_cutoff(5000) is None


def _local_collection(folder, docs):
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs.jsonl").write_text("".join(json.dumps({"doc_id": d, "text": t}) + "\n" for d, t in docs))
    (folder / "queries.tsv").write_text("q1\tcapital of France\n")
    (folder / "qrels.test.txt").write_text(f"q1 0 {docs[0][0]} 3\n")
    (folder / "manifest.json").write_text(json.dumps({"lang": "en"}))
    return folder


def test_local_collections_get_their_own_index_and_edits_invalidate_it(home, tmp_path):
    from pyterrier_gradrel.datasets import register_local
    from pyterrier_gradrel.retrieval import corpus_key

    register_local("retrtest-a", _local_collection(tmp_path / "a", [("x1", "Paris is the capital of France.")]))
    register_local("retrtest-b", _local_collection(tmp_path / "b", [("y1", "Berlin is the capital of Germany.")]))
    key_a, key_b = corpus_key("gradrel/local/retrtest-a/test"), corpus_key("gradrel/local/retrtest-b/test")
    assert key_a != key_b and key_a[1] == "en" and key_a[0].startswith("local-retrtest-a-")
    run = bm25("gradrel/local/retrtest-b/test", tokenizer="script")(pd.DataFrame({"qid": ["q"], "query": ["capital"]}))
    assert list(run["docno"]) == ["y1"]
    _local_collection(tmp_path / "a", [("x2", "Rome is the capital of Italy.")])
    assert corpus_key("gradrel/local/retrtest-a/test") != key_a


def test_index_folder_is_built_once_and_exposes_the_pisa_index(home, tmp_path):
    from pyterrier_pisa import PisaIndex

    folder = tmp_path / "my-bm25"
    ds = TinyDataset()
    first = bm25(ds, tokenizer="script", index=folder)
    assert isinstance(first.index, PisaIndex) and first.index.path == folder
    assert (folder / "gradrel_index.json").is_file() and not (home / "indexes").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("my-bm25")) == ["my-bm25"]  # no lock litter
    assert build_count(folder) == 1 and ds.corpus_reads == 2  # hashed (the pool's key) and built
    again = bm25(ds, tokenizer="script", index=str(folder), k1=1.2)
    assert build_count(folder) == 1 and ds.corpus_reads == 3  # hashed, not built
    q = pd.DataFrame({"qid": ["1"], "query": ["capital of France"]})
    assert again(q)["docno"].iloc[0] == "en-1"
    # the conventional PisaIndex API works on the same folder (PISA's own tokenizer: ASCII text only)
    assert PisaIndex(str(folder), stemmer="none").num_docs() == len(TINY_DOCS)


def test_index_folder_of_another_corpus_or_tokenizer_or_anything_else_is_refused(home, tmp_path):
    folder = tmp_path / "idx"
    bm25(TinyDataset(), tokenizer="script", index=folder)
    with pytest.raises(ValueError, match=r"holds a BM25 index of corpus 'local-tiny-retrieval-[0-9a-f]{12}\.und', "
                                         r"not 'local-other-[0-9a-f]{12}\.und'"):
        bm25(TinyDataset(name="local/other", docs=TINY_DOCS[:3]), tokenizer="script", index=folder)
    with pytest.raises(ValueError, match="holds a BM25 index of tokenizer 'script-ng2-arnorm'"):
        bm25(TinyDataset(), tokenizer=ScriptTokenizer(ngram=3), index=folder)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no pyterrier-gradrel BM25 index"):
        bm25(TinyDataset(), tokenizer="script", index=stray)
    assert (stray / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert bm25(TinyDataset(), tokenizer="script", index=empty).index.path == empty


def test_cold_builds_and_first_queries_print_nothing_unless_verbose(home, capfd):
    capfd.readouterr()
    retr = bm25(TinyDataset(), tokenizer="script")
    res = retr(pd.DataFrame({"qid": ["1"], "query": ["capital of France"]}))
    print("after")
    out, err = capfd.readouterr()
    assert not res.empty
    assert out == "after\n", out
    assert err == "", err[:500]


def test_verbose_sends_pisa_log_to_stderr_never_stdout(home, capfd):
    capfd.readouterr()
    retr = bm25(TinyDataset(), tokenizer="script", verbose=True)
    res = retr(pd.DataFrame({"qid": ["1"], "query": ["capital of France"]}))
    out, err = capfd.readouterr()
    assert not res.empty
    assert out == "", out[:500]
    assert "[info]" in err.lower()


def test_quiet_native_output_is_shown_when_the_block_fails(capfd):
    import os
    import sys

    from pyterrier_gradrel.retrieval._bm25 import native_stdout

    capfd.readouterr()
    with native_stdout(verbose=False):
        os.write(1, b"native out\n")
        os.write(2, b"native err\n")
    assert capfd.readouterr() == ("", "")
    with pytest.raises(RuntimeError, match="build failed"), native_stdout(verbose=False):
        os.write(1, b"native out\n")
        os.write(2, b"native err\n")
        print("python log", file=sys.stderr)
        raise RuntimeError("build failed")
    out, err = capfd.readouterr()
    assert out == "" and err == "native out\nnative err\npython log\n"


def test_topics_without_a_query_column_hint_at_get_topics_text(home):
    import pyterrier as pt

    retr = bm25(TinyDataset(), tokenizer="script")
    with pytest.raises(pt.validate.InputValidationError, match=r"get_topics\('text'\)"):
        retr(pd.DataFrame({"qid": ["1"], "text": ["capital of France"], "lang": ["en"]}))


EVEREST = pd.DataFrame({"qid": ["1"], "query": ["Everest"]})


def test_changed_documents_under_one_name_get_their_own_index(home):
    """A dataset object (no ``gradrel/`` id, no ir_datasets id) is keyed on its documents, not on its name alone:
    the index of other documents under the same name was reused, so a word only in the new documents found
    nothing."""
    old = bm25(TinyDataset("my/pool", TINY_DOCS[:3]), tokenizer="script")
    new = bm25(TinyDataset("my/pool", NEW_DOCS), tokenizer="script")
    assert new.index.path != old.index.path and build_count(new.index.path) == 1
    assert list(new(EVEREST)["docno"]) == ["new-0"]
    assert old(EVEREST).empty
    # the same object, its documents edited in place: the next call hashes them again
    ds = TinyDataset("my/pool", TINY_DOCS[:3])
    assert bm25(ds, tokenizer="script").index.path == old.index.path
    ds.docs[:] = NEW_DOCS
    assert list(bm25(ds, tokenizer="script")(EVEREST)["docno"]) == ["new-0"]


def test_ids_and_ir_datasets_objects_keep_their_pool_keys_and_are_not_read(home):
    """What committed results were made with keeps its key: ids and ir_datasets datasets are named, not hashed."""
    from pyterrier_gradrel.retrieval import corpus_key

    irds = TinyDataset("ignored")
    irds._irds_id = "some/dataset"  # as PyTerrier's IRDSDataset
    assert corpus_key(irds) == ("some-dataset", "und") and irds.corpus_reads == 0
    assert corpus_key("irds:some/dataset") == corpus_key("some/dataset") == ("some-dataset", "und")


def test_documents_that_change_between_hashing_and_building_are_not_cached(home, tmp_path):
    with pytest.raises(ValueError, match="changed between reading them for the pool's identity and building"):
        bm25(DriftingDataset("my/drift", TINY_DOCS[:3]), tokenizer="script")
    assert [p.name for p in (home / "indexes").iterdir() if not p.name.endswith(".lock")] == []  # nothing cached
    with pytest.raises(ValueError, match="changed between reading them"):
        bm25(DriftingDataset("my/drift", TINY_DOCS[:3]), tokenizer="script", index=tmp_path / "drift")
    assert not (tmp_path / "drift").exists() or not any((tmp_path / "drift").iterdir())
