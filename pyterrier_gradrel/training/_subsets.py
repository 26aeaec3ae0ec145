"""Nested training-data fractions and the seeded grade-noise model.

* :func:`nested_fraction` keeps a fraction of the training queries, stratified by language. For a
  given seed, each language's queries are put in one random order and a fraction keeps a prefix of
  it, so the 25% subset is inside the 50% one, which is inside 100%. That order is seeded by the seed
  and the language's position among the languages present in the topics (``1000 + i``, ``i`` its
  index in sorted order), not by the language itself: at the same seed and fraction, a language
  alone (position 0) and the same language in a multilingual training set (e.g. ``th``, position 8
  of XQuAD-R's 12) keep different subsets. Subsets are nested across fractions within one training
  set, not shared between training sets.
* :func:`grade_noise` is the noise model: every *judged* (query, passage) pair independently has its
  grade replaced, with probability ``p``, by a grade drawn uniformly from the *other* grades of the
  scale (a replaced grade never stays the same). A replacement by 0 does not unjudge the pair: its row
  stays in the qrels with label 0, a *judged* grade-0 pair. Binarization lists it among the query's
  judged negatives under every negatives policy, so the sampler draws it as a hard negative before
  any unjudged passage, and the own-article rule (which filters only the unjudged draws) does not
  apply to it: under ``negatives="zero"`` on structure-derived grades, a noised same-article
  passage becomes a hard negative that no unjudged draw could have been. Unjudged (implicit
  grade 0) pairs are left alone: noise models an annotator mislabelling the pairs they saw. Draws
  are fixed per pair for a seed (sorted by qid, docno), so noise sets are nested in ``p`` too: the
  pairs corrupted at ``p=0.1`` are corrupted (identically) at ``p=0.2``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pyterrier_gradrel.datasets import GRADES

__all__ = ["grade_noise", "nested_fraction"]


def _rng(seed: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(salt)])


def nested_fraction(topics: pd.DataFrame, fraction: float, *, seed: int = 0, by: str = "lang") -> pd.DataFrame:
    """Keep ``fraction`` of the queries of each stratum (nested across fractions for one seed).

    Each stratum's queries (sorted by qid) are permuted by a generator seeded with ``(seed, 1000 + i)``,
    ``i`` the stratum's index among the sorted strata present in ``topics``; the fraction keeps a prefix.
    A stratum's subset therefore depends on which other strata ``topics`` holds: the same language
    keeps other queries in a monolingual and in a multilingual training set at the same seed.

    Args:
        topics: Frame with ``qid`` (and ``by`` for stratification; without it, one stratum).
        fraction: In ``(0, 1]``; each stratum keeps ``max(1, round(fraction * n))`` queries.
        seed: Seed of the per-stratum query order (together with the stratum's position, see above).
        by: Column to stratify by (default ``lang``).

    Returns:
        The kept rows, in the input order.
    """
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    if "qid" not in topics.columns:
        raise ValueError(f"topics must have a 'qid' column, got columns {list(topics.columns)}")
    if fraction == 1 or len(topics) == 0:
        return topics
    strata = topics[by].astype(str) if by in topics.columns else pd.Series("", index=topics.index)
    keep: set[str] = set()
    for i, stratum in enumerate(sorted(strata.unique())):
        qids = sorted(topics.loc[strata == stratum, "qid"].astype(str).unique())
        order = _rng(seed, 1000 + i).permutation(len(qids))
        n = max(1, int(round(fraction * len(qids))))
        keep.update(qids[j] for j in order[:n])
    return topics[topics["qid"].astype(str).isin(keep)]


def grade_noise(qrels: pd.DataFrame, p: float, *, seed: int = 0, grades: Sequence[int] = GRADES) -> pd.DataFrame:
    """Replace each judged grade, with probability ``p``, by a uniformly random *other* grade.

    Args:
        qrels: Frame with ``qid``, ``docno``, ``label``.
        p: Noise rate in ``[0, 1]``.
        seed: Seed; per-pair draws are fixed for a seed, so noise sets are nested in ``p``.
        grades: The grade scale.

    Returns:
        A copy with noisy ``label`` and a boolean ``noisy`` column (sorted by qid, docno). Rows whose
        new grade is 0 are kept with ``label`` 0: they are judged grade-0 pairs now, not unjudged ones, so
        training draws them as judged hard negatives, exempt from the own-article rule (module docstring).
    """
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"noise rate p must be a number in [0, 1], got {p!r}")
    scale = np.array(sorted({int(g) for g in grades}))
    if len(scale) < 2:
        raise ValueError(f"grades must have at least two values, got {grades!r}")
    out = qrels.sort_values(["qid", "docno"], kind="stable").reset_index(drop=True).copy()
    rng = _rng(seed, 7)
    u = rng.random(len(out))
    k = rng.integers(0, len(scale) - 1, size=len(out))  # index among the other grades
    labels = out["label"].astype(int).to_numpy()
    if not np.isin(labels, scale).all():
        raise ValueError(f"qrels labels must be grades in {scale.tolist()}, found {sorted(set(labels) - set(scale))}")
    pos = np.searchsorted(scale, labels)
    new = scale[k + (k >= pos)]
    noisy = u < p
    out["label"] = np.where(noisy, new, labels)
    out["noisy"] = noisy
    return out
