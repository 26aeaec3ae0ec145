"""Seeded batch sampler with label-aware false-negative masking.

Sampling unit (recorded in the run name):

* ``"query"`` (default): every epoch visits each training query once and samples one of its
  positives (grade ``>= rel``) uniformly. Every τ then gets the same number of steps, so τ
  comparisons are not confounded by data quantity.
* ``"pair"``: every epoch visits each (query, positive) pair once (τ = 1 yields many more pairs
  than τ = 3).

Hard negatives (``hard_negatives`` per example) are drawn only from training-split passages
(``split == negative_split`` when the corpus has a ``split`` column; a passage with an empty split counts
as one) that are legal negatives for the query: judged negatives of the policy first (grades
``1..neg_max`` under ``"below"``/``neg_max``: the structurally close passages; and, under every policy,
pairs judged 0, such as the grades that grade noise replaced by 0), then uniformly random unjudged
passages, which must come from outside the query's own article when topics and corpus carry
``article`` and the query's article is not empty (structure-derived grades). The own-article rule
applies to the unjudged draws only: a judged negative of the query's own article may be drawn.

A passage is a *legal negative* for a query iff its grade for that query is ``<= neg_max`` **and** its
text differs from the text of every passage judged above ``neg_max`` for it (positives and grey band;
this covers identical sentences and the parallel multi pool). :meth:`PairSampler.mask` applies the
same rule to every in-batch candidate, so no positive or grey passage ever acts as a negative.
Everything is drawn from ``numpy`` generators seeded by ``(seed, epoch)``, so an epoch's batches can
be regenerated exactly when resuming.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyterrier_gradrel.binarize import BinarizedQrels

__all__ = ["UNITS", "Example", "PairSampler"]

UNITS = ("query", "pair")


@dataclass(frozen=True)
class Example:
    """One training example: a query, its sampled positive and its hard negatives (docnos)."""

    qid: str
    positive: str
    hard: tuple[str, ...] = ()


class PairSampler:
    """Builds the seeded batches of an epoch and their masks / grade matrices.

    Args:
        binarized: The training qrels at τ (:func:`pyterrier_gradrel.binarize.binarize`).
        topics: Frame with ``qid`` (and ``article`` for the own-article rule).
        corpus: Frame with ``docno``, ``text`` (and optional ``split``, ``article``).
        unit: ``"query"`` or ``"pair"``.
        batch_size: Examples per batch (the last batch of an epoch may be smaller).
        hard_negatives: Hard negatives per example (>= 0).
        seed: Seed of all draws.
        negative_split: Only passages with this ``split`` may be hard negatives (``None``: any).
        exclude_own_article: Draw unjudged hard negatives from outside the query's article.
    """

    def __init__(
        self,
        binarized: BinarizedQrels,
        topics: pd.DataFrame,
        corpus: pd.DataFrame,
        *,
        unit: str = "query",
        batch_size: int = 16,
        hard_negatives: int = 1,
        seed: int = 0,
        negative_split: str | None = "train",
        exclude_own_article: bool = True,
    ):
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {list(UNITS)}, got {unit!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not isinstance(hard_negatives, int) or hard_negatives < 0:
            raise ValueError(f"hard_negatives must be an int >= 0, got {hard_negatives!r}")
        for col in ("docno", "text"):
            if col not in corpus.columns:
                raise ValueError(f"corpus must have columns ['docno', 'text'], missing {col!r}")
        self.b = binarized
        self.unit, self.batch_size, self.hard_negatives, self.seed = unit, batch_size, hard_negatives, int(seed)
        self.qids = [q for q in binarized.qids]
        self.docnos = corpus["docno"].astype(str).tolist()
        self.text = dict(zip(self.docnos, corpus["text"].astype(str), strict=True))
        missing = sorted({d for q in self.qids for d in binarized.positives[q]} - self.text.keys())
        if missing:
            raise ValueError(f"{len(missing)} positive passages are not in the corpus, e.g. {missing[:3]}")

        # a passage without a split ("", e.g. a local collection's optional field) may be a negative of any split
        use_split = negative_split is not None and "split" in corpus.columns
        self.doc_split = (dict(zip(self.docnos, corpus["split"].fillna("").astype(str), strict=True))
                          if use_split else {})
        self.negative_split = negative_split if use_split else None
        pool = [d for d in self.docnos if not use_split or self.doc_split[d] in (negative_split, "")]
        self.pool = pool
        # a query without an article ("") has no own-article rule (else it would exclude every article-less passage)
        has_article = exclude_own_article and "article" in corpus.columns and "article" in topics.columns
        self.doc_article = (dict(zip(self.docnos, corpus["article"].fillna("").astype(str), strict=True))
                            if has_article else {})
        self.q_article = {q: a for q, a in zip(topics["qid"].astype(str), topics["article"].fillna("").astype(str),
                                               strict=True) if a} if has_article else {}

        # per query: the grade of each text (max over judged passages with that text)
        self._text_grade: dict[str, dict[str, int]] = {}
        self._judged_neg: dict[str, list[str]] = {}
        for q in self.qids:
            tg: dict[str, int] = {}
            for d, g in binarized.grades[q].items():
                t = self.text.get(d)
                if t is not None:
                    tg[t] = max(g, tg.get(t, 0))
            self._text_grade[q] = tg
            self._judged_neg[q] = [
                d for d in binarized.negatives_judged[q]
                if d in self.text and self.grade(q, d) <= binarized.neg_max and self._in_split(d)
            ]
        if self.hard_negatives and not pool:
            raise ValueError(f"no passage of split {negative_split!r} to draw hard negatives from")

    # -- labels -----------------------------------------------------------------------------------
    def _in_split(self, docno: str) -> bool:
        return self.negative_split is None or self.doc_split.get(docno) in (self.negative_split, "")

    def grade(self, qid: str, docno: str) -> int:
        """The grade of a passage for a query: its own judgement or that of an identical text (0 if none)."""
        g = self.b.grades[qid].get(docno, 0)
        t = self.text.get(docno)
        return max(g, self._text_grade[qid].get(t, 0)) if t is not None else g

    def is_legal_negative(self, qid: str, docno: str) -> bool:
        """Whether a passage may act as a negative of a query (grade ``<= neg_max``, text rule included)."""
        return self.grade(qid, docno) <= self.b.neg_max

    # -- epochs -----------------------------------------------------------------------------------
    def units(self) -> int:
        """Examples per epoch."""
        return len(self.qids) if self.unit == "query" else self.b.n_pairs()

    def steps_per_epoch(self) -> int:
        """Batches per epoch."""
        return -(-self.units() // self.batch_size)

    def epoch(self, epoch: int) -> list[list[Example]]:
        """The batches of an epoch (deterministic in ``(seed, epoch)``)."""
        rng = np.random.default_rng([self.seed, int(epoch), 11])
        if self.unit == "query":
            order = rng.permutation(len(self.qids))
            units = []
            for i in order:
                q = self.qids[i]
                pos = self.b.positives[q]
                units.append((q, pos[int(rng.integers(len(pos)))]))
        else:
            pairs = [(q, d) for q in self.qids for d in self.b.positives[q]]
            units = [pairs[i] for i in rng.permutation(len(pairs))]
        examples = [Example(q, d, self._hard(q, rng)) for q, d in units]
        return [examples[i:i + self.batch_size] for i in range(0, len(examples), self.batch_size)]

    def steps(self, start: int, stop: int) -> Iterator[tuple[int, list[Example]]]:
        """The batches of the training steps ``start`` .. ``stop - 1``, each with its epoch, in the trainer's order:
        epoch after epoch, an epoch's batches in turn (so a run resumed at step ``start`` goes on where it stopped)."""
        step = start
        while step < stop:
            epoch, offset = divmod(step, self.steps_per_epoch())
            for batch in self.epoch(epoch)[offset:offset + stop - step]:
                yield epoch, batch
                step += 1

    def _hard(self, qid: str, rng: np.random.Generator) -> tuple[str, ...]:
        k = self.hard_negatives
        if k == 0:
            return ()
        judged = self._judged_neg[qid]
        chosen: list[str] = []
        if judged:
            take = min(k, len(judged))
            chosen = [judged[int(i)] for i in rng.choice(len(judged), size=take, replace=False)]
        own = self.q_article.get(qid)
        tries = 0
        while len(chosen) < k:
            tries += 1
            if tries > 10_000:
                raise RuntimeError(f"could not draw {k} hard negatives for query {qid!r} from the training pool")
            d = self.pool[int(rng.integers(len(self.pool)))]
            if d in chosen or d in self.b.grades[qid] or not self.is_legal_negative(qid, d):
                continue
            if own is not None and self.doc_article.get(d) == own:
                continue
            chosen.append(d)
        return tuple(chosen)

    # -- batch matrices ---------------------------------------------------------------------------
    @staticmethod
    def candidates(batch: list[Example]) -> list[str]:
        """The candidate docnos of a batch: the positives in order, then every example's hard negatives."""
        return [ex.positive for ex in batch] + [d for ex in batch for d in ex.hard]

    def grade_matrix(self, batch: list[Example], candidates: list[str] | None = None) -> np.ndarray:
        """``[B, N]`` grade of every candidate for every query of the batch."""
        cands = self.candidates(batch) if candidates is None else candidates
        return np.array([[self.grade(ex.qid, d) for d in cands] for ex in batch], dtype=np.int64).reshape(
            len(batch), len(cands))

    def mask(self, batch: list[Example], candidates: list[str] | None = None) -> np.ndarray:
        """``[B, N]`` bool, ``True`` where a candidate is not a legal negative (excluding the diagonal target)."""
        cands = self.candidates(batch) if candidates is None else candidates
        m = self.grade_matrix(batch, cands) > self.b.neg_max
        for i in range(min(len(batch), len(cands))):
            m[i, i] = False
        return m
