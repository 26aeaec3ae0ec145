"""How report sections name systems and corrections, write table cells, and write figures (shared by ``_report``
and ``_diagonal``)."""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.experiments._plan import Variant

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: a multiple-testing correction's name in prose (``holm`` -> ``Holm-Bonferroni``)
CORRECTION_NAMES = {"holm": "Holm-Bonferroni", "bonferroni": "Bonferroni", "bh": "Benjamini-Hochberg", "none": "none"}


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


def effect_cells(effects: pd.DataFrame, variants: Sequence[str]) -> list[str]:
    """One table cell per variant label: its row's ``delta`` (**bold** when ``significant``), ``–`` without a row."""
    cells = []
    for v in variants:
        r = effects[effects["variant"] == v]
        text = "–" if r.empty else f"{r['delta'].iloc[0]:+.3f}"
        cells.append(f"**{text}**" if len(r) and bool(r["significant"].iloc[0]) else text)
    return cells


def differ_cell(interactions: pd.DataFrame, variants: Sequence[Variant]) -> str:
    """The cell naming the variant pairs whose effects differ significantly (Δ of Δ, adjusted p); else the smallest
    adjusted p, or ``–`` when nothing was tested."""
    sig = interactions[interactions["significant"]]
    if len(sig):
        return ", ".join(f"{column_name('fine-tuned', r.variant, variants)} − "
                         f"{column_name('fine-tuned', r.other, variants)}: {r.delta:+.3f} ({r.p_adjusted:.2g})"
                         for r in sig.itertuples())
    return f"none (smallest adj. p {interactions['p_adjusted'].min():.2g})" if len(interactions) else "–"


def save_figure(fig: Figure, path: Path) -> Path:
    """Lay out ``fig``, write it as a PNG to ``path`` atomically and release it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    _atomic.write_bytes(path, buf.getvalue())
    return path
