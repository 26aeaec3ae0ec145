"""Bring your own graded collection (issue 16's acceptance): a judged cross-lingual local collection with
``manifest.yaml`` and no ``split``/``article`` fields is checked, trained on, evaluated and reported through the
``gradrel`` command itself, next to a model trained on XQuAD-R and tested on it."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from _local_fixture import judged_collection

from pyterrier_gradrel.cli import main
from pyterrier_gradrel.training import TrainConfig


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    judged_collection(tmp_path / "home", "mine")
    return tmp_path / "home"


def test_check_summarises_the_collection(home, capsys):
    assert main(["datasets", "check", str(home / "collections" / "mine")]) == 0
    out = capsys.readouterr().out
    assert "languages: queries ['de'], documents ['en'] (cross-lingual)" in out
    assert "grades: judged, scale [0, 1, 2, 3], default_rel 2" in out
    assert "document split: on 0 of 8 documents" in out and "own-article rule: off" in out
    assert "train: 8 docs, 3 queries" in out and "test: 8 docs, 3 queries" in out


def test_run_trains_on_xquad_r_and_on_the_collection_and_reports(home, tmp_path, tiny_encoder_dir, mirror, capsys):
    config = {
        "name": "own-data", "seeds": [0], "thresholds": [1, 3], "graded_loss": False,
        "scenarios": [{"type": "transfer", "train": ["gradrel/xquad-r/de/train"], "test": ["gradrel/local/mine"]},
                      {"type": "crosslingual", "collection": "local", "languages": ["mine"]}],
        "training": {"max_steps": 1, "batch_size": 2, "max_length": 16}, "limit_queries": 4,
        "base_model": str(tiny_encoder_dir), "baselines": ["BM25", "mE5-zero-shot"],
        "measures": {"graded": ["nDCG@10"], "binary": ["RR"], "rels": [1]},
        "significance": {"bootstrap_samples": 100, "permutations": 100}, "calibration": {"enabled": False},
    }
    path = tmp_path / "own-data.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    root = tmp_path / "experiments"
    assert main(["run", str(path), "--root", str(root), "--quiet"]) == 0
    assert "conditions run, 0 reused" in capsys.readouterr().out

    conditions = [json.loads(p.read_text(encoding="utf-8"))
                  for p in (root / "runs" / "own-data").glob("*/condition.json")]
    tuned = {(tuple(c["condition"]["train"]), c["condition"]["variant"]): c for c in conditions
             if c["condition"]["system"] == "fine-tuned"}
    assert set(tuned) == {(train, v) for train in (("gradrel/xquad-r/de/train",), ("gradrel/local/mine/train",))
                          for v in ("tau=1", "tau=3")}
    # the own-article rule follows the training data: on for structural XQuAD-R, off for the judged collection;
    # it is part of the TrainConfig, whose key is part of the run key
    for (train, _), c in tuned.items():
        local = train[0].startswith("gradrel/local/")
        tc = TrainConfig.from_dict(c["condition"]["train_config"])
        assert tc.exclude_own_article is (not local) and c["key"]["training"] == tc.key()
    logs = {train: json.loads(p.read_text(encoding="utf-8"))
            for p in (root / "runs" / "own-data").glob("*/train_log.json")
            for train in [tuple(json.loads((p.parent / "condition.json").read_text())["condition"]["train"])]}
    assert logs[("gradrel/local/mine/train",)]["config"]["exclude_own_article"] is False
    assert logs[("gradrel/xquad-r/de/train",)]["config"]["exclude_own_article"] is True
    assert logs[("gradrel/local/mine/train",)]["schedule"] == (
        "max_steps=1 stops after 1 steps = 0.7 epochs of 3 query units (batch 2; epochs=1 is ignored)")

    results = root / "results" / "own-data"
    frame = pd.read_csv(results / "perquery.csv.gz")
    assert set(frame["scenario"]) == {"transfer-xquad-r.de-to-local.mine", "crosslingual-local"}
    assert set(frame.loc[frame["system"] == "fine-tuned", "target"]) == {"gradrel/local/mine/test"}
    assert (results / "significance.csv").stat().st_size > 0
    report = (results / "report.md").read_text(encoding="utf-8")
    # the collection's own query language, not "–" and not filed as monolingual
    section = report.split("## Which τ wins")[1].split("\n## ")[0]
    wins = [line for line in section.splitlines()
            if line.startswith(("| crosslingual-local | mine |", "| transfer-xquad-r.de-to-local.mine | local/mine |"))]
    assert len(wins) == 2 and all("| de → en (cross-lingual) | tau=" in line for line in wins)


def test_train_prints_pure_json_with_the_rule_run_uses(home, tmp_path, tiny_encoder_dir, capsys):
    """``gradrel train`` on the judged collection: stdout is one JSON document, and the own-article rule is the
    one ``gradrel run`` derives for the same training data."""
    from pyterrier_gradrel.experiments import load_config, plan

    assert main(["train", "--dataset", "gradrel/local/mine/train", "--base", str(tiny_encoder_dir), "--rel", "1",
                 "--max-steps", "2", "--batch-size", "2", "--max-length", "16", "--quiet",
                 "--run-dir", str(tmp_path / "run")]) == 0
    report = json.loads(capsys.readouterr().out)  # nothing but the JSON report
    assert report["steps"] == 2
    assert report["schedule"].startswith("max_steps=2 stops after 2 steps = 1.3 epochs of 3 query units")
    cfg = load_config({"name": "t", "seeds": [0], "thresholds": [1], "graded_loss": False, "calibration": {"enabled": False},
                       "scenarios": [{"type": "crosslingual", "collection": "local", "languages": ["mine"]}]})
    [cond] = [c for c in plan(cfg) if c.fine_tuned]
    assert cond.train_config.exclude_own_article is report["config"]["exclude_own_article"] is False


def test_one_own_article_rule_for_both_commands(home, mirror):
    from pyterrier_gradrel.datasets import exclude_own_article
    from pyterrier_gradrel.experiments import load_config, plan

    assert exclude_own_article("gradrel/xquad-r/de/train") is True  # structural
    assert exclude_own_article("irds:gradrel/local/mine/train") is False  # judged
    assert exclude_own_article(["gradrel/local/mine/train", "gradrel/afriqa/hau/train"]) is True
    with pytest.raises(ValueError, match="unknown dataset id"):
        exclude_own_article("gradrel/nope/x/train")
    # a config may still set it: the config's value wins over the datasets'
    cfg = load_config({"name": "t", "seeds": [0], "thresholds": [1], "graded_loss": False, "calibration": {"enabled": False},
                       "training": {"exclude_own_article": True},
                       "scenarios": [{"type": "crosslingual", "collection": "local", "languages": ["mine"]}]})
    [cond] = [c for c in plan(cfg) if c.fine_tuned]
    assert cond.train_config.exclude_own_article is True


def test_baselines_take_a_local_dataset_id(home, tmp_path, tiny_encoder_dir, capsys):
    out = tmp_path / "table"
    assert main(["baselines", "--datasets", "gradrel/local/mine/test", "--encoder", str(tiny_encoder_dir),
                 "--out", str(out)]) == 0
    table = pd.read_csv(out / "baselines.csv")
    assert set(table["dataset"]) == {"gradrel/local/mine/test"}
    assert set(table["queries_lang"]) == {"de"} and set(table["docs_lang"]) == {"en"}
    rows = table.set_index("baseline")
    assert rows.loc["mE5-zero-shot", "answered"] == 3 and rows.loc["BM25", "queries"] == 3
    assert json.loads((out / "baselines.json").read_text())["datasets"] == ["gradrel/local/mine/test"]
    with pytest.raises(SystemExit):
        main(["baselines", "--datasets", "gradrel/local/nope/test"])
    assert "--datasets: gradrel/local/nope/test: " in capsys.readouterr().err
