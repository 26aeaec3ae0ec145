"""Executors: a failing condition fails once and the sweep finishes; Ray runs equal local runs, also when a
worker is killed mid-condition (retried, resumed from its checkpoint), and a real fine-tuning condition trained
in a Ray worker gives the same weights and per-query values, bit for bit, as in this process.

The Ray tests start one local Ray (2 CPUs) for the module and skip with a reason where Ray is absent.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from _executor_fixtures import LIMIT, FileScripted, LightData, attempts, config

from pyterrier_gradrel.experiments import ConditionsFailed, LocalExecutor, plan, run_experiment
from pyterrier_gradrel.experiments._executor import Outcome, Task, make_executor

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def data(mirror):
    return LightData(limit_queries=LIMIT)


def _run(root, scripted, data, **kw):
    kw.setdefault("report", False)
    return run_experiment(config(), root=root, components=scripted.components(), data=data, verbose=False, **kw)


def _sorted(pq: pd.DataFrame) -> pd.DataFrame:
    return pq.sort_values(list(pq.columns)).reset_index(drop=True)


def _runs(root: Path) -> dict[str, list[str]]:
    """Every stored run file, decompressed, rows sorted, by its path under the runs folder."""
    out = {}
    for f in sorted((root / "runs").rglob("run.res.gz")):
        with gzip.open(f, "rt") as fh:
            out[str(f.relative_to(root))] = sorted(fh.read().splitlines())
    return out


# ---------------------------------------------------------------------------------------------- local

def _fail(x):
    raise ValueError(f"bad input {x}")


def test_local_executor_keeps_going_after_an_error():
    done = []
    tasks = [Task("a", done.append, (1,), stage=1), Task("b", _fail, (2,)), Task("c", done.append, (3,))]
    outcomes = list(LocalExecutor().run(tasks))
    assert [o.task.key for o in outcomes] == ["b", "c", "a"]  # stage 0 first, given order within a stage
    assert done == [3, 1]
    assert [o.ok for o in outcomes] == [False, True, True] and "ValueError: bad input 2" in outcomes[0].error


def test_failed_condition_is_reported_and_the_sweep_finishes(tmp_path, data):
    root = tmp_path / "experiments"
    scripted = FileScripted(tmp_path / "log", data, fail_variant="tau=3")
    with pytest.raises(ConditionsFailed, match="bad data") as info:
        _run(root, scripted, data, report=True)
    result = info.value.result
    n = len(plan(result.config))
    assert (result.n_run, result.n_missing) == (n - 1, 1)
    [key] = result.failed
    assert key.startswith("ft-en-tau3-") and key in str(info.value)
    assert "ValueError: bad data" in (result.runs_dir / f"{key}.partial" / "error.txt").read_text()
    assert (result.results_dir / "report.md").is_file()  # the report of the finished conditions
    assert [a["variant"] for a in attempts(tmp_path / "log")].count("tau=3") == 1


def test_cli_run_exits_non_zero_naming_the_failed_conditions(tmp_path, data, monkeypatch, capsys):
    from pyterrier_gradrel.experiments import _cli, _runner

    scripted = FileScripted(tmp_path / "log", data, fail_variant="tau=1")
    real = _runner.run_experiment

    def scripted_run(cfg_path, **kw):
        assert kw["executor"] == "local" and kw["device"] is None
        return real(config(), root=tmp_path / "experiments", components=scripted.components(), data=data,
                    verbose=False, report=False, executor=kw["executor"])

    monkeypatch.setattr(_runner, "run_experiment", scripted_run)
    args = argparse.Namespace(config="x.yaml", root=None, limit_queries=None, dry_run=False, quiet=True,
                              executor="local", address=None, device=None, restore=False,
                              scenario=None)
    assert _cli._run(args) == 1
    err = capsys.readouterr().err
    assert "1 condition(s) of exec failed" in err and "ft-en-tau1-" in err and "bad data" in err


def test_ray_executor_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'pyterrier-gradrel\[ray\]'"):
        make_executor("ray")
    with pytest.raises(ValueError, match="is for the 'ray' executor"):
        make_executor("local", address="auto")


# ------------------------------------------------------------------------------------------------ ray

@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'pyterrier-gradrel[ray]')")
    env = {k: v for k, v in os.environ.items() if k.startswith(("GRADREL_", "HF_")) or k == "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), str(TESTS)])  # this checkout and the fixtures
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env},
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield ray
    ray.shutdown()


def test_ray_sweep_with_killed_workers_equals_the_local_run(tmp_path, data, ray_local):
    local_root, ray_root = tmp_path / "local", tmp_path / "ray"
    local = _run(local_root, FileScripted(tmp_path / "log-local", data), data)
    log = tmp_path / "log-ray"
    res = _run(ray_root, FileScripted(log, data, kill_once=True), data, executor="ray")
    assert (res.n_run, res.failed) == (local.n_run, {})
    tries = attempts(log)
    # every fine-tuned condition was killed once after its checkpoint, retried in a new worker, and resumed
    assert sorted((a["variant"], a["resumed_from"] or 0) for a in tries) == [
        ("tau=1", 0), ("tau=1", 1), ("tau=3", 0), ("tau=3", 1)]  # 0: a first attempt, no checkpoint
    assert len({a["pid"] for a in tries}) >= 2
    pd.testing.assert_frame_equal(_sorted(res.perquery), _sorted(local.perquery))
    assert _runs(ray_root) == _runs(local_root) and len(_runs(ray_root)) == local.n_run  # same keys, same rows
    assert not list((ray_root / "runs" / "exec").glob("*.partial"))


def test_ray_real_error_fails_once_and_the_rest_finish(tmp_path, data, ray_local):
    log = tmp_path / "log"
    with pytest.raises(ConditionsFailed, match="bad data") as info:
        _run(tmp_path / "experiments", FileScripted(log, data, fail_variant="tau=1"), data, executor="ray")
    result = info.value.result
    assert result.n_run == len(plan(result.config)) - 1 and len(result.failed) == 1
    assert [a["variant"] for a in attempts(log)].count("tau=1") == 1  # not retried: it would fail again
    assert "ValueError" in next(iter(result.failed.values()))


def test_ray_outcomes_report_seconds_and_stages(ray_local, tmp_path):
    from pyterrier_gradrel.experiments._executor import RayExecutor

    marks = tmp_path / "marks"
    marks.mkdir()
    tasks = [Task("late", _touch, (marks / "late", marks / "early"), stage=1), Task("early", _touch, (marks / "early",))]
    outcomes: list[Outcome] = list(RayExecutor(max_retries=0).run(tasks))
    assert [o.task.key for o in outcomes] == ["early", "late"] and all(o.ok for o in outcomes)


@pytest.fixture(scope="module")
def judged_local() -> str:
    """A tiny judged local collection in this session's GRADREL_HOME, which the Ray workers share."""
    from _local_fixture import judged_collection

    name, home = "exec-real", Path(os.environ["GRADREL_HOME"])
    if not (home / "collections" / name).is_dir():
        judged_collection(home, name)
    return name


def _model_hashes(root: Path) -> dict[str, str]:
    """sha256 of every kept model's weights, by run key."""
    return {f.parts[-3]: hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted((root / "runs").rglob("model/model.safetensors"))}


def test_real_fine_tuning_in_a_ray_worker_is_bit_identical_to_local(tmp_path, ray_local, tiny_encoder_dir,
                                                                    judged_local):
    """One real condition (a tiny BERT fine-tuned for a few steps at one pinned torch thread, then encoding and
    retrieval) run in this process and in a Ray worker (another process: its own hash seed, its own encoder load):
    identical model weights, run files and per-query values."""
    cfg = {
        "name": "exec-real", "seeds": [0], "thresholds": [1], "graded_loss": False,
        "scenarios": [{"type": "crosslingual", "collection": "local", "languages": [judged_local]}],
        "training": {"max_steps": 3, "batch_size": 2, "max_length": 16, "threads": 1},
        "base_model": str(tiny_encoder_dir), "baselines": ["mE5-zero-shot"], "keep_models": True,
        "measures": {"graded": ["nDCG@10"], "binary": ["RR", "R@100"], "rels": [1, 3]},
        "calibration": {"enabled": False},
    }
    local = run_experiment(cfg, root=tmp_path / "local", verbose=False, report=False)
    ray = run_experiment(cfg, root=tmp_path / "ray", verbose=False, report=False, executor="ray")
    assert (local.n_run, ray.n_run, ray.failed) == (2, 2, {})
    [(key, weights)] = _model_hashes(tmp_path / "local").items()
    assert _model_hashes(tmp_path / "ray") == {key: weights}
    pd.testing.assert_frame_equal(_sorted(ray.perquery), _sorted(local.perquery), check_exact=True)
    assert local.perquery["value"].nunique() > 1  # real scores, not a constant
    assert _runs(tmp_path / "ray") == _runs(tmp_path / "local")


def _touch(path: Path, requires: Path | None = None) -> None:
    if requires is not None and not requires.exists():
        raise AssertionError(f"{requires} should exist: stage 0 finishes before stage 1 starts")
    path.write_text("x")


def test_components_reach_workers_without_the_loaded_encoder():
    import pickle

    from pyterrier_gradrel.experiments import Components

    comps = Components(base_model="some-model", device="cpu")
    comps._encoder = object()  # stands for ~0.5 GB of loaded weights
    sent = pickle.loads(pickle.dumps(comps))
    assert sent._encoder is None and (sent.base_model, sent.device) == ("some-model", "cpu")
    assert comps._encoder is not None  # the driver keeps its own


def test_condition_thread_count_is_pinned_for_the_whole_condition_and_restored():
    """training.threads holds for training, encoding and retrieval alike, under either executor."""
    import torch

    from pyterrier_gradrel._device import torch_threads

    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    with torch_threads(want):
        assert torch.get_num_threads() == want
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
