"""The rule-based Romanian sentence splitter (XQuAD ro has no sentence breaks)."""
from __future__ import annotations

import json

import pytest

from pyterrier_gradrel.datasets import split_sentences


def _split(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_basic_terminators_and_quotes():
    text = "Prima propoziție. A doua propoziție! Oare a treia? „Citat final.” Încă una…  Ultima"
    assert _split(text) == ["Prima propoziție.", "A doua propoziție!", "Oare a treia?", "„Citat final.”",
                            "Încă una…", "Ultima"]


@pytest.mark.parametrize("text", [
    "L-a întâlnit pe dr. Popescu la spital.",
    "Cartea a fost scrisă de J. R. R. Tolkien în Anglia.",
    "Orașul a fost fondat în 753 î.Hr. Roma a crescut apoi.",  # dotted abbreviation: no split (documented)
    "Vezi art. 5 din lege.",
    "Satelitul se află la 28.5°E pe orbită.",
    "Au venit prof. Ionescu, ing. Marin etc. Toți au vorbit.",
])
def test_abbreviations_initials_and_numbers_do_not_split(text):
    assert _split(text) == [text]


def test_uppercase_diacritics_start_a_sentence():
    assert _split("A plecat. Ștefan a rămas. Țara era liniștită. Îl aștepta.") == [
        "A plecat.", "Ștefan a rămas.", "Țara era liniștită.", "Îl aștepta."]


def test_lowercase_continuation_does_not_split():
    assert _split("A fost o zi lungă. și totuși a mers mai departe.") == [
        "A fost o zi lungă. și totuși a mers mai departe."]


def test_spans_cover_the_text():
    text = "  Unu. Doi!  Trei?\nPatru  "
    spans = split_sentences(text)
    assert spans == [(2, 6), (7, 11), (13, 18), (19, 24)]
    assert split_sentences("") == [] and split_sentences("   ") == []


def test_real_romanian_paragraphs(mirror):
    data = json.loads((mirror / "xquad" / "xquad.ro.json").read_text(encoding="utf-8"))["data"]
    total = 0
    for article in data:
        for para in article["paragraphs"]:
            context = para["context"]
            spans = split_sentences(context)
            total += len(spans)
            # spans are ordered, disjoint and cover every non-space character
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
            assert "".join(context[s:e] for s, e in spans).replace(" ", "") == "".join(context.split())
            for qa in para["qas"]:
                start = qa["answers"][0]["answer_start"]
                assert any(s <= start < e for s, e in spans)
    # close to the 1,180 gold sentences of the parallel English file (pinned: 1,171)
    assert total == 1171
