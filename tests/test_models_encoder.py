"""E5BiEncoder on the tiny random encoder: prefixes, pooling, batching, pyterrier-dr integration, identity."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pyterrier_gradrel.models import load_encoder
from pyterrier_gradrel.models._encoder import E5BiEncoder, infer_settings, validate_settings

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "敏捷的棕色狐狸跳过了懒狗。",
    "Paris is the capital of France. Berlin is the capital of Germany.",
    "fox",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "",
]


@pytest.fixture(scope="module")
def enc(tiny_encoder_dir):
    return E5BiEncoder.from_pretrained(tiny_encoder_dir, batch_size=3, num_threads=1, precision="float32")


def _reference(enc, texts):
    """Straightforward per-text forward pass: mean over all tokens, then L2 norm."""
    rows = []
    with torch.no_grad():
        for t in texts:
            ids = enc.tokenizer(t, return_tensors="pt", truncation=True, max_length=enc.max_length)["input_ids"]
            rows.append(torch.nn.functional.normalize(enc.model(input_ids=ids).last_hidden_state.mean(1), dim=-1)[0])
    return torch.stack(rows).numpy()


def test_docs_and_queries_match_a_plain_forward_pass(enc):
    docs = enc.encode_docs(TEXTS)
    assert docs.dtype == np.float32 and docs.shape == (len(TEXTS), enc.dim)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(docs, _reference(enc, ["passage: " + t for t in TEXTS]), atol=2e-5)
    queries = enc.encode_queries(TEXTS)
    np.testing.assert_allclose(queries, _reference(enc, ["query: " + t for t in TEXTS]), atol=2e-5)
    assert not np.allclose(queries, docs, atol=1e-3)  # the prefixes matter


def test_batch_size_and_order_do_not_change_embeddings(enc):
    a = enc.encode_docs(TEXTS, batch_size=1)
    b = enc.encode_docs(TEXTS, batch_size=4)
    c = enc.encode_docs(TEXTS[::-1], batch_size=7)[::-1]
    np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose(a, c, atol=2e-5)


def test_max_length_truncates(tiny_encoder_dir, enc):
    short = E5BiEncoder.from_pretrained(tiny_encoder_dir, max_length=6, precision="float32")
    long_text = "the quick brown fox jumps over the lazy dog " * 5
    ids = short.tokenizer("passage: " + long_text, truncation=True, max_length=6)["input_ids"]
    assert len(ids) == 6
    with torch.no_grad():
        ref = short.model(input_ids=torch.tensor([ids])).last_hidden_state.mean(1)
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    np.testing.assert_allclose(short.encode_docs([long_text]), ref, atol=2e-5)
    assert not np.allclose(short.encode_docs([long_text]), enc.encode_docs([long_text]), atol=1e-3)
    assert enc.max_length == 128


def test_torch_path_keeps_gradients_and_agrees(enc):
    out = enc.encode_queries_torch(TEXTS[:3])
    assert out.requires_grad and out.shape == (3, enc.dim)
    np.testing.assert_allclose(out.detach().numpy(), enc.encode_queries(TEXTS[:3]), atol=2e-5)
    assert enc.encode_docs_torch(TEXTS[:2]).requires_grad


def _training_forward(model, tokenizer, texts, max_length, pooling):
    """The trainer's grouped forward as it was written before it moved into the encoder (the reference)."""
    from pyterrier_gradrel.models._encoder import length_groups

    enc = tokenizer(texts, truncation=True, max_length=max_length, return_token_type_ids=False)
    lengths = [len(x) for x in enc["input_ids"]]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    parts = []
    for start, end in length_groups([lengths[i] for i in order]):
        idx = order[start:end]
        batch = tokenizer.pad({"input_ids": [enc["input_ids"][i] for i in idx],
                               "attention_mask": [enc["attention_mask"][i] for i in idx]}, return_tensors="pt")
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state.float()
        if pooling == "mean":
            m = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
            parts.append((out * m).sum(1) / m.sum(1).clamp(min=1e-9))
        else:
            parts.append(out[:, 0])
    emb = torch.cat(parts)[torch.from_numpy(np.argsort(np.asarray(order), kind="stable"))]
    return torch.nn.functional.normalize(emb, dim=-1)


@pytest.mark.parametrize("pooling, bf16", [("mean", False), ("cls", False), ("mean", True)])
def test_torch_path_is_the_training_forward_bit_for_bit(tiny_encoder_dir, pooling, bf16):
    """Values and gradients equal the trainer's former own pooling exactly, dropout and autocast included."""
    base = E5BiEncoder.from_pretrained(tiny_encoder_dir, max_length=16, precision="float32")
    ours = E5BiEncoder.from_model(base.model, base.tokenizer, {**base.settings, "pooling": pooling}, max_length=16)
    texts = [t for t in TEXTS * 3 if t] + ["fox"]
    ours.model.train()  # dropout on: both must draw the same random numbers in the same order
    results = []
    for run in (lambda: ours.encode_docs_torch(texts),
                lambda: _training_forward(ours.model, ours.tokenizer, ["passage: " + t for t in texts], 16, pooling)):
        torch.manual_seed(3)
        ours.model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            emb = run()
        (emb @ emb.T).square().sum().backward()
        results.append((emb.detach(), {n: p.grad.clone() for n, p in ours.model.named_parameters()
                                       if p.grad is not None}))
    (a, ga), (b, gb) = results
    assert a.dtype == torch.float32 and torch.equal(a, b)
    assert ga.keys() == gb.keys() and len(ga) > 10 and all(torch.equal(ga[n], gb[n]) for n in ga)


def test_torch_path_batch_size_caps_the_forward_passes(enc):
    seen = []
    handle = enc.model.register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs["input_ids"].shape[0]),
                                             with_kwargs=True)
    try:
        with torch.no_grad():
            capped = enc.encode_docs_torch(TEXTS * 2, batch_size=2)
            seen_capped, seen[:] = list(seen), []
            free = enc.encode_docs_torch(TEXTS * 2)
    finally:
        handle.remove()
    assert max(seen_capped) <= 2 and sum(seen_capped) == len(TEXTS) * 2 and sum(seen) == len(TEXTS) * 2
    torch.testing.assert_close(capped, free, atol=2e-5, rtol=0)


def test_query_tuned_encoder_exposes_the_torch_hooks(tiny_encoder_dir, enc):
    from pyterrier_gradrel.models import QueryTunedEncoder

    docs = E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="float32")
    with torch.no_grad():
        docs.model.encoder.layer[-1].output.LayerNorm.bias.add_(torch.linspace(-1, 1, docs.dim))  # another tower
    both = QueryTunedEncoder(enc, docs)
    q, d = both.encode_queries_torch(TEXTS[:3]), both.encode_docs_torch(TEXTS[:3])
    assert q.requires_grad and d.requires_grad
    assert torch.equal(q, enc.encode_queries_torch(TEXTS[:3])) and torch.equal(d, docs.encode_docs_torch(TEXTS[:3]))
    assert not torch.allclose(d, enc.encode_docs_torch(TEXTS[:3]), atol=1e-4)


def test_a_query_tuned_folder_takes_a_query_prefix_only(enc, tmp_path):
    """Its passages are the base encoder's: options on the passage side or on the pooling would not match them."""
    from pyterrier_gradrel.models import QueryTunedEncoder

    folder = QueryTunedEncoder(enc, enc).save(tmp_path / "query-tuned")
    loaded = load_encoder(folder, precision="float32", query_prefix="q: ")
    assert isinstance(loaded, QueryTunedEncoder)
    assert (loaded.query.query_prefix, loaded.docs.doc_prefix) == ("q: ", "passage: ")
    for option in ({"doc_prefix": "p: "}, {"pooling": "cls"}, {"normalize": False}):
        with pytest.raises(ValueError, match=rf"is query-tuned: .* {next(iter(option))} cannot be changed"):
            load_encoder(folder, precision="float32", **option)


def test_precision_aliases_are_the_canonical_values(tiny_encoder_dir):
    from pyterrier_gradrel.models._encoder import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "float32" and resolve_precision("bf16", cpu) == "bfloat16"
    short = E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="bf16")
    long = E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="bfloat16")
    assert short.precision == "bfloat16" and short.fingerprint() == long.fingerprint()


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_a_batch_size_that_is_not_a_positive_int_is_refused(enc, batch_size):
    """``range(0, n, -1)`` is empty: a negative batch size returned the output buffer unwritten (garbage)."""
    for encode in (enc.encode_docs, enc.encode_queries):
        with pytest.raises(ValueError, match=rf"batch_size must be None or a positive int, got {batch_size!r}"):
            encode(TEXTS, batch_size=batch_size)


def test_empty_inputs(enc):
    assert enc.encode_docs([]).shape == (0, enc.dim)
    assert enc.encode_queries_torch([]).shape == (0, enc.dim)
    out = enc.query_encoder()(pd.DataFrame({"qid": [], "query": []}))
    assert "query_vec" in out.columns and len(out) == 0


def test_threads_are_restored(tiny_encoder_dir):
    before = torch.get_num_threads()
    e = E5BiEncoder.from_pretrained(tiny_encoder_dir, num_threads=2)
    e.encode_docs(TEXTS)
    assert torch.get_num_threads() == before


def test_pyterrier_dr_pipeline(enc, tmp_path):
    import pyterrier_dr

    docs = pd.DataFrame({"docno": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS})
    q = enc.query_encoder()(pd.DataFrame({"qid": ["1", "2"], "query": ["fox", "capital of France"]}))
    assert q["query_vec"].iloc[0].shape == (enc.dim,)
    np.testing.assert_allclose(q["query_vec"].iloc[0], enc.encode_queries(["fox"])[0], atol=1e-6)
    d = enc.doc_encoder()(docs)
    np.testing.assert_allclose(np.stack(d["doc_vec"]), enc.encode_docs(TEXTS), atol=1e-6)

    index = pyterrier_dr.FlexIndex(str(tmp_path / "tiny.flex"))
    (enc >> index.indexer()).index(docs.to_dict("records"))
    for retriever in (index.np_retriever(), index.retriever()):
        res = (enc >> retriever).search("quick brown fox")
        assert len(res) == len(TEXTS) and set(res["docno"]) == set(docs["docno"])
        assert res["score"].is_monotonic_decreasing
        # scores are dot products of the normalised query and doc vectors
        qv = enc.encode_queries(["quick brown fox"])[0]
        top = res.iloc[0]
        assert top["score"] == pytest.approx(float(enc.encode_docs([TEXTS[int(top["docno"][1:])]])[0] @ qv), abs=1e-5)
    # as a plain transformer it infers its mode from the columns
    assert "doc_vec" in enc(docs).columns and "query_vec" in enc(pd.DataFrame({"qid": ["1"], "query": ["x"]})).columns


def test_fingerprint_and_save_roundtrip(enc, tmp_path):
    fp = enc.fingerprint()
    assert len(fp) == 64 and fp == enc.fingerprint()
    saved = enc.save(tmp_path / "copy")
    assert json.loads((saved / "gradrel_encoder.json").read_text()) == enc.settings
    again = E5BiEncoder.from_pretrained(saved, precision="float32")
    assert again.fingerprint() == fp
    np.testing.assert_allclose(again.encode_docs(TEXTS), enc.encode_docs(TEXTS), atol=1e-6)
    # changing weights in place or settings changes the fingerprint
    with torch.no_grad():
        again.model.embeddings.word_embeddings.weight[5, 0] += 1.0
    assert again.fingerprint() != fp
    other = E5BiEncoder.from_model(enc.model, enc.tokenizer, {**enc.settings, "query_prefix": "q: "}, precision="float32")
    assert other.fingerprint() != fp and other.query_prefix == "q: "


def test_load_encoder_on_a_folder(tiny_encoder_dir):
    e = load_encoder(tiny_encoder_dir, batch_size=2, max_length=16, precision="float32")
    assert isinstance(e, E5BiEncoder) and e.batch_size == 2 and e.max_length == 16
    assert repr(e) == f"E5BiEncoder({str(tiny_encoder_dir.resolve())!r})"


def test_validation_errors(tiny_encoder_dir, enc):
    with pytest.raises(ValueError, match="pooling'] must be one of"):
        validate_settings({**enc.settings, "pooling": "max"})
    with pytest.raises(ValueError, match="lack"):
        validate_settings({"query_prefix": "query: "})
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        E5BiEncoder.from_pretrained(tiny_encoder_dir, batch_size=0)
    with pytest.raises(ValueError, match="num_threads"):
        E5BiEncoder.from_pretrained(tiny_encoder_dir, num_threads=0)
    with pytest.raises(ValueError, match="max_length"):
        E5BiEncoder.from_pretrained(tiny_encoder_dir, max_length=1)
    with pytest.raises(TypeError, match="texts must be strings"):
        enc.encode_docs(["ok", None])


def test_a_folder_without_tokenizer_files_is_refused(tiny_encoder_dir, tmp_path):
    """AutoTokenizer builds an empty vocabulary from config.json alone: every text would be one vector."""
    import shutil

    folder = tmp_path / "weights-only"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "gradrel_encoder.json"):
        shutil.copy(tiny_encoder_dir / name, folder)
    with pytest.raises(FileNotFoundError, match=r"weights-only has no tokenizer files \(one of tokenizer.json"):
        load_encoder(folder)


def test_a_malformed_settings_file_is_named(tiny_encoder_dir, tmp_path):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(tiny_encoder_dir, folder)
    (folder / "gradrel_encoder.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken/gradrel_encoder.json is not valid JSON"):
        load_encoder(folder)


def test_settings_inferred_from_sentence_transformers_metadata(tiny_encoder_dir, tmp_path):
    import shutil

    folder = tmp_path / "bge-like"
    shutil.copytree(tiny_encoder_dir, folder)
    (folder / "gradrel_encoder.json").unlink()
    assert infer_settings(folder)["query_prefix"] == ""
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "Q: ", "document": "D: "}}))
    s = infer_settings(folder)
    assert (s["pooling"], s["normalize"], s["query_prefix"], s["doc_prefix"]) == ("cls", False, "Q: ", "D: ")
    assert infer_settings(folder, base="intfloat/multilingual-e5-base")["query_prefix"] == "Q: "
    cls_enc = E5BiEncoder.from_pretrained(folder, precision="float32")
    with torch.no_grad():
        ids = cls_enc.tokenizer("D: fox", return_tensors="pt")["input_ids"]
        ref = cls_enc.model(input_ids=ids).last_hidden_state[:, 0].numpy()
    np.testing.assert_allclose(cls_enc.encode_docs(["fox"]), ref, atol=2e-5)


def test_empty_sentence_transformers_prompts_keep_the_e5_prefixes(tiny_encoder_dir, tmp_path):
    """sentence-transformers >= 5 saves ``{"query": "", "document": ""}`` for a model without prompts."""
    import shutil

    folder = tmp_path / "st5-saved"
    shutil.copytree(tiny_encoder_dir, folder)
    (folder / "gradrel_encoder.json").unlink()
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "", "document": ""}}))
    s = infer_settings(folder, base="someorg/multilingual-e5-small-finetuned")
    assert (s["query_prefix"], s["doc_prefix"]) == ("query: ", "passage: ")
    assert infer_settings(folder, base="someorg/bge-like")["query_prefix"] == ""
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": None, "document": None}}))
    s = infer_settings(folder, base="someorg/multilingual-e5-small-finetuned")  # sentence-transformers 6: null
    assert (s["query_prefix"], s["doc_prefix"]) == ("query: ", "passage: ")


def test_a_non_empty_prompt_makes_the_prompts_give_both_sides(tiny_encoder_dir, tmp_path):
    """Once a folder declares a prompt, an empty or missing one means what sentence-transformers does with it:
    no prefix (an E5-instruct model saved with its query instruction has ``document: ""``)."""
    import shutil

    folder = tmp_path / "st-saved"
    shutil.copytree(tiny_encoder_dir, folder)
    (folder / "gradrel_encoder.json").unlink()
    instruct = "Instruct: Given a question, retrieve passages that answer it\nQuery: "
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": instruct, "document": ""}}))
    s = infer_settings(folder, base="intfloat/multilingual-e5-large-instruct")
    assert (s["query_prefix"], s["doc_prefix"]) == (instruct, "")
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "", "document": "D: "}}))
    s = infer_settings(folder, base="someorg/multilingual-e5-small-finetuned")
    assert (s["query_prefix"], s["doc_prefix"]) == ("", "D: ")
    # encode_document's order: document, then passage, then corpus
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"corpus": "C: ", "passage": "P: "}}))
    assert infer_settings(folder, base="x")["doc_prefix"] == "P: "


def _plain_copy(tiny_encoder_dir, folder):
    """The tiny encoder as a folder without ``gradrel_encoder.json`` (settings from its name and metadata)."""
    import shutil

    shutil.copytree(tiny_encoder_dir, folder)
    (folder / "gradrel_encoder.json").unlink()
    return folder


@pytest.mark.parametrize(("name", "query_prefix", "doc_prefix", "pooling"), [
    ("intfloat/multilingual-e5-large-instruct",
     "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ", "", "mean"),
    ("intfloat/e5-base-v2", "query: ", "passage: ", "mean"),
    ("intfloat/multilingual-e5-small", "query: ", "passage: ", "mean"),
    ("me5-small", "query: ", "passage: ", "mean"),
    ("BAAI/bge-m3", "", "", "cls"),
    ("4be5d0c2f1a3", "", "", "mean"),  # a hex folder name holds "e5" but names no E5 model
    ("someorg/my-retriever", "", "", "mean"),
])
def test_the_name_rule_per_model_family(tiny_encoder_dir, tmp_path, name, query_prefix, doc_prefix, pooling):
    folder = _plain_copy(tiny_encoder_dir, tmp_path / "plain")
    s = infer_settings(folder, base=name)
    assert (s["query_prefix"], s["doc_prefix"], s["pooling"], s["normalize"]) == (query_prefix, doc_prefix, pooling, True)


def test_an_unknown_name_warns_once_and_options_override(tiny_encoder_dir, tmp_path, caplog):
    folder = _plain_copy(tiny_encoder_dir, tmp_path / "checkpoint-500")
    with caplog.at_level("WARNING", logger="pyterrier_gradrel.models._encoder"):
        enc = load_encoder(folder, precision="float32")
        load_encoder(folder, precision="float32")
    assert (enc.query_prefix, enc.doc_prefix) == ("", "")
    warnings = [r.getMessage() for r in caplog.records if "no known model family" in r.getMessage()]
    assert len(warnings) == 1 and "checkpoint-500" in warnings[0] and "query_prefix=" in warnings[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="pyterrier_gradrel.models._encoder"):
        tuned = load_encoder(folder, precision="float32", query_prefix="query: ", doc_prefix="passage: ",
                             pooling="cls", normalize=False)
    assert not caplog.records
    assert tuned.settings == {**enc.settings, "query_prefix": "query: ", "doc_prefix": "passage: ",
                              "pooling": "cls", "normalize": False}
    assert tuned.fingerprint() != enc.fingerprint()
    with torch.no_grad():
        ids = tuned.tokenizer("passage: fox", return_tensors="pt")["input_ids"]
        ref = tuned.model(input_ids=ids).last_hidden_state[:, 0].numpy()
    np.testing.assert_allclose(tuned.encode_docs(["fox"]), ref, atol=2e-5)
    # an option wins over a folder's own gradrel_encoder.json too
    assert load_encoder(tiny_encoder_dir, precision="float32", query_prefix="q: ").query_prefix == "q: "
    with pytest.raises(ValueError, match=r"settings\['pooling'\] must be one of \['mean', 'cls'\], got 'max'"):
        load_encoder(folder, pooling="max")


def test_sentence_transformers_6_pooling_spelling(tiny_encoder_dir, tmp_path):
    """sentence-transformers >= 6 writes ``{"pooling_mode": "cls"}``, not the ``pooling_mode_*`` flags."""
    folder = _plain_copy(tiny_encoder_dir, tmp_path / "st6")
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.base.modules.normalize.Normalize"}]))
    (folder / "1_Pooling").mkdir()
    for mode, expected in (("cls", "cls"), (["mean"], "mean")):
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 32, "pooling_mode": mode,
                                                                      "include_prompt": True}))
        s = infer_settings(folder, base="BAAI/bge-m3" if expected == "mean" else "x")
        assert (s["pooling"], s["normalize"]) == (expected, True)


@pytest.mark.parametrize(("pooling", "modules", "message"), [
    ({"pooling_mode": "lasttoken"}, (), r"pools this model with 'lasttoken'.*pass pooling="),
    ({"pooling_mode_max_tokens": True}, (), r"pools this model with 'max'"),
    ({"pooling_mode": "mean", "include_prompt": False}, (), r"'mean without the prompt'"),
    ({"pooling_mode": ["cls", "mean"]}, (), r"'cls\+mean'"),
    ({"pooling_mode": "cls"}, ("Dense",), r"has Dense, which this encoder does not apply"),
])
def test_a_sentence_transformers_pipeline_it_cannot_reproduce_is_refused(tiny_encoder_dir, tmp_path, pooling, modules,
                                                                          message):
    """Silently pooling another way (or leaving out a Dense layer, as LaBSE has) would give other vectors."""
    folder = _plain_copy(tiny_encoder_dir, tmp_path / "st")
    extra = [{"idx": 2 + i, "name": str(2 + i), "path": f"{2 + i}_{m}", "type": f"sentence_transformers.models.{m}"}
             for i, m in enumerate(modules)]
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}, *extra]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(ValueError, match=message):
        load_encoder(folder, precision="float32")
    if not modules:  # the caller may choose a pooling the encoder has; a module it lacks has no such way out
        assert load_encoder(folder, precision="float32", pooling="mean").settings["pooling"] == "mean"


def test_a_sentence_transformers_model_that_lowercases_is_refused(tiny_encoder_dir, tmp_path):
    """do_lower_case: sentence-transformers lowercases every text first; encoding the texts as written differs."""
    folder = _plain_copy(tiny_encoder_dir, tmp_path / "st")
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "mean"}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    assert load_encoder(folder, precision="float32").settings["pooling"] == "mean"
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": True}))
    with pytest.raises(ValueError, match="lowercases every text"):
        load_encoder(folder, precision="float32")


def test_bfloat16_precision_is_close_and_fingerprinted(tiny_encoder_dir, enc):
    fast = E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="bfloat16", num_threads=1)
    a, b = enc.encode_docs(TEXTS), fast.encode_docs(TEXTS)
    assert b.dtype == np.float32
    assert (a * b).sum(axis=1).min() > 0.99
    assert fast.fingerprint() != enc.fingerprint()
    assert "bfloat16" in repr(fast)
    # the gradient path stays float32
    assert fast.encode_queries_torch(TEXTS[:2]).dtype == torch.float32
    with pytest.raises(ValueError, match="precision must be one of"):
        E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="fp8")


def test_bfloat16_inference_runs_a_bf16_copy_that_follows_the_weights(tiny_encoder_dir):
    fast = E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="bfloat16", num_threads=1)
    before = fast.encode_docs(TEXTS)
    copy = fast._inference_model()
    assert {p.dtype for p in copy.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in fast.model.parameters()} == {torch.float32}  # the gradient path's weights
    assert fast._inference_model() is copy  # reused while the weights stand still
    with torch.no_grad():  # as an optimizer step does: in place
        next(fast.model.parameters()).mul_(0.5)
    assert fast._inference_model() is not copy
    assert not np.array_equal(fast.encode_docs(TEXTS), before)
    # float32 runs the model itself, no copy
    plain = E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="float32")
    assert plain._inference_model() is plain.model


def test_auto_precision_resolves_by_hardware(tiny_encoder_dir, enc):
    from pyterrier_gradrel.models._encoder import resolve_precision

    cpu = torch.device("cpu")
    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    assert resolve_precision("auto", cpu) == ("bfloat16" if amx else "float32")
    assert resolve_precision("float32", cpu) == "float32" and resolve_precision("bfloat16", cpu) == "bfloat16"
    auto = E5BiEncoder.from_pretrained(tiny_encoder_dir, num_threads=1)  # the default is "auto"
    explicit = E5BiEncoder.from_pretrained(tiny_encoder_dir, num_threads=1, precision=auto.precision)
    assert auto.precision in ("float32", "bfloat16")
    # the resolved precision, not "auto", identifies the vectors (cache keys)
    assert auto.fingerprint() == explicit.fingerprint()
    assert (auto.fingerprint() == enc.fingerprint()) == (auto.precision == "float32")
    with pytest.raises(ValueError, match=r"precision must be one of \['auto', 'float32', 'bfloat16'\]"):
        resolve_precision("half", cpu)


def test_fingerprint_does_not_change_when_the_encoder_is_used(tiny_encoder_dir):
    # calling a fast tokenizer leaves truncation state on its backend; that is not part of its identity
    fresh = E5BiEncoder.from_pretrained(tiny_encoder_dir, num_threads=1, precision="float32")
    used = E5BiEncoder.from_pretrained(tiny_encoder_dir, num_threads=1, precision="float32")
    before = used.fingerprint()
    used.encode_docs(TEXTS[:3])
    used._fp_cache = None  # recompute from scratch
    assert used.tokenizer.backend_tokenizer.truncation is not None
    assert used.fingerprint() == before == fresh.fingerprint()


def test_from_model_keeps_the_callers_training_mode(enc):
    import copy

    model = copy.deepcopy(enc.model).train()
    wrapped = E5BiEncoder.from_model(model, enc.tokenizer, enc.settings, device="cpu", precision="float32")
    assert model.training
    # inference is deterministic (dropout off) and leaves the model in training mode
    np.testing.assert_allclose(wrapped.encode_docs(TEXTS[:3]), enc.encode_docs(TEXTS[:3]), atol=2e-5)
    assert model.training


def test_loading_and_saving_an_encoder_print_nothing(tiny_encoder_dir, tmp_path, capfd):
    """transformers draws "Loading weights" / "Writing model shards" bars; our load and save are quick and quiet,
    and leave transformers' bars as they were."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        capfd.readouterr()
        AutoModel.from_pretrained(tiny_encoder_dir)  # the control: transformers alone draws its bar
        assert "Loading weights" in capfd.readouterr().err
        enc = E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="float32")
        E5BiEncoder.from_pretrained(enc.save(tmp_path / "saved"), precision="float32")
        assert capfd.readouterr() == ("", "")
        assert hf_logging.is_progress_bar_enabled()
    finally:
        (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()


def _digest_of_weights_tokenizer_settings(enc):
    """The fingerprint of an encoder loaded with its defaults, in float32: weights, tokenizer, settings, and the
    architecture settings where they are not BERT's (as the tiny encoder's 2 heads are not; a BERT model's, as
    the default model's, add nothing: tests/test_models_real.py checks its committed value)."""
    import hashlib

    from pyterrier_gradrel.models._encoder import _tokenizer_identity, architecture_identity

    digest = hashlib.sha256()
    state = enc.model.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(memoryview(tensor.view(torch.uint8).numpy() if tensor.numel() else np.empty(0, np.uint8)))
    digest.update(_tokenizer_identity(enc.tokenizer).encode())
    digest.update(json.dumps(enc.settings, sort_keys=True).encode())
    architecture = architecture_identity(enc.model.config)
    if architecture is not None:
        digest.update(f"architecture={architecture}".encode())
    return digest.hexdigest()


@pytest.mark.parametrize(("edit", "same_vectors"), [
    ({"num_attention_heads": 4}, False),
    ({"layer_norm_eps": 1e-5}, False),
    ({"hidden_act": "relu"}, False),
    ({"is_decoder": True}, False),  # causal attention
    ({"model_type": "xlm-roberta", "architectures": ["XLMRobertaModel"]}, False),  # same weight names
    ({"attn_implementation": "eager"}, True),  # how attention is computed, not what
])
def test_the_fingerprint_covers_what_the_config_makes_of_the_weights(tiny_encoder_dir, enc, tmp_path, edit,
                                                                     same_vectors):
    """Same weights, tokenizer and settings under another config.json: other vectors, other fingerprint."""
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(tiny_encoder_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **edit}))
    edited = E5BiEncoder.from_pretrained(folder, precision="float32")
    texts = TEXTS[:4]
    differ = not np.allclose(edited.encode_docs(texts), enc.encode_docs(texts), atol=1e-6, rtol=0)
    assert differ != same_vectors
    assert (edited.fingerprint() == enc.fingerprint()) == same_vectors


def test_fingerprint_names_a_token_limit_other_than_the_settings(tiny_encoder_dir):
    default = load_encoder(tiny_encoder_dir, precision="float32")
    same = load_encoder(tiny_encoder_dir, precision="float32", max_length=default.settings["max_length"])
    short = load_encoder(tiny_encoder_dir, precision="float32", max_length=8)
    # the default (and an explicit limit equal to it) keeps the fingerprint it always had
    assert default.max_length == same.max_length == 128
    assert default.fingerprint() == same.fingerprint() == _digest_of_weights_tokenizer_settings(default)
    # texts cut at 8 tokens are other vectors: other fingerprint, so no shared dense cache
    long_text = ["The quick brown fox jumps over the lazy dog. Paris is the capital of France."]
    assert not np.allclose(short.encode_docs(long_text), default.encode_docs(long_text))
    assert short.fingerprint() != default.fingerprint()
    # the attribute changed after loading counts too (the cached value is not returned)
    short.max_length = default.max_length
    assert short.fingerprint() == default.fingerprint()


def test_fingerprint_follows_a_replaced_model(tmp_path):
    from conftest import build_tiny_encoder

    a = E5BiEncoder.from_pretrained(build_tiny_encoder(tmp_path / "a", seed=0), precision="float32")
    b = E5BiEncoder.from_pretrained(build_tiny_encoder(tmp_path / "b", seed=1), precision="float32")
    fa, fb = a.fingerprint(), b.fingerprint()
    assert fa != fb
    a.model = b.model  # same tokenizer and settings, other weights
    assert a.fingerprint() == fb


def test_save_refuses_a_folder_that_is_not_a_saved_encoder(enc, tmp_path):
    """A non-empty folder without gradrel_encoder.json (or a file) is refused and left as it was; an empty folder
    or an earlier saved encoder is written."""
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("years of work")
    with pytest.raises(ValueError, match=r"thesis is a non-empty folder that is not a saved encoder \(no gradrel_encoder"):
        enc.save(other)
    assert [p.name for p in other.iterdir()] == ["chapter1.tex"]
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        enc.save(afile)
    assert afile.read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    saved = enc.save(empty)
    assert (saved / "gradrel_encoder.json").is_file()
    assert enc.save(saved) == saved and (saved / "gradrel_encoder.json").is_file()  # a saved encoder is replaced


def test_a_decoder_only_model_is_refused_unless_its_pooling_is_given(tiny_encoder_dir, tmp_path):
    """e5-mistral-7b-instruct and its kind pool the last token: mean pooling them would give poor vectors silently."""
    import shutil

    from transformers import MistralConfig, MistralModel

    from pyterrier_gradrel.models import E5BiEncoder

    folder = tmp_path / "e5-mistral-tiny"
    shutil.copytree(tiny_encoder_dir, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "gradrel_encoder.json").unlink()
    config = MistralConfig(vocab_size=len(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]),
                           hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=1, max_position_embeddings=64)
    torch.manual_seed(0)
    MistralModel(config).save_pretrained(folder)
    with pytest.raises(ValueError, match="'mistral' is a decoder-only model type.*Pass pooling="):
        E5BiEncoder.from_pretrained(folder, device="cpu")
    encoder = E5BiEncoder.from_pretrained(folder, device="cpu", pooling="mean")
    assert encoder.settings["pooling"] == "mean"
    assert encoder.encode_queries(["a question"]).shape == (1, 32)
    # the folder it saves records that pooling: reloaded as saved (a fine-tuned checkpoint), not refused
    saved = E5BiEncoder.from_pretrained(encoder.save(tmp_path / "saved"), device="cpu")
    assert saved.settings["pooling"] == "mean"
