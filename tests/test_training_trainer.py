"""The trainer on the tiny random encoder: determinism, resume after a kill, config and run names."""
from __future__ import annotations

import json

import pytest
import torch
from _graded_fixture import graded_collection

from pyterrier_gradrel.training import ContrastiveTrainer, TrainConfig


@pytest.fixture(scope="module")
def data():
    return graded_collection(n_articles=4, paras=2, sents=3)


def _weights(folder) -> dict[str, torch.Tensor]:
    from transformers import AutoModel

    return AutoModel.from_pretrained(folder).state_dict()


def _cfg(**kw) -> TrainConfig:
    base = {"rel": 2, "batch_size": 2, "epochs": 2, "lr": 1e-3, "max_length": 32, "checkpoint_every": 2,
            "hard_negatives": 1}
    base.update(kw)
    return TrainConfig(**base)


def test_same_seed_gives_identical_weights(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    a = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(seed=1), verbose=False)
    wa = _weights(a.train(topics, qrels, docs, run_dir=tmp_path / "a"))
    wb = _weights(ContrastiveTrainer(tiny_encoder_dir, config=_cfg(seed=1), verbose=False)
                  .train(topics, qrels, docs, run_dir=tmp_path / "b"))
    wc = _weights(ContrastiveTrainer(tiny_encoder_dir, config=_cfg(seed=2), verbose=False)
                  .train(topics, qrels, docs, run_dir=tmp_path / "c"))
    w0 = _weights(tiny_encoder_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    # trained, except the frozen word embeddings
    emb = "embeddings.word_embeddings.weight"
    assert torch.equal(wa[emb], w0[emb])
    assert not torch.equal(wa["encoder.layer.0.attention.self.query.weight"],
                           w0["encoder.layer.0.attention.self.query.weight"])
    report = a.last_report
    assert report["steps"] == 2 * 3 and report["data"]["queries_kept"] == 6  # 6 train queries, batch 2
    assert report["data"]["own_article_rule"] and report["data"]["negative_split"] == "train"
    assert len(report["losses"]) == 6 and all(x > 0 for x in report["losses"])
    settings = json.loads((tmp_path / "a" / "model" / "gradrel_encoder.json").read_text())
    assert settings["query_prefix"] == "query: " and settings["fine_tuned"] == a.config.run_name()


def _kill_at_step(monkeypatch, call: int) -> None:
    """Make the trainer's ``call``-th step raise ``KeyboardInterrupt`` (a simulated kill) until ``_step`` is set
    back."""
    calls = {"n": 0}
    real_step = ContrastiveTrainer._step

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt("simulated kill")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(ContrastiveTrainer, "_step", dying_step)


def test_resume_after_kill_gives_the_same_weights(tiny_encoder_dir, data, tmp_path, monkeypatch):
    topics, qrels, docs = data
    cfg = _cfg(seed=3, loss="graded", grade_weights={1: 1.0, 2: 2.0, 3: 4.0}, negatives="zero")
    full = _weights(ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
                    .train(topics, qrels, docs, run_dir=tmp_path / "full"))

    real_step = ContrastiveTrainer._step
    _kill_at_step(monkeypatch, 6)  # steps 1-5 done; checkpoints after steps 2, 3 (epoch end) and 4
    with pytest.raises(KeyboardInterrupt):
        ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False).train(topics, qrels, docs,
                                                                              run_dir=tmp_path / "killed")
    assert (tmp_path / "killed" / "checkpoint.pt").exists() and not (tmp_path / "killed" / "model").exists()
    ckpt = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 4 and ckpt["seconds"] > 0  # the training time of the first session travels with it
    monkeypatch.setattr(ContrastiveTrainer, "_step", real_step)
    t = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    resumed = _weights(t.train(topics, qrels, docs, run_dir=tmp_path / "killed"))
    report = t.last_report
    assert report["steps_this_session"] == 2 and report["steps"] == 6
    assert report["seconds"] == pytest.approx(ckpt["seconds"] + report["seconds_this_session"], abs=0.02)
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert not (tmp_path / "killed" / "checkpoint.pt").exists()
    # a finished run is returned from its folder without training again
    again = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    again.train(topics, qrels, docs, run_dir=tmp_path / "killed")
    assert again.last_report["steps_this_session"] == 2  # the stored report, not a new run


def test_resumed_run_reports_the_positive_grades_of_every_step(tiny_encoder_dir, data, tmp_path, monkeypatch):
    topics, qrels, docs = data
    cfg = _cfg(seed=4, rel=1, unit="pair", negatives="zero")  # τ = 1, pairs: positives of every grade are drawn
    t_full = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    full = _weights(t_full.train(topics, qrels, docs, run_dir=tmp_path / "full"))
    expected = t_full.last_report["positive_grades"]
    steps = t_full.last_report["steps"]
    assert t_full.last_report["positive_grades_steps"] == steps and sum(expected.values()) == \
        t_full.last_report["pairs_this_session"]

    def killed_run(name):
        real_step = ContrastiveTrainer._step
        _kill_at_step(monkeypatch, steps - 1)  # checkpoints every 2 steps and at the epoch's end
        with pytest.raises(KeyboardInterrupt):
            ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False).train(topics, qrels, docs,
                                                                                  run_dir=tmp_path / name)
        monkeypatch.setattr(ContrastiveTrainer, "_step", real_step)
        return tmp_path / name / "checkpoint.pt"

    ckpt_path = killed_run("killed")
    ckpt = torch.load(ckpt_path, weights_only=True)  # the count is a plain dict of ints
    assert 0 < ckpt["step"] < steps and sum(ckpt["positive_grades"].values()) > 0
    assert all(type(g) is int and type(n) is int for g, n in ckpt["positive_grades"].items())
    t = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    resumed = _weights(t.train(topics, qrels, docs, run_dir=tmp_path / "killed"))
    assert t.last_report["steps_this_session"] < steps
    assert t.last_report["positive_grades"] == expected and t.last_report["positive_grades_steps"] == steps
    assert all(torch.equal(full[k], resumed[k]) for k in full)

    # a checkpoint written before checkpoints carried the count still resumes, to the same weights; the report
    # says its count covers only the steps of the last session
    ckpt_path = killed_run("old")
    old = torch.load(ckpt_path, weights_only=True)
    del old["positive_grades"]
    torch.save(old, ckpt_path)
    t = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    resumed_old = _weights(t.train(topics, qrels, docs, run_dir=tmp_path / "old"))
    assert all(torch.equal(full[k], resumed_old[k]) for k in full)
    report = t.last_report
    assert report["positive_grades_steps"] == report["steps_this_session"] == steps - old["step"]
    assert sum(report["positive_grades"].values()) == report["pairs_this_session"]
    from pyterrier_gradrel.experiments._positives import partial_count

    assert partial_count(report) and not partial_count(t_full.last_report)


def test_pair_unit_and_max_steps(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    t = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(rel=1, unit="pair", max_steps=5, hard_negatives=0),
                           verbose=False)
    t.train(topics, qrels, docs, run_dir=tmp_path / "p")
    assert t.last_report["steps"] == 5
    assert t.last_report["data"]["units_per_epoch"] == 6 * 6  # 6 queries x 6 judged sentences of the article
    drawn = t.last_report["positive_grades"]  # the grades of the positives trained on, for the unit x τ analysis
    assert sum(drawn.values()) == t.last_report["pairs_this_session"] and set(drawn) <= {"1", "2", "3"}


def test_run_dir_with_another_run_is_refused(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1), verbose=False).train(
        topics, qrels, docs, run_dir=tmp_path / "r")
    with pytest.raises(ValueError, match="holds a different run"):
        ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1, seed=9), verbose=False).train(
            topics, qrels, docs, run_dir=tmp_path / "r")


def test_run_name_carries_the_settings():
    name = TrainConfig(rel=3, negatives="below", unit="pair", seed=7, fraction=0.25, noise=0.1).run_name()
    assert name.startswith("rel3-negbelow-pair-infonce-s7-f0.25-p0.1-")
    g = TrainConfig(loss="graded", negatives=1, grade_weights={2: 1.0, 3: 3.0}).run_name()
    assert g.startswith("rel2-negle1-query-graded2x1-3x3-s0-f1-p0-")
    assert TrainConfig(lr=1e-5).run_name() != TrainConfig(lr=2e-5).run_name()
    assert TrainConfig.from_dict(TrainConfig(loss="graded", grade_weights={3: 1.0}).to_dict()) == \
        TrainConfig(loss="graded", grade_weights={3: 1.0})


def test_graded_config_weighs_every_positive_grade_of_its_scale():
    # the built-in scale: the same weights and the same run name and identity key as before weights followed the scale
    default = TrainConfig(loss="graded")
    assert default.loss_weights == {1: 1.0, 2: 3.0, 3: 7.0} and default.make_loss().weights == default.loss_weights
    assert default.run_name() == "rel1-negzero-query-graded1x1-2x3-3x7-s0-f1-p0-17892118"
    assert default.key() == "17892118"
    assert TrainConfig(loss="graded", negatives="below", seed=2, fraction=0.5).run_name() == \
        "rel1-negbelow-query-graded1x1-2x3-3x7-s2-f0.5-p0-43ec5843"
    # a 0..4 scale: grade 4 is weighted 15 (it used to weigh 0 and act as a negative); the key is unchanged
    five = TrainConfig(loss="graded", grades=(0, 1, 2, 3, 4))
    assert five.make_loss().weights == {1: 1.0, 2: 3.0, 3: 7.0, 4: 15.0}
    assert five.run_name() == "rel1-negzero-query-graded1x1-2x3-3x7-4x15-s0-f1-p0-abfb142c"
    # explicit weights must weigh every grade from the smallest weighted one up
    with pytest.raises(ValueError, match=r"no weight > 0 to grade\(s\) \[4\] of the scale \[0, 1, 2, 3, 4\]"):
        TrainConfig(loss="graded", grades=(0, 1, 2, 3, 4), grade_weights={1: 1.0, 2: 3.0, 3: 7.0})
    with pytest.raises(ValueError, match=r"no weight > 0 to grade\(s\) \[2\]"):
        TrainConfig(loss="graded", grade_weights={1: 1.0, 2: 0.0, 3: 7.0})
    # leaving out grades below the smallest weighted one is a threshold, as before
    assert TrainConfig(loss="graded", negatives=1, grade_weights={2: 1.0, 3: 3.0}).positive_rel == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"unit": "doc"}, r"unit must be one of \['query', 'pair'\]"),
    ({"loss": "triplet"}, r"loss must be one of \['infonce', 'graded'\]"),
    ({"rel": 5}, r"rel must be one of \[1, 2, 3\]"),
    ({"rel": 2, "negatives": 3}, r"must be one of \[0, 1\]"),
    ({"fraction": 0}, r"fraction must be in \(0, 1\]"),
    ({"noise": 2}, r"noise must be in \[0, 1\]"),
    ({"batch_size": 0}, r"batch_size must be an int >= 1"),
    ({"max_length": 1}, r"max_length must be an int >= 2"),  # the encoder's own limit
    ({"grade_weights": {3: 1.0}}, r"grade_weights only apply to loss='graded'"),
    ({"loss": "graded", "grade_weights": {1: -1.0}}, r"weights must map grades"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_every_field_has_its_docstring_description():
    """``field_descriptions`` reads the ``Attributes:`` section: every field once, continuation lines joined."""
    import dataclasses

    docs = TrainConfig.field_descriptions()
    assert list(docs) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert docs["lr"] == "Peak learning rate (AdamW)."
    assert docs["warmup"] == ("Warm-up: a fraction of the total steps if < 1, else a number of steps (linear "
                              "warm-up, then linear decay to 0).")


def test_fit_returns_a_savable_loadable_e5_biencoder(tiny_encoder_dir, data, tmp_path):
    import numpy as np
    import pandas as pd

    from pyterrier_gradrel.models import E5BiEncoder, load_encoder

    topics, qrels, docs = data
    t = ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=2), verbose=False)
    enc = t.fit(topics, qrels, docs, run_dir=tmp_path / "fit")
    assert isinstance(enc, E5BiEncoder)
    assert enc.fingerprint() != load_encoder(tiny_encoder_dir).fingerprint()
    assert enc.settings["query_prefix"] == "query: " and enc.settings["fine_tuned"] == t.config.run_name()
    texts = docs["text"].tolist()[:5]
    reloaded = load_encoder(enc.save(tmp_path / "copy"))
    assert np.allclose(enc.encode_docs(texts), reloaded.encode_docs(texts), atol=1e-6)
    # usable like the zero-shot encoder in a PyTerrier pipeline
    out = enc.query_encoder()(pd.DataFrame({"qid": ["1"], "query": ["where is the river?"]}))
    assert out["query_vec"][0].shape == (enc.dim,)
    assert abs(float(np.linalg.norm(out["query_vec"][0])) - 1) < 1e-5
    # the model the trainer returns equals the weights it trained (the training forward in eval mode)
    import torch

    with torch.inference_mode():
        ours = enc.encode_docs_torch(texts).numpy()
    exact = load_encoder(tmp_path / "copy", precision="float32")  # the default may be bf16 on this CPU
    assert np.allclose(ours, exact.encode_docs(texts), atol=1e-5)


def test_length_groups_minimise_padding_plus_overhead():
    from pyterrier_gradrel.models._encoder import length_groups

    assert length_groups([]) == []
    assert length_groups([5, 5, 5, 5], overhead=64) == [(0, 4)]
    # two clusters far apart: splitting saves more padding than one extra pass costs
    assert length_groups([4] * 8 + [60] * 8, overhead=64) == [(0, 8), (8, 16)]
    # the same lengths with a prohibitive overhead stay one batch
    assert length_groups([4] * 8 + [60] * 8, overhead=10_000) == [(0, 16)]
    # brute force over all splits of a small case agrees with the dynamic programme
    import itertools

    lengths, overhead = [1, 2, 3, 9, 10, 30, 31], 8
    def cost(groups):
        return sum(lengths[e - 1] * (e - s) + overhead for s, e in groups)
    best = min(cost(list(zip((0, *cuts), (*cuts, len(lengths)), strict=True)))
               for r in range(len(lengths)) for cuts in itertools.combinations(range(1, len(lengths)), r))
    assert cost(length_groups(lengths, overhead)) == best
    # a size cap: the best split into groups of at most max_size texts; no cap binds beyond n
    capped = length_groups([5] * 7, overhead=64, max_size=3)
    assert capped == [(0, 1), (1, 4), (4, 7)] and all(e - s <= 3 for s, e in capped)
    assert length_groups(lengths, overhead, max_size=len(lengths)) == length_groups(lengths, overhead)
    with pytest.raises(ValueError, match="max_size must be None or a positive int"):
        length_groups([1], max_size=0)


def test_grouped_embedding_equals_one_padded_batch(tiny_encoder_dir):
    import torch

    from pyterrier_gradrel.models import load_encoder

    enc = load_encoder(tiny_encoder_dir, precision="float32", max_length=64)
    texts = ["a", "a much longer passage " * 12, "short text", "", "medium length words here " * 3, "x y"] * 3
    with torch.inference_mode():
        grouped = enc.encode_docs_torch(texts)
        texts = ["passage: " + x for x in texts]
        b = enc.tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        out = enc.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((out * m).sum(1) / m.sum(1), dim=-1)
    torch.testing.assert_close(grouped, ref, atol=1e-5, rtol=1e-5)


def test_cli_trains_on_a_real_split(tiny_encoder_dir, tmp_path, mirror, capsys):
    from pyterrier_gradrel.cli import main

    rc = main(["train", "--dataset", "gradrel/xquad-r/th/train", "--base", str(tiny_encoder_dir), "--rel", "3",
               "--negatives", "below", "--max-steps", "2", "--batch-size", "4", "--max-length", "32",
               "--run-dir", str(tmp_path / "cli"), "--quiet", "--seed", "5"])
    assert rc == 0
    report = json.loads((tmp_path / "cli" / "train_report.json").read_text())
    assert report["steps"] == 2 and report["run_name"].startswith("rel3-negbelow-query-infonce-s5-")
    assert report["data"]["queries_in"] == 682 and report["data"]["queries_kept"] == 682
    assert report["data"]["own_article_rule"] and report["data"]["negative_split"] == "train"
    assert report["data"]["hard_negative_pool"] == 516  # only the training-split sentences of the 852 (Thai pool)
    assert report["positive_grades"] == {"3": 8}  # τ=3: every drawn positive is an answer sentence (2 steps of 4)
    assert (tmp_path / "cli" / "model" / "gradrel_encoder.json").exists()


def test_bf16_mixed_precision_trains_deterministically(tiny_encoder_dir, data, tmp_path):
    topics, qrels, docs = data
    cfg = _cfg(max_steps=3, precision="bf16", seed=4)
    runs = []
    for name in ("x", "y"):
        t = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
        runs.append(_weights(t.train(topics, qrels, docs, run_dir=tmp_path / name)))
        assert all(x == x and x > 0 for x in t.last_report["losses"])
        assert len(t.last_report["step_seconds"]) == 3
    assert all(runs[0][k].dtype == torch.float32 and torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert cfg.run_name() != _cfg(max_steps=3, seed=4).run_name()
    with pytest.raises(ValueError, match=r"precision must be one of \['float32', 'bfloat16'\] \(or the aliases "
                                         r"'fp32', 'bf16'\), got 'fp16'"):
        TrainConfig(precision="fp16")


def test_precision_has_one_vocabulary_in_config_and_identity():
    # either spelling in, the canonical one in the object and in the identity (to_dict, run names, keys)
    for short, canonical in (("fp32", "float32"), ("bf16", "bfloat16")):
        a, b = TrainConfig(precision=short), TrainConfig(precision=canonical)
        assert a == b and a.precision == canonical and a.to_dict()["precision"] == canonical
        assert a.key() == b.key() and a.run_name() == b.run_name()
        assert TrainConfig.from_dict(a.to_dict()) == a
        assert TrainConfig.from_dict({**a.to_dict(), "precision": short}) == a
    assert TrainConfig().precision == "float32"
    # pinned: a change of these names means every cached run is retrained (bump RUN_VERSION on purpose only)
    assert TrainConfig().run_name() == "rel2-negzero-query-infonce-s0-f1-p0-bef2a840"
    assert TrainConfig(precision="bfloat16").run_name() == "rel2-negzero-query-infonce-s0-f1-p0-93aa3007"
    assert TrainConfig(precision="bf16", side="query", loss="graded").run_name() == \
        "rel1-negzero-query-graded1x1-2x3-3x7-queryside-s0-f1-p0-f32e7266"
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="auto")  # training precision names the weights: never resolved per machine


@pytest.mark.parametrize("loss, side", [("infonce", "both"), ("graded", "both"), ("infonce", "query")])
def test_training_goes_through_the_encoders_torch_hook(tiny_encoder_dir, data, tmp_path, monkeypatch, loss, side):
    """One forward pass: the trainer embeds with E5BiEncoder.encode_*_torch, whatever the loss."""
    from pyterrier_gradrel.models import E5BiEncoder

    calls = []
    for name in ("encode_queries_torch", "encode_docs_torch"):
        real = getattr(E5BiEncoder, name)

        def spy(self, texts, batch_size=None, _real=real, _name=name):
            calls.append((_name, len(texts), self.max_length))
            return _real(self, texts, batch_size)
        monkeypatch.setattr(E5BiEncoder, name, spy)
    topics, qrels, docs = data
    ContrastiveTrainer(tiny_encoder_dir, config=_cfg(max_steps=1, loss=loss, side=side, max_length=24),
                       verbose=False).train(topics, qrels, docs, run_dir=tmp_path / "run")
    expected = [("encode_queries_torch", 2, 24)] + ([("encode_docs_torch", 2 + 2, 24)] if side == "both" else [])
    assert calls == expected  # batch 2: 2 positives + 2 hard negatives


def test_a_checkpoint_without_its_time_resumes_with_the_time_unknown(tiny_encoder_dir, data, tmp_path, monkeypatch):
    """A checkpoint written before checkpoints recorded their training seconds: the run resumes and reports its
    total training time as unknown (``None``), not as the last session's."""
    topics, qrels, docs = data
    cfg = _cfg(seed=4)
    real_step = ContrastiveTrainer._step
    _kill_at_step(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False).train(topics, qrels, docs,
                                                                              run_dir=tmp_path / "old")
    path = tmp_path / "old" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    del ckpt["seconds"]
    torch.save(ckpt, path)
    monkeypatch.setattr(ContrastiveTrainer, "_step", real_step)
    t = ContrastiveTrainer(tiny_encoder_dir, config=cfg, verbose=False)
    t.train(topics, qrels, docs, run_dir=tmp_path / "old")
    assert t.last_report["steps_this_session"] == 6 - ckpt["step"] and t.last_report["seconds"] is None
