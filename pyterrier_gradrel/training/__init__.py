"""Threshold-binarized contrastive fine-tuning: sampler, losses, trainer, data fractions and noise.

Public API: :class:`ContrastiveTrainer`, :class:`TrainConfig`, :class:`InfoNCELoss`,
:class:`GradedInfoNCELoss`, plus :class:`PairSampler`, :func:`nested_fraction` and :func:`grade_noise`.
Importing this package imports torch (through the losses).
"""
from pyterrier_gradrel.training._losses import GradedInfoNCELoss, InfoNCELoss
from pyterrier_gradrel.training._sampler import Example, PairSampler
from pyterrier_gradrel.training._subsets import grade_noise, nested_fraction
from pyterrier_gradrel.training._trainer import ContrastiveTrainer, TrainConfig

__all__ = [
    "ContrastiveTrainer",
    "Example",
    "GradedInfoNCELoss",
    "InfoNCELoss",
    "PairSampler",
    "TrainConfig",
    "grade_noise",
    "nested_fraction",
]
