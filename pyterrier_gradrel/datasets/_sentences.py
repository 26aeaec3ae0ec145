"""A small rule-based sentence splitter for Romanian (XQuAD ``ro`` ships no sentence breaks).

The rule: a sentence ends after a run of terminal punctuation (``.``, ``!``, ``?``, ``…``), optionally followed
by closing quotes or brackets, when whitespace and then a sentence start follow (an upper-case letter,
including Ă Â Î Ș Ț, a digit, or an opening quote/bracket). A full stop does **not** end a sentence when the
word before it is

* a known abbreviation (titles, ``nr.``, ``etc.``, ``ș.a.``, months, ...; see ``ABBREVIATIONS``),
* a single upper-case letter (an initial, ``J. R. R. Tolkien``), or
* a dotted abbreviation with an inner full stop (``î.Hr.``, ``d.Hr.``, ``S.U.A.``).

Spans are character offsets into the original text, so answer spans can be matched against them.
"""
from __future__ import annotations

import re

# lower-cased, without the final full stop
ABBREVIATIONS = frozenset(
    """
    dl dna dnul dnei dr drd prof conf lect asist ing av gen col lt cpt mr mrs ms jr sr st sf pr mons
    nr art alin lit pct cap vol pag p pp ed eds fig tab sec cca aprox ex etc vs ș ş a.m p.m mil mld
    ian feb mart apr aug sept oct noi nov dec str bd bld jud mun loc com reg
    """.split()
)
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s+[\"'„“«(\[0-9A-ZĂÂÎȘŞȚŢÀ-ÖØ-ÞА-Я])")
_WORD_BEFORE = re.compile(r"(\S+)$")


def _is_abbreviation(text: str, end: int) -> bool:
    """Whether the full stop at ``text[end]`` closes an abbreviation rather than a sentence."""
    match = _WORD_BEFORE.search(text, 0, end)
    if match is None:
        return False
    word = match.group(1).lstrip("\"'„“«([")
    if not word:
        return False
    if len(word) == 1 and word.isupper():  # an initial
        return True
    if "." in word:  # î.Hr, d.Hr, S.U.A
        return True
    return word.lower() in ABBREVIATIONS


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences.

    Args:
        text: A paragraph.

    Returns:
        ``[(start, end), ...]``: half-open character spans, in order, without surrounding whitespace;
        together they cover every non-space character of ``text``.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _END.finditer(text):
        punct = match.group(0)
        if punct.startswith(".") and len(punct.rstrip("\"'”’»)]")) == 1 and _is_abbreviation(text, match.start()):
            continue
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out
