"""Contrastive losses over a query × candidate similarity matrix, with label-aware masking.

Both losses are called the same way, ``loss(scores, grades, mask)``, so a trainer never branches on
the loss:

* ``scores``: ``[B, N]`` float similarities (cosine of L2-normalised embeddings) between the ``B``
  queries of a batch and ``N >= B`` candidate passages laid out as
  :meth:`~pyterrier_gradrel.training.PairSampler.candidates` does: candidate ``i < B`` is the sampled
  positive of query ``i``, the hard negatives follow;
* ``grades``: ``[B, N]`` long, the grade of every candidate for every query (0 for unjudged);
* ``mask``: optional ``[B, N]`` bool whose ``True`` entries are removed from the softmax (label-aware
  false-negative masking: a candidate judged ``>= rel`` for that query, in the grey band, or with the
  same text as one of its positives).

:class:`InfoNCELoss` has one positive per query, the diagonal candidate, and does not weigh by grade;
:class:`GradedInfoNCELoss` makes every candidate with a positive grade weight a positive.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from pyterrier_gradrel.datasets import GRADES

__all__ = ["GradedInfoNCELoss", "InfoNCELoss", "default_weights"]


def default_weights(grades: Sequence[int]) -> dict[int, float]:
    """The graded loss's default weights on a grade scale: ``2^g - 1`` for every grade ``g > 0``.

    ``{1: 1.0, 2: 3.0, 3: 7.0}`` on the built-in scale 0..3; every positive grade of a longer scale gets its
    weight too (``4: 15.0`` on 0..4), so no grade of the scale is left to act as a negative.
    """
    return {int(g): float(2 ** int(g) - 1) for g in sorted(grades) if int(g) > 0}


class InfoNCELoss(nn.Module):
    """InfoNCE with temperature over in-batch and hard negatives, with a masked denominator.

    For query ``i``, whose positive is candidate ``i`` (the batch layout of the module docstring)::

        loss_i = -log( exp(s[i, i] / T) / sum_{j not masked} exp(s[i, j] / T) )

    and the loss is the mean over queries. ``mask[i, i]`` is ignored (the positive always counts).
    With ``temperature=0.05`` this is sentence-transformers' ``MultipleNegativesRankingLoss`` at
    ``scale=20`` plus masking.
    """

    def __init__(self, *, temperature: float = 0.05):
        """Args:
        temperature: Softmax temperature ``T`` (> 0).
        """
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def forward(self, scores: torch.Tensor, grades: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            scores: ``[B, N]`` similarities, ``N >= B``; candidate ``i`` is query ``i``'s positive.
            grades: ``[B, N]`` grades (the common signature; single-positive InfoNCE does not weigh by
                them: which candidates may not act as negatives is the ``mask``'s job).
            mask: optional ``[B, N]`` bool, ``True`` = exclude from the denominator.

        Returns:
            The scalar mean loss.

        Raises:
            ValueError: ``scores`` has fewer columns than rows, or ``grades`` is not ``[B, N]``.
        """
        if scores.ndim != 2 or scores.shape[1] < scores.shape[0]:
            raise ValueError(f"scores must be [B, N] with N >= B (candidate i is query i's positive), "
                             f"got shape {tuple(scores.shape)}")
        if tuple(grades.shape) != tuple(scores.shape):
            raise ValueError(f"grades must have the shape of scores {tuple(scores.shape)} (the grade of every "
                             f"candidate for every query), got {tuple(grades.shape)}")
        target = torch.arange(scores.shape[0], device=scores.device)
        logits = scores / self.temperature
        if mask is not None:
            mask = mask.clone()
            mask[torch.arange(len(target)), target] = False
            logits = logits.masked_fill(mask, float("-inf"))
        return nn.functional.cross_entropy(logits, target)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class GradedInfoNCELoss(nn.Module):
    """Grade-weighted multi-positive InfoNCE: no single threshold τ has to be chosen.

    Every candidate whose grade ``g`` for the query has weight ``w_g > 0`` is a positive; weight-0
    candidates are negatives (unless masked). For query ``i`` with ``w_ij = weights[grade[i, j]]``::

        p_ij   = exp(s_ij / T) / sum_{k not masked} exp(s_ik / T)
        loss_i = - sum_j w_ij log p_ij / sum_j w_ij

    averaged over queries that have at least one positive. Relation to :class:`InfoNCELoss`: with
    exactly one positive per row (weight > 0) the weights cancel and it *is* InfoNCE; with equal
    weights on a positive set P it is the multi-positive (SupCon "L_out") InfoNCE
    ``-mean_{j in P} log p_ij``; grade weights interpolate between thresholds (e.g. ``2^g - 1``,
    the nDCG gains, the default).
    """

    def __init__(self, *, weights: Mapping[int, float] | None = None, grades: Sequence[int] | None = None,
                 temperature: float = 0.05):
        """Args:
        weights: grade → weight (>= 0, at least one > 0); grades not listed weigh 0.
            Default: :func:`default_weights` of ``grades``, ``2^g - 1`` for every grade ``g > 0``.
        grades: The grade scale the default weights are made for (default ``(0, 1, 2, 3)``, giving
            ``{1: 1.0, 2: 3.0, 3: 7.0}``); not read when ``weights`` is given.
        temperature: Softmax temperature ``T`` (> 0).
        """
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        weights = dict(weights) if weights is not None else default_weights(GRADES if grades is None else grades)
        if not weights or any(float(w) < 0 for w in weights.values()) or not any(float(w) > 0 for w in weights.values()):
            raise ValueError(f"weights must map grades to weights >= 0 with at least one > 0, got {weights!r}")
        if any(isinstance(g, bool) or not isinstance(g, int) or g < 0 for g in weights):
            raise ValueError(f"weights keys must be grades (ints >= 0), got {sorted(weights)!r}")
        self.weights = {int(g): float(w) for g, w in sorted(weights.items())}
        table = torch.zeros(max(self.weights) + 1)
        for g, w in self.weights.items():
            table[g] = w
        self.register_buffer("_table", table, persistent=False)
        self.temperature = float(temperature)

    @property
    def min_positive_grade(self) -> int:
        """The smallest grade with a positive weight (the τ the sampler uses for positives)."""
        return min(g for g, w in self.weights.items() if w > 0)

    def forward(self, scores: torch.Tensor, grades: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            scores: ``[B, N]`` similarities.
            grades: ``[B, N]`` long, the grade of each candidate for each query (0 for unjudged).
            mask: optional ``[B, N]`` bool, ``True`` = exclude from the softmax (never applied to
                weighted positives).

        Returns:
            The scalar mean loss over rows with at least one positive.

        Raises:
            ValueError: ``grades`` is not shaped like ``scores``, or no row has a positive.
        """
        if tuple(grades.shape) != tuple(scores.shape):
            raise ValueError(f"grades must have the shape of scores {tuple(scores.shape)} (the grade of every "
                             f"candidate for every query), got {tuple(grades.shape)}")
        g = grades.clamp(min=0, max=len(self._table) - 1)
        w = self._table.to(scores.dtype)[g] * (grades < len(self._table)).to(scores.dtype)
        logits = scores / self.temperature
        if mask is not None:
            logits = logits.masked_fill(mask & (w == 0), float("-inf"))
        logp = torch.log_softmax(logits, dim=1)
        denom = w.sum(dim=1)
        rows = denom > 0
        if not bool(rows.any()):
            raise ValueError("GradedInfoNCELoss: no row has a positive (grade with weight > 0)")
        per_row = -(w * torch.where(w > 0, logp, torch.zeros_like(logp))).sum(dim=1)
        return (per_row[rows] / denom[rows]).mean()

    def extra_repr(self) -> str:
        return f"weights={self.weights}, temperature={self.temperature}"
