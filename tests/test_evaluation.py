"""The one evaluation module: measures as ir_measures objects, their labels, evaluators prepared once."""
from __future__ import annotations

import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
import pytest

from pyterrier_gradrel import _evaluation
from pyterrier_gradrel._evaluation import Evaluator, evaluate, label, parse_measures, spec_evaluator

GRADES = (0, 1, 2, 3)
#: the labels in result files (perquery.csv.gz, reports, significance.csv): ir_measures' str(measure), and for nDCG
#: the two documented names (graded nDCG@10, binary nDCG(rel=r)@10)
COMMITTED_LABELS = [
    "nDCG@10", "nDCG(rel=1)@10", "nDCG(rel=2)@10", "nDCG(rel=3)@10", "R@100", "R(rel=2)@100",
    "R(rel=3)@100", "RR", "RR(rel=2)", "RR(rel=3)", "P@10", "P(rel=2)@10", "P(rel=3)@10",
]


def _specs():
    return parse_measures(graded=["nDCG@10"], binary=["nDCG@10", "R@100", "RR", "P@10"], rels=[1, 2, 3])


def _random_data(seed: int, n_queries: int = 20, n_docs: int = 40, depth: int = 30, score_digits: int | None = None):
    rng = np.random.default_rng(seed)
    qrels = pd.DataFrame([(f"q{q}", f"d{d}", int(rng.integers(1, 4))) for q in range(n_queries)
                          for d in rng.choice(n_docs, 8, replace=False)], columns=["qid", "docno", "label"])
    rows = [(f"q{q}", f"d{d}", float(rng.normal())) for q in range(n_queries) for d in rng.choice(n_docs, depth,
                                                                                                replace=False)]
    run = pd.DataFrame(rows, columns=["qid", "docno", "score"])
    if score_digits is not None:
        run["score"] = run["score"].round(score_digits)
    topics = pd.DataFrame({"qid": [f"q{q}" for q in range(n_queries)], "query": ["x"] * n_queries})
    return topics, qrels, run


def test_labels_of_parsed_measures_are_the_committed_ones():
    specs = _specs()
    assert [s.label for s in specs] == COMMITTED_LABELS
    assert [label(s.measure) for s in specs] == COMMITTED_LABELS


def test_measures_are_ir_measures_objects_with_canonical_names():
    by_label = {s.label: s.measure for s in _specs()}
    assert by_label["R(rel=2)@100"] == ir_measures.parse_measure("R(rel=2)@100")
    assert by_label["RR(rel=3)"] == ir_measures.parse_measure("RR(rel=3)")
    assert by_label["nDCG@10"] == ir_measures.nDCG(gains={0: 0, 1: 1, 2: 3, 3: 7}) @ 10
    assert by_label["nDCG(rel=2)@10"] == ir_measures.nDCG(gains={0: 0, 1: 0, 2: 1, 3: 1}) @ 10
    assert label(ir_measures.R(rel=2) @ 100) == str(ir_measures.R(rel=2) @ 100) == "R(rel=2)@100"
    assert label(_evaluation.graded_ndcg(10)) == "nDCG@10"
    assert [s.base for s in _specs()[:5]] == ["nDCG@10"] * 4 + ["R@100"]
    assert [s.rel for s in _specs()[:5]] == [None, 1, 2, 3, 1]
    with pytest.raises(ValueError, match="needs explicit gains"):
        label(ir_measures.nDCG @ 10)


def test_with_a_depth_rr_is_cut_there_and_its_label_keeps_it():
    """The benchmark's RR: `RR` or `RR@depth` become RR(rel=r)@depth; without a depth an RR cut-off is refused."""
    for name in ("RR", "RR@100"):
        specs = parse_measures(graded=[], binary=[name], rels=[1, 3], depth=100)
        assert [s.measure for s in specs] == [ir_measures.RR(rel=1) @ 100, ir_measures.RR(rel=3) @ 100]
        assert [s.label for s in specs] == ["RR@100", "RR(rel=3)@100"] and [s.base for s in specs] == ["RR@100"] * 2
    assert [s.label for s in parse_measures(graded=[], binary=["R@100"], rels=[1], depth=100)] == ["R@100"]
    with pytest.raises(ValueError, match="evaluated at depth 100, so RR is 'RR' or 'RR@100'"):
        parse_measures(graded=[], binary=["RR@10"], rels=[1], depth=100)
    with pytest.raises(ValueError, match="use 'RR'"):
        parse_measures(graded=[], binary=["RR@100"], rels=[1])


def test_graded_measure_follows_the_dataset_grade_scale():
    graded, binary = parse_measures(graded=["nDCG@10"], binary=["nDCG@10"], rels=[2])
    assert graded.ir_measure([0, 1, 2, 3, 4]).params["gains"] == {0: 0, 1: 1, 2: 3, 3: 7, 4: 15}
    assert binary.ir_measure([0, 1, 2, 3, 4]).params["gains"] == {0: 0, 1: 0, 2: 1, 3: 1, 4: 1}
    assert (graded.rel, graded.cutoff, binary.rel, binary.graded) == (None, 10, 2, False)


def test_identical_objects_on_a_binary_scale_keep_both_labels():
    """On grades {0, 1} graded nDCG and nDCG(rel=1) are the same ir_measures object; both rows are kept."""
    specs = parse_measures(graded=["nDCG@10"], binary=["nDCG@10"], rels=[1])
    assert specs[0].ir_measure([0, 1]) == specs[1].ir_measure([0, 1])
    qrels = pd.DataFrame({"qid": ["q1", "q1"], "docno": ["a", "b"], "label": [1, 1]})
    run = pd.DataFrame({"qid": ["q1", "q1"], "docno": ["b", "c"], "score": [2.0, 1.0]})
    out = spec_evaluator(qrels, specs, grades=[0, 1]).per_query(run).set_index("measure")["value"]
    assert out["nDCG@10"] == out["nDCG(rel=1)@10"] == pytest.approx(1 / (1 + 1 / np.log2(3)))


@pytest.mark.parametrize("score_digits", [None, 0])
def test_per_query_scores_equal_one_pt_experiment_per_measure(score_digits):
    """Every measure alone through pt.Experiment (the reference); rounded scores put ties at every rank cut."""
    topics, qrels, run = _random_data(1, score_digits=score_digits)
    specs = _specs() + parse_measures(graded=[], binary=["nDCG@5", "AP", "Success@10"], rels=[1, 3])
    out = spec_evaluator(qrels, specs, grades=GRADES).per_query(run)
    for spec in specs:
        ref = pt.Experiment([run], topics, qrels, [spec.ir_measure(GRADES)], names=["r"], perquery=True)
        ref = ref.set_index("qid")["value"].sort_index()
        got = out[out["measure"] == spec.label].set_index("qid")["value"].sort_index()
        pd.testing.assert_series_equal(got, ref, check_names=False, check_exact=True)


def test_ndcg_sees_only_the_top_k_but_keeps_ties_at_the_boundary():
    qrels = pd.DataFrame({"qid": ["q"] * 3, "docno": ["a", "b", "c"], "label": [3, 1, 2]})
    # five documents tie at the 2nd-highest score: trec_eval breaks the tie by docno
    run = pd.DataFrame({"qid": ["q"] * 7, "docno": ["z", "a", "b", "c", "x", "y", "w"],
                        "score": [9.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0]})
    assert set(_evaluation._top(run, 2)["docno"]) == {"z", "a", "b", "c", "x", "y"}
    measure = _evaluation.graded_ndcg(2)
    ref = ir_measures.calc_aggregate([measure], pt.model.to_ir_measures(qrels), pt.model.to_ir_measures(run))
    assert Evaluator(qrels, [measure]).means(run)["nDCG@2"] == ref[measure]


def test_unanswered_queries_score_zero_and_unjudged_ones_are_dropped():
    qrels = pd.DataFrame({"qid": ["1", "2"], "docno": ["a", "b"], "label": [3, 3]})
    topics = pd.DataFrame({"qid": ["1", "2", "3"], "query": ["x"] * 3})
    run = pd.DataFrame({"qid": ["1", "3"], "docno": ["a", "c"], "score": [1.0, 1.0]})
    out = evaluate(run, topics, qrels, _specs(), grades=GRADES)
    assert set(out["qid"]) == {"1", "2"} and len(out) == 2 * len(COMMITTED_LABELS)
    assert (out.loc[out["qid"] == "2", "value"] == 0.0).all()
    assert out.set_index(["qid", "measure"]).loc[("1", "RR(rel=3)"), "value"] == 1.0
    empty = evaluate(run.iloc[:0], topics, qrels, _specs(), grades=GRADES)
    assert (empty["value"] == 0.0).all() and len(empty) == 2 * len(COMMITTED_LABELS)


def test_evaluator_is_prepared_once_and_reused(monkeypatch):
    topics, qrels, run = _random_data(4)
    specs = _specs()
    built = []
    real = ir_measures.evaluator
    monkeypatch.setattr(ir_measures, "evaluator", lambda *a, **k: built.append(a[0]) or real(*a, **k))
    ev = spec_evaluator(qrels, specs, grades=GRADES)
    # every nDCG variant alone (the ir_measures 0.4.3 bug), all other measures together
    assert [len(ms) for ms in built] == [1, 1, 1, 1, 9]
    other = run.assign(score=-run["score"])
    first, second, again = ev.per_query(run), ev.per_query(other), ev.per_query(run)
    assert len(built) == 5
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(second, evaluate(other, topics, qrels, specs, grades=GRADES))


def test_evaluator_rejects_missing_or_duplicate_names():
    qrels = pd.DataFrame({"qid": ["1"], "docno": ["a"], "label": [1]})
    with pytest.raises(ValueError, match="one unique name per measure"):
        Evaluator(qrels, [ir_measures.RR, ir_measures.RR(rel=2)], names=["RR", "RR"])
    with pytest.raises(ValueError, match="measures must differ"):
        Evaluator(qrels, [ir_measures.RR, ir_measures.RR(rel=1)], names=["a", "b"])


def test_means_equal_pt_experiment_averages():
    topics, qrels, run = _random_data(5)
    measures = [_evaluation.graded_ndcg(10), ir_measures.R(rel=2) @ 100, ir_measures.RR(rel=3)]
    half = run[run["qid"].isin([f"q{q}" for q in range(10)])]
    table = _evaluation.evaluate_runs({"all": run, "half": half}, topics, qrels, measures).set_index("name")
    for name, r in [("all", run), ("half", half)]:
        for m in measures:
            ref = pt.Experiment([r], topics, qrels, [m], names=[name]).iloc[0][str(m)]
            assert table.loc[name, label(m)] == ref
    assert table.loc["half", "answered"] == 10 and table.loc["all", "queries"] == 20


def test_row_order_is_fixed_by_the_measures_not_by_the_hash_seed():
    """ir_measures yields the shared evaluator's measures in set order (hash-seed dependent); rows do not."""
    _, qrels, run = _random_data(6, n_queries=12)
    specs = _specs()
    out = spec_evaluator(qrels, specs, grades=GRADES).per_query(run)
    qids = sorted(set(qrels["qid"]))
    ndcg = [s.label for s in specs if s.measure.NAME == "nDCG"]
    others = [s.label for s in specs if s.measure.NAME != "nDCG"]
    expected = [(q, m) for m in ndcg for q in qids] + [(q, m) for q in qids for m in others]
    assert list(zip(out["qid"], out["measure"], strict=True)) == expected


def test_keep_order_scores_the_system_order_not_trec_eval_tie_breaking():
    qrels = pd.DataFrame({"qid": ["q", "q"], "docno": ["a", "c"], "label": [3, 0]})
    # equal scores: trec_eval ranks by docno (descending: b before a); the system ranked a first
    run = pd.DataFrame({"qid": ["q", "q"], "docno": ["a", "b"], "score": [1.0, 1.0], "rank": [0, 1]})
    rr = ir_measures.RR(rel=1)
    assert Evaluator(qrels, [rr]).means(run)["RR"] == 0.5
    assert Evaluator(qrels, [rr], keep_order=True).means(run)["RR"] == 1.0
    # without ranks the order is descending score, ties in row order
    assert Evaluator(qrels, [rr], keep_order=True).means(run.drop(columns="rank")[::-1])["RR"] == 0.5
    # ranks rule over row order (above: a before b on tied scores, whatever the rows' order) ...
    assert Evaluator(qrels, [rr], keep_order=True).means(run[::-1])["RR"] == 1.0
    # ... but not over scores: a stale rank (a re-ranker rewrote the scores) is scored by score, as pt.Experiment
    stale = run.assign(rank=[0, 1], score=[1.0, 2.0])
    assert Evaluator(qrels, [rr], keep_order=True).means(stale)["RR"] == 0.5
    # a run with ranks and no scores is scored in rank order
    assert Evaluator(qrels, [rr], keep_order=True).means(stale.drop(columns="score"))["RR"] == 1.0


def test_depth_cuts_every_measure_and_ndcg_still_sees_its_top_k():
    qrels = pd.DataFrame({"qid": ["q", "q"], "docno": ["d2", "d5"], "label": [3, 3]})
    run = pd.DataFrame({"qid": "q", "docno": [f"d{i}" for i in range(8)], "score": [8.0 - i for i in range(8)]})
    measures = [ir_measures.R(rel=1) @ 100, ir_measures.RR(rel=1), _evaluation.graded_ndcg(10)]
    for keep_order in (False, True):
        full = Evaluator(qrels, measures, keep_order=keep_order).means(run)
        cut = Evaluator(qrels, measures, keep_order=keep_order, depth=4).means(run)
        assert full["R@100"] == 1.0 and cut["R@100"] == 0.5
        assert full["RR"] == cut["RR"] == 1 / 3
        assert cut["nDCG@10"] < full["nDCG@10"]


def test_table_is_one_row_per_judged_query_in_the_given_column_order():
    topics, qrels, run = _random_data(7, n_queries=6)
    specs = _specs()
    ev = spec_evaluator(qrels, specs, grades=GRADES)
    answered = run[run["qid"] != "q3"]
    table = ev.table(answered)
    assert list(table.columns) == ["qid", *[s.label for s in specs]]
    assert list(table["qid"]) == sorted(set(qrels["qid"]))
    assert (table.set_index("qid").loc["q3"] == 0.0).all()
    long = ev.per_query(answered).pivot(index="qid", columns="measure", values="value")
    pd.testing.assert_frame_equal(table.set_index("qid"), long[table.columns[1:]], check_names=False)


def test_a_run_without_the_needed_columns_is_rejected():
    qrels = pd.DataFrame({"qid": ["1"], "docno": ["a"], "label": [1]})
    with pytest.raises(ValueError, match="qid, docno and score"):
        Evaluator(qrels, [ir_measures.RR]).per_query(pd.DataFrame({"qid": ["1"], "docno": ["a"], "rank": [0]}))
    with pytest.raises(ValueError, match="qid, docno and rank or score"):
        Evaluator(qrels, [ir_measures.RR], keep_order=True).table(pd.DataFrame({"qid": ["1"], "text": ["x"]}))


def test_an_evaluator_survives_pickling():
    """Executors (Ray) pickle the runner's data cache with its prepared evaluators."""
    import pickle

    _, qrels, run = _random_data(8, n_queries=5)
    ev = Evaluator(qrels, [s.ir_measure(GRADES) for s in _specs()], keep_order=True, depth=20)
    ev.per_query(run)
    copy = pickle.loads(pickle.dumps(ev))
    pd.testing.assert_frame_equal(copy.per_query(run), ev.per_query(run))
    pd.testing.assert_frame_equal(copy.table(run), ev.table(run))


@pytest.mark.parametrize("seed", [0, 1])
def test_pt_experiment_gives_the_evaluators_per_query_values(seed):
    """The runner's path (pt.Experiment, runs as DataFrames) equals the prepared evaluator row for row, with score
    ties, unanswered queries and an empty run."""
    topics, qrels, run = _random_data(seed, score_digits=1)
    run = run[run["qid"] != "q3"]
    specs = _specs()
    measures = [s.ir_measure(GRADES) for s in specs]
    names = [s.label for s in specs]
    ours = _evaluation.experiment_per_query({"a": run, "empty": run.iloc[:0]}, topics, qrels, measures, names=names)
    reference = spec_evaluator(qrels, specs, grades=GRADES).per_query(run)
    pd.testing.assert_frame_equal(ours[ours["name"] == "a"].drop(columns="name").reset_index(drop=True), reference)
    empty = ours[ours["name"] == "empty"]
    assert len(empty) == len(reference) and (empty["value"] == 0).all()
    assert (ours.loc[(ours["name"] == "a") & (ours["qid"] == "q3"), "value"] == 0).all()


def test_experiment_groups_keep_a_gainless_ndcg_alone():
    graded = _evaluation.graded_ndcg(10)
    groups = _evaluation.experiment_groups([graded, ir_measures.nDCG @ 10, ir_measures.RR(rel=2)])
    assert groups == [[graded, ir_measures.RR(rel=2)], [ir_measures.nDCG @ 10]]


@pytest.mark.parametrize("seed", [0, 1])
def test_qrels_prepared_once_give_pt_experiments_values_on_the_raw_frames(seed):
    """experiment_per_query with qrels prepared once per pool (filter_by_topics=False) equals the same with the raw
    frames, and pt.Experiment called on the raw frames as before (Arrow strings, qrels of other queries, its own
    filter_by_topics merge), value for value."""
    topics, qrels, run = _random_data(seed, score_digits=1)
    other = pd.DataFrame({"qid": ["zz"] * 3, "docno": ["d1", "d2", "d3"], "label": [3, 2, 1]})
    qrels = pd.concat([qrels, other], ignore_index=True).astype({"qid": "string", "docno": "string"})
    topics = topics.astype({"qid": "string"})
    specs = _specs()
    measures = [s.ir_measure(GRADES) for s in specs]
    names = [s.label for s in specs]
    prepared = _evaluation.experiment_qrels(topics, qrels)
    assert prepared.qids == tuple(sorted(f"q{q}" for q in range(20))) and "zz" not in set(prepared.qrels["qid"])
    runs = {"a": run, "b": run.assign(score=-run["score"])}
    ours = _evaluation.experiment_per_query(runs, topics, prepared, measures, names=names)
    pd.testing.assert_frame_equal(ours, _evaluation.experiment_per_query(runs, topics, qrels, measures, names=names))
    for system, frame in runs.items():
        for group in _evaluation.experiment_groups(measures):
            ref = pt.Experiment([frame], topics, qrels, group, names=[system], perquery=True, verbose=False)
            ref = ref.assign(measure=ref["measure"].map({str(m): names[measures.index(m)] for m in group}))
            mine = ours[(ours["name"] == system) & ours["measure"].isin(set(ref["measure"]))]
            expected = ref.set_index(["qid", "measure"])["value"].astype(float).fillna(0.0)
            got = mine.set_index(["qid", "measure"])["value"]
            assert len(got) == len(expected) and (got == expected.loc[got.index]).all()
    with pytest.raises(ValueError, match="prepare them with experiment_qrels"):
        _evaluation.experiment_per_query(runs, topics.iloc[:5], prepared, measures, names=names)


def test_the_runners_data_cache_prepares_each_pools_qrels_once(monkeypatch):
    from pyterrier_gradrel.experiments import _data

    topics, qrels, run = _random_data(0)
    cache = _data.DataCache()
    ds_id = "gradrel/xquad-r/en/test"  # its grade scale (0-3); the data is this test's
    cache._cache[ds_id] = _data._Data(topics.assign(article="a"), qrels, "fp")
    calls = []
    monkeypatch.setattr(_data, "experiment_qrels", lambda t, q: calls.append(1) or _evaluation.experiment_qrels(t, q))
    specs = _specs()
    first = cache.per_query(ds_id, run, specs)
    second = cache.per_query(ds_id, run.assign(score=-run["score"]), specs)
    assert len(calls) == 1 and list(first.columns) == ["qid", "measure", "value"] and len(first) == len(second)
    reference = spec_evaluator(qrels, specs, grades=GRADES).per_query(run)
    pd.testing.assert_frame_equal(first, reference)


def _edge_case_data():
    """Qrels with grade-0 rows, a query relevant only at rel=1, one judged only 0, one the run misses, a run with a
    repeated (qid, docno) and a topic without qrels that the run answers."""
    qrels = pd.DataFrame([("q1", "d1", 3), ("q1", "d2", 1), ("q1", "d3", 0), ("q2", "d1", 1), ("q2", "d4", 0),
                          ("q3", "d5", 0), ("q4", "d6", 2), ("q5", "d7", 3)], columns=["qid", "docno", "label"])
    topics = pd.DataFrame({"qid": ["q1", "q2", "q3", "q4", "q5", "q6"]})
    run = pd.DataFrame([("q1", "d3", 5.0), ("q1", "d2", 4.0), ("q1", "d1", 3.0), ("q1", "d9", 2.0), ("q2", "d4", 3.0),
                        ("q2", "d1", 1.0), ("q3", "d5", 1.0), ("q5", "d8", 2.0), ("q5", "d7", 1.0), ("q5", "d7", 0.5),
                        ("q6", "d1", 1.0)], columns=["qid", "docno", "score"])
    return topics, qrels, run


def test_edge_cases_equal_plain_ir_measures_and_unjudged_topics_are_not_scored():
    """Per query, experiment_per_query = the Evaluator = plain ir_measures.iter_calc (each measure alone) for the
    judged queries (a missed one scores 0); q6, answered but without qrels, has no row (it used to score 0)."""
    topics, qrels, run = _edge_case_data()
    specs = _specs()
    measures, names = [s.ir_measure(GRADES) for s in specs], [s.label for s in specs]
    ours = _evaluation.experiment_per_query({"s": run}, topics, qrels, measures, names=names).drop(columns="name")
    pd.testing.assert_frame_equal(ours, spec_evaluator(qrels, specs, grades=GRADES).per_query(run))
    assert set(ours["qid"]) == {"q1", "q2", "q3", "q4", "q5"}
    irm_qrels = qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"})
    irm_run = run.rename(columns={"qid": "query_id", "docno": "doc_id"})
    for measure, name in zip(measures, names, strict=True):
        plain = {m.query_id: m.value for m in ir_measures.iter_calc([measure], irm_qrels, irm_run)}
        got = ours[ours["measure"] == name].set_index("qid")["value"]
        assert got.to_dict() == {q: plain.get(q, 0.0) for q in got.index}, name
    by = ours.set_index(["qid", "measure"])["value"]
    assert by["q2", "R@100"] == 1.0 and by["q2", "R(rel=2)@100"] == 0.0 and by["q3", "nDCG@10"] == 0.0
    assert by["q4", "RR"] == 0.0 and by["q1", "RR(rel=3)"] == pytest.approx(1 / 3)


def test_equal_measures_under_two_names_each_get_their_rows_from_pt_experiment():
    """On grades {0, 1} graded nDCG@10 and nDCG(rel=1)@10 are one ir_measures object: both names keep their rows
    (the runner's path used to keep only the last name, so a binary collection had no nDCG@10)."""
    specs = parse_measures(graded=["nDCG@10"], binary=["nDCG@10", "R@100"], rels=[1])
    qrels = pd.DataFrame({"qid": ["q1", "q1", "q2"], "docno": ["a", "b", "a"], "label": [1, 1, 1]})
    run = pd.DataFrame({"qid": ["q1", "q1", "q2"], "docno": ["b", "c", "c"], "score": [2.0, 1.0, 1.0]})
    topics = pd.DataFrame({"qid": ["q1", "q2"]})
    measures = [s.ir_measure([0, 1]) for s in specs]
    ours = _evaluation.experiment_per_query({"s": run}, topics, qrels, measures, names=[s.label for s in specs])
    pd.testing.assert_frame_equal(ours.drop(columns="name"), spec_evaluator(qrels, specs, grades=[0, 1]).per_query(run))
    assert list(ours["measure"]) == ["nDCG@10"] * 2 + ["nDCG(rel=1)@10"] * 2 + ["R@100"] * 2
    assert _evaluation.experiment_groups(measures) == [[measures[0], measures[2]]]


def test_a_run_with_integer_ids_is_scored_as_the_evaluator_scores_it():
    """Ids compare as strings, as in the Evaluator (pytrec_eval used to refuse the run: 'Unable to extract')."""
    topics, qrels, run = _random_data(0, n_queries=5)
    numeric = lambda f: f.assign(qid=f["qid"].str[1:].astype(int), docno=f["docno"].str[1:].astype(int))  # noqa: E731
    specs = _specs()
    measures, names = [s.ir_measure(GRADES) for s in specs], [s.label for s in specs]
    topics = topics.assign(qid=topics["qid"].str[1:].astype(int))
    ours = _evaluation.experiment_per_query({"s": numeric(run)}, topics, numeric(qrels), measures, names=names)
    reference = spec_evaluator(numeric(qrels), specs, grades=GRADES).per_query(numeric(run))
    pd.testing.assert_frame_equal(ours.drop(columns="name"), reference)
    assert (reference["value"] > 0).any()
