"""Report generation on synthetic results: the tables render with markers and CIs, the plots are written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_experiments_significance import synthetic_perquery

from pyterrier_gradrel.experiments import ExperimentResult, aggregate, load_config, write_report
from pyterrier_gradrel.experiments._analyses import significance

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _result(tmp_path: Path, perquery: pd.DataFrame, **changes) -> ExperimentResult:
    cfg = {
        "name": "synthetic",
        "scenarios": [{"type": "monolingual", "collection": "xquad-r", "languages": ["en", "th"]}],
        "thresholds": [1, 2, 3], "graded_loss": False, "seeds": [0, 1, 2],
        "measures": {"graded": ["nDCG@10"], "binary": [], "rels": [2]},
        "significance": {"bootstrap_samples": 300},
    }
    cfg.update(changes)
    return ExperimentResult(config=load_config(cfg), perquery=perquery, runs_dir=tmp_path / "runs",
                            results_dir=tmp_path / "results" / "synthetic", wall_time=12.0, n_run=5, n_reused=3)


def test_report_tables_and_tau_plot(tmp_path, mirror):
    pq = synthetic_perquery()
    res = _result(tmp_path, pq)
    path = write_report(res)
    text = path.read_text()
    assert "| target | queries | BM25 | mE5-zero-shot | τ=1 | τ=2 | τ=3 |" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| th |")
            or line.startswith("| en |")}
    # mean ± sd over the 3 seeds, and the significance markers of the planted effects
    agg = aggregate(pq)
    th2 = agg[(agg["label"] == "th") & (agg["variant"] == "tau=2") & (agg["split"] == "test")].iloc[0]
    assert f"{th2['mean']:.3f} ± {th2['sd']:.3f}" in rows["th"]
    th_cells = [c.strip() for c in rows["th"].split("|")[1:-1]]
    assert th_cells[5].endswith("BZ") and th_cells[5].startswith("**")  # τ=2 beats both baselines, best in row
    en_cells = [c.strip() for c in rows["en"].split("|")[1:-1]]
    assert en_cells[4].endswith("z")  # en τ=1 significantly worse than zero-shot
    assert "Holm-Bonferroni" in text and "averaged over seeds" in text and "single seed" not in text
    assert "## Bootstrap confidence intervals" in text and "article (4)" in text
    assert "## Calibration" in text and "| monolingual-xquad-r | th | 1 | 0 | tau=2 |" in text
    png = res.results_dir / "tau_monolingual-xquad-r.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    assert "![tau_monolingual-xquad-r](tau_monolingual-xquad-r.png)" in text
    # which τ wins: th's planted τ=2 beats τ=1; the query language's resource level is named
    assert "## Which τ wins" in text
    th_win = next(line for line in text.splitlines() if line.startswith("| monolingual-xquad-r | th | "))
    assert "| medium (class 3) | tau=2 |" in th_win and "tau=1 (+" in th_win.split("|")[6]
    for name in ("aggregate.csv", "significance.csv", "thresholds.csv", "bootstrap.csv", "calibration.csv",
                 "perquery.csv.gz"):
        assert (res.results_dir / name).stat().st_size > 0
    sig = pd.read_csv(res.results_dir / "significance.csv")
    assert len(sig) == 12 and sig["p_adjusted"].ge(sig["p_value"]).all()
    assert not any(p.name.endswith(".tmp") for p in res.results_dir.iterdir())


def test_single_seed_is_stated(tmp_path, mirror):
    pq = synthetic_perquery()
    pq = pq[pq["seed"] == 0]
    text = write_report(_result(tmp_path, pq, seeds=[0], limit_queries=40)).read_text()
    assert "a single seed" in text and "Query limit" in text
    assert " ± " not in text.split("## Bootstrap")[0].split("### ")[1]  # no sd with one seed


def test_learning_and_noise_curves(tmp_path, mirror):
    base = synthetic_perquery()
    frames = []
    rng = np.random.default_rng(0)
    for fraction in (0.25, 1.0):
        for noise in (0.0, 0.4):
            part = base.copy()
            ft = part["system"] == "fine-tuned"
            part.loc[ft, "fraction"] = fraction
            part.loc[ft, "noise"] = noise
            part.loc[ft, "value"] = np.clip(part.loc[ft, "value"] - 0.1 * (1 - fraction) - 0.1 * noise
                                            + rng.normal(0, 0.01, ft.sum()), 0, 1)
            if (fraction, noise) != (0.25, 0.0):
                part = part[ft]  # baselines once
            frames.append(part)
    pq = pd.concat(frames, ignore_index=True)
    res = _result(tmp_path, pq, fractions=[0.25, 1.0], noise_rates=[0.0, 0.4])
    text = write_report(res).read_text()
    for name in ("tau", "fractions", "noise"):
        png = res.results_dir / f"{name}_monolingual-xquad-r.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, name
    assert "fraction 0.25, noise 0.4" in text
    agg = aggregate(res.perquery)
    ft = agg[(agg["system"] == "fine-tuned") & (agg["split"] == "test") & (agg["label"] == "th")
             & (agg["variant"] == "tau=2")].set_index(["fraction", "noise"])["mean"]
    assert ft[(1.0, 0.0)] > ft[(0.25, 0.0)] > ft[(0.25, 0.4)]
    sig = significance(res.perquery, res.config)
    # the family spans targets × variants × fractions × noise rates
    assert set(sig["family_size"]) == {2 * 3 * 2 * 2}
    # less data / noise: every variant's change (-0.075 for a quarter of the data, -0.04 for 40% noise) is
    # reported and significant; the variants share the same planted change, so none differs from another
    assert "## Less data and grade noise" in text
    lev = pd.read_csv(res.results_dir / "levels.csv")
    eff = lev[lev["kind"] == "effect"]
    assert len(eff) == 2 * 2 * 3 and eff["significant"].all()
    assert np.allclose(eff.loc[eff["axis"] == "fraction", "delta"], -0.075, atol=0.01)
    assert np.allclose(eff.loc[eff["axis"] == "noise", "delta"], -0.04, atol=0.01)
    assert "fraction 1 → 0.25" in text and "noise 0 → 0.4" in text


def test_compute_time_counts_every_training_session(tmp_path, mirror):
    res = _result(tmp_path, synthetic_perquery())
    res.conditions = {"a": {"seconds": {"total": 60.0, "earlier_sessions": 120.0}},
                      "b": {"seconds": {"total": 60.0, "earlier_sessions": 0.0}},
                      "c": {"seconds": {"total": 60.0, "earlier_sessions": None}}}
    text = write_report(res).read_text()
    assert ("compute time of all conditions (sum of their own timings, every training session of a resumed "
            "condition included) 5 min; 1 condition(s) resumed from a checkpoint that did not record the time of "
            "the sessions before: only their last session is counted.") in text


def test_empty_result_renders(tmp_path, mirror):
    from pyterrier_gradrel.experiments._store import PERQUERY_COLUMNS

    res = _result(tmp_path, pd.DataFrame(columns=PERQUERY_COLUMNS))
    text = write_report(res).read_text()
    assert text.startswith("# Experiment `synthetic`")


@pytest.mark.parametrize("cmd", ["run", "report"])
def test_cli_parsers(cmd):
    from pyterrier_gradrel.cli import build_parser

    args = build_parser().parse_args([cmd, "experiments/quickstart.yaml", "--limit-queries", "5"])
    assert args.limit_queries == 5 and callable(args.func)
