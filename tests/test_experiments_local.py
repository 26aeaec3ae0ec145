"""A local (e.g. LLM-judged) collection runs in experiment configs like the benchmark's own."""
from __future__ import annotations

import json

import pytest

from pyterrier_gradrel.experiments import ConfigError, load_config, plan

DOCS = [{"doc_id": f"d{i}", "text": f"passage number {i}", "split": "train" if i < 4 else "test"} for i in range(8)]


def _collection(root, name: str, *, splits=("train", "dev", "test"), manifest="manifest.json"):
    folder = root / "collections" / name
    folder.mkdir(parents=True)
    (folder / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    for split in splits:
        (folder / f"queries.{split}.tsv").write_text(f"{split}1\twhich passage is one?\n", encoding="utf-8")
        (folder / f"qrels.{split}.txt").write_text(f"{split}1 0 d1 3\n{split}1 0 d2 0\n", encoding="utf-8")
    if manifest == "manifest.json":
        (folder / manifest).write_text(json.dumps({"name": name, "lang": "en"}), encoding="utf-8")
    elif manifest is not None:
        (folder / manifest).write_text(f"name: {name}\nlang: en\ngrades: {{0: none, 1: some, 2: most, 3: all}}\n",
                                       encoding="utf-8")
    return folder


def _cfg(name: str, **scenario):
    return {"name": "t", "seeds": [0], "thresholds": [2, 3],
            "scenarios": [{"type": "monolingual", "collection": "local", "languages": [name], **scenario}]}


def test_local_collection_plans_train_and_test(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path))
    _collection(tmp_path, "judged")
    cfg = load_config(_cfg("judged"))
    datasets = {t for c in plan(cfg) for t in (*c.train, *(x.dataset for x in c.targets))}
    assert {"gradrel/local/judged/train", "gradrel/local/judged/test"} <= datasets


def test_unknown_local_collection_names_the_ones_found(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path))
    _collection(tmp_path, "judged")
    # collections registered in this process (register_local, or found by name by other tests: ir_datasets
    # keeps them) are offered too, so match 'judged' among them, and ask for a name no test registers
    with pytest.raises(ConfigError, match=r"unknown language 'absent' for local: expected one of \[[^]]*'judged'"):
        load_config(_cfg("absent"))


def test_local_collection_is_monolingual_only(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path))
    _collection(tmp_path, "judged")
    with pytest.raises(ConfigError, match="use type 'monolingual'"):
        load_config({**_cfg("judged"), "scenarios": [{"type": "multilingual", "collection": "local",
                                                        "languages": ["judged"]}]})


@pytest.mark.parametrize("manifest", ["manifest.yaml", "manifest.yml", None])
def test_yaml_manifest_or_none_is_a_collection_too(tmp_path, monkeypatch, manifest):
    """The manifest is optional and may be YAML: the config check must find the collection either way."""
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path))
    _collection(tmp_path, "judged", manifest=manifest)
    (tmp_path / "collections" / "notes").mkdir()  # a folder without docs.jsonl/qrels is not a collection
    cfg = load_config(_cfg("judged"))
    assert {"gradrel/local/judged/train", "gradrel/local/judged/test"} <= {d for c in plan(cfg) for d in c.train} | {
        t.dataset for c in plan(cfg) for t in c.targets}
    with pytest.raises(ConfigError, match="unknown language 'notes'"):
        load_config(_cfg("notes"))


def test_exclude_own_article_defaults_to_the_training_datasets_rule(tmp_path, monkeypatch):
    """The config reference's default for ``training.exclude_own_article`` is null (the datasets' rule), which is
    what a judged local collection trains with (false); null written out is the same as the key left out."""
    from pyterrier_gradrel._sphinx import config_keys

    row = {k.key: k for k in config_keys()}["training.exclude_own_article"]
    assert (row.default, row.type) == ("null", "bool or null") and "training datasets' rule" in row.description
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path))
    _collection(tmp_path, "judged")

    def rule(training):
        cfg = load_config({**_cfg("judged"), "training": training})
        return {c.train_config.exclude_own_article for c in cfg.conditions if c.fine_tuned}, cfg.conditions

    (unset, planned), (null, planned_null) = rule({}), rule({"exclude_own_article": None})
    assert unset == null == {False} and planned == planned_null
    assert rule({"exclude_own_article": True})[0] == {True}
    with pytest.raises(ConfigError, match=r"training\.exclude_own_article: expected true, false or null, got 'no'"):
        rule({"exclude_own_article": "no"})
