"""Pinned reproductions: OK / OKish / FAIL with a stated tolerance; a deliberately wrong expectation fails."""
from __future__ import annotations

import pytest

from pyterrier_gradrel.benchmark._check import (
    check,
    check_scores,
    expectations_path,
    load_expectations,
    status,
)
from pyterrier_gradrel.benchmark._suite import load_suite

TASK = "xquad-r-en"


def test_status_thresholds():
    assert status(0.67341, 0.6734, ok=5e-5, okish=5e-3) == "OK"
    assert status(0.6770, 0.6734, ok=5e-5, okish=5e-3) == "OKish"
    assert status(0.6800, 0.6734, ok=5e-5, okish=5e-3) == "FAIL"
    assert status(0.5, None, ok=5e-5, okish=5e-3) == "NOT PINNED"
    assert status(None, 0.5, ok=5e-5, okish=5e-3) == "NOT RUN"
    table = check_scores({"a": 0.5}, {"a": 0.6, "b": None}, ok=5e-5, okish=5e-3)
    assert table["status"].tolist() == ["FAIL", "NOT PINNED"]
    assert table.loc[0, "diff"] == pytest.approx(-0.1)


def test_the_expectations_list_every_task_of_the_suite():
    exp = load_expectations()
    assert exp.path == expectations_path("gradrel-v1")
    assert (exp.suite, exp.measure, exp.ok, exp.okish) == ("gradrel-v1", "nDCG@10", 5e-5, 5e-3)
    names = [t.name for t in load_suite().tasks]
    for system in ("BM25", "mE5-zero-shot"):
        assert list(exp.scores(system)) == names
    assert exp.scores("BM25")[TASK] is not None  # the CI subset is pinned


def test_bad_tolerances_are_rejected(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("suite: gradrel-v1\nmeasure: nDCG@10\ntolerance: {ok: 0.01, okish: 0.001}\nsystems: {}\n")
    with pytest.raises(ValueError, match="0 <= ok <= okish"):
        load_expectations(path)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("check-out")


def test_pinned_bm25_reproduces(mirror, out):
    table = check("BM25", tasks=[TASK], out=out, verbose=False)
    assert table["status"].tolist() == ["OK"]


def _wrong(tmp_path, value: float):
    path = tmp_path / "wrong.expected.yaml"
    text = expectations_path().read_text()
    pinned = load_expectations().scores("BM25")[TASK]
    path.write_text(text.replace(f"xquad-r-en: {pinned:.4f}", f"xquad-r-en: {value:.4f}", 1))
    assert load_expectations(path).scores("BM25")[TASK] == pytest.approx(value)
    return path


def test_a_deliberately_wrong_expectation_fails(mirror, out, tmp_path):
    from pyterrier_gradrel.cli import main

    pinned = load_expectations().scores("BM25")[TASK]
    table = check("BM25", tasks=[TASK], expectations=_wrong(tmp_path, pinned + 0.02), out=out, verbose=False)
    assert table["status"].tolist() == ["FAIL"]
    table = check("BM25", tasks=[TASK], expectations=_wrong(tmp_path, pinned + 0.003), out=out, verbose=False)
    assert table["status"].tolist() == ["OKish"]
    # the command's exit status says it too (results are reused: nothing is recomputed)
    wrong = _wrong(tmp_path, pinned - 0.05)
    assert main(["benchmark", "check", "--systems", "BM25", "--tasks", TASK, "--expected", str(wrong),
                 "--out", str(out), "--quiet"]) == 1
    assert main(["benchmark", "check", "--systems", "BM25", "--tasks", TASK, "--out", str(out), "--quiet"]) == 0
    assert main(["evaluate", "--baseline", "BM25", "--tasks", TASK, "--out", str(out), "--quiet", "--check"]) == 0


def test_precision_overrides_the_pinned_one(monkeypatch):
    import pyterrier_gradrel.benchmark._runner as runner

    seen = []

    class Result:
        def main_scores(self):
            return {TASK: load_expectations().scores("mE5-zero-shot")[TASK]}

    def fake_evaluate(system, suite, tasks, **kwargs):
        seen.append(kwargs["precision"])
        return Result()

    monkeypatch.setattr(runner, "evaluate", fake_evaluate)
    check("mE5-zero-shot", tasks=[TASK], verbose=False)
    check("mE5-zero-shot", tasks=[TASK], precision="bfloat16", verbose=False)
    assert seen == ["float32", "bfloat16"]  # the pinned precision, then the one asked for


def test_a_misspelled_task_key_is_refused_naming_file_and_key(tmp_path):
    path = tmp_path / "typo.expected.yaml"
    path.write_text(expectations_path().read_text().replace("xquad-r-en: ", "xquad-r-EN: ", 1))
    with pytest.raises(ValueError, match=r"typo\.expected\.yaml: system 'BM25' pins unknown tasks \['xquad-r-EN'\]"):
        load_expectations(path)


def test_a_check_that_checked_nothing_exits_non_zero(tmp_path, capsys):
    """Every selected task unpinned: nothing evaluated, nothing compared, exit 1 (not a silent 0)."""
    from pyterrier_gradrel.cli import main

    path = tmp_path / "unpinned.expected.yaml"
    pinned = load_expectations().scores("BM25")[TASK]
    path.write_text(expectations_path().read_text().replace(f"xquad-r-en: {pinned:.4f}", "xquad-r-en: null", 1))
    assert load_expectations(path).scores("BM25")[TASK] is None
    assert main(["benchmark", "check", "--systems", "BM25", "--tasks", TASK, "--expected", str(path),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "NOT PINNED" in captured.out and "nothing was checked" in captured.err
    assert not (tmp_path / "out").exists()


def test_the_expectations_of_a_yml_suite_are_its_own_file(tmp_path):
    suite = tmp_path / "mysuite.yml"
    suite.write_text(load_suite().path.read_text())
    assert expectations_path(suite) == tmp_path / "mysuite.expected.yml"
    assert expectations_path("gradrel-v1").name == "gradrel-v1.expected.yaml"


def test_the_precision_and_name_reach_the_baseline_system(monkeypatch, tiny_encoder_dir):
    """as_system (under evaluate and check) loads a baseline's model in the precision asked for, not float32, and
    honours the name: the fingerprint differs per precision, the name does not change it."""
    from pyterrier_gradrel.benchmark import _systems

    monkeypatch.setattr(_systems, "_BASELINE_ENCODER", str(tiny_encoder_dir))
    monkeypatch.setattr(_systems, "bm25_engine", lambda: dict(_systems.REFERENCE_BM25_ENGINE))
    f32 = _systems.as_system("mE5-zero-shot", threads=1)
    bf16 = _systems.as_system("mE5-zero-shot", precision="bfloat16", threads=1)
    assert f32.description["encoder"]["precision"] == "float32"
    assert bf16.description["encoder"]["precision"] == "bfloat16"
    assert bf16.fingerprint != f32.fingerprint
    renamed = _systems.as_system("BM25", name="my-bm25")
    assert (renamed.name, renamed.slug) == ("my-bm25", "my-bm25")
    assert renamed.fingerprint == _systems.as_system("BM25").fingerprint == _systems.baseline_system("BM25").fingerprint


def test_a_system_pinned_without_a_precision_is_checked_in_float32(monkeypatch):
    """Encoders are scored in float32 unless asked otherwise (evaluate's default): a pinned system without a
    ``precision`` key must not be checked in ``auto`` (bf16 on AMX CPUs and bf16 GPUs), another fingerprint and
    other scores than the float32 ones pinned."""
    import pyterrier_gradrel.benchmark._runner as runner
    from pyterrier_gradrel.benchmark._check import Expectations

    seen = []

    class Result:
        def main_scores(self):
            return {TASK: 0.5}

    def fake_evaluate(system, suite, tasks, **kwargs):
        seen.append(kwargs["precision"])
        return Result()

    monkeypatch.setattr(runner, "evaluate", fake_evaluate)
    exp = Expectations("gradrel-v1", "nDCG@10", 5e-5, 5e-3, {"my-model": {"scores": {TASK: 0.5}}})
    assert check("my-model", tasks=[TASK], expectations=exp, verbose=False)["status"].tolist() == ["OK"]
    assert seen == ["float32"]
