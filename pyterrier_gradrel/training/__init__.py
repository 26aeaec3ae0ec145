"""Threshold-binarized contrastive fine-tuning: sampler, losses, trainer, data fractions and noise.

Public API: :class:`FineTuned` (the trainer as a ``pt.Estimator``), :class:`ContrastiveTrainer`, :class:`TrainConfig`, :class:`InfoNCELoss`,
:class:`GradedInfoNCELoss`, plus :class:`PairSampler`, :func:`nested_fraction` and :func:`grade_noise`.
Names are imported on first use, so importing this package is cheap (no torch).
"""
from __future__ import annotations

from pyterrier_gradrel._lazy import lazy_exports

# public name -> "module:attribute", imported on first access (``gradrel --help`` must not load torch)
_LAZY: dict[str, str] = {
    "ContrastiveTrainer": "pyterrier_gradrel.training._trainer:ContrastiveTrainer",
    "FineTuned": "pyterrier_gradrel.training._estimator:FineTuned",
    "Example": "pyterrier_gradrel.training._sampler:Example",
    "GradedInfoNCELoss": "pyterrier_gradrel.training._losses:GradedInfoNCELoss",
    "InfoNCELoss": "pyterrier_gradrel.training._losses:InfoNCELoss",
    "PairSampler": "pyterrier_gradrel.training._sampler:PairSampler",
    "TrainConfig": "pyterrier_gradrel.training._config:TrainConfig",
    "grade_noise": "pyterrier_gradrel.training._subsets:grade_noise",
    "nested_fraction": "pyterrier_gradrel.training._subsets:nested_fraction",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
