"""Experiment configs: every shipped config validates, and invalid ones fail early with clear errors."""
from __future__ import annotations

import hashlib
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


# every committed config's plan: (conditions, sha256[:16] of their ids in plan order, see _condition_id); reading a
# config must keep planning exactly these conditions in this order, and a change of either updates them on purpose
PLANNED = {
    "crosslingual_afriqa.yaml": (108, "ddaa77f5f6adc110"),
    "crosslingual_afriqa_budget.yaml": (30, "edb0ec9364a1816c"),
    "crosslingual_afriqa_budget_ibo_kin.yaml": (30, "8ea03564ff3e22a3"),
    "crosslingual_afriqa_budget_twi_zul.yaml": (30, "884409f33f5430ee"),
    "crosslingual_afriqa_queryside.yaml": (108, "725f7c075f69fa1a"),
    "crosslingual_afriqa_queryside_pair.yaml": (54, "5568b69f3357ed77"),
    "crosslingual_pair_budget.yaml": (13, "f1281068bf8e90b4"),
    "data_efficiency.yaml": (156, "e838ab50f0c26d36"),
    "data_efficiency_budget.yaml": (31, "66d204917186fa4d"),
    "full.yaml": (668, "fc2573073c246d2d"),
    "monolingual.yaml": (192, "24a155522dd99584"),
    "monolingual_budget.yaml": (156, "38f17abfbb008f18"),
    "monolingual_pair_budget.yaml": (78, "dee3b0d10e090e0e"),
    "multilingual.yaml": (64, "581c220539faf38f"),
    "multilingual_queryside.yaml": (61, "a911cc42ec0ee6a0"),
    "noise.yaml": (156, "4a189f745ac9ec34"),
    "noise_budget.yaml": (31, "753198739a801d57"),
    "protocol_crosslingual.yaml": (302, "c83a1cb8cceb31a3"),
    "protocol_data_efficiency.yaml": (164, "f5def5ab5a684e93"),
    "protocol_mixture.yaml": (108, "ea33bd0a2ca886ac"),
    "protocol_monolingual.yaml": (192, "0a144b454120f8ea"),
    "protocol_noise.yaml": (128, "b3dd6a0b21409269"),
    "quickstart.yaml": (14, "7fa84207117c466f"),
}


def _condition_id(c) -> str:
    targets = ",".join(f"{t.dataset}:{t.split}:{t.role}" for t in c.targets)
    train_config = c.train_config.key() if c.train_config is not None else "-"
    return (f"{c.scenario}|{c.system}|{'+'.join(c.train)}|{targets}|s{c.seed}|f{c.fraction:g}|n{c.noise:g}|"
            f"tau{c.tau}|{c.loss}|{train_config}")


def test_every_committed_config_plans_the_same_conditions(mirror):
    assert sorted(PLANNED) == [p.name for p in CONFIGS]
    for path in CONFIGS:
        ids = [_condition_id(c) for c in load_config(path).conditions]
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
        assert (len(ids), digest) == PLANNED[path.name], path.name


def test_a_config_is_planned_once_when_it_is_read(mirror, monkeypatch):
    from pyterrier_gradrel.experiments import _config

    calls = []
    real = _config.plan
    monkeypatch.setattr(_config, "plan", lambda cfg: calls.append(cfg.name) or real(cfg))
    cfg = load_config(_cfg(graded_loss=False))
    assert calls == ["t"] and [c.tau for c in cfg.conditions if c.fine_tuned] == [1, 2, 3] * 2
    assert load_config(cfg) is cfg and calls == ["t"]  # a validated config is not validated again
    assert cfg.conditions == tuple(plan(cfg))
    assert load_config(cfg, limit_queries=5).limit_queries == 5 and calls == ["t", "t"]  # a new config: planned anew


def test_the_reference_level_is_planned_first(mirror):
    """Fine-tuned conditions run level by level, the reference (all the data, no noise) first for every seed, then
    the other levels in the config's order, so that a partial run can compare what it finished with the reference."""
    cfg = load_config(_cfg(fractions=[0.1, 0.5, 1.0], noise_rates=[0.0, 0.2], seeds=[0, 1], graded_loss=False))
    ft = [c for c in cfg.conditions if c.fine_tuned]
    levels = list(dict.fromkeys((c.fraction, c.noise) for c in ft))
    assert levels == [(1.0, 0.0), (0.1, 0.0), (0.1, 0.2), (0.5, 0.0), (0.5, 0.2), (1.0, 0.2)]
    first = ft[:2 * 2 * 3]  # the reference: 2 seeds x 2 languages x 3 thresholds
    assert {(c.fraction, c.noise) for c in first} == {(1.0, 0.0)} and [c.seed for c in first] == [0] * 6 + [1] * 6


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
    with pytest.raises(ConfigError, match=r"threshold 4 is outside the grade scale .* expected one of \[1, 2, 3\]"):
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
    ({"scenarios": [{"type": "bilingual", "languages": ["en"]}]}, r"scenarios\[0\]\.type: expected one of 'monolingual', 'multilingual', 'crosslingual' or 'transfer', got 'bilingual'"),
    ({"scenarios": [{"type": "monolingual", "collection": "msmarco", "languages": ["en"]}]}, r"scenarios\[0\]\.collection: expected one of 'xquad-r', 'afriqa' or 'local', got 'msmarco'"),
    ({"measures": {"binary": ["MAP@10"]}}, r"unknown binary measure 'MAP@10'"),
    ({"measures": {"graded": ["R@100"]}}, r"unknown graded measure 'R@100'"),
    ({"measures": {"binary": ["P"]}}, r"needs a cut-off"),
    ({"measures": {"primary": "ERR@20"}}, r"measures\.primary: unknown measure 'ERR@20'"),
    ({"baselines": ["BM25", "ColBERT"]}, r"baselines\[1\]: expected one of 'BM25', 'mE5-zero-shot', .*got 'ColBERT'"),
    ({"training": {"seed": 3}}, r"set by the sweep"),
    ({"fractions": [0.0, 1.0]}, r"fractions\[0\]: must lie in \(0, 1\], got 0.0"),
    ({"noise_rates": [1.5]}, r"noise_rates\[0\]: must lie in \[0, 1\), got 1.5"),
    ({"significance": {"correction": "fdr"}}, r"significance\.correction: expected one of 'holm', 'bonferroni', 'bh' or 'none', got 'fdr'"),
    ({"significance": {"test": "z"}}, r"significance\.test: expected one of 't', 'wilcoxon' or 'permutation', got 'z'"),
    ({"thresholds": [2, 2]}, r"thresholds: must be unique, got \[2, 2\]"),
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
    with pytest.raises(ConfigError, match=r"training: unknown hyper-parameter\(s\) \['learning_rate'\]: expected some of \[.*'lr'"):
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
    ({"graded_loss": "false"}, r"graded_loss: expected true or false \(an unquoted YAML boolean\), got 'false'"),
    ({"keep_models": "no"}, r"keep_models: expected true or false .*got 'no'"),
    ({"graded_loss": 0}, r"graded_loss: expected true or false .*got 0"),
    ({"calibration": {"enabled": "false"}}, r"calibration\.enabled: expected true or false .*got 'false'"),
    ({"scenarios": [{"type": "multilingual", "collection": "xquad-r", "languages": ["en", "th"],
                     "multi_pool": "off"}]}, r"scenarios\[0\]\.multi_pool: expected true or false .*got 'off'"),
    ({"scenarios": [{"type": "crosslingual", "collection": "afriqa", "languages": ["hau"],
                     "translated_control": "false"}]}, r"scenarios\[0\]\.translated_control: expected true or false .*got 'false'"),
    ({"fractions": ["abc"]}, r"fractions\[0\]: expected a finite number, got 'abc'"),
    ({"fractions": [float("nan")]}, r"fractions\[0\]: expected a finite number, got nan"),
    ({"noise_rates": ["0.2"]}, r"noise_rates\[0\]: expected a finite number, got '0.2'"),
    ({"significance": {"bootstrap_samples": "1000"}}, r"significance\.bootstrap_samples: expected an integer, got '1000'"),
    ({"significance": {"alpha": float("nan")}}, r"significance\.alpha: expected a finite number, got nan"),
    ({"limit_queries": True}, r"limit_queries: expected a positive integer or null, got True"),
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
    ({"batch_size": "16"}, r"training\.batch_size: expected an integer, got '16'"),
    ({"warmup": float("nan")}, r"training\.warmup: expected a finite number, got nan"),
    ({"warmup": "nan"}, r"training\.warmup: expected a finite number, got 'nan'"),
    ({"lr": float("inf")}, r"training\.lr: expected a finite number, got inf"),
    ({"lr": "1e-5"}, r"training\.lr: expected a finite number, got '1e-5'"),  # YAML 1.1 reads 1e-5 as a string
    ({"freeze_embeddings": "false"}, r"training\.freeze_embeddings: expected true or false .*got 'false'"),
    ({"max_steps": 0}, r"max_steps must be None or an int >= 1"),
    ({"negatives": 5}, r"training: .*negatives"),
    ({"unit": "article"}, r"training\.unit: expected one of 'query' or 'pair', got 'article'"),
])
def test_training_hyperparameters_are_validated_up_front(training, message, mirror):
    """Each planned condition's TrainConfig is built at load time: nothing has to run first to find out."""
    pytest.importorskip("pyterrier_gradrel.training")
    with pytest.raises(ConfigError, match=message):
        load_config(_cfg(training=training))


def test_training_grades_are_refused_the_grade_scale_comes_from_the_datasets(mirror):
    """``training.grades`` would be overwritten by the training datasets' scale: refused, and not in the reference."""
    from pyterrier_gradrel._sphinx import config_keys

    with pytest.raises(ConfigError, match=r"training: \['grades'\]: the grade scale comes from the training datasets"):
        load_config(_cfg(training={"grades": [0, 1, 2]}))
    assert not any(k.key == "training.grades" for k in config_keys())


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nscenarios:\n  - {type: monolingual, languages: [en\nseeds: [0]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: not valid YAML") and "<unicode string>" not in msg and "line" in msg


@pytest.mark.parametrize("changes, message", [
    ({"fractions": [0.5, 0.5, 1.0]}, r"fractions: must be unique, got \[0.5, 0.5, 1.0\]"),
    ({"noise_rates": [0.0, 0.2, 0.2]}, r"noise_rates: must be unique, got \[0.0, 0.2, 0.2\]"),
    ({"baselines": ["BM25", "BM25"]}, r"baselines: must be unique"),
    ({"measures": {"rels": [4]}}, r"measures\.rels\[0\]: must be a relevance level, one of \[1, 2, 3\] \(the minimum grade counted relevant\), got 4"),
    ({"measures": {"rels": [2, 2]}}, r"measures\.rels: must be unique, got \[2, 2\]"),
    ({"significance": {"permutations": 10}}, r"significance\.permutations: must be at least 100, got 10"),
    ({"significance": {"alpha": 2}}, r"significance\.alpha: must lie in \(0, 1\), got 2"),
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
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: graded_loss: expected true or false .*got 'false'"):
        load_config(path)


def test_every_problem_is_named_at_once_with_its_location(mirror):
    with pytest.raises(ConfigError) as err:
        load_config(_cfg(thresholds="1", graded_loss="x", seeds=[0, 0], significance={"alpha": 0.05, "colour": 1},
                         scenarios=[{"type": "monolingual", "languages": ["en"]},
                                    {"type": "multilingual", "languages": ["en", "xx"], "multi_pool": 1}]))
    assert str(err.value).splitlines() == [
        "scenarios[1].languages: unknown language 'xx' for xquad-r: expected one of "
        "['ar', 'de', 'el', 'en', 'es', 'hi', 'ro', 'ru', 'th', 'tr', 'vi', 'zh']",
        "scenarios[1].multi_pool: expected true or false (an unquoted YAML boolean), got 1",
        "thresholds: expected a list, got '1'",
        "graded_loss: expected true or false (an unquoted YAML boolean), got 'x'",
        "seeds: must be unique, got [0, 0] ([0] repeated)",
        "significance: unknown key(s) ['colour']: expected some of ['alpha', 'bootstrap_samples', 'bootstrap_unit', "
        "'confidence', 'correction', 'permutations', 'random_seed', 'test']",
    ]


@pytest.mark.parametrize("changes, message", [
    ({"scenarios": []}, r"^scenarios: expected at least one entry, got \[\]"),
    ({"scenarios": [{"type": "crosslingual", "pairs": [["de", "en", "fr"]]}]},
     r"^scenarios\[0\]\.pairs\[0\]: expected \[qlang, dlang\] or 'qlang-dlang', got \['de', 'en', 'fr'\]"),
    ({"measures": {"graded": ["nDCG@10"], "colour": 1}}, r"^measures: unknown key\(s\) \['colour'\]"),
    ({"training": {"negatives": 1.5}}, r"^training\.negatives: expected one of \['zero', 'below'\] or an integer"),
    ({"run_depth": 5}, r"^run_depth: must be at least the deepest measure cut-off \(100\), got 5"),
    ({"calibration": {"measure": "MAP"}}, r"^calibration\.measure: unknown measure 'MAP'"),
    ({"name": "a/b"}, r"^name: must be a plain folder name"),
    ({"thresholds": [], "graded_loss": False}, r"^nothing to fine-tune"),
])
def test_keys_checked_against_each_other_name_their_location(changes, message, mirror):
    with pytest.raises(ConfigError, match=message):
        load_config(_cfg(**changes))


def test_an_int_for_a_float_hyper_parameter_reaches_the_trainer_as_written(mirror):
    """``warmup: 100`` (steps) stays the int 100: the TrainConfig, and so the run key, is the one it always was."""
    cfg = load_config(_cfg(training={"warmup": 100, "lr": 1e-5}))
    tc = next(c.train_config for c in cfg.conditions if c.fine_tuned)
    assert type(tc.warmup) is int and tc.warmup == 100 and tc.lr == 1e-5
    assert cfg.hyperparameters == {"lr": 1e-5, "warmup": 100}
