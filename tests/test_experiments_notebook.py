"""One scenario two ways: ``gradrel run``'s runner and the notebook API (``gr.experiments.load(...)``, whose
``experiment()`` is ``pt.Experiment`` over BM25, zero-shot and one fitted ``gr.FineTuned`` per τ) give identical
per-query values."""
from __future__ import annotations

import pandas as pd
import pytest
from _local_fixture import judged_collection

import pyterrier_gradrel as gr
from pyterrier_gradrel.experiments import run_experiment


@pytest.fixture
def config(tmp_path, monkeypatch, tiny_encoder_dir):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    judged_collection(tmp_path / "home", "mine")
    return {
        "name": "two-ways", "seeds": [0], "thresholds": [1, 3], "graded_loss": False,
        "scenarios": [{"type": "crosslingual", "collection": "local", "languages": ["mine"]}],
        "training": {"max_steps": 2, "batch_size": 2, "max_length": 16, "threads": 1},
        "base_model": str(tiny_encoder_dir), "baselines": ["BM25", "mE5-zero-shot"],
        "measures": {"graded": ["nDCG@10"], "binary": ["nDCG@10", "R@100", "RR"], "rels": [1, 2]},
        "significance": {"bootstrap_samples": 100, "permutations": 100}, "calibration": {"enabled": False},
    }


def test_runner_and_notebook_api_give_identical_per_query_values(config, tmp_path):
    result = run_experiment(config, root=tmp_path / "experiments", verbose=False, report=False)
    runner = result.perquery[result.perquery["split"] == "test"]
    runner = runner.assign(name=runner["variant"].where(runner["system"] == "fine-tuned", runner["system"]))

    loaded = gr.experiments.load(config)
    assert [(s.name, s.target.dataset) for s in loaded.scenarios] == [("crosslingual-local", "gradrel/local/mine/test")]
    scenario = loaded.scenarios[0]
    assert list(scenario.topics.columns) == ["qid", "query"] and len(scenario.qrels) == 6
    systems = scenario.systems()
    assert list(systems) == ["BM25", "mE5-zero-shot", "tau=1", "tau=3"]
    table = scenario.experiment(perquery=True)  # exactly what pt.Experiment returns
    assert list(table.columns) == ["name", "qid", "measure", "value"]
    notebook = scenario.rename(table)
    assert set(notebook["measure"]) == set(scenario.names) == {
        "nDCG@10", "nDCG(rel=1)@10", "nDCG(rel=2)@10", "R@100", "R(rel=2)@100", "RR", "RR(rel=2)"}

    key = ["name", "qid", "measure"]
    merged = runner[key + ["value"]].merge(notebook[key + ["value"]], on=key, how="outer", suffixes=("_run", "_nb"),
                                           indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) == 4 * 3 * 7
    assert (merged["value_run"] == merged["value_nb"]).all()  # identical, not close
    # the fine-tuned systems are different models (τ decides the positives), so the comparison is not vacuous
    ft = notebook[notebook["name"].isin(["tau=1", "tau=3"])]
    assert scenario._fitted and all(f.train_report["steps"] == 2 for f in scenario._fitted.values())
    assert isinstance(ft, pd.DataFrame) and not ft.empty


def test_experiment_passes_pt_experiment_options(config):
    scenario = gr.experiments.load(config).scenarios[0]
    means = scenario.experiment(baseline=0, correction="holm")
    assert list(means["name"]) == ["BM25", "mE5-zero-shot", "tau=1", "tau=3"]
    assert any(c.endswith(" p-value") for c in means.columns)


def test_rename_gives_a_measure_shared_by_two_names_under_both():
    """On grades {0, 1} graded nDCG@10 and nDCG(rel=1)@10 are one ir_measures object, so pt.Experiment writes one
    row per query; rename gives it under both names, as the runner's frame has them (it used to keep only the
    last name, so the notebook's frame had no nDCG@10)."""
    from types import SimpleNamespace

    from pyterrier_gradrel._evaluation import parse_measures
    from pyterrier_gradrel.experiments import Scenario

    specs = parse_measures(graded=["nDCG@10"], binary=["nDCG@10", "R@100"], rels=[1])
    fake = SimpleNamespace(measures=[s.ir_measure([0, 1]) for s in specs], names=[s.label for s in specs])
    table = pd.DataFrame({"name": ["s"] * 4, "qid": ["q1", "q1", "q2", "q2"],
                          "measure": [str(fake.measures[0]), "R@100"] * 2, "value": [0.5, 1.0, 0.0, 0.0]})
    out = Scenario.rename(fake, table)
    assert list(zip(out["qid"], out["measure"], out["value"], strict=True)) == [
        ("q1", "nDCG@10", 0.5), ("q1", "nDCG(rel=1)@10", 0.5), ("q1", "R@100", 1.0),
        ("q2", "nDCG@10", 0.0), ("q2", "nDCG(rel=1)@10", 0.0), ("q2", "R@100", 0.0)]
