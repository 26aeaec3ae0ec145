"""Markdown tables: the one way the package writes them (experiment reports, the retrieval studies' tables, the
judge's agreement summary)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence


def table_lines(header: Sequence[str], rows: Iterable[Sequence[str]], *,
                rule: Sequence[str] | None = None) -> list[str]:
    """The lines of a GitHub-flavoured Markdown table: the header, its rule and a line per row of cells.

    Args:
        header: the column names.
        rows: each row's cells, as text.
        rule: each column's cell of the rule line (``---:`` aligns the column right); default ``---`` for every column.
    """
    rule = ["---"] * len(header) if rule is None else rule
    return (["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
            + ["| " + " | ".join(cells) + " |" for cells in rows])
