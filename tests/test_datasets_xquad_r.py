"""XQuAD-R (+ XQuAD ro) through PyTerrier and ir_datasets, pinned against the real files in ../shared/data.

The pinned numbers were computed once by an independent script that reads the raw JSON with the files'
own ``sentence_breaks`` offsets (no code of this package): per language the pool size and, per split, the
number of questions and of grade-3/2/1 qrels. Romanian has no sentence breaks; its numbers come from the
loader's splitter and are pinned here so that a change of the splitter is noticed.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

XQUAD_COUNTS = {  # lang: (pool size, {split: (queries, grade-3, grade-2, grade-1 qrels)})
    "ar": (1222, {"train": (682, 693, 2834, 13831), "dev": (154, 154, 641, 3211), "test": (354, 356, 1461, 7084)}),
    "de": (1276, {"train": (682, 690, 2959, 14294), "dev": (154, 154, 773, 3735), "test": (354, 354, 1556, 7430)}),
    "el": (1234, {"train": (682, 696, 2843, 13864), "dev": (154, 154, 668, 3366), "test": (354, 355, 1494, 7218)}),
    "en": (1180, {"train": (682, 685, 2677, 13186), "dev": (154, 154, 640, 3251), "test": (354, 354, 1435, 6972)}),
    "es": (1215, {"train": (682, 691, 2771, 13606), "dev": (154, 154, 632, 3213), "test": (354, 358, 1513, 7298)}),
    "hi": (1244, {"train": (682, 693, 2888, 14033), "dev": (154, 154, 635, 3232), "test": (354, 356, 1522, 7322)}),
    "ru": (1219, {"train": (682, 684, 2789, 13640), "dev": (154, 154, 674, 3333), "test": (354, 354, 1489, 7168)}),
    "th": (852, {"train": (682, 689, 1775, 9664), "dev": (154, 154, 475, 2478), "test": (354, 356, 961, 5232)}),
    "tr": (1167, {"train": (682, 697, 2625, 13026), "dev": (154, 156, 582, 3020), "test": (354, 359, 1436, 6983)}),
    "vi": (1209, {"train": (682, 694, 2755, 13543), "dev": (154, 154, 640, 3251), "test": (354, 357, 1471, 7134)}),
    "zh": (1196, {"train": (682, 696, 2781, 13637), "dev": (154, 154, 595, 3076), "test": (354, 355, 1429, 6953)}),
    # from the loader's Romanian splitter (pinned, not independent)
    "ro": (1171, {"train": (682, 685, 2658, 13103), "dev": (154, 154, 637, 3231), "test": (354, 354, 1417, 6897)}),
}
DOCNO = re.compile(r"^(?P<lang>[a-z]{2})-a(?P<article>\d{2})-p(?P<para>\d)-s(?P<sent>\d+)$")


@pytest.fixture(scope="module")
def pt(mirror):
    import pyterrier as pt

    import pyterrier_gradrel  # noqa: F401  (registers the datasets)

    return pt


def _grade_counts(qrels: pd.DataFrame) -> tuple[int, int, int]:
    counts = qrels["label"].value_counts()
    return int(counts.get(3, 0)), int(counts.get(2, 0)), int(counts.get(1, 0))


@pytest.mark.parametrize("lang", sorted(XQUAD_COUNTS))
def test_monolingual_counts_per_split_and_grade(pt, lang):
    pool_size, per_split = XQUAD_COUNTS[lang]
    for split, (n_queries, g3, g2, g1) in per_split.items():
        ds = pt.get_dataset(f"irds:gradrel/xquad-r/{lang}/{split}")
        topics = ds.get_topics("text")
        qrels = ds.get_qrels()
        assert len(topics) == n_queries, (lang, split)
        assert topics["qid"].str.startswith(f"{lang}-").all() and topics["qid"].is_unique
        assert set(qrels.columns) >= {"qid", "docno", "label"}
        assert _grade_counts(qrels) == (g3, g2, g1), (lang, split)
        assert set(qrels["qid"]) == set(topics["qid"])  # every question has graded sentences
        assert not qrels.duplicated(["qid", "docno"]).any()
        # every question has at least one grade-3 sentence
        assert qrels[qrels.label == 3]["qid"].nunique() == n_queries
        assert ds.irds_ref().docs_count() == pool_size


def test_de_test_through_pyterrier(pt):
    ds = pt.get_dataset("irds:gradrel/xquad-r/de/test")
    full = ds.get_topics()  # all query fields: text, lang, article
    assert list(full.columns) == ["qid", "text", "lang", "article"]
    assert len(full) == 354 and (full["lang"] == "de").all()
    qrels = ds.get_qrels()
    assert sorted(qrels["label"].unique()) == [1, 2, 3]  # grade 0 is never listed

    corpus = list(ds.get_corpus_iter(verbose=False))
    assert len(corpus) == 1276  # the whole German pool, all 48 articles
    assert set(corpus[0]) == {"docno", "text", "lang", "article", "split"}
    assert {d["split"] for d in corpus} == {"train", "dev", "test"}
    assert all(DOCNO.match(d["docno"]) for d in corpus)
    assert set(qrels["docno"]) <= {d["docno"] for d in corpus}
    assert len(list(ds.get_corpus_iter(verbose=False, start=10, count=5))) == 5

    loader = ds.text_loader()
    wanted = pd.DataFrame({"qid": ["q", "q"], "docno": ["de-a47-p4-s1", "de-a00-p0-s0"]})
    loaded = loader(wanted)
    by_docno = {d["docno"]: d for d in corpus}
    assert list(loaded["text"]) == [by_docno["de-a47-p4-s1"]["text"], by_docno["de-a00-p0-s0"]["text"]]
    assert list(loaded["article"]) == [by_docno["de-a47-p4-s1"]["article"], "Super_Bowl_50"]
    assert loaded["text"].str.len().min() > 0


def test_grade_semantics_on_a_real_question(pt):
    import json
    import os
    from pathlib import Path

    raw = json.loads((Path(os.environ["GRADREL_MIRROR"]) / "xquad-r" / "en.json").read_text(encoding="utf-8"))
    para = raw["data"][0]["paragraphs"][0]
    question = para["qas"][0]
    qrels = pt.get_dataset("irds:gradrel/xquad-r/en/test").get_qrels()
    mine = qrels[qrels.qid == f"en-{question['id']}"].set_index("docno")["label"].to_dict()
    answer = question["answers"][0]["text"]
    for s, sentence in enumerate(para["sentences"]):
        expected = 3 if answer in sentence else 2
        assert mine[f"en-a00-p0-s{s}"] == expected
    other_paras = sum(len(p["sentences"]) for p in raw["data"][0]["paragraphs"][1:])
    assert sum(1 for g in mine.values() if g == 1) == other_paras
    assert not any(d.startswith("en-a01") for d in mine)  # other articles are grade 0 (unlisted)


def test_doc_split_follows_the_article_rule(pt):
    for doc in pt.get_dataset("irds:gradrel/xquad-r/th/train").get_corpus_iter(verbose=False):
        i = int(DOCNO.match(doc["docno"])["article"])
        assert doc["split"] == ("test" if i % 4 == 0 else "dev" if i % 8 == 1 else "train")


def test_cross_lingual_th_en(pt):
    ds = pt.get_dataset("irds:gradrel/xquad-r/th-en/test")
    topics, qrels = ds.get_topics("text"), ds.get_qrels()
    assert len(topics) == 354 and topics["qid"].str.startswith("th-").all()
    assert qrels["docno"].str.startswith("en-").all() and qrels["qid"].str.startswith("th-").all()
    assert _grade_counts(qrels) == XQUAD_COUNTS["en"][1]["test"][1:]
    assert ds.irds_ref().docs_count() == XQUAD_COUNTS["en"][0]
    # the grades are those of the English copy of each question
    en = pt.get_dataset("irds:gradrel/xquad-r/en/test").get_qrels()
    en["qid"] = "th-" + en["qid"].str[3:]
    assert en.sort_values(["qid", "docno"]).reset_index(drop=True)[["qid", "docno", "label"]].equals(
        qrels.sort_values(["qid", "docno"]).reset_index(drop=True)[["qid", "docno", "label"]])


def test_every_cross_lingual_pair_is_registered(pt):
    import ir_datasets

    registered = set(ir_datasets.registry)
    langs = sorted(XQUAD_COUNTS)
    for q in langs:
        for d in langs:
            for split in ("train", "dev", "test"):
                name = f"gradrel/xquad-r/{q}/{split}" if q == d else f"gradrel/xquad-r/{q}-{d}/{split}"
                assert name in registered


def test_multi_test(pt):
    import ir_datasets

    ds = pt.get_dataset("irds:gradrel/xquad-r/multi/test")
    topics = ds.get_topics("text")
    assert len(topics) == 354 * 12 and topics["qid"].is_unique
    assert ds.irds_ref().docs_count() == sum(n for n, _ in XQUAD_COUNTS.values())
    docnos = [d.doc_id for d in ir_datasets.load("gradrel/xquad-r/multi/test").docs_iter()]
    assert len(docnos) == len(set(docnos))
    per_lang = sum(sum(split["test"][1:]) for _, split in XQUAD_COUNTS.values())
    grades_by_qid: dict[str, dict[str, int]] = {}
    n = 0
    for qrel in ir_datasets.load("gradrel/xquad-r/multi/test").qrels_iter():
        n += 1
        if qrel.query_id.endswith("56beb4343aeaaa14008c925b"):
            grades_by_qid.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    assert n == 12 * per_lang  # each query language gets the grades of every document language
    copies = list(grades_by_qid.values())
    assert len(copies) == 12 and all(c == copies[0] for c in copies)  # parallel copies: same grades
    assert {d[:2] for d in copies[0]} == set(XQUAD_COUNTS)


def test_question_key_joins_xquad_r_languages_only():
    from pyterrier_gradrel.datasets import question_key

    assert question_key("ar-56beb4343aeaaa14008c925b") == question_key("zh-56beb4343aeaaa14008c925b")
    assert question_key("ar-56beb4343aeaaa14008c925b") == "56beb4343aeaaa14008c925b"
    assert question_key("zul-113") == "zul-113" != question_key("twi-113")  # AfriQA counts per language
    assert question_key("de-q7") == "de-q7"


def test_question_key_names_each_multi_question_once_per_language(pt):
    from pyterrier_gradrel.datasets import question_key

    keys = pt.get_dataset("irds:gradrel/xquad-r/multi/test").get_topics("text")["qid"].map(question_key)
    assert keys.nunique() == 354 and (keys.value_counts() == 12).all()


def test_docs_only_ids_and_langs(pt):
    import ir_datasets

    assert ir_datasets.load("gradrel/xquad-r/hi").docs_count() == 1244
    assert not ir_datasets.load("gradrel/xquad-r/hi").has_queries()
    assert ir_datasets.load("gradrel/xquad-r/hi/test").docs_lang() == "hi"
    assert ir_datasets.load("gradrel/xquad-r/multi/dev").docs_lang() is None
    assert ir_datasets.load("gradrel/xquad-r/zh-ar/dev").queries_lang() == "zh"
    # the namespace names the pool, so datasets share it exactly when they share documents
    assert ir_datasets.load("gradrel/xquad-r/zh-ar/dev").docs_namespace() == "gradrel/xquad-r/ar"
    assert ir_datasets.load("gradrel/xquad-r/multi/dev").docs_namespace() == "gradrel/xquad-r/multi"
    assert ir_datasets.load("gradrel/afriqa/fon/dev").docs_namespace() == "gradrel/afriqa/fr"


def test_turkish_misencoded_sentence_keeps_its_text(pt):
    docs = {d["docno"]: d["text"] for d in pt.get_dataset("irds:gradrel/xquad-r/tr").get_corpus_iter(verbose=False)}
    assert docs["tr-a09-p3-s2"].startswith("Ancak, eyaletler arası ana hatlar")
    assert "1⁞2" in docs["tr-a09-p3-s2"]


def test_texts_carry_no_byte_order_mark(mirror):
    """The source files keep U+FEFF inside some sentences (9 in Arabic); the loader removes it from the indexed
    texts, and the cache key of the pools says so (``text_version: 2``), so no index of the old texts is reused."""
    import ir_datasets

    import pyterrier_gradrel  # noqa: F401  (registers the ids)
    from pyterrier_gradrel.datasets import _xquad_r
    from pyterrier_gradrel.retrieval import corpus_key

    spec = _xquad_r.collection(_xquad_r.COLLECTION)
    path = _xquad_r.fetch(spec.file(spec.languages["ar"]["file"]))
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    in_source = sum("\ufeff" in p["context"] for a in raw["data"] for p in a["paragraphs"])
    assert in_source > 0  # the fixture still exercises the cleaning
    ds = ir_datasets.load("gradrel/xquad-r/ar/test")
    assert not any("\ufeff" in d.text for d in ds.docs_iter())
    assert not any("\ufeff" in q.text for q in ds.queries_iter())
    assert corpus_key("gradrel/xquad-r/ar/test") == ("xquad-r-t2", "ar")
