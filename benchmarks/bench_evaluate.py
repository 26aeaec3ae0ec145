"""Evaluation time per system and split: one ``pt.Experiment`` per measure group vs one prepared evaluator.

For each dataset, a BM25 run (``pyterrier_gradrel.retrieval.bm25``, cut to the experiments' depth of 100) is
evaluated with the full measure set of ``experiments/monolingual_budget.yaml`` (graded nDCG@10; binary
nDCG@10, R@100, RR at rel 1, 2, 3) two ways:

* ``before``: one ``pt.Experiment`` call per measure group (each nDCG variant alone, the other measures
  together) for every run: every call converts the qrels again;
* ``after``: :class:`pyterrier_gradrel._evaluation.Evaluator` prepared once per (qrels, measures)
  (``prepare``), then one ``per_query`` call per run (``per run``: what every further system and seed costs).

The benchmark's threshold profile (:func:`pyterrier_gradrel.benchmark._evaluate.prepare_evaluators`, the same
:class:`~pyterrier_gradrel._evaluation.Evaluator` keeping the system's order, cut at depth 100) is timed on the
uncut BM25 run as a benchmark system returns it (``profile``: prepare, per run).

Both give the same per-query rows (checked: sorted rows, exact floating-point equality). Times are the
fastest of ``--repeats`` passes (other processes on a shared machine only slow a pass down).

The experiment runner's own path (``--runner``): ``pt.Experiment`` called by
:func:`pyterrier_gradrel._evaluation.experiment_per_query`, per system,

* ``before``: the qrels restricted to the topics and cast in every call, and ``pt.Experiment``'s
  ``filter_by_topics`` merge of the 1.26M qrels rows with the topics in every call;
* ``after``: the qrels prepared once per pool (:func:`pyterrier_gradrel._evaluation.experiment_qrels`, timed as
  ``prepare``; the runner's ``DataCache`` keeps it), passed to ``pt.Experiment`` with ``filter_by_topics=False``.

Both must give identical per-query frames (``same``: ``DataFrame.equals``, exact). Measured on the shared 2-core
EPYC, fastest of 3 (``--runner --repeats 3``): multi/test (4,248 queries, 1,261,716 qrels, 422,444 run rows) before
4.79 s, after 4.20 s per system + 0.24 s once to prepare (load ~2.4); in a second pass at load ~3: multi/test 7.17 s
vs 5.52 s (+ 0.37 s), multi/dev 2.43 s vs 1.91 s (+ 0.14 s), en/test 0.24 s vs 0.24 s; same rows everywhere. The
rest is pt.Experiment's own: ir_measures builds its evaluator from the qrels frame in every call (~2.5 s on
multi/test), and pt.Experiment accepts neither a prepared evaluator nor qrels in ir_measures' dict form.

    PYTHONPATH=. python benchmarks/bench_evaluate.py --datasets gradrel/xquad-r/multi/test gradrel/xquad-r/multi/dev
    PYTHONPATH=. python benchmarks/bench_evaluate.py --runner --datasets gradrel/xquad-r/multi/test --repeats 3

Measured on a shared 2-core VM (load ~4.5): multi/test (4,248 queries, 1,261,716 qrels, 422,444 run rows)
before 106.8 s, after 4.6 s to prepare + 2.9 s per run; multi/dev (574,068 qrels) 59.7 s vs 3.5 s + 1.6 s;
en/test 2.07 s vs 0.06 s + 0.18 s. Same rows everywhere. With the benchmark's profile (load ~3, alongside a
test run): multi/test before 86.4 s, after 8.3 s + 3.5 s per run; profile 8.0 s to prepare + 3.5 s per run (3.5M
run rows, 1,000 per query). Alone, best of 3: the profile's former three-evaluator module 9.0-10.6 s + 1.2-1.6 s,
the Evaluator 3.4-4.8 s + 1.7 s, identical tables.
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "monolingual_budget.yaml"


def before(run: pd.DataFrame, topics: pd.DataFrame, qrels: pd.DataFrame, specs, grades) -> pd.DataFrame:
    """One ``pt.Experiment`` per measure group: each nDCG variant alone, all other measures in one call."""
    import pyterrier as pt

    topics = topics[topics["qid"].isin(set(qrels["qid"]))]
    groups = [[s] for s in specs if s.measure.NAME == "nDCG"] + [[s for s in specs if s.measure.NAME != "nDCG"]]
    frames = []
    for group in groups:
        objs = {s.ir_measure(grades): s for s in group}
        pq = pt.Experiment([run], topics, qrels, list(objs), names=["run"], perquery=True, verbose=False)
        pq = pq[["qid", "measure", "value"]].copy()
        pq["measure"] = pq["measure"].map({str(m): s.label for m, s in objs.items()})
        frames.append(pq)
    out = pd.concat(frames, ignore_index=True)
    out["qid"] = out["qid"].astype(str)
    out["value"] = out["value"].astype(float).fillna(0.0)
    return out


def runner_before(run: pd.DataFrame, topics: pd.DataFrame, qrels: pd.DataFrame, measures, names) -> pd.DataFrame:
    """The runner's ``experiment_per_query`` as it was: the qrels filtered and cast in every call, and
    ``pt.Experiment`` merging them with the topics (``filter_by_topics``) in every call."""
    import pyterrier as pt

    from pyterrier_gradrel._evaluation import experiment_groups

    by_measure = dict(zip(measures, names, strict=True))
    topics = topics[["qid"]].astype({"qid": object})
    qrels = qrels[qrels["qid"].isin(set(topics["qid"]))][["qid", "docno", "label"]]
    qrels = qrels.astype({"qid": object, "docno": object, "label": int})
    run = run[["qid", "docno", "score"]].astype({"qid": object, "docno": object, "score": float})
    frames = []
    for group in experiment_groups(measures):
        pq = pt.Experiment([run], topics, qrels, group, names=["run"], perquery=True, verbose=False)
        frames.append(pq.assign(measure=pq["measure"].map({str(m): by_measure[m] for m in group})))
    out = pd.concat(frames, ignore_index=True)[["name", "qid", "measure", "value"]]
    return out.astype({"qid": str, "value": float}).fillna({"value": 0.0})


def _fastest(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["qid", "measure"]).reset_index(drop=True)[["qid", "measure", "value"]]


def compare_runner(datasets: list[str], repeats: int) -> None:
    """Seconds per system of the runner's ``pt.Experiment`` path, before and after preparing the qrels per pool."""
    import pyterrier_gradrel  # noqa: F401  (registers the datasets)
    from pyterrier_gradrel._evaluation import experiment_per_query, experiment_qrels
    from pyterrier_gradrel.datasets import info
    from pyterrier_gradrel.experiments._config import load_config
    from pyterrier_gradrel.experiments._data import DataCache
    from pyterrier_gradrel.experiments._runner import _cut
    from pyterrier_gradrel.retrieval import bm25

    cfg = load_config(CONFIG)
    data = DataCache()
    names = [s.label for s in cfg.measures]
    print(f"measures ({len(names)}): {', '.join(names)}; fastest of {repeats}, before and after interleaved")
    print(f"{'dataset':32} {'queries':>7} {'qrels':>9} {'run':>7} | {'before':>14} | {'prepare':>8} | "
          f"{'after':>13} | same")
    for ds_id in datasets:
        d = data.get(ds_id)
        measures = [s.ir_measure(info(ds_id).grade_scale) for s in cfg.measures]
        run = _cut(bm25(ds_id)(d.topics[["qid", "query"]]), cfg.run_depth)
        # one call first, so that neither side pays the first call's imports (scipy)
        runner_before(run, d.topics, d.qrels, measures, names)
        t_prepare, prepared = _fastest(functools.partial(experiment_qrels, d.topics, d.qrels), repeats)
        t_before, t_after, same = float("inf"), float("inf"), True
        for _ in range(repeats):
            t, old = _fastest(functools.partial(runner_before, run, d.topics, d.qrels, measures, names), 1)
            t_before = min(t_before, t)
            t, new = _fastest(functools.partial(experiment_per_query, {"run": run}, d.topics, prepared, measures,
                                                names=names), 1)
            t_after = min(t_after, t)
            same = same and _sorted_rows(old).equals(_sorted_rows(new))
        print(f"{ds_id:32} {len(d.topics):>7} {len(d.qrels):>9} {len(run):>7} | {t_before:>6.2f}s/system | "
              f"{t_prepare:>7.2f}s | {t_after:>5.2f}s/system | {same}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["gradrel/xquad-r/multi/test", "gradrel/xquad-r/multi/dev"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--runner", action="store_true",
                        help="time the experiment runner's pt.Experiment path before/after preparing the qrels per pool")
    args = parser.parse_args()
    if args.runner:
        compare_runner(args.datasets, args.repeats)
        return

    import pyterrier_gradrel  # noqa: F401  (registers the datasets)
    from pyterrier_gradrel._evaluation import spec_evaluator
    from pyterrier_gradrel.benchmark._evaluate import prepare_evaluators, score_run
    from pyterrier_gradrel.datasets import info
    from pyterrier_gradrel.experiments._config import load_config
    from pyterrier_gradrel.experiments._data import DataCache
    from pyterrier_gradrel.experiments._runner import _cut
    from pyterrier_gradrel.retrieval import bm25

    cfg = load_config(CONFIG)
    specs = cfg.measures
    data = DataCache()
    print(f"measures ({len(specs)}): {', '.join(s.label for s in specs)}")
    print(f"{'dataset':32} {'queries':>7} {'qrels':>9} {'run':>7} | {'before':>8} | {'prepare':>8} {'per run':>8} "
          f"{'1st total':>9} | same | {'profile':>8} {'per run':>8}")
    for ds_id in args.datasets:
        d = data.get(ds_id)
        grades = info(ds_id).grade_scale
        full_run = bm25(ds_id)(d.topics[["qid", "query"]])
        run = _cut(full_run, cfg.run_depth)
        t_before, old = _fastest(functools.partial(before, run, d.topics, d.qrels, specs, grades), args.repeats)
        t_prep, evaluator = _fastest(functools.partial(spec_evaluator, d.qrels, specs, grades=grades), args.repeats)
        t_run, new = _fastest(functools.partial(evaluator.per_query, run), args.repeats)
        same = _sorted_rows(old).equals(_sorted_rows(new))
        t_profile, profile = _fastest(functools.partial(prepare_evaluators, d.qrels), args.repeats)
        t_score, _ = _fastest(functools.partial(score_run, profile, full_run), args.repeats)
        print(f"{ds_id:32} {len(d.topics):>7} {len(d.qrels):>9} {len(run):>7} | {t_before:>7.2f}s | "
              f"{t_prep:>7.2f}s {t_run:>7.2f}s {t_prep + t_run:>8.2f}s | {same} | {t_profile:>7.2f}s {t_score:>7.2f}s")


if __name__ == "__main__":
    main()
