"""How report sections name systems and corrections, and how they write figures (shared by ``_report`` and
``_diagonal``)."""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.experiments._plan import Variant

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_CORRECTIONS = {"holm": "Holm-Bonferroni", "bonferroni": "Bonferroni", "bh": "Benjamini-Hochberg", "none": "none"}


def column_name(system: str, variant: str, variants: Sequence[Variant]) -> str:
    """A system's column in report tables: the baseline's name, ``τ=<τ>`` or ``graded loss``.

    Args:
        system: ``fine-tuned`` or a baseline name (the ``system`` column of the per-query frame).
        variant: the ``variant`` column (``tau=<τ>``, ``graded``; ``""`` for baselines).
        variants: the experiment's variants, whose :attr:`~Variant.display` names their columns.
    """
    if system != "fine-tuned":
        return system
    return next((v.display for v in variants if v.label == variant), str(variant))


def correction_name(correction: str) -> str:
    """The name of a multiple-testing correction in prose (``holm`` -> ``Holm-Bonferroni``)."""
    return _CORRECTIONS[correction]


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _atomic.write_bytes(path, buf.getvalue())
    return path
