"""Contrastive losses over a query × candidate similarity matrix, with label-aware masking.

Both losses take ``scores``: a ``[B, N]`` float tensor of similarities (cosine of L2-normalised
embeddings) between the ``B`` queries of a batch and ``N`` candidate passages (the batch's positives
followed by its hard negatives), plus a ``[B, N]`` boolean ``mask`` whose ``True`` entries are
removed from the softmax (label-aware false-negative masking: a candidate judged ``>= rel`` for
that query, in the grey band, or with the same text as one of its positives).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["GradedInfoNCELoss", "InfoNCELoss"]


class InfoNCELoss(nn.Module):
    """InfoNCE with temperature over in-batch and hard negatives, with a masked denominator.

    For query ``i`` with positive column ``t_i``::

        loss_i = -log( exp(s[i, t_i] / T) / sum_{j not masked} exp(s[i, j] / T) )

    and the loss is the mean over queries. ``mask[i, t_i]`` is ignored (the target always counts).
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

    def forward(self, scores: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            scores: ``[B, N]`` similarities.
            target: ``[B]`` long, the column of each query's positive.
            mask: optional ``[B, N]`` bool, ``True`` = exclude from the denominator.

        Returns:
            The scalar mean loss.
        """
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

    def __init__(self, *, weights: Mapping[int, float] | None = None, temperature: float = 0.05):
        """Args:
        weights: grade → weight (>= 0, at least one > 0); grades not listed weigh 0.
            Default ``{1: 1.0, 2: 3.0, 3: 7.0}`` (``2^g - 1``).
        temperature: Softmax temperature ``T`` (> 0).
        """
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        weights = dict(weights) if weights is not None else {1: 1.0, 2: 3.0, 3: 7.0}
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
        """
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
