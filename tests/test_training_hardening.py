"""The trainer under hostile or damaged run folders: planted checkpoints, truncation, foreign folders,
re-materialised base models and temporaries left by a kill."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from _graded_fixture import graded_collection

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.training import ContrastiveTrainer, TrainConfig
from pyterrier_gradrel.training._run_folder import legacy_fingerprint_folder as _legacy_fingerprint_folder


@pytest.fixture(scope="module")
def data():
    return graded_collection(n_articles=4, paras=2, sents=3)


def _cfg(**kw) -> TrainConfig:
    base = {"rel": 2, "batch_size": 2, "epochs": 1, "lr": 1e-3, "max_length": 32, "checkpoint_every": 1,
            "hard_negatives": 1, "max_steps": 3}
    base.update(kw)
    return TrainConfig(**base)


def _killed_run(base, data, run_dir, monkeypatch, *, after: int = 2) -> None:
    """Train until ``after`` steps are done (checkpointed), then die as if killed."""
    calls = {"n": 0}
    real_step = ContrastiveTrainer._step

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > after:
            raise KeyboardInterrupt("simulated kill")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(ContrastiveTrainer, "_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        ContrastiveTrainer(base, config=_cfg(), verbose=False).train(*data, run_dir=run_dir)
    monkeypatch.setattr(ContrastiveTrainer, "_step", real_step)
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "train_report.json").exists()


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def test_checkpoint_loads_without_unpickling(tiny_encoder_dir, data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _killed_run(tiny_encoder_dir, data, run, monkeypatch)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)  # tensors and plain values only
    assert ckpt["step"] == 2 and len(ckpt["losses"]) == 2
    t = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False)
    t.train(*data, run_dir=run)
    assert t.last_report["steps_this_session"] == 1 and t.last_report["steps"] == 3


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "inside-a-checkpoint-dict"])
def test_planted_pickle_payload_in_checkpoint_is_never_executed(tiny_encoder_dir, data, tmp_path, monkeypatch,
                                                                 wrapped):
    run = tmp_path / "run"
    _killed_run(tiny_encoder_dir, data, run, monkeypatch)
    marker = tmp_path / "marker"
    payload = _Payload(marker)
    if wrapped:
        payload = {**torch.load(run / "checkpoint.pt", weights_only=True), "losses": payload}
    torch.save(payload, run / "checkpoint.pt")
    with pytest.raises(ValueError, match="never unpickled") as err:
        ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False).train(*data, run_dir=run)
    assert not marker.exists()
    assert str(run / "checkpoint.pt") in str(err.value) and "Delete it" in str(err.value)
    # the payload is live: an unrestricted load would have run it
    torch.load(run / "checkpoint.pt", weights_only=False)
    assert marker.read_text() == "pwned"


def test_truncated_checkpoint_error_names_the_file_and_the_remedy(tiny_encoder_dir, data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _killed_run(tiny_encoder_dir, data, run, monkeypatch)
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupted") as err:
        ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False).train(*data, run_dir=run)
    assert str(ckpt) in str(err.value) and "Delete it to restart this run from step 0" in str(err.value)
    ckpt.unlink()  # the remedy the message gives
    t = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False)
    t.train(*data, run_dir=run)
    assert t.last_report["steps_this_session"] == 3


def test_non_run_folder_is_refused_and_left_untouched(tiny_encoder_dir, data, tmp_path):
    folder = tmp_path / "mine"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text('{"mine": true}')
    with pytest.raises(ValueError, match="is not a training run folder") as err:
        ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False).train(*data, run_dir=folder)
    assert "model" in str(err.value)
    assert (folder / "model" / "config.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in folder.rglob("*")) == ["config.json", "model"]


def test_empty_existing_folder_is_adopted(tiny_encoder_dir, data, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1), verbose=False).train(*data, run_dir=folder)
    assert (folder / "run.json").is_file() and (folder / "model" / "config.json").is_file()


def _materialise(src, dst, created: float):
    shutil.copytree(src, dst)
    (dst / "gradrel_conversion.json").write_text(json.dumps({"converter_version": 1, "created": created,
                                                             "seconds": created % 7, "bundle": str(dst)}))
    return dst


def test_rematerialised_base_keeps_its_fingerprint_and_its_runs(tiny_encoder_dir, data, tmp_path):
    a = _materialise(tiny_encoder_dir, tmp_path / "a", 1000.0)
    b = _materialise(tiny_encoder_dir, tmp_path / "b", 2000.5)
    assert _legacy_fingerprint_folder(a) != _legacy_fingerprint_folder(b)
    ta = ContrastiveTrainer(a, config=_cfg(max_steps=1), verbose=False)
    tb = ContrastiveTrainer(b, config=_cfg(max_steps=1), verbose=False)
    assert ta._base_fingerprint() == tb._base_fingerprint()
    ta.train(*data, run_dir=tmp_path / "run")
    tb.train(*data, run_dir=tmp_path / "run")  # the same run: returned, not refused
    assert tb.last_report == ta.last_report


def test_refusal_shows_what_differs(tiny_encoder_dir, data, tmp_path):
    base = shutil.copytree(tiny_encoder_dir, tmp_path / "base")
    ContrastiveTrainer(base, config=_cfg(max_steps=1), verbose=False).train(*data, run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="holds a different run") as err:
        ContrastiveTrainer(base, config=_cfg(max_steps=1, seed=9), verbose=False).train(*data,
                                                                                         run_dir=tmp_path / "run")
    assert "config seed: 0 in the folder, 9 now" in str(err.value)
    assert "base model" not in str(err.value)
    settings = json.loads((base / "gradrel_encoder.json").read_text())
    (base / "gradrel_encoder.json").write_text(json.dumps({**settings, "query_prefix": "q: "}))
    with pytest.raises(ValueError, match="holds a different run") as err:
        ContrastiveTrainer(base, config=_cfg(max_steps=1), verbose=False).train(*data, run_dir=tmp_path / "run")
    message = str(err.value)
    assert "base file gradrel_encoder.json: sha256" in message and "config " not in message
    assert "model.safetensors" not in message and "tokenizer.json" not in message


def test_run_recorded_with_the_older_fingerprint_still_resumes(tiny_encoder_dir, data, tmp_path):
    base = _materialise(tiny_encoder_dir, tmp_path / "base", 1234.0)
    run = tmp_path / "run"
    t = ContrastiveTrainer(base, config=_cfg(max_steps=1), verbose=False)
    t.train(*data, run_dir=run)
    meta = json.loads((run / "run.json").read_text())
    legacy = {k: v for k, v in meta.items() if k != "base_files"}
    legacy["base_fingerprint"] = _legacy_fingerprint_folder(base)[:12]
    (run / "run.json").write_text(json.dumps(legacy))
    again = ContrastiveTrainer(base, config=_cfg(max_steps=1), verbose=False)
    again.train(*data, run_dir=run)
    assert again.last_report == t.last_report
    assert json.loads((run / "run.json").read_text())["base_fingerprint"] == meta["base_fingerprint"]
    # another folder's older fingerprint is still refused
    legacy["base_fingerprint"] = "0123456789ab"
    (run / "run.json").write_text(json.dumps(legacy))
    with pytest.raises(ValueError, match="fingerprint 0123456789ab"):
        ContrastiveTrainer(base, config=_cfg(max_steps=1), verbose=False).train(*data, run_dir=run)


def test_default_run_folder_of_the_older_fingerprint_is_found(tiny_encoder_dir, tmp_path):
    from pyterrier_gradrel._paths import home

    base = _materialise(tiny_encoder_dir, tmp_path / "base", 99.0)
    t = ContrastiveTrainer(base, config=_cfg(seed=41), verbose=False)
    assert t.run_dir(data="0123abcd4567") == home() / "runs" / t._base_fingerprint() / \
        f"{t.config.run_name()}-data0123abcd4567"
    old = home() / "runs" / _legacy_fingerprint_folder(base)[:12] / f"{_cfg(seed=42).run_name()}-data0123abcd4567"
    old.mkdir(parents=True)
    (old / "run.json").write_text("{}")
    assert ContrastiveTrainer(base, config=_cfg(seed=42), verbose=False).run_dir(data="0123abcd4567") == old
    with pytest.raises(TypeError, match="needs run_dir or data"):
        t.run_dir()


def test_resume_removes_temporaries_of_the_killed_writer(tiny_encoder_dir, data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _killed_run(tiny_encoder_dir, data, run, monkeypatch)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = _atomic._host()
    stale = [run / f".model.{proc.pid}@{host}.k1ll3d00.tmp", run / f".checkpoint.pt.{proc.pid}@{host}.k1ll3d01.tmp"]
    live = run / f".model.{os.getppid()}@{host}.l1ve0000.tmp"
    for d in [*stale, live]:
        (d / "model").mkdir(parents=True)
        (d / "model" / "model.safetensors").write_bytes(b"\0" * 4096)
    ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False).train(*data, run_dir=run)
    assert not any(p.exists() for p in stale) and live.exists()
    assert sorted(p.name for p in run.iterdir()) == sorted(["run.json", "model", "train_report.json", live.name])


def _planted_base(tiny_encoder_dir, tmp_path, marker):
    """The tiny encoder with its weights replaced by a pytorch_model.bin that runs code when unpickled."""
    base = tmp_path / "planted"
    shutil.copytree(tiny_encoder_dir, base)
    (base / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": _Payload(marker)}, base / "pytorch_model.bin")
    return base


def test_a_planted_pytorch_model_bin_is_refused_in_one_line(tiny_encoder_dir, tmp_path, capsys):
    from pyterrier_gradrel.cli import main
    from pyterrier_gradrel.models import E5BiEncoder

    marker = tmp_path / "marker"
    base = _planted_base(tiny_encoder_dir, tmp_path, marker)
    with pytest.raises(ValueError, match=r"refused to load pytorch_model\.bin: it is a pickle that holds more than "
                                         r"tensors .*use model\.safetensors") as err:
        E5BiEncoder.from_pretrained(base)
    assert str(base) in str(err.value) and "\n" not in str(err.value) and err.value.__cause__ is None
    capsys.readouterr()
    assert main(["train", "--dataset", "gradrel/xquad-r/en/train", "--base", str(base), "--max-steps", "1",
                 "--quiet", "--run-dir", str(tmp_path / "run")]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("gradrel train: ") and "refused" in err_lines[0]
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_a_missing_base_model_creates_no_run_folder(data, tmp_path):
    run = tmp_path / "X"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ContrastiveTrainer(tmp_path / "nonexistent", config=_cfg(), verbose=False).train(*data, run_dir=run)
    assert not run.exists()


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "empty-folder"])
def test_a_train_that_fails_before_a_checkpoint_leaves_no_run_json(tiny_encoder_dir, data, tmp_path, monkeypatch,
                                                                   existing):
    run = tmp_path / "run"
    if existing:
        run.mkdir()

    def failing_step(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ContrastiveTrainer, "_step", failing_step)
    with pytest.raises(RuntimeError, match="boom"):
        ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False).train(*data, run_dir=run)
    # a folder the user gave stays (empty); one the trainer made is gone
    assert (sorted(p.name for p in run.iterdir()) == []) if existing else not run.exists()
    monkeypatch.undo()
    t = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(), verbose=False)  # the folder is free for the run
    t.train(*data, run_dir=run)
    assert t.last_report["steps"] == 3 and (run / "run.json").is_file()


def test_a_train_that_fails_after_a_checkpoint_keeps_its_run_json_to_resume(tiny_encoder_dir, data, tmp_path,
                                                                            monkeypatch):
    run = tmp_path / "run"
    _killed_run(tiny_encoder_dir, data, run, monkeypatch)
    assert (run / "run.json").is_file() and (run / "checkpoint.pt").is_file()


def test_the_default_run_folder_and_run_json_are_keyed_by_the_training_data(tiny_encoder_dir, data, tmp_path,
                                                                             monkeypatch):
    from pyterrier_gradrel.training._data import data_identity

    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    topics, qrels, docs = data
    cfg = _cfg(max_steps=2)
    a = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    path_a = a.train(topics, qrels, docs)
    assert a.last_report["data"]["queries_kept"] == 6
    # other training data, same config and base: another folder, trained afresh (not the first model returned)
    topics_b = topics[topics["lang"] == "de"]
    b = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    path_b = b.train(topics_b, qrels, docs)
    assert path_b != path_a and b.last_report["steps_this_session"] == 2
    assert b.last_report["data"]["queries_kept"] == len(topics_b) < 6
    meta = json.loads((path_b.parent / "run.json").read_text())
    assert meta["data"] == data_identity(topics_b, qrels, docs)
    assert path_b.parent.name == f"{cfg.run_name()}-data{meta['data']['sha256'][:12]}"
    # the same data in another row order and as a corpus iterable is the same run: returned without training
    c = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    shuffled = topics.sample(frac=1, random_state=0), qrels.sample(frac=1, random_state=1)
    assert c.train(*shuffled, iter(docs.to_dict("records"))) == path_a
    assert c.last_report == a.last_report
    # other labels or other passage texts are other data too
    relabelled = qrels.assign(label=qrels["label"].map({3: 2, 2: 3, 1: 1}))
    assert ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False).train(topics, relabelled, docs) != path_a
    retexted = docs.assign(text=docs["text"] + " (v2)")
    assert ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False).train(topics, qrels, retexted) != path_a


def test_a_run_folder_of_other_training_data_is_refused(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    run = tmp_path / "run"
    ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1), verbose=False).train(topics, qrels, docs,
                                                                                       run_dir=run)
    relabelled = qrels.assign(label=qrels["label"].map({3: 2, 2: 3, 1: 1}))
    with pytest.raises(ValueError, match=r"holds a different run(.|\n)*training qrels: sha256 \w{12} \(36 judgements\) "
                                         r"in the folder, \w{12} \(36 judgements\) now") as err:
        ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1), verbose=False).train(topics, relabelled, docs,
                                                                                           run_dir=run)
    assert "training topics" not in str(err.value) and "training corpus" not in str(err.value)
    # a run.json written before run folders recorded the data is judged by config and base model, as then
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "data"}))
    again = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1), verbose=False)
    assert again.train(topics, qrels, docs, run_dir=run) == run / "model"
