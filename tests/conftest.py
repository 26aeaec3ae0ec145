"""Shared test set-up: offline, one torch thread, the local data mirror, and a tiny random encoder."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

# offline and deterministic before anything heavy is imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# hermetic caches: tests never read or write the user's ~/.cache/pyterrier_gradrel
os.environ["GRADREL_HOME"] = tempfile.mkdtemp(prefix="gradrel-test-home-")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
if "GRADREL_MIRROR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["GRADREL_MIRROR"] = str(SHARED_DATA)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local mirror of the benchmark's source files (``../shared/data``)."""
    value = os.environ.get("GRADREL_MIRROR")
    if not value:
        pytest.skip(f"no data mirror: set GRADREL_MIRROR or put the data at {SHARED_DATA}")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"no data mirror at {path} (GRADREL_MIRROR)")
    return path


TINY_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "El rápido zorro marrón salta sobre el perro perezoso.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
    "敏捷的棕色狐狸跳过了懒狗。",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "الثعلب البني السريع يقفز فوق الكلب الكسول.",
    "query: passage: what when where who how many which year",
    "Paris is the capital of France. Berlin is the capital of Germany.",
]


def build_tiny_encoder(path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Write a tiny, randomly initialised BERT encoder folder in our encoder-folder format.

    The folder is a standard HF model folder (config, weights, fast tokenizer) plus
    ``gradrel_encoder.json`` with the E5 conventions (prefixes, mean pooling, L2 norm).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    special = ["<s>", "<pad>", "</s>", "<unk>"]
    # a fixed vocabulary (no trainer: the Unigram trainer's pieces and scores change from process to process):
    # every word of the corpus and every character, all of the same score, so a text splits into the fewest pieces
    words = {"▁" + w for text in TINY_CORPUS for w in text.split()}
    chars = {c for text in TINY_CORPUS for c in text if not c.isspace()} | {"▁"}
    pieces = [(p, 0.0) for p in special] + [(p, -1.0) for p in sorted(words | chars)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=special.index("<unk>"), byte_fallback=False))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        cls_token="<s>", sep_token="</s>", model_max_length=128,
    )
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=hidden * 2, max_position_embeddings=130, type_vocab_size=1,
        pad_token_id=tok.token_to_id("<pad>"),
    )
    BertModel(cfg, add_pooling_layer=False).save_pretrained(path)
    (path / "gradrel_encoder.json").write_text(json.dumps({
        "query_prefix": "query: ", "doc_prefix": "passage: ", "pooling": "mean", "normalize": True,
        "max_length": 128, "base": "tiny-random-bert",
    }, indent=2))
    return path


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT encoder folder (fast; no semantics)."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))
