"""Topics, qrels and passage pools of the benchmark datasets, loaded once per run, with their fingerprints."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from pyterrier_gradrel._evaluation import ExperimentQrels, MeasureSpec, experiment_per_query, experiment_qrels
from pyterrier_gradrel.datasets import info

__all__ = ["DataCache", "data_fingerprint"]


@dataclass
class _Data:
    topics: pd.DataFrame
    qrels: pd.DataFrame
    fingerprint: str
    #: the qrels made ready for pt.Experiment, on first evaluation
    prepared: ExperimentQrels | None = None


class DataCache:
    """Loads topics/qrels of benchmark datasets once per run (with the query limit applied), and prepares each
    dataset's qrels for ``pt.Experiment`` once (:func:`pyterrier_gradrel._evaluation.experiment_qrels`)."""

    def __init__(self, *, limit_queries: int | None = None) -> None:
        self.limit_queries = limit_queries
        self._cache: dict[str, _Data] = {}
        self._pools: dict[str, list[str]] = {}

    def get(self, ds_id: str) -> _Data:
        """Topics (``qid``, ``query``, ``article``), qrels (``qid``, ``docno``, ``label``) and their hash."""
        if ds_id not in self._cache:
            import pyterrier as pt

            import pyterrier_gradrel  # noqa: F401  (registers the benchmark datasets)
            from pyterrier_gradrel.training._data import dataset_topics

            ds = pt.get_dataset(f"irds:{ds_id}")
            topics = dataset_topics(ds)  # the untokenised text and the article of every query
            topics["qid"] = topics["qid"].astype(str)
            if self.limit_queries is not None:
                topics = topics.head(self.limit_queries)
            qrels = ds.get_qrels()
            qrels["qid"] = qrels["qid"].astype(str)
            qrels = qrels[qrels["qid"].isin(set(topics["qid"]))].reset_index(drop=True)
            self._cache[ds_id] = _Data(topics.reset_index(drop=True), qrels, data_fingerprint(topics, qrels))
        return self._cache[ds_id]

    def train_data(self, ds_ids: Iterable[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The topics and the qrels of ``ds_ids``, each concatenated (what one model trains on)."""
        parts = [self.get(d) for d in ds_ids]
        return (pd.concat([p.topics for p in parts], ignore_index=True),
                pd.concat([p.qrels for p in parts], ignore_index=True))

    def pool(self, ds_id: str) -> list[str]:
        """The identity of ``ds_id``'s passage pool (``retrieval.corpus_key``): the collection with its
        ``text_version`` (``xquad-r-t2``; a local collection's name and a hash of its documents) and the
        documents' language. Part of every run key, so a change of the passage texts never reuses a run."""
        if ds_id not in self._pools:
            from pyterrier_gradrel.retrieval import corpus_key

            self._pools[ds_id] = list(corpus_key(ds_id))
        return self._pools[ds_id]

    def per_query(self, ds_id: str, run: pd.DataFrame, measures: Sequence[MeasureSpec]) -> pd.DataFrame:
        """``run``'s per-query scores on ``ds_id`` (``qid``, ``measure`` label, ``value``), computed by
        ``pt.Experiment`` with the measures on the dataset's grade scale and the dataset's prepared qrels."""
        grades = info(ds_id).grade_scale
        d = self.get(ds_id)
        if d.prepared is None:
            d.prepared = experiment_qrels(d.topics, d.qrels)
        pq = experiment_per_query({"run": run}, d.topics, d.prepared, [m.ir_measure(grades) for m in measures],
                                  names=[m.label for m in measures])
        return pq.drop(columns="name")

    def corpus(self, ds_ids: Iterable[str]) -> pd.DataFrame:
        """The passage pools of ``ds_ids`` joined, one row per docno (``training._data.dataset_pools``)."""
        from pyterrier_gradrel.training._data import dataset_pools

        return dataset_pools(ds_ids)


def data_fingerprint(topics: pd.DataFrame, qrels: pd.DataFrame) -> str:
    """sha256 over the topics (qid, query) and qrels (qid, docno, label), order-independent."""
    h = hashlib.sha256()
    t = topics[["qid", "query"]].astype(str).sort_values(["qid", "query"])
    h.update(t.to_csv(index=False).encode())
    q = qrels[["qid", "docno", "label"]].astype(str).sort_values(["qid", "docno"])
    h.update(q.to_csv(index=False).encode())
    return h.hexdigest()[:16]
