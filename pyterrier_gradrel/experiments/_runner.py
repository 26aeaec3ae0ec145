"""Run an experiment: every condition once, results stored atomically, finished runs reused.

Each condition (see :mod:`._scenarios`) gets a folder ``experiments/runs/<config name>/<run key>/`` holding

* ``condition.json`` – the key material (system, variant/τ/loss, seed, fraction, noise, base-model
  fingerprint, training hyper-parameter hash, training/evaluation dataset ids and data fingerprints,
  query limit) and timings;
* ``train_log.json`` – the trainer's report (fine-tuned systems);
* per evaluated dataset ``eval/<dataset>/run.res.gz`` (the raw run), ``perquery.csv.gz`` and
  ``metrics.json`` (means);
* ``model/`` – only with ``keep_models: true`` (a fine-tuned mE5-small is ~0.5 GB).

The folder appears in one atomic rename once everything is written, so a folder that exists is
complete. The run key is ``<readable prefix>-<sha256 of the key material>``: changing any of τ, loss,
seed, fraction, noise, base model (its weight fingerprint), training hyper-parameters, the datasets
(their ids *and* a hash of their topics + qrels) or the query limit gives a new key, so a stale run is
never reused. Metrics are recomputed from the stored run file when the configured measures change
(no retraining). Training checkpoints live in ``<run key>.partial/`` so an interrupted training resumes.

The conditions to compute run through an executor (:mod:`._executor`): one after the other in this
process, or as Ray tasks on a cluster. A failed condition leaves its error in ``<run key>.partial/error.txt``
and does not stop the others.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel._evaluation import Evaluator, MeasureSpec, spec_evaluator
from pyterrier_gradrel.experiments._config import (
    RUNTIME_TRAINING_KEYS,
    ExperimentConfig,
    dataset_facts,
    load_config,
)
from pyterrier_gradrel.experiments._executor import LocalExecutor, RayExecutor, Task, make_executor
from pyterrier_gradrel.experiments._scenarios import Condition, Target, plan, scenario_targets

# 2: training in length-grouped sub-batches; encoders default to precision='auto' (bf16 on AMX CPUs)
SCHEMA_VERSION = 2
PERQUERY_COLUMNS = ["scenario", "label", "target", "split", "role", "system", "variant", "seed", "fraction", "noise",
                    "qid", "article", "measure", "value"]
# prior seconds per condition for the ETA until this run has measured its own (2 CPU cores, XQuAD-R pools)
_PRIOR_SECONDS = {"baseline": 30.0, "fine-tuned": 180.0}


def default_root() -> Path:
    """Where ``experiments/`` lives: ``$GRADREL_EXPERIMENTS`` or ``./experiments``."""
    return Path(os.environ.get("GRADREL_EXPERIMENTS", "experiments"))


# ---------------------------------------------------------------------------------------------------------
# data access (the datasets module through PyTerrier)

@dataclass
class _Data:
    topics: pd.DataFrame
    qrels: pd.DataFrame
    fingerprint: str


class DataCache:
    """Loads topics/qrels of benchmark datasets once per run (with the query limit applied)."""

    def __init__(self, *, limit_queries: int | None = None) -> None:
        self.limit_queries = limit_queries
        self._cache: dict[str, _Data] = {}
        self._evaluators: dict[tuple, Evaluator] = {}

    def get(self, ds_id: str) -> _Data:
        """Topics (``qid``, ``query``, ``article``), qrels (``qid``, ``docno``, ``label``) and their hash."""
        if ds_id not in self._cache:
            import pyterrier as pt

            import pyterrier_gradrel  # noqa: F401  (registers the benchmark datasets)

            ds = pt.get_dataset(f"irds:{ds_id}")
            # the raw ir_datasets queries keep the untokenised text and the article of every query
            topics = pd.DataFrame(ds.irds_ref().queries_iter())
            topics = topics.rename(columns={"query_id": "qid", "text": "query"})
            topics["qid"] = topics["qid"].astype(str)
            if self.limit_queries is not None:
                topics = topics.head(self.limit_queries)
            qrels = ds.get_qrels()
            qrels["qid"] = qrels["qid"].astype(str)
            qrels = qrels[qrels["qid"].isin(set(topics["qid"]))].reset_index(drop=True)
            self._cache[ds_id] = _Data(topics.reset_index(drop=True), qrels, data_fingerprint(topics, qrels))
        return self._cache[ds_id]

    def evaluator(self, ds_id: str, measures: Sequence[MeasureSpec]) -> Evaluator:
        """The evaluator of ``measures`` on the qrels of ``ds_id``, prepared once and reused by every system."""
        key = (ds_id, tuple(measures))
        if key not in self._evaluators:
            grades = dataset_facts(ds_id).grades
            self._evaluators[key] = spec_evaluator(self.get(ds_id).qrels, measures, grades=grades)
        return self._evaluators[key]

    def corpus(self, ds_ids: Iterable[str]) -> pd.DataFrame:
        """The union of the document pools of ``ds_ids`` (deduplicated by docno)."""
        import pyterrier as pt

        frames = [pd.DataFrame(list(pt.get_dataset(f"irds:{d}").get_corpus_iter(verbose=False))) for d in ds_ids]
        return pd.concat(frames, ignore_index=True).drop_duplicates("docno").reset_index(drop=True)


def data_fingerprint(topics: pd.DataFrame, qrels: pd.DataFrame) -> str:
    """sha256 over the topics (qid, query) and qrels (qid, docno, label), order-independent."""
    h = hashlib.sha256()
    t = topics[["qid", "query"]].astype(str).sort_values(["qid", "query"])
    h.update(t.to_csv(index=False).encode())
    q = qrels[["qid", "docno", "label"]].astype(str).sort_values(["qid", "docno"])
    h.update(q.to_csv(index=False).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# systems (the retrieval and training modules)

class Components:
    """How conditions become retrieval systems. The default wires the package's real components.

    Tests (and other back-ends) can pass their own callables.

    Args:
        base_model: the encoder to fine-tune and the zero-shot baseline.
        baseline: ``(name, dataset_id) -> pt.Transformer``.
        dense: ``(encoder, dataset_id) -> pt.Transformer``.
        train: ``(condition, topics, qrels, corpus, run_dir, config) -> (encoder, train_report)``.
        fingerprint: ``() -> str``, the base model's weight fingerprint (part of every run key).
        verbose: progress bars while a passage pool is encoded (minutes on a large pool).
        device: where models run: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...
            ``None``: the config's ``training: {device: ...}`` (default ``"auto"``). Never part of a run key.
    """

    def __init__(
        self,
        *,
        base_model: str = "multilingual-e5-small",
        baseline: Callable[[str, str], Any] | None = None,
        dense: Callable[[Any, str], Any] | None = None,
        train: Callable[..., tuple[Any, dict]] | None = None,
        fingerprint: Callable[[], str] | None = None,
        verbose: bool = False,
        device: str | None = None,
    ) -> None:
        self.base_model = base_model
        self.verbose = verbose
        self.device = device
        self._baseline = baseline
        self._dense = dense
        self._train = train
        self._fingerprint = fingerprint
        self._encoder: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # sent to executor workers: each loads the base encoder itself rather than receiving its weights
        return {**self.__dict__, "_encoder": None}

    def encoder(self) -> Any:
        """The base encoder (loaded once)."""
        if self._encoder is None:
            from pyterrier_gradrel.models import load_encoder

            self._encoder = load_encoder(self.base_model, device=self.device or "auto")
        return self._encoder

    def fingerprint(self) -> str:
        """The base model fingerprint."""
        if self._fingerprint is not None:
            return self._fingerprint()
        return str(self.encoder().fingerprint())

    def baseline(self, name: str, ds_id: str) -> Any:
        """The baseline ``name`` over ``ds_id``'s pool."""
        if self._baseline is not None:
            return self._baseline(name, ds_id)
        from pyterrier_gradrel import retrieval

        if name == "BM25":
            return retrieval.bm25(ds_id)
        if name == "mE5-zero-shot":
            return retrieval.dense(self.encoder(), ds_id, verbose=self.verbose)
        return retrieval.baselines(ds_id, encoder=self.encoder())[name]

    def dense(self, encoder: Any, ds_id: str) -> Any:
        """Dense retrieval with a (fine-tuned) encoder over ``ds_id``'s pool."""
        if self._dense is not None:
            return self._dense(encoder, ds_id)
        from pyterrier_gradrel import retrieval

        return retrieval.dense(encoder, ds_id, verbose=self.verbose)

    def train(self, cond: Condition, topics: pd.DataFrame, qrels: pd.DataFrame, corpus: pd.DataFrame,
              run_dir: Path, cfg: ExperimentConfig) -> tuple[Any, dict]:
        """Fine-tune the base model for ``cond``; returns the encoder and the trainer's report."""
        if self._train is not None:
            return self._train(cond, topics, qrels, corpus, run_dir, cfg)
        from pyterrier_gradrel.training import ContrastiveTrainer

        config = train_config(cond, cfg)
        extra: dict[str, Any] = {}
        if config.side == "query":  # train against the very passage vectors the zero-shot index holds
            from pyterrier_gradrel import retrieval

            extra["doc_vectors"] = retrieval.passage_vectors(self.encoder(), cond.train, verbose=self.verbose)
        trainer = ContrastiveTrainer(self.encoder() if extra else self.base_model, config=config,
                                     device=self.device or cfg.device)
        result = trainer.fit(topics, qrels, corpus, run_dir=run_dir, **extra)
        if isinstance(result, (str, os.PathLike)):
            from pyterrier_gradrel.models import load_encoder

            result = load_encoder(str(result))
        return result, dict(getattr(trainer, "last_report", None) or {})


def train_config(cond: Condition, cfg: ExperimentConfig) -> Any:
    """The trainer's ``TrainConfig`` for a fine-tuned condition.

    The config's ``training:`` hyper-parameters, plus what the sweep sets: ``seed``, ``fraction``,
    ``noise``, the dataset's ``grades`` and either ``loss="infonce", rel=τ`` or ``loss="graded"``
    (grade-weighted multi-positive InfoNCE with the trainer's default weights 2^g - 1), and, unless
    ``training:`` sets it, the training datasets' own-article rule (:func:`own_article_rule`).
    """
    from pyterrier_gradrel.training import TrainConfig

    if not cond.fine_tuned:
        raise ValueError(f"only fine-tuned conditions are trained, got system {cond.system!r}")
    params: dict[str, Any] = {k: v for k, v in cfg.training.items() if k not in RUNTIME_TRAINING_KEYS}
    params.update(seed=cond.seed, fraction=cond.fraction, noise=cond.noise,
                  grades=tuple(dataset_facts(cond.train[0]).grades))
    params.setdefault("exclude_own_article", own_article_rule(cond, cfg))
    if cond.loss == "graded":
        params["loss"] = "graded"
    else:
        params.update(loss="infonce", rel=cond.rel)
    return TrainConfig(**params)


def own_article_rule(cond: Condition, cfg: ExperimentConfig) -> bool:
    """``exclude_own_article`` of a fine-tuned condition: ``training: {exclude_own_article: ...}`` when the
    config sets it, else what the training datasets ask for (``datasets.exclude_own_article``: True for
    structure-derived grades, False for judged ones), the rule ``gradrel train`` applies to the same data."""
    if "exclude_own_article" in cfg.training:
        return bool(cfg.training["exclude_own_article"])
    from pyterrier_gradrel.datasets import exclude_own_article

    return exclude_own_article(cond.train)


# ---------------------------------------------------------------------------------------------------------
# results

@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns (and what the report is made from).

    Attributes:
        config: the validated config.
        perquery: the per-query long frame (columns :data:`PERQUERY_COLUMNS`).
        runs_dir: ``experiments/runs/<name>``.
        results_dir: ``experiments/results/<name>``.
        wall_time: seconds this call took.
        n_run: conditions computed now; n_reused: conditions reused from disk; n_missing: conditions
            without a finished run (not computed with ``compute=False``, or failed).
        conditions: ``run key -> condition.json`` content.
        failed: ``run key -> error`` of the conditions that failed in this call.
    """

    config: ExperimentConfig
    perquery: pd.DataFrame
    runs_dir: Path
    results_dir: Path
    wall_time: float = 0.0
    n_run: int = 0
    n_reused: int = 0
    n_missing: int = 0
    conditions: dict[str, dict] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def aggregate(self) -> pd.DataFrame:
        """Mean ± sd over seeds of each system's mean score (columns ``mean``, ``sd``, ``n_seeds``)."""
        from pyterrier_gradrel.experiments._report import aggregate

        return aggregate(self.perquery)

    def significance(self) -> pd.DataFrame:
        """Paired tests of each fine-tuned variant against each baseline, corrected (see ``_significance``)."""
        from pyterrier_gradrel.experiments._significance import compare_to_baselines

        s = self.config.significance
        return compare_to_baselines(self.perquery, baselines=list(self.config.baselines), test=s.test,
                                    correction=s.correction, alpha=s.alpha, permutations=s.permutations,
                                    random_seed=s.random_seed)

    def thresholds(self) -> pd.DataFrame:
        """Per target, the winning variant on the primary measure tested against the others (see
        ``_significance.compare_thresholds``)."""
        from pyterrier_gradrel.experiments._significance import compare_thresholds

        s = self.config.significance
        return compare_thresholds(self.perquery, measure=self.config.primary_measure, test=s.test,
                                  correction=s.correction, alpha=s.alpha, permutations=s.permutations,
                                  random_seed=s.random_seed)

    def levels(self) -> pd.DataFrame:
        """Each variant's change with less training data / grade noise, and the differences between variants'
        changes, on the primary measure (see ``_significance.compare_levels``)."""
        from pyterrier_gradrel.experiments._significance import compare_levels

        s = self.config.significance
        return compare_levels(self.perquery, measure=self.config.primary_measure, test=s.test,
                              correction=s.correction, alpha=s.alpha, permutations=s.permutations,
                              random_seed=s.random_seed)

    def bootstrap(self) -> pd.DataFrame:
        """Article-level bootstrap CIs (see ``_significance.bootstrap_table``)."""
        from pyterrier_gradrel.experiments._significance import bootstrap_table

        s = self.config.significance
        return bootstrap_table(self.perquery, baselines=list(self.config.baselines), unit=s.bootstrap_unit,
                               samples=s.bootstrap_samples, confidence=s.confidence, random_seed=s.random_seed)

    def calibration(self) -> pd.DataFrame:
        """Dev-chosen τ vs oracle vs fixed τ (see ``_calibration``)."""
        from pyterrier_gradrel.experiments._calibration import calibrate

        measure = self.config.calibration.measure or self.config.primary_measure
        return calibrate(self.perquery, measure=measure, variants=self.config.variants)

    def write_report(self, results_dir: str | os.PathLike | None = None) -> Path:
        """Write ``report.md``, CSVs and PNG plots into ``results_dir`` (default: :attr:`results_dir`)."""
        from pyterrier_gradrel.experiments._report import write_report

        return write_report(self, Path(results_dir) if results_dir is not None else self.results_dir)


# ---------------------------------------------------------------------------------------------------------
# running

def run_key(material: Mapping[str, Any]) -> str:
    """``<prefix>-<hash>`` for a condition's key material (see the module docstring)."""
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if material["system"] == "fine-tuned":
        train = "+".join(d.split("/")[2] for d in material["train"])
        if len(train) > 40:
            train = f"{len(material['train'])}langs"
        prefix = (f"ft-{train}-{material['variant'].replace('=', '')}-s{material['seed']}"
                  f"-f{material['fraction']:g}-n{material['noise']:g}")
    else:
        target = material["targets"][0]["dataset"].split("/", 1)[1].replace("/", "_")
        prefix = f"{material['system']}-{target}"
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in prefix)
    return f"{safe}-{digest}"


def key_material(cond: Condition, cfg: ExperimentConfig, data: DataCache, fingerprint: Callable[[], str]) -> dict:
    """Everything that decides a condition's results."""
    material: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "system": cond.system,
        "variant": cond.variant,
        "rel": cond.rel,
        "loss": cond.loss,
        "targets": [{"dataset": t.dataset, "split": t.split, "data": data.get(t.dataset).fingerprint}
                    for t in sorted(cond.targets, key=lambda t: t.dataset)],
        "limit_queries": cfg.limit_queries,
        "depth": cfg.run_depth,
    }
    if cond.system != "BM25":
        material["model"] = fingerprint()
    if cond.fine_tuned:
        material.update(
            seed=cond.seed, fraction=cond.fraction, noise=cond.noise, train=list(cond.train),
            train_data=[data.get(d).fingerprint for d in cond.train], training=cfg.training_hash(),
        )
        # the own-article rule comes from the datasets' manifests, which the data fingerprint does not cover;
        # recorded only when off, so the keys of structural datasets (the rule on, as always) stay as they were
        if "exclude_own_article" not in cfg.training and not own_article_rule(cond, cfg):
            material["exclude_own_article"] = False
    return material


def run_experiment(
    config: str | os.PathLike | Mapping[str, Any] | ExperimentConfig,
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
) -> ExperimentResult:
    """Run (or resume) an experiment and write its report.

    A condition that fails does not stop the others: the sweep finishes, the report is written from the
    finished runs, and then :class:`ConditionsFailed` names the failed conditions and their errors.

    Args:
        config: a path to ``experiments/<name>.yaml``, a mapping, or an :class:`ExperimentConfig`.
        root: the ``experiments`` folder (runs go to ``root/runs/<name>``, the report to ``root/results/<name>``);
            default ``$GRADREL_EXPERIMENTS`` or ``./experiments``.
        limit_queries: override the config's query limit (smoke runs; part of the run keys).
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

    Returns:
        The :class:`ExperimentResult` (its ``perquery`` is empty on a dry run).

    Raises:
        ConditionsFailed: after the sweep, when some conditions failed (``.result`` holds the rest).
    """
    from tqdm.auto import tqdm

    start = time.time()
    cfg = load_config(config)
    if limit_queries is not None:
        cfg = cfg.with_overrides(limit_queries=int(limit_queries))
    root = Path(root) if root is not None else default_root()
    runs_dir = root / "runs" / cfg.name
    results_dir = root / "results" / cfg.name
    components = components or Components(base_model=cfg.base_model, verbose=verbose, device=device or cfg.device)
    if isinstance(executor, str):
        executor = make_executor(executor, address=address, threads=int(cfg.training.get("threads") or 1))
    if data is None:
        data = DataCache(limit_queries=cfg.limit_queries)
    elif data.limit_queries != cfg.limit_queries:
        raise ValueError(f"data.limit_queries ({data.limit_queries}) must equal the config's ({cfg.limit_queries})")
    conditions = plan(cfg)
    fp_cache: list[str] = []

    def fingerprint() -> str:
        if not fp_cache:
            fp_cache.append(components.fingerprint())
        return fp_cache[0]

    result = ExperimentResult(config=cfg, perquery=pd.DataFrame(columns=PERQUERY_COLUMNS),
                              runs_dir=runs_dir, results_dir=results_dir)
    keyed = []
    for cond in conditions:
        material = key_material(cond, cfg, data, fingerprint)
        keyed.append((cond, material, run_key(material)))
    if dry_run:
        for cond, _material, key in keyed:
            done = _is_done(runs_dir / key)
            print(f"{'reuse' if done else 'run  '}  {key}  {cond.describe()}")
        n_done = sum(_is_done(runs_dir / k) for _, _, k in keyed)
        print(f"{len(keyed)} conditions: {n_done} finished, {len(keyed) - n_done} to run "
              f"({sum(c.fine_tuned and not _is_done(runs_dir / k) for c, _, k in keyed)} fine-tuning runs)")
        result.wall_time = time.time() - start
        return result

    eta = _Eta(keyed, runs_dir)
    frames = []
    targets_by_scenario = scenario_targets(cfg)
    tasks = []
    with tqdm(total=len(keyed), desc=cfg.name, unit="cond", disable=not verbose,
              bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}] {postfix}") as bar:
        for cond, material, key in keyed:
            run_dir = runs_dir / key
            if _is_done(run_dir):
                result.n_reused += 1
                _refresh_metrics(run_dir, cond, cfg, data)
                bar.update(1)
            elif not compute:
                result.n_missing += 1
                bar.update(1)
            else:
                # baselines first: they build the BM25 indexes and zero-shot pool vectors fine-tuning reads
                tasks.append(Task(key, _run_condition, (cond, material, run_dir, cfg, data, components),
                                  stage=int(cond.fine_tuned), gpu=cond.system != "BM25"))
        index = {key: i for i, (_, _, key) in enumerate(keyed)}

        def started(task: Task) -> None:
            i = index[task.key]
            bar.set_postfix_str(f"ETA {eta.remaining(i)} | {keyed[i][0].describe()}"[:100])

        for outcome in executor.run(tasks, started=started):
            cond, run_dir = outcome.task.args[0], outcome.task.args[2]
            error = outcome.error
            if error is None and not _is_done(run_dir):
                error = (f"the condition finished on a worker but its run folder {run_dir} is not visible here: "
                         f"the experiments root must be on a filesystem that every node shares")
            if error is None:
                eta.observe(cond, outcome.seconds)
                result.n_run += 1
            else:
                result.n_missing += 1
                result.failed[outcome.task.key] = error
                _atomic.write_text(run_dir.with_name(run_dir.name + ".partial") / "error.txt", error)
                if verbose:
                    bar.write(f"FAILED {outcome.task.key} ({cond.describe()}): {_last_line(error)}")
            bar.update(1)
    for cond, _material, key in keyed:
        run_dir = runs_dir / key
        if _is_done(run_dir):
            result.conditions[key] = json.loads((run_dir / "condition.json").read_text(encoding="utf-8"))
            frames.append(_load_perquery(run_dir, cond, cfg, targets_by_scenario))
    frames = [f for f in frames if not f.empty]
    if frames:
        result.perquery = pd.concat(frames, ignore_index=True)[PERQUERY_COLUMNS]
    result.wall_time = time.time() - start
    if report:
        result.write_report()
    if result.failed:
        raise ConditionsFailed(result)
    return result


class ConditionsFailed(RuntimeError):
    """Some conditions of a sweep failed; the others finished and are in :attr:`result`.

    Each failed condition's error is also in ``<run key>.partial/error.txt`` under the runs folder.
    """

    def __init__(self, result: ExperimentResult) -> None:
        self.result = result
        lines = [f"{len(result.failed)} condition(s) of {result.config.name} failed; the other conditions finished:"]
        lines += [f"  {key}: {_last_line(error)}" for key, error in result.failed.items()]
        super().__init__("\n".join(lines))


def _last_line(error: str) -> str:
    """The last non-empty line of a traceback (the exception itself)."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else error


class _Eta:
    """Remaining time: the unfinished conditions × the mean measured seconds of their kind (or a prior)."""

    def __init__(self, keyed: list, runs_dir: Path) -> None:
        self.kinds = ["fine-tuned" if c.fine_tuned else "baseline" for c, _, _ in keyed]
        self.todo = [not _is_done(runs_dir / k) for _, _, k in keyed]
        self.seconds: dict[str, list[float]] = {"baseline": [], "fine-tuned": []}

    def observe(self, cond: Condition, seconds: float) -> None:
        self.seconds["fine-tuned" if cond.fine_tuned else "baseline"].append(seconds)

    def remaining(self, index: int) -> str:
        per = {k: (sum(v) / len(v) if v else _PRIOR_SECONDS[k]) for k, v in self.seconds.items()}
        left = sum(per[k] for k, todo in zip(self.kinds[index:], self.todo[index:], strict=True) if todo)
        minutes, secs = divmod(int(left), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" + ("" if any(self.seconds.values()) else " (prior)")


def _is_done(run_dir: Path) -> bool:
    return (run_dir / "condition.json").is_file() and (run_dir / "eval").is_dir()


def _eval_dir(run_dir: Path, target: Target) -> Path:
    return run_dir / "eval" / target.dataset.replace("/", "__")


def _run_condition(cond: Condition, material: dict, run_dir: Path, cfg: ExperimentConfig, data: DataCache,
                   components: Components) -> None:
    threads = cfg.training.get("threads")
    with _torch_threads(int(threads) if threads else None):
        _compute_condition(cond, material, run_dir, cfg, data, components)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for one whole condition (training, encoding, retrieval), then restored.

    The thread count changes float reductions, so a condition gives bit-identical numbers under every executor
    only when its thread count is the same: ``training.threads`` pins it for the local executor and Ray workers
    alike (``None``: torch's setting, i.e. all cores locally but the task's ``num_cpus`` under Ray).
    """
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _compute_condition(cond: Condition, material: dict, run_dir: Path, cfg: ExperimentConfig, data: DataCache,
                       components: Components) -> None:
    import pyterrier as pt

    t0 = time.time()
    partial = run_dir.with_name(run_dir.name + ".partial")
    train_report: dict = {}
    if cond.fine_tuned:
        topics = pd.concat([data.get(d).topics for d in cond.train], ignore_index=True)
        qrels = pd.concat([data.get(d).qrels for d in cond.train], ignore_index=True)
        corpus = data.corpus(cond.train)
        encoder, train_report = components.train(cond, topics, qrels, corpus, partial / "train", cfg)
    t_train = time.time() - t0
    runs: dict[str, pd.DataFrame] = {}
    for target in cond.targets:
        d = data.get(target.dataset)
        system = components.dense(encoder, target.dataset) if cond.fine_tuned else \
            components.baseline(cond.system, target.dataset)
        res = system(d.topics[["qid", "query"]])
        runs[target.dataset] = _cut(res, cfg.run_depth)
    t_retrieve = time.time() - t0 - t_train
    with _atomic.atomic_path(run_dir) as tmp:
        tmp.mkdir(parents=True)
        for target in cond.targets:
            d = data.get(target.dataset)
            edir = _eval_dir(tmp, target)
            edir.mkdir(parents=True)
            res = runs[target.dataset]
            pt.io.write_results(res, str(edir / "run.res.gz"), format="trec")
            _write_metrics(edir, res, target, cfg, data)
        if train_report:
            (tmp / "train_log.json").write_text(json.dumps(train_report, indent=2, default=str), encoding="utf-8")
        if cfg.keep_models and cond.fine_tuned:
            model = partial / "train" / "model"
            if model.is_dir():
                shutil.copytree(model, tmp / "model")
            elif hasattr(encoder, "save"):
                encoder.save(tmp / "model")
        meta = {"key": material, "condition": dataclasses.asdict(cond), "describe": cond.describe(),
                "seconds": {"train": round(t_train, 1), "retrieve": round(t_retrieve, 1),
                            "total": round(time.time() - t0, 1)},
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "condition.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    shutil.rmtree(partial, ignore_errors=True)


def _cut(res: pd.DataFrame, depth: int) -> pd.DataFrame:
    """The top ``depth`` results per query, re-ranked (0-based ``rank``, PyTerrier's convention)."""
    import pyterrier as pt

    res = res.sort_values(["qid", "score"], ascending=[True, False], kind="stable")
    res = res.groupby("qid", sort=False).head(depth).reset_index(drop=True)
    return pt.model.add_ranks(res[["qid", "docno", "score"]].copy())


def _write_metrics(edir: Path, res: pd.DataFrame, target: Target, cfg: ExperimentConfig, data: DataCache) -> None:
    d = data.get(target.dataset)
    per_query = data.evaluator(target.dataset, cfg.measures).per_query(res)
    articles = d.topics.set_index("qid")["article"].astype(str) if "article" in d.topics.columns else None
    per_query["article"] = per_query["qid"].map(articles) if articles is not None else ""
    _atomic.write_bytes(edir / "perquery.csv.gz", _to_csv_gz(per_query[["qid", "article", "measure", "value"]]))
    means = per_query.groupby("measure")["value"].mean().to_dict()
    _atomic.write_text(edir / "metrics.json", json.dumps(
        {"dataset": target.dataset, "n_queries": int(per_query["qid"].nunique()), "means": means}, indent=2))


def _to_csv_gz(df: pd.DataFrame) -> bytes:
    import gzip
    import io

    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(df.to_csv(index=False).encode("utf-8"))
    return buf.getvalue()


def _refresh_metrics(run_dir: Path, cond: Condition, cfg: ExperimentConfig, data: DataCache) -> None:
    """Re-evaluate a reused run from its stored run file when the configured measures changed."""
    import pyterrier as pt

    wanted = {m.label for m in cfg.measures}
    for target in cond.targets:
        edir = _eval_dir(run_dir, target)
        pq = pd.read_csv(edir / "perquery.csv.gz", dtype={"qid": str, "article": str})
        if wanted <= set(pq["measure"]):
            continue
        res = pt.io.read_results(str(edir / "run.res.gz"))
        _write_metrics(edir, res, target, cfg, data)


def _load_perquery(run_dir: Path, cond: Condition, cfg: ExperimentConfig,
                   targets_by_scenario: dict[str, list[Target]]) -> pd.DataFrame:
    wanted = [m.label for m in cfg.measures]
    frames = []
    for target in cond.targets:
        pq = pd.read_csv(_eval_dir(run_dir, target) / "perquery.csv.gz", dtype={"qid": str, "article": str},
                         keep_default_na=False)
        pq = pq[pq["measure"].isin(wanted)]
        # a baseline is shared: attach its scores to every scenario that evaluates this dataset
        scenarios = [cond.scenario] if cond.fine_tuned else [
            s for s, ts in targets_by_scenario.items() if any(t.dataset == target.dataset for t in ts)]
        for scenario in scenarios:
            t = target if cond.fine_tuned else next(
                t for t in targets_by_scenario[scenario] if t.dataset == target.dataset)
            frame = pq.assign(scenario=scenario, label=t.label, target=t.dataset, split=t.split, role=t.role,
                              system=cond.system, variant=cond.variant, seed=cond.seed, fraction=cond.fraction,
                              noise=cond.noise)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=PERQUERY_COLUMNS)
    return pd.concat(frames, ignore_index=True)[PERQUERY_COLUMNS]
