"""The runner on real XQuAD-R topics/qrels with scripted retrieval/training back-ends.

The back-ends here are test doubles on purpose: these tests check what the runner stores, when it
reuses a finished run and when it must not (τ/loss, seed, fraction, noise, model fingerprint, training
hyper-parameters, data). Real retrieval and training are exercised by the quickstart run.
"""
from __future__ import annotations

import gzip
import json
import shutil

import pandas as pd
import pytest
from _executor_fixtures import scripted_system

from pyterrier_gradrel.experiments import Components, ConfigError, load_config, plan, run_experiment
from pyterrier_gradrel.experiments._data import DataCache
from pyterrier_gradrel.experiments._store import csv_gz
from pyterrier_gradrel.training import TrainConfig

LIMIT = 12


def _config(**changes):
    cfg = {
        "name": "unit",
        "scenarios": [{"type": "monolingual", "collection": "xquad-r", "languages": ["en", "th"]}],
        "thresholds": [1, 3],
        "graded_loss": False,
        "seeds": [0],
        "training": {"max_steps": 2},
        "measures": {"graded": ["nDCG@10"], "binary": ["RR"], "rels": [2]},
        "significance": {"bootstrap_samples": 200},
        "limit_queries": LIMIT,
    }
    cfg.update(changes)
    return cfg


class LightData(DataCache):
    """Real topics/qrels; an empty corpus (the scripted trainer does not read it); optional qrels edits."""

    def __init__(self, *, limit_queries=None, drop_qrels_of=None):
        super().__init__(limit_queries=limit_queries)
        self.drop_qrels_of = drop_qrels_of

    def get(self, ds_id):
        d = super().get(ds_id)
        if self.drop_qrels_of == ds_id and not getattr(d, "_edited", False):
            from pyterrier_gradrel.experiments._data import data_fingerprint

            d.qrels = d.qrels[d.qrels["label"] != 1].reset_index(drop=True)
            d.fingerprint = data_fingerprint(d.topics, d.qrels)
            d._edited = True
        return d

    def corpus(self, ds_ids):
        return pd.DataFrame(columns=["docno", "text"])


class Scripted:
    """Scripted systems (:func:`_executor_fixtures.scripted_system`) and a scripted trainer."""

    def __init__(self, data: DataCache, fingerprint: str = "f" * 64):
        self.data = data
        self.fp = fingerprint
        self.trained: list[tuple] = []

    def _system(self, key: str, ds_id: str, strength: float):
        return scripted_system(self.data.get(ds_id).qrels, key, strength)

    def components(self) -> Components:
        return Components(
            baseline=lambda name, ds_id: self._system(name, ds_id, 0.5 if name == "BM25" else 1.0),
            dense=lambda enc, ds_id: self._system(str(enc), ds_id, 1.5),
            train=self._train,
            fingerprint=lambda: self.fp,
        )

    def _train(self, cond, topics, qrels, corpus, run_dir, cfg):
        assert len(topics) == cfg.limit_queries * len(cond.train) and set(qrels["qid"]) <= set(topics["qid"])
        self.trained.append((cond.train, cond.variant, cond.seed))
        return (cond.train, cond.variant, cond.seed), {"steps": cfg.training.max_steps, "scripted": True}


@pytest.fixture
def root(tmp_path):
    return tmp_path / "experiments"


@pytest.fixture(scope="module")
def shared_data():
    """Loaded once per module: the topics/qrels cache is read-only for the tests."""
    return LightData(limit_queries=LIMIT)


def _run(cfg, root, scripted, data=None, **kw):
    data = data or scripted.data
    kw.setdefault("report", False)  # the report has its own tests; plots cost seconds per run
    return run_experiment(cfg, root=root, components=scripted.components(), data=data, verbose=False, **kw)


def test_first_run_stores_everything_and_rerun_reuses(root, mirror, shared_data):
    data = shared_data
    scripted = Scripted(data)
    cfg = _config()
    n = len(plan(load_config(cfg)))
    res = _run(cfg, root, scripted, report=True)
    assert (res.n_run, res.n_reused) == (n, 0)
    assert len(scripted.trained) == 2 * 2  # 2 languages × 2 thresholds
    runs = sorted(p for p in (root / "runs" / "unit").iterdir())
    assert len(runs) == n and not any(p.name.endswith((".partial", ".tmp")) for p in runs)
    ft = next(p for p in runs if p.name.startswith("ft-en-tau3-s0-f1-n0-"))
    meta = json.loads((ft / "condition.json").read_text())
    assert meta["key"]["tau"] == 3 and meta["key"]["seed"] == 0 and meta["key"]["model"] == "f" * 64
    assert meta["key"]["training"] == TrainConfig.from_dict(meta["condition"]["train_config"]).key()
    assert meta["condition"]["variant"] == "tau=3" and meta["condition"]["tau"] == 3
    assert json.loads((ft / "train_log.json").read_text())["scripted"] is True
    edir = ft / "eval" / "gradrel__xquad-r__en__test"
    with gzip.open(edir / "run.res.gz", "rt") as fh:
        assert len(fh.readline().split()) == 6  # TREC run format
    metrics = json.loads((edir / "metrics.json").read_text())
    assert metrics["n_queries"] == LIMIT and set(metrics["means"]) == {"nDCG@10", "RR(rel=2)"}
    # per-query frame: 2 languages × (test + dev) × LIMIT queries × 2 measures for each of 4 systems
    pq = res.perquery
    assert len(pq) == 2 * 2 * LIMIT * 2 * 4
    assert set(pq["system"]) == {"BM25", "mE5-zero-shot", "fine-tuned"}
    assert (pq["article"] != "").all()
    assert (res.results_dir / "report.md").is_file()

    again = _run(cfg, root, scripted)
    assert (again.n_run, again.n_reused) == (0, n)
    assert len(scripted.trained) == 4  # nothing retrained
    pd.testing.assert_frame_equal(again.perquery.reset_index(drop=True), pq.reset_index(drop=True))


def test_changed_settings_invalidate_exactly_the_affected_runs(root, mirror, shared_data):
    data = shared_data
    scripted = Scripted(data)
    cfg = _config()
    _run(cfg, root, scripted)
    n_base = 2 * 2 * 2  # 2 baselines × 2 languages × (test, dev)

    # training hyper-parameters: every fine-tuned run, no baseline
    res = _run(_config(training={"max_steps": 3}), root, scripted)
    assert (res.n_run, res.n_reused) == (4, n_base)

    # a new threshold and a new seed: only the new runs
    res = _run(_config(thresholds=[1, 2, 3], seeds=[0, 1]), root, scripted)
    assert res.n_run == 2 * 3 * 2 - 4 and res.n_reused == n_base + 4

    # fraction / noise are part of the key
    res = _run(_config(fractions=[0.5]), root, scripted)
    assert res.n_run == 4
    res = _run(_config(noise_rates=[0.2]), root, scripted)
    assert res.n_run == 4

    # another base model fingerprint: everything but BM25
    other = Scripted(data, fingerprint="e" * 64)
    res = _run(cfg, root, other)
    assert res.n_run == n_base // 2 + 4 and res.n_reused == n_base // 2

    # changed qrels of one dataset: the runs that evaluate it (2 baselines, 2 τ of en), nothing else
    edited = LightData(limit_queries=LIMIT, drop_qrels_of="gradrel/xquad-r/en/test")
    res = _run(cfg, root, Scripted(edited), data=edited)
    assert res.n_run == 2 + 2 and res.n_reused == n_base - 2 + 2

    # a different query limit is a different run
    res = _run(_config(limit_queries=LIMIT - 1), root, scripted, data=LightData(limit_queries=LIMIT - 1))
    assert res.n_reused == 0


def test_new_measures_are_computed_from_stored_runs_without_retraining(root, mirror, shared_data):
    data = shared_data
    scripted = Scripted(data)
    _run(_config(), root, scripted)
    trained = len(scripted.trained)
    res = _run(_config(measures={"graded": ["nDCG@10"], "binary": ["RR", "R@100"], "rels": [2, 3]}), root, scripted)
    assert res.n_run == 0 and len(scripted.trained) == trained
    assert {"R(rel=2)@100", "RR(rel=3)", "nDCG@10"} <= set(res.perquery["measure"])


def test_failed_training_leaves_no_finished_run(root, mirror, shared_data):
    data = shared_data
    scripted = Scripted(data)

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    comps = scripted.components()
    comps._train = boom
    with pytest.raises(RuntimeError, match="out of memory"):
        run_experiment(_config(), root=root, components=comps, data=data, verbose=False)
    names = [p.name for p in (root / "runs" / "unit").iterdir()]
    assert names and not any(n.startswith("ft-") and not n.endswith(".partial") for n in names)
    # the baselines that finished are reused next time
    res = _run(_config(), root, scripted)
    assert res.n_reused == 8 and res.n_run == 4


def test_dry_run_and_report_only(root, mirror, shared_data, capsys):
    data = shared_data
    scripted = Scripted(data)
    res = _run(_config(), root, scripted, dry_run=True)
    out = capsys.readouterr().out
    assert "12 conditions: 0 finished, 12 to run (4 fine-tuning runs)" in out
    assert res.perquery.empty and not (root / "runs" / "unit").exists()
    _run(_config(thresholds=[1]), root, scripted)
    res = _run(_config(), root, scripted, compute=False, report=True)
    assert res.n_missing == 2 and res.n_reused == 10 and res.n_run == 0
    assert "2 not run yet (this report is partial)" in (res.results_dir / "report.md").read_text()


def test_a_run_another_experiment_finished_is_copied_not_computed(root, mirror, shared_data, capsys):
    """Equal run keys across experiments: the second experiment copies the first one's finished runs (recording
    where from) and computes only what is new; the first experiment's folders stay as they were."""
    scripted = Scripted(shared_data)
    _run(_config(thresholds=[1]), root, scripted)
    first = {p.name: (p / "condition.json").read_text() for p in (root / "runs" / "unit").iterdir()}
    trained = len(scripted.trained)
    other = _config(name="other", fractions=[0.5, 1.0])  # its fraction-1 τ=1 runs and baselines are unit's
    _run(other, root, scripted, dry_run=True)
    out = capsys.readouterr().out
    assert ("16 conditions: 0 finished, 10 to copy from other experiments' finished runs, 6 to run (6 fine-tuning "
            "runs)") in out
    assert out.count("(finished in unit)") == 10
    res = _run(other, root, scripted, report=True)
    assert (res.n_reused, res.n_run) == (10, 6) and len(scripted.trained) == trained + 6  # τ=3 at 1.0, all at 0.5
    copied = {k: c["copied_from"] for k, c in res.conditions.items() if "copied_from" in c}
    assert copied == {k: f"unit/{k}" for k in first}
    assert {p.name: (p / "condition.json").read_text() for p in (root / "runs" / "unit").iterdir()} == first
    text = (res.results_dir / "report.md").read_text()
    assert "6 computed, 10 reused (10 copied from other experiments' finished runs with the same run keys)" in text


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_fresh_clone_restores_the_committed_run_record_instead_of_computing(tmp_path, mirror, shared_data, capsys):
    """The results folder is all a clone has: --restore rebuilds the finished runs (scores, metrics, train logs)
    byte for byte, trains nothing, and computes only the conditions the record lacks."""
    scripted = Scripted(shared_data)
    first = tmp_path / "machine" / "experiments"
    done = _run(_config(thresholds=[1]), first, scripted, report=True)
    record = json.loads((done.results_dir / "runs.json").read_text())
    assert set(record["runs"]) == set(done.conditions) and record["measures"] == ["nDCG@10", "RR(rel=2)"]
    clone = tmp_path / "clone" / "experiments"
    shutil.copytree(done.results_dir, clone / "results" / "unit")
    trained = len(scripted.trained)

    _run(_config(), clone, scripted, dry_run=True, restore=True)
    assert "12 conditions: 0 finished, 10 to restore from the run record, 2 to run" in capsys.readouterr().out
    res = _run(_config(), clone, scripted, restore=True, report=True)
    assert (res.n_run, res.n_reused) == (2, 10) and len(scripted.trained) == trained + 2  # only τ=3 trains
    for key in done.conditions:
        orig, back = _files(done.runs_dir / key), _files(res.runs_dir / key)
        assert set(orig) - set(back) == {k for k in orig if k.endswith("run.res.gz")}  # no raw runs
        assert [k for k in back if k != "condition.json" and back[k] != orig[k]] == []
        condition = json.loads(back["condition.json"])
        assert condition.pop("restored_from") == "results/unit/runs.json"
        assert condition == json.loads(orig["condition.json"])
    tau1 = res.perquery[res.perquery["variant"] != "tau=3"].reset_index(drop=True)
    pd.testing.assert_frame_equal(tau1, done.perquery.reset_index(drop=True))
    assert "2 computed, 10 reused (10 restored from the run record `runs.json` of an earlier invocation)" in (
        res.results_dir / "report.md").read_text()
    # the new record holds all 12 and restores on the next clone as it was recorded (without restored_from)
    again = json.loads((res.results_dir / "runs.json").read_text())
    assert set(again["runs"]) == set(res.conditions) and all(
        again["runs"][k] == record["runs"][k] for k in record["runs"])


def test_a_record_that_does_not_match_the_committed_scores_is_refused(tmp_path, mirror, shared_data):
    scripted = Scripted(shared_data)
    done = _run(_config(thresholds=[1]), tmp_path / "a" / "experiments", scripted, report=True)
    results = tmp_path / "clone" / "experiments" / "results" / "unit"
    shutil.copytree(done.results_dir, results)
    pq = pd.read_csv(results / "perquery.csv.gz", dtype={"qid": str, "article": str}, keep_default_na=False)
    pq.loc[(pq["variant"] == "tau=1") & (pq["target"] == "gradrel/xquad-r/th/test"), "value"] += 0.01
    (results / "perquery.csv.gz").write_bytes(csv_gz(pq))
    with pytest.raises(ValueError, match=r"cannot restore ft-th-tau1-s0-.*gradrel/xquad-r/th/test .*do not hash"):
        _run(_config(thresholds=[1]), results.parent.parent, scripted, restore=True)

    (results / "perquery.csv.gz").unlink()  # the runs restored before the refused one stay: they hashed as recorded
    with pytest.raises(ValueError, match=r"records 1 run\(s\) to restore, but their scores, .*perquery.csv.gz, are"):
        _run(_config(thresholds=[1]), results.parent.parent, scripted, restore=True)

    shutil.copytree(done.results_dir, results, dirs_exist_ok=True)
    other = _config(thresholds=[1], measures={"graded": ["nDCG@10"], "binary": ["RR"], "rels": [3]})
    with pytest.raises(ValueError, match=r"runs.json records \d+ run\(s\) to restore, scored with the measures "
                                         r".*'RR\(rel=2\)'.*this config's are .*'RR\(rel=3\)'"):
        _run(other, results.parent.parent, scripted, restore=True)
    # restored runs have no raw run to score a new measure with
    _run(_config(thresholds=[1]), results.parent.parent, scripted, restore=True)
    with pytest.raises(ValueError, match="no raw run to score .*RR\\(rel=3\\).*delete the folder"):
        _run(other, results.parent.parent, scripted)


def test_a_report_of_nothing_never_replaces_committed_results(tmp_path, mirror, shared_data):
    """A clone without run folders or a run record: the report is refused and the results stay byte for byte."""
    scripted = Scripted(shared_data)
    done = _run(_config(thresholds=[1]), tmp_path / "a" / "experiments", scripted, report=True)
    results = tmp_path / "clone" / "experiments" / "results" / "unit"
    shutil.copytree(done.results_dir, results)
    (results / "runs.json").unlink()  # as committed before run records existed
    before = _files(results)
    with pytest.raises(ValueError, match=r"no run of unit's plan has finished \(there is no finished run under .*, and "
                                         r"no run record .*\): the results in .* are left as they are"):
        _run(_config(thresholds=[1]), results.parent.parent, scripted, compute=False, report=True, restore=True)
    assert _files(results) == before


def test_a_report_of_nothing_writes_nothing(root, mirror, shared_data):
    with pytest.raises(ValueError, match=r"no run of unit's plan has finished \(there is no finished run under .*, "
                                         r"and no run record .*\): nothing is written \(run the experiment\)"):
        _run(_config(), root, Scripted(shared_data), compute=False, report=True)
    assert not (root / "results").exists()


def test_a_partial_report_never_drops_recorded_runs(tmp_path, mirror, shared_data):
    """A clone on another machine kind (another model fingerprint: e.g. bf16 where the record is float32) restores
    only the BM25 runs; its partial report would drop the others, so it is refused and the files stay. A complete run
    of the new keys replaces them."""
    done = _run(_config(thresholds=[1]), tmp_path / "a" / "experiments", Scripted(shared_data), report=True)
    clone = tmp_path / "clone" / "experiments"
    results = clone / "results" / "unit"
    shutil.copytree(done.results_dir, results)
    before = _files(results)
    other = Scripted(shared_data, fingerprint="e" * 64)
    with pytest.raises(ValueError, match=r"a partial report \(4 of 10 conditions finished\) would replace the 6 "
                                         r"recorded run\(s\) of other run keys .*left as they are"):
        _run(_config(thresholds=[1]), clone, other, compute=False, report=True, restore=True)
    assert _files(results) == before
    res = _run(_config(thresholds=[1]), clone, other, restore=True, report=True)
    assert (res.n_run, res.n_reused) == (6, 4)
    assert set(json.loads((results / "runs.json").read_text())["runs"]) == set(res.conditions)


def test_a_sweep_resumed_without_restore_is_refused_before_it_drops_the_record(tmp_path, mirror, shared_data):
    scripted = Scripted(shared_data)
    cfg = _config(scenarios=[{"type": "monolingual", "collection": "xquad-r", "languages": ["en"]},
                             {"type": "crosslingual", "collection": "xquad-r", "pairs": [["th", "en"]]}])
    done = _run(cfg, tmp_path / "a" / "experiments", scripted, scenarios=["monolingual-xquad-r"], report=True)
    clone = tmp_path / "clone" / "experiments"
    shutil.copytree(done.results_dir, clone / "results" / "unit")
    before = _files(clone / "results" / "unit")
    with pytest.raises(ValueError, match=r"6 finished run\(s\) that .*runs.json records are neither under .* nor "
                                         r"restored: .*\(pass --restore"):
        _run(cfg, clone, scripted, scenarios=["crosslingual-xquad-r"], report=True)
    assert _files(clone / "results" / "unit") == before
    res = _run(cfg, clone, scripted, scenarios=["crosslingual-xquad-r"], report=True, restore=True)
    assert (res.n_reused, res.n_missing) == (6, 0)


def test_a_smoke_run_reports_beside_the_full_results(root, tmp_path, mirror, shared_data):
    scripted = Scripted(shared_data)
    path = tmp_path / "unit.yaml"
    path.write_text(json.dumps(_config(thresholds=[1])))  # JSON is YAML
    full = _run(path, root, scripted, report=True)
    before = _files(full.results_dir)
    smoke = _run(path, root, scripted, data=LightData(limit_queries=3), limit_queries=3, report=True)
    assert smoke.results_dir == root / "results" / "unit-limit3" and smoke.n_run == 10
    assert _files(full.results_dir) == before
    text = (smoke.results_dir / "report.md").read_text()
    assert "--limit-queries 3` (finished conditions" in text and "first 3 queries of every dataset" in text
    again = _run(path, root, scripted, data=LightData(limit_queries=3), limit_queries=3, compute=False, report=True)
    assert again.results_dir == smoke.results_dir and again.n_reused == 10


def test_a_restored_run_is_not_copied_into_another_experiment(tmp_path, mirror, shared_data):
    """A restored run has no raw run to score another experiment's measures with: the other experiment computes it."""
    scripted = Scripted(shared_data)
    done = _run(_config(thresholds=[1]), tmp_path / "a" / "experiments", scripted, report=True)
    clone = tmp_path / "clone" / "experiments"
    shutil.copytree(done.results_dir, clone / "results" / "unit")
    res = _run(_config(thresholds=[1]), clone, scripted, restore=True, report=True)
    assert res.n_reused == 10 and "(10 restored from the run record" in (res.results_dir / "report.md").read_text()
    other = _config(name="other", thresholds=[1], measures={"graded": ["nDCG@10"], "binary": ["RR"], "rels": [3]})
    res = _run(other, clone, scripted)
    assert (res.n_run, res.n_reused) == (10, 0) and "RR(rel=3)" in set(res.perquery["measure"])


def test_a_report_with_new_measures_needs_no_restore_when_every_run_is_here(root, mirror, shared_data):
    scripted = Scripted(shared_data)
    _run(_config(thresholds=[1]), root, scripted, report=True)
    more = _config(thresholds=[1], measures={"graded": ["nDCG@10"], "binary": ["RR"], "rels": [2, 3]})
    res = _run(more, root, scripted, compute=False, restore=True, report=True)
    assert res.n_reused == 10 and "RR(rel=3)" in set(res.perquery["measure"])
    assert json.loads((res.results_dir / "runs.json").read_text())["measures"] == ["nDCG@10", "RR(rel=2)",
                                                                                  "RR(rel=3)"]


def test_a_renamed_scenario_restores_its_runs(tmp_path, mirror, shared_data):
    """The scenario name is not part of a run key: rows are found under the name the record holds."""
    def cfg(label):
        return _config(thresholds=[1], calibration={"enabled": False}, scenarios=[
            {"type": "transfer", "train": ["gradrel/xquad-r/de/train"], "test": ["gradrel/xquad-r/en/test"],
             "label": label}])

    scripted = Scripted(shared_data)
    done = _run(cfg("de-en"), tmp_path / "a" / "experiments", scripted, report=True)
    clone = tmp_path / "clone" / "experiments"
    shutil.copytree(done.results_dir, clone / "results" / "unit")
    res = _run(cfg("de-to-en"), clone, scripted, compute=False, restore=True, report=True)
    assert res.n_reused == len(done.conditions) and res.n_missing == 0
    assert set(res.perquery["scenario"]) == {"transfer-de-to-en"}


def test_one_run_key_in_two_scenarios_is_computed_once(root, mirror, shared_data):
    scripted = Scripted(shared_data)
    cfg = _config(thresholds=[1], calibration={"enabled": False}, scenarios=[
        {"type": "monolingual", "collection": "xquad-r", "languages": ["en"]},
        {"type": "transfer", "train": ["gradrel/xquad-r/en/train"], "test": ["gradrel/xquad-r/en/test"]}])
    res = _run(cfg, root, scripted, report=True)
    assert scripted.trained == [(("gradrel/xquad-r/en/train",), "tau=1", 0)]
    assert res.n_run + res.n_reused == len(load_config(cfg).conditions) and res.n_missing == 0
    assert set(res.perquery["scenario"]) >= {"monolingual-xquad-r", "transfer-xquad-r.en-to-xquad-r.en"}


def test_scenarios_selects_what_is_computed_and_the_report_covers_the_whole_config(root, mirror, shared_data,
                                                                                     capsys):
    """Two scenarios; computing one of them runs its fine-tuned models and the baselines of its targets only."""
    scripted = Scripted(shared_data)
    cfg = _config(scenarios=[{"type": "monolingual", "collection": "xquad-r", "languages": ["en"]},
                             {"type": "crosslingual", "collection": "xquad-r", "pairs": [["th", "en"]]}])
    with pytest.raises(ValueError, match=r"no scenario \['afriqa'\] in this config; its scenarios are "
                                         r"\['crosslingual-xquad-r', 'monolingual-xquad-r'\]"):
        _run(cfg, root, scripted, scenarios=["afriqa"])
    _run(cfg, root, scripted, scenarios=["crosslingual-xquad-r"], dry_run=True)
    assert "12 conditions: 0 finished, 6 to run (2 fine-tuning runs), 6 left for other scenarios" in (
        capsys.readouterr().out)
    res = _run(cfg, root, scripted, scenarios=["crosslingual-xquad-r"], report=True)
    pair = ("gradrel/xquad-r/th-en/train",)
    assert sorted(scripted.trained) == [(pair, "tau=1", 0), (pair, "tau=3", 0)]
    assert set(res.perquery["label"]) == {"th-en"} and (res.n_run, res.n_missing) == (2 + 2 * 2, 2 + 2 * 2)
    assert "6 not run yet (this report is partial)" in (res.results_dir / "report.md").read_text()
    res = _run(cfg, root, scripted)
    assert (res.n_run, res.n_reused, res.n_missing) == (6, 6, 0) and len(scripted.trained) == 4


def test_the_runner_uses_the_plan_made_when_the_config_was_read(root, mirror, shared_data, monkeypatch):
    from pyterrier_gradrel.experiments import _config as schema

    calls = []
    real = schema.plan
    monkeypatch.setattr(schema, "plan", lambda cfg: calls.append(cfg.limit_queries) or real(cfg))
    scripted = Scripted(shared_data)
    cfg = load_config(_config())
    res = _run(cfg, root, scripted, dry_run=True)
    assert calls == [LIMIT] and res.config is cfg  # validated and planned once, before the run
    _run({**_config(), "limit_queries": None}, root, scripted, dry_run=True, limit_queries=LIMIT)
    assert calls == [LIMIT, LIMIT]  # the override is applied before the one validation


def test_train_configs_for_every_variant(mirror):
    """The plan builds the real TrainConfig of every fine-tuned condition: τ=1..3 and the graded loss."""
    cfg = load_config(_config(thresholds=[1, 2, 3], graded_loss=True, fractions=[0.5], noise_rates=[0.1],
                              training={"max_steps": 2, "batch_size": 8}))
    made = {c.variant: c for c in plan(cfg) if c.fine_tuned and c.seed == 0}
    assert {v: (c.tau, c.loss, c.train_config.loss, c.train_config.rel) for v, c in made.items() if v != "graded"} == {
        "tau=1": (1, "infonce", "infonce", 1), "tau=2": (2, "infonce", "infonce", 2), "tau=3": (3, "infonce", "infonce", 3)}
    graded = made["graded"]
    assert graded.tau is None and graded.loss == "graded"
    assert graded.train_config.loss == "graded" and graded.train_config.positive_rel == 1
    configs = [c.train_config for c in made.values()]
    assert all(t.fraction == 0.5 and t.noise == 0.1 and t.max_steps == 2 and t.batch_size == 8 for t in configs)
    # distinct run names: the trainer never confuses two variants
    assert len({t.run_name() for t in configs}) == 4
    assert all(c.train_config is None and c.tau is None for c in plan(cfg) if not c.fine_tuned)


def test_a_hyper_parameter_the_trainer_refuses_fails_in_the_plan(mirror):
    with pytest.raises(ConfigError, match=r"training: batch_size must be an int >= 1.*\(in the trainer's config for "):
        load_config(_config(training={"batch_size": 0}))




def test_run_keys_carry_tau_the_train_config_and_the_pools_text_version(mirror, monkeypatch):
    """A fine-tuned run key is derived from its TrainConfig's key plus the evaluation side, and changes with the
    passage texts (the collection's ``text_version``), so a text change never reuses a stale run."""
    from pyterrier_gradrel.experiments._store import key_material, run_key
    from pyterrier_gradrel.retrieval import _bm25

    cfg = load_config(_config())
    cond = next(c for c in plan(cfg) if c.fine_tuned and c.tau == 3)
    material = key_material(cond, cfg, DataCache(limit_queries=LIMIT), lambda: "f" * 64)
    assert material["training"] == cond.train_config.key() and material["tau"] == 3
    assert {tuple(t["pool"]) for t in material["targets"] + material["train"]} == {("xquad-r-t2", cond.train[0].split("/")[2])}
    key = run_key(material)
    assert key.startswith(f"ft-{cond.train[0].split('/')[2]}-tau3-s0-f1-n0-")
    monkeypatch.setattr(_bm25, "_collection_slug", lambda collection: f"{collection}-t3")
    changed = key_material(cond, cfg, DataCache(limit_queries=LIMIT), lambda: "f" * 64)
    assert run_key(changed) != key


def test_the_bm25_baselines_run_keys_carry_the_bm25_engine(mirror, monkeypatch):
    """Another pyterrier-pisa (or auto tokenizer) gives the baselines BM25 makes new run keys, so their runs of the
    old engine are never reused; the reference engine keeps the keys computed before the engine entered them."""
    from pyterrier_gradrel.experiments._runner import _keyed_conditions
    from pyterrier_gradrel.experiments._store import key_material, run_key
    from pyterrier_gradrel.retrieval import _engine

    cfg = load_config(_config(baselines=["BM25", "mE5-zero-shot", "BM25>>mE5", "RRF(BM25,mE5)"]))
    conds = [c for c in plan(cfg) if not c.fine_tuned and c.targets[0].dataset.endswith("/en/test")]
    assert sorted(c.system for c in conds) == sorted(["BM25", "mE5-zero-shot", "BM25>>mE5", "RRF(BM25,mE5)"])

    def keys(engine):
        return {c.system: run_key(key_material(c, cfg, DataCache(limit_queries=LIMIT), lambda: "f" * 64,
                                               lambda: engine)) for c in conds}

    before = keys(None)  # no engine in the material: the keys as computed before it entered them
    reference = dict(_engine.REFERENCE_BM25_ENGINE)
    assert keys(reference) == before
    for engine in ({**reference, "pyterrier-pisa": "0.5.0"}, {**reference, "tokenizer": "subword-x-0123456789-lc"}):
        changed = keys(engine)
        assert changed["mE5-zero-shot"] == before["mE5-zero-shot"]
        assert all(changed[s] != before[s] for s in ("BM25", "BM25>>mE5", "RRF(BM25,mE5)"))
    # the runner asks its components, once; by default the installed engine (a baseline of one's own: none)
    asked = []
    upgraded = {**reference, "pyterrier-pisa": "0.5.0"}
    monkeypatch.setattr(_engine, "bm25_engine", lambda: asked.append(1) or upgraded)
    keyed = {cond.system: key for cond, _, key in _keyed_conditions(cfg, DataCache(limit_queries=LIMIT),
                                                                    Components(fingerprint=lambda: "f" * 64))
             if cond in conds}
    assert asked == [1] and keyed["BM25"] == keys(upgraded)["BM25"]
    custom = Components(baseline=lambda name, ds: None, fingerprint=lambda: "f" * 64)
    assert custom.bm25_engine() is None and asked == [1]


def test_read_condition_counts_the_training_sessions_before_a_resume(tmp_path):
    """``seconds.earlier_sessions``: 0 for a run trained in one session, the earlier sessions' training seconds
    when the trainer reports them, ``None`` for a run resumed from a checkpoint that did not record them; a
    ``condition.json`` that records it is read as it is."""
    from pyterrier_gradrel.experiments._store import read_condition

    run = tmp_path / "ft"
    run.mkdir()
    (run / "condition.json").write_text(json.dumps({"seconds": {"train": 1.0, "retrieve": 1.0, "total": 2.0}}))

    def earlier(log: dict | None) -> float | None:
        if log is not None:
            (run / "train_log.json").write_text(json.dumps(log))
        return read_condition(run)["seconds"]["earlier_sessions"]

    assert earlier(None) == 0.0  # a baseline: nothing trained
    assert earlier({"steps": 6, "steps_this_session": 6}) == 0.0
    assert earlier({"steps": 6, "steps_this_session": 2}) is None
    assert earlier({"steps": 6, "steps_this_session": 2, "seconds_this_session": 5.0, "seconds": 15.0}) == 10.0
    assert earlier({"steps": 6, "steps_this_session": 2, "seconds_this_session": 5.0, "seconds": None}) is None
    (run / "condition.json").write_text(json.dumps({"seconds": {"total": 2.0, "earlier_sessions": 3.0}}))
    assert earlier(None) == 3.0


def test_a_run_is_copied_with_its_model_only_where_the_experiment_keeps_models(tmp_path):
    from pyterrier_gradrel.experiments._store import adopt_run, finished_elsewhere

    source = tmp_path / "runs" / "first" / "ft-key"
    (source / "eval").mkdir(parents=True)
    (source / "condition.json").write_text(json.dumps({"seconds": {"total": 1.0}}))
    wanted = tmp_path / "runs" / "second" / "ft-key"
    assert finished_elsewhere(wanted) == source and finished_elsewhere(wanted, with_model=True) is None
    assert finished_elsewhere(source) is None  # its own folder is not another experiment's
    (source / "model").mkdir()
    (source / "model" / "weights").write_text("w")
    assert finished_elsewhere(wanted, with_model=True) == source
    adopt_run(wanted, source)
    assert not (wanted / "model").exists() and (wanted / "eval").is_dir()
    assert json.loads((wanted / "condition.json").read_text())["copied_from"] == "first/ft-key"
    adopt_run(tmp_path / "runs" / "third" / "ft-key", source, with_model=True)
    assert (tmp_path / "runs" / "third" / "ft-key" / "model" / "weights").read_text() == "w"
    assert "copied_from" not in json.loads((source / "condition.json").read_text())


def test_the_result_offers_the_documented_analyses(root, mirror, shared_data):
    """``result.aggregate(); result.significance(); result.bootstrap(); result.calibration()`` (pt_docs/experiments.rst)
    are the analyses of the result's per-query frame with its config."""
    from pyterrier_gradrel.experiments import _analyses

    res = _run(_config(), root, Scripted(shared_data))
    agg = res.aggregate()
    pd.testing.assert_frame_equal(agg, _analyses.aggregate(res.perquery))
    assert set(agg["system"]) == {"BM25", "mE5-zero-shot", "fine-tuned"} and agg["mean"].notna().all()
    pd.testing.assert_frame_equal(res.significance(), _analyses.significance(res.perquery, res.config))
    assert set(res.significance()["baseline"]) == {"BM25", "mE5-zero-shot"}
    pd.testing.assert_frame_equal(res.bootstrap(), _analyses.bootstrap(res.perquery, res.config))
    assert not res.bootstrap().empty
    calibration = res.calibration()
    pd.testing.assert_frame_equal(calibration, _analyses.calibration(res.perquery, res.config))
    assert not calibration.empty
