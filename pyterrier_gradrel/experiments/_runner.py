"""Run an experiment: every condition once, results stored atomically, finished runs reused.

:func:`run_experiment` plans the conditions (:mod:`._plan`), names each by its run key (:mod:`._store`),
reuses the finished ones and computes the others through an executor (:mod:`._executor`): one after the
other in this process, or as Ray tasks on a cluster. A condition trains (fine-tuned systems, through
:class:`~._components.Components`), retrieves on each target and is written to its run folder in one
atomic rename, so a folder that exists is complete. Training checkpoints live in ``<run key>.partial/``
so an interrupted training resumes. A failed condition leaves its error in ``<run key>.partial/error.txt``
and does not stop the others.
"""
from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel._device import torch_threads
from pyterrier_gradrel.experiments._components import Components
from pyterrier_gradrel.experiments._config import ExperimentConfig, load_config
from pyterrier_gradrel.experiments._data import DataCache
from pyterrier_gradrel.experiments._executor import LocalExecutor, Outcome, RayExecutor, Task, make_executor
from pyterrier_gradrel.experiments._plan import Condition
from pyterrier_gradrel.experiments._records import RECORDS_FILE, recorded_keys, restore_runs, write_records
from pyterrier_gradrel.experiments._report import write_report
from pyterrier_gradrel.experiments._result import ConditionsFailed, ExperimentResult, last_line
from pyterrier_gradrel.experiments._scenarios import scenario_targets
from pyterrier_gradrel.experiments._store import (
    PERQUERY_COLUMNS,
    adopt_run,
    default_root,
    finished_elsewhere,
    is_done,
    key_material,
    load_perquery,
    partial_dir,
    read_condition,
    refresh_metrics,
    run_key,
    write_run,
)

if TYPE_CHECKING:
    from pyterrier_gradrel.models import E5BiEncoder, QueryTunedEncoder

__all__ = ["run_experiment"]

# prior seconds per condition for the ETA until this run has measured its own (2 CPU cores, XQuAD-R pools)
_PRIOR_SECONDS = {"baseline": 30.0, "fine-tuned": 180.0}


def run_experiment(
    config: str | os.PathLike | Mapping[str, object] | ExperimentConfig,
    *,
    root: str | os.PathLike | None = None,
    limit_queries: int | None = None,
    dry_run: bool = False,
    report: bool = True,
    components: Components | None = None,
    data: DataCache | None = None,
    compute: bool = True,
    verbose: bool = True,
    executor: str | LocalExecutor | RayExecutor = "local",
    address: str | None = None,
    device: str | None = None,
    restore: bool = False,
    scenarios: Sequence[str] | None = None,
) -> ExperimentResult:
    """Run (or resume) an experiment and write its report.

    A condition that fails does not stop the others: the sweep finishes, the report is written from the
    finished runs, and then :class:`ConditionsFailed` names the failed conditions and their errors.

    Args:
        config: a path to ``experiments/<name>.yaml``, a mapping, or an :class:`ExperimentConfig`.
        root: the ``experiments`` folder (runs go to ``root/runs/<name>``, the report to ``root/results/<name>``);
            default ``$GRADREL_EXPERIMENTS`` or ``./experiments``.
        limit_queries: override the config's query limit (smoke runs; part of the run keys). Its report goes to
            ``root/results/<name>-limit<N>``, beside the results of the config's own limit.
        dry_run: only list the conditions and whether each is reusable; nothing is trained or evaluated.
        report: write the Markdown report and plots at the end.
        components: the retrieval/training back-end (default: the package's real components).
        data: where topics/qrels/corpora come from (default: the benchmark datasets through PyTerrier).
        compute: False reports only the finished runs (``gradrel report``); missing ones are counted.
        verbose: progress bar with ETA and a line per condition.
        executor: ``"local"`` (one condition after the other in this process), ``"ray"`` (conditions as Ray
            tasks; see :mod:`._executor`) or an executor object.
        address: the Ray cluster to attach to (default ``$RAY_ADDRESS``, else a local Ray); ``"ray"`` only.
        device: where models run (``"auto"``, ``"cpu"``, ``"cuda"``, ...; default: the config's
            ``training: {device: ...}``, else ``"auto"``); never part of a run key.
        restore: first rebuild, from the results folder's run record (``results/<name>/runs.json``, see
            :mod:`._records`), the finished conditions whose run folders are missing (a sweep resumed on a fresh
            clone); without it a condition counts as finished only when its run folder exists.
        scenarios: compute only the conditions of these scenarios (their names, e.g. ``crosslingual-afriqa``) and the
            baselines their targets need; the others are counted as not run yet, and the report covers the whole
            config (partial until they have run). Default: every scenario.

    Returns:
        The :class:`ExperimentResult` (its ``perquery`` is empty on a dry run).

    Raises:
        ConditionsFailed: after the sweep, when some conditions failed (``.result`` holds the rest).
        ValueError: an unknown scenario name; a report that would drop results its folder holds (see
            :func:`_check_keeps`; refused before anything is computed where it can be foreseen), which are then
            left as they are.
    """
    start = time.time()
    smoke = limit_queries is not None
    cfg = load_config(config, **({"limit_queries": limit_queries} if smoke else {}))
    root = Path(root) if root is not None else default_root()
    runs_dir = root / "runs" / cfg.name
    results_dir = root / "results" / (f"{cfg.name}-limit{limit_queries}" if smoke else cfg.name)
    components = components or Components(base_model=cfg.base_model, verbose=verbose,
                                         device=device or cfg.training.device)
    if isinstance(executor, str):
        executor = make_executor(executor, address=address, threads=cfg.training.threads or 1)
    data = _check_data(data, cfg)
    keyed = _keyed_conditions(cfg, data, components)
    targets_by_scenario = scenario_targets(cfg.scenarios, calibrate=cfg.calibration.enabled)
    wanted = _selected(keyed, scenarios, targets_by_scenario)
    result = ExperimentResult(config=cfg, perquery=pd.DataFrame(columns=PERQUERY_COLUMNS),
                              runs_dir=runs_dir, results_dir=results_dir,
                              options=f"--limit-queries {limit_queries}" if smoke else "")
    if dry_run:
        _print_plan(keyed, runs_dir, with_model=cfg.keep_models,
                    recorded=recorded_keys(results_dir, cfg) if restore else set(), wanted=wanted)
        result.wall_time = time.time() - start
        return result

    if restore:
        restore_runs(keyed, runs_dir, results_dir, cfg)
    if compute:
        _adopt_finished(keyed, runs_dir, with_model=cfg.keep_models)
    planned = {key for _cond, _material, key in keyed}
    if report:  # refuse now, not after hours of compute, a report that would drop results
        done = {key for key in planned if is_done(runs_dir / key)}
        _check_keeps(done | (wanted if compute else set()), planned, results_dir, result)
    eta = _Eta(keyed, runs_dir, wanted)
    _run_conditions(keyed, result, executor=executor, eta=eta, cfg=cfg, data=data, components=components,
                    compute=compute, verbose=verbose, wanted=wanted)
    _collect(result, keyed, targets_by_scenario)
    result.wall_time = time.time() - start
    if report and (result.conditions or not result.failed):
        _check_keeps(set(result.conditions), planned, results_dir, result)
        write_report(result, results_dir)
        write_records([(cond, key) for cond, _material, key in keyed if key in result.conditions], result.perquery,
                      runs_dir, results_dir, cfg)
    if result.failed:
        raise ConditionsFailed(result)
    return result


def _check_keeps(finished: set[str], planned: set[str], results_dir: Path, result: ExperimentResult) -> None:
    """Refuse a report of the ``finished`` run keys (of the ``planned`` ones) that would report nothing, or replace
    results ``results_dir`` holds without keeping every run they hold.

    A report is written from the finished runs alone, so it may replace earlier results only when nothing is lost:
    always when every planned condition has finished (a complete report, e.g. after a code change gave all runs new
    keys); a partial report only when the run record (:mod:`._records`) shows that every recorded run is among its own.

    Raises:
        ValueError: nothing has finished; a recorded run of this plan was neither found nor restored (pass
            ``--restore``); or a partial report would replace results of other run keys or results without a run
            record (other code, data, model, inference precision or query limit).
    """
    if finished == planned:
        return
    record = results_dir / RECORDS_FILE
    recorded = recorded_keys(results_dir, result.config)
    scores = (results_dir / "perquery.csv.gz").is_file()
    kept = f"the results in {results_dir} are left as they are" if scores else "nothing is written"
    if not finished:
        found = (f"the {len(recorded)} recorded run(s) have other run keys: other code, data, model, inference "
                 f"precision or query limit" if recorded
                 else f"there is no finished run under {result.runs_dir}, and "
                      + (f"the run record {record} holds none" if record.is_file() else f"no run record {record}"))
        raise ValueError(f"no run of {result.config.name}'s plan has finished ({found}): {kept} (run the experiment"
                         + (", or 'gradrel report --from-results' to rebuild the report from its per-query scores)"
                            if scores else ")"))
    if not scores:
        return
    unrestored = (recorded & planned) - finished
    if unrestored:
        raise ValueError(f"{len(unrestored)} finished run(s) that {record} records are neither under {result.runs_dir} "
                         f"nor restored: {kept} (pass --restore to rebuild them from the record)")
    if recorded - planned or not recorded:
        dropped = (f"the {len(recorded - planned)} recorded run(s) of other run keys (other code, data, model, inference "
                   f"precision or query limit)" if recorded else f"results that have no run record {record}")
        raise ValueError(f"a partial report ({len(finished)} of {len(planned)} conditions finished) would replace "
                         f"{dropped}: {kept} (finish the sweep to replace them with a complete report, or remove "
                         f"{results_dir} first)")


def _check_data(data: DataCache | None, cfg: ExperimentConfig) -> DataCache:
    """``data``, or a new cache with the config's query limit; a given cache must have that limit."""
    if data is None:
        data = DataCache(limit_queries=cfg.limit_queries)
    elif data.limit_queries != cfg.limit_queries:
        raise ValueError(f"data.limit_queries ({data.limit_queries}) must equal the config's ({cfg.limit_queries})")
    return data


def _selected(keyed: list[tuple[Condition, dict[str, object], str]], scenarios: Sequence[str] | None,
              targets_by_scenario: Mapping[str, list]) -> set[str]:
    """The run keys to compute: every condition's, or those of the ``scenarios`` named and of the baselines that
    evaluate their targets.

    Raises:
        ValueError: a name that is not one of the config's scenarios.
    """
    if scenarios is None:
        return {key for _cond, _material, key in keyed}
    unknown = sorted(set(scenarios) - set(targets_by_scenario))
    if unknown:
        raise ValueError(f"no scenario {unknown} in this config; its scenarios are {sorted(targets_by_scenario)}")
    datasets = {t.dataset for name in scenarios for t in targets_by_scenario[name]}
    return {key for cond, _material, key in keyed
            if cond.scenario in scenarios or (not cond.fine_tuned and {t.dataset for t in cond.targets} & datasets)}


def _keyed_conditions(cfg: ExperimentConfig, data: DataCache,
                      components: Components) -> list[tuple[Condition, dict[str, object], str]]:
    """(condition, key material, run key) of every condition of the config's plan; the components' fingerprint and
    BM25 engine are asked once, when a condition needs them."""
    fingerprint = functools.cache(components.fingerprint)
    engine = functools.cache(components.bm25_engine)
    materials = [(cond, key_material(cond, cfg, data, fingerprint, engine)) for cond in cfg.conditions]
    return [(cond, material, run_key(material)) for cond, material in materials]


def _run_conditions(keyed: list[tuple[Condition, dict[str, object], str]], result: ExperimentResult, *,
                    executor: LocalExecutor | RayExecutor, eta: _Eta, cfg: ExperimentConfig, data: DataCache,
                    components: Components, compute: bool, verbose: bool, wanted: set[str]) -> None:
    """Reuse the finished conditions, count the others as missing (without ``compute``, or not ``wanted``) or run
    them through ``executor`` as one :class:`Task` each, behind a progress bar."""
    from tqdm.auto import tqdm

    with tqdm(total=len(keyed), desc=cfg.name, unit="cond", disable=not verbose,
              bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}] {postfix}") as bar:
        tasks, index, repeats = [], {}, []
        for i, (cond, material, key) in enumerate(keyed):
            run_dir = result.runs_dir / key
            if key in index:  # the same run in two scenarios: computed once
                repeats.append(key)
            elif is_done(run_dir):
                result.n_reused += 1
                refresh_metrics(run_dir, cond, cfg, data)
                bar.update(1)
            elif not compute or key not in wanted:
                result.n_missing += 1
                bar.update(1)
            else:
                # baselines first: they build the BM25 indexes and zero-shot pool vectors fine-tuning reads
                tasks.append(Task(key, _run_condition, (cond, material, run_dir, cfg, data, components),
                                  stage=int(cond.fine_tuned), gpu=cond.system != "BM25"))
                index[key] = i

        def started(task: Task) -> None:
            bar.set_postfix_str(f"ETA {eta.remaining(index[task.key])} | {keyed[index[task.key]][0].describe()}"[:100])

        for outcome in executor.run(tasks, started=started):
            _record_outcome(outcome, result, eta, bar, verbose)
            bar.update(1)
        for key in repeats:
            result.n_reused += key not in result.failed
            result.n_missing += key in result.failed
            bar.update(1)


def _record_outcome(outcome: Outcome, result: ExperimentResult, eta: _Eta, bar: Any, verbose: bool) -> None:
    """Count a finished task as run, or as failed with its error written to ``<run key>.partial/error.txt``."""
    cond, run_dir = outcome.task.args[0], outcome.task.args[2]
    error = _error(outcome.error, run_dir)
    if error is None:
        eta.observe(cond, outcome.seconds)
        result.n_run += 1
    else:
        result.n_missing += 1
        result.failed[outcome.task.key] = error
        _atomic.write_text(partial_dir(run_dir) / "error.txt", error)
        if verbose:
            bar.write(f"FAILED {outcome.task.key} ({cond.describe()}): {last_line(error)}")


def _adopt_finished(keyed: list[tuple[Condition, dict[str, object], str]], runs_dir: Path, *,
                    with_model: bool) -> None:
    """Copy into ``runs_dir`` the conditions that another experiment under the same root has finished with the same
    run key (``_store.adopt_run``)."""
    for _cond, _material, key in keyed:
        run_dir = runs_dir / key
        if not is_done(run_dir) and (source := finished_elsewhere(run_dir, with_model=with_model)) is not None:
            adopt_run(run_dir, source, with_model=with_model)


def _print_plan(keyed: list[tuple[Condition, dict[str, object], str]], runs_dir: Path, *, with_model: bool,
                recorded: set[str], wanted: set[str]) -> None:
    """``--dry-run``: one line per condition (reused, restored from the run record, copied from another experiment's
    finished run, to run, or left for later: not in the selected scenarios) and a summary."""
    counts = {"reuse": 0, "restore": 0, "copy": 0, "run": 0, "later": 0}
    fine_tuning = 0
    for cond, _material, key in keyed:
        done = is_done(runs_dir / key)
        restore = not done and key in recorded
        source = None if done or restore else finished_elsewhere(runs_dir / key, with_model=with_model)
        status = ("reuse" if done else "restore" if restore else "copy" if source is not None
                  else "run" if key in wanted else "later")
        counts[status] += 1
        fine_tuning += status == "run" and cond.fine_tuned
        print(f"{status:<5}  {key}  {cond.describe()}" + (f" (finished in {source.parent.name})" if source else ""))
    copies = f", {counts['copy']} to copy from other experiments' finished runs" if counts["copy"] else ""
    restores = f", {counts['restore']} to restore from the run record" if counts["restore"] else ""
    later = f", {counts['later']} left for other scenarios" if counts["later"] else ""
    print(f"{len(keyed)} conditions: {counts['reuse']} finished{restores}{copies}, {counts['run']} to run "
          f"({fine_tuning} fine-tuning runs){later}")


def _error(error: str | None, run_dir: Path) -> str | None:
    """A condition's error: the executor's, or a run folder that a worker finished but this process cannot see."""
    if error is None and not is_done(run_dir):
        return (f"the condition finished on a worker but its run folder {run_dir} is not visible here: "
                f"the experiments root must be on a filesystem that every node shares")
    return error


def _collect(result: ExperimentResult, keyed: list[tuple[Condition, dict[str, object], str]],
             targets_by_scenario: Mapping[str, list]) -> None:
    """Fill ``result`` with the finished runs: their ``condition.json`` and per-query rows."""
    frames = []
    for cond, _material, key in keyed:
        run_dir = result.runs_dir / key
        if is_done(run_dir):
            result.conditions[key] = read_condition(run_dir)
            frames.append(load_perquery(run_dir, cond, result.config, targets_by_scenario))
    frames = [f for f in frames if not f.empty]
    if frames:
        result.perquery = pd.concat(frames, ignore_index=True)[PERQUERY_COLUMNS]


class _Eta:
    """Remaining time: the unfinished conditions × the mean measured seconds of their kind (or a prior)."""

    def __init__(self, keyed: list, runs_dir: Path, wanted: set[str]) -> None:
        self.kinds = ["fine-tuned" if c.fine_tuned else "baseline" for c, _, _ in keyed]
        self.todo = [k in wanted and not is_done(runs_dir / k) for _, _, k in keyed]
        self.seconds: dict[str, list[float]] = {"baseline": [], "fine-tuned": []}

    def observe(self, cond: Condition, seconds: float) -> None:
        self.seconds["fine-tuned" if cond.fine_tuned else "baseline"].append(seconds)

    def remaining(self, index: int) -> str:
        per = {k: (sum(v) / len(v) if v else _PRIOR_SECONDS[k]) for k, v in self.seconds.items()}
        left = sum(per[k] for k, todo in zip(self.kinds[index:], self.todo[index:], strict=True) if todo)
        minutes, secs = divmod(int(left), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" + ("" if any(self.seconds.values()) else " (prior)")


def _run_condition(cond: Condition, material: dict[str, object], run_dir: Path, cfg: ExperimentConfig,
                   data: DataCache, components: Components) -> None:
    """Train (a fine-tuned condition), retrieve on every target and write the run folder, with the configured
    torch threads."""
    t0 = time.time()
    partial = partial_dir(run_dir)
    train_report: dict[str, object] = {}
    with torch_threads(cfg.training.threads):
        if cond.fine_tuned:
            encoder, train_report = components.train(cond, *data.train_data(cond.train), data.corpus(cond.train),
                                                     partial / "train", cfg)
        t_train = time.time() - t0
        runs: dict[str, pd.DataFrame] = {}
        for target in cond.targets:
            system = components.dense(encoder, target.dataset) if cond.fine_tuned else \
                components.baseline(cond.system, target.dataset)
            runs[target.dataset] = _cut(system(data.get(target.dataset).topics[["qid", "query"]]), cfg.run_depth)
        t_retrieve = time.time() - t0 - t_train
        model = None
        if cfg.keep_models and cond.fine_tuned:
            model = _model_writer(partial / "train" / "model", encoder)
        write_run(run_dir, cond, material, runs, cfg=cfg, data=data, train_report=train_report, model=model,
                  seconds={"train": round(t_train, 1), "retrieve": round(t_retrieve, 1),
                           "total": round(time.time() - t0, 1)})


def _model_writer(trained: Path, encoder: E5BiEncoder | QueryTunedEncoder) -> Callable[[Path], None]:
    """Writes the fine-tuned model into a run folder: a copy of the trainer's folder, else the encoder saved."""

    def write(dest: Path) -> None:
        if trained.is_dir():
            shutil.copytree(trained, dest)
        elif hasattr(encoder, "save"):
            encoder.save(dest)

    return write


def _cut(res: pd.DataFrame, depth: int) -> pd.DataFrame:
    """The top ``depth`` results per query, re-ranked (0-based ``rank``, PyTerrier's convention)."""
    import pyterrier as pt

    res = res.sort_values(["qid", "score"], ascending=[True, False], kind="stable")
    res = res.groupby("qid", sort=False).head(depth).reset_index(drop=True)
    return pt.model.add_ranks(res[["qid", "docno", "score"]].copy())
