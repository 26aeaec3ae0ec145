"""``gradrel judge | build | agreement`` end to end (loopback server, tiny random LM, real XQuAD-R slice)."""
from __future__ import annotations

import json

import pandas as pd
import pyterrier as pt
import pytest
from judge_server import JudgeServer, overlap_rule
from test_judge_build import DOCS, TOPICS, Overlap
from test_judge_hf import build_tiny_causal_lm

from pyterrier_gradrel.cli import main

PAIRS = pd.DataFrame({"qid": ["q1", "q1", "q2"], "query": ["capital of france", "capital of france", "who wrote faust"],
                      "docno": ["d0", "d3", "d2"],
                      "text": ["Paris is the capital of France.", "Bananas are yellow.", "Goethe wrote Faust."]})


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("cli-tiny-lm"))


def _read_jsonl(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_judge_command_with_openai_backend(tmp_path, monkeypatch, capsys):
    pairs = tmp_path / "pairs.tsv"
    PAIRS.to_csv(pairs, sep="\t", index=False)
    out = tmp_path / "out.jsonl"
    monkeypatch.setenv("GRADREL_JUDGE_API_KEY", "sk-cli-secret")
    with JudgeServer(api_key="sk-cli-secret") as server:
        rc = main(["judge", "--backend", "openai", "--model", "m", "--base-url", server.base_url, "--input", str(pairs),
                   "--output", str(out), "--cache", str(tmp_path / "cache.jsonl")])
    assert rc == 0
    rows = _read_jsonl(out)
    assert [r["grade"] for r in rows] == [overlap_rule(q, t) for q, t in zip(PAIRS["query"], PAIRS["text"], strict=True)]
    assert [(r["qid"], r["docno"]) for r in rows] == list(zip(PAIRS["qid"], PAIRS["docno"], strict=True))
    assert all(abs(sum(r[f"p_{g}"] for g in range(4)) - 1) < 1e-9 for r in rows)
    assert "judged 3 pairs (0 without a grade)" in capsys.readouterr().err
    assert len(_read_jsonl(tmp_path / "cache.jsonl")) == 3


def test_judge_command_writes_pairs_without_a_grade_as_null(tmp_path, capsys):
    """Every answer unparseable: the output is still written, one line per pair, grade null with the reason."""
    pairs = tmp_path / "pairs.tsv"
    PAIRS.to_csv(pairs, sep="\t", index=False)
    out = tmp_path / "out.jsonl"
    with JudgeServer() as server:
        server.script = [("text", "no idea")] * 20
        rc = main(["judge", "--backend", "openai", "--model", "m", "--base-url", server.base_url, "--input", str(pairs),
                   "--output", str(out), "--cache", str(tmp_path / "cache.jsonl"), "--max-workers", "1"])
    assert rc == 0
    rows = _read_jsonl(out)
    assert [(r["qid"], r["docno"]) for r in rows] == list(zip(PAIRS["qid"], PAIRS["docno"], strict=True))
    assert all(r["grade"] is None and r["judge_raw"] == "no idea" for r in rows)
    assert all(r["judge_error"].startswith("unparseable answer") for r in rows)
    assert all(r[f"p_{g}"] is None for r in rows for g in range(4))
    err = capsys.readouterr().err
    assert "judged 3 pairs (3 without a grade)" in err and "--retry-missing" in err
    assert [r["grade"] for r in _read_jsonl(tmp_path / "cache.jsonl")] == [None] * 3


def test_no_logprobs_option_does_not_ask_for_logprobs(tmp_path):
    """--no-logprobs (the way around a server that sends malformed ones): grades without p_0..p_3."""
    pairs = tmp_path / "pairs.jsonl"
    PAIRS.to_json(pairs, orient="records", lines=True)
    out = tmp_path / "out.jsonl"
    with JudgeServer() as server:
        rc = main(["judge", "--backend", "openai", "--model", "m", "--base-url", server.base_url, "--input", str(pairs),
                   "--output", str(out), "--no-cache", "--no-logprobs"])
        assert all("logprobs" not in r["payload"] for r in server.requests)
    assert rc == 0
    rows = _read_jsonl(out)
    assert [r["grade"] for r in rows] == [overlap_rule(q, t) for q, t in zip(PAIRS["query"], PAIRS["text"], strict=True)]
    assert all(r["p_0"] is None and r["judge_error"] is None for r in rows)


def test_sampling_options_default_to_the_backend_defaults_and_refuse_hf(tmp_path, capsys):
    """Without --max-tokens/--temperature/--seed the judge keeps the bare model id (existing caches stay valid); with
    --max-tokens alone only it enters the id; the hf backend, which generates nothing, refuses them."""
    from pyterrier_gradrel.cli import build_parser
    from pyterrier_gradrel.judge._cli import make_backend

    base = ["judge", "--input", "x.tsv", "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"]
    parser = build_parser()
    assert make_backend(parser.parse_args(base)).model_id == "openai:m"
    assert make_backend(parser.parse_args([*base, "--max-tokens", "512"])).model_id == "openai:m[max_tokens=512]"
    assert make_backend(parser.parse_args([*base, "--seed", "3"])).model_id == "openai:m"  # greedy: seed unused
    pairs = tmp_path / "pairs.tsv"
    PAIRS.to_csv(pairs, sep="\t", index=False)
    rc = main(["judge", "--backend", "hf", "--model", "x", "--input", str(pairs), "--max-tokens", "64",
               "--temperature", "0.7"])
    assert rc == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "gradrel judge: --max-tokens, --temperature: only for --backend openai (the hf backend reads the grade "
        "probabilities from one forward pass and generates no answer)")
    rc = main([*base[:2], str(pairs), *base[3:], "--temperature", "3"])
    assert rc == 1 and "temperature must be in [0, 2], got 3.0" in capsys.readouterr().err


def test_build_command_fails_without_grades_and_leaves_nothing(tmp_path, monkeypatch):
    """`gradrel build` against an endpoint that never gives a grade: a clear error, exit status 1, no folder."""
    import pyterrier_gradrel.retrieval as retrieval

    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    ref_name = _reference_collection(tmp_path)
    monkeypatch.setattr(retrieval, "bm25", lambda *a, **k: Overlap(DOCS))
    monkeypatch.setattr(retrieval, "dense", lambda *a, **k: Overlap(DOCS, salt=5))
    folder = tmp_path / "out" / "judged"
    with JudgeServer() as server:
        server.script = [("text", "relevant")] * 100
        with pytest.raises(SystemExit) as info:
            main(["build", "judged", "--dataset", f"gradrel/local/{ref_name}/test", "--depth", "1",
                  "--backend", "openai", "--model", "m", "--base-url", server.base_url,
                  "--cache", str(tmp_path / "cache.jsonl"), "--folder", str(folder)])
    message = str(info.value.code)
    assert message.startswith("gradrel build: the judge graded no pair of split(s) ['test']")
    assert "pairs pooled for 3 queries, 0 graded" in message and "--retry-missing" in message
    assert not folder.exists() and list(folder.parent.iterdir()) == []


def test_judge_command_with_transformers_backend(tmp_path, tiny_lm, capsys):
    pairs = tmp_path / "pairs.jsonl"
    PAIRS.to_json(pairs, orient="records", lines=True)
    rc = main(["judge", "--backend", "hf", "--model", str(tiny_lm), "--input", str(pairs), "--no-cache"])
    assert rc == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(r["grade"] in (0, 1, 2, 3) for r in rows)


def test_judge_command_rejects_bad_input(tmp_path):
    bad = tmp_path / "pairs.csv"
    bad.write_text("qid,query\n")
    with pytest.raises(SystemExit, match=r"\.tsv or \.jsonl"):
        main(["judge", "--backend", "hf", "--model", "x", "--input", str(bad)])
    nocols = tmp_path / "pairs.tsv"
    nocols.write_text("qid\tquery\nq\tx\n")
    with pytest.raises(SystemExit, match="lacks columns"):
        main(["judge", "--backend", "hf", "--model", "x", "--input", str(nocols)])


def _reference_collection(tmp_path, *, qrels=None, grades=None):
    """A registered local collection with known grades (q2 is German, the others English)."""
    from pyterrier_gradrel.datasets import register_local

    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "docs.jsonl").write_text("".join(json.dumps({"doc_id": d["docno"], "text": d["text"]}) + "\n" for d in DOCS))
    (ref / "queries.jsonl").write_text("".join(
        json.dumps({"query_id": q, "text": t, "lang": "de" if q == "q2" else "en"}) + "\n"
        for q, t in zip(TOPICS["qid"], TOPICS["query"], strict=True)))
    for split, text in (qrels or {"test": "q1 0 d0 3\nq1 0 d4 1\nq2 0 d2 3\nq3 0 d1 2\n"}).items():
        (ref / f"qrels.{split}.txt").write_text(text)
    if grades is not None:
        (ref / "manifest.json").write_text(json.dumps({"grades": grades, "default_rel": 2}))
    name = f"ref-{tmp_path.name}"
    register_local(name, ref)
    return name


def test_build_several_splits_and_agreement_over_them(tmp_path, monkeypatch, capsys):
    from pyterrier_gradrel.judge import LLMJudge, OpenAIChatBackend, build_collection

    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    ref_name = _reference_collection(tmp_path, qrels={"train": "q1 0 d0 3\nq2 0 d2 3\n", "test": "q3 0 d1 2\n"})
    name = f"judged-splits-{tmp_path.name}"
    with JudgeServer() as server:
        judge = LLMJudge(OpenAIChatBackend(model="m", base_url=server.base_url))
        with pytest.raises(ValueError, match="splits must be"):
            build_collection(name, judge=judge, dataset=f"gradrel/local/{ref_name}", splits=["valid"],
                             retrievers=[Overlap(DOCS)])
        folder = build_collection(name, judge=judge, dataset=f"gradrel/local/{ref_name}/test",
                                  splits=["train", "test"], retrievers={"lex": Overlap(DOCS)}, depth=2)
    build = json.loads((folder / "build.json").read_text())
    assert build["source"]["datasets"] == {"train": f"gradrel/local/{ref_name}/train",
                                           "test": f"gradrel/local/{ref_name}/test"}
    assert build["counts"]["splits"]["train"]["queries"] == 2 and build["counts"]["splits"]["test"]["queries"] == 1
    train = pt.get_dataset(f"irds:gradrel/local/{name}/train")
    assert sorted(train.get_topics("text")["qid"]) == ["q1", "q2"] and set(train.get_qrels()["qid"]) == {"q1", "q2"}
    assert set(pt.get_dataset(f"irds:gradrel/local/{name}/test").get_qrels()["qid"]) == {"q3"}
    capsys.readouterr()
    assert main(["agreement", name, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["groups"][-1]["n"] == 6 and [g["group"] for g in printed["groups"]] == ["de", "en", "all"]


def test_agreement_command_against_a_reference_collection(tmp_path, monkeypatch, capsys):
    """A reference local collection with known grades; the judged collection built from it; the command's
    numbers equal :func:`agreement` on the same frames."""
    from pyterrier_gradrel.judge import LLMJudge, OpenAIChatBackend, agreement, build_collection

    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    ref_name = _reference_collection(tmp_path)
    with JudgeServer() as server:
        judge = LLMJudge(OpenAIChatBackend(model="m", base_url=server.base_url))
        folder = build_collection(f"judged-{tmp_path.name}", judge=judge, dataset=f"gradrel/local/{ref_name}/test",
                                  retrievers={"lex": Overlap(DOCS)}, depth=3)
    assert json.loads((folder / "build.json").read_text())["source"]["dataset"] == f"gradrel/local/{ref_name}/test"
    rc = main(["agreement", str(folder), "--json", "--output", str(tmp_path / "report.md")])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    judged = pd.read_json(folder / "judgements.jsonl", orient="records", lines=True, dtype={"qid": str})
    judged["grade"] = judged["grade"].astype("Int64")
    judged["lang"] = judged["qid"].map({"q1": "en", "q2": "de", "q3": "en"})
    qrels = pt.get_dataset(f"irds:gradrel/local/{ref_name}/test").get_qrels()
    expected = agreement(judged, qrels, by="lang")
    expected_rows = expected.to_frame().to_dict("records")
    assert len(printed["groups"]) == len(expected_rows)
    for got, want in zip(printed["groups"], expected_rows, strict=True):
        assert got["group"] == want["group"] and got["n"] == want["n"] and got["missing"] == want["missing"]
        for key in ("exact", "kappa_quadratic", "kappa_linear"):
            assert got[key] == pytest.approx(want[key], abs=1e-12)
    assert [g["group"] for g in printed["groups"]] == ["de", "en", "all"]
    assert printed["confusion"] == expected.confusion_frame().to_numpy().tolist()
    assert sum(map(sum, printed["confusion"])) == 9
    assert "kappa (quadratic)" in (tmp_path / "report.md").read_text()


def test_agreement_command_on_a_reference_with_its_own_scale(tmp_path, monkeypatch, capsys):
    """A reference collection graded 0..4 (its manifest's scale): the command compares over 0..4, says that the
    scales differ, and its numbers are agreement()'s on that scale (it stopped with 'grades must be in
    [0, 1, 2, 3]; reference has [4]')."""
    from pyterrier_gradrel.judge import agreement

    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    ref_name = _reference_collection(tmp_path, qrels={"test": "q1 0 d0 4\nq1 0 d4 1\nq2 0 d2 3\nq3 0 d1 2\n"},
                                     grades={str(g): f"grade {g}" for g in range(5)})
    judgements = tmp_path / "judgements.jsonl"
    rows = [("q1", "d0", 3), ("q1", "d4", 1), ("q2", "d2", 3), ("q3", "d1", 1), ("q3", "d3", 0)]
    judgements.write_text("".join(json.dumps({"qid": q, "docno": d, "grade": g}) + "\n" for q, d, g in rows))
    rc = main(["agreement", str(judgements), "--dataset", f"gradrel/local/{ref_name}/test", "--by", "none",
               "--json", "--output", str(tmp_path / "report.md")])
    assert rc == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["grades"] == [0, 1, 2, 3, 4] and len(printed["confusion"]) == 5
    assert "reference grades are on the scale [0, 1, 2, 3, 4]" in captured.err
    judged = pd.DataFrame(rows, columns=["qid", "docno", "grade"]).astype({"grade": "Int64"})
    qrels = pt.get_dataset(f"irds:gradrel/local/{ref_name}/test").get_qrels()
    expected = agreement(judged, qrels, by=None, grades=range(5))
    assert printed["confusion"] == expected.confusion_frame().to_numpy().tolist()
    assert printed["confusion"][4][3] == 1 and printed["groups"][-1]["n"] == 5
    assert printed["groups"][-1]["kappa_quadratic"] == pytest.approx(expected.overall.kappa_quadratic, abs=1e-12)
    assert "[0, 1, 2, 3, 4]" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_build_command_on_an_xquad_r_slice_loads_and_evaluates(tmp_path, tiny_lm, mirror, capsys):
    """The acceptance run at test scale: BM25 + multilingual-e5-small pool over real XQuAD-R (en test, 2 queries,
    depth 3), graded by the transformers backend (a tiny RANDOM model: the grades are meaningless), written as a
    local collection that loads through pt.get_dataset and evaluates with pt.Experiment."""
    name = f"xquad-en-slice-{tmp_path.name}"
    folder = tmp_path / name
    rc = main(["build", name, "--dataset", "gradrel/xquad-r/en/test", "--max-queries", "2", "--depth", "3",
               "--backend", "hf", "--model", str(tiny_lm), "--cache", str(tmp_path / "cache.jsonl"),
               "--folder", str(folder)])
    assert rc == 0
    build = json.loads((folder / "build.json").read_text())
    counts = build["counts"]
    assert counts["queries"] == 2 and counts["missing"] == 0 and counts["docs"] > 1000
    assert 3 <= counts["splits"]["test"]["pooled"] <= 12  # 2 queries x (3 BM25 + 3 dense), deduplicated
    assert sum(counts["per_grade"].values()) == counts["splits"]["test"]["pooled"]
    assert build["judge"]["backend"] == "TransformersBackend" and build["judge"]["model"].startswith("hf:")
    ds = pt.get_dataset(f"irds:gradrel/local/{name}/test")
    topics, qrels = ds.get_topics("text"), ds.get_qrels()
    assert len(topics) == 2 and len(qrels) == counts["splits"]["test"]["pooled"]
    # the judged pool covers each query's top-3 BM25 results, so BM25's top 3 are all judged
    from pyterrier_gradrel.retrieval import bm25

    run = bm25(f"gradrel/local/{name}/test", num_results=3)(topics)
    assert set(zip(run["qid"], run["docno"], strict=True)) <= set(zip(qrels["qid"], qrels["docno"], strict=True))
    res = pt.Experiment([bm25(f"gradrel/local/{name}/test")], topics, qrels,
                        [pt.measures.nDCG @ 10, pt.measures.R(rel=2) @ 100], names=["BM25"])
    assert 0 <= float(res["nDCG@10"].iloc[0]) <= 1
    capsys.readouterr()
    rc = main(["agreement", str(folder), "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "gradrel/xquad-r/en/test" and report["groups"][-1]["n"] == counts["splits"]["test"]["pooled"]


@pytest.mark.parametrize("command", ["judge", "agreement"])
def test_an_output_folder_is_refused_before_any_work_and_kept(tmp_path, capsys, command):
    """``--output DIR`` by mistake: one line, exit 1, the folder and its files untouched (a file never replaces it)."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.md").write_text("mine")
    pairs = tmp_path / "pairs.tsv"
    PAIRS.to_csv(pairs, sep="\t", index=False)
    argv = (["judge", "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--input",
             str(pairs), "--no-cache"] if command == "judge" else ["agreement", str(tmp_path / "none.jsonl")])
    assert main([*argv, "--output", str(folder)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"gradrel {command}: --output {folder} is a folder: give the path of a file to write"]
    assert [p.name for p in folder.iterdir()] == ["keep.md"] and (folder / "keep.md").read_text() == "mine"


def test_agreement_scale_of_another_ir_datasets_collection(monkeypatch):
    """A reference that is not a gradrel/ dataset: its scale is its qrels_defs() (as ir_datasets declares it) with
    the grades its qrels use; a 0..3 collection whose qrels happen to use no grade 3 is still on the judge's scale."""
    import ir_datasets
    import pandas as pd

    from pyterrier_gradrel.judge._cli import _scales

    class Declared:
        def __init__(self, defs):
            self.defs = defs

        def qrels_defs(self):
            return self.defs

    defs = {"other/fourway": {0: "no", 1: "a", 2: "b", 3: "c", 4: "d"}, "other/usual": {0: "", 1: "", 2: "", 3: ""},
            "other/binary": {0: "no", 1: "yes"}}
    monkeypatch.setattr(ir_datasets, "load", lambda d: Declared(defs[d]) if d in defs else Declared(None))
    qrels = pd.DataFrame({"qid": ["q", "q"], "docno": ["a", "b"], "label": [1, 2]})
    assert _scales(["other/fourway"], qrels) == ((0, 1, 2, 3, 4), (0, 1, 2, 3, 4), True)
    assert _scales(["other/usual"], qrels) == ((0, 1, 2, 3), (0, 1, 2, 3), True)
    assert _scales(["other/undeclared"], qrels) == ((0, 1, 2, 3), (0, 1, 2), False)  # only what its qrels use
    binary = pd.DataFrame({"qid": ["q"], "docno": ["a"], "label": [1]})
    assert _scales(["other/binary"], binary) == ((0, 1, 2, 3), (0, 1), True)  # declared: the note names it
