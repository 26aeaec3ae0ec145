"""benchmark.evaluate: per-query measures, any PyTerrier pipeline through a factory, resumption, encoders."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from pyterrier_gradrel import benchmark
from pyterrier_gradrel.benchmark._evaluate import measure_names, prepare_evaluators, score_run

TASK = "xquad-r-en"


def _log2(x: float) -> float:
    return math.log2(x)


def test_score_run_matches_hand_computed_values():
    qrels = pd.DataFrame([("q1", "d1", 3), ("q1", "d2", 2), ("q1", "d3", 1), ("q2", "d4", 1), ("q3", "d9", 3)],
                         columns=["qid", "docno", "label"])
    # q1 ranked by the given ranks, all scores equal (pytrec_eval alone would break the tie by docno);
    # q2 unanswered; q3's only relevant document at position 120, beyond the depth of 100
    q1 = pd.DataFrame({"qid": "q1", "docno": ["d3", "dX", "d1", "d2"], "score": 1.0, "rank": [0, 1, 2, 3]})
    q3 = pd.DataFrame({"qid": "q3", "docno": [f"n{i}" if i != 120 else "d9" for i in range(150)],
                       "score": [150.0 - i for i in range(150)], "rank": list(range(150))})
    ev = prepare_evaluators(qrels)
    table = score_run(ev, pd.concat([q1, q3])).set_index("qid")
    assert list(table.columns) == measure_names(benchmark.load_suite()) == [
        "nDCG@10", "nDCG(rel=1)@10", "R@100", "RR@100", "nDCG(rel=2)@10", "R(rel=2)@100", "RR(rel=2)@100",
        "nDCG(rel=3)@10", "R(rel=3)@100", "RR(rel=3)@100"]
    dcg = 1 / _log2(2) + 7 / _log2(4) + 3 / _log2(5)
    idcg = 7 + 3 / _log2(3) + 1 / _log2(4)
    assert table.at["q1", "nDCG@10"] == pytest.approx(dcg / idcg)
    assert table.at["q1", "nDCG(rel=2)@10"] == pytest.approx((1 / _log2(4) + 1 / _log2(5)) / (1 + 1 / _log2(3)))
    assert table.at["q1", "nDCG(rel=3)@10"] == pytest.approx((1 / _log2(4)) / 1)
    assert table.at["q1", "RR@100"] == pytest.approx(1.0)
    assert table.at["q1", "RR(rel=2)@100"] == pytest.approx(1 / 3)
    assert table.at["q1", "R(rel=2)@100"] == pytest.approx(1.0)
    assert (table.loc["q2"] == 0).all()  # unanswered: 0, not dropped
    assert table.at["q3", "RR(rel=3)@100"] == 0 and table.at["q3", "R(rel=3)@100"] == 0  # cut at depth 100
    assert len(table) == 3


def test_a_stale_rank_does_not_override_the_score():
    """A re-ranker that rewrote ``score`` without re-ranking: the run is scored by score (as pt.Experiment),
    not in the first stage's order its stale ``rank`` still holds; ranks break score ties."""
    suite = benchmark.load_suite()
    qrels = pd.DataFrame({"qid": ["q1", "q1"], "docno": ["rel3", "rel1"], "label": [3, 1]})
    evaluator = prepare_evaluators(qrels, suite)
    run = pd.DataFrame({"qid": ["q1"] * 3, "docno": ["junk", "rel1", "rel3"], "score": [0.1, 0.5, 0.9],
                        "rank": [0, 1, 2]})
    stale = score_run(evaluator, run).iloc[0]
    by_score = score_run(evaluator, run.drop(columns="rank")).iloc[0]
    assert stale["RR(rel=3)@100"] == 1.0 and stale["nDCG@10"] == by_score["nDCG@10"]
    # tied scores: the rank decides (rel1 ranked above rel3), whatever the row order
    tied = pd.DataFrame({"qid": ["q1"] * 2, "docno": ["rel3", "rel1"], "score": [1.0, 1.0], "rank": [1, 0]})
    assert score_run(evaluator, tied).iloc[0]["RR(rel=3)@100"] == 0.5
    # without scores the rank is the order
    assert score_run(evaluator, tied.drop(columns="score")).iloc[0]["RR(rel=3)@100"] == 0.5


def test_score_run_rejects_a_frame_that_is_not_a_run():
    ev = prepare_evaluators(pd.DataFrame([("q1", "d1", 1)], columns=["qid", "docno", "label"]))
    with pytest.raises(ValueError, match="qid, docno and rank or score"):
        score_run(ev, pd.DataFrame({"qid": ["q1"], "text": ["x"]}))


class WordOverlapReranker:
    """Stand-in for a user's reranker: re-scores each query's candidates by shared lower-case words."""

    def __new__(cls, dataset_id: str):
        import pyterrier as pt

        class _Reranker(pt.Transformer):
            def __init__(self, texts: dict[str, str]) -> None:
                self.texts = texts

            def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
                out = inp.copy()
                words = {q: set(t.lower().split()) for q, t in zip(inp["qid"], inp["query"], strict=True)}
                out["score"] = [len(words[q] & set(self.texts[d].lower().split())) + s / 1000
                                for q, d, s in zip(inp["qid"], inp["docno"], inp["score"], strict=True)]
                return pt.model.add_ranks(out)

        import ir_datasets

        texts = {d.doc_id: d.text for d in ir_datasets.load(dataset_id).docs_iter()}
        return _Reranker(texts)


def bm25_then_overlap(dataset_id: str):
    from pyterrier_gradrel.retrieval import bm25

    return (bm25(dataset_id) % 20) >> WordOverlapReranker(dataset_id)


@pytest.fixture(scope="module")
def factory_result(mirror, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    calls = []

    def factory(dataset_id: str):
        calls.append(dataset_id)
        return bm25_then_overlap(dataset_id)

    first = benchmark.evaluate(factory, tasks=[TASK], out=out, name="bm25-overlap", fingerprint="v1", verbose=False)
    return out, factory, calls, first


def test_an_unknown_pipeline_is_evaluated_through_the_factory(factory_result):
    out, _, calls, result = factory_result
    assert calls == ["gradrel/xquad-r/en/test"]
    assert result.computed == [TASK] and result.reused == []
    record = json.loads((result.folder / f"{TASK}.json").read_text())
    assert record["suite"] == {"name": "gradrel-v1", "version": 1, "hash": benchmark.load_suite().hash}
    assert record["task"]["data_fingerprint"] == benchmark.load_suite().task(TASK).fingerprint
    assert record["system"]["name"] == "bm25-overlap"
    assert "_Reranker" in record["system"]["pipeline"] or "Compose" in record["system"]["pipeline"]
    assert set(record["scores"]) == set(measure_names(benchmark.load_suite()))
    assert record["queries"] == 354 and record["answered"] == 354
    assert {"versions", "environment", "seconds", "created"} <= set(record)
    assert record["versions"]["ir_measures"] == "0.4.3"
    import pyterrier as pt

    # the installed PyTerrier (python-terrier 1.x is a meta-package), and what the factory's module imports
    assert record["versions"]["pyterrier"] == pt.__version__
    assert {"pandas", "pytest", "pyterrier-gradrel"} <= set(record["system"]["description"]["packages"])
    assert set(record["system"]["description"]["packages"]) <= set(record["versions"])
    assert record["per_query"]["sha256"].startswith("sha256:")
    per_query = result.results[TASK].per_query()
    assert len(per_query) == 354 and (per_query["article"] != "").all()
    assert per_query["nDCG@10"].mean() == pytest.approx(record["scores"]["nDCG@10"], abs=1e-12)
    assert 0.3 < record["scores"]["nDCG@10"] < 1.0
    # the reranker really ran: reordering BM25's top 20 changes the ranking, so the score is not BM25's
    assert abs(record["scores"]["nDCG@10"] - 0.6734) > 1e-3
    assert result.folder.parent.parent == out / "gradrel-v1"


def test_a_second_evaluate_recomputes_nothing(factory_result):
    out, factory, calls, first = factory_result
    json_path = first.folder / f"{TASK}.json"
    before = json_path.stat().st_mtime_ns
    second = benchmark.evaluate(factory, tasks=[TASK], out=out, name="bm25-overlap", fingerprint="v1", verbose=False)
    assert second.computed == [] and second.reused == [TASK]
    assert calls == ["gradrel/xquad-r/en/test"]  # the factory was not called again
    assert json_path.stat().st_mtime_ns == before
    assert second.main_scores() == first.main_scores()


def test_a_result_computed_on_other_data_is_refused(factory_result, tmp_path):
    import shutil

    out, factory, _, first = factory_result
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    path = copy / first.folder.relative_to(out) / f"{TASK}.json"
    record = json.loads(path.read_text())
    record["task"]["data_fingerprint"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(record))
    with pytest.raises(benchmark.DataChangedError, match="cannot be reused"):
        benchmark.evaluate(factory, tasks=[TASK], out=copy, name="bm25-overlap", fingerprint="v1", verbose=False)


def test_changed_data_is_a_user_error_that_names_the_overwrite_option(factory_result, tmp_path):
    """The command line shows a DataChangedError as its message (no "unexpected ... --debug"), naming --overwrite."""
    from pyterrier_gradrel.cli import error_message, is_user_error

    error = benchmark.DataChangedError("x.json was computed on data sha256:0 (remove it or recompute it with "
                                       "--overwrite, overwrite=True in Python)")
    assert is_user_error(error) and error_message(error) == str(error)
    out, factory, _, first = factory_result
    path = out / first.folder.relative_to(out) / f"{TASK}.json"
    record = json.loads(path.read_text())
    copy = tmp_path / "out" / first.folder.relative_to(out)
    copy.mkdir(parents=True)
    for f in first.folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    record["task"]["data_fingerprint"] = "sha256:" + "0" * 64
    (copy / path.name).write_text(json.dumps(record))
    with pytest.raises(benchmark.DataChangedError) as caught:
        benchmark.evaluate(factory, tasks=[TASK], out=tmp_path / "out", name="bm25-overlap", fingerprint="v1",
                           verbose=False)
    assert is_user_error(caught.value)
    assert "--overwrite, overwrite=True in Python" in error_message(caught.value)


def _own(modules) -> list[str]:
    """The modules of a fingerprint other than this package's source entry (there in a checkout, not a release)."""
    from pyterrier_gradrel.benchmark._systems import GRADREL_SOURCE

    return [m for m in modules if m != GRADREL_SOURCE]


def _fileless(source: str, name: str = "factory"):
    """A factory defined as by ``python -c``, stdin or ``exec``: a module namespace without ``__file__``."""
    import types

    module = types.ModuleType("__main__")
    exec(compile(source, "<string>", "exec"), module.__dict__)
    return getattr(module, name)


def test_a_fileless_factory_is_fingerprinted_by_its_code_and_the_globals_it_reads():
    from pyterrier_gradrel.benchmark._systems import UnstableFingerprintError, as_system

    def fp(source: str, **kw) -> str:
        return as_system(_fileless(source), name="mine", **kw).fingerprint

    head = "import pyterrier_gradrel as gr\n"
    top100 = fp(head + "def factory(ds):\n    return gr.bm25(ds) % 100\n")
    assert fp(head + "def factory(ds):\n    return gr.bm25(ds) % 100\n") == top100  # stable
    assert fp(head + "def factory(ds):\n    return gr.bm25(ds) % 1\n") != top100  # edited: recomputed
    # a global the factory reads (a notebook's earlier cell), a helper function it calls, a closure cell
    with_k = head + "K = {k}\nfactory = lambda ds: gr.bm25(ds) % K\n"
    assert fp(with_k.format(k=100)) != fp(with_k.format(k=1))
    helper = head + "def cut(ds):\n    return gr.bm25(ds) % {k}\ndef factory(ds):\n    return cut(ds)\n"
    assert fp(helper.format(k=100)) != fp(helper.format(k=1))
    closure = head + "def make(k):\n    return lambda ds: gr.bm25(ds) % k\nfactory = make({k})\n"
    assert fp(closure.format(k=100)) != fp(closure.format(k=1))
    # a value without a stable repr is refused, unless the caller versions the system
    unstable = head + "W = object()\ndef factory(ds):\n    return gr.bm25(ds) % len(str(W))\n"
    with pytest.raises(UnstableFingerprintError, match=r"global 'W'.*fingerprint=.*--system-version"):
        fp(unstable)
    assert len(fp(unstable, fingerprint="v1")) == 64


def test_a_local_package_named_like_an_installed_one_is_hashed(tmp_path, monkeypatch):
    """``docs`` is a top-level name a distribution installs (pyterrier); a local ``docs`` package beside the
    factory is the user's code: its source enters the fingerprint."""
    import sys

    from pyterrier_gradrel.benchmark._cli import load_factory
    from pyterrier_gradrel.benchmark._systems import _distributions, as_system

    assert "docs" in _distributions()
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "__init__.py").write_text("")
    (tmp_path / "my_docs_factory.py").write_text(
        "from docs.helper import K\n\n\ndef factory(ds):\n    import pyterrier_gradrel as gr\n"
        "    return gr.bm25(ds) % K\n")

    def system(k: int):
        (tmp_path / "docs" / "helper.py").write_text(f"K = {k}\n")
        for name in ("docs", "docs.helper", "my_docs_factory"):
            monkeypatch.delitem(sys.modules, name, raising=False)
        return as_system(load_factory(f"{tmp_path / 'my_docs_factory.py'}:factory"))

    first = system(100)
    assert "docs.helper" in first.description["modules"]
    assert system(1).fingerprint != first.fingerprint


def test_factory_fingerprint_follows_its_source():
    from pyterrier_gradrel.benchmark._systems import as_system

    a = as_system(bm25_then_overlap)
    assert a.name == "bm25_then_overlap" and len(a.fingerprint) == 64
    assert as_system(bm25_then_overlap, fingerprint="v2").fingerprint != a.fingerprint
    # everything else it imports is an installed package; this package is never followed module by module (its
    # runtime engines' versions, and its source hash in a checkout, enter every factory's fingerprint)
    assert _own(a.description["modules"]) == [__name__]
    assert not any(m.startswith("pyterrier_gradrel.") for m in a.description["modules"])
    assert "pyterrier-gradrel" in a.description["packages"] and "pandas" in a.description["packages"]
    with pytest.raises(TypeError, match="dataset_id -> pt.Transformer"):
        as_system(42)


def test_an_encoder_is_a_system_and_its_pool_is_encoded_once(mirror, tiny_encoder_dir, tmp_path):
    from pyterrier_gradrel.retrieval import encode_count

    result = benchmark.evaluate(str(tiny_encoder_dir), tasks=[TASK], out=tmp_path, threads=1, verbose=False)
    record = result.results[TASK].record
    assert record["system"]["description"]["kind"] == "encoder"
    # float32 by default, like the pinned scores, also where "auto" would pick bf16 (AMX CPUs, recent GPUs)
    assert record["system"]["description"]["precision"] == "float32"
    assert result.folder.parent.name == tiny_encoder_dir.name
    encodes = encode_count()
    again = benchmark.evaluate(str(tiny_encoder_dir), tasks=[TASK], out=tmp_path, precision="float32",
                               threads=1, overwrite=True, verbose=False)
    assert again.computed == [TASK]
    assert encode_count() == encodes  # recomputed from the cached pool vectors: nothing encoded
    assert again.main_scores() == pytest.approx(result.main_scores())


def test_named_baselines_are_systems(mirror, tiny_encoder_dir, tmp_path):
    from pyterrier_gradrel.benchmark._systems import BASELINES as SYSTEM_BASELINES
    from pyterrier_gradrel.benchmark._systems import baseline_system
    from pyterrier_gradrel.retrieval import BASELINES

    assert SYSTEM_BASELINES is BASELINES
    systems = [baseline_system(n, encoder=str(tiny_encoder_dir), threads=1) for n in BASELINES]
    assert len({s.fingerprint for s in systems}) == 4
    assert [s.slug for s in systems] == ["BM25", "mE5-zero-shot", "BM25_mE5", "RRF_BM25_mE5"]
    result = benchmark.evaluate(systems[3], tasks=[TASK], out=tmp_path, verbose=False)
    record = result.results[TASK].record
    assert record["system"]["description"]["baseline"] == "RRF(BM25,mE5)"
    assert record["system"]["description"]["encoder"]["precision"] == "float32"
    assert result.folder.parent.name == "RRF_BM25_mE5"
    assert 0 < record["scores"]["nDCG@10"] <= 1
    with pytest.raises(ValueError, match="baseline must be one of"):
        baseline_system("BM42")


def test_cli_evaluates_a_factory_from_a_file(mirror, tmp_path, capsys):
    from pyterrier_gradrel.cli import main

    module = tmp_path / "my_system.py"
    module.write_text("from pyterrier_gradrel.retrieval import bm25\n\n\n"
                      "def factory(dataset_id):\n    return bm25(dataset_id) % 5\n")
    args = ["evaluate", "--system", f"{module}:factory", "--tasks", TASK, "--out", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 0
    assert "1 computed, 0 reused" in capsys.readouterr().out
    record = json.loads(next((tmp_path / "out" / "gradrel-v1" / "factory").glob(f"*/{TASK}.json")).read_text())
    assert record["system"]["description"]["factory"].endswith(":factory")
    assert record["scores"]["R@100"] < 0.3  # top 5 only (BM25 with 1000 results: 0.45)
    assert main(args) == 0
    assert "0 computed, 1 reused" in capsys.readouterr().out
    assert main(["evaluate", "--system", f"{module}:nope", "--tasks", TASK, "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.splitlines() == [f"gradrel evaluate: --system: {module} has no attribute 'nope'"]


def test_cli_model_prefixes_and_pooling_are_the_systems_own(mirror, tiny_encoder_dir, tmp_path, capsys):
    from pyterrier_gradrel.cli import main
    from pyterrier_gradrel.models import load_encoder

    base = ["evaluate", "--model", str(tiny_encoder_dir), "--tasks", TASK, "--out", str(tmp_path), "--quiet",
            "--threads", "1"]
    assert main([*base, "--query-prefix", "Q: ", "--doc-prefix", "", "--pooling", "cls"]) == 0
    assert "1 computed, 0 reused" in capsys.readouterr().out
    [result] = (tmp_path / "gradrel-v1" / tiny_encoder_dir.name).glob(f"*/{TASK}.json")
    # the folder is the fingerprint of the encoder as configured, not of the model's own settings
    configured = load_encoder(str(tiny_encoder_dir), precision="float32", query_prefix="Q: ", doc_prefix="",
                              pooling="cls")
    record = json.loads(result.read_text(encoding="utf-8"))
    assert record["system"]["fingerprint"] == benchmark.as_system(configured).fingerprint
    assert record["system"]["fingerprint"] != benchmark.as_system(str(tiny_encoder_dir)).fingerprint
    # the same options find the same results
    assert main([*base, "--query-prefix", "Q: ", "--doc-prefix", "", "--pooling", "cls"]) == 0
    assert "0 computed, 1 reused" in capsys.readouterr().out
    # they set how a --model encodes: with a baseline or a factory they are refused, before any work
    assert main(["evaluate", "--baseline", "BM25", "--pooling", "cls", "--tasks", TASK, "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("gradrel evaluate: --pooling set(s) how a --model encodes")


def test_evaluate_command_encodes_in_float32_unless_asked():
    from pyterrier_gradrel.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["evaluate", "--model", "m"]).precision == "float32"
    assert parser.parse_args(["evaluate", "--model", "m", "--precision", "auto"]).precision == "auto"


HELPER = '''import pyterrier as pt


class Cut(pt.Transformer):
    """Keeps the first {n} results of each query."""

    def transform(self, inp):
        return inp[inp["rank"] < {n}]
'''
FACTORY = '''from cut_helper import Cut

from pyterrier_gradrel.retrieval import bm25


def factory(dataset_id):
    return bm25(dataset_id) >> Cut()
'''


def test_editing_a_local_module_the_factory_imports_recomputes_the_result(mirror, tmp_path, monkeypatch):
    import sys

    from pyterrier_gradrel.benchmark._cli import load_factory

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])  # restored after
    (tmp_path / "my_factory.py").write_text(FACTORY)
    out = tmp_path / "out"

    def run(n: int):
        (tmp_path / "cut_helper.py").write_text(HELPER.replace("{n}", str(n)))
        for name in ("cut_helper", "my_factory"):
            sys.modules.pop(name, None)
        # mod:attr from the current directory
        return benchmark.evaluate(load_factory("my_factory:factory"), tasks=[TASK], out=out, verbose=False)

    first = run(100)
    assert first.computed == [TASK]
    assert set(_own(first.results[TASK].record["system"]["description"]["modules"])) == {"my_factory", "cut_helper"}
    assert run(100).reused == [TASK]  # unchanged code: reused
    edited = run(5)  # the class the factory returns changed, the factory itself did not
    assert edited.computed == [TASK] and edited.reused == []
    assert edited.system["fingerprint"] != first.system["fingerprint"]
    assert edited.results[TASK].scores["R@100"] < first.results[TASK].scores["R@100"] / 2


def test_a_factory_that_returns_no_transformer_is_named(mirror, tmp_path):
    for returned in ("BM25", None):
        def factory(dataset_id, value=returned):
            return value

        with pytest.raises(benchmark.SystemOutputError, match=r"expected a pt.Transformer") as info:
            benchmark.evaluate(factory, tasks=[TASK], out=tmp_path, name="broken", verbose=False)
        assert "'broken' returned " + type(returned).__name__ in str(info.value)
    assert not list(tmp_path.rglob("*.json"))


def _run_system(frame_of):
    import pyterrier as pt

    class Fixed(pt.Transformer):
        def transform(self, inp):
            return frame_of(inp)

    return lambda dataset_id: Fixed()


def test_runs_with_repeated_pairs_or_foreign_docnos_are_refused_naming_the_system(mirror, tmp_path):
    pool = benchmark.task_pool("gradrel/xquad-r/en/test")
    assert list(pool.columns) == ["docno", "text"] and len(pool) > 1000 and pool["docno"].is_unique
    assert benchmark.task_pool(TASK)["docno"].tolist() == pool["docno"].tolist()
    doc = pool["docno"].iloc[0]

    def repeated(inp):
        return pd.DataFrame({"qid": list(inp["qid"]) * 2, "docno": doc, "score": 1.0})

    def foreign(inp):
        return pd.DataFrame({"qid": inp["qid"], "docno": "de-a01-p0-s0", "score": 1.0})

    with pytest.raises(benchmark.SystemOutputError, match=r"system 'dup' on task 'xquad-r-en'.*duplicate \(qid, docno\)"):
        benchmark.evaluate(_run_system(repeated), tasks=[TASK], out=tmp_path, name="dup", verbose=False)
    with pytest.raises(benchmark.SystemOutputError, match=r"system 'far'.*not in the task's pool.*de-a01-p0-s0"):
        benchmark.evaluate(_run_system(foreign), tasks=[TASK], out=tmp_path, name="far", verbose=False)
    assert not list(tmp_path.rglob("*.json"))


def test_an_altered_suite_never_lands_in_or_is_reused_by_the_official_folder(mirror, tmp_path):
    import shutil

    official = benchmark.load_suite()
    altered_yaml = tmp_path / "gradrel-v1.yaml"
    altered_yaml.write_text(official.path.read_text().replace("depth: 100", "depth: 10")
                            .replace('"R@100", "RR@100"', '"R@10", "RR@10"'))
    altered = benchmark.load_suite(altered_yaml)
    assert altered.name == official.name and altered.hash != official.hash
    assert official.folder_name == "gradrel-v1" and altered.folder_name == f"gradrel-v1@{altered.hash[7:19]}"
    assert benchmark.load_suite(str(official.path)).folder_name == "gradrel-v1"  # the same file by path: official
    out = tmp_path / "out"
    shallow = benchmark.evaluate("BM25", altered_yaml, tasks=[TASK], out=out, verbose=False)
    assert shallow.folder.parent.parent.name == altered.folder_name
    assert not (out / "gradrel-v1").exists()
    full = benchmark.evaluate("BM25", tasks=[TASK], out=out, verbose=False)
    assert full.computed == [TASK]  # not reused from the altered suite
    assert full.results[TASK].scores["R@100"] > shallow.results[TASK].scores["R@10"] + 0.1
    # planted into the official folder, the altered result is refused, not reused
    shutil.copy(shallow.folder / f"{TASK}.json", full.folder / f"{TASK}.json")
    shutil.copy(shallow.folder / f"{TASK}.queries.csv.gz", full.folder / f"{TASK}.queries.csv.gz")
    with pytest.raises(benchmark.ResultError, match="another suite definition"):
        benchmark.evaluate("BM25", tasks=[TASK], out=out, verbose=False)


def test_check_on_an_unpinned_system_refuses_before_evaluating(tmp_path, capsys):
    from pyterrier_gradrel.cli import main

    module = tmp_path / "unpinned.py"
    module.write_text("CALLS = []\n\n\ndef factory(dataset_id):\n    CALLS.append(dataset_id)\n    raise AssertionError\n")
    assert main(["evaluate", "--system", f"{module}:factory", "--tasks", TASK, "--out", str(tmp_path / "out"),
                 "--check", "--quiet"]) == 1
    assert "'factory' has no pinned scores" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_fingerprint_option_enters_the_system_fingerprint():
    from pyterrier_gradrel.cli import build_parser

    args = build_parser().parse_args(["evaluate", "--system", "m:f", "--fingerprint", "weights-2024"])
    assert args.system_version == "weights-2024"
    assert build_parser().parse_args(["evaluate", "--system", "m:f", "--system-version", "v3"]).system_version == "v3"


def test_the_bm25_baselines_fingerprint_their_engine(monkeypatch, tiny_encoder_dir):
    """pyterrier-pisa's version and the resolved tokenizer enter the BM25 baselines' fingerprints, so results of
    another engine are never reused; the engine of the committed reference results keeps their fingerprint."""
    from pathlib import Path

    from pyterrier_gradrel.benchmark import _systems

    committed = Path(__file__).resolve().parents[1] / "experiments" / "results" / "benchmark" / "gradrel-v1"
    reference = dict(_systems.REFERENCE_BM25_ENGINE)
    # the constant is what the committed BM25-based results record
    for folder in ("BM25", "BM25_mE5", "RRF_BM25_mE5"):
        for path in (committed / folder).glob("*/*.json"):
            record = json.loads(path.read_text(encoding="utf-8"))
            assert record["versions"]["pyterrier-pisa"] == reference["pyterrier-pisa"], path
            assert f"tokenizer='{reference['tokenizer']}'" in record["system"]["pipeline"], path
    [bm25_folder] = (committed / "BM25").iterdir()

    def fingerprints(engine):
        monkeypatch.setattr(_systems, "bm25_engine", lambda: dict(engine))
        systems = [_systems.baseline_system(n, encoder=str(tiny_encoder_dir), threads=1)
                   for n in ("BM25", "BM25>>mE5", "RRF(BM25,mE5)")]
        assert all(s.description["bm25_engine"] == engine for s in systems)
        return [s.fingerprint for s in systems]

    kept = fingerprints(reference)
    assert kept[0][:16] == bm25_folder.name
    upgraded = fingerprints({**reference, "pyterrier-pisa": "0.5.0"})
    retokenized = fingerprints({**reference, "tokenizer": "subword-multilingual-e5-small-0123456789-lc"})
    for before, pisa, tokenizer in zip(kept, upgraded, retokenized, strict=True):
        assert len({before, pisa, tokenizer}) == 3


def _pisa_factory(tmp_path):
    from pyterrier_gradrel.benchmark._cli import load_factory

    (tmp_path / "pisa_factory.py").write_text(
        "import pyterrier_gradrel as gr\n\n\ndef factory(dataset_id):\n    return gr.bm25(dataset_id)\n")
    return load_factory(f"{tmp_path / 'pisa_factory.py'}:factory")


def test_a_factory_fingerprint_covers_the_engines_pyterrier_gradrel_imports_lazily(tmp_path, monkeypatch):
    """A factory on ``gr.bm25`` runs pyterrier-pisa (and the tokenizer's transformers), which pyterrier_gradrel
    imports inside functions behind lazy names: their versions enter the fingerprint, so an upgraded PISA is a new
    system folder, not the old results."""
    import importlib.metadata

    from pyterrier_gradrel.benchmark._systems import as_system

    factory = _pisa_factory(tmp_path)
    before = as_system(factory)
    packages = before.description["packages"]
    assert {"torch", "transformers", "tokenizers", "pyterrier-dr", "pyterrier-gradrel"} <= set(packages)
    assert any(d.replace("_", "-") == "pyterrier-pisa" for d in packages)
    assert not {"matplotlib", "pydantic", "statsmodels", "Sphinx"} & set(packages)  # report, config, docs only
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda dist: "0.5.0" if dist.replace("_", "-") == "pyterrier-pisa" else real(dist))
    assert as_system(factory).fingerprint != before.fingerprint


def test_pyterrier_gradrels_source_enters_a_factory_fingerprint_unless_it_is_a_release(tmp_path, monkeypatch):
    """In a checkout or editable install the version string does not name the code: the runtime modules' source
    hash enters every factory's fingerprint, so editing retrieval/_bm25.py recomputes; a release is its version."""
    from pyterrier_gradrel.benchmark import _systems

    runtime = dict(_systems._gradrel_runtime_files())
    assert {"pyterrier_gradrel", "pyterrier_gradrel.retrieval._bm25", "pyterrier_gradrel.retrieval._engine",
            "pyterrier_gradrel.models._encoder", "pyterrier_gradrel.benchmark._runner"} <= set(runtime)
    assert not [m for m in runtime if m.startswith(("pyterrier_gradrel.experiments", "pyterrier_gradrel.judge"))
                or m.endswith(("._cli", ".cli", "._sphinx"))]
    factory = _pisa_factory(tmp_path)
    edited = tmp_path / "_bm25.py"
    files = [(name, edited if name == "pyterrier_gradrel.retrieval._bm25" else path) for name, path in runtime.items()]
    monkeypatch.setattr(_systems, "_gradrel_runtime_files", lambda: files)

    def fingerprint(source: str, release: bool):
        edited.write_text(source)
        monkeypatch.setattr(_systems, "_gradrel_is_release", lambda: release)
        return _systems.as_system(factory)

    text = runtime["pyterrier_gradrel.retrieval._bm25"].read_text(encoding="utf-8")
    checkout = fingerprint(text, release=False)
    assert checkout.description["modules"][_systems.GRADREL_SOURCE]
    assert fingerprint(text, release=False).fingerprint == checkout.fingerprint
    assert fingerprint(text + "\n# b = 0.5\n", release=False).fingerprint != checkout.fingerprint
    release = fingerprint(text, release=True)
    assert _systems.GRADREL_SOURCE not in release.description["modules"]
    assert fingerprint(text + "\n# b = 0.5\n", release=True).fingerprint == release.fingerprint


def test_a_release_is_the_installed_distributions_own_files(monkeypatch):
    import importlib.metadata
    from pathlib import Path

    import pyterrier_gradrel
    from pyterrier_gradrel.benchmark import _systems

    running = Path(pyterrier_gradrel.__file__).resolve()
    real = importlib.metadata.version

    def installed(files, editable, version="0.1.0"):
        monkeypatch.setattr(_systems, "_distribution_files", lambda dist: (frozenset(files), editable))
        monkeypatch.setattr(importlib.metadata, "version",
                            lambda dist: version if dist == "pyterrier-gradrel" else real(dist))
        return _systems._gradrel_is_release()

    assert installed({running}, None)
    assert not installed({running}, running.parent.parent)  # an editable install (direct_url.json)
    assert not installed(set(), None)  # a checkout on sys.path shadows the installed files
    assert not installed({running}, None, version="0.1.1.dev3")
    assert not installed({running}, None, version="0.1.0+g1234abc")
