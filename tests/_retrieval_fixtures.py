"""Helpers for the retrieval tests: a small in-memory dataset and a fingerprinted bi-encoder.

``FolderBiEncoder`` is a plain pyterrier-dr ``BiEncoder`` over an encoder folder (mean pooling, L2 norm, the
folder's prefixes) with a content fingerprint, so the dense cache can be tested with the ``tiny_encoder_dir``
fixture before/independently of ``pyterrier_gradrel.models.E5BiEncoder``. It has no semantics.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

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


class FolderBiEncoder:
    """Built lazily (imports torch) by :func:`folder_bi_encoder`."""


def folder_bi_encoder(path: Path):
    import pyterrier_dr
    import torch
    from transformers import AutoModel, AutoTokenizer

    class _FolderBiEncoder(pyterrier_dr.BiEncoder):
        def __init__(self, path: Path) -> None:
            super().__init__(batch_size=8)
            self.path = Path(path)
            self.settings = json.loads((self.path / "gradrel_encoder.json").read_text())
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
            self.model = AutoModel.from_pretrained(str(self.path)).eval()

        def _encode(self, texts, prefix: str) -> np.ndarray:
            texts = [prefix + str(t) for t in texts]
            if not texts:
                return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
            with torch.inference_mode():
                batch = self.tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
                batch.pop("token_type_ids", None)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                vecs = (hidden * mask).sum(1) / mask.sum(1)
                vecs = torch.nn.functional.normalize(vecs, dim=-1)
            return vecs.numpy().astype(np.float32)

        def encode_queries(self, texts, batch_size=None) -> np.ndarray:
            return self._encode(texts, self.settings["query_prefix"])

        def encode_docs(self, texts, batch_size=None) -> np.ndarray:
            return self._encode(texts, self.settings["doc_prefix"])

        def fingerprint(self) -> str:
            digest = hashlib.sha256()
            for file in sorted(p for p in self.path.iterdir() if p.is_file()):
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
            return digest.hexdigest()

        def __repr__(self) -> str:
            return f"FolderBiEncoder({str(self.path)!r})"

    return _FolderBiEncoder(path)
