"""Helpers for the retrieval tests: a small in-memory multilingual dataset and an encoder loader.

With the ``tiny_encoder_dir`` fixture the encoder is a tiny random BERT (no semantics): the tests check caching,
plumbing and result shapes, never effectiveness.
"""
from __future__ import annotations

from pathlib import Path

TINY_DOCS = [
    ("en-0", "The quick brown fox jumps over the lazy dog."),
    ("de-0", "Der schnelle braune Fuchs springt über den faulen Hund."),
    ("ru-0", "Быстрая коричневая лиса прыгает через ленивую собаку."),
    ("th-0", "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ"),
    ("zh-0", "敏捷的棕色狐狸跳过了懒狗。"),
    ("hi-0", "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।"),
    ("ar-0", "الثعلب البني السريع يقفز فوق الكلب الكسول."),
    ("el-0", "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο."),
    ("en-1", "Paris is the capital of France. Berlin is the capital of Germany."),
    ("en-2", "Mount Everest is the highest mountain on Earth."),
]


class TinyDataset:
    """The smallest thing ``bm25``/``dense``/``baselines`` accept as a dataset: a name and a corpus."""

    def __init__(self, name: str = "local/tiny-retrieval", docs=TINY_DOCS) -> None:
        self.name = name
        self.docs = list(docs)
        self.corpus_reads = 0

    def get_corpus_iter(self, verbose: bool = False):
        self.corpus_reads += 1
        for docno, text in self.docs:
            yield {"docno": docno, "text": text}


#: other documents for a pool of the same name (a dataset object's pool is keyed on its documents)
NEW_DOCS = [("new-0", "Mount Everest is the highest mountain on Earth."),
            ("new-1", "Lisbon is the capital of Portugal.")]


class DriftingDataset(TinyDataset):
    """Gives one more document on every read (a corpus iterator over a source that keeps changing)."""

    def get_corpus_iter(self, verbose: bool = False):
        self.corpus_reads += 1
        for docno, text in [*self.docs, *NEW_DOCS[:self.corpus_reads - 1]]:
            yield {"docno": docno, "text": text}


def folder_bi_encoder(path: Path):
    """The project's ``E5BiEncoder`` over an encoder folder (one torch thread, small batches, float32: the tests
    compare scores of texts encoded in different batches, which bf16 may round apart by more than their 1e-5)."""
    from pyterrier_gradrel.models import E5BiEncoder

    return E5BiEncoder.from_pretrained(path, batch_size=8, device="cpu", num_threads=1, precision="float32")
