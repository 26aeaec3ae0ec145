"""Named baselines: every baseline answers every query on a small fixture; empty frames; evaluation; CLI."""
from __future__ import annotations

import argparse

import pandas as pd
import pytest
from _retrieval_fixtures import TINY_DOCS, TinyDataset, folder_bi_encoder

from pyterrier_gradrel.retrieval import BASELINES, RRF, baselines, encode_count
from pyterrier_gradrel.retrieval._cli import parse_pairs
from pyterrier_gradrel.retrieval._evaluate import MEASURE_NAMES, evaluate_runs, markdown_table


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def encoder(tiny_encoder_dir):
    return folder_bi_encoder(tiny_encoder_dir)


# one query per script of the fixture (each shares words with its document), plus an all-punctuation query
TOPICS = pd.DataFrame({
    "qid": ["en", "ru", "th", "zh", "hi", "ar", "el", "punct"],
    "query": ["capital of France", "коричневая лиса", "สุนัขจิ้งจอก", "棕色狐狸", "भूरी लोमड़ी", "الثعلب البني",
              "καφέ αλεπού", "?!"],
})


def test_every_baseline_answers_every_query(home, encoder):
    systems = baselines(TinyDataset(), encoder=encoder, tokenizer="script", rerank_depth=5)
    assert tuple(systems) == BASELINES
    lexical = set(TOPICS["qid"]) - {"punct"}
    for name, system in systems.items():
        res = system(TOPICS)
        expected = lexical if name in ("BM25", "BM25>>mE5") else set(TOPICS["qid"])
        assert set(res["qid"]) == expected, name
        assert {"qid", "query", "docno", "score", "rank"} <= set(res.columns), name
        assert "query_vec" not in res.columns and "query_toks" not in res.columns
        for _, group in res.groupby("qid"):
            assert group.sort_values("rank")["score"].is_monotonic_decreasing, name
            assert group["docno"].is_unique, name
    # the re-ranker keeps BM25's candidates (top rerank_depth) and only re-orders them
    bm25_top = systems["BM25"](TOPICS).query("rank < 5")
    reranked = systems["BM25>>mE5"](TOPICS)
    for qid in lexical:
        assert set(reranked[reranked.qid == qid].docno) == set(bm25_top[bm25_top.qid == qid].docno)


def test_baselines_share_one_encoding_of_the_corpus(home, encoder):
    ds = TinyDataset()
    baselines(ds, encoder=encoder, tokenizer="script")
    baselines(ds, encoder=encoder, tokenizer="script")
    assert encode_count() >= 1
    # each call hashes the documents once for both caches (the pool's key); the first also builds BM25 and
    # encodes the pool, the second reuses both
    assert ds.corpus_reads == 3 + 1


def test_baselines_reuse_the_cached_vectors_of_sibling_pools_as_dense_does(home, encoder, monkeypatch):
    """XQuAD-R's multi pool is the union of the 12 language pools: with those cached, baselines() encodes nothing.

    The fixture stands in for a fixed collection ``toyb`` whose pools ``toyb.a`` and ``toyb.b`` are cached and
    whose union pool is ``toyb.und`` (an ir_datasets dataset ``toyb``: keyed by its id, as a fixed collection is).
    """
    import json

    from pyterrier_gradrel.retrieval import _dense, dense_index

    docs = [{"docno": d, "text": t} for d, t in TINY_DOCS]
    dense_index(encoder, docs[:5], corpus="toyb.a", reuse_collection="toyb")
    dense_index(encoder, docs[5:], corpus="toyb.b", reuse_collection="toyb")
    monkeypatch.setattr(_dense, "fixed_collection", lambda dataset: "toyb")
    before = encode_count()
    ds = TinyDataset("toyb")
    ds.irds_id = "toyb"
    systems = baselines(ds, encoder=encoder, tokenizer="script")
    index = systems["mE5-zero-shot"].index
    assert index.index_path.name == "toyb.und.flex"
    meta = json.loads((index.index_path / "gradrel_embeddings.json").read_text())
    assert (meta["encoded"], meta["reused"]) == (0, len(TINY_DOCS))
    assert encode_count() == before  # nothing was encoded
    assert systems["BM25>>mE5"][-1].index.index_path == index.index_path  # the re-ranker reads the same vectors
    assert set(systems["mE5-zero-shot"](TOPICS)["qid"]) == set(TOPICS["qid"])


def test_the_reranker_draws_no_progress_bar_unless_verbose(home, encoder, capfd):
    """pyterrier-dr's numpy scorer draws a bar on every call; ``BM25>>mE5`` with ``verbose=False`` showed it on
    every query batch. Nothing reaches stdout or stderr now; ``verbose=True`` shows the scorer's own bar."""
    quiet = baselines(TinyDataset(), encoder=encoder, tokenizer="script", verbose=False)["BM25>>mE5"]
    capfd.readouterr()
    assert not quiet(TOPICS).empty
    assert capfd.readouterr() == ("", "")
    loud = baselines(TinyDataset(), encoder=encoder, tokenizer="script", verbose=True)["BM25>>mE5"]
    capfd.readouterr()
    reranked = loud(TOPICS)
    assert "DenseScorer" in capfd.readouterr().err
    pd.testing.assert_frame_equal(reranked, quiet(TOPICS))


def test_every_baseline_handles_an_empty_frame(home, encoder):
    empty = TOPICS.iloc[:0]
    for name, system in baselines(TinyDataset(), encoder=encoder, tokenizer="script").items():
        res = system(empty)
        assert res.empty and {"qid", "docno", "score", "rank"} <= set(res.columns), name


def test_rrf_fuses_by_rank():
    class Fixed:
        def __init__(self, docnos):
            self.docnos = docnos

        def __call__(self, inp):
            rows = [{"qid": q, "query": "x", "docno": d, "score": float(-r), "rank": r}
                    for q in inp["qid"] for r, d in enumerate(self.docnos)]
            return pd.DataFrame(rows, columns=["qid", "query", "docno", "score", "rank"])

    fused = RRF(Fixed(["a", "b", "c"]), Fixed(["b", "c", "d"]), k=60)(pd.DataFrame({"qid": ["1"], "query": ["x"]}))
    # b: 1/61 + 1/60, c: 1/62 + 1/61, a: 1/60, d: 1/62
    assert list(fused.sort_values("rank")["docno"]) == ["b", "c", "a", "d"]
    assert fused["score"].max() == pytest.approx(1 / 61 + 1 / 60)
    with pytest.raises(ValueError, match="at least 2 transformers"):
        RRF(Fixed(["a"]))


def test_baselines_validate_options(home, encoder):
    with pytest.raises(ValueError, match="backend must be one of"):
        baselines(TinyDataset(), encoder=encoder, backend="annoy")
    with pytest.raises(ValueError, match="rerank_depth must be >= 1"):
        baselines(TinyDataset(), encoder=encoder, rerank_depth=0)


def test_evaluation_counts_unanswered_queries_as_zero():
    topics = pd.DataFrame({"qid": ["1", "2"], "query": ["a", "b"]})
    qrels = pd.DataFrame({"qid": ["1", "1", "2"], "docno": ["d3", "d1", "d9"], "label": [3, 1, 3]})
    perfect = pd.DataFrame({"qid": ["1", "1", "2"], "docno": ["d3", "d1", "d9"], "score": [2.0, 1.0, 1.0],
                            "rank": [0, 1, 0]})
    half = perfect[perfect.qid == "1"]
    table = evaluate_runs({"perfect": perfect, "half": half}, topics, qrels).set_index("name")
    assert list(table.columns) == [*MEASURE_NAMES, "queries", "answered"]
    assert table.loc["perfect", "nDCG@10"] == pytest.approx(1.0)
    assert table.loc["half", "nDCG@10"] == pytest.approx(0.5)
    assert table.loc["half", "RR(rel=3)"] == pytest.approx(0.5)
    assert table.loc["half", "answered"] == 1 and table.loc["perfect", "answered"] == 2
    # graded gains: grade-1 doc first costs more than with binary gains
    swapped = perfect.assign(rank=[1, 0, 0], score=[1.0, 2.0, 1.0])
    ndcg = evaluate_runs({"s": swapped}, topics, qrels).loc[0, "nDCG@10"]
    import math
    dcg = 1 / math.log2(2) + 7 / math.log2(3)
    idcg = 7 / math.log2(2) + 1 / math.log2(3)
    assert ndcg == pytest.approx((dcg / idcg + 1.0) / 2)
    md = markdown_table(table.reset_index())
    assert md.splitlines()[0].startswith("| name | nDCG@10") and "0.5000" in md


def test_evaluation_columns_hold_their_own_measure():
    topics = pd.DataFrame({"qid": ["1"], "query": ["a"]})
    qrels = pd.DataFrame({"qid": ["1"] * 4, "docno": ["d3", "d2", "d1", "dx"], "label": [3, 2, 1, 2]})
    run = pd.DataFrame({"qid": ["1"] * 3, "docno": ["d1", "d2", "d3"], "score": [3.0, 2.0, 1.0], "rank": [0, 1, 2]})
    row = evaluate_runs({"r": run}, topics, qrels).iloc[0]
    assert row["RR(rel=2)"] == pytest.approx(1 / 2)
    assert row["RR(rel=3)"] == pytest.approx(1 / 3)
    assert row["R(rel=2)@100"] == pytest.approx(2 / 3)


def test_cli_pairs_are_validated():
    assert parse_pairs("en, th ,de-en") == [("en", "en"), ("th", "th"), ("de", "en")]
    with pytest.raises(argparse.ArgumentTypeError, match="language must be one of .*'zh'"):
        parse_pairs("en,xx")


def test_cli_registers_its_commands():
    from pyterrier_gradrel.retrieval._cli import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["baselines", "--pairs", "th-en", "--out", "x"])
    assert args.pairs == [("th", "en")] and args.split == "test" and callable(args.func)
    args = parser.parse_args(["bm25-tokenizers", "--langs", "th,zh", "--tokenizers", "script"])
    assert args.langs == ["th", "zh"] and args.tokenizers == ["script"]
    for bad in ("th-en", "th,xx", ","):  # a pair is no language: once silently taken as 'th'
        with pytest.raises(SystemExit):
            parser.parse_args(["bm25-tokenizers", "--langs", bad])


def test_fixture_has_every_script():
    assert len({d.split("-")[0] for d, _ in TINY_DOCS}) >= 8


def test_rrf_gives_rrfusions_top_10_and_keeps_the_inputs_columns(home, encoder):
    import pyterrier_alpha as pta

    systems = baselines(TinyDataset(), encoder=encoder, tokenizer="script")
    rrf = systems["RRF(BM25,mE5)"]
    assert isinstance(rrf, pta.fusion.RRFusion)
    topics = TOPICS.assign(lang=["en", "ru", "th", "zh", "hi", "ar", "el", "und"])
    ours = rrf(topics)
    plain = pta.fusion.RRFusion(systems["BM25"], systems["mE5-zero-shot"], k=60)(TOPICS)
    top = ["qid", "docno", "rank"]
    assert ours[ours["rank"] < 10][top].sort_values(top).values.tolist() == \
        plain[plain["rank"] < 10][top].sort_values(top).values.tolist()
    assert list(ours.columns) == ["qid", "query", "docno", "score", "rank", "lang"]
    assert (ours["lang"] == ours["qid"].map(dict(zip(topics["qid"], topics["lang"], strict=True)))).all()
    # the other baselines keep it too
    for name in ("BM25", "mE5-zero-shot", "BM25>>mE5"):
        assert "lang" in systems[name](topics).columns, name
    assert list(rrf(topics.iloc[:0]).columns) == ["qid", "query", "docno", "score", "rank", "lang"]


def test_repeated_qids_are_refused_by_every_baseline(home, encoder):
    """A query frame with a qid on two rows was answered twice: BM25, dense and RRF returned every (qid, docno)
    of that query twice (the benchmark refuses such runs), with no error."""
    repeated = pd.concat([TOPICS, TOPICS.iloc[[0]]], ignore_index=True)
    for name, system in baselines(TinyDataset(), encoder=encoder, tokenizer="script", num_results=3).items():
        with pytest.raises(ValueError, match=r"1 qid\(s\) are on several rows, e\.g\. \['en'\]"):
            system(repeated)
        res = system(TOPICS)
        assert not res.duplicated(["qid", "docno"]).any(), name
