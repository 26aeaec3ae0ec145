"""The experiment report: Markdown tables, CSVs and PNG plots in ``experiments/results/<config name>/``.

Files written (each atomically):

* ``report.md`` – per scenario a table of the primary measure, mean ± sd over seeds, with significance
  markers against each baseline (after the family-wise correction); the other measures; bootstrap CIs
  over test articles; the calibration table; and the procedure (test, correction, seeds, limits).
* ``aggregate.csv``, ``significance.csv``, ``thresholds.csv`` (the winning τ per target against the other
  variants), ``bootstrap.csv``, ``calibration.csv``, ``perquery.csv.gz``; ``levels.csv`` (each variant's
  change with less data / grade noise and the differences between variants; only a header when the
  experiment varies neither); ``diagonal.csv`` (per target, binary measure and evaluation threshold rel,
  each τ's mean, its Δ to the winning τ and the winner-vs-τ test; see :mod:`._diagonal`); ``resource.csv`` (per
  scenario whose test languages span two resource classes, Spearman's ρ of class vs the lowest − highest τ's
  difference and its exact permutation p; see :mod:`._resource`).
* ``tau_<scenario>.png`` (primary measure against τ per language, baselines as dashed lines),
  ``fractions_<scenario>.png`` (learning curves) and ``noise_<scenario>.png`` (noise curves) when the
  experiment varies fractions / noise; ``diagonal_<scenario>.png`` (training τ × evaluation rel heatmaps).

The runner writes ``runs.json`` beside them, the run record of every finished condition (:mod:`._records`).
:func:`refresh_report` rebuilds all of these but the setup from a committed ``perquery.csv.gz``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel._markdown import table_lines
from pyterrier_gradrel.experiments import _analyses
from pyterrier_gradrel.experiments._calibration import calibration_summary
from pyterrier_gradrel.experiments._diagonal import (
    _sections,
    diagonal_lines,
    load_results_perquery,
    write_heatmaps,
)
from pyterrier_gradrel.experiments._display import CORRECTION_NAMES, differ_cell, effect_cells
from pyterrier_gradrel.experiments._display import column_name as _col_name
from pyterrier_gradrel.experiments._display import save_figure as _save
from pyterrier_gradrel.experiments._records import RECORDS_FILE
from pyterrier_gradrel.experiments._resource import resource_lines
from pyterrier_gradrel.experiments._store import csv_gz

if TYPE_CHECKING:  # pragma: no cover
    from pyterrier_gradrel.experiments._config import ExperimentConfig
    from pyterrier_gradrel.experiments._result import ExperimentResult

# significance markers: one letter per baseline, upper case = significantly better, lower = worse
_MARKERS = {"BM25": "b", "mE5-zero-shot": "z", "BM25>>mE5": "r", "RRF(BM25,mE5)": "f"}


def _fmt(mean: float, sd: float) -> str:
    return f"{mean:.3f}" if pd.isna(sd) else f"{mean:.3f} ± {sd:.3f}"


def _systems(cfg) -> list[tuple[str, str]]:
    return [(b, "") for b in cfg.baselines] + [("fine-tuned", v.label) for v in cfg.variants]


def query_resource(dataset_id: str) -> str:
    """A target's query language for the report: ``"<resource> (class <joshi>)"`` where the registry knows the
    language's resource level (XQuAD-R, AfriQA), else the languages from ``info()``: ``"de → en
    (cross-lingual)"`` when the queries' language differs from the documents' (a local collection with its
    own ``query_lang``), ``"en"`` when they share it; ``"–"`` when the dataset says neither."""
    from pyterrier_gradrel.datasets import info

    try:
        i = info(dataset_id)
        if i.resource is not None:
            return i.resource + (f" (class {i.joshi_class})" if i.joshi_class is not None else "")
    except (ValueError, KeyError, AttributeError):
        return "–"
    qlang = i.query_lang or "+".join(i.query_langs)
    dlang = i.doc_lang or "+".join(i.doc_langs)
    if qlang and dlang and qlang != dlang:
        return f"{qlang} → {dlang} (cross-lingual)"
    return qlang or dlang or "–"


def threshold_lines(thr: pd.DataFrame, cfg) -> list[str]:
    """The "which τ wins" section: per target the winning variant and the variants it is / is not separable from."""
    if thr.empty:
        return []
    n, alpha = int(thr["family_size"].max()), cfg.significance.alpha
    lines = [f"## Which τ wins (test, `{cfg.primary_measure}`)", "",
             f"Per target, the variant with the best seed-averaged mean. Every pair of variants is compared "
             f"(paired {cfg.significance.test}-test on per-query scores averaged over seeds; "
             f"{CORRECTION_NAMES[cfg.significance.correction]} over all {n} pairs of this experiment, not only the "
             f"winner's; α = {alpha}) and the table shows the winner's pairs. *beats* lists the variants it is "
             f"significantly better than; it is significantly above every other variant only when it beats all "
             f"of them, and a winner that beats nothing is not a finding.", ""]
    rows = []
    for (scenario, label, target, fraction, noise), g in thr.groupby(["scenario", "label", "target", "fraction",
                                                                      "noise"], sort=False):
        name = label if (fraction, noise) == (1.0, 0.0) else f"{label} (f={fraction:g}, n={noise:g})"
        beats = ", ".join(f"{r.other} (+{r.delta:.3f})" for r in g[g["significant"]].itertuples()) or "–"
        same = ", ".join(f"{r.other} (+{r.delta:.3f}, {r.p_adjusted:.2g})"
                         for r in g[~g["significant"]].itertuples()) or "–"
        rows.append([scenario, name, query_resource(target), str(g["best"].iloc[0]), f"{g['best_mean'].iloc[0]:.3f}",
                     beats, same])
    return lines + table_lines(["scenario", "target", "query language", "winner", "mean", "beats (Δ)",
                                "not separable from (Δ, adj. p)"], rows) + [""]


def level_lines(lev: pd.DataFrame, cfg) -> list[str]:
    """The "less data and grade noise" section: each variant's change against the reference level, and which
    variants change differently (see ``_significance.compare_levels``)."""
    if lev.empty:
        return []
    eff, inter = lev[lev["kind"] == "effect"], lev[lev["kind"] == "interaction"]
    corr, alpha = CORRECTION_NAMES[cfg.significance.correction], cfg.significance.alpha
    variants = [v.label for v in cfg.variants if v.label in set(eff["variant"])]
    lines = [f"## Less data and grade noise (test, `{cfg.primary_measure}`)", "",
             f"Δ is each variant's change against the same variant at the reference (all training data, no "
             f"noise), paired {cfg.significance.test}-test on per-query scores averaged over seeds; **bold** = "
             f"significant after {corr} over all {len(eff)} such changes (α = {alpha}). The last column tests "
             f"whether two variants change differently (difference of their per-query changes; {corr} over all "
             f"{len(inter)} pairs): a τ that loses significantly less than another is the paper's claim that a "
             f"good τ needs less data or resists noise.", ""]
    rows = []
    for (scenario, label, target, axis, level), g in eff.groupby(["scenario", "label", "target", "axis", "level"],
                                                                 sort=False):
        i = inter[(inter["scenario"] == scenario) & (inter["target"] == target) & (inter["axis"] == axis)
                  & (inter["level"] == level)]
        rows.append([scenario, label, f"{axis} {g['reference'].iloc[0]:g} → {level:g}", *effect_cells(g, variants),
                     differ_cell(i, cfg.variants)])
    header = ["scenario", "target", "change", *(f"Δ {_col_name('fine-tuned', v, cfg.variants)}" for v in variants),
              "variants that differ (Δ of Δ, adj. p)"]
    return lines + table_lines(header, rows) + [""]


def markdown_tables(result: ExperimentResult, agg: pd.DataFrame, sig: pd.DataFrame, boot: pd.DataFrame,
                    cal: pd.DataFrame, thr: pd.DataFrame, lev: pd.DataFrame, diag: pd.DataFrame,
                    res: pd.DataFrame, *, head: list[str] | None = None) -> str:
    """The body of ``report.md``: ``head`` (default: the title, description and ``## Setup`` of ``result``), then the
    tables of the analyses."""
    cfg = result.config
    lines = (_setup_lines(result) if head is None else head) + _scenario_lines(agg, cfg, _significance_markers(sig))
    lines += threshold_lines(thr, cfg) + diagonal_lines(diag, result.perquery, cfg) + resource_lines(res, cfg)
    lines += level_lines(lev, cfg)
    if not boot.empty:
        lines += _bootstrap_lines(boot, cfg)
    if not cal.empty:
        lines += _calibration_lines(cal, cfg)
    return "\n".join(lines) + "\n"


def _setup_lines(result: ExperimentResult) -> list[str]:
    """The title, the description and the ``## Setup`` section."""
    cfg = result.config
    s = cfg.significance
    lines = [f"# Experiment `{cfg.name}`", ""]
    if cfg.description:
        lines += [cfg.description.strip(), ""]
    lines += ["## Setup", ""]
    if cfg.source:
        command = " ".join(filter(None, ["gradrel run", _shown_path(cfg.source), result.options]))
        lines.append(f"- Reproduce: `{command}` (finished conditions are reused; "
                     "`--executor ray` runs the others as Ray tasks).")
    lines += [
        f"- Base model: `{cfg.base_model}`; training hyper-parameters: `{cfg.training.given()}` (each fine-tuned "
        f"run's `TrainConfig` and its key are in its `condition.json`).",
        f"- Seeds: {list(cfg.seeds)}" + (" — **a single seed: no seed variance is reported, and a difference "
                                         "seen with one seed is not a finding**." if len(cfg.seeds) == 1 else "."),
        f"- Fractions: {list(cfg.fractions)}; noise rates: {list(cfg.noise_rates)}.",
    ]
    if cfg.limit_queries is not None:
        lines.append(f"- **Query limit: the first {cfg.limit_queries} queries of every dataset** (smoke run; "
                     "numbers are not comparable with full runs).")
    if cfg.note:
        lines.append(f"- Note: {cfg.note.strip()}")
    lines += [
        f"- Primary measure `{cfg.primary_measure}`: graded nDCG with gains 2^g − 1; binary measures at rel ≥ "
        f"{list(cfg.measures_spec.rels)} (every run scored per query with `pt.Experiment`); runs are cut "
        f"to the top {cfg.run_depth} (so RR is RR@{cfg.run_depth}).",
        f"- Significance: per-query scores averaged over seeds, then a two-sided paired "
        f"{ {'t': 't-test', 'wilcoxon': 'Wilcoxon signed-rank test', 'permutation': 'permutation test'}[s.test]} "
        f"against each baseline; correction: {CORRECTION_NAMES[s.correction]} over every test target × "
        f"variant × fraction × noise rate of this experiment, per (measure, baseline); α = {s.alpha}.",
        "- Markers: " + ", ".join(f"**{_MARKERS.get(b, b[0]).upper()}** / {_MARKERS.get(b, b[0])} = "
                                  f"significantly better / worse than {b}" for b in cfg.baselines) + ".",
        f"- Bootstrap: {s.bootstrap_samples} resamples of test **{s.bootstrap_unit}s** "
        f"({int(s.confidence * 100)}% percentile intervals" + ("; a query without an article is a cluster of its own"
                                                              if s.bootstrap_unit == "article" else "") + ").",
        f"- Conditions: {result.n_run} computed, {result.n_reused} reused" + _provenance(result)
        + (f", **{result.n_missing} not run yet (this report is partial)**" if result.n_missing else "")
        + f"; wall time of this invocation {result.wall_time:.0f} s; " + _compute_sentence(result),
        "",
    ]
    return lines


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it (a report names no machine's folders)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path


def _significance_markers(sig: pd.DataFrame) -> dict[tuple, list[str]]:
    """(scenario, target, variant, fraction, noise, measure) -> the markers of its significant differences."""
    markers = {}
    if not sig.empty:
        for r in sig[sig["significant"]].itertuples():
            m = _MARKERS.get(r.baseline, r.baseline[0])
            markers.setdefault((r.scenario, r.target, r.variant, r.fraction, r.noise, r.measure), []).append(
                m.upper() if r.delta > 0 else m)
    return markers


def _scenario_lines(agg: pd.DataFrame, cfg, markers: dict[tuple, list[str]]) -> list[str]:
    """Per scenario, in the config's order: the primary measure's table per level, then the other measures."""
    lines: list[str] = []
    test_agg = agg[agg["split"] == "test"]
    order = [s.name for s in cfg.scenarios]
    for scenario, sg in sorted(test_agg.groupby("scenario", sort=False),
                               key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        lines += [f"## {scenario}", ""]
        for fraction, noise in _ft_levels(sg, cfg):
            title = f"`{cfg.primary_measure}` (test)"
            if len(cfg.fractions) > 1 or len(cfg.noise_rates) > 1:
                title += f", fraction {fraction:g}, noise {noise:g}"
            lines += [f"### {title}", "", *_table(sg, cfg, markers, fraction, noise), ""]
        other = [m.label for m in cfg.measures if m.label != cfg.primary_measure]
        if other:
            lines += _other_measures_lines(sg, cfg, other)
    return lines


def _other_measures_lines(sg: pd.DataFrame, cfg, other: list[str]) -> list[str]:
    """A scenario's table of the non-primary measures (largest fraction, lowest noise; mean over seeds)."""
    fraction, noise = max(cfg.fractions), min(cfg.noise_rates)
    lines = [f"### Other measures (test, fraction {fraction:g}, noise {noise:g}; mean over seeds)", ""]
    systems = _systems(cfg)
    rows = [[label, measure] + ["–" if (row := _pick(sg, label, system, variant, measure, fraction, noise)) is None
                                else f"{row['mean']:.3f}" for system, variant in systems]
            for label in sg["label"].drop_duplicates() for measure in other]
    return lines + table_lines(["target", "measure"] + [_col_name(*x, cfg.variants) for x in systems], rows) + [""]


def _bootstrap_lines(boot: pd.DataFrame, cfg) -> list[str]:
    """The bootstrap confidence intervals of the primary measure."""
    lines = ["## Bootstrap confidence intervals (test, primary measure)", ""]
    b = boot[boot["measure"] == cfg.primary_measure].copy()
    order = {name: i for i, name in enumerate([*cfg.baselines, "fine-tuned"])}
    b["_o"] = b["system"].map(order).fillna(len(order))
    b = b.sort_values(["scenario", "label", "_o", "fraction", "noise", "variant", "versus"], kind="stable")
    rows = []
    for r in b.itertuples():
        name = _col_name(r.system, r.variant, cfg.variants)
        if len(cfg.fractions) > 1 or len(cfg.noise_rates) > 1:
            name += f" (f={r.fraction:g}, n={r.noise:g})"
        fmt = "+.3f" if r.versus else ".3f"
        rows.append([r.scenario, r.label, name, f"Δ vs {r.versus}" if r.versus else "mean", f"{r.estimate:{fmt}}",
                     f"[{r.low:{fmt}}, {r.high:{fmt}}]", f"{r.unit} ({r.n_clusters})"])
    return lines + table_lines(["scenario", "target", "system", "vs", "estimate", "CI", "unit (n)"], rows) + [""]


def _calibration_lines(cal: pd.DataFrame, cfg) -> list[str]:
    """The calibration table (τ chosen on dev, evaluated on test) and its mean over targets."""
    measure = cfg.calibration.measure or cfg.primary_measure
    lines = [f"## Calibration: τ chosen on dev by `{measure}`, evaluated on test", ""]
    vcols = [c for c in cal.columns if c.startswith("test[")]
    lines += table_lines(
        ["scenario", "target", "fraction", "noise", "chosen (dev)", "test of chosen", "oracle", "test of oracle",
         "regret"] + [f"fixed {c[5:-1]}" for c in vcols],
        ([r["scenario"], r["label"], f"{r['fraction']:g}", f"{r['noise']:g}", r["chosen"], f"{r['test_chosen']:.3f}",
          r["oracle"], f"{r['test_oracle']:.3f}", f"{r['regret']:.3f}"] + [f"{r[c]:.3f}" for c in vcols]
         for r in cal.to_dict("records")))
    summary = calibration_summary(cal, variants=[v.label for v in cfg.variants])
    fixed = [c for c in summary.columns if c.startswith("fixed[")]
    lines += ["", "Mean over targets:", ""] + table_lines(
        ["scenario", "fraction", "noise", "n", "calibrated", "oracle"] + fixed,
        ([r["scenario"], f"{r['fraction']:g}", f"{r['noise']:g}", str(r["n_languages"]), f"{r['calibrated']:.3f}",
          f"{r['oracle']:.3f}"] + [f"{r[c]:.3f}" for c in fixed] for r in summary.to_dict("records")))
    return lines + [""]


def _provenance(result: ExperimentResult) -> str:
    """`` (n copied from ...; m restored from ...)`` for the finished runs copied from another experiment
    (``_store.adopt_run``) or restored from the committed run record (:mod:`._records`)."""
    restored = sum("restored_from" in cond for cond in result.conditions.values())
    copied = sum("copied_from" in cond and "restored_from" not in cond for cond in result.conditions.values())
    parts = ([f"{copied} copied from other experiments' finished runs with the same run keys"] if copied else []) + (
        [f"{restored} restored from the run record `{RECORDS_FILE}` of an earlier invocation"] if restored else [])
    return f" ({'; '.join(parts)})" if parts else ""


def _compute_sentence(result: ExperimentResult) -> str:
    """The compute time of all conditions: the sum of the ``seconds.total`` that each ``condition.json`` records
    and the training seconds of the earlier sessions of the conditions resumed from a checkpoint
    (``_store.read_condition``), with how many of those earlier sessions are unknown."""
    seconds = [cond["seconds"] for cond in result.conditions.values()]
    total = sum(float(s["total"]) + float(s["earlier_sessions"] or 0.0) for s in seconds)
    unknown = sum(s["earlier_sessions"] is None for s in seconds)
    sentence = (f"compute time of all conditions (sum of their own timings, every training session of a resumed "
                f"condition included) {total / 60:.0f} min")
    if unknown:
        sentence += (f"; {unknown} condition(s) resumed from a checkpoint that did not record the time of the "
                     f"sessions before: only their last session is counted")
    return sentence + "."


def _ft_levels(sg: pd.DataFrame, cfg: ExperimentConfig) -> list[tuple[float, float]]:
    """The config's (fraction, noise) levels that ``sg`` has fine-tuned rows at (``(1.0, 0.0)`` when none)."""
    ft = sg[sg["system"] == "fine-tuned"]
    return [(f, n) for f in cfg.fractions for n in cfg.noise_rates
            if ((ft["fraction"] == f) & (ft["noise"] == n)).any()] or [(1.0, 0.0)]


def _pick(df: pd.DataFrame, label: str, system: str, variant: str, measure: str, fraction: float, noise: float):
    sel = df[(df["label"] == label) & (df["system"] == system) & (df["variant"] == variant)
             & (df["measure"] == measure)]
    if system == "fine-tuned":
        sel = sel[(sel["fraction"] == fraction) & (sel["noise"] == noise)]
    return None if sel.empty else sel.iloc[0]


def _table(sg: pd.DataFrame, cfg: ExperimentConfig, markers: dict[tuple, list[str]], fraction: float,
           noise: float) -> list[str]:
    """A scenario's table of the primary measure at one level: mean ± sd per target and system, the best in bold,
    the fine-tuned systems' significance markers."""
    measure, systems = cfg.primary_measure, _systems(cfg)
    table = []
    for label in sg["label"].drop_duplicates():
        rows = [_pick(sg, label, s, v, measure, fraction, noise) for s, v in systems]
        cells = [label, str(next((int(r["n_queries"]) for r in rows if r is not None), 0))]
        best = max((r["mean"] for r in rows if r is not None), default=None)
        for (system, variant), row in zip(systems, rows, strict=True):
            if row is None:
                cells.append("–")
                continue
            text = _fmt(row["mean"], row["sd"])
            if np.isclose(row["mean"], best):
                text = f"**{text}**"
            mk = markers.get((row["scenario"], row["target"], variant, fraction, noise, measure), [])
            if system == "fine-tuned" and mk:
                text += " " + "".join(sorted(mk))
            cells.append(text)
        table.append(cells)
    return table_lines(["target", "queries"] + [_col_name(*x, cfg.variants) for x in systems], table)


def write_report(result: ExperimentResult, results_dir: str | os.PathLike | None = None) -> Path:
    """Write the report files (see the module docstring) into ``results_dir`` (default: ``result.results_dir``);
    returns the path of ``report.md``."""
    results_dir = Path(results_dir) if results_dir is not None else result.results_dir
    return _write(result, results_dir, write_perquery=True)


def refresh_report(config: str | os.PathLike | Mapping[str, object] | ExperimentConfig, *,
                   root: str | os.PathLike | None = None) -> Path:
    """Rebuild a committed report from its per-query scores, without run folders (``gradrel report --from-results``).

    Every CSV, plot and section of ``results/<name>/report.md`` that is computed from ``perquery.csv.gz`` is written
    again with this code's analyses; the title, description and ``## Setup`` section stay as committed (they record
    the runs' provenance and timings, which the per-query file does not hold), and so does ``perquery.csv.gz``. A
    ``Sampling unit × τ`` section is not rebuilt: :func:`._diagonal.add_unit_comparison` (``--control``) writes it.

    Args:
        config: the experiment config (path, mapping or ``ExperimentConfig``).
        root: the experiments folder (default ``$GRADREL_EXPERIMENTS`` or ``./experiments``).

    Returns:
        The path of the rewritten ``report.md``.

    Raises:
        FileNotFoundError: the results folder has no ``report.md`` or no ``perquery.csv.gz``.
        ValueError: the report has no ``## Setup`` section followed by another section.
    """
    from pyterrier_gradrel.experiments._config import load_config
    from pyterrier_gradrel.experiments._result import ExperimentResult
    from pyterrier_gradrel.experiments._store import default_root

    cfg = load_config(config)
    base = Path(root) if root is not None else default_root()
    results_dir = base / "results" / cfg.name
    report = results_dir / "report.md"
    if not report.is_file():
        raise FileNotFoundError(f"expected a report to rebuild at {report}")
    head = _committed_head(report.read_text(encoding="utf-8"), report)
    result = ExperimentResult(config=cfg, perquery=load_results_perquery(results_dir),
                              runs_dir=base / "runs" / cfg.name, results_dir=results_dir)
    return _write(result, results_dir, write_perquery=False, head=head)


def _committed_head(text: str, path: Path) -> list[str]:
    """The lines of ``text`` before the first section that follows ``## Setup`` (title, description, setup)."""
    blocks = _sections(text)
    setup = next((i for i, block in enumerate(blocks) if block[0] == "## Setup"), None)
    if setup is None or setup + 1 == len(blocks):
        raise ValueError(f"{path}: expected a '## Setup' section followed by the report's tables")
    head = [line for block in blocks[:setup + 1] for line in block]
    while head and not head[-1]:
        head.pop()
    return head + [""]


def _write(result: ExperimentResult, results_dir: Path, *, write_perquery: bool, head: list[str] | None = None
           ) -> Path:
    """The analyses of ``result.perquery``: their CSVs, plots and ``report.md`` (after ``head``, see
    :func:`markdown_tables`), and ``perquery.csv.gz`` when ``write_perquery``."""
    pq, cfg = result.perquery, result.config
    agg, sig, boot = _analyses.aggregate(pq), _analyses.significance(pq, cfg), _analyses.bootstrap(pq, cfg)
    cal, thr, lev = _analyses.calibration(pq, cfg), _analyses.thresholds(pq, cfg), _analyses.levels(pq, cfg)
    diag, res = _analyses.diagonal(pq, cfg), _analyses.resource(pq, cfg)
    results_dir.mkdir(parents=True, exist_ok=True)
    for name, table in dict(aggregate=agg, significance=sig, thresholds=thr, levels=lev, diagonal=diag,
                            resource=res, bootstrap=boot, calibration=cal).items():
        _atomic.write_text(results_dir / f"{name}.csv", table.to_csv(index=False))
    if write_perquery:
        _atomic.write_bytes(results_dir / "perquery.csv.gz", csv_gz(result.perquery))
    text = markdown_tables(result, agg, sig, boot, cal, thr, lev, diag, res, head=head)
    plots = write_plots(result, agg, results_dir) + write_heatmaps(diag, result.config, results_dir)
    if plots:
        text += "## Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots) + "\n"
    path = results_dir / "report.md"
    _atomic.write_text(path, text)
    return path


def write_plots(result: ExperimentResult, agg: pd.DataFrame, results_dir: Path) -> list[Path]:
    """PNG plots (matplotlib Agg): measure vs τ per language; learning curves; noise curves."""
    import matplotlib

    matplotlib.use("Agg", force=True)

    cfg = result.config
    test = agg[(agg["split"] == "test") & (agg["measure"] == cfg.primary_measure)]
    written: list[Path] = []
    for scenario, sg in test.groupby("scenario", sort=False):
        safe = scenario.replace("/", "_")
        ft = sg[sg["system"] == "fine-tuned"]
        full = ft[(ft["fraction"] == max(cfg.fractions)) & (ft["noise"] == min(cfg.noise_rates))]
        if not full.empty:
            written.append(_tau_plot(cfg, scenario, sg, full, results_dir / f"tau_{safe}.png"))
        for axis, name in (("fraction", "fractions"), ("noise", "noise")):
            levels = cfg.fractions if axis == "fraction" else cfg.noise_rates
            if len(levels) >= 2:
                written.append(_level_plot(cfg, scenario, sg, ft, axis, results_dir / f"{name}_{safe}.png"))
    return written


def _tau_plot(cfg: ExperimentConfig, scenario: str, sg: pd.DataFrame, full: pd.DataFrame, path: Path) -> Path:
    """Measure vs τ, one line per label (all data, no noise), baselines as horizontal lines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = list(range(len(cfg.variants)))
    for i, label in enumerate(sg["label"].drop_duplicates()):
        color, marker = f"C{i % 10}", "osD^v"[i // 10 % 5]  # past 10 lines the colours repeat, not the markers
        ys, es = [], []
        for v in cfg.variants:
            r = full[(full["label"] == label) & (full["variant"] == v.label)]
            ys.append(r["mean"].iloc[0] if len(r) else np.nan)
            es.append(r["sd"].iloc[0] if len(r) and not np.isnan(r["sd"].iloc[0]) else 0.0)
        ax.errorbar(xs, ys, yerr=es, marker=marker, color=color, label=label, capsize=3)
        for system, style in (("mE5-zero-shot", "--"), ("BM25", ":")):
            baseline = _baseline_mean(sg, label, system)
            if baseline is not None:
                ax.axhline(baseline, color=color, linestyle=style, linewidth=0.8)
    ax.set_xticks(xs, [v.display for v in cfg.variants])
    ax.set_ylabel(f"{cfg.primary_measure} (graded)")
    ax.set_title(f"{cfg.name}: {scenario} (dashed: zero-shot mE5, dotted: BM25)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def _level_plot(cfg: ExperimentConfig, scenario: str, sg: pd.DataFrame, ft: pd.DataFrame, axis: str,
                path: Path) -> Path:
    """Measure vs training fraction (``axis="fraction"``, no noise) or vs noise rate (all data), per label."""
    import matplotlib.pyplot as plt

    other, xlabel = ("noise", "training fraction") if axis == "fraction" else ("fraction", "grade-noise rate")
    fixed = min(cfg.noise_rates) if axis == "fraction" else max(cfg.fractions)
    sub = ft[ft[other] == fixed]
    labels = list(sg["label"].drop_duplicates())
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 3.8), squeeze=False)
    for ax, label in zip(axes[0], labels, strict=True):
        for j, v in enumerate(cfg.variants):
            r = sub[(sub["label"] == label) & (sub["variant"] == v.label)].sort_values(axis)
            if r.empty:
                continue
            ax.errorbar(r[axis], r["mean"], yerr=r["sd"].fillna(0.0), marker="o", capsize=3,
                        color=f"C{j}", label=v.display)
        zero_shot = _baseline_mean(sg, label, "mE5-zero-shot")
        if zero_shot is not None:
            ax.axhline(zero_shot, color="gray", linestyle="--", linewidth=0.8, label="zero-shot")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(cfg.primary_measure)
        ax.legend(fontsize=7)
    fig.suptitle(f"{cfg.name}: {scenario}", fontsize=9)
    return _save(fig, path)


def _baseline_mean(sg: pd.DataFrame, label: str, system: str) -> float | None:
    """The baseline ``system``'s mean for ``label`` in one scenario's rows (``None`` when it was not run)."""
    rows = sg[(sg["label"] == label) & (sg["system"] == system)]
    return float(rows["mean"].iloc[0]) if len(rows) else None

