"""Local collections whose optional fields are absent (no split, no article) or declared (query language,
structural grades): fine-tuning draws hard negatives, info() reports what the manifest declares, and
``gradrel datasets check`` summarises the collection and lists every error."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest

from pyterrier_gradrel.binarize import binarize
from pyterrier_gradrel.datasets import register_local

_names = itertools.count()

PASSAGES = ["Berlin is the capital of Germany.", "Paris is the capital of France.", "Rome lies on the Tiber.",
            "Madrid is in Spain.", "Vienna is on the Danube.", "Lisbon faces the Atlantic."]


def bare_collection(root: Path, *, manifest: str | None = None, docs: list[dict] | None = None) -> Path:
    """English passages without split/article, German questions, judged grades (train and test)."""
    folder = root / f"bare{next(_names)}"
    folder.mkdir(parents=True)
    docs = docs if docs is not None else [{"doc_id": f"p{i}", "text": t} for i, t in enumerate(PASSAGES)]
    (folder / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (folder / "queries.train.tsv").write_text("t1\tWas ist die Hauptstadt von Deutschland?\n"
                                               "t2\tWas ist die Hauptstadt von Frankreich?\n", encoding="utf-8")
    (folder / "qrels.train.txt").write_text("t1 0 p0 3\nt1 0 p1 1\nt2 0 p1 3\n", encoding="utf-8")
    (folder / "queries.test.tsv").write_text("s1\tWo liegt Madrid?\n", encoding="utf-8")
    (folder / "qrels.test.txt").write_text("s1 0 p3 3\ns1 0 p2 0\n", encoding="utf-8")
    if manifest is not None:
        (folder / "manifest.yaml").write_text(manifest, encoding="utf-8")
    return folder


def _train_frames(name: str):
    import pyterrier as pt

    ds = pt.get_dataset(f"irds:gradrel/local/{name}/train")
    topics = ds.get_topics()
    corpus = pd.DataFrame(ds.get_corpus_iter(verbose=False))
    return topics, ds.get_qrels(), corpus


@pytest.mark.parametrize("negative_split", ["train", None])
def test_documents_without_split_or_article_can_be_hard_negatives(tmp_path, negative_split):
    from pyterrier_gradrel.training import PairSampler

    name = f"bare{next(_names)}"
    register_local(name, bare_collection(tmp_path))
    topics, qrels, corpus = _train_frames(name)
    assert set(corpus["split"]) == {""} and set(corpus["article"]) == {""} and set(topics["article"]) == {""}
    b = binarize(qrels, rel=3, qids=topics["qid"])
    sampler = PairSampler(b, topics, corpus, hard_negatives=2, batch_size=2, negative_split=negative_split)
    assert sorted(sampler.pool) == sorted(corpus["docno"])  # no split: every passage may be a negative
    assert sampler.q_article == {}  # no article: no own-article rule
    for batch in sampler.epoch(0):
        for ex in batch:
            assert len(ex.hard) == 2 and ex.positive not in ex.hard
            assert all(sampler.is_legal_negative(ex.qid, d) for d in ex.hard)


def test_documents_without_split_join_the_training_split_only(tmp_path):
    """A passage of another split stays out; one without a split may be a negative (mixed collections)."""
    from pyterrier_gradrel.training import PairSampler

    docs = [{"doc_id": f"p{i}", "text": t, "split": s, "article": a}
            for i, (t, s, a) in enumerate(zip(PASSAGES, ["train", "train", "test", "test", "", ""],
                                              ["de", "fr", "it", "es", "", "pt"], strict=True))]
    name = f"bare{next(_names)}"
    register_local(name, bare_collection(tmp_path, docs=docs))
    topics, qrels, corpus = _train_frames(name)
    sampler = PairSampler(binarize(qrels, rel=3, qids=topics["qid"]), topics, corpus, hard_negatives=1)
    assert sorted(sampler.pool) == ["p0", "p1", "p4", "p5"]
