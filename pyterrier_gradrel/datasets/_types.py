"""The record types of the benchmark's datasets (ir_datasets namedtuples).

This module deliberately has no ``from __future__ import annotations``: PyTerrier's ``text_loader`` picks the
fields whose annotation *is* ``str``, which string annotations would hide.
"""
from typing import NamedTuple


class XQuadDoc(NamedTuple):
    """An XQuAD-R sentence. ``article``: the (English) SQuAD article title; ``split``: its article's split."""

    doc_id: str
    text: str
    lang: str
    article: str
    split: str

    def default_text(self) -> str:
        return self.text


class XQuadQuery(NamedTuple):
    """An XQuAD question; ``query_id`` is ``<lang>-<squad id>``, ``article`` the SQuAD article title."""

    query_id: str
    text: str
    lang: str
    article: str

    def default_text(self) -> str:
        return self.text


class AfriqaDoc(NamedTuple):
    """An AfriQA gold passage. ``article`` and ``title``: its Wikipedia title ("" when AfriQA gives none)."""

    doc_id: str
    text: str
    lang: str
    article: str
    split: str
    title: str

    def default_text(self) -> str:
        return self.text


class AfriqaQuery(NamedTuple):
    """An AfriQA question: ``query_id`` ``<lang>-<id>``, ``lang`` the language of ``text``, ``article`` the gold title."""

    query_id: str
    text: str
    lang: str
    article: str

    def default_text(self) -> str:
        return self.text


class LocalDoc(NamedTuple):
    """A document of a local collection (missing optional fields are "")."""

    doc_id: str
    text: str
    lang: str
    article: str
    split: str

    def default_text(self) -> str:
        return self.text


class LocalQuery(NamedTuple):
    """A query of a local collection (missing optional fields are "")."""

    query_id: str
    text: str
    lang: str
    article: str

    def default_text(self) -> str:
        return self.text
