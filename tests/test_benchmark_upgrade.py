"""`gradrel benchmark upgrade`: earlier result schemas brought to the current one, every value unchanged.

The fixture is a real schema-2 result (BM25 on afriqa-hau, as committed before measures were named by
`_evaluation.label`): its measures are spelled `nDCG@10(rel=2)`, `R(rel=1)@100`, `RR(rel=1)@100`.
"""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pyterrier_gradrel.benchmark import load_suite, verify_folder
from pyterrier_gradrel.benchmark._evaluate import measure_names
from pyterrier_gradrel.benchmark._results import SCHEMA, per_query_sha256
from pyterrier_gradrel.benchmark._verify import legacy_names, upgrade_folder
from pyterrier_gradrel.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "benchmark-schema2"
RESULT = Path("gradrel-v1/BM25/b807f900c4e0d536/afriqa-hau.json")
COMMITTED = REPO / "experiments" / "results" / "benchmark"
OLD_NAMES = ["nDCG@10", "nDCG@10(rel=1)", "R(rel=1)@100", "RR(rel=1)@100", "nDCG@10(rel=2)", "R(rel=2)@100",
             "RR(rel=2)@100", "nDCG@10(rel=3)", "R(rel=3)@100", "RR(rel=3)@100"]
NEW_NAMES = ["nDCG@10", "nDCG(rel=1)@10", "R@100", "RR@100", "nDCG(rel=2)@10", "R(rel=2)@100", "RR(rel=2)@100",
             "nDCG(rel=3)@10", "R(rel=3)@100", "RR(rel=3)@100"]


@pytest.fixture
def old(tmp_path, mirror) -> Path:
    """A results root holding the schema-2 fixture."""
    root = tmp_path / "old"
    shutil.copytree(FIXTURE, root)
    return root


def _csv_text(path: Path) -> bytes:
    with gzip.open(path, "rb") as handle:
        return handle.read()


def _queries(json_path: Path) -> Path:
    return json_path.with_name(json_path.stem + ".queries.csv.gz")


def test_the_legacy_names_map_to_the_current_ones_in_table_order():
    suite = load_suite()
    assert measure_names(suite) == NEW_NAMES
    assert legacy_names(suite) == dict(zip(OLD_NAMES, NEW_NAMES, strict=True))


def test_upgrade_renames_the_measures_and_leaves_every_value_identical(old, capsys):
    path = old / RESULT
    before = json.loads(path.read_text())
    before_frame = pd.read_csv(_queries(path), dtype={"qid": str, "article": str}, keep_default_na=False)
    before_text = _csv_text(_queries(path))
    assert before["schema"] == 2 and list(before["scores"]) == OLD_NAMES
    assert verify_folder(old, load_suite()).errors  # schema 2 is refused until upgraded

    assert main(["benchmark", "upgrade", str(old)]) == 0
    assert "1 results upgraded to the current schema" in capsys.readouterr().out
    after = json.loads(path.read_text())
    after_frame = pd.read_csv(_queries(path), dtype={"qid": str, "article": str}, keep_default_na=False)
    # the scores: same values in the same order, under the new names; nothing else in the record changed
    assert after["schema"] == SCHEMA == 3
    assert list(after["scores"]) == NEW_NAMES
    assert list(after["scores"].values()) == list(before["scores"].values())
    assert {k: v for k, v in after.items() if k not in ("schema", "scores", "per_query")} == \
        {k: v for k, v in before.items() if k not in ("schema", "scores", "per_query")}
    # the per-query file: only its header line differs, every row byte for byte the same
    after_text = _csv_text(_queries(path))
    assert after_text.split(b"\n", 1)[1] == before_text.split(b"\n", 1)[1]
    assert after_text.split(b"\n", 1)[0].decode() == ",".join(["qid", "article", *NEW_NAMES])
    assert list(after_frame.columns) == ["qid", "article", *NEW_NAMES]
    for old_name, new_name in zip(OLD_NAMES, NEW_NAMES, strict=True):
        assert after_frame[new_name].tolist() == before_frame[old_name].tolist()
    assert after["per_query"]["sha256"] == per_query_sha256(_queries(path)) != before["per_query"]["sha256"]
    report = verify_folder(old, load_suite())
    assert report.ok and len(report.verified) == 1
    # the upgraded file is the committed (upgraded) result of the same system and task
    committed = COMMITTED / RESULT
    assert after == json.loads(committed.read_text())
    assert after_text == _csv_text(_queries(committed))
    # a second upgrade has nothing to do
    assert upgrade_folder(old, load_suite()) == (0, [])


def test_a_schema_1_result_gets_the_suite_hash_and_the_new_names(old):
    path = old / RESULT
    record = json.loads(path.read_text())
    record["schema"] = 1
    record["suite"].pop("hash")
    record.pop("per_query")
    path.write_text(json.dumps(record, indent=2))
    assert upgrade_folder(old, load_suite()) == (1, [])
    after = json.loads(path.read_text())
    assert after["suite"]["hash"] == load_suite().hash and list(after["scores"]) == NEW_NAMES
    assert list(after["scores"].values()) == list(record["scores"].values())
    assert verify_folder(old, load_suite()).ok


def test_a_changed_per_query_file_is_not_upgraded_and_left_as_it_was(old):
    queries = _queries(old / RESULT)
    lines = _csv_text(queries).split(b"\n")
    lines[1] = lines[1].rsplit(b",", 1)[0] + b",0.123457"  # one value of the last measure changed
    with gzip.open(queries, "wb") as handle:
        handle.write(b"\n".join(lines))
    edited, record = queries.read_bytes(), (old / RESULT).read_text()
    upgraded, errors = upgrade_folder(old, load_suite())
    assert upgraded == 0 and len(errors) == 1 and "the per-query scores were changed" in errors[0], errors
    assert queries.read_bytes() == edited and (old / RESULT).read_text() == record


def test_an_edited_mean_is_not_upgraded_and_its_files_are_left_as_they_were(old):
    path = old / RESULT
    record = json.loads(path.read_text())
    record["scores"]["R(rel=2)@100"] = 0.99
    path.write_text(json.dumps(record, indent=2))
    queries, text = _queries(path), path.read_text()
    before = queries.read_bytes()
    upgraded, errors = upgrade_folder(old, load_suite())
    assert upgraded == 0 and "stored R(rel=2)@100 0.99 but its per-query file averages to" in errors[0], errors
    assert queries.read_bytes() == before and path.read_text() == text


def test_an_upgrade_stopped_after_the_per_query_file_is_finished_by_the_next(old):
    """The per-query file is written before the JSON: a header already renamed is accepted when the old header
    gives back the hash the JSON records."""
    queries = _queries(old / RESULT)
    header, body = _csv_text(queries).split(b"\n", 1)
    with gzip.GzipFile(queries, "wb", mtime=0) as handle:
        handle.write(",".join(["qid", "article", *NEW_NAMES]).encode() + b"\n" + body)
    assert upgrade_folder(old, load_suite()) == (1, [])
    assert verify_folder(old, load_suite()).ok
