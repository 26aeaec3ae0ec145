"""The transformers judge backend on a tiny, randomly initialised causal LM built in the test.

The model has no judging ability (random weights): these tests check the machinery (grade-token
probabilities read in one forward pass, batching with padding, truncation, chat templates, cache ids).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

CORPUS = [
    "Grade (a single digit from 0 to 3): 0 1 2 3",
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "敏捷的棕色狐狸跳过了懒狗。 สุนัขจิ้งจอกสีน้ำตาล",
    "You are a careful relevance assessor. query passage DATA END",
]


def build_tiny_causal_lm(path: Path, *, seed: int = 0, chat_template: str | None = None) -> Path:
    """Write a tiny random GPT-2 (byte-level BPE tokenizer trained here) to ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", model_max_length=4096)
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=4096, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(cfg).save_pretrained(path)
    return path


CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="module")
def hf_backend(tiny_lm):
    from pyterrier_gradrel.judge import TransformersBackend

    return TransformersBackend(tiny_lm, batch_size=3, device="cpu")


PAIRS = [("capital of france", "Paris is the capital of France."),
         ("wer schrieb faust", "Faust wurde von Goethe geschrieben, ein langes Drama in zwei Teilen."),
         ("狐狸", "敏捷的棕色狐狸跳过了懒狗。"),
         ("q", "x"),
         ("a much longer query about the lazy dog and the quick brown fox", "The dog.")]


def test_grade_tokens_are_digits(hf_backend):
    tok = hf_backend.tokenizer
    for grade, ids in enumerate(hf_backend.grade_token_ids):
        assert ids and all(tok.decode([i]).strip() == str(grade) for i in ids)


def test_batched_probs_equal_single_unpadded_forward(hf_backend):
    """Left padding + position ids: every pair's grade probabilities equal those of its own forward pass."""
    import torch

    results = hf_backend.judge_many(PAIRS)
    assert len(results) == len(PAIRS)
    for (q, p), judgement in zip(PAIRS, results, strict=True):
        ids = torch.tensor([hf_backend._encode(q, p)])
        with torch.inference_mode():
            probs = torch.softmax(hf_backend.model(input_ids=ids).logits[0, -1].float(), dim=-1)
        mass = [float(probs[hf_backend.grade_token_ids[g]].sum()) for g in range(4)]
        expected = [m / sum(mass) for m in mass]
        assert judgement.probs == pytest.approx(expected, rel=1e-4, abs=1e-6)
        assert judgement.grade == max(range(4), key=lambda g: expected[g])
        assert judgement.raw == hf_backend.tokenizer.decode([int(probs.argmax())])


def test_on_result_reports_every_pair_once(hf_backend):
    seen = []
    hf_backend.judge_many(PAIRS, on_result=lambda i, j: seen.append(i))
    assert sorted(seen) == list(range(len(PAIRS)))


def test_min_grade_mass_records_missing(tiny_lm):
    from pyterrier_gradrel.judge import TransformersBackend

    be = TransformersBackend(tiny_lm, min_grade_mass=0.99, device="cpu")
    result = be.judge_many(PAIRS[:2])
    assert all(r.grade is None and "min_grade_mass" in r.error and r.probs is not None for r in result)


def test_long_passages_are_truncated_not_the_instructions(tiny_lm):
    from pyterrier_gradrel.judge import TransformersBackend

    short = TransformersBackend(tiny_lm, max_length=1200, device="cpu")
    passage = "The quick brown fox jumps over the lazy dog. " * 200
    ids = short._encode("fox", passage)
    assert len(ids) <= 1200
    text = short.tokenizer.decode(ids)
    assert text.rstrip().endswith("Grade (a single digit from 0 to 3):") and "careful relevance assessor" in text
    assert short.judge_many([("fox", passage)])[0].grade in (0, 1, 2, 3)


def test_a_query_too_long_for_max_length_fails_only_its_pair(tiny_lm):
    """A prompt that cannot fit even without its passage is that pair's missing grade, not the whole run's error."""
    from pyterrier_gradrel.judge import TransformersBackend

    be = TransformersBackend(tiny_lm, max_length=1200, device="cpu")
    seen = []
    result = be.judge_many([PAIRS[0], ("fox " * 2000, "The dog."), PAIRS[1]], on_result=lambda i, j: seen.append(i))
    assert result[1].grade is None and not result[1].transient and "does not fit max_length=1200" in result[1].error
    assert result[0].grade in (0, 1, 2, 3) and result[2].grade in (0, 1, 2, 3) and sorted(seen) == [0, 1, 2]


def test_chat_template_is_used_when_present(tmp_path):
    from pyterrier_gradrel.judge import TransformersBackend

    path = build_tiny_causal_lm(tmp_path / "chat", chat_template=CHAT)
    be = TransformersBackend(path, device="cpu")
    text = be._render("q", "p")
    assert text.startswith("<|system|>") and text.endswith("<|assistant|>")
    assert TransformersBackend(path, chat_template="never", device="cpu")._render("q", "p").startswith("You are")
    with pytest.raises(ValueError, match="chat_template must be one of"):
        TransformersBackend(path, chat_template="sometimes")


def test_model_id_tracks_the_weights(tiny_lm, tmp_path, hf_backend):
    from pyterrier_gradrel.judge import TransformersBackend

    again = TransformersBackend(tiny_lm, device="cpu")
    other = TransformersBackend(build_tiny_causal_lm(tmp_path / "other", seed=1), device="cpu")
    assert again.model_id == hf_backend.model_id and again.model_id.startswith("hf:")
    assert other.model_id != hf_backend.model_id



def test_model_id_tracks_the_settings_that_change_judgements(tiny_lm, tmp_path, hf_backend):
    """max_length (truncation), the prompt format and min_grade_mass change what a judge answers, so they are
    part of the cache key; with every default the id is the one earlier versions wrote."""
    import os

    from pyterrier_gradrel.judge import TransformersBackend

    base = f"hf:{os.path.basename(str(tiny_lm).rstrip('/'))}@{hf_backend._fingerprint()[:12]}"
    assert hf_backend.model_id == base  # default settings: unchanged
    assert TransformersBackend(tiny_lm, max_length=2048, chat_template="auto", min_grade_mass=0.0,
                               device="cpu").model_id == base
    short = TransformersBackend(tiny_lm, max_length=1500, device="cpu")
    strict = TransformersBackend(tiny_lm, min_grade_mass=0.25, device="cpu")
    both = TransformersBackend(tiny_lm, max_length=1500, min_grade_mass=0.25, device="cpu")
    assert short.model_id == base + "[max_length=1500]"
    assert strict.model_id == base + "[min_grade_mass=0.25]"
    assert both.model_id == base + "[max_length=1500,min_grade_mass=0.25]"
    assert TransformersBackend(tiny_lm, model_id="mine", max_length=1500, device="cpu").model_id == "mine"

    chat = build_tiny_causal_lm(tmp_path / "chat", chat_template=CHAT)
    auto = TransformersBackend(chat, device="cpu")
    assert TransformersBackend(chat, chat_template="always", device="cpu").model_id == auto.model_id  # same prompts
    never = TransformersBackend(chat, chat_template="never", device="cpu")
    assert never.model_id == auto.model_id + "[chat_template=never]"
    assert TransformersBackend(tiny_lm, chat_template="never", device="cpu").model_id == base  # no template: as auto


def test_judgements_cached_under_other_settings_are_not_reused(tiny_lm, tmp_path):
    """A passage truncated at 1,500 tokens was graded on other text than at 2,048: judge it again."""
    from pyterrier_gradrel.judge import LLMJudge, TransformersBackend

    passage = "Paris is the capital of France. " * 300  # longer than either limit
    row = pd.DataFrame({"qid": ["q"], "query": ["capital of france"], "docno": ["d"], "text": [passage]})
    cache = tmp_path / "judgements.jsonl"
    LLMJudge(TransformersBackend(tiny_lm, max_length=1500, device="cpu"), cache=cache).transform(row)
    full = LLMJudge(TransformersBackend(tiny_lm, device="cpu"), cache=cache)
    full.transform(row)
    assert full.judged_last == 1  # asked its own model, not served the truncated run's answer
    again = LLMJudge(TransformersBackend(tiny_lm, device="cpu"), cache=cache)
    again.transform(row)
    assert again.judged_last == 0  # same settings: the cache answers


def test_llm_judge_with_transformers_backend_and_cache(hf_backend, tmp_path):
    from pyterrier_gradrel.judge import JudgementCache, LLMJudge

    topics = pd.DataFrame([{"qid": f"q{i}", "query": q, "docno": f"d{i}", "text": t}
                           for i, (q, t) in enumerate(PAIRS)])
    judge = LLMJudge(hf_backend, cache=tmp_path / "hf.jsonl")
    out = judge.transform(topics)
    assert out["grade"].notna().all() and judge.judged_last == len(PAIRS)
    assert out[["p_0", "p_1", "p_2", "p_3"]].sum(axis=1).tolist() == pytest.approx([1.0] * len(PAIRS))
    again = LLMJudge(hf_backend, cache=JudgementCache(tmp_path / "hf.jsonl"))
    out2 = again.transform(topics)
    assert again.judged_last == 0
    pd.testing.assert_frame_equal(out, out2)
    assert "TransformersBackend" in repr(judge)
