"""``gradrel leaderboard``: the suite's results as a table with rank intervals (ties), CSV and a figure.

Results are read from one or more results roots (the user's, ``$GRADREL_HOME/benchmark`` by default, and the
reference results that come with the package), in place, never copied; every result is verified and its scores
recomputed from its per-query file (:mod:`pyterrier_gradrel.benchmark._verify`): one refused file stops the
leaderboard. Systems are ranked on the selected tasks that **every** system has (all of them when every system is
complete); the tables say which tasks were used. Scores per group are means of task means; the overall score is
the mean of the group means. Rank intervals: :mod:`pyterrier_gradrel.benchmark._stats`.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.benchmark._results import ResultError, TaskResult, default_results, reference_results
from pyterrier_gradrel.benchmark._stats import RankIntervals, rank_intervals
from pyterrier_gradrel.benchmark._suite import DEFAULT_SUITE, Suite, load_suite, suite_measures
from pyterrier_gradrel.benchmark._systems import earlier_scheme, earlier_scheme_note

__all__ = ["Leaderboard", "collect", "leaderboard", "results_roots"]


def results_roots(results: str | Path | Sequence[str | Path] | None = None, *, reference: bool = True) -> list[Path]:
    """The results roots to read, without repeats: ``results`` (default ``$GRADREL_HOME/benchmark``), then the
    package's reference results when ``reference``.

    Raises:
        ResultError: A root given in ``results`` does not exist.
    """
    given = [results] if isinstance(results, str | Path) else list(results or [])
    for root in given:
        if not Path(root).is_dir():
            raise ResultError(f"results folder {root} does not exist or is not a folder")
    roots = [Path(r) for r in given] or [default_results()]
    ref = reference_results() if reference else None
    if ref is not None:
        roots.append(ref)
    out: list[Path] = []
    for root in roots:
        if root.is_dir() and root.resolve() not in {r.resolve() for r in out}:
            out.append(root)
    return out


def _same_result(a: TaskResult, b: TaskResult) -> bool:
    return a.record["per_query"]["sha256"] == b.record["per_query"]["sha256"] and a.scores == b.scores



def _labels(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A unique label per (name, fingerprint): the name, or ``name@<fingerprint prefix>`` when several systems
    share the name, the prefix 8 characters long, longer where 8 (then 16, ...) do not tell them apart."""
    labels = {}
    for name in dict.fromkeys(n for n, _ in keys):
        prints = [f for n, f in keys if n == name]
        if len(prints) == 1:
            labels[(name, prints[0])] = name
            continue
        width = 8
        while len({f[:width] for f in prints}) < len(prints) and width < max(len(f) for f in prints):
            width *= 2
        labels.update({(name, f): f"{name}@{f[:width]}" for f in prints})
    seen: dict[str, tuple[str, str]] = {}
    for key, label in labels.items():
        other = seen.setdefault(label, key)
        if other != key:  # e.g. a system literally named "A@1234abcd" beside two systems named "A"
            raise ResultError(f"two systems get the leaderboard label {label!r}: {other[0]!r} ({other[1]}) and "
                              f"{key[0]!r} ({key[1]}); rename one (--name)")
    return labels


def collect(results: str | Path | Sequence[str | Path], suite: Suite,
            tasks: Iterable[str] | None = None) -> dict[str, dict[str, TaskResult]]:
    """System label -> task -> verified result, for every system folder under each root's suite folder.

    A label is the system's name, with ``@<fingerprint prefix>`` when one name has several fingerprints: 8
    characters, or as many more as it takes to tell them apart (results of one name from two roots that share
    the first 8 or 16 characters are never merged into one row). The same result found in two roots counts once.

    Raises:
        ResultError: A result fails verification (the message names the file), two different results of one
            system and task were found, or two systems would get the same label.
    """
    from pyterrier_gradrel.benchmark._verify import load_verified, result_paths

    chosen = {t.name for t in suite.select(tasks)}
    roots = [Path(results)] if isinstance(results, str | Path) else [Path(r) for r in results]
    found: dict[tuple[str, str], dict[str, TaskResult]] = {}
    for root in roots:
        folder = root if root.name == suite.folder_name else root / suite.folder_name
        for path in result_paths(folder):
            if path.stem not in chosen:
                continue
            result = load_verified(path, suite)
            system = result.record["system"]
            slot = found.setdefault((system["name"], system["fingerprint"]), {})
            other = slot.get(result.task)
            if other is not None and not _same_result(other, result):
                raise ResultError(f"{path} and {other.path}: two different results of system {system['name']!r} "
                                  f"({system['fingerprint'][:16]}) on task {result.task!r}")
            slot.setdefault(result.task, result)
    labels = _labels(list(found))
    order = [t.name for t in suite.select(tasks)]
    return {labels[key]: {t: found[key][t] for t in order if t in found[key]} for key in found}


@dataclass
class Leaderboard:
    """The leaderboard's tables.

    Attributes:
        table: One row per ranked system: rank, interval, system, fingerprint, overall and group scores, tied_with.
        profile: One row per ranked system: each profile measure (mean of group means).
        tasks: Main score per (system, task used).
        incomplete: System -> selected tasks it has no result for.
        intervals: The bootstrap result.
        used: The tasks every system has, on which all are ranked.
        selected: The tasks asked for.
        written: The files written.
        earlier: System label -> a note on its fingerprint, for the ranked systems whose results record an
            earlier fingerprint scheme (:func:`pyterrier_gradrel.benchmark._systems.earlier_scheme`), naming the
            rows of the same name and factory under the current scheme. The Markdown shows the notes of systems
            that have such a row (two rows of one factory).
        same_factory: System label -> the labels of the rows of the same name and factory under the current
            scheme, for the systems in ``earlier``.
    """

    table: pd.DataFrame
    profile: pd.DataFrame
    tasks: pd.DataFrame
    incomplete: dict[str, list[str]]
    intervals: RankIntervals | None
    used: list[str] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    earlier: dict[str, str] = field(default_factory=dict)
    same_factory: dict[str, list[str]] = field(default_factory=dict)


def _mean_of_groups(frame: pd.DataFrame, groups: dict[str, str], columns: list[str]) -> pd.Series:
    by_group = frame.assign(group=frame.index.map(groups)).groupby("group", sort=False)[columns].mean()
    return by_group.mean()


def shared_tasks(collected: dict[str, dict[str, TaskResult]], names: list[str]) -> list[str]:
    """The tasks of ``names`` (in order) that every collected system has.

    Raises:
        ValueError: Systems were collected but no task is shared by all of them (lists what each has).
    """
    used = [t for t in names if all(t in r for r in collected.values())]
    if collected and not used:
        have = "; ".join(f"{s}: {len(r)} tasks ({', '.join(list(r)[:4])}{', ...' if len(r) > 4 else ''})"
                         for s, r in collected.items())
        raise ValueError(f"no task is shared by every system, so none can be ranked ({have}); pass --tasks, or "
                         "fewer results roots")
    return used


def _score_rows(complete: dict[str, dict[str, TaskResult]], suite: Suite, names: list[str],
                groups: dict[str, str]) -> tuple[list[dict], list[dict], list[dict]]:
    task_rows, profile_rows, rows = [], [], []
    for s, results in complete.items():
        frame = pd.DataFrame({t: results[t].scores for t in names}).T
        task_rows.append({"system": s, **frame[suite.main_score].to_dict()})
        profile_cols = [c for c in frame.columns if c != suite.main_score]
        profile_rows.append({"system": s, **_mean_of_groups(frame, groups, profile_cols).to_dict()})
        group_means = frame.assign(group=frame.index.map(groups)).groupby("group", sort=False)[suite.main_score].mean()
        fingerprint = str(next(iter(results.values())).record["system"]["fingerprint"])[:12]
        rows.append({"system": s, "fingerprint": fingerprint, "overall": float(group_means.mean()),
                     **{g: float(group_means[g]) for g in suite.groups if g in group_means.index}})
    return task_rows, profile_rows, rows


def _with_ranks(table: pd.DataFrame, intervals: RankIntervals) -> pd.DataFrame:
    ranks = intervals.frame().set_index("system")
    table.insert(0, "rank", table["system"].map(ranks["rank"]))
    table.insert(1, "rank_interval", [f"{int(ranks.at[s, 'rank_low'])}-{int(ranks.at[s, 'rank_high'])}"
                                      if ranks.at[s, "rank_low"] != ranks.at[s, "rank_high"]
                                      else str(int(ranks.at[s, "rank_low"])) for s in table["system"]])
    table["tied_with"] = table["system"].map(ranks["tied_with"])
    order = table.sort_values(["rank", "overall"], ascending=[True, False], kind="stable").index
    return table.loc[order].reset_index(drop=True)


def build(collected: dict[str, dict[str, TaskResult]], suite: Suite, tasks: Iterable[str] | None = None, *,
          n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Leaderboard:
    """Tables and rank intervals from collected (verified) results, on the selected tasks every system has."""
    chosen = suite.select(tasks)
    selected = [t.name for t in chosen]
    names = shared_tasks(collected, selected)
    groups = {t.name: t.group for t in chosen}
    incomplete = {s: [t for t in selected if t not in r] for s, r in collected.items() if len(r) < len(selected)}
    systems = list(collected)
    task_rows, profile_rows, rows = _score_rows(collected, suite, names, groups)
    intervals = None
    table = pd.DataFrame(rows)
    if systems:
        per_task = {}
        for t in names:
            merged = collected[systems[0]][t].per_query()[["qid", "article"]].copy()
            for s in systems:
                pq = collected[s][t].per_query().set_index("qid")[suite.main_score]
                merged[s] = merged["qid"].map(pq).to_numpy()
            per_task[t] = merged
        intervals = rank_intervals(per_task, systems, groups, {t.name: t.scope for t in chosen},
                                   n_boot=n_boot, level=level, seed=seed)
        table = _with_ranks(table, intervals)
        table = table[["rank", "rank_interval", "system", "fingerprint", "overall",
                       *[g for g in suite.groups if g in table.columns], "tied_with"]]
    profile = pd.DataFrame(profile_rows)
    tasks_frame = pd.DataFrame(task_rows)
    if len(table):
        profile = profile.set_index("system").loc[table["system"]].reset_index()
        tasks_frame = tasks_frame.set_index("system").loc[table["system"]].reset_index()
    earlier, same_factory = _earlier_schemes(collected, set(table["system"]) if len(table) else set())
    return Leaderboard(table, profile, tasks_frame, incomplete, intervals, names, selected, earlier=earlier,
                       same_factory=same_factory)


def _earlier_schemes(collected: dict[str, dict[str, TaskResult]],
                     ranked: set[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(label -> note, label -> rows of the same name and factory) for the ranked systems of an earlier scheme."""
    systems = {label: next(iter(results.values())).record["system"] for label, results in collected.items()
               if results and label in ranked}
    earlier, same_factory = {}, {}
    for label, system in systems.items():
        description = system.get("description")
        scheme = earlier_scheme(description)
        if scheme is None:
            continue
        same_factory[label] = [
            other for other, s in systems.items()
            if other != label and s["name"] == system["name"] and isinstance(s.get("description"), dict)
            and s["description"].get("factory") == description.get("factory")
            and earlier_scheme(s["description"]) is None]
        beside = (f"; {', '.join(same_factory[label])}: the same name and factory ({description.get('factory')}) "
                  "under the current scheme" if same_factory[label] else "")
        earlier[label] = f"{earlier_scheme_note(scheme)} (another row){beside}"
    return earlier, same_factory


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
    # the binary version of the main score at each rel (nDCG(rel=r)@10)
    binary = {s.rel: s.label for s in suite_measures(suite) if s.rel is not None and s.base == suite.main_score}
    rels = [r for r in suite.rels if r in binary]
    for _, row in board.profile.iterrows():
        ax.plot(rels, [row[binary[r]] for r in rels], marker="o", label=row["system"])
    ax.set_xticks(rels, [f"rel>={r}" for r in rels])
    ax.set_ylabel(f"binary {suite.main_score} (mean of group means)")
    ax.set_title("Threshold profile: article (1) / paragraph (2) / answer (3)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with _atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _scope_lines(board: Leaderboard) -> list[str]:
    used, selected = board.used, board.selected
    if len(used) == len(selected):
        return []
    left = [t for t in selected if t not in used]
    lines = [f"**Ranked on {len(used)} of the {len(selected)} selected tasks**, those every system has: "
             f"{', '.join(used)}. Left out ({len(left)}): {', '.join(left[:8])}{', ...' if len(left) > 8 else ''}; "
             "systems without all selected tasks:", ""]
    lines += [f"- {s}: {len(selected) - len(m)} of {len(selected)} tasks" for s, m in board.incomplete.items()]
    return [*lines, ""]


def _earlier_lines(board: Leaderboard) -> list[str]:
    """A note under the table for each system of an earlier fingerprint scheme that has a row of the same name and
    factory under the current scheme: one factory in two rows, not two systems."""
    return [f"- `{label}`: {note}" for label, note in board.earlier.items() if board.same_factory.get(label)]


def _write(board: Leaderboard, spec: Suite, out: Path, header: list[str], figure: bool) -> list[Path]:
    lines = [*header, *_scope_lines(board), _markdown(board.table), *_earlier_lines(board), "",
             "## Threshold profile (binary measures at rel >= 1, 2, 3; mean of group means)", "",
             _markdown(board.profile), ""]
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard_tasks.csv"]
    _atomic.write_text(written[0], "\n".join(lines))
    _atomic.write_text(written[1], board.table.merge(board.profile, on="system", how="left")
                       .to_csv(index=False, float_format="%.6f"))
    _atomic.write_text(written[2], board.tasks.to_csv(index=False, float_format="%.6f"))
    if figure:
        _figure(board, spec, out / "leaderboard.png")
        written.append(out / "leaderboard.png")
    return written


def leaderboard(
    suite: str | Path = DEFAULT_SUITE,
    *,
    results: str | Path | Sequence[str | Path] | None = None,
    reference: bool = True,
    out: str | Path | None = None,
    tasks: Iterable[str] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    figure: bool = True,
) -> Leaderboard:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard_tasks.csv`` and ``leaderboard.png``.

    Nothing is written when no system has a result (``Leaderboard.written`` is empty).

    Args:
        suite: Suite name or YAML path.
        results: Results root(s), read in place (default: ``$GRADREL_HOME/benchmark``).
        reference: Also read the reference results that come with the package (a root already given is read once).
        out: Output folder (default: ``<first results root>/<suite folder>``).
        tasks: Restrict to these tasks / groups (default: the whole suite).
        n_boot: Bootstrap replicates for the rank intervals.
        level: Coverage of the rank intervals.
        seed: Bootstrap seed.
        figure: Also write the PNG.

    Raises:
        ResultError: A results root given does not exist, or a result fails verification (names the file).
        ValueError: No selected task is shared by every system.
    """
    spec = load_suite(suite)
    tasks = list(tasks) if tasks is not None else None
    roots = results_roots(results, reference=reference)
    board = build(collect(roots, spec, tasks), spec, tasks, n_boot=n_boot, level=level, seed=seed)
    if not len(board.table):
        return board
    first = Path(results if isinstance(results, str | Path) else (list(results or []) or [default_results()])[0])
    out = Path(out) if out is not None else (first if first.name == spec.folder_name else first / spec.folder_name)
    scope = "all tasks" if tasks is None else f"{len(board.selected)} tasks: {', '.join(board.selected)}"
    header = [
        f"# Leaderboard: {spec.name} ({scope})", "",
        f"Generated by `gradrel leaderboard --suite {spec.name}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Scores: {spec.main_score} with gains 2^g-1, recomputed from each result's per-query file; a group's score "
        "is the mean of its tasks, `overall` the mean of the groups. `fingerprint`: the system's fingerprint (its "
        "result folder). `rank_interval`: the central "
        f"{level:.0%} range of the system's rank over {n_boot} paired bootstrap replicates that resample articles "
        "(XQuAD-R, one draw shared by all its tasks) and Wikipedia titles (AfriQA); systems whose intervals overlap "
        "are tied (`tied_with`).", "",
    ]
    board.written = _write(board, spec, out, header, figure)
    return board
