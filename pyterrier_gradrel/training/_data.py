"""Training data preparation: topics and corpus frames, noise, fractions, binarization and the sampler."""
from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from pyterrier_gradrel.binarize import binarize

if TYPE_CHECKING:
    from pyterrier_gradrel.training._config import TrainConfig
    from pyterrier_gradrel.training._sampler import PairSampler

logger = logging.getLogger(__name__)


def corpus_frame(corpus: pd.DataFrame | Iterable) -> pd.DataFrame:
    """A corpus frame with ``docno`` and ``text`` from a frame or an iterable of docs (``doc_id`` accepted)."""
    if isinstance(corpus, pd.DataFrame):
        df = corpus
    else:
        rows = []
        for doc in corpus:
            if hasattr(doc, "_asdict"):
                doc = doc._asdict()
            rows.append(dict(doc))
        df = pd.DataFrame(rows)
    if "docno" not in df.columns and "doc_id" in df.columns:
        df = df.rename(columns={"doc_id": "docno"})
    if "docno" not in df.columns or "text" not in df.columns:
        raise ValueError(f"corpus must give 'docno' (or 'doc_id') and 'text', got columns {list(df.columns)}")
    return df


def dataset_pools(dataset_ids: Iterable[str]) -> pd.DataFrame:
    """The passage pools of ``dataset_ids`` (the ``irds:`` prefix optional) joined, one row per docno: the passages
    a model trained on them draws its positives' texts and hard negatives from (``docno``, ``text``, and
    ``split``/``article`` when the pools have them)."""
    import pyterrier as pt

    frames = [pd.DataFrame(list(pt.get_dataset(d if d.startswith("irds:") else f"irds:{d}")
                                .get_corpus_iter(verbose=False))) for d in dataset_ids]
    return pd.concat(frames, ignore_index=True).drop_duplicates("docno").reset_index(drop=True)


def dataset_topics(dataset: Any) -> pd.DataFrame:
    """A PyTerrier dataset's queries with all their fields (``qid``, ``query``, ``lang``, ``article``, ...): what a
    model trains on from it (``gradrel train``, ``gradrel run``).

    Read from ir_datasets directly where the dataset has it: a plain ``get_topics()`` prints PyTerrier's
    "multiple query fields" notice on stdout, and ``get_topics("text")`` drops the ``article`` the own-article
    rule needs.
    """
    ref = getattr(dataset, "irds_ref", None)
    if ref is None:
        return dataset.get_topics()
    return pd.DataFrame(ref().queries_iter()).rename(columns={"query_id": "qid", "text": "query"})


def topics_frame(topics: pd.DataFrame) -> pd.DataFrame:
    """Topics with a string ``qid`` and ``query`` (``text`` accepted)."""
    if "query" not in topics.columns:
        if "text" in topics.columns:
            topics = topics.rename(columns={"text": "query"})
        else:
            raise ValueError(f"train_topics must have 'qid' and 'query' (or 'text'), got {list(topics.columns)}")
    if "qid" not in topics.columns:
        raise ValueError(f"train_topics must have 'qid' and 'query', got {list(topics.columns)}")
    return topics.assign(qid=topics["qid"].astype(str))


#: the columns of each part of the training data that :func:`data_identity` hashes (when present; the first ones
#: are required)
_IDENTITY_COLUMNS = {"topics": (("qid", "query"), ("article", "lang")),
                     "qrels": (("qid", "docno", "label"), ()),
                     "corpus": (("docno", "text"), ("split", "article"))}


def _frame_sha256(frame: pd.DataFrame, part: str) -> str:
    """sha256 over ``frame``'s identity columns (:data:`_IDENTITY_COLUMNS`), rows sorted, values as text."""
    import hashlib
    import json

    required, optional = _IDENTITY_COLUMNS[part]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"training {part} must have columns {list(required)}, missing {missing} "
                         f"(got {list(frame.columns)})")
    cols = [*required, *(c for c in optional if c in frame.columns)]
    text = frame[cols].astype(object).where(frame[cols].notna(), "").astype(str)
    text = text.sort_values(cols, kind="stable").reset_index(drop=True)
    digest = hashlib.sha256()
    for col in cols:  # column by column: json escapes every value, so no separator can be forged
        digest.update(json.dumps([col, text[col].tolist()], ensure_ascii=False).encode())
    return digest.hexdigest()


def data_identity(train_topics: pd.DataFrame, train_qrels: pd.DataFrame, docs: pd.DataFrame) -> dict[str, object]:
    """What identifies a run's training data: the sha256 of its topics (qid and text, ``article``/``lang`` when
    present), qrels (qid, docno, label) and corpus (docno and text, ``split``/``article`` when present), each over
    its rows sorted, their sizes, and ``sha256`` over the three.

    Two calls give the same identity exactly when the three parts hold the same rows (in any order); a run folder
    records it in ``run.json`` and the default run folder's name carries ``sha256[:12]``.

    Args:
        train_topics: As :meth:`ContrastiveTrainer.fit` takes them (``query`` or ``text``).
        train_qrels: ``qid``, ``docno``, ``label``.
        docs: The corpus frame (:func:`corpus_frame`).
    """
    import hashlib

    topics = topics_frame(train_topics)
    parts = {"topics": _frame_sha256(topics, "topics"), "qrels": _frame_sha256(train_qrels, "qrels"),
             "corpus": _frame_sha256(docs, "corpus")}
    whole = hashlib.sha256("".join(f"{k}={v}\n" for k, v in parts.items()).encode()).hexdigest()
    return {"sha256": whole, **parts, "queries": int(len(topics)), "judgements": int(len(train_qrels)),
            "passages": int(len(docs))}


def prepare(cfg: TrainConfig, train_topics: pd.DataFrame, train_qrels: pd.DataFrame,
            corpus: pd.DataFrame | Iterable) -> tuple[PairSampler, dict[str, object], pd.DataFrame]:
    """The training data of ``cfg``: qrels noised, topics subsampled, binarized at ``cfg.positive_rel``, and the
    sampler over them; also a report of what was kept and the topics trained on."""
    from pyterrier_gradrel.training._sampler import PairSampler
    from pyterrier_gradrel.training._subsets import grade_noise, nested_fraction

    topics = topics_frame(train_topics)
    qrels = train_qrels.assign(qid=train_qrels["qid"].astype(str), docno=train_qrels["docno"].astype(str))
    qrels = qrels[qrels["qid"].isin(set(topics["qid"]))]
    noisy = 0
    if cfg.noise > 0:
        qrels = grade_noise(qrels, cfg.noise, seed=cfg.seed, grades=cfg.grades)
        noisy = int(qrels["noisy"].sum())
    topics = nested_fraction(topics, cfg.fraction, seed=cfg.seed)
    b = binarize(qrels, rel=cfg.positive_rel, negatives=cfg.negatives, grades=cfg.grades,
                 qids=topics["qid"].tolist())
    if not b.positives:
        raise ValueError(f"no training query has a positive at rel={cfg.positive_rel} "
                         f"({len(b.dropped)} queries dropped)")
    docs = corpus_frame(corpus)
    sampler = PairSampler(b, topics, docs, unit=cfg.unit, batch_size=cfg.batch_size,
                          hard_negatives=cfg.hard_negatives, seed=cfg.seed,
                          negative_split=cfg.negative_split, exclude_own_article=cfg.exclude_own_article)
    if (cfg.exclude_own_article and "article" not in topics.columns and "article" in docs.columns
            and docs["article"].fillna("").astype(str).ne("").any()):
        warnings.warn("exclude_own_article is on but the training topics have no 'article' column (get_topics('text') "
                      "keeps only qid and query), so the own-article rule is off for this run: hard negatives may "
                      "come from the query's own article. Pass topics with 'article' (e.g. the dataset's "
                      "get_topics()) to apply it, or exclude_own_article=False to say so.", UserWarning, stacklevel=2)
    report = {**b.report(), "queries_in": int(len(topics)), "noisy_judgements": noisy,
              "units_per_epoch": sampler.units(), "hard_negative_pool": len(sampler.pool),
              "negative_split": sampler.negative_split, "own_article_rule": bool(sampler.q_article)}
    logger.info("training data: %s", report)
    return sampler, report, topics
