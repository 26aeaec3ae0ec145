"""``gradrel leaderboard``: the suite's results as a table with rank intervals (ties), CSV and a figure.

Every system folder under ``<results>/<suite>/`` with a result for each selected task is ranked; systems
missing tasks are listed as incomplete and not ranked. Scores per group are means of task means; the overall
score is the mean of the group means. Rank intervals: :mod:`pyterrier_gradrel.benchmark._stats`.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.benchmark._results import DEFAULT_OUT, TaskResult
from pyterrier_gradrel.benchmark._stats import RankIntervals, rank_intervals
from pyterrier_gradrel.benchmark._suite import DEFAULT_SUITE, DataChangedError, Suite, load_suite

__all__ = ["Leaderboard", "collect", "leaderboard"]


def collect(results: str | Path, suite: Suite, tasks: Iterable[str] | None = None) -> dict[str, dict[str, TaskResult]]:
    """System label -> task -> result, for every system folder under ``<results>/<suite>``.

    A label is the system's name, with ``@<fingerprint[:8]>`` when one name has several fingerprints.

    Raises:
        DataChangedError: A result's data fingerprint differs from the suite's declaration.
    """
    chosen = {t.name: t for t in suite.select(tasks)}
    root = Path(results) / suite.name
    found: dict[tuple[str, str], dict[str, TaskResult]] = {}
    for path in sorted(root.glob("*/*/*.json")):
        result = TaskResult.load(path)
        task = chosen.get(result.task)
        if task is None:
            continue
        if result.data_fingerprint != task.fingerprint:
            raise DataChangedError(f"{path}: computed on data {result.data_fingerprint}, but suite {suite.name} "
                                   f"declares {task.fingerprint} for {task.name!r}; it cannot be compared")
        system = result.record["system"]
        found.setdefault((system["name"], system["fingerprint"]), {})[task.name] = result
    names = [n for n, _ in found]
    labels = {}
    for name, fp in found:
        labels[(name, fp)] = f"{name}@{fp[:8]}" if names.count(name) > 1 else name
    order = [t for t in chosen]
    return {labels[key]: {t: found[key][t] for t in order if t in found[key]} for key in found}


@dataclass
class Leaderboard:
    """The leaderboard's tables.

    Attributes:
        table: One row per ranked system: rank, interval, tied_with, overall and group scores.
        profile: One row per ranked system: each profile measure (mean of group means).
        tasks: Main score per (system, task).
        incomplete: System -> missing tasks.
        intervals: The bootstrap result.
    """

    table: pd.DataFrame
    profile: pd.DataFrame
    tasks: pd.DataFrame
    incomplete: dict[str, list[str]]
    intervals: RankIntervals | None


def _mean_of_groups(frame: pd.DataFrame, groups: dict[str, str], columns: list[str]) -> pd.Series:
    by_group = frame.assign(group=frame.index.map(groups)).groupby("group", sort=False)[columns].mean()
    return by_group.mean()


def build(collected: dict[str, dict[str, TaskResult]], suite: Suite, tasks: Iterable[str] | None = None, *,
          n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Leaderboard:
    """Tables and rank intervals from collected results."""
    chosen = suite.select(tasks)
    names = [t.name for t in chosen]
    groups = {t.name: t.group for t in chosen}
    complete = {s: r for s, r in collected.items() if all(t in r for t in names)}
    incomplete = {s: [t for t in names if t not in r] for s, r in collected.items() if s not in complete}
    systems = list(complete)
    task_rows, profile_rows, rows = [], [], []
    for s in systems:
        frame = pd.DataFrame({t: complete[s][t].scores for t in names}).T
        task_rows.append({"system": s, **frame[suite.main_score].to_dict()})
        profile_cols = [c for c in frame.columns if c != suite.main_score]
        profile_rows.append({"system": s, **_mean_of_groups(frame, groups, profile_cols).to_dict()})
        group_means = frame.assign(group=frame.index.map(groups)).groupby("group", sort=False)[suite.main_score].mean()
        rows.append({"system": s, "overall": float(group_means.mean()),
                     **{g: float(group_means[g]) for g in suite.groups if g in group_means.index}})
    intervals = None
    table = pd.DataFrame(rows)
    if systems:
        per_task = {}
        for t in names:
            base = complete[systems[0]][t].per_query()[["qid", "article"]]
            merged = base.copy()
            for s in systems:
                pq = complete[s][t].per_query().set_index("qid")[suite.main_score]
                merged[s] = merged["qid"].map(pq).to_numpy()
            per_task[t] = merged
        intervals = rank_intervals(per_task, systems, groups, {t.name: t.scope for t in chosen},
                                   n_boot=n_boot, level=level, seed=seed)
        ranks = intervals.frame().set_index("system")
        table.insert(0, "rank", table["system"].map(ranks["rank"]))
        table.insert(1, "rank_interval", [f"{int(ranks.at[s, 'rank_low'])}-{int(ranks.at[s, 'rank_high'])}"
                                          if ranks.at[s, "rank_low"] != ranks.at[s, "rank_high"]
                                          else str(int(ranks.at[s, "rank_low"])) for s in table["system"]])
        table["tied_with"] = table["system"].map(ranks["tied_with"])
        order = table.sort_values(["rank", "overall"], ascending=[True, False], kind="stable").index
        table = table.loc[order].reset_index(drop=True)
    profile = pd.DataFrame(profile_rows)
    tasks_frame = pd.DataFrame(task_rows)
    if len(table):
        profile = profile.set_index("system").loc[table["system"]].reset_index()
        tasks_frame = tasks_frame.set_index("system").loc[table["system"]].reset_index()
    return Leaderboard(table, profile, tasks_frame, incomplete, intervals)


def _markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    from pyterrier_gradrel.retrieval._evaluate import markdown_table

    return markdown_table(frame, digits=digits)


def _figure(board: Leaderboard, suite: Suite, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in suite.groups if g in board.table.columns]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    n = max(len(board.table), 1)
    width = 0.8 / n
    for i, row in enumerate(board.table.itertuples(index=False)):
        values = [row.overall] + [board.table.loc[i, g] for g in groups]
        ax.bar([x + i * width for x in range(len(groups) + 1)], values, width, label=f"{row.rank_interval}: {row.system}")
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups) + 1)], ["overall", *groups])
    ax.set_ylabel(f"{suite.main_score} (gains 2^g-1)")
    ax.set_title("Main score per group (legend: rank interval)")
    ax.legend(fontsize=7)
    ax = axes[1]
    rels = list(suite.rels)
    for _, row in board.profile.iterrows():
        ax.plot(rels, [row[f"nDCG@10(rel={r})"] for r in rels], marker="o", label=row["system"])
    ax.set_xticks(rels, [f"rel>={r}" for r in rels])
    ax.set_ylabel("binary nDCG@10 (mean of group means)")
    ax.set_title("Threshold profile: article (1) / paragraph (2) / answer (3)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with _atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def leaderboard(
    suite: str | Path = DEFAULT_SUITE,
    *,
    results: str | Path = DEFAULT_OUT,
    out: str | Path | None = None,
    tasks: Iterable[str] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    figure: bool = True,
) -> Leaderboard:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard_tasks.csv`` and ``leaderboard.png``.

    Args:
        suite: Suite name or YAML path.
        results: The results root (as given to :func:`~pyterrier_gradrel.benchmark.evaluate`).
        out: Output folder (default ``<results>/<suite>``).
        tasks: Restrict to these tasks / groups (default: the whole suite).
        n_boot: Bootstrap replicates for the rank intervals.
        level: Coverage of the rank intervals.
        seed: Bootstrap seed.
        figure: Also write the PNG.
    """
    spec = load_suite(suite)
    tasks = list(tasks) if tasks is not None else None
    board = build(collect(results, spec, tasks), spec, tasks, n_boot=n_boot, level=level, seed=seed)
    out = Path(out) if out is not None else Path(results) / spec.name
    out.mkdir(parents=True, exist_ok=True)
    chosen = spec.select(tasks)
    scope = "all tasks" if tasks is None else f"{len(chosen)} tasks: {', '.join(t.name for t in chosen)}"
    lines = [
        f"# Leaderboard: {spec.name} ({scope})", "",
        f"Generated by `gradrel leaderboard --suite {spec.name}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Scores: {spec.main_score} with gains 2^g-1; a group's score is the mean of its tasks, `overall` the mean "
        "of the groups. `rank_interval`: the central "
        f"{level:.0%} range of the system's rank over {n_boot} paired bootstrap replicates that resample articles "
        "(XQuAD-R, one draw shared by all its tasks) and Wikipedia titles (AfriQA); systems whose intervals overlap "
        "are tied (`tied_with`).", "",
    ]
    if len(board.table):
        lines += [_markdown(board.table), "", "## Threshold profile (binary measures at rel >= 1, 2, 3; mean of group means)",
                  "", _markdown(board.profile), ""]
    else:
        lines += ["No system has results for every selected task.", ""]
    if board.incomplete:
        lines += ["## Incomplete (not ranked)", ""]
        lines += [f"- {s}: missing {len(m)} of {len(chosen)} tasks ({', '.join(m[:6])}{', ...' if len(m) > 6 else ''})"
                  for s, m in board.incomplete.items()]
        lines.append("")
    _atomic.write_text(out / "leaderboard.md", "\n".join(lines))
    _atomic.write_text(out / "leaderboard.csv",
                       board.table.merge(board.profile, on="system", how="left").to_csv(index=False, float_format="%.6f")
                       if len(board.table) else "")
    _atomic.write_text(out / "leaderboard_tasks.csv", board.tasks.to_csv(index=False, float_format="%.6f"))
    if figure and len(board.table):
        _figure(board, spec, out / "leaderboard.png")
    return board
