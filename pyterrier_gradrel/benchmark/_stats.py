"""Rank intervals from a paired, clustered bootstrap over queries.

The leaderboard's overall score of a system is the mean of its group means (a group mean is the mean of its
tasks' means), so the 12 monolingual tasks weigh as much as the one ``multi`` task. One bootstrap replicate
resamples, with replacement, the *clusters* (articles / Wikipedia titles) of each cluster scope, the same draw
for every system (paired) and for every task of the scope (XQuAD-R's test articles are the same in every
language); each task's mean is then the mean over the resampled queries. A system's rank in a replicate is
1 + the number of systems with a strictly higher overall score; its rank interval is the central ``level``
quantile range of those ranks. Two systems whose intervals overlap are **tied**.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["RankIntervals", "overall_scores", "rank_intervals", "ranks_of"]


@dataclass
class RankIntervals:
    """Result of :func:`rank_intervals`.

    Attributes:
        systems: System names (column order of the matrices).
        observed: Observed overall score per system.
        replicates: Bootstrap overall scores, shape (n_boot, n_systems).
        ranks: Bootstrap ranks, shape (n_boot, n_systems).
        low: Lower end of each rank interval.
        high: Upper end of each rank interval.
        level: Coverage of the intervals.
    """

    systems: list[str]
    observed: np.ndarray
    replicates: np.ndarray
    ranks: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float

    def rank(self) -> np.ndarray:
        """Point ranks from the observed scores (1 = best; equal scores share the better rank)."""
        return ranks_of(self.observed[None, :])[0]

    def tied_with(self) -> dict[str, list[str]]:
        """System -> the other systems whose rank intervals overlap its own."""
        out = {}
        for i, s in enumerate(self.systems):
            out[s] = [t for j, t in enumerate(self.systems)
                      if j != i and self.low[i] <= self.high[j] and self.low[j] <= self.high[i]]
        return out

    def frame(self) -> pd.DataFrame:
        """system, score, rank, rank_low, rank_high, tied_with (sorted by rank)."""
        ties = self.tied_with()
        frame = pd.DataFrame({"system": self.systems, "score": self.observed, "rank": self.rank(),
                              "rank_low": self.low.astype(int), "rank_high": self.high.astype(int),
                              "tied_with": [", ".join(ties[s]) for s in self.systems]})
        return frame.sort_values(["rank", "system"], kind="stable").reset_index(drop=True)


def ranks_of(scores: np.ndarray) -> np.ndarray:
    """Ranks per row of ``scores`` (n, systems): 1 + number of strictly better systems."""
    scores = np.asarray(scores, dtype=float)
    return 1 + (scores[:, None, :] > scores[:, :, None]).sum(axis=2)


def overall_scores(task_means: Mapping[str, np.ndarray], groups: Mapping[str, str]) -> np.ndarray:
    """Mean of group means from task means (each array ``(..., systems)``), groups in first-seen order."""
    by_group: dict[str, list[np.ndarray]] = {}
    for task, means in task_means.items():
        by_group.setdefault(groups[task], []).append(means)
    return np.mean([np.mean(v, axis=0) for v in by_group.values()], axis=0)


def _cluster_keys(frame: pd.DataFrame) -> list[str]:
    # a query without an article is its own cluster
    return [a if a else f"query:{q}" for q, a in zip(frame["qid"].astype(str), frame["article"].astype(str), strict=True)]


def rank_intervals(
    scores: Mapping[str, pd.DataFrame],
    systems: Sequence[str],
    groups: Mapping[str, str],
    scopes: Mapping[str, str] | None = None,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> RankIntervals:
    """Rank intervals of ``systems`` from a paired bootstrap over clusters of queries.

    Args:
        scores: Task -> frame with ``qid``, ``article`` (the cluster; empty = the query alone) and one column
            per system (its per-query main score). Every system must have a score for every query.
        systems: The system columns to rank.
        groups: Task -> group.
        scopes: Task -> cluster scope (tasks sharing a scope share one draw); default: each task its own.
        n_boot: Bootstrap replicates.
        level: Coverage of the rank intervals (0.95: the 2.5 % and 97.5 % quantiles).
        seed: Seed of the draws.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    systems = list(systems)
    scopes = dict(scopes or {t: t for t in scores})
    rng = np.random.default_rng(seed)
    observed_means: dict[str, np.ndarray] = {}
    boot_means: dict[str, np.ndarray] = {}
    for scope in dict.fromkeys(scopes[t] for t in scores):
        tasks = [t for t in scores if scopes[t] == scope]
        clusters = sorted({k for t in tasks for k in _cluster_keys(scores[t])})
        index = {k: i for i, k in enumerate(clusters)}
        weights = rng.multinomial(len(clusters), np.full(len(clusters), 1 / len(clusters)), size=int(n_boot))
        for t in tasks:
            frame = scores[t]
            missing = [s for s in systems if s not in frame.columns]
            if missing or frame[systems].isna().any().any():
                raise ValueError(f"task {t!r}: every system needs a score for every query; missing columns "
                                 f"{missing} or NaN scores")
            codes = np.array([index[k] for k in _cluster_keys(frame)])
            values = frame[systems].to_numpy(dtype=float)
            sums = np.zeros((len(clusters), len(systems)))
            np.add.at(sums, codes, values)
            counts = np.bincount(codes, minlength=len(clusters)).astype(float)
            num = weights @ sums
            den = (weights @ counts)[:, None]
            observed_means[t] = values.mean(axis=0)
            # a replicate that drew none of this task's clusters keeps the task's observed mean
            boot_means[t] = np.where(den > 0, num / np.where(den > 0, den, 1), observed_means[t])
    observed = overall_scores(observed_means, groups)
    replicates = overall_scores(boot_means, groups)
    ranks = ranks_of(replicates)
    alpha = (1 - level) / 2
    low = np.quantile(ranks, alpha, axis=0, method="inverted_cdf")
    high = np.quantile(ranks, 1 - alpha, axis=0, method="inverted_cdf")
    return RankIntervals(systems, observed, replicates, ranks, low, high, level)
