"""Query-side fine-tuning (``TrainConfig(side="query")``): passages keep the base model's vectors.

On the tiny random encoder: the tuned model's passage vectors are the base model's (bit for bit), its
query vectors moved, retrieval reuses the base model's cached pool, the folder reloads as the same
``QueryTunedEncoder``, a changed base is refused, and run names/keys keep the two protocols apart.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _graded_fixture import graded_collection
from _retrieval_fixtures import TinyDataset

from pyterrier_gradrel.experiments import aggregate
from pyterrier_gradrel.models import E5BiEncoder, QueryTunedEncoder, load_encoder
from pyterrier_gradrel.retrieval import dense, encode_count, passage_vectors
from pyterrier_gradrel.training import ContrastiveTrainer, TrainConfig


@pytest.fixture(scope="module")
def data():
    return graded_collection(n_articles=4, paras=2, sents=3)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _cfg(**kw) -> TrainConfig:
    base = {"rel": 2, "batch_size": 2, "max_steps": 3, "lr": 1e-3, "max_length": 32, "hard_negatives": 1,
            "side": "query"}
    base.update(kw)
    return TrainConfig(**base)


def test_passages_keep_the_base_vectors_and_queries_move(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    base = load_encoder(tiny_encoder_dir)
    trainer = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False)
    enc = trainer.fit(topics, qrels, docs, run_dir=tmp_path / "q")
    assert isinstance(enc, QueryTunedEncoder)
    texts, queries = docs["text"].tolist()[:6], topics["query"].tolist()[:4]
    np.testing.assert_array_equal(enc.encode_docs(texts), base.encode_docs(texts))
    assert not np.allclose(enc.encode_queries(queries), base.encode_queries(queries), atol=1e-4)
    assert enc.doc_fingerprint() == base.fingerprint()
    assert enc.fingerprint() not in (base.fingerprint(), enc.query.fingerprint())
    # the folder is a plain encoder folder plus the reference to its base; it reloads as the same model
    settings = json.loads((tmp_path / "q" / "model" / "gradrel_encoder.json").read_text())
    assert settings["doc_encoder"]["fingerprint"] == base.fingerprint()
    again = load_encoder(tmp_path / "q" / "model")
    assert isinstance(again, QueryTunedEncoder) and again.fingerprint() == enc.fingerprint()
    np.testing.assert_allclose(again.encode_queries(queries), enc.encode_queries(queries), atol=1e-6)
    assert "doc_encoder" not in again.query.settings  # the query model's identity does not depend on a path
    copy = load_encoder(enc.save(tmp_path / "copy"))
    assert copy.fingerprint() == enc.fingerprint()
    # only the query side learned: in training, passages never went through the model being tuned
    assert trainer.last_report["config"]["side"] == "query"


def test_given_vectors_train_exactly_like_on_demand_encoding(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    base = load_encoder(tiny_encoder_dir)
    table = dict(zip(docs["docno"], base.encode_docs(docs["text"].tolist()), strict=True))
    calls = []

    def lookup(docnos):
        calls.append(len(docnos))
        return np.stack([table[d] for d in docnos])

    a = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False).train(
        topics, qrels, docs, run_dir=tmp_path / "a")
    b = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False).train(
        topics, qrels, docs, run_dir=tmp_path / "b", doc_vectors=lookup)
    assert calls == [4] * 3  # 2 positives + 2 hard negatives per step, 3 steps
    from transformers import AutoModel

    wa, wb = (AutoModel.from_pretrained(p, add_pooling_layer=False).state_dict() for p in (a, b))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_bad_vectors_and_misuse_are_refused(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    with pytest.raises(ValueError, match=r"expected \(4, 32\)"):
        ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False).train(
            topics, qrels, docs, run_dir=tmp_path / "bad", doc_vectors=lambda d: np.zeros((len(d), 3), np.float32))
    with pytest.raises(ValueError, match="doc_vectors only apply to side='query'"):
        ContrastiveTrainer(tiny_encoder_dir, config=_cfg(side="both"), verbose=False).train(
            topics, qrels, docs, run_dir=tmp_path / "both", doc_vectors=lambda d: None)
    with pytest.raises(ValueError, match=r"side must be one of \['both', 'query'\]"):
        TrainConfig(side="docs")


def test_a_changed_base_is_refused(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    folder = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1), verbose=False).train(
        topics, qrels, docs, run_dir=tmp_path / "q")
    settings_path = folder / "gradrel_encoder.json"
    settings = json.loads(settings_path.read_text())
    settings["doc_encoder"]["fingerprint"] = "0" * 64
    settings_path.write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="trained against 000000000000"):
        load_encoder(folder)
    settings["doc_encoder"]["path"] = str(tmp_path / "gone")
    settings_path.write_text(json.dumps(settings))
    with pytest.raises(FileNotFoundError, match="base encoder of this query-tuned model is missing"):
        load_encoder(folder)


def test_retrieval_reuses_the_base_models_pool(home, tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    base = E5BiEncoder.from_pretrained(tiny_encoder_dir, batch_size=8, num_threads=1)
    ds = TinyDataset()
    path = dense(base, ds).index.index_path
    enc = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1), verbose=False).fit(
        topics, qrels, docs, run_dir=tmp_path / "q")
    retriever = dense(enc, ds)
    # the same pool vectors: encoded once; a dataset object is read to hash it on each call (hashed + built, hashed)
    assert retriever.index.index_path == path and encode_count(path) == 1 and ds.corpus_reads == 3
    res = retriever(topics[["qid", "query"]].head(2))
    assert len(res) == 2 * len(ds.docs)
    # passage_vectors reads the same cache: the vectors retrieval scores against
    lookup = passage_vectors(base, [ds])
    # the pool was encoded in other batches than these two passages: equal up to bf16 rounding where "auto" is bf16
    np.testing.assert_allclose(lookup(["en-1", "de-0"]), base.encode_docs([ds.docs[8][1], ds.docs[1][1]]), atol=1e-3)
    assert encode_count(path) == 1
    with pytest.raises(KeyError, match="in none of the cached pools"):
        lookup(["nope"])


def test_max_length_of_a_query_tuned_folder_cuts_its_queries_only(tiny_encoder_dir, tmp_path):
    """load_encoder(max_length=N) on a query-tuned folder: the base keeps its own limit and fingerprint, so its
    passage vectors are the base's (and its cached pool is reused)."""
    base = load_encoder(str(tiny_encoder_dir), precision="float32")
    QueryTunedEncoder(load_encoder(str(tiny_encoder_dir), precision="float32"), base).save(tmp_path / "qt")
    enc = load_encoder(str(tmp_path / "qt"), max_length=16, precision="float32")
    assert isinstance(enc, QueryTunedEncoder)
    assert enc.query.max_length == 16 and enc.docs.max_length == base.max_length != 16
    assert enc.docs.fingerprint() == base.fingerprint()
    long_text = ["word " * 200]
    np.testing.assert_array_equal(enc.encode_docs(long_text), base.encode_docs(long_text))


def test_side_keeps_run_keys_and_names_apart():
    both = TrainConfig(rel=1, max_steps=12, batch_size=16)
    assert both.to_dict()["side"] == "both" and both.run_name().endswith("-40b7d67c")
    query = TrainConfig(rel=1, max_steps=12, batch_size=16, side="query")
    assert query.key() != both.key() and "-queryside-" in query.run_name()
    assert TrainConfig.from_dict(query.to_dict()) == query and TrainConfig.from_dict(both.to_dict()) == both


def test_runner_trains_against_the_zero_shot_index_and_encodes_the_pool_once(home, tiny_encoder_dir, tmp_path,
                                                                             mirror):
    """End to end on real XQuAD-R (tiny encoder): only the zero-shot baseline encodes the 1,180-sentence pool."""
    from pyterrier_gradrel.experiments import Components, run_experiment

    cfg = {"name": "qside", "scenarios": [{"type": "monolingual", "collection": "xquad-r", "languages": ["th"]}],
           "thresholds": [1, 3], "graded_loss": False, "seeds": [0], "baselines": ["mE5-zero-shot"],
           "training": {"max_steps": 2, "batch_size": 4, "side": "query", "threads": 1},
           "measures": {"graded": ["nDCG@10"], "binary": ["RR"], "rels": [2]},
           "significance": {"bootstrap_samples": 100}, "limit_queries": 8}
    before = encode_count()
    result = run_experiment(cfg, root=tmp_path / "experiments", components=Components(base_model=str(tiny_encoder_dir)),
                            verbose=False, report=False)
    assert result.n_run == 4  # zero-shot on test and on dev; τ=1 and τ=3 (each evaluated on test and dev)
    assert encode_count() - before == 1
    logs = [c for c in result.conditions.values() if c["condition"]["system"] == "fine-tuned"]
    assert len(logs) == 2 and all("-queryside-" in json.loads(
        (result.runs_dir / k / "train_log.json").read_text())["run_name"] for k, c in result.conditions.items()
        if c["condition"]["system"] == "fine-tuned")
    agg = aggregate(result.perquery)
    assert set(agg["variant"]) >= {"tau=1", "tau=3"}
