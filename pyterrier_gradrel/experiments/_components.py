"""How conditions become retrieval systems: the base encoder, baselines, dense retrieval and fine-tuning."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import pyterrier as pt

    from pyterrier_gradrel.experiments._config import ExperimentConfig
    from pyterrier_gradrel.experiments._plan import Condition
    from pyterrier_gradrel.models import E5BiEncoder, QueryTunedEncoder

__all__ = ["Components"]


class Components:
    """How conditions become retrieval systems. The default wires the package's real components.

    Tests (and other back-ends) can pass their own callables.

    Args:
        base_model: the encoder to fine-tune and the zero-shot baseline.
        baseline: ``(name, dataset_id) -> pt.Transformer``.
        dense: ``(encoder, dataset_id) -> pt.Transformer``.
        train: ``(condition, topics, qrels, corpus, run_dir, config) -> (encoder, train_report)``.
        fingerprint: ``() -> str``, the base model's weight fingerprint (part of every run key).
        bm25_engine: ``() -> dict | None``, the BM25 engine the BM25 baselines run on (part of their run keys unless
            it is the reference engine, ``retrieval._engine.engine_material``). Default: the installed one
            (``retrieval._engine.bm25_engine``: pyterrier-pisa's version, the tokenizer ``"auto"`` resolves to);
            with a ``baseline`` of your own and no ``bm25_engine``, None: no engine enters the keys.
        verbose: progress bars while a passage pool is encoded (minutes on a large pool).
        device: where models run: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...
            ``None``: the config's ``training: {device: ...}`` (default ``"auto"``). Never part of a run key.
    """

    def __init__(
        self,
        *,
        base_model: str = "multilingual-e5-small",
        baseline: Callable[[str, str], pt.Transformer] | None = None,
        dense: Callable[[E5BiEncoder | QueryTunedEncoder, str], pt.Transformer] | None = None,
        train: Callable[[Condition, pd.DataFrame, pd.DataFrame, pd.DataFrame, Path, ExperimentConfig],
                        tuple[E5BiEncoder | QueryTunedEncoder, dict[str, object]]] | None = None,
        fingerprint: Callable[[], str] | None = None,
        bm25_engine: Callable[[], dict[str, str | None] | None] | None = None,
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
        self._bm25_engine = bm25_engine
        self._encoder: E5BiEncoder | None = None

    def __getstate__(self) -> dict[str, object]:
        # sent to executor workers: each loads the base encoder itself rather than receiving its weights
        return {**self.__dict__, "_encoder": None}

    def encoder(self) -> E5BiEncoder:
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

    def bm25_engine(self) -> dict[str, str | None] | None:
        """The BM25 engine of the BM25 baselines (see the class's ``bm25_engine``)."""
        if self._bm25_engine is not None:
            return self._bm25_engine()
        if self._baseline is not None:
            return None
        from pyterrier_gradrel.retrieval._engine import bm25_engine

        return bm25_engine()

    def baseline(self, name: str, ds_id: str) -> pt.Transformer:
        """The baseline ``name`` over ``ds_id``'s pool."""
        if self._baseline is not None:
            return self._baseline(name, ds_id)
        from pyterrier_gradrel import retrieval

        if name == "BM25":
            return retrieval.bm25(ds_id)
        if name == "mE5-zero-shot":
            return retrieval.dense(self.encoder(), ds_id, verbose=self.verbose)
        return retrieval.baselines(ds_id, encoder=self.encoder())[name]

    def dense(self, encoder: E5BiEncoder | QueryTunedEncoder, ds_id: str) -> pt.Transformer:
        """Dense retrieval with a (fine-tuned) encoder over ``ds_id``'s pool."""
        if self._dense is not None:
            return self._dense(encoder, ds_id)
        from pyterrier_gradrel import retrieval

        return retrieval.dense(encoder, ds_id, verbose=self.verbose)

    def train(self, cond: Condition, topics: pd.DataFrame, qrels: pd.DataFrame, corpus: pd.DataFrame,
              run_dir: Path, cfg: ExperimentConfig) -> tuple[E5BiEncoder | QueryTunedEncoder, dict[str, object]]:
        """Fine-tune the base model for ``cond``; returns the encoder and the trainer's report."""
        if self._train is not None:
            return self._train(cond, topics, qrels, corpus, run_dir, cfg)
        from pyterrier_gradrel.training import ContrastiveTrainer

        config = cond.train_config
        if config is None:
            raise ValueError(f"only fine-tuned conditions are trained, got system {cond.system!r}")
        extra: dict[str, object] = {}
        if config.side == "query":  # train against the very passage vectors the zero-shot index holds
            from pyterrier_gradrel import retrieval

            extra["doc_vectors"] = retrieval.passage_vectors(self.encoder(), cond.train, verbose=self.verbose)
        trainer = ContrastiveTrainer(self.encoder() if extra else self.base_model, config=config,
                                     device=self.device or cfg.training.device)
        encoder = trainer.fit(topics, qrels, corpus, run_dir=run_dir, **extra)
        return encoder, dict(trainer.last_report or {})
