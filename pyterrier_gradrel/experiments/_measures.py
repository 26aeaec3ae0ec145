"""The experiments' measures: names of :mod:`pyterrier_gradrel._evaluation`, the one evaluation module.

``_config`` and the package ``__init__`` import them from here; the definitions live in ``_evaluation``.
"""
from pyterrier_gradrel._evaluation import (
    Evaluator,
    MeasureSpec,
    evaluate,
    label,
    parse_measures,
    spec_evaluator,
)

__all__ = ["Evaluator", "MeasureSpec", "evaluate", "label", "parse_measures", "spec_evaluator"]
