"""The τ × evaluation-threshold diagonal, and the sampling unit × τ interaction.

**Diagonal.** A model fine-tuned at training threshold τ may win when relevance is judged at one evaluation
threshold ``rel`` and lose at another. :func:`compare_diagonal` names, per target and binary measure (the frame's
typed ``rel`` and ``base`` columns), the τ that wins at each ``rel`` and reports its tests against every other τ
(every pair of τ tested, corrected over all pairs);
:func:`diagonal_match_test` asks across targets whether "the winning τ equals ``rel``" happens more often than if
τ did not matter, with a randomization clustered by question (XQuAD-R's languages translate the same questions).
Only variants with a ``tau`` take part (the graded loss has no threshold), at the reference level (the largest
fraction, the lowest noise rate), where every experiment has all its targets.

**Sampling unit × τ.** :func:`compare_units` pairs two experiments with the same targets, variants and
measures (e.g. ``unit: pair`` against its ``unit: query`` control): does switching the unit help one τ more than
another?

:func:`._report.refresh_report` (the diagonal with every other analysis) and :func:`add_unit_comparison` write these
sections into a committed ``report.md`` from its ``perquery.csv.gz``.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel._markdown import table_lines
from pyterrier_gradrel.datasets import question_key
from pyterrier_gradrel.experiments._config import ExperimentConfig, SignificanceSpec, load_config
from pyterrier_gradrel.experiments._display import CORRECTION_NAMES, differ_cell, effect_cells
from pyterrier_gradrel.experiments._display import column_name as _col_name
from pyterrier_gradrel.experiments._display import save_figure as _save
from pyterrier_gradrel.experiments._significance import (
    correct_families,
    effects_and_interactions,
    seed_average,
    winner_pairs,
)
from pyterrier_gradrel.experiments._store import PERQUERY_COLUMNS, default_root

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

DIAGONAL_COLUMNS = ["scenario", "label", "target", "fraction", "noise", "measure", "base", "rel", "tau", "mean",
                    "delta", "best", "is_best", "tied", "n_queries", "n_seeds", "statistic", "p_value", "p_adjusted",
                    "significant", "family_size"]
MATCH_TEST_COLUMNS = ["scenario", "fraction", "noise", "base", "rel", "n_targets", "matches", "n_taus", "chance",
                      "null_mean", "n_clusters", "permutations", "p_value"]
UNITS_COLUMNS = ["scenario", "label", "target", "measure", "kind", "variant", "other", "treatment_mean",
                 "control_mean", "delta", "n_queries", "statistic", "p_value", "p_adjusted", "significant",
                 "family_size"]
SECTION_TITLE = "τ × evaluation threshold (the diagonal)"
UNITS_TITLE = "Sampling unit × τ"
_TIE = 1e-12  # two τ whose seed-averaged means differ by less are tied (e.g. R@100 at rel >= 3 is often 1.0)


def _reference_level(sel: pd.DataFrame) -> tuple[float, float]:
    """The reference level of fine-tuned rows: the largest fraction and the lowest noise rate."""
    return float(sel["fraction"].max()), float(sel["noise"].min())


def _reference_rows(perquery: pd.DataFrame) -> tuple[pd.DataFrame, float, float]:
    """The τ variants' seed-averaged per-query test scores on thresholded measures at the reference level, and that
    level's fraction and noise rate."""
    sel = perquery[(perquery["split"] == "test") & (perquery["system"] == "fine-tuned")]
    sel = sel[sel["tau"].notna() & sel["rel"].notna()]
    f, n = _reference_level(sel)
    return seed_average(sel[(sel["fraction"] == f) & (sel["noise"] == n)]), f, n


def compare_diagonal(perquery: pd.DataFrame, *, significance: SignificanceSpec | None = None) -> pd.DataFrame:
    """Per target and binary measure: which training τ wins at each evaluation threshold on test, and by how much.

    Every pair of τ of a (target, measure) cell is compared (:func:`._significance.winner_pairs`), and the
    correction runs over every pair of every cell of the measure label, so the winner's tests keep the family-wise
    error although the winner was picked by its mean. The winner is significantly above every other τ only when
    all its tests are ``significant``.

    Args:
        perquery: the per-query long frame (see :mod:`._store`).
        significance: the paired test of per-query scores averaged over seeds (:func:`._significance.paired_test`;
            ``permutations`` and ``random_seed`` for the permutation test), the correction
            (:func:`._significance.correct`; one family per measure label: all pairs of τ of all its targets) and
            ``alpha``, applied to the adjusted p-values (default: :class:`SignificanceSpec`'s).

    Returns:
        One row per (scenario, label, target, measure, τ) with ``base`` (the measure without its rel),
        ``rel``, ``mean`` (seed-averaged), ``delta`` (``mean`` − the winner's mean; 0 for the winner), ``best``
        (the winning τ; ties go to the smaller τ), ``is_best``, ``tied`` (the winner's mean equals another τ's,
        the same on every row of the cell), ``n_queries``, ``n_seeds`` and the winner-vs-this-τ
        test (``statistic`` of winner − τ, ``p_value``, ``p_adjusted``, ``significant``, ``family_size``: the
        number of pairs in the measure's family; NaN/False for the winner itself). The pairs without the winner
        are tested and counted, not returned. Empty when no target has two τ variants on a binary measure.
    """
    sig = significance or SignificanceSpec()
    avg, f, n = _reference_rows(perquery)
    rows = []
    for (scenario, label, target, base, rel), grp in avg.groupby(["scenario", "label", "target", "base", "rel"],
                                                                 sort=True):
        measure, rel = str(grp["measure"].iloc[0]), int(rel)
        scores = {int(t): g.set_index("qid")["value"] for t, g in grp.groupby("tau")}
        if len(scores) < 2:
            continue
        means = {t: float(s.mean()) for t, s in scores.items()}
        best = max(sorted(means), key=means.__getitem__)
        tied = sum(abs(m - means[best]) <= _TIE for m in means.values()) > 1
        n_seeds = {int(t): int(g["n_seeds"].max()) for t, g in grp.groupby("tau")}
        tests = {(first, second): test for first, second, test in winner_pairs(scores, best, sig)}
        for tau in sorted(scores):
            row = dict(scenario=scenario, label=label, target=target, fraction=f, noise=n, measure=measure,
                       base=base, rel=rel, tau=tau, mean=means[tau], delta=means[tau] - means[best], best=best,
                       is_best=tau == best, tied=tied, n_queries=len(scores[tau]), n_seeds=n_seeds[tau],
                       statistic=np.nan, p_value=np.nan, shown=True)
            if (test := tests.pop((best, tau), None)) is not None:
                row["statistic"], row["p_value"] = test["statistic"], test["p_value"]
            rows.append(row)
        rows += [dict(measure=measure, statistic=test["statistic"], p_value=test["p_value"], shown=False)
                 for test in tests.values()]
    out = correct_families(rows, [*DIAGONAL_COLUMNS, "shown"], ["measure"], sig, skip_untested=True)
    if out.empty:
        return out[DIAGONAL_COLUMNS]
    dtypes = pd.DataFrame([r for r in rows if r["shown"]]).dtypes.drop("shown").to_dict()  # before the pairs' NaN
    return out[out["shown"].astype(bool)][DIAGONAL_COLUMNS].astype(dtypes).reset_index(drop=True)


def _match_counts(means: np.ndarray, cell_rel: np.ndarray, taus: np.ndarray, rels: list[int]) -> np.ndarray:
    """``means[..., cell, τ]`` → ``counts[..., len(rels) + 1]``: per rel, then summed over them, the untied cells
    whose best τ (the smallest of equal means, as :func:`compare_diagonal`) equals the cell's rel."""
    best = means.argmax(axis=-1)
    hit = (taus[best] == cell_rel) & _untied(means)
    out = np.stack([hit[..., cell_rel == r].sum(axis=-1) for r in rels], axis=-1)
    return np.concatenate([out, out.sum(axis=-1, keepdims=True)], axis=-1)


def _untied(means: np.ndarray) -> np.ndarray:
    """Cells whose best mean is not shared by a second τ (within :data:`_TIE`)."""
    top2 = np.sort(means, axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]) > _TIE


def _relabelled_counts(order: np.ndarray, relabelled: np.ndarray, sizes: np.ndarray, cell_rel: np.ndarray,
                       taus: np.ndarray, rels: list[int]) -> np.ndarray:
    """The statistic when question ``c`` takes relabelling ``order[b, c]`` → ``[b, len(rels) + 1]``.

    ``relabelled[k, c, cell * τ]`` holds question ``c``'s summed values per cell with the τ labels in order ``k``;
    the cell means of draw ``b`` are ``Σ_c relabelled[order[b, c], c] / sizes``, one matrix product per order.
    """
    total = sum((order == k).astype(float) @ relabelled[k] for k in range(len(relabelled)))
    return _match_counts(total.reshape(len(order), len(sizes), len(taus)) / sizes, cell_rel, taus, rels)


def diagonal_match_test(perquery: pd.DataFrame, *, permutations: int = 10000, random_seed: int = 0,
                        batch: int = 250) -> pd.DataFrame:
    """Across targets: does the winning τ equal the evaluation threshold more often than if τ did not matter?

    The statistic, per ``rel`` that is also a training τ and pooled over those ``rel``, is the number of
    (target, ``rel``) cells of :func:`compare_diagonal` whose best τ equals ``rel`` (a cell whose best mean is
    shared by two τ is a tie and is not counted). Its null distribution comes from a clustered randomization
    test, not from a binomial over targets: XQuAD-R's languages translate the same questions, so one question's
    difficulty for a τ shows up in every language and the targets' winners agree more often than independent
    trials would.

    Null hypothesis: τ has no effect on any per-query score (the seed-averaged scores of one query are
    exchangeable over τ). Randomization: per question cluster (:func:`~pyterrier_gradrel.datasets.question_key`:
    one XQuAD-R question in every language, and every target and ``rel`` that holds it), one random permutation of
    the τ labels is applied to all of the cluster's per-query values at once, so the dependence between the
    languages (and between the ``rel`` of one query) is kept. The winners and the statistic are recomputed from the permuted
    values; ``p = (1 + #{permuted ≥ observed}) / (1 + permutations)``, one-sided. For a collection without
    parallel questions (AfriQA) each query is its own cluster: an ordinary within-query permutation. A draw picks
    one of the ``n_taus!`` relabellings per question uniformly (they are enumerated: meant for a few τ values),
    and the cell means come from per-question sums, so 10,000 permutations of a 12-language experiment take
    about a second.

    Args:
        perquery: the per-query long frame (see :mod:`._store`).
        permutations: random permutations per (scenario, base measure).
        random_seed: seeds them (each (scenario, base measure) restarts from it: deterministic).
        batch: permutations evaluated at once (memory vs speed only).

    Returns:
        Columns :data:`MATCH_TEST_COLUMNS`: per (scenario, fraction, noise, base measure) one row per ``rel``
        that is also a training τ and one pooled row (``rel`` = ``"all"``), each with at least one untied
        cell: ``n_targets`` (untied cells), ``matches`` (winner == rel), ``n_taus``, ``chance`` (1 / ``n_taus``),
        ``null_mean`` (the statistic's mean over the permutations), ``n_clusters`` (questions permuted),
        ``permutations`` and ``p_value``.
        Only queries scored by every τ take part.

    Raises:
        ValueError: ``permutations`` or ``batch`` is below 1.
    """
    if permutations < 1 or batch < 1:
        raise ValueError(f"expected permutations >= 1 and batch >= 1, got {permutations} and {batch}")
    avg, f, n = _reference_rows(perquery)
    avg = avg.assign(tau=avg["tau"].astype(int), rel=avg["rel"].astype(int))
    rows = []
    for (scenario, base), g in avg.groupby(["scenario", "base"], sort=False):
        taus = np.array(sorted(g["tau"].unique()))
        rels = sorted(r for r in g["rel"].unique() if r in set(taus.tolist()))
        if len(taus) < 2 or not rels:
            continue
        wide = g[g["rel"].isin(rels)].pivot_table(index=["label", "target", "rel", "qid"], columns="tau",
                                                  values="value", aggfunc="first")
        wide = wide.reindex(columns=taus).dropna().sort_index()
        if wide.empty:
            continue
        index = wide.index.to_frame(index=False)
        cell = index.groupby(["label", "target", "rel"], sort=False).ngroup().to_numpy()
        n_cells = int(cell.max()) + 1
        cell_rel = index.groupby(cell)["rel"].first().to_numpy()
        cluster, _ = pd.factorize(index["qid"].map(question_key))
        n_clusters = int(cluster.max()) + 1
        # sums[question, cell, τ]: a cluster's per-query values per cell (a cell may hold several of its queries)
        sums = np.zeros((n_clusters, n_cells, len(taus)))
        np.add.at(sums, (cluster, cell), wide.to_numpy(dtype=float))
        sizes = np.bincount(cell, minlength=n_cells)[:, None]
        orders = np.array(list(itertools.permutations(range(len(taus)))))  # every relabelling of the τ
        # relabelled[k, question, cell * τ]: the sums with the τ labels in order k
        relabelled = sums[:, :, orders].transpose(2, 0, 1, 3).reshape(len(orders), n_clusters, -1)

        args = (relabelled, sizes, cell_rel, taus, rels)
        observed = _relabelled_counts(np.zeros((1, n_clusters), dtype=int), *args)[0]  # orders[0]: the identity
        untied = _untied(sums.sum(axis=0) / sizes)
        rng = np.random.default_rng(random_seed)
        hits = np.zeros(len(rels) + 1, dtype=np.int64)
        total = np.zeros(len(rels) + 1)
        for start in range(0, permutations, batch):
            order = rng.integers(len(orders), size=(min(batch, permutations - start), n_clusters))
            stat = _relabelled_counts(order, *args)
            hits += (stat >= observed).sum(axis=0)
            total += stat.sum(axis=0)
        p = (1 + hits) / (1 + permutations)
        for i, rel in enumerate([*rels, "all"]):
            n_targets = int(untied[np.isin(cell_rel, rels if rel == "all" else [rel])].sum())
            if n_targets == 0:  # every cell tied: nothing to count
                continue
            rows.append(dict(scenario=scenario, fraction=f, noise=n, base=base, rel=rel, n_targets=n_targets,
                             matches=int(observed[i]), n_taus=len(taus), chance=1.0 / len(taus),
                             null_mean=float(total[i] / permutations), n_clusters=n_clusters,
                             permutations=permutations, p_value=float(p[i])))
    return pd.DataFrame(rows, columns=MATCH_TEST_COLUMNS)


# ---------------------------------------------------------------------------------------------------------
# report: section, heatmap, csv

def _tau(t: int) -> str:
    return f"τ={int(t)}"


def _bases(diag: pd.DataFrame, cfg: ExperimentConfig) -> list[str]:
    """The base measures of ``diag`` in the config's order (``measures.binary``)."""
    order = list(cfg.measures_spec.binary)
    return sorted(diag["base"].drop_duplicates(), key=lambda b: (order.index(b) if b in order else len(order), b))


def diagonal_lines(diag: pd.DataFrame, perquery: pd.DataFrame, cfg: ExperimentConfig) -> list[str]:
    """The report section: per scenario and base measure, the winning τ at each rel, and how often it equals rel
    (:func:`diagonal_match_test` on ``perquery``, the frame ``diag`` was computed from, with the config's
    ``permutations`` and ``random_seed``)."""
    if diag.empty:
        return []

    s = cfg.significance
    f, n = float(diag["fraction"].iloc[0]), float(diag["noise"].iloc[0])
    level = "" if (f, n) == (1.0, 0.0) else f" (fraction {f:g}, noise {n:g})"
    signs = diagonal_match_test(perquery, permutations=s.permutations, random_seed=s.random_seed)
    lines = [f"## {SECTION_TITLE}", "",
             f"Which training τ wins when relevance is judged at rel ≥ r (binary measures, test{level}). Per target "
             f"and rel, the τ with the best seed-averaged mean; Δ is its margin over the runner-up. Every pair of τ is "
             f"compared (paired {s.test}-test on per-query scores averaged over seeds; "
             f"{CORRECTION_NAMES[s.correction]} per measure over all pairs of τ of all targets of this experiment, "
             f"not only the winner's); p is the adjusted p of the winner against the runner-up; **bold** = "
             f"significantly above every other τ (all the winner's pairs significant), α = {s.alpha}. The last row counts the targets "
             f"where the winning τ equals rel (a cell whose best τ is tied is shown as a tie and not counted), with a "
             f"one-sided clustered permutation test of that count ({s.permutations} permutations, seed "
             f"{s.random_seed}; the smallest possible p is {1 / (s.permutations + 1):.2g}): under the null that τ "
             f"has no effect on per-query scores, the τ labels of each question's seed-averaged scores are permuted, "
             f"one permutation per question applied in every language and rel that holds it (XQuAD-R's languages "
             f"translate the same questions, so they are not independent trials). `diagonal.csv` has every τ's mean, "
             f"Δ and test; `diagonal_<scenario>.png` shows each τ's Δ to the best τ at each rel, averaged over "
             f"targets.", ""]
    for scenario, base in [(sc, b) for sc in diag["scenario"].drop_duplicates() for b in _bases(diag, cfg)]:
        g = diag[(diag["scenario"] == scenario) & (diag["base"] == base)]
        if g.empty:
            continue
        rels = sorted(g["rel"].astype(int).unique())
        sg = signs[(signs["scenario"] == scenario) & (signs["base"] == base)]
        rows = [[label, *(_winner_cell(tg[tg["rel"] == r]) for r in rels)]
                for label, tg in g.groupby("label", sort=False)]
        rows.append(["winner = rel", *("–" if (x := sg[sg["rel"].astype(str) == str(r)]).empty else
                                       f"{x['matches'].iloc[0]}/{x['n_targets'].iloc[0]} (p {x['p_value'].iloc[0]:.2g})"
                                       for r in rels)])
        lines += [f"### {scenario}: `{base}`", "", *table_lines(["target", *(f"rel ≥ {r}" for r in rels)], rows)]
        pooled = sg[sg["rel"].astype(str) == "all"]
        if len(pooled):
            p = pooled.iloc[0]
            lines += ["", f"Pooled over rel: the winning τ equals rel in {p['matches']} of {p['n_targets']} "
                          f"(target, rel) cells (chance {p['chance']:.2f}, {p['null_mean']:.1f} expected if τ did not matter); "
                          f"clustered permutation p = {p['p_value']:.2g} ({p['n_clusters']} questions)."]
        lines.append("")
    return lines


def _winner_cell(cell: pd.DataFrame) -> str:
    """One target × rel cell of the diagonal table: the winning τ, its margin over the runner-up and that test's
    adjusted p (**bold** when the winner beats every other τ significantly), the tied τ, or ``–``."""
    if cell.empty:
        return "–"
    win = cell[cell["is_best"].astype(bool)].iloc[0]
    if bool(win["tied"]):
        return "tie (" + ", ".join(_tau(t) for t in cell[cell["delta"].abs() <= _TIE]["tau"]) + ")"
    losers = cell[~cell["is_best"].astype(bool)]
    runner = losers.loc[losers["delta"].idxmax()]
    text = f"{_tau(win['tau'])} +{abs(runner['delta']):.3f} (p {runner['p_adjusted']:.2g})"
    return f"**{text}**" if len(losers) and losers["significant"].all() else text


def heatmap_matrix(diag: pd.DataFrame, scenario: str, base: str) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """``(taus, rels, mean Δ to the best τ averaged over targets [τ, rel], number of targets won [τ, rel])``."""
    g = diag[(diag["scenario"] == scenario) & (diag["base"] == base)]
    taus, rels = sorted(g["tau"].astype(int).unique()), sorted(g["rel"].astype(int).unique())
    delta = np.full((len(taus), len(rels)), np.nan)
    wins = np.zeros((len(taus), len(rels)), dtype=int)
    for i, t in enumerate(taus):
        for j, r in enumerate(rels):
            c = g[(g["tau"] == t) & (g["rel"] == r)]
            if len(c):
                delta[i, j] = float(c["delta"].mean())
                wins[i, j] = int((c["is_best"].astype(bool) & ~c["tied"].astype(bool)).sum())
    return taus, rels, delta, wins


def write_heatmaps(diag: pd.DataFrame, cfg: ExperimentConfig, results_dir: Path) -> list[Path]:
    """One PNG per scenario, ``diagonal_<scenario>.png``: a τ × rel heatmap per binary measure."""
    if diag.empty:
        return []
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    written = []
    for scenario, sg in diag.groupby("scenario", sort=False):
        bases = _bases(sg, cfg)
        n_targets = sg["target"].nunique()
        fig, axes = plt.subplots(1, len(bases), figsize=(3.6 * len(bases) + 0.6, 3.4), squeeze=False)
        for ax, base in zip(axes[0], bases, strict=True):
            taus, rels, delta, wins = heatmap_matrix(diag, scenario, base)
            lim = max(float(np.nanmax(-delta)), 1e-3)
            im = ax.imshow(delta, cmap="viridis", vmin=-lim, vmax=0.0, aspect="auto")
            digits = 3 if lim >= 0.01 else 4  # small margins (query-side runs) stay readable
            for i in range(len(taus)):
                for j in range(len(rels)):
                    if np.isnan(delta[i, j]):
                        continue
                    color = "black" if delta[i, j] > -lim / 2 else "white"
                    ax.text(j, i, f"{delta[i, j]:+.{digits}f}\n{wins[i, j]}/{n_targets} won", ha="center", va="center",
                            fontsize=7, color=color)
            ax.set_xticks(range(len(rels)), [f"rel ≥ {r}" for r in rels])
            ax.set_yticks(range(len(taus)), [_tau(t) for t in taus])
            ax.set_xlabel("evaluation threshold")
            ax.set_ylabel("training threshold")
            ax.set_title(base, fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8)
        fig.suptitle(f"{cfg.name}: {scenario} — mean Δ to the best τ at each rel ({n_targets} targets)", fontsize=9)
        written.append(_save(fig, results_dir / f"diagonal_{scenario.replace('/', '_')}.png"))
    return written


# ---------------------------------------------------------------------------------------------------------
# adding a section to an existing report.md (committed results whose run folders are not on this machine)

def _sections(text: str) -> list[list[str]]:
    """The lines of a Markdown report split at its ``## `` headings (the first block is the preamble)."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("## "):
            blocks.append([])
        blocks[-1].append(line)
    return blocks


def splice_section(text: str, title: str, lines: Sequence[str], *, after: Sequence[str] = (),
                   before: Sequence[str] = ()) -> str:
    """``text`` with its ``## <title>`` section replaced in place by ``lines`` (or removed when ``lines`` is empty).

    A new section goes after the last section whose title starts with one of ``after``, else before the
    first whose title starts with one of ``before``, else at the end.
    """
    blocks = _sections(text)
    titles = [b[0][3:] if b and b[0].startswith("## ") else "" for b in blocks]
    new = list(lines)
    while new and new[-1] == "":
        new.pop()
    new += [""] if new else []
    if title in titles[1:]:
        i = titles.index(title, 1)
        blocks[i:i + 1] = [new] if new else []
    elif new:
        pos = next((i + 1 for i in range(len(blocks) - 1, 0, -1) if titles[i].startswith(tuple(after))), None)
        if pos is None:
            pos = next((i for i in range(1, len(blocks)) if titles[i].startswith(tuple(before))), len(blocks))
        blocks.insert(pos, new)
    return "\n".join(line for b in blocks for line in b).rstrip("\n") + "\n"


def splice_plots(text: str, images: Iterable[Path], *, prefix: str) -> str:
    """``text`` with the ``## Plots`` list's ``prefix*`` images replaced by ``images`` (appended last)."""
    plots = next((b for b in _sections(text) if b and b[0] == "## Plots"), [])
    entries = [x for x in plots[1:] if x.startswith("![") and not x.startswith(f"![{prefix}")]
    entries += [f"![{p.stem}]({p.name})" for p in images]
    return splice_section(text, "Plots", ["## Plots", "", *entries] if entries else [])


# where write_report puts the diagonal section: right after "Which τ wins"
DIAGONAL_AFTER = ("Which τ wins",)
DIAGONAL_BEFORE = ("Less data", "Bootstrap", "Calibration", "Plots")


def load_results_perquery(results_dir: str | Path) -> pd.DataFrame:
    """The committed ``perquery.csv.gz`` of a results folder, typed as the runner's frame.

    Raises:
        FileNotFoundError: there is no ``perquery.csv.gz``.
        ValueError: the file lacks a column of :data:`._store.PERQUERY_COLUMNS` (written by an older version).
    """
    path = Path(results_dir) / "perquery.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"expected the per-query results {path} (written by `gradrel report`)")
    df = pd.read_csv(path, dtype={"variant": str, "qid": str, "article": str, "label": str, "tau": "Int64",
                                  "loss": str, "rel": "Int64", "base": str})
    missing = [c for c in PERQUERY_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: expected the columns {PERQUERY_COLUMNS}, missing {missing}; "
                         f"rerun `gradrel report` on the run folders to rewrite it")
    return df.assign(variant=df["variant"].fillna(""), loss=df["loss"].fillna(""), article=df["article"].fillna(""))


# ---------------------------------------------------------------------------------------------------------
# sampling unit × τ

def compare_units(treatment: pd.DataFrame, control: pd.DataFrame, *, measures: Sequence[str] | None = None,
                  significance: SignificanceSpec | None = None) -> pd.DataFrame:
    """The change from ``control`` to ``treatment`` per target × variant × measure, and whether it differs by τ.

    Both frames are per-query long frames of experiments with the same scenarios, targets and variants
    (e.g. ``unit: pair`` and its ``unit: query`` control). Per-query test scores at the treatment's reference level
    are averaged over seeds, then paired on the queries both experiments evaluated:

    * ``effect``: ``treatment − control`` of one variant (``delta`` > 0: the treatment is better);
    * ``interaction``: the effect of ``variant`` minus the effect of ``other`` (difference of differences;
      ``delta`` > 0: the treatment helps ``variant`` more). This is the unit × τ interaction.

    Args:
        treatment: the per-query frame of the treated experiment.
        control: the per-query frame of the control experiment.
        measures: measure labels to compare (default: every measure both frames hold).
        significance: the test, correction (one family per (kind, measure)) and ``alpha``, as for
            :func:`compare_diagonal`.

    Returns:
        Columns :data:`UNITS_COLUMNS` (on ``interaction`` rows ``treatment_mean`` and ``control_mean`` are the
        mean effects of ``variant`` and ``other``); empty when the two experiments share no (target, variant, measure).
    """
    def prep(df: pd.DataFrame) -> dict[tuple, pd.Series]:
        sel = df[(df["split"] == "test") & (df["system"] == "fine-tuned")]
        sel = sel[(sel["fraction"] == f) & (sel["noise"] == n)]
        if measures is not None:
            sel = sel[sel["measure"].isin(list(measures))]
        return {k: g.set_index("qid")["value"]
                for k, g in seed_average(sel).groupby(["scenario", "label", "target", "measure", "variant"], sort=True)}

    sig = significance or SignificanceSpec()
    ft = treatment[(treatment["split"] == "test") & (treatment["system"] == "fine-tuned")]
    f, n = _reference_level(ft)
    t_scores, c_scores = prep(treatment), prep(control)
    taus = ft.drop_duplicates("variant").set_index("variant")["tau"].to_dict()
    # measures in (base, rel) order, the graded one first: nDCG@10, nDCG(rel=1)@10, ...
    order = {m: (b, -1 if pd.isna(r) else int(r))
             for m, b, r in ft[["measure", "base", "rel"]].drop_duplicates().itertuples(index=False)}
    keys = sorted(t_scores.keys() & c_scores.keys(), key=lambda k: (*k[:3], order[k[3]], k[4]))
    rows = []
    for group, variants in itertools.groupby(keys, key=lambda k: k[:4]):
        rows += effects_and_interactions(
            dict(zip(["scenario", "label", "target", "measure"], group, strict=True)),
            [(k[4], t_scores[k], c_scores[k]) for k in variants], sig, means=("treatment_mean", "control_mean"),
            order=lambda v: (pd.isna(taus[v]), 0 if pd.isna(taus[v]) else int(taus[v]), v))
    rows.sort(key=lambda row: row["kind"] == "interaction")  # every effect, then every interaction (stable)
    return correct_families(rows, UNITS_COLUMNS, ["kind", "measure"], sig, skip_untested=True)


def units_lines(units: pd.DataFrame, cfg: ExperimentConfig, control: str) -> list[str]:
    """The report section of :func:`compare_units`: the primary measure and its binary variants."""
    if units.empty:
        return []

    s = cfg.significance
    base = cfg.primary_measure
    primary = next(m for m in cfg.measures if m.label == base)
    # a graded primary measure comes with its binary variants (same base, an evaluation rel)
    same_base = {m.label for m in cfg.measures if primary.rel is None and m.base == primary.base}
    shown = [m for m in dict.fromkeys(units["measure"]) if m == base or m in same_base]
    lines = [f"## {UNITS_TITLE} (against `{control}`)", "",
             f"Δ is this experiment minus the control experiment `{control}` (same targets, variants and seeds), "
             f"per variant, paired {s.test}-test on per-query scores averaged over seeds; **bold** = significant "
             f"after {CORRECTION_NAMES[s.correction]} per measure over all targets × variants (α = {s.alpha}). The "
             f"last column is the interaction: variants whose Δ differ (difference of their per-query Δ; "
             f"{CORRECTION_NAMES[s.correction]} per measure over all targets × variant pairs). `units.csv` holds "
             f"every measure.", ""]
    for measure in shown:
        g = units[units["measure"] == measure]
        eff, inter = g[g["kind"] == "effect"], g[g["kind"] == "interaction"]
        variants = [v.label for v in cfg.variants if v.label in set(eff["variant"])]
        header = ["scenario", "target", *(f"Δ {_col_name('fine-tuned', v, cfg.variants)}" for v in variants),
                  "variants whose Δ differ (Δ of Δ, adj. p)"]
        rows = [[scenario, label, *effect_cells(tg, variants),
                 differ_cell(inter[(inter["scenario"] == scenario) & (inter["label"] == label)], cfg.variants)]
                for (scenario, label), tg in eff.groupby(["scenario", "label"], sort=False)]
        lines += [f"### `{measure}`", "", *table_lines(header, rows), ""]
    return lines


def add_unit_comparison(config: str | os.PathLike | Mapping[str, object] | ExperimentConfig,
                        control: str | os.PathLike | Mapping[str, object] | ExperimentConfig, *, root: str | Path | None = None) -> Path:
    """Compare an experiment with its control from both ``results/<name>/perquery.csv.gz`` files.

    Writes ``units.csv`` (:func:`compare_units`, every measure) into the experiment's results folder and
    adds the section ``Sampling unit × τ (against <control>)`` to its ``report.md`` (after the diagonal).

    Args:
        config: the treated experiment's config (path, mapping or ``ExperimentConfig``).
        control: the control experiment's config.
        root: the experiments folder (default ``$GRADREL_EXPERIMENTS`` or ``./experiments``).

    Returns:
        The path of ``units.csv``.
    """
    cfg, ctl = load_config(config), load_config(control)
    results = (Path(root) if root is not None else default_root()) / "results"
    units = compare_units(load_results_perquery(results / cfg.name), load_results_perquery(results / ctl.name),
                          significance=cfg.significance)
    if units.empty:
        raise ValueError(f"experiments {cfg.name!r} and {ctl.name!r} share no (target, variant, measure) on test; "
                         "expected a control with the same targets and variants")
    path = results / cfg.name / "units.csv"
    _atomic.write_text(path, units.to_csv(index=False))
    report = results / cfg.name / "report.md"
    if report.is_file():
        text = report.read_text(encoding="utf-8")
        # the section against any control is replaced (its title names the control)
        title = next((b[0][3:] for b in _sections(text) if b and b[0].startswith(f"## {UNITS_TITLE}")), UNITS_TITLE)
        text = splice_section(text, title, units_lines(units, cfg, ctl.name),
                              after=(SECTION_TITLE, *DIAGONAL_AFTER), before=DIAGONAL_BEFORE)
        _atomic.write_text(report, text)
    return path
