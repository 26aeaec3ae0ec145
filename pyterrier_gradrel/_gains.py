"""The benchmark's graded gain, one definition for every table: grade g counts 2^g − 1 in graded nDCG."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

GRADES = (0, 1, 2, 3)


def exponential_gains(grades: Iterable[int] = GRADES) -> dict[int, int]:
    """``{g: 2**g - 1}`` for each grade (0 → 0, 1 → 1, 2 → 3, 3 → 7)."""
    return {int(g): 2 ** int(g) - 1 for g in grades}


def graded_ndcg(cutoff: int = 10, grades: Iterable[int] = GRADES) -> Any:
    """``ir_measures.nDCG(gains=2^g − 1)@cutoff``. Evaluate it in its own call (ir_measures 0.4.3 mixes nDCG variants)."""
    import ir_measures

    return ir_measures.nDCG(gains=exponential_gains(grades)) @ cutoff
