"""``FineTuned``: threshold-binarized fine-tuning as a PyTerrier estimator.

``fit`` runs :class:`~pyterrier_gradrel.training.ContrastiveTrainer` (τ policy, seeded, resumable, cached under
the run name of its :class:`~pyterrier_gradrel.training.TrainConfig`); ``transform`` is then dense retrieval
with the fine-tuned encoder over a dataset's passage pool (:func:`pyterrier_gradrel.retrieval.dense`), so a
fitted estimator is compared with the baselines in ``pt.Experiment`` like any other transformer.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import pyterrier as pt

from pyterrier_gradrel.training._config import TrainConfig

if TYPE_CHECKING:
    from pyterrier_gradrel.models import E5BiEncoder, QueryTunedEncoder

__all__ = ["FineTuned", "fine_tuned_config"]


def fine_tuned_config(train_dataset: str, *, rel: int | None, config: TrainConfig | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a model fine-tuned on ``train_dataset`` at τ = ``rel``.

    Args:
        train_dataset: the dataset id whose grade scale and own-article rule the config takes when
            ``config`` is ``None`` (:func:`pyterrier_gradrel.datasets.info`,
            :func:`pyterrier_gradrel.datasets.exclude_own_article`).
        rel: τ, the minimum grade counted positive (``loss="infonce"``); ``None`` trains the graded loss.
        config: every other hyper-parameter (default: ``TrainConfig``'s defaults on the dataset's grades).
    """
    if config is None:
        from pyterrier_gradrel.datasets import exclude_own_article, info

        grades = tuple(sorted(int(g) for g in info(train_dataset.removeprefix("irds:")).grades))
        config = TrainConfig(grades=grades, exclude_own_article=exclude_own_article(train_dataset.removeprefix("irds:")))
    if rel is None:
        return dataclasses.replace(config, loss="graded")
    return dataclasses.replace(config, rel=int(rel), loss="infonce", grade_weights=None)


class FineTuned(pt.Estimator):
    """A bi-encoder fine-tuned at threshold τ on graded qrels, retrieving densely from a dataset's pool.

    ``fit(topics, qrels)`` trains (or reuses the finished run of the same config, base model and training data:
    runs are cached under ``$GRADREL_HOME/runs/<base fingerprint>/<run name>-data<hash>``, the hash over the
    topics, qrels and training passages, unless ``run_dir`` is given; an interrupted one resumes from its
    checkpoint); ``transform`` retrieves ``num_results`` passages per query::

        ft = gr.FineTuned("multilingual-e5-small", dataset="gradrel/xquad-r/en/test", rel=3)
        train = pt.get_dataset("irds:gradrel/xquad-r/en/train")
        ft.fit(train.get_topics("text"), train.get_qrels())
        pt.Experiment([gr.bm25(ds), gr.dense(enc, ds), ft], ds.get_topics("text"), ds.get_qrels(), [...])

    Args:
        base: the encoder to fine-tune: a model name, an encoder folder or an ``E5BiEncoder``.
        dataset: the dataset whose passage pool ``transform`` searches (e.g. ``gradrel/xquad-r/en/test``).
        rel: τ, the minimum grade counted positive; ``None`` trains the graded loss instead.
        config: the other hyper-parameters (seed, steps, batch size, ...); its ``rel``/``loss`` are replaced
            by ``rel``. Default: ``TrainConfig``'s defaults on the training dataset's grades and own-article rule.
        train_dataset: the dataset(s) whose pools give the training passages (hard negatives and positives'
            texts; several pools are joined, one row per docno); default ``dataset`` (an XQuAD-R pool holds
            every split's passages, each with its ``split``). The first also gives the default config's grades.
        run_dir: where checkpoints and the model go (default: the cache, see above). A folder holding a run of
            another config, base model or training data is refused.
        backend: the dense index backend (``numpy``, ``faiss-flat``, ``faiss-hnsw``).
        num_results: passages retrieved per query.
        device: where the model trains and encodes (``auto``: CUDA when available, else CPU).
        verbose: progress bars for training and pool encoding.

    ``fit``'s topics need ``qid`` and ``query``; optional ``article`` (the own-article rule for hard negatives)
    and ``lang`` (the strata of a training fraction) are used when present. Topics without ``article`` (as
    ``get_topics("text")`` gives them) take each query's article from the training datasets' queries of the
    same ``qid`` while the config's own-article rule is on, so the rule applies as in ``gradrel train``.
    """

    def __init__(self, base: str | os.PathLike | E5BiEncoder = "multilingual-e5-small", *, dataset: str,
                 rel: int | None = 2, config: TrainConfig | None = None,
                 train_dataset: str | Sequence[str] | None = None,
                 run_dir: str | os.PathLike | None = None, backend: str = "numpy", num_results: int = 1000,
                 device: str = "auto", verbose: bool = False) -> None:
        self.base = base
        self.dataset = dataset
        train = train_dataset or dataset
        self.train_datasets = (train,) if isinstance(train, str) else tuple(train)
        self.config = fine_tuned_config(self.train_datasets[0], rel=rel, config=config)
        self.run_dir = run_dir
        self.backend = backend
        self.num_results = num_results
        self.device = device
        self.verbose = verbose
        self.encoder: E5BiEncoder | QueryTunedEncoder | None = None
        self.train_report: dict[str, object] | None = None
        self._retriever: pt.Transformer | None = None

    @property
    def tau(self) -> int | None:
        """τ, the minimum grade counted positive; ``None`` for the graded loss."""
        return None if self.config.loss == "graded" else self.config.rel

    def __repr__(self) -> str:
        base = getattr(self.base, "path", None) or self.base
        tau = "graded" if self.tau is None else f"rel={self.tau}"
        return (f"FineTuned({str(base)!r}, {tau}, seed={self.config.seed}, dataset={self.dataset!r}"
                f"{'' if self._retriever is not None else ', unfitted'})")

    def fit(self, topics_tr: pd.DataFrame, qrels_tr: pd.DataFrame, topics_va: pd.DataFrame | None = None,
            qrels_va: pd.DataFrame | None = None) -> FineTuned:
        """Fine-tune on ``topics_tr``/``qrels_tr`` (graded ``label``) and prepare retrieval over the pool.

        ``topics_va``/``qrels_va`` complete ``pt.Estimator``'s signature and are not read: the trainer runs a
        fixed schedule (``config.epochs`` or ``config.max_steps``) with no early stopping.

        Returns:
            ``self``, fitted.
        """
        from pyterrier_gradrel.retrieval import dense
        from pyterrier_gradrel.training._data import dataset_pools
        from pyterrier_gradrel.training._trainer import ContrastiveTrainer

        trainer = ContrastiveTrainer(self.base, config=self.config, verbose=self.verbose, device=self.device)
        self.encoder = trainer.fit(self._with_articles(topics_tr), qrels_tr, dataset_pools(self.train_datasets), run_dir=self.run_dir)
        self.train_report = trainer.last_report
        self._retriever = dense(self.encoder, self.dataset, backend=self.backend, num_results=self.num_results,
                                verbose=self.verbose)
        return self

    def _with_articles(self, topics: pd.DataFrame) -> pd.DataFrame:
        """``topics`` with ``article`` from the training datasets' queries of the same ``qid``, when the rule is on
        and ``topics`` has no ``article`` (queries the datasets do not hold get ``""``: no rule for them)."""
        if not self.config.exclude_own_article or "article" in topics.columns or "qid" not in topics.columns:
            return topics
        from pyterrier_gradrel.training._data import dataset_topics

        known = [dataset_topics(pt.get_dataset(d if d.startswith("irds:") else f"irds:{d}"))
                 for d in self.train_datasets]
        known = [k for k in known if "article" in k.columns]
        if not known:
            return topics
        articles = pd.concat(known).astype({"qid": str}).drop_duplicates("qid").set_index("qid")["article"]
        filled = topics["qid"].astype(str).map(articles)
        if filled.isna().all():
            return topics
        return topics.assign(article=filled.fillna("").astype(str))

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        """Dense retrieval of ``inp``'s queries (``qid``, ``query``) with the fine-tuned encoder.

        Raises:
            RuntimeError: ``fit`` was not called.
        """
        if self._retriever is None:
            raise RuntimeError(f"{self!r} is not fitted: call fit(topics, qrels) first")
        return self._retriever(inp)
