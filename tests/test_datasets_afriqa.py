"""AfriQA through PyTerrier and ir_datasets, pinned against the real files in ../shared/data.

The pinned numbers were computed once by an independent script over the raw JSON Lines (its own
deduplication and whitespace-normalised title grouping, no code of this package). Queries without a usable gold passage
(none in the gold file, or an empty/null context) are dropped; the table pins how many.
"""
from __future__ import annotations

import pytest

AFRIQA_COUNTS = {  # (lang, split): (queries in file, kept, dropped, grade-2, grade-1 qrels); grade-3 = kept
    ("bem", "dev"): (503, 235, 268, 106, 178),
    ("bem", "test"): (314, 308, 6, 163, 251),
    ("bem", "train"): (502, 228, 274, 93, 185),
    ("fon", "dev"): (428, 271, 157, 7, 32),
    ("fon", "test"): (386, 386, 0, 17, 57),
    ("fon", "train"): (427, 282, 145, 12, 49),
    ("hau", "dev"): (436, 222, 214, 70, 94),
    ("hau", "test"): (300, 300, 0, 107, 166),
    ("hau", "train"): (435, 223, 212, 82, 108),
    ("ibo", "dev"): (418, 307, 111, 110, 211),
    ("ibo", "test"): (409, 409, 0, 135, 238),
    ("ibo", "train"): (417, 305, 112, 90, 209),
    ("kin", "dev"): (409, 230, 179, 47, 101),
    ("kin", "test"): (347, 345, 2, 64, 156),
    ("kin", "train"): (407, 214, 193, 46, 100),
    ("swa", "test"): (302, 295, 7, 63, 61),
    ("twi", "dev"): (452, 348, 104, 73, 140),
    ("twi", "test"): (490, 486, 4, 89, 197),
    ("twi", "train"): (451, 351, 100, 67, 167),
    ("yor", "test"): (332, 253, 79, 94, 136),
    ("yor", "train"): (360, 247, 113, 93, 105),
    ("zul", "dev"): (388, 242, 146, 38, 147),
    ("zul", "test"): (325, 325, 0, 51, 249),
    ("zul", "train"): (387, 242, 145, 32, 157),
}
POOL_SIZES = {"en": 5401, "fr": 790}  # unique non-empty gold passages


@pytest.fixture(scope="module")
def pt(mirror):
    import pyterrier as pt

    import pyterrier_gradrel  # noqa: F401  (registers the datasets)

    return pt


@pytest.mark.parametrize("key", sorted(AFRIQA_COUNTS), ids=lambda k: "/".join(k))
def test_counts_per_language_split_and_grade(pt, key):
    from pyterrier_gradrel.datasets import _afriqa

    lang, split = key
    _, kept, dropped, g2, g1 = AFRIQA_COUNTS[key]
    for variant in (lang, f"{lang}-translated"):
        ds = pt.get_dataset(f"irds:gradrel/afriqa/{variant}/{split}")
        topics, qrels = ds.get_topics("text"), ds.get_qrels()
        assert len(topics) == kept and topics["qid"].is_unique
        counts = qrels["label"].value_counts()
        assert (int(counts.get(3, 0)), int(counts.get(2, 0)), int(counts.get(1, 0))) == (kept, g2, g1)
        assert (qrels[qrels.label == 3].groupby("qid").size() == 1).all()  # exactly one gold passage each
        assert set(qrels["qid"]) == set(topics["qid"])
    assert len(_afriqa.dropped(lang, split)) == dropped


def test_dropped_plus_kept_is_the_query_file(pt):
    import json
    import os
    from pathlib import Path

    root = Path(os.environ["GRADREL_MIRROR"]) / "afriqa" / "queries"
    for (lang, split), (n_file, kept, dropped, _, _) in AFRIQA_COUNTS.items():
        path = next((root / lang).glob(f"queries.afriqa.{lang}.*.{split}.json"))
        assert sum(1 for line in path.open(encoding="utf-8") if line.strip()) == n_file == kept + dropped
        assert json.loads(path.open(encoding="utf-8").readline())["lang"] == lang


def test_hau_test_fields_and_translation_control(pt):
    native = pt.get_dataset("irds:gradrel/afriqa/hau/test")
    translated = pt.get_dataset("irds:gradrel/afriqa/hau-translated/test")
    t_native = native.get_topics().set_index("qid")
    t_trans = translated.get_topics().set_index("qid")
    assert list(t_native.columns) == ["text", "lang", "article"]
    assert t_native.loc["hau-1", "text"] == "A wane gari babban Ofishin Al jazeera yake?"
    assert t_trans.loc["hau-1", "text"] == "In which city is Al Jazeera's headquarters located?"
    assert (t_native["lang"] == "hau").all() and (t_trans["lang"] == "en").all()
    assert t_native.loc["hau-1", "article"] == "Al Jazeera"
    # same qids and the very same graded qrels: only the query language differs
    q1, q2 = native.get_qrels(), translated.get_qrels()
    assert q1.sort_values(["qid", "docno"]).reset_index(drop=True).equals(q2.sort_values(["qid", "docno"]).reset_index(drop=True))
    assert native.irds_ref().queries_lang() == "ha" and translated.irds_ref().queries_lang() == "en"

    corpus = list(native.get_corpus_iter(verbose=False))
    assert len(corpus) == POOL_SIZES["en"]
    assert set(corpus[0]) == {"docno", "text", "lang", "article", "split", "title"}
    gold = q1[(q1.qid == "hau-1") & (q1.label == 3)]["docno"].item()
    loaded = native.text_loader(["text", "title"])(q1[q1.qid == "hau-1"][["qid", "docno"]])
    assert "Doha" in loaded.set_index("docno").loc[gold, "text"]
    assert (loaded["title"] == "Al Jazeera").all()  # grade 1/2 passages share the title


def test_grade_two_contains_the_answer_and_grade_one_does_not(pt):
    import json
    import os
    from pathlib import Path

    from pyterrier_gradrel.datasets import _afriqa

    path = Path(os.environ["GRADREL_MIRROR"]) / "afriqa/gold_passages/ibo/gold_span_passages.afriqa.ibo.en.test.json"
    answers = {str(r["id"]): r["answer_pivot"]["text"] for r in map(json.loads, path.open(encoding="utf-8"))}
    text = {d.doc_id: d for d in _afriqa.load_pool("en").docs.docs}
    seen = {1: 0, 2: 0, 3: 0}
    for q in _afriqa.load_split("ibo", "test").questions:
        needles = [a.casefold() for a in answers[q.afriqa_id] if isinstance(a, str) and a.strip()]
        assert needles  # every ibo test gold row has a pivot answer
        for docno, grade in q.grades:
            seen[grade] += 1
            if grade < 3:
                assert text[docno].title == q.title  # same (whitespace-normalised) Wikipedia title
                contains = any(n in text[docno].text.casefold() for n in needles)
                assert contains == (grade == 2)
    kept, g2, g1 = AFRIQA_COUNTS["ibo", "test"][1], AFRIQA_COUNTS["ibo", "test"][3], AFRIQA_COUNTS["ibo", "test"][4]
    assert seen == {3: kept, 2: g2, 1: g1}


def test_fon_uses_the_french_pool(pt):
    ds = pt.get_dataset("irds:gradrel/afriqa/fon/test")
    corpus = list(ds.get_corpus_iter(verbose=False))
    assert len(corpus) == POOL_SIZES["fr"]
    assert {d["lang"] for d in corpus} == {"fr"} and all(d["docno"].startswith("fr-") for d in corpus)
    assert ds.get_qrels()["docno"].str.startswith("fr-").all()
    assert pt.get_dataset("irds:gradrel/afriqa/fon-translated/test").get_topics()["lang"].eq("fr").all()


def test_pool_docnos_unique_and_split_is_most_held_out(pt):
    from pyterrier_gradrel.datasets import _afriqa

    for pivot, size in POOL_SIZES.items():
        docs = _afriqa.load_pool(pivot).docs.docs
        assert len(docs) == size == len({d.doc_id for d in docs})
        assert {d.split for d in docs} == {"train", "dev", "test"}
    # a passage that is gold for a test question is never marked train/dev
    test_gold = {d for lang, split in AFRIQA_COUNTS if split == "test"
                 for q in _afriqa.load_split(lang, split).questions for d, g in q.grades if g == 3}
    splits = {d.doc_id: d.split for p in POOL_SIZES for d in _afriqa.load_pool(p).docs.docs}
    assert {splits[d] for d in test_gold} == {"test"}


def test_split_gaps_are_not_registered(pt):
    import ir_datasets

    registered = set(ir_datasets.registry)
    for missing in ("swa/train", "swa/dev", "yor/dev", "wol/train", "wol/dev", "wol/test", "wol"):
        assert f"gradrel/afriqa/{missing}" not in registered
    assert {f"gradrel/afriqa/{lang}/{split}" for lang, split in AFRIQA_COUNTS} <= registered
    assert {f"gradrel/afriqa/{lang}-translated/{split}" for lang, split in AFRIQA_COUNTS} <= registered
    with pytest.raises(KeyError):
        ir_datasets.load("gradrel/afriqa/yor/dev")
