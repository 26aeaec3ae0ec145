"""``FineTuned``: the trainer as a ``pt.Estimator``, fitted and then compared with BM25 and zero-shot in
``pt.Experiment`` on a judged local collection (German questions over English passages)."""
from __future__ import annotations

import ir_measures
import pandas as pd
import pyterrier as pt
import pytest
from _local_fixture import judged_collection

import pyterrier_gradrel as gr
from pyterrier_gradrel.training import TrainConfig


@pytest.fixture
def mine(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    judged_collection(tmp_path / "home", "mine")
    return "gradrel/local/mine"


def _topics_qrels(ds_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = pt.get_dataset(f"irds:{ds_id}")
    return ds.get_topics("text"), ds.get_qrels()


def test_fit_then_compare_in_pt_experiment(mine, tiny_encoder_dir, tmp_path):
    test_topics, test_qrels = _topics_qrels(f"{mine}/test")
    train_topics, train_qrels = _topics_qrels(f"{mine}/train")
    config = TrainConfig(max_steps=2, batch_size=2, max_length=16, exclude_own_article=False, threads=1)
    ft = gr.FineTuned(str(tiny_encoder_dir), dataset=f"{mine}/test", rel=3, config=config)
    assert isinstance(ft, pt.Estimator)
    assert ft.tau == 3 and ft.config.rel == 3 and ft.config.loss == "infonce" and ft.config.seed == 0
    assert repr(ft) == f"FineTuned({str(tiny_encoder_dir)!r}, rel=3, seed=0, dataset='{mine}/test', unfitted)"
    with pytest.raises(RuntimeError, match="not fitted"):
        ft(test_topics)

    assert ft.fit(train_topics, train_qrels) is ft
    assert ft.train_report["steps"] == 2 and "unfitted" not in repr(ft)
    encoder = gr.load_encoder(str(tiny_encoder_dir))
    assert ft.encoder.fingerprint() != encoder.fingerprint()  # the weights moved

    ndcg = ir_measures.nDCG @ 10
    table = pt.Experiment([gr.bm25(f"{mine}/test"), gr.dense(encoder, f"{mine}/test"), ft], test_topics, test_qrels,
                          [ndcg], names=["BM25", "zero-shot", "tau=3"], perquery=True)
    assert set(table["name"]) == {"BM25", "zero-shot", "tau=3"}
    assert set(table["qid"]) == set(test_qrels["qid"])
    # the estimator's row is its own retrieval, scored by ir_measures
    ours = {m.query_id: m.value for m in ndcg.iter_calc(test_qrels.rename(columns={"qid": "query_id",
                                                                                  "docno": "doc_id",
                                                                                  "label": "relevance"}),
                                                        ft(test_topics).rename(columns={"qid": "query_id",
                                                                                        "docno": "doc_id"}))}
    theirs = table[table["name"] == "tau=3"].set_index("qid")["value"].to_dict()
    assert theirs == pytest.approx(ours)

    # a second estimator of the same config finds the finished run in the cache instead of training again
    again = gr.FineTuned(str(tiny_encoder_dir), dataset=f"{mine}/test", rel=3, config=config)
    again.fit(train_topics, train_qrels)
    assert again.train_report == ft.train_report
    assert again.encoder.fingerprint() == ft.encoder.fingerprint()


def test_rel_none_trains_the_graded_loss_and_defaults_follow_the_dataset(mine, tiny_encoder_dir):
    graded = gr.FineTuned(str(tiny_encoder_dir), dataset=f"{mine}/test", rel=None)
    assert graded.tau is None and graded.config.loss == "graded"
    assert "graded" in repr(graded)
    # a judged collection: the own-article rule is off, its grade scale is the config's
    default = gr.FineTuned(str(tiny_encoder_dir), dataset=f"{mine}/test")
    assert default.config.exclude_own_article is False and default.config.grades == (0, 1, 2, 3)
    assert default.tau == 2


def test_fit_takes_the_articles_of_topics_without_them_from_the_training_dataset():
    # get_topics("text") keeps qid and query only; the own-article rule needs each query's article
    train = pt.get_dataset("irds:gradrel/xquad-r/th/train")
    ft = gr.FineTuned("multilingual-e5-small", dataset="gradrel/xquad-r/th-en/test",
                      train_dataset="gradrel/xquad-r/th/train", rel=3)
    assert ft.config.exclude_own_article is True  # XQuAD-R's grades come from the article structure
    text = train.get_topics("text")
    assert "article" not in text.columns
    stranger = pd.DataFrame({"qid": ["not-a-th-question"], "query": ["?"]})
    filled = ft._with_articles(pd.concat([text, stranger], ignore_index=True))
    from pyterrier_gradrel.training._data import dataset_topics

    truth = dataset_topics(train).set_index("qid")["article"]
    assert filled["article"].iloc[:-1].tolist() == truth.loc[text["qid"]].tolist()
    assert filled["article"].iloc[-1] == ""  # a query the dataset does not hold: no rule for it
    assert list(filled.columns[:2]) == ["qid", "query"] and len(filled) == len(text) + 1

    # topics that carry their own article, or a config without the rule, are passed through as given
    given = text.assign(article="x")
    assert ft._with_articles(given) is given
    off = gr.FineTuned("multilingual-e5-small", dataset="gradrel/xquad-r/th-en/test",
                       train_dataset="gradrel/xquad-r/th/train", rel=3,
                       config=TrainConfig(exclude_own_article=False))
    assert off._with_articles(text) is text
