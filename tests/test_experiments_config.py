"""Experiment configs: every shipped config validates, and invalid ones fail early with clear errors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyterrier_gradrel.experiments import ConfigError, load_config, plan, scenario_datasets

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "experiments").glob("*.yaml"))


def _cfg(**changes):
    base = {
        "name": "t",
        "scenarios": [{"type": "monolingual", "collection": "xquad-r", "languages": ["en", "th"]}],
        "thresholds": [1, 2, 3],
        "seeds": [0],
    }
    base.update(changes)
    return base


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_validate(path, mirror):
    cfg = load_config(path)
    assert cfg.name == path.stem
    conditions = plan(cfg)
    assert any(c.fine_tuned for c in conditions)
    assert {c.system for c in conditions if not c.fine_tuned} == set(cfg.baselines)


def test_quickstart_shape(mirror):
    cfg = load_config(REPO / "experiments" / "quickstart.yaml")
    assert cfg.thresholds == (1, 2, 3)
    assert {"BM25", "mE5-zero-shot"} <= set(cfg.baselines)
    types = {s.type for s in cfg.scenarios}
    assert {"monolingual", "crosslingual"} <= types
    assert len(cfg.seeds) == 1 and "seed" in cfg.note  # says it uses one seed


def test_unknown_language(mirror):
    with pytest.raises(ConfigError, match=r"unknown language 'xx' for xquad-r: expected one of \['ar', 'de'"):
        load_config(_cfg(scenarios=[{"type": "monolingual", "collection": "xquad-r", "languages": ["en", "xx"]}]))


def test_threshold_outside_scale(mirror):
    with pytest.raises(ConfigError, match=r"threshold 4 is outside the grade scale .* rel must be one of \[1, 2, 3\]"):
        load_config(_cfg(thresholds=[2, 4]))
    with pytest.raises(ConfigError, match=r"threshold 0 is outside"):
        load_config(_cfg(thresholds=[0]))


def test_missing_split(mirror):
    # AfriQA Swahili has only a test split: it cannot be fine-tuned
    with pytest.raises(ConfigError, match=r"missing train split 'gradrel/afriqa/swa/train'"):
        load_config(_cfg(scenarios=[{"type": "crosslingual", "collection": "afriqa", "languages": ["hau", "swa"]}]))
    # Yoruba has no dev split: calibration needs one, and the message says how to run without it
    with pytest.raises(ConfigError, match=r"missing dev split 'gradrel/afriqa/yor/dev'.*calibration"):
        load_config(_cfg(scenarios=[{"type": "crosslingual", "collection": "afriqa", "languages": ["yor"]}]))
    cfg = load_config(_cfg(scenarios=[{"type": "crosslingual", "collection": "afriqa", "languages": ["yor"]}],
                           calibration={"enabled": False}))
    assert all(t.split == "test" for c in plan(cfg) for t in c.targets)


@pytest.mark.parametrize("changes, message", [
    ({"scenarios": [{"type": "bilingual", "languages": ["en"]}]}, r"unknown scenario type 'bilingual': expected one of \['monolingual', 'multilingual', 'crosslingual', 'transfer'\]"),
    ({"scenarios": [{"type": "monolingual", "collection": "msmarco", "languages": ["en"]}]}, r"unknown collection 'msmarco'"),
    ({"measures": {"binary": ["MAP@10"]}}, r"unknown binary measure 'MAP@10'"),
    ({"measures": {"graded": ["R@100"]}}, r"unknown graded measure 'R@100'"),
    ({"measures": {"binary": ["P"]}}, r"needs a cut-off"),
    ({"measures": {"primary": "ERR@20"}}, r"unknown primary measure 'ERR@20'"),
    ({"baselines": ["BM25", "ColBERT"]}, r"unknown baseline 'ColBERT'"),
    ({"training": {"seed": 3}}, r"set by the sweep"),
    ({"fractions": [0.0, 1.0]}, r"fractions must lie in \(0, 1\]"),
    ({"noise_rates": [1.5]}, r"noise_rates must lie in \[0, 1\)"),
    ({"significance": {"correction": "fdr"}}, r"unknown correction 'fdr': expected one of \['holm', 'bonferroni', 'bh', 'none'\]"),
    ({"significance": {"test": "z"}}, r"unknown significance test 'z'"),
    ({"thresholds": [2, 2]}, r"thresholds must be unique"),
    ({"colour": "red"}, r"unknown config key\(s\) \['colour'\]"),
    ({"scenarios": [{"type": "crosslingual", "collection": "xquad-r", "languages": ["de"]}]}, r"takes 'pairs'"),
    ({"scenarios": [{"type": "crosslingual", "collection": "xquad-r", "pairs": [["de", "de"]]}]}, r"is monolingual"),
    ({"scenarios": [{"type": "monolingual", "collection": "afriqa", "languages": ["hau"]}]}, r"use type 'crosslingual'"),
])
def test_invalid_configs(changes, message, mirror):
    with pytest.raises(ConfigError, match=message):
        load_config(_cfg(**changes))


def test_unknown_training_hyperparameter(mirror):
    pytest.importorskip("pyterrier_gradrel.training")
    with pytest.raises(ConfigError, match=r"unknown hyper-parameter\(s\) \['learning_rate'\].*'lr'"):
        load_config(_cfg(training={"learning_rate": 1e-5}))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no experiment config"):
        load_config("experiments/does-not-exist.yaml")


def test_scenarios_expand_to_the_right_datasets(mirror):
    cfg = load_config(_cfg(scenarios=[
        {"type": "monolingual", "collection": "xquad-r", "languages": ["en", "th"]},
        {"type": "multilingual", "collection": "xquad-r", "languages": ["en", "th", "de"]},
        {"type": "crosslingual", "collection": "xquad-r", "pairs": ["th-en"]},
        {"type": "crosslingual", "collection": "afriqa", "languages": ["hau"]},
    ], seeds=[0, 1], graded_loss=True))
    mono, multi, cross, afri = (scenario_datasets(s) for s in cfg.scenarios)
    assert [g.train for g in mono.groups] == [("gradrel/xquad-r/en/train",), ("gradrel/xquad-r/th/train",)]
    # the mixture trains ONE model on the union and tests per language and on the multi pool
    assert len(multi.groups) == 1
    assert multi.groups[0].train == tuple(f"gradrel/xquad-r/{x}/train" for x in ["en", "th", "de"])
    assert [t.label for t in multi.groups[0].targets] == ["en", "th", "de", "multi"]
    assert cross.groups[0].train == ("gradrel/xquad-r/th-en/train",)
    # AfriQA: African-language queries, with the translated control evaluated by the same model
    assert [(t.dataset, t.role) for t in afri.groups[0].targets] == [
        ("gradrel/afriqa/hau/test", "main"), ("gradrel/afriqa/hau-translated/test", "control")]
    conditions = plan(cfg)
    ft = [c for c in conditions if c.fine_tuned]
    # (2 mono + 1 multi + 1 cross + 1 afriqa groups) × 4 variants × 2 seeds
    assert len(ft) == 5 * 4 * 2
    assert {c.variant for c in ft} == {"tau=1", "tau=2", "tau=3", "graded"}
    assert {c.tau for c in ft} == {1, 2, 3, None} and {c.loss for c in ft} == {"infonce", "graded"}
    hau = next(c for c in ft if c.train == ("gradrel/afriqa/hau/train",))
    assert {(t.dataset, t.split) for t in hau.targets} == {
        ("gradrel/afriqa/hau/test", "test"), ("gradrel/afriqa/hau-translated/test", "test"),
        ("gradrel/afriqa/hau/dev", "dev")}
    # baselines are shared per dataset: en/test is evaluated once although two scenarios test on it
    base = [c for c in conditions if not c.fine_tuned and c.system == "BM25"]
    assert [t.dataset for c in base for t in c.targets].count("gradrel/xquad-r/en/test") == 1
    # the first seed's complete τ sweep comes before any second-seed run
    first_seed1 = next(i for i, c in enumerate(ft) if c.seed == 1)
    assert all(c.seed == 0 for c in ft[:first_seed1]) and len(ft[:first_seed1]) == 20


@pytest.mark.parametrize("changes, message", [
    ({"graded_loss": "false"}, r"'graded_loss' must be true or false .*got 'false'"),
    ({"keep_models": "no"}, r"'keep_models' must be true or false .*got 'no'"),
    ({"graded_loss": 0}, r"'graded_loss' must be true or false"),
    ({"calibration": {"enabled": "false"}}, r"calibration.enabled must be true or false .*got 'false'"),
    ({"scenarios": [{"type": "multilingual", "collection": "xquad-r", "languages": ["en", "th"],
                     "multi_pool": "off"}]}, r"scenarios\[0\].multi_pool' must be true or false"),
    ({"scenarios": [{"type": "crosslingual", "collection": "afriqa", "languages": ["hau"],
                     "translated_control": "false"}]}, r"scenarios\[0\].translated_control' must be true or false"),
    ({"fractions": ["abc"]}, r"'fractions' must hold finite numbers, got 'abc'"),
    ({"fractions": [float("nan")]}, r"'fractions' must hold finite numbers, got nan"),
    ({"noise_rates": ["0.2"]}, r"'noise_rates' must hold finite numbers, got '0.2'"),
    ({"significance": {"bootstrap_samples": "1000"}}, r"significance.bootstrap_samples must be an integer, got '1000'"),
    ({"significance": {"alpha": float("nan")}}, r"significance.alpha must be a finite number, got nan"),
    ({"limit_queries": True}, r"limit_queries must be a positive integer"),
])
def test_values_of_the_wrong_type_are_rejected_naming_the_key(changes, message, mirror):
    with pytest.raises(ConfigError, match=message):
        load_config(_cfg(**changes))


def test_real_booleans_are_kept():
    cfg = load_config(_cfg(graded_loss=False, keep_models=True, calibration={"enabled": False}))
    assert cfg.graded_loss is False and cfg.keep_models is True and cfg.calibration.enabled is False
    assert cfg.fractions == (1.0,) and isinstance(cfg.fractions[0], float)


@pytest.mark.parametrize("training, message", [
    ({"batch_size": 0}, r"batch_size must be an int >= 1, got 0"),
    ({"batch_size": "16"}, r"training.batch_size must be an integer, got '16'"),
    ({"warmup": float("nan")}, r"training.warmup must be a finite number, got nan"),
    ({"warmup": "nan"}, r"training.warmup must be a finite number, got 'nan'"),
    ({"lr": float("inf")}, r"training.lr must be a finite number, got inf"),
    ({"lr": "1e-5"}, r"training.lr must be a finite number, got '1e-5'"),  # YAML 1.1 reads 1e-5 as a string
    ({"freeze_embeddings": "false"}, r"training.freeze_embeddings must be true or false"),
    ({"max_steps": 0}, r"max_steps must be None or an int >= 1"),
    ({"negatives": 5}, r"training: .*negatives"),
    ({"unit": "article"}, r"unit must be one of"),
])
def test_training_hyperparameters_are_validated_up_front(training, message, mirror):
    """Each planned condition's TrainConfig is built at load time: nothing has to run first to find out."""
    pytest.importorskip("pyterrier_gradrel.training")
    with pytest.raises(ConfigError, match=message):
        load_config(_cfg(training=training))


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nscenarios:\n  - {type: monolingual, languages: [en\nseeds: [0]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: not valid YAML") and "<unicode string>" not in msg and "line" in msg


@pytest.mark.parametrize("changes, message", [
    ({"fractions": [0.5, 0.5, 1.0]}, r"fractions must be unique, got \[0.5, 0.5, 1.0\]"),
    ({"noise_rates": [0.0, 0.2, 0.2]}, r"noise_rates must be unique, got \[0.0, 0.2, 0.2\]"),
    ({"baselines": ["BM25", "BM25"]}, r"baselines must be unique"),
    ({"measures": {"rels": [4]}}, r"measures\.rels: 4 is not a relevance level: each must be one of \[1, 2, 3\]"),
    ({"measures": {"rels": [2, 2]}}, r"measures\.rels must be unique, got \[2, 2\]"),
    ({"significance": {"permutations": 10}}, r"significance\.permutations must be at least 100, got 10"),
    ({"significance": {"alpha": 2}}, r"significance\.alpha must lie in \(0, 1\), got 2"),
])
def test_repeated_sweep_entries_and_bad_values_name_file_and_key(changes, message, tmp_path, mirror):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_cfg(**changes)), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {message}"):
        load_config(path)
    with pytest.raises(ConfigError, match=rf"^{message}"):  # a mapping has no file to name
        load_config(_cfg(**changes))


@pytest.mark.parametrize("changes", [
    {"colour": "red"}, {"thresholds": [2, 2]}, {"graded_loss": "yes"}, {"training": {"batch_size": 0}},
    {"scenarios": [{"type": "crosslingual", "collection": "xquad-r", "languages": ["de"]}]},
    {"measures": {"primary": "ERR@20"}},
])
def test_every_config_error_from_a_file_names_the_file(changes, tmp_path, mirror):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_cfg(**changes)), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")


def test_yaml_strings_for_booleans_fail_from_a_file(tmp_path):
    path = tmp_path / "quoted.yaml"
    path.write_text('scenarios: [{type: monolingual, collection: xquad-r, languages: [en]}]\nseeds: [0]\n'
                    'graded_loss: "false"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'graded_loss' must be true or false .*got 'false'"):
        load_config(path)
