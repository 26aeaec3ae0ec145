"""Results are verified, not believed: `gradrel benchmark verify`, the leaderboard and the committed results.

Every corruption runs on a tmp copy of the committed results (BM25's 33 tasks); each must be refused with the
file named, and the leaderboard must stop (exit 1) instead of averaging over fewer tasks.
"""
from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _benchmark_results import query_count, write_result

from pyterrier_gradrel.benchmark import ResultError, load_suite, verify_folder
from pyterrier_gradrel.benchmark._leaderboard import leaderboard
from pyterrier_gradrel.benchmark._results import per_query_sha256, reference_results
from pyterrier_gradrel.cli import main

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "experiments" / "results" / "benchmark"
BM25 = "gradrel-v1/BM25/b807f900c4e0d536"
TASK = "xquad-r-de"


@pytest.fixture
def copy(tmp_path, mirror) -> Path:
    """A results root holding a copy of the committed BM25 results."""
    root = tmp_path / "received"
    shutil.copytree(COMMITTED / BM25, root / BM25)
    return root


def _json(root: Path, task: str = TASK) -> Path:
    return root / BM25 / f"{task}.json"


def _edit(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record, indent=2))


def _refused(root: Path, fragment: str, file: Path, capsys) -> None:
    """`benchmark verify` and `leaderboard` both exit 1 naming ``file``; the leaderboard writes nothing."""
    assert main(["benchmark", "verify", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"REFUSED {file}" in out and fragment in out, out
    with pytest.raises(ResultError, match=re.escape(fragment)):
        leaderboard(results=root, reference=False, n_boot=10, figure=False)
    assert main(["leaderboard", "--results", str(root), "--no-reference", "--bootstrap", "10", "--no-figure"]) == 1
    assert not list(root.rglob("leaderboard*"))


def test_the_committed_results_verify(capsys):
    assert main(["benchmark", "verify", str(COMMITTED)]) == 0
    out = capsys.readouterr().out
    results = list((COMMITTED / "gradrel-v1").glob("*/*/*.json"))
    systems = {p.parent for p in results}
    assert len(results) == 33 * len(systems) >= 33 * 6
    assert f"{len(results)} results of {len(systems)} systems verified" in out and "REFUSED" not in out


def test_a_clean_copy_verifies(copy):
    report = verify_folder(copy, load_suite())
    assert report.ok and len(report.verified) == 33 and report.errors == []


@pytest.mark.parametrize("value", [float("nan"), None, 1.5, "0.7"])
def test_a_score_that_is_not_a_finite_unit_number_is_refused(copy, capsys, value):
    _edit(_json(copy), lambda r: r["scores"].__setitem__("nDCG@10", value))
    _refused(copy, "finite numbers in [0, 1]", _json(copy), capsys)


def test_a_missing_score_is_refused(copy, capsys):
    _edit(_json(copy), lambda r: r["scores"].pop("R(rel=2)@100"))
    _refused(copy, "scores must have exactly the measures", _json(copy), capsys)


def test_an_edited_main_score_is_refused(copy, capsys):
    _edit(_json(copy), lambda r: r["scores"].__setitem__("nDCG@10", 0.99))
    _refused(copy, "stored nDCG@10 0.99 but its per-query file averages to", _json(copy), capsys)


def _rewrite_per_query(path: Path, change, *, rehash: bool) -> None:
    frame = pd.read_csv(path, dtype={"qid": str, "article": str}, keep_default_na=False)
    frame = change(frame)
    with gzip.open(path, "wb") as handle:
        handle.write(frame.to_csv(index=False, float_format="%.6g").encode())
    if rehash:
        _edit(path.with_name(path.name.replace(".queries.csv.gz", ".json")),
              lambda r: r["per_query"].__setitem__("sha256", per_query_sha256(path)))


def test_edited_per_query_values_are_refused(copy, capsys):
    queries = copy / BM25 / f"{TASK}.queries.csv.gz"
    _rewrite_per_query(queries, lambda f: f.assign(**{"nDCG@10": 1.0}), rehash=False)
    _refused(copy, "the per-query scores were changed", queries, capsys)
    # with the hash forged too, the stored means no longer match
    _rewrite_per_query(queries, lambda f: f, rehash=True)
    _refused(copy, "but its per-query file averages to", _json(copy), capsys)


def test_a_per_query_file_that_misses_a_query_is_refused(copy, capsys):
    queries = copy / BM25 / f"{TASK}.queries.csv.gz"
    _rewrite_per_query(queries, lambda f: f.iloc[1:], rehash=True)
    _refused(copy, "1 missing", queries, capsys)


def test_a_missing_per_query_file_is_refused(copy, capsys):
    queries = copy / BM25 / f"{TASK}.queries.csv.gz"
    queries.unlink()
    _refused(copy, "missing (the per-query scores of", queries, capsys)


def test_a_missing_result_json_is_refused_by_verify(copy, capsys):
    _json(copy).unlink()
    assert main(["benchmark", "verify", str(copy)]) == 1
    assert "a per-query file without its result JSON" in capsys.readouterr().out


def test_the_leftovers_of_an_interrupted_atomic_write_are_notes_not_refusals(copy, capsys):
    """A killed write leaves ``.<name>.<pid>@<host>.<random>.tmp/<name>`` (and a moved-aside ``.old-``): the
    folder still verifies, and verify names them as notes."""
    folder = copy / BM25
    tmp = folder / f".{TASK}.queries.csv.gz.4242@somehost.k2j3h4g5.tmp"
    tmp.mkdir()
    shutil.copy(folder / f"{TASK}.queries.csv.gz", tmp / f"{TASK}.queries.csv.gz")
    (folder / f".{TASK}.json.old-4242@somehost").write_text("{}")
    legacy = folder / f".{TASK}.json.ab12cd34.tmp"
    legacy.mkdir()
    (legacy / f"{TASK}.json").write_text("{}")
    report = verify_folder(copy, load_suite())
    assert report.ok and not report.errors and not report.stray
    assert report.leftovers == sorted([tmp / f"{TASK}.queries.csv.gz", folder / f".{TASK}.json.old-4242@somehost",
                                       legacy / f"{TASK}.json"])
    assert main(["benchmark", "verify", str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"note: {tmp / f'{TASK}.queries.csv.gz'} is left over from an interrupted write" in out
    assert ", 0 refused" in out
    # a per-query file without its JSON outside any temporary is still refused
    shutil.copy(folder / f"{TASK}.queries.csv.gz", folder / "orphan.queries.csv.gz")
    assert "a per-query file without its result JSON" in " ".join(verify_folder(copy, load_suite()).errors)


@pytest.mark.parametrize(("key", "inner", "value"), [("system", "name", None), ("system", "fingerprint", 7),
                                                     ("task", "name", ["x"]), ("per_query", "file", None),
                                                     ("per_query", "sha256", {"a": 1})])
def test_a_result_whose_names_are_not_strings_is_refused(copy, capsys, key, inner, value):
    def change(record):
        record[key][inner] = value

    _edit(_json(copy), change)
    _refused(copy, f"{key}.{inner} must be a non-empty string, got {value!r}", _json(copy), capsys)


def test_a_result_copied_under_another_system_is_refused(copy, capsys):
    fake = copy / "gradrel-v1" / "Cheater" / "b807f900c4e0d536"
    shutil.copytree(copy / BM25, fake)
    for path in fake.glob("*.json"):
        _edit(path, lambda r: r["system"].__setitem__("name", "Cheater"))
    # renamed consistently, the copy is a plausible result (one system), noted when the original is beside it
    report = verify_folder(copy, load_suite())
    assert report.ok and report.copies == [f"{fake / 'afriqa-bem.json'}: its per-query scores are identical to "
                                           f"{copy / BM25 / 'afriqa-bem.json'}"] + report.copies[1:]
    assert len(report.copies) == 33
    shutil.rmtree(copy / "gradrel-v1" / "BM25")
    assert verify_folder(copy, load_suite()).ok
    # scores raised to 0.999 are refused
    _edit(fake / f"{TASK}.json", lambda r: r["scores"].update({k: 0.999 for k in r["scores"]}))
    _refused(copy, "but its per-query file averages to", fake / f"{TASK}.json", capsys)


def test_a_result_in_another_systems_folder_is_refused(copy, capsys):
    _edit(_json(copy), lambda r: r["system"].__setitem__("name", "Cheater"))
    _refused(copy, "belongs in Cheater/b807f900c4e0d536/", _json(copy), capsys)


def test_a_result_of_an_altered_suite_is_refused(copy, capsys):
    _edit(_json(copy), lambda r: r["suite"].__setitem__("hash", "sha256:" + "1" * 64))
    _refused(copy, "another suite definition", _json(copy), capsys)


def test_verify_names_a_missing_folder(tmp_path, capsys):
    assert main(["benchmark", "verify", str(tmp_path / "nope")]) == 1
    assert not (tmp_path / "nope").exists()


def test_leaderboard_on_a_missing_results_folder_is_an_error_and_creates_nothing(tmp_path, capsys):
    assert main(["leaderboard", "--results", str(tmp_path / "nonexistent")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nonexistent").exists()


def test_the_reference_results_are_the_committed_ones():
    assert reference_results() == COMMITTED


def test_a_new_system_on_two_tasks_is_ranked_with_the_reference_on_those_tasks(tmp_path, mirror, capsys):
    suite = load_suite()
    mine = tmp_path / "mine"
    tasks = ["xquad-r-de", "afriqa-hau"]
    for name in tasks:
        write_result(mine, suite, suite.task(name), "my-encoder", np.full(query_count(suite.task(name)), 0.9))
    before = sorted(p.relative_to(COMMITTED) for p in COMMITTED.rglob("*"))
    assert main(["leaderboard", "--results", str(mine), "--bootstrap", "200", "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "ranked on the 2 of 33 selected tasks that every system has: xquad-r-de, afriqa-hau" in out
    board = pd.read_csv(mine / "gradrel-v1" / "leaderboard.csv")
    reference = pd.read_csv(COMMITTED / "gradrel-v1" / "leaderboard.csv")
    assert len(board) == len(reference) + 1
    assert board.loc[0, "system"] == "my-encoder" and board.loc[0, "rank_interval"] == "1"
    assert set(board["system"]) >= {"BM25", "mE5-zero-shot", "mE5-mixture-tau3"}
    tasks_csv = pd.read_csv(mine / "gradrel-v1" / "leaderboard_tasks.csv")
    assert list(tasks_csv.columns) == ["system", *tasks]
    bm25 = json.loads((COMMITTED / BM25 / "xquad-r-de.json").read_text())["scores"]["nDCG@10"]
    assert tasks_csv.set_index("system").at["BM25", "xquad-r-de"] == pytest.approx(bm25, abs=1e-6)
    # read in place: nothing copied into the user's folder, nothing written into the reference
    assert sorted(p.name for p in (mine / "gradrel-v1").iterdir()) == [
        "leaderboard.csv", "leaderboard.md", "leaderboard_tasks.csv", "my-encoder"]
    assert sorted(p.relative_to(COMMITTED) for p in COMMITTED.rglob("*")) == before


def _body(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("Generated by")]


def test_the_committed_leaderboard_is_what_gradrel_leaderboard_computes(tmp_path, mirror):
    leaderboard(results=COMMITTED, reference=False, out=tmp_path)
    committed = COMMITTED / "gradrel-v1"
    assert (tmp_path / "leaderboard.csv").read_text() == (committed / "leaderboard.csv").read_text()
    assert (tmp_path / "leaderboard_tasks.csv").read_text() == (committed / "leaderboard_tasks.csv").read_text()
    assert _body(tmp_path / "leaderboard.md") == _body(committed / "leaderboard.md")


def test_the_readme_leaderboard_rows_are_the_committed_ones():
    """The README shows an excerpt of the committed leaderboard: each row it shows is that rank's row, to 4 digits."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## The benchmark in three commands")
    section = text[start:text.index("\n## ", start + 1)]
    lines = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    board = pd.read_csv(COMMITTED / "gradrel-v1" / "leaderboard.csv", keep_default_na=False).set_index("rank")
    columns = ["overall", "monolingual", "cross-lingual", "multi", "afriqa"]
    assert len(lines) >= 5
    for line in lines:
        rank, interval, system, *scores = [cell.strip() for cell in line.strip("|").split("|")]
        row = board.loc[int(rank)]
        assert (interval, system.split(" (")[0]) == (row["rank_interval"], row["system"]), line
        assert scores == [f"{row[c]:.4f}" for c in columns], line


def test_a_factory_result_of_the_earlier_fingerprint_scheme_is_named_not_reused(tmp_path, mirror, capsys):
    """The example factories' committed results carry fingerprints of the earlier scheme (the factory function's
    source only). Evaluating the factory again computes under today's fingerprint into a new folder, and evaluate,
    verify and the leaderboard say which folder is the earlier scheme's, rather than showing two unexplained rows."""
    from pyterrier_gradrel.benchmark._cli import load_factory
    from pyterrier_gradrel.benchmark._systems import earlier_fingerprint, factory_system

    legacy = "gradrel-v1/BM25-script/a3ea0c52a58a27f4"
    root = tmp_path / "root"
    shutil.copytree(COMMITTED / legacy, root / legacy)
    before = {p.name: p.read_bytes() for p in (root / legacy).iterdir()}
    factory = load_factory(f"{REPO / 'examples' / 'systems' / 'bm25_script.py'}:factory")
    assert earlier_fingerprint(factory)[:16] == "a3ea0c52a58a27f4"  # the factory function is unchanged
    current = factory_system(factory).fingerprint[:16]
    assert current != "a3ea0c52a58a27f4"

    assert main(["evaluate", "--system", f"{REPO / 'examples' / 'systems' / 'bm25_script.py'}:factory", "--name",
                 "BM25-script", "--tasks", "xquad-r-en", "--out", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 computed, 0 reused" in out and f"BM25-script/{current}" in out
    for folder in (root / legacy, COMMITTED / legacy):  # the copy in --out and the reference results
        assert f"note: {folder.resolve()}: 33 results of this factory's function under the earlier factory " \
               "fingerprint scheme (fingerprint_from: source" in out
    assert {p.name: p.read_bytes() for p in (root / legacy).iterdir()} == before

    assert main(["benchmark", "verify", str(root)]) == 0
    out = capsys.readouterr().out
    # which of the two is named first follows the folders' order: today's fingerprint covers pyterrier_gradrel's
    # source in a checkout, so it sorts before or after the earlier one's
    ours = root / "gradrel-v1" / "BM25-script" / current / "xquad-r-en.json"
    assert any(f"{a}: its per-query scores are identical to {b} (the same system name under another fingerprint)"
               in out for a, b in ((ours, root / legacy / "xquad-r-en.json"), (root / legacy / "xquad-r-en.json", ours)))
    assert "copied?" not in out
    assert "note: BM25-script (a3ea0c52a58a27f4): a fingerprint of the earlier factory fingerprint scheme" in out

    board = leaderboard(results=root, reference=False, tasks=["xquad-r-en"], n_boot=20, figure=False)
    assert sorted(board.table["system"]) == sorted(["BM25-script@a3ea0c52", f"BM25-script@{current[:8]}"])
    assert board.same_factory == {"BM25-script@a3ea0c52": [f"BM25-script@{current[:8]}"]}
    md = (root / "gradrel-v1" / "leaderboard.md").read_text()
    assert ("- `BM25-script@a3ea0c52`: a fingerprint of the earlier factory fingerprint scheme" in md
            and f"BM25-script@{current[:8]}: the same name and factory (bm25_script:factory) under the current "
                "scheme" in md)
