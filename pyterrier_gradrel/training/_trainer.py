"""``ContrastiveTrainer``: threshold-binarized contrastive fine-tuning of an E5-style bi-encoder.

The trainer runs the loop; its parts live beside it: the config and run identity (``_config``), the run
folder (``_run_folder``), the training data (``_data``), checkpoints (``_checkpoint``) and the query-side
passage vectors (``_vectors``).
"""
from __future__ import annotations

import glob
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel._paths import home
from pyterrier_gradrel.training._checkpoint import CHECKPOINT, State, resume_checkpoint, save_checkpoint
from pyterrier_gradrel.training._config import LOSSES, SIDES, TrainConfig, schedule_note
from pyterrier_gradrel.training._data import corpus_frame, data_identity, prepare
from pyterrier_gradrel.training._run_folder import (
    adopt,
    base_files,
    fingerprint_files,
    legacy_fingerprint_folder,
    release,
)
from pyterrier_gradrel.training._vectors import OnDemandVectors, checked_vectors

if TYPE_CHECKING:
    from pyterrier_gradrel.models import E5BiEncoder, QueryTunedEncoder

__all__ = ["LOSSES", "SIDES", "ContrastiveTrainer", "TrainConfig", "data_key"]

logger = logging.getLogger(__name__)

_DONE = "train_report.json"


def data_key(data: dict[str, object]) -> str:
    """12 hex characters naming a run's training data in the default run folder's name (``data["sha256"]``)."""
    return str(data["sha256"])[:12]


class ContrastiveTrainer:
    """Fine-tunes an E5-style bi-encoder with threshold-binarized (or graded) contrastive learning.

    Example::

        trainer = ContrastiveTrainer("multilingual-e5-small", config=TrainConfig(rel=3, seed=1))
        ds = pt.get_dataset("irds:gradrel/xquad-r/th/train")
        model = trainer.fit(ds.get_topics(), ds.get_qrels(), ds.get_corpus_iter())
        model >> index.indexer()   # an E5BiEncoder, like the zero-shot one
    """

    def __init__(self, base: str | os.PathLike | E5BiEncoder = "multilingual-e5-small", *,
                 config: TrainConfig | None = None, verbose: bool = True, device: str | None = "auto") -> None:
        """Args:
        base: Model name (resolved by :func:`pyterrier_gradrel.models.resolve_model`), an encoder
            folder path, or an ``E5BiEncoder`` (its ``path`` is used).
        config: The run's :class:`TrainConfig` (default: ``TrainConfig()``).
        verbose: Show a tqdm progress bar with the running loss.
        device: Torch device to train on: ``"auto"`` (default: CUDA when available, else CPU;
            :func:`pyterrier_gradrel._device.resolve_device`), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
            Not part of the run identity.
        """
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.base = base
        self.config = config or TrainConfig()
        self.verbose = verbose
        self.device = "auto" if device is None else device
        self.last_report: dict[str, object] | None = None

    def __repr__(self) -> str:
        return f"ContrastiveTrainer({self.base!r}, config={self.config!r})"

    # -- model loading ------------------------------------------------------------------------------
    def base_path(self) -> Path:
        """The folder of the base encoder."""
        base = self.base
        if hasattr(base, "path") and base.path is not None:
            return Path(base.path)
        if isinstance(base, (str, os.PathLike)) and Path(base).expanduser().is_dir():
            return Path(base).expanduser()
        from pyterrier_gradrel.models import resolve_model

        return Path(resolve_model(str(base)).path)

    def _load(self, path: Path) -> E5BiEncoder:
        """The encoder to fine-tune, cutting texts at the config's ``max_length``."""
        from pyterrier_gradrel.models import E5BiEncoder

        return E5BiEncoder.from_pretrained(path, device=self.device, max_length=self.config.max_length)

    # -- public API ---------------------------------------------------------------------------------
    def fit(self, train_topics: pd.DataFrame, train_qrels: pd.DataFrame, corpus: pd.DataFrame | Iterable, *,
            run_dir: str | os.PathLike | None = None,
            doc_vectors: Callable[[Sequence[str]], np.ndarray] | None = None) -> E5BiEncoder | QueryTunedEncoder:
        """Fine-tune on graded training data and return the fine-tuned encoder.

        Args:
            train_topics: ``qid``, ``query`` (or ``text``), optional ``lang`` (fraction strata) and
                ``article`` (own-article rule).
            train_qrels: ``qid``, ``docno``, ``label`` (graded).
            corpus: Frame or iterable of docs (``docno``/``doc_id``, ``text``, optional ``split``, ``article``).
            run_dir: Where checkpoints and the final model go (default: the cache,
                ``runs/<base fingerprint>/<run name>-data<training data hash>``). A finished run there is
                returned without training; an interrupted one resumes from its last checkpoint. The folder's
                ``run.json`` records the config, the base model and the training data
                (:func:`~pyterrier_gradrel.training._data.data_identity`: topics, qrels and corpus hashed), and a
                folder holding another run, on other data included, is refused.
            doc_vectors: Only for ``side="query"``: docnos -> ``(n, dim)`` float32 array of the base
                encoder's passage vectors, e.g. read from its cached index (the runner does this). Default:
                the needed passages are encoded with the base encoder on first use. Either way the
                vectors must be the ones retrieval will use, or training and retrieval disagree.

        Returns:
            The fine-tuned ``E5BiEncoder`` (loaded from ``run_dir/model``); with ``side="query"`` a
            ``QueryTunedEncoder`` over the base encoder's passage vectors.
        """
        return self._encoder(self.train(train_topics, train_qrels, corpus, run_dir=run_dir, doc_vectors=doc_vectors))

    def train(self, train_topics: pd.DataFrame, train_qrels: pd.DataFrame, corpus: pd.DataFrame | Iterable, *,
              run_dir: str | os.PathLike | None = None,
              doc_vectors: Callable[[Sequence[str]], np.ndarray] | None = None) -> Path:
        """Like :meth:`fit`, but return the folder of the fine-tuned encoder (``run_dir/model``)."""
        import torch

        cfg = self.config
        if doc_vectors is not None and cfg.side != "query":
            raise ValueError(f"doc_vectors only apply to side='query', got side={cfg.side!r}")
        fp = self._base_fingerprint()  # resolves the base model first: a missing one leaves no folder behind
        docs = corpus_frame(corpus)
        data = data_identity(train_topics, train_qrels, docs)  # also checks the columns before a folder is made
        meta = {"config": cfg.to_dict(), "run_name": cfg.run_name(), "base": str(self.base),
                "base_fingerprint": fp, "base_files": self._base_files(), "data": data}
        path = Path(run_dir) if run_dir is not None else self._default_run_dir(data_key(data))
        created = not path.exists()
        run_dir = self.run_dir(path)
        try:
            claimed = adopt(run_dir, meta, legacy_fingerprint=self._legacy_fingerprint)
        except BaseException:
            release(run_dir, claimed=False, created=created)
            raise
        for name in ("run.json", CHECKPOINT, "model", _DONE):  # temporaries of writers killed mid-write
            _atomic.remove_stale(run_dir / name)
        if (run_dir / _DONE).exists() and (run_dir / "model" / "gradrel_encoder.json").exists():
            self.last_report = json.loads((run_dir / _DONE).read_text(encoding="utf-8"))
            return run_dir / "model"

        old_threads = torch.get_num_threads()
        try:
            sampler, data_report, topics = prepare(cfg, train_topics, train_qrels, docs)
            if cfg.threads is not None:
                torch.set_num_threads(cfg.threads)
            report = self._train(sampler, topics, self.base_path(), run_dir, doc_vectors)
        except BaseException:  # a failure before the first checkpoint leaves no run behind (nothing to resume)
            release(run_dir, claimed=claimed, created=created)
            raise
        finally:
            torch.set_num_threads(old_threads)
        report.update(data=data_report, run_name=cfg.run_name(), base=str(self.base), base_fingerprint=fp)
        _atomic.write_text(run_dir / _DONE, json.dumps(report, indent=2))
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
        self.last_report = report
        return run_dir / "model"

    def _base_files(self) -> dict[str, str] | None:
        """The base folder's deciding files and their sha256 (``None`` for an in-memory encoder)."""
        if hasattr(self.base, "fingerprint"):
            return None
        if getattr(self, "_files", None) is None:
            self._files = base_files(self.base_path())
        return self._files

    def _base_fingerprint(self) -> str:
        """12 hex chars naming the base model: the encoder's own fingerprint, or a hash of its folder's deciding files."""
        if getattr(self, "_fp", None) is None:
            files = self._base_files()
            fp = self.base.fingerprint() if files is None else fingerprint_files(files)
            self._fp = str(fp)[:12]
        return self._fp

    def _legacy_fingerprint(self) -> str | None:
        if hasattr(self.base, "fingerprint"):
            return None
        if getattr(self, "_legacy_fp", None) is None:
            self._legacy_fp = legacy_fingerprint_folder(self.base_path())[:12]
        return self._legacy_fp

    def run_dir(self, run_dir: str | os.PathLike | None = None, *, data: str | None = None) -> Path:
        """The run folder, made if missing: ``run_dir`` if given, else the default,
        ``<cache>/runs/<base fingerprint>/<run name>-data<data>``.

        Args:
            run_dir: The folder to use.
            data: Without ``run_dir``: the training data's key (:func:`data_key` of
                :func:`~pyterrier_gradrel.training._data.data_identity`), part of the default folder's name.

        Raises:
            TypeError: neither ``run_dir`` nor ``data`` is given (the default folder depends on the data).
        """
        if run_dir is None and data is None:
            raise TypeError("run_dir() needs run_dir or data (the training data's key, "
                            "data_key(data_identity(topics, qrels, corpus))): the default run folder depends on it")
        path = Path(run_dir) if run_dir is not None else self._default_run_dir(data)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _default_run_dir(self, data: str) -> Path:
        name = f"{self.config.run_name()}-data{data}"
        runs = home() / "runs"
        path = runs / self._base_fingerprint() / name
        if not path.exists() and any(runs.glob(f"*/{glob.escape(name)}/run.json")):
            legacy = self._legacy_fingerprint()  # a run of this base recorded under the older fingerprint?
            if legacy is not None and (runs / legacy / name / "run.json").is_file():
                return runs / legacy / name
        return path

    # -- internals ----------------------------------------------------------------------------------
    def _encoder(self, path: Path) -> E5BiEncoder | QueryTunedEncoder:
        from pyterrier_gradrel.models import load_encoder

        return load_encoder(str(path))

    def _doc_encoder(self) -> E5BiEncoder:
        """The frozen base encoder (``side="query"``): passage vectors and the reference saved with the model."""
        if getattr(self, "_docs", None) is None:
            from pyterrier_gradrel.models import E5BiEncoder

            base = self.base
            self._docs = base if isinstance(base, E5BiEncoder) else E5BiEncoder.from_pretrained(
                self.base_path(), device=self.device)
        return self._docs

    def _step(self, encoder, sampler, batch, query_text, loss_fn, optimizer, scheduler, doc_vectors=None):
        import torch

        cfg = self.config
        cands = sampler.candidates(batch)
        with torch.autocast(encoder.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bfloat16"):
            q = encoder.encode_queries_torch([query_text[ex.qid] for ex in batch])
            if doc_vectors is None:
                d = encoder.encode_docs_torch([sampler.text[c] for c in cands])
            else:  # query side only: the base model's fixed passage vectors
                d = torch.from_numpy(np.ascontiguousarray(doc_vectors(cands), dtype=np.float32)).to(q.device)
        scores = q.float() @ d.float().T
        grades = torch.from_numpy(sampler.grade_matrix(batch, cands)).to(scores.device)
        loss = loss_fn(scores, grades, torch.from_numpy(sampler.mask(batch, cands)).to(scores.device))
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def _train(self, sampler, topics, base_path: Path, run_dir: Path,
               doc_vectors: Callable[[Sequence[str]], np.ndarray] | None = None) -> dict[str, object]:
        import torch
        from tqdm.auto import tqdm

        cfg = self.config
        if cfg.side == "query":  # before seeding: loading the base model must not shift the dropout stream
            docs = self._doc_encoder()
            doc_vectors = checked_vectors(doc_vectors or OnDemandVectors(docs, sampler.text), dim=docs.dim)
        torch.manual_seed(cfg.seed)
        encoder = self._load(base_path)
        model = encoder.model
        emb = model.get_input_embeddings()
        if cfg.freeze_embeddings:
            emb.weight.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        try:
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
        except (RuntimeError, TypeError):  # pragma: no cover - fused AdamW unavailable
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr, foreach=True)
        per_epoch = sampler.steps_per_epoch()
        total = cfg.total_steps(per_epoch)
        schedule = schedule_note(cfg, sampler.units())
        logger.info("%s: %s", run_dir.name, schedule)
        warm = int(math.ceil(cfg.warmup * total)) if cfg.warmup < 1 else int(cfg.warmup)

        def lr_lambda(step: int) -> float:
            if step < warm:
                return step / max(1, warm)
            return max(0.0, (total - step) / max(1, total - warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        state = State()
        ckpt_path = run_dir / CHECKPOINT
        if ckpt_path.exists():
            state = resume_checkpoint(ckpt_path, model, optimizer, scheduler)
            logger.info("resuming %s at step %d of %d", run_dir.name, state.step, total)
        query_text = dict(zip(topics["qid"], topics["query"].astype(str), strict=True))
        loss_fn = cfg.make_loss().to(model.device)
        model.train()
        t0, pairs, started, step_seconds = time.perf_counter(), 0, state.step, []
        earlier = state.seconds  # the training seconds of the sessions before this one (None: unknown)
        # grades of the positives trained on: every session's, continued from the checkpoint; from this session's
        # first step only when the checkpoint predates the count (then the report says how many steps it covers)
        drawn: Counter[int] = Counter(state.positive_grades or {})
        counted_from = 0 if state.positive_grades is not None else state.step
        bar = tqdm(total=total, initial=state.step, desc=cfg.run_name(), disable=not self.verbose, unit="step")
        try:
            for epoch, batch in sampler.steps(state.step, total):
                t_step = time.perf_counter()
                loss = self._step(encoder, sampler, batch, query_text, loss_fn, optimizer, scheduler, doc_vectors)
                step_seconds.append(round(time.perf_counter() - t_step, 4))
                state.step += 1
                state.losses.append(loss)
                pairs += len(batch)
                drawn.update(sampler.grade(ex.qid, ex.positive) for ex in batch)
                bar.update(1)
                recent = state.losses[-20:]
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", epoch=epoch)
                end_of_epoch = state.step % per_epoch == 0
                if state.step < total and ((cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0)
                                           or end_of_epoch):
                    state.seconds = None if earlier is None else earlier + time.perf_counter() - t0
                    state.positive_grades = dict(drawn) if counted_from == 0 else None
                    save_checkpoint(ckpt_path, model, optimizer, scheduler, state)
        finally:
            bar.close()
        elapsed = time.perf_counter() - t0
        model.eval()
        from pyterrier_gradrel.models import E5BiEncoder

        out_settings = {**encoder.settings, "fine_tuned": cfg.run_name(), "train_max_length": cfg.max_length}
        if cfg.side == "query":
            from pyterrier_gradrel.models._query_tuned import with_doc_reference

            out_settings = with_doc_reference(out_settings, self._doc_encoder())
        E5BiEncoder.from_model(model, encoder.tokenizer, out_settings, device=self.device).save(run_dir / "model")
        _atomic.write_text(run_dir / "model" / "gradrel_training.json", json.dumps(cfg.to_dict(), indent=2))
        return {"steps": state.step, "steps_this_session": state.step - started, "pairs_this_session": pairs,
                "seconds_this_session": round(elapsed, 2),
                "seconds": None if earlier is None else round(earlier + elapsed, 2),
                "pairs_per_s": round(pairs / elapsed, 3) if elapsed > 0 else None,
                "loss_first": state.losses[0] if state.losses else None,
                "loss_last20": float(np.mean(state.losses[-20:])) if state.losses else None,
                "losses": [round(x, 5) for x in state.losses], "step_seconds": step_seconds,
                "positive_grades": {str(g): n for g, n in sorted(drawn.items())},
                "positive_grades_steps": state.step - counted_from,
                "schedule": schedule, "config": cfg.to_dict()}
