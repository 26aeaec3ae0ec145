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


DECLARED = "name: bare\nlang: en\nquery_lang: de\nstructural: false\n"


@pytest.mark.parametrize("manifest, structural", [(DECLARED, False), (DECLARED.replace("false", "true"), True)])
def test_manifest_declares_query_language_and_grade_kind(tmp_path, manifest, structural):
    import ir_datasets

    from pyterrier_gradrel.datasets import info

    name = f"bare{next(_names)}"
    register_local(name, bare_collection(tmp_path, manifest=manifest))
    meta = info(f"gradrel/local/{name}/test")
    assert (meta.query_lang, meta.doc_lang, meta.query_langs, meta.structural) == ("de", "en", ("de",), structural)
    assert info(f"gradrel/local/{name}").query_lang is None  # documents only
    ds = ir_datasets.load(f"gradrel/local/{name}/test")
    assert [q.lang for q in ds.queries_iter()] == ["de"] and {d.lang for d in ds.docs_iter()} == {"en"}
    assert ds.queries_lang() == "de" and ds.docs_lang() == "en"


@pytest.mark.parametrize("manifest, message", [
    ("structural: yes please\n", "structural must be true"),
    ("structural: 'false'\n", "structural must be true"),
    ("query_lang: [de]\n", "query_lang must be a language code"),
])
def test_bad_declarations_name_the_manifest(tmp_path, manifest, message):
    from pyterrier_gradrel.datasets import LocalCollectionError

    folder = bare_collection(tmp_path, manifest=manifest)
    with pytest.raises(LocalCollectionError, match=message) as err:
        register_local(f"bare{next(_names)}", folder)
    assert str(folder / "manifest.yaml") in str(err.value)


def test_check_summarises_what_the_collection_supports(tmp_path, capsys):
    from pyterrier_gradrel.cli import main

    folder = bare_collection(tmp_path, manifest=DECLARED)
    assert main(["datasets", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "train: 6 docs, 2 queries, qrels per grade {1: 1, 3: 2}" in out
    assert "grades: judged, scale [0, 1, 2, 3], default_rel 2" in out
    assert "languages: queries ['de'], documents ['en'] (cross-lingual)" in out
    assert "document split: on 0 of 6 documents (documents without one may be hard negatives in training)" in out
    assert "own-article rule: off (no training query has an article)" in out


def test_check_reports_every_error_one_line_each(tmp_path, capsys):
    from pyterrier_gradrel.cli import main

    folder = bare_collection(tmp_path)
    (folder / "docs.jsonl").write_text('{"doc_id": "p0", "text": "a"}\n{"doc_id": "p0", "text": "b"}\n'
                                       '{"doc_id": "p1", "text": " "}\nnot json\n', encoding="utf-8")
    (folder / "qrels.test.txt").write_bytes(b"s1 0 p0 7\ns1 0 p0\xff 1\n")
    assert main(["datasets", "check", str(folder), "--name", "never"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines[0] == "7 error(s):"
    expected = [
        "docs.jsonl:2: duplicate doc_id 'p0' (first on line 1)",
        "docs.jsonl:3: 'text' is empty or only whitespace",
        "docs.jsonl:4: not valid JSON",
        "qrels.train.txt:2: unknown doc_id 'p1'",  # p1 was skipped as invalid: its qrels follow
        "qrels.train.txt:3: unknown doc_id 'p1'",
        "qrels.test.txt:1: grade 7 is outside the declared scale [0, 1, 2, 3]",
        "qrels.test.txt:2: not valid UTF-8",
    ]
    for line, want in zip(lines[1:], expected, strict=True):
        assert want in line and str(folder) in line
    assert "Traceback" not in captured.err and "gradrel/local/never" not in captured.out  # not registered
    assert main(["datasets", "check", str(folder), "--max-errors", "2"]) == 1
    err = capsys.readouterr().err
    assert "2 error(s) (stopped after 2; --max-errors to see more):" in err and len(err.strip().splitlines()) == 3


def test_list_shows_collections_under_gradrel_home(tmp_path, monkeypatch, capsys):
    from pyterrier_gradrel.cli import main

    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "collections").mkdir(parents=True)
    bare_collection(tmp_path).rename(tmp_path / "home" / "collections" / "mine")
    (tmp_path / "home" / "collections" / "scratch").mkdir()  # not a collection: no docs.jsonl
    assert main(["datasets", "list", "--collection", "local"]) == 0
    out = capsys.readouterr().out.split()
    assert "gradrel/local/mine/train" in out and "gradrel/local/mine/test" in out
    assert not any("scratch" in line for line in out)


def test_fit_on_a_collection_without_split_or_article(tiny_encoder_dir, tmp_path):
    """The trainer's defaults (negative_split='train', own-article rule on) fine-tune a bare local collection."""
    from pyterrier_gradrel.training import ContrastiveTrainer, TrainConfig

    name = f"bare{next(_names)}"
    register_local(name, bare_collection(tmp_path))
    topics, qrels, corpus = _train_frames(name)
    config = TrainConfig(rel=3, batch_size=2, hard_negatives=2, max_steps=1, max_length=16)
    trainer = ContrastiveTrainer(tiny_encoder_dir, config=config, verbose=False)
    trainer.fit(topics, qrels, corpus, run_dir=tmp_path / "fit")
    data = trainer.last_report["data"]
    assert data["own_article_rule"] is False and data["negative_split"] == "train"
    assert data["hard_negative_pool"] == len(PASSAGES)


def test_info_refuses_a_split_the_collection_does_not_have(tmp_path):
    from pyterrier_gradrel.datasets import LocalCollectionError, info

    name = f"bare{next(_names)}"
    register_local(name, bare_collection(tmp_path))
    with pytest.raises(LocalCollectionError, match=r"has no split 'dev'; available: \['train', 'test'\]"):
        info(f"gradrel/local/{name}/dev")
