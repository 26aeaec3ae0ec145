"""Dense retrieval: embeddings cached per (encoder fingerprint, corpus); every back-end answers every query."""
from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from _retrieval_fixtures import NEW_DOCS, TINY_DOCS, DriftingDataset, TinyDataset, folder_bi_encoder
from conftest import build_tiny_encoder

from pyterrier_gradrel.retrieval import BACKENDS, DenseScorer, dense, dense_index, encode_count


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def encoder(tiny_encoder_dir):
    return folder_bi_encoder(tiny_encoder_dir)


TOPICS = pd.DataFrame({"qid": ["q1", "q2", "q3"], "query": ["capital of France", "狐狸", "สุนัข"]})


def _docs():
    return ({"docno": d, "text": t} for d, t in TINY_DOCS)


def test_same_fingerprint_reuses_vectors(home, encoder):
    ds = TinyDataset()
    first = dense(encoder, ds)
    path = first.index.index_path
    assert path.parent == home / "embeddings" / encoder.fingerprint()[:16]
    assert encode_count(path) == 1 and ds.corpus_reads == 2  # one read hashes the documents (the pool's key)
    mtime = (path / "vecs.f4").stat().st_mtime_ns
    second = dense(encoder, ds, backend="torch")
    assert second.index.index_path == path
    assert encode_count(path) == 1 and ds.corpus_reads == 3  # hashed again, not encoded
    assert (path / "vecs.f4").stat().st_mtime_ns == mtime
    meta = json.loads((path / "gradrel_embeddings.json").read_text())
    assert meta["fingerprint"] == encoder.fingerprint() and meta["docs"] == len(TINY_DOCS)


def test_changed_model_is_re_encoded(home, encoder, tiny_encoder_dir, tmp_path):
    ds = TinyDataset()
    old = dense(encoder, ds).index
    changed_dir = build_tiny_encoder(tmp_path / "changed", seed=1)
    changed = folder_bi_encoder(changed_dir)
    assert changed.fingerprint() != encoder.fingerprint()
    new = dense(changed, ds).index
    assert new.index_path != old.index_path
    assert encode_count(new.index_path) == 1 and ds.corpus_reads == 4  # each model: hashed, then encoded
    assert not np.allclose(np.asarray(new.np_vecs()), np.asarray(old.np_vecs()))
    expected = changed.encode_docs([t for _, t in TINY_DOCS])
    np.testing.assert_allclose(np.asarray(new.np_vecs()), expected, atol=1e-5)


def test_cache_holding_another_fingerprint_is_rebuilt(home, encoder):
    index = dense_index(encoder, _docs(), corpus="tiny")
    meta_path = index.index_path / "gradrel_embeddings.json"
    meta = json.loads(meta_path.read_text())
    meta["fingerprint"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    again = dense_index(encoder, _docs(), corpus="tiny")
    assert encode_count(again.index_path) == 2
    assert json.loads(meta_path.read_text())["fingerprint"] == encoder.fingerprint()


def test_encoder_without_fingerprint_is_refused(home, encoder):
    class NoFingerprint:
        pass

    with pytest.raises(TypeError, match="must have a fingerprint"):
        dense_index(NoFingerprint(), _docs(), corpus="tiny")


def _needs_faiss():
    pytest.importorskip("faiss", reason="faiss is an optional extra: pip install 'pyterrier-gradrel[faiss]'")


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_answers_every_query(home, encoder, backend):
    if backend.startswith("faiss"):
        _needs_faiss()
    retr = dense(encoder, TinyDataset(), backend=backend, num_results=5)
    res = retr(TOPICS)
    assert set(res["qid"]) == set(TOPICS["qid"])
    assert res.groupby("qid").size().max() <= 5
    assert "query_vec" not in res.columns
    assert list(res.columns[:5]) == ["qid", "query", "docno", "score", "rank"]
    # exact back-ends agree with the numpy reference
    ref = dense(encoder, TinyDataset(), backend="numpy", num_results=5)(TOPICS)
    if backend != "faiss-hnsw":  # "auto" is numpy for a pool this small
        for qid in TOPICS["qid"]:
            assert list(res[res.qid == qid].docno) == list(ref[ref.qid == qid].docno)
    empty = retr(TOPICS.iloc[:0])
    assert empty.empty and "docno" in empty.columns


def test_bad_backend_names_the_allowed_values(home, encoder):
    with pytest.raises(ValueError, match=r"backend must be one of \['numpy', 'torch', 'faiss-flat', 'faiss-hnsw', 'auto'\]"):
        dense(encoder, TinyDataset(), backend="annoy")


def test_scorer_reranks_with_cached_vectors(home, encoder):
    index = dense_index(encoder, _docs(), corpus="tiny")
    cand = pd.DataFrame({"qid": ["q1"] * 3, "query": ["capital of France"] * 3,
                         "docno": ["en-0", "en-1", "zh-0"], "score": [3.0, 2.0, 1.0], "rank": [0, 1, 2]})
    res = DenseScorer(encoder, index)(cand)
    assert sorted(res["docno"]) == ["en-0", "en-1", "zh-0"]
    qv = encoder.encode_queries(["capital of France"])[0]
    dv = encoder.encode_docs([dict(TINY_DOCS)[d] for d in res["docno"]])
    np.testing.assert_allclose(res["score"].to_numpy(), dv @ qv, atol=1e-5)
    assert list(res["rank"]) == [0, 1, 2] and res["score"].is_monotonic_decreasing
    assert DenseScorer(encoder, index)(cand.iloc[:0]).empty


def test_interrupted_build_leaves_no_cache(home, encoder):
    def broken():
        yield {"docno": "a", "text": "fine"}
        raise RuntimeError("corpus read failed")

    with pytest.raises(RuntimeError, match="corpus read failed"):
        dense_index(encoder, broken(), corpus="broken")
    folder = home / "embeddings" / encoder.fingerprint()[:16]
    assert not (folder / "broken.flex").exists()
    shutil.rmtree(folder, ignore_errors=True)


def test_auto_backend_switches_to_hnsw_for_large_pools(home, encoder, monkeypatch):
    from pyterrier_gradrel.retrieval import _dense

    _needs_faiss()

    small = dense(encoder, TinyDataset(), backend="auto")
    small(TOPICS)
    assert type(small._retriever).__name__ == "NumpyRetriever"
    monkeypatch.setattr(_dense, "HNSW_MIN_DOCS", 5)
    large = dense(encoder, TinyDataset(), backend="auto")
    assert set(large(TOPICS)["qid"]) == set(TOPICS["qid"])
    assert type(large._retriever).__name__ == "FaissRetriever"
    assert large._retriever.index_spec[0] == "faiss_hnsw"


def test_union_pool_reuses_the_vectors_of_its_parts(home, encoder):
    """XQuAD-R's multi pool is the union of the language pools: cached parts are not encoded again."""
    docs = [{"docno": d, "text": t} for d, t in TINY_DOCS]
    first = dense_index(encoder, docs[:4], corpus="toyc.a", reuse_collection="toyc")
    second = dense_index(encoder, docs[4:8], corpus="toyc.b", reuse_collection="toyc")
    union = dense_index(encoder, docs[:8], corpus="toyc.multi", reuse_collection="toyc")
    assert encode_count(first.index_path) == encode_count(second.index_path) == 1
    assert encode_count(union.index_path) == 0
    meta = json.loads((union.index_path / "gradrel_embeddings.json").read_text())
    assert (meta["encoded"], meta["reused"], meta["docs"]) == (0, 8, 8)
    docnos, vecs, _ = union.payload()
    assert [str(d) for d in docnos] == [d["docno"] for d in docs[:8]]
    direct = dense_index(encoder, docs[:8], corpus="toyc.direct")  # reuse not asked for: encoded from scratch
    assert encode_count(direct.index_path) == 1
    np.testing.assert_allclose(np.asarray(vecs), np.asarray(direct.payload()[1]), atol=1e-5)

    more = dense_index(encoder, docs, corpus="toyc.all", reuse_collection="toyc")  # only the 2 new ones are encoded
    meta = json.loads((more.index_path / "gradrel_embeddings.json").read_text())
    assert (meta["encoded"], meta["reused"]) == (2, 8) and encode_count(more.index_path) == 1
    np.testing.assert_allclose(np.asarray(more.payload()[1])[:8], np.asarray(vecs), atol=1e-5)


def test_vectors_of_another_model_are_not_reused(home, encoder):
    docs = [{"docno": d, "text": t} for d, t in TINY_DOCS]
    part = dense_index(encoder, docs[:4], corpus="toyd.a", reuse_collection="toyd")
    meta_path = part.index_path / "gradrel_embeddings.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "fingerprint": "0" * 64}))  # the part now claims another model
    union = dense_index(encoder, docs[:6], corpus="toyd.multi", reuse_collection="toyd")
    assert json.loads((union.index_path / "gradrel_embeddings.json").read_text())["encoded"] == 6


def test_vectors_are_reused_only_when_asked_and_only_within_the_collection(home, encoder):
    """A user's own corpora (or a local collection whose files changed) never take another pool's vectors."""
    docs = [{"docno": d, "text": t} for d, t in TINY_DOCS]
    dense_index(encoder, docs[:4], corpus="mine.v1", reuse_collection="mine")
    edited = [{"docno": d["docno"], "text": d["text"] + " (edited)"} for d in docs[:4]]
    v2 = dense_index(encoder, edited, corpus="mine.v2")  # same docnos, other texts, no reuse asked
    assert json.loads((v2.index_path / "gradrel_embeddings.json").read_text())["encoded"] == 4
    dense_index(encoder, docs[:4], corpus="coll.x.en", reuse_collection="coll.x")
    other = dense_index(encoder, docs[:4], corpus="coll.en", reuse_collection="coll")  # "coll.x" is not "coll"
    assert json.loads((other.index_path / "gradrel_embeddings.json").read_text())["encoded"] == 4


def test_without_faiss_auto_is_exact_and_faiss_backends_say_how_to_install(home, encoder, monkeypatch):
    from pyterrier_gradrel.retrieval import _dense

    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now fails, as when it is not installed
    monkeypatch.setattr(_dense, "HNSW_MIN_DOCS", 5)
    auto = dense(encoder, TinyDataset(), backend="auto")
    assert set(auto(TOPICS)["qid"]) == set(TOPICS["qid"])
    assert type(auto._retriever).__name__ == "NumpyRetriever"
    with pytest.raises(ImportError, match=r"pyterrier-gradrel\[faiss\]"):
        dense(encoder, TinyDataset(), backend="faiss-flat")(TOPICS)


def test_index_folder_is_encoded_once_and_exposes_the_flex_index(home, encoder, tmp_path):
    from pyterrier_dr import FlexIndex

    folder = tmp_path / "my.flex"
    ds = TinyDataset()
    first = dense(encoder, ds, index=folder)
    assert isinstance(first.index, FlexIndex) and first.index.index_path == folder
    assert not (home / "embeddings").exists() and encode_count(folder) == 1
    dense(encoder, ds, index=str(folder), backend="torch")
    assert encode_count(folder) == 1 and ds.corpus_reads == 3  # hashed twice, encoded once
    # the conventional pyterrier-dr pattern on the same folder gives the same ranking
    plain = (encoder.query_encoder() >> FlexIndex(str(folder)).np_retriever(num_results=5))(TOPICS)
    ours = first(TOPICS).query("rank < 5")
    assert list(plain["docno"]) == list(ours["docno"])


def test_index_folder_of_another_model_or_corpus_is_refused(home, encoder, tiny_encoder_dir, tmp_path):
    folder = tmp_path / "v.flex"
    dense(encoder, TinyDataset(), index=folder)
    other = folder_bi_encoder(build_tiny_encoder(tmp_path / "other-model", seed=1))
    with pytest.raises(ValueError, match="holds a dense index of fingerprint"):
        dense(other, TinyDataset(), index=folder)
    with pytest.raises(ValueError, match="holds a dense index of corpus"):
        dense(encoder, TinyDataset(name="local/other"), index=folder)
    assert encode_count(folder) == 1


def test_verbose_shows_the_encoder_progress_for_a_pool_of_any_size(home, encoder, monkeypatch):
    """``verbose=True`` turns the encoder's own per-batch bar on while the pool is encoded (a pool smaller than
    one block has no block bar), and leaves the encoder as it was."""
    seen = []
    original = type(encoder).encode_docs

    def spy(self, texts, batch_size=None):
        seen.append(self.verbose)
        return original(self, texts, batch_size)

    monkeypatch.setattr(type(encoder), "encode_docs", spy)
    before = encoder.verbose
    docs = [{"docno": d, "text": t} for d, t in TINY_DOCS]
    dense_index(encoder, docs, corpus="toyv.quiet")
    dense_index(encoder, docs, corpus="toyv.loud", verbose=True)
    assert seen == [before, True] and encoder.verbose == before


CANDIDATES = pd.DataFrame({"qid": ["q1"] * 3 + ["q2"] * 2,
                           "query": ["capital of France"] * 3 + ["狐狸"] * 2,
                           "docno": ["en-0", "en-1", "zh-0", "zh-0", "en-2"],
                           "score": [3.0, 2.0, 1.0, 2.0, 1.0], "rank": [0, 1, 2, 0, 1],
                           "lang": ["en"] * 3 + ["zh"] * 2})


def _expected_scores(encoder, cand):
    queries = dict(zip(cand["qid"], cand["query"], strict=False))
    qv = {q: encoder.encode_queries([t])[0] for q, t in queries.items()}
    dv = encoder.encode_docs([dict(TINY_DOCS)[d] for d in cand["docno"]])
    return np.array([dv[i] @ qv[q] for i, q in enumerate(cand["qid"])])


def test_dense_scorer_reranks_from_the_pool_cache(home, encoder):
    import pyterrier_gradrel as gr

    ds = TinyDataset()
    scorer = gr.dense_scorer(encoder, ds)
    assert isinstance(scorer, DenseScorer) and ds.corpus_reads == 2  # hashed, encoded
    res = scorer(CANDIDATES)
    assert res.groupby("qid").size().to_dict() == {"q1": 3, "q2": 2}
    np.testing.assert_allclose(res["score"].to_numpy(), _expected_scores(encoder, res), atol=1e-5)
    for _, group in res.groupby("qid"):
        assert group["score"].is_monotonic_decreasing and list(group["rank"]) == list(range(len(group)))
    assert list(res["lang"]) == ["en"] * 3 + ["zh"] * 2  # the input's other columns are kept
    # the pool is the one dense retrieval reads: no second encoding
    assert dense(encoder, ds).index.index_path == scorer.index.index_path
    assert encode_count(scorer.index.index_path) == 1 and ds.corpus_reads == 3  # hashed, not encoded


def test_dense_scorer_scores_and_ranks_as_pyterrier_drs_numpy_scorer(home, encoder, capfd):
    """The scorer computes pyterrier-dr's ``np_scorer`` scores (without its bar): same rows, order, scores."""
    import pyterrier_gradrel as gr

    scorer = gr.dense_scorer(encoder, TinyDataset())
    capfd.readouterr()
    ours = scorer(CANDIDATES)
    assert capfd.readouterr() == ("", "")  # no progress bar
    vecs = encoder.query_encoder()(CANDIDATES[["qid", "query"]].drop_duplicates("qid"))[["qid", "query_vec"]]
    theirs = scorer.index.np_scorer()(CANDIDATES.drop(columns=["score", "rank"]).merge(vecs, on="qid"))
    assert list(zip(ours["qid"], ours["docno"], ours["rank"], strict=True)) == list(
        zip(theirs["qid"], theirs["docno"], theirs["rank"], strict=True))
    np.testing.assert_array_equal(ours["score"].to_numpy(), theirs["score"].to_numpy())


def test_dense_scorer_looks_vectors_up_by_docno_never_by_an_incoming_docid(home, encoder):
    """Another engine's docids (e.g. a Terrier or PISA index's row numbers) are not this pool's rows."""
    import pyterrier_gradrel as gr

    scorer = gr.dense_scorer(encoder, TinyDataset())
    plain = scorer(CANDIDATES)
    foreign = [7, 0, 3, 1, 5]  # rows of some other index: looking these up would score other passages
    res = scorer(CANDIDATES.assign(docid=foreign))
    np.testing.assert_allclose(res["score"].to_numpy(), _expected_scores(encoder, res), atol=1e-5)
    pd.testing.assert_frame_equal(res.drop(columns="docid"), plain)
    # the incoming docid is kept as a column, unchanged, on the row it came with
    assert dict(zip(zip(res["qid"], res["docno"], strict=True), res["docid"], strict=True)) == dict(
        zip(zip(CANDIDATES["qid"], CANDIDATES["docno"], strict=True), foreign, strict=True))


def test_dense_scorer_refuses_docnos_that_are_not_in_the_pool(home, encoder):
    """A docno outside the pool looked up as row -1, i.e. the last passage's vector: a silent wrong score."""
    import pyterrier_gradrel as gr

    scorer = gr.dense_scorer(encoder, TinyDataset())
    extra = pd.DataFrame({"qid": ["q1"] * 3, "query": ["capital of France"] * 3, "docno": ["nope", "en-0", "gone"],
                          "score": [0.0] * 3, "rank": [3, 4, 5], "lang": ["en"] * 3})
    with pytest.raises(ValueError, match=r"2 docno\(s\) of the input are not in the pool .*\['nope', 'gone'\]"):
        scorer(pd.concat([CANDIDATES, extra], ignore_index=True))


def test_dense_scorer_refuses_a_qid_with_two_query_texts(home, encoder):
    """One query vector per qid: a second text under the same qid was silently scored as the first one."""
    import pyterrier_gradrel as gr

    two = CANDIDATES.assign(query=["capital of France", "Mount Everest", "capital of France", "狐狸", "狐狸"])
    text = two.assign(text=[dict(TINY_DOCS)[d] for d in two["docno"]])
    for scorer, inp in ((gr.dense_scorer(encoder, TinyDataset()), two), (gr.dense_scorer(encoder), text)):
        with pytest.raises(ValueError, match=r"1 qid\(s\) carry several different 'query' texts, e\.g\. "
                                             r"\{'q1': \['capital of France', 'Mount Everest'\]\}"):
            scorer(inp)
    # the same text on every row of a qid is one query
    assert len(gr.dense_scorer(encoder, TinyDataset())(CANDIDATES)) == len(CANDIDATES)


def test_dense_scorer_without_a_pool_encodes_the_text_column(home, encoder):
    import pyterrier_gradrel as gr

    cand = CANDIDATES.assign(text=[dict(TINY_DOCS)[d] for d in CANDIDATES["docno"]])
    from_text = gr.dense_scorer(encoder)(cand)
    from_pool = gr.dense_scorer(encoder, TinyDataset())(CANDIDATES)
    assert list(from_text["docno"]) == list(from_pool["docno"])
    np.testing.assert_allclose(from_text["score"].to_numpy(), from_pool["score"].to_numpy(), atol=1e-5)
    assert list(from_text["text"]) == [dict(TINY_DOCS)[d] for d in from_text["docno"]]
    assert gr.dense_scorer(encoder)(cand.iloc[:0]).empty


def test_dense_scorer_input_errors_name_the_fix(home, encoder):
    import pyterrier as pt

    import pyterrier_gradrel as gr

    with pytest.raises(pt.validate.InputValidationError, match=r"pt\.text\.get_text"):
        gr.dense_scorer(encoder)(CANDIDATES)
    with pytest.raises(pt.validate.InputValidationError, match=r"pyterrier_gradrel\.dense\(encoder, dataset\)"):
        gr.dense_scorer(encoder, TinyDataset())(TOPICS)
    with pytest.raises(ValueError, match="pass the dataset too"):
        gr.dense_scorer(encoder, index="somewhere")


def test_dense_on_ranked_input_names_dense_scorer(home, encoder):
    import pyterrier as pt

    import pyterrier_gradrel as gr

    ds = TinyDataset()
    pipeline = gr.bm25(ds, tokenizer="script") % 2 >> gr.dense(encoder, ds)
    with pytest.raises(pt.validate.InputValidationError, match=r"gr\.dense_scorer\(encoder, dataset\)"):
        pipeline(TOPICS)
    reranked = (gr.bm25(ds, tokenizer="script") % 2 >> gr.dense_scorer(encoder, ds))(TOPICS)
    assert not reranked.empty and reranked.groupby("qid").size().max() <= 2


def test_a_damaged_hnsw_graph_is_rebuilt_and_a_failed_write_leaves_none(home, encoder, monkeypatch):
    """The cached HNSW graph is readable by a later process (pyterrier-dr's own file is refused by FAISS 1.15:
    'HNSW storage ntotal 0 != index ntotal'), and a truncated one (a writer killed half-way: pyterrier-dr wrote it
    in place) is rebuilt instead of failing every later ``faiss-hnsw`` retrieval over the pool."""
    _needs_faiss()
    import faiss

    from pyterrier_gradrel.retrieval import _dense

    first = dense(encoder, TinyDataset(), backend="faiss-hnsw", num_results=5)
    expected = first(TOPICS)
    graph = first.index.index_path / _dense.HNSW_GRAPH
    # a new process: a fresh FlexIndex reads the graph from disk
    pd.testing.assert_frame_equal(dense(encoder, TinyDataset(), backend="faiss-hnsw", num_results=5)(TOPICS), expected)
    data = graph.read_bytes()
    graph.write_bytes(data[: len(data) // 2])  # what a writer killed half-way leaves
    again = dense(encoder, TinyDataset(), backend="faiss-hnsw", num_results=5)
    pd.testing.assert_frame_equal(again(TOPICS), expected)
    assert faiss.read_index(str(graph)).ntotal == len(TINY_DOCS)

    graph.unlink()

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(faiss, "write_index", killed)
    with pytest.raises(KeyboardInterrupt):
        dense(encoder, TinyDataset(), backend="faiss-hnsw")(TOPICS)
    assert not graph.exists()  # written beside it and renamed into place: nothing half-written




def test_changed_documents_under_one_name_get_their_own_vectors(home, encoder):
    """A dataset object (no ``gradrel/`` id, no ir_datasets id) is keyed on its documents, not on its name alone:
    the vectors of other documents under the same name were reused, so retrieval returned the old docnos."""
    import pyterrier_gradrel as gr

    old = dense(encoder, TinyDataset("my/pool", TINY_DOCS[:3]))
    new_ds = TinyDataset("my/pool", NEW_DOCS)
    new = dense(encoder, new_ds)
    assert new.index.index_path != old.index.index_path and encode_count(new.index.index_path) == 1
    assert set(new(TOPICS)["docno"]) == {"new-0", "new-1"}
    np.testing.assert_allclose(np.asarray(new.index.np_vecs()), encoder.encode_docs([t for _, t in NEW_DOCS]),
                               atol=1e-5)
    # the re-ranker reads the same pool: the new docnos are in it
    cand = pd.DataFrame({"qid": ["q1", "q1"], "query": ["capital"] * 2, "docno": ["new-0", "new-1"]})
    assert gr.dense_scorer(encoder, new_ds).index.index_path == new.index.index_path
    assert set(gr.dense_scorer(encoder, new_ds)(cand)["docno"]) == {"new-0", "new-1"}


def test_documents_that_change_between_hashing_and_encoding_are_not_cached(home, encoder):
    with pytest.raises(ValueError, match="changed between reading them for the pool's identity and building"):
        dense(encoder, DriftingDataset("my/drift", TINY_DOCS[:3]))
    folder = home / "embeddings" / encoder.fingerprint()[:16]
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []  # nothing cached


def test_a_pool_of_one_document_is_refused_with_a_clear_error(home, encoder):
    # npids, which stores the pool's docnos, fails with ZeroDivisionError on a single docno
    with pytest.raises(ValueError, match="it has one document; a dense pool needs at least two"):
        dense(encoder, TinyDataset("my/one", TINY_DOCS[:1]))
    assert dense(encoder, TinyDataset("my/two", TINY_DOCS[:2]))(pd.DataFrame({"qid": ["1"], "query": ["x"]})).shape[0] == 2
