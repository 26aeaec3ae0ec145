"""Train on one dataset, test on another (``type: transfer``), and cross-lingual local collections."""
from __future__ import annotations

import pytest
from _local_fixture import judged_collection as _collection

from pyterrier_gradrel.experiments import ConfigError, load_config, plan


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    _collection(tmp_path / "home", "mine")
    _collection(tmp_path / "home", "other")
    return tmp_path / "home"


def _cfg(*scenarios, **changes):
    return {"name": "t", "seeds": [0], "thresholds": [1, 3], "graded_loss": False,
            "calibration": {"enabled": False}, "scenarios": list(scenarios), **changes}


def test_transfer_plans_train_on_a_and_test_on_b(home, mirror):
    cfg = load_config(_cfg(
        {"type": "transfer", "train": ["gradrel/xquad-r/de/train"], "test": ["gradrel/local/mine/test"]},
        {"type": "transfer", "train": "gradrel/local/mine", "test": ["gradrel/local/other", "gradrel/xquad-r/de/test"],
         "label": "mine-to-all"},
    ))
    assert [s.name for s in cfg.scenarios] == ["transfer-xquad-r.de-to-local.mine", "transfer-mine-to-all"]
    ft = [c for c in plan(cfg) if c.fine_tuned]
    assert {(c.scenario, c.train, c.variant) for c in ft} == {
        (s, train, v) for s, train in (("transfer-xquad-r.de-to-local.mine", ("gradrel/xquad-r/de/train",)),
                                       ("transfer-mine-to-all", ("gradrel/local/mine/train",)))
        for v in ("tau=1", "tau=3")}
    targets = {c.scenario: [(t.dataset, t.label, t.split) for t in c.targets] for c in ft}
    assert targets["transfer-mine-to-all"] == [("gradrel/local/other/test", "local/other", "test"),
                                               ("gradrel/xquad-r/de/test", "xquad-r/de", "test")]
    baselines = {t.dataset for c in plan(cfg) if not c.fine_tuned for t in c.targets}
    assert baselines == {"gradrel/local/mine/test", "gradrel/local/other/test", "gradrel/xquad-r/de/test"}
    assert load_config(cfg).with_overrides(limit_queries=2).scenarios == cfg.scenarios


@pytest.mark.parametrize("scenario, message", [
    ({"type": "transfer", "test": ["gradrel/local/mine/test"]}, r"transfer scenario needs 'train'"),
    ({"type": "transfer", "train": ["gradrel/local/mine/test"], "test": ["gradrel/local/other/test"]},
     r"scenarios\[0\].train: 'gradrel/local/mine/test' is a test split"),
    ({"type": "transfer", "train": ["gradrel/local/mine"], "test": ["gradrel/local/nope/test"]},
     r"missing test split 'gradrel/local/nope/test'"),
    ({"type": "transfer", "train": ["gradrel/local/mine"], "test": ["gradrel/local/other"], "languages": ["x"]},
     r"scenarios\[0\]: unknown key\(s\) \['languages'\]: expected some of \['label', 'test', 'train', 'type'\]"),
    ({"type": "transfer", "train": ["gradrel/local/mine", "gradrel/local/small"], "test": ["gradrel/local/other"]},
     r"must share a grade scale"),
    ({"type": "transfer", "train": ["xquad-r/de"], "test": ["gradrel/local/other"]}, r"expected gradrel dataset ids"),
    ({"type": "monolingual", "collection": "local", "languages": ["mine"], "test": ["gradrel/local/other"]},
     r"scenarios\[0\]: unknown key\(s\) \['test'\]"),
])
def test_bad_transfer_scenarios(home, mirror, scenario, message):
    _collection(home, "small", grades="{0: none, 1: some}", rel=1)
    with pytest.raises(ConfigError, match=message):
        load_config(_cfg(scenario, thresholds=[1], measures={"rels": [1]}))


def test_calibration_needs_the_dev_split_of_each_test_dataset(home, mirror):
    with pytest.raises(ConfigError, match=r"missing dev split 'gradrel/local/mine/dev'.*calibration"):
        load_config({**_cfg({"type": "transfer", "train": ["gradrel/xquad-r/de"], "test": ["gradrel/local/mine"]}),
                     "calibration": {"enabled": True}})


def test_crosslingual_local_collection_has_no_translated_control(home):
    cfg = load_config(_cfg({"type": "crosslingual", "collection": "local", "languages": ["mine"]}))
    [group] = {c.targets for c in plan(cfg) if c.fine_tuned}
    assert [t.dataset for t in group] == ["gradrel/local/mine/test"]
    with pytest.raises(ConfigError, match=r"crosslingual local takes 'languages' \(the collections"):
        load_config(_cfg({"type": "crosslingual", "collection": "local", "pairs": [["mine", "other"]]}))


def test_transfer_runs_end_to_end_with_the_tiny_encoder(home, tmp_path, tiny_encoder_dir, mirror):
    """Train on XQuAD-R German, test on a local collection; and a cross-lingual local scenario. Real training
    (tiny encoder, 1 step), BM25 and dense retrieval, significance and report."""
    from pyterrier_gradrel.experiments import Components, run_experiment

    cfg = _cfg({"type": "transfer", "train": ["gradrel/xquad-r/de/train"], "test": ["gradrel/local/other"]},
               {"type": "crosslingual", "collection": "local", "languages": ["other"]},
               training={"max_steps": 1, "batch_size": 2, "max_length": 16}, limit_queries=4,
               measures={"graded": ["nDCG@10"], "binary": ["RR"], "rels": [1]},
               significance={"bootstrap_samples": 100, "permutations": 100}, base_model=str(tiny_encoder_dir))
    result = run_experiment(cfg, root=tmp_path / "runs", components=Components(base_model=str(tiny_encoder_dir)),
                            verbose=False)
    frame = result.perquery
    assert set(frame["scenario"]) == {"transfer-xquad-r.de-to-local.other", "crosslingual-local"}
    tuned = frame[frame["system"] == "fine-tuned"]
    assert set(tuned["variant"]) == {"tau=1", "tau=3"} and set(tuned["target"]) == {"gradrel/local/other/test"}
    assert {"BM25", "mE5-zero-shot"} <= set(frame["system"])
    report = result.results_dir / "report.md"
    assert report.is_file() and "transfer-xquad-r.de-to-local.other" in report.read_text(encoding="utf-8")
    trained = {tuple(c["condition"]["train"]) for c in result.conditions.values() if c["condition"]["train"]}
    assert trained == {("gradrel/xquad-r/de/train",), ("gradrel/local/other/train",)}
