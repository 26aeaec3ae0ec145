"""The τ × evaluation-threshold diagonal and the sampling unit × τ interaction, against computations done here
by hand (numpy loops, scipy's t-test, a textbook Holm loop, the clustered permutation test's exact null
enumerated over every relabelling)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_experiments_significance import _holm_reference

from pyterrier_gradrel.experiments import ExperimentResult, load_config, write_report
from pyterrier_gradrel.experiments._diagonal import (
    SECTION_TITLE,
    add_unit_comparison,
    compare_diagonal,
    compare_units,
    diagonal_match_test,
    heatmap_matrix,
    splice_plots,
    splice_section,
)
from pyterrier_gradrel.experiments._report import refresh_report
from pyterrier_gradrel.experiments._store import PERQUERY_COLUMNS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_Q = 30
TAUS = [1, 2, 3]
RELS = [1, 2, 3]
SEEDS = [0, 1, 2]
LANGS = ["de", "en", "th", "zh"]


def crossing_perquery(seed: int = 3, *, boost: float = 0.04, tie_lang: str | None = None,
                      variant_effect: dict[str, float] | None = None) -> pd.DataFrame:
    """Binary nDCG@10 at rel >= 1, 2, 3 for τ 1-3 × 3 seeds on 4 targets: τ = r gets ``+boost`` at rel >= r
    (the planted crossing), except zh at rel >= 2 where τ = 3 is planted best. ``tie_lang`` makes every τ
    score the same at rel >= 3 on that target. ``variant_effect`` adds a constant per variant."""
    rng = np.random.default_rng(seed)
    rows = []
    for lang in LANGS:
        qids = [f"{lang}-q{i}" for i in range(N_Q)]
        for rel in RELS:
            base = rng.uniform(0.3, 0.8, N_Q)
            for tau in TAUS:
                planted = 3 if (lang, rel) == ("zh", 2) else rel
                for s in SEEDS:
                    noise = 0.0 if (lang, rel) == (tie_lang, 3) else rng.normal(0, 0.05, N_Q)
                    effect = (variant_effect or {}).get(f"tau={tau}", 0.0)
                    vals = base + (boost if tau == planted and (lang, rel) != (tie_lang, 3) else 0.0) + noise + effect
                    for q, v in zip(qids, vals, strict=True):
                        rows.append(dict(scenario="monolingual-xquad-r", label=lang,
                                         target=f"gradrel/xquad-r/{lang}/test", split="test", role="main",
                                         system="fine-tuned", variant=f"tau={tau}", tau=tau, loss="infonce", seed=s,
                                         fraction=1.0, noise=0.0, qid=q, article=f"a{int(q.split('q')[1]) % 3}",
                                         measure=f"nDCG(rel={rel})@10", rel=rel, base="nDCG@10", value=float(v)))
            # the graded measure and the graded loss do not take part in the diagonal
            for s in SEEDS:
                for q in qids:
                    rows.append(dict(scenario="monolingual-xquad-r", label=lang, target=f"gradrel/xquad-r/{lang}/test",
                                     split="test", role="main", system="fine-tuned", variant="graded", tau=None,
                                     loss="graded", seed=s, fraction=1.0, noise=0.0, qid=q, article="a0",
                                     measure=f"nDCG(rel={rel})@10", rel=rel, base="nDCG@10", value=1.0))
    return pd.DataFrame(rows).astype({"tau": "Int64", "rel": "Int64"})[PERQUERY_COLUMNS]


def _seed_mean(pq: pd.DataFrame, lang: str, rel: int, tau: int) -> np.ndarray:
    """Per-query score averaged over seeds, written as a loop over seeds (query order as generated)."""
    sub = pq[(pq["label"] == lang) & (pq["measure"] == f"nDCG(rel={rel})@10") & (pq["variant"] == f"tau={tau}")]
    per_seed = [sub[sub["seed"] == s]["value"].to_numpy() for s in SEEDS]
    return np.sum(per_seed, axis=0) / len(SEEDS)


def test_diagonal_matches_an_independent_computation():
    pq = crossing_perquery()
    diag = compare_diagonal(pq)
    assert set(diag["tau"]) == set(TAUS) and len(diag) == len(LANGS) * len(RELS) * len(TAUS)
    assert all(diag[c].dtype.kind == "i" for c in ("tau", "rel", "best", "n_queries", "n_seeds", "family_size"))
    assert diag["is_best"].dtype == bool and diag["tied"].dtype == bool
    expected, p_raw = {}, []
    for lang in LANGS:
        for rel in RELS:
            scores = {t: _seed_mean(pq, lang, rel, t) for t in TAUS}
            means = {t: float(np.mean(x)) for t, x in scores.items()}
            best = max(TAUS, key=lambda t: means[t])
            for t in TAUS:
                expected[(lang, rel, t)] = (best, means[t], means[t] - means[best])
            for a, b in itertools.combinations(TAUS, 2):  # every pair of τ is in the family
                p_raw.append(((lang, rel, frozenset((a, b))), stats.ttest_rel(scores[a], scores[b]).pvalue))
    # the planted crossing is found: τ = rel wins everywhere except zh at rel >= 2
    for (lang, rel, t), (best, mean, delta) in expected.items():
        row = diag[(diag["label"] == lang) & (diag["rel"] == rel) & (diag["tau"] == t)].iloc[0]
        assert row["best"] == best and bool(row["is_best"]) == (t == best) and not bool(row["tied"])
        assert row["mean"] == pytest.approx(mean, abs=1e-12) and row["delta"] == pytest.approx(delta, abs=1e-12)
        assert row["base"] == "nDCG@10" and row["n_seeds"] == 3 and row["n_queries"] == N_Q
        assert best == (3 if (lang, rel) == ("zh", 2) else rel)
    # Holm within one measure label (= one rel), by hand over all targets × all 3 pairs of τ; the rows show the
    # winner's 2 pairs per target (oriented winner − τ), the third pair is tested and counted only
    for rel in RELS:
        fam = [(k, p) for k, p in p_raw if k[1] == rel]
        adj = _holm_reference([p for _, p in fam])
        shown = 0
        for ((lang, _, pair), p), a in zip(fam, adj, strict=True):
            best = expected[(lang, rel, TAUS[0])][0]
            if best not in pair:
                continue
            (t,) = pair - {best}
            row = diag[(diag["label"] == lang) & (diag["rel"] == rel) & (diag["tau"] == t)].iloc[0]
            assert row["p_value"] == pytest.approx(p, rel=1e-9) and row["statistic"] > 0
            assert row["p_adjusted"] == pytest.approx(a, rel=1e-9)
            assert row["family_size"] == len(LANGS) * 3 and bool(row["significant"]) == (a < 0.05)
            shown += 1
        assert shown == len(LANGS) * 2
    winners = diag[diag["is_best"]]
    assert winners["p_value"].isna().all() and not winners["significant"].any()
    assert diag[diag["measure"] == "nDCG(rel=3)@10"]["significant"].sum() >= 6  # a 0.04 boost is detectable


def test_match_test_counts_winners_equal_to_rel():
    pq = crossing_perquery()
    diag = compare_diagonal(pq)
    signs = diagonal_match_test(pq, permutations=1999).set_index("rel")
    assert signs.loc[1, "matches"] == 4 and signs.loc[2, "matches"] == 3 and signs.loc[3, "matches"] == 4
    assert signs.loc["all", "matches"] == 11 and signs.loc["all", "n_targets"] == 12
    winners = diag[diag["is_best"]]
    for rel in (1, 2, 3):
        assert signs.loc[rel, "matches"] == int((winners[winners["rel"] == rel]["tau"] == rel).sum())
    assert signs["chance"].tolist() == pytest.approx([1 / 3] * 4) and (signs["n_clusters"] == N_Q * len(LANGS)).all()
    # the planted +0.04 makes τ = rel win; without a τ effect 4 of 4 independent targets happen with (1/3)^4
    assert signs.loc[1, "p_value"] < 0.05 and signs.loc[3, "p_value"] < 0.05 and signs.loc["all", "p_value"] == 1 / 2000
    assert signs["null_mean"].drop("all").tolist() == pytest.approx([4 / 3] * 3, abs=0.15)


def test_match_test_is_deterministic_and_batch_free():
    pq = crossing_perquery(boost=0.0)
    a = diagonal_match_test(pq, permutations=300, random_seed=5)
    pd.testing.assert_frame_equal(a, diagonal_match_test(pq, permutations=300, random_seed=5, batch=7))
    assert not a["p_value"].equals(diagonal_match_test(pq, permutations=300, random_seed=6)["p_value"])
    with pytest.raises(ValueError, match="permutations >= 1"):
        diagonal_match_test(pq, permutations=0)


SQUAD = [f"{0x56beb4343aeaaa14008c0000 + i:024x}" for i in range(60)]


def parallel_perquery(seed: int, *, langs: list[str], n_q: int, shared_sd: float, lang_sd: float,
                      boost: float = 0.0) -> pd.DataFrame:
    """XQuAD-R-like binary nDCG@10 at rel >= 1-3 for τ 1-3 (one seed): every language translates the same ``n_q``
    questions; a question's score under τ is a question × τ draw shared by all languages and rels (sd
    ``shared_sd``) plus per-language noise (sd ``lang_sd``), and ``+boost`` when τ = rel."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0.5, shared_sd, (n_q, len(TAUS)))
    rows = []
    for lang in langs:
        noise = rng.normal(0, lang_sd, (len(RELS), n_q, len(TAUS)))
        for i, rel in enumerate(RELS):
            for j, tau in enumerate(TAUS):
                vals = shared[:, j] + noise[i, :, j] + (boost if tau == rel else 0.0)
                for q, v in zip(SQUAD[:n_q], vals, strict=True):
                    rows.append(dict(scenario="monolingual-xquad-r", label=lang, target=f"gradrel/xquad-r/{lang}/test",
                                     split="test", role="main", system="fine-tuned", variant=f"tau={tau}", tau=tau,
                                     loss="infonce", seed=0, fraction=1.0, noise=0.0, qid=f"{lang}-{q}",
                                     article="Super_Bowl_50", measure=f"nDCG(rel={rel})@10", rel=rel, base="nDCG@10",
                                     value=float(v)))
    return pd.DataFrame(rows).astype({"tau": "Int64", "rel": "Int64"})[PERQUERY_COLUMNS]


def test_languages_that_share_questions_are_not_independent_trials():
    """No τ effect, but each question × τ draw is shared by 5 languages: they all pick the same winner, so at that
    rel a binomial over languages says (1/3)^5; the clustered test knows the agreement is one draw."""
    langs = ["ar", "de", "en", "th", "zh"]
    binomial, clustered = [], []
    for seed in range(20):
        signs = diagonal_match_test(parallel_perquery(seed, langs=langs, n_q=40, shared_sd=0.1, lang_sd=0.005),
                                    permutations=199)
        per_rel = signs[signs["rel"] != "all"]
        assert (signs["n_clusters"] == 40).all()
        binomial += [stats.binomtest(int(r.matches), int(r.n_targets), 1 / 3, alternative="greater").pvalue
                     for r in per_rel.itertuples()]
        clustered += per_rel["p_value"].tolist()
        hit = per_rel.loc[per_rel["matches"].idxmax()]
        assert hit["matches"] >= len(langs) - 1  # the languages agree on one winner
        assert 0.2 < hit["p_value"] < 0.5  # about 1/3: the chance that the one shared winner is τ = rel
    assert np.mean(np.array(binomial) <= 0.05) >= 0.3  # overconfident: every seed "finds" τ = rel somewhere
    assert np.mean(np.array(clustered) <= 0.2) == 0.0


def test_match_test_detects_tau_equal_to_rel_across_shared_questions():
    signs = diagonal_match_test(parallel_perquery(0, langs=["ar", "de", "en", "th", "zh"], n_q=40, shared_sd=0.02,
                                                  lang_sd=0.02, boost=0.05), permutations=999).set_index("rel")
    assert (signs["matches"] == [5, 5, 5, 15]).all()
    # pooled over rel the planted diagonal is clear; per rel, 5 languages that share questions are a weak witness
    assert signs.loc["all", "p_value"] <= 0.005 and (signs["p_value"] < 0.2).all()


def test_match_test_equals_the_exact_clustered_null():
    """Two τ, three questions in two languages: the 2^3 relabellings (one per question, in both languages) give the
    exact null; 20,000 random permutations land within Monte Carlo error of it."""
    rng = np.random.default_rng(11)
    shared = rng.normal(0.5, 0.1, (3, 2, 2))  # [question, rel, τ]
    rows = []
    for lang, offset in (("de", 0.0), ("en", 0.001)):
        for q, (r, t) in itertools.product(range(3), itertools.product((1, 2), (1, 2))):
            rows.append(dict(scenario="s", label=lang, target=lang, split="test", role="main", system="fine-tuned",
                             variant=f"tau={t}", tau=t, loss="infonce", seed=0, fraction=1.0, noise=0.0,
                             qid=f"{lang}-{SQUAD[q]}", article="a", measure=f"nDCG(rel={r})@10", rel=r,
                             base="nDCG@10", value=float(shared[q, r - 1, t - 1] + offset * t)))
    pq = pd.DataFrame(rows).astype({"tau": "Int64", "rel": "Int64"})[PERQUERY_COLUMNS]

    def stat(swap: tuple[int, ...]) -> int:
        v = shared.copy()
        v[np.array(swap, dtype=bool)] = v[np.array(swap, dtype=bool)][..., ::-1]
        hits = 0
        for offset in (0.0, 0.001):  # a tiny per-language tilt towards τ = 2
            means = v.mean(axis=0) + offset * np.array([1, 2])
            hits += sum(int(np.argmax(means[r]) == r) for r in range(2))
        return hits

    observed = stat((0, 0, 0))
    exact = np.mean([stat(s) >= observed for s in itertools.product((0, 1), repeat=3)])
    signs = diagonal_match_test(pq, permutations=20000).set_index("rel")
    assert signs.loc["all", "matches"] == observed and signs.loc["all", "n_clusters"] == 3
    assert signs.loc["all", "p_value"] == pytest.approx(exact, abs=0.015)


def test_ties_are_not_counted_as_wins():
    pq = crossing_perquery(tie_lang="th")
    diag = compare_diagonal(pq)
    cell = diag[(diag["label"] == "th") & (diag["rel"] == 3)]
    assert cell["tied"].all() and (cell["delta"].abs() < 1e-12).all() and cell.iloc[0]["best"] == 1
    signs = diagonal_match_test(pq, permutations=99).set_index("rel")
    assert signs.loc[3, "n_targets"] == 3 and signs.loc[3, "matches"] == 3
    taus, rels, delta, wins = heatmap_matrix(diag, "monolingual-xquad-r", "nDCG@10")
    assert wins[:, 2].tolist() == [0, 0, 3]  # the tied target is nobody's win
    assert delta[2, 2] == pytest.approx(0.0)  # τ = 3 is best (or tied best) on every target at rel >= 3


def test_heatmap_is_mean_delta_over_targets():
    diag = compare_diagonal(crossing_perquery())
    taus, rels, delta, wins = heatmap_matrix(diag, "monolingual-xquad-r", "nDCG@10")
    assert taus == TAUS and rels == RELS
    for i, t in enumerate(TAUS):
        for j, r in enumerate(RELS):
            cell = diag[(diag["tau"] == t) & (diag["rel"] == r)]
            assert delta[i, j] == pytest.approx(cell["delta"].mean())
    assert wins.sum(axis=0).tolist() == [4, 4, 4] and wins[2, 1] == 1 and wins[1, 1] == 3


def _config(tmp_path: Path) -> dict:
    return {"name": "synthetic", "graded_loss": False,
            "scenarios": [{"type": "monolingual", "collection": "xquad-r", "languages": LANGS}],
            "thresholds": TAUS, "seeds": SEEDS,
            "measures": {"graded": [], "binary": ["nDCG@10"], "rels": RELS, "primary": "nDCG(rel=2)@10"},
            "significance": {"bootstrap_samples": 100}, "calibration": {"enabled": False}}


def test_report_section_csv_heatmap_and_refresh_from_results(tmp_path, mirror):
    pq = crossing_perquery()
    pq = pq[pq["variant"] != "graded"]
    cfg = load_config(_config(tmp_path))
    res = ExperimentResult(config=cfg, perquery=pq, runs_dir=tmp_path / "runs",
                           results_dir=tmp_path / "results" / "synthetic", wall_time=1.0)
    text = write_report(res).read_text(encoding="utf-8")
    assert f"## {SECTION_TITLE}" in text and "### monolingual-xquad-r: `nDCG@10`" in text
    assert text.index("## Which τ wins") < text.index(f"## {SECTION_TITLE}") < text.index("## Bootstrap")
    section = text.split(f"## {SECTION_TITLE}")[1].split("\n## ")[0]
    zh = next(line for line in section.splitlines() if line.startswith("| zh | "))
    assert zh.split("|")[3].strip().lstrip("*").startswith("τ=3 +")  # zh's planted τ = 3 at rel >= 2
    signs = diagonal_match_test(pq, permutations=cfg.significance.permutations,
                                random_seed=cfg.significance.random_seed).set_index("rel")
    assert "| winner = rel | " + " | ".join(f"{signs.loc[r, 'matches']}/4 (p {signs.loc[r, 'p_value']:.2g})"
                                           for r in RELS) + " |" in section
    assert (f"in 11 of 12 (target, rel) cells (chance 0.33, {signs.loc['all', 'null_mean']:.1f} expected if τ did "
            f"not matter); clustered permutation p = {signs.loc['all', 'p_value']:.2g} (120 questions)") in section
    assert "one permutation per question applied in every language" in section
    png = res.results_dir / "diagonal_monolingual-xquad-r.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert text.rstrip().endswith("![diagonal_monolingual-xquad-r](diagonal_monolingual-xquad-r.png)")
    csv = pd.read_csv(res.results_dir / "diagonal.csv")
    assert len(csv) == 36 and csv["is_best"].sum() == 12
    # from the per-query file alone: a report of older analyses (here: without the section, and with other tables)
    # gets exactly what write_report writes; its title, description and setup stay as committed
    files = {p.name: p.read_bytes() for p in res.results_dir.iterdir()}
    stripped = splice_plots(splice_section(text, SECTION_TITLE, []), [], prefix="diagonal_")
    stripped = stripped.replace("## Which τ wins", "## Which τ wins\n\nan older table")
    assert SECTION_TITLE not in stripped and "diagonal_" not in stripped
    (res.results_dir / "report.md").write_text(stripped, encoding="utf-8")
    png.unlink()
    (res.results_dir / "diagonal.csv").unlink()
    (res.results_dir / "thresholds.csv").write_text("stale\n", encoding="utf-8")
    path = refresh_report(_config(tmp_path), root=tmp_path)
    assert path.read_text(encoding="utf-8") == text
    assert {p.name: p.read_bytes() for p in res.results_dir.iterdir()} == files
    # refreshing again changes nothing; the setup section is the committed one, whatever the config says now
    refresh_report({**_config(tmp_path), "note": "a note added later"}, root=tmp_path)
    assert {p.name: p.read_bytes() for p in res.results_dir.iterdir()} == files
    (res.results_dir / "report.md").write_text("# Experiment\n\nno setup\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"report.md: expected a '## Setup' section followed by"):
        refresh_report(_config(tmp_path), root=tmp_path)


def test_splice_section_places_and_replaces():
    text = "# T\n\nintro\n\n## A\n\na\n\n## C\n\nc\n"
    once = splice_section(text, "B", ["## B", "", "b", ""], after=("A",), before=("C",))
    assert once == "# T\n\nintro\n\n## A\n\na\n\n## B\n\nb\n\n## C\n\nc\n"
    assert splice_section(once, "B", ["## B", "", "b2", ""], after=("A",)) == once.replace("\nb\n", "\nb2\n")
    assert splice_section(text, "B", ["## B", "", "b"], before=("C",)) == once
    assert splice_section(once, "B", []) == text


def test_splice_plots_keeps_the_blank_line_before_a_later_section():
    text = "# T\n\n## Plots\n\n![a](a.png)\n![diagonal_x](diagonal_x.png)\n\n## Positives\n\np\n"
    assert splice_plots(text, [Path("diagonal_x.png")], prefix="diagonal_") == text
    assert splice_plots(text, [], prefix="diagonal_") == text.replace("![diagonal_x](diagonal_x.png)\n", "")


def _units_frames():
    treat = crossing_perquery(seed=3, variant_effect={"tau=1": 0.06})
    ctrl = crossing_perquery(seed=3)
    return treat, ctrl


def test_units_interaction_matches_an_independent_computation():
    treat, ctrl = _units_frames()
    rng = np.random.default_rng(11)
    treat = treat.assign(value=treat["value"] + rng.normal(0, 0.02, len(treat)))
    treat, ctrl = treat[treat["variant"] != "graded"], ctrl[ctrl["variant"] != "graded"]
    units = compare_units(treat, ctrl, measures=["nDCG(rel=1)@10", "nDCG(rel=3)@10"])
    assert set(units["kind"]) == {"effect", "interaction"} and set(units["measure"]) == {"nDCG(rel=1)@10",
                                                                                            "nDCG(rel=3)@10"}
    for measure, rel in (("nDCG(rel=1)@10", 1), ("nDCG(rel=3)@10", 3)):
        eff_p, inter_p = [], []
        for lang in LANGS:
            d = {t: _seed_mean(treat, lang, rel, t) - _seed_mean(ctrl, lang, rel, t) for t in TAUS}
            for t in TAUS:
                eff_p.append(((lang, f"tau={t}", ""), float(d[t].mean()), stats.ttest_1samp(d[t], 0).pvalue))
            for i, t in enumerate(TAUS):
                for w in TAUS[i + 1:]:
                    dd = d[t] - d[w]
                    inter_p.append(((lang, f"tau={t}", f"tau={w}"), float(dd.mean()), stats.ttest_1samp(dd, 0).pvalue))
        for kind, fam in (("effect", eff_p), ("interaction", inter_p)):
            adj = _holm_reference([p for _, _, p in fam])
            got = units[(units["kind"] == kind) & (units["measure"] == measure)]
            assert len(got) == len(fam)
            for ((lang, v, o), delta, p), a in zip(fam, adj, strict=True):
                row = got[(got["label"] == lang) & (got["variant"] == v) & (got["other"] == o)].iloc[0]
                assert row["delta"] == pytest.approx(delta, abs=1e-12)
                assert row["p_value"] == pytest.approx(p, rel=1e-6)
                assert row["p_adjusted"] == pytest.approx(a, rel=1e-6)
    inter = units[units["kind"] == "interaction"]
    planted = inter[inter["variant"] == "tau=1"]  # the treatment helps τ = 1 by 0.06 and nobody else
    assert planted["significant"].all() and np.allclose(planted["delta"], 0.06, atol=0.02)
    assert not inter[inter["variant"] == "tau=2"]["significant"].any()


def test_add_unit_comparison_writes_csv_and_section(tmp_path, mirror):
    treat, ctrl = _units_frames()
    treat, ctrl = treat[treat["variant"] != "graded"], ctrl[ctrl["variant"] != "graded"]
    for name, pq in (("synthetic", treat), ("control", ctrl)):
        c = load_config({**_config(tmp_path), "name": name})
        write_report(ExperimentResult(config=c, perquery=pq, runs_dir=tmp_path / "runs",
                                      results_dir=tmp_path / "results" / name))
    path = add_unit_comparison(_config(tmp_path), {**_config(tmp_path), "name": "control"}, root=tmp_path)
    units = pd.read_csv(path)
    assert len(units) == 3 * (4 * 3 + 4 * 3)
    text = (tmp_path / "results" / "synthetic" / "report.md").read_text(encoding="utf-8")
    title = "## Sampling unit × τ (against `control`)"
    assert text.count(title) == 1 and text.index(f"## {SECTION_TITLE}") < text.index(title)
    assert "| monolingual-xquad-r | en | **+0.060** |" in text.replace("+0.059", "+0.060").replace("+0.061", "+0.060")
    add_unit_comparison(_config(tmp_path), {**_config(tmp_path), "name": "control"}, root=tmp_path)
    assert (tmp_path / "results" / "synthetic" / "report.md").read_text(encoding="utf-8") == text


def test_cli_report_options():
    from pyterrier_gradrel.cli import build_parser

    args = build_parser().parse_args(["report", "experiments/x.yaml", "--from-results", "--control", "y.yaml"])
    assert args.from_results and args.control == "y.yaml"


# --- grades of the drawn training positives ------------------------------------------------------------

def test_positive_grades_from_logs_reads_the_key_and_skips_runs_without_it(tmp_path, caplog):
    import json

    from pyterrier_gradrel.experiments._positives import LOG_KEY, positive_grades_from_logs, positive_shares

    runs = tmp_path / "runs" / "x"
    for name, variant, unit, counts in (("a", "tau=1", "pair", {"1": 150, "2": 30, "3": 12}),
                                        ("b", "tau=1", "pair", {"1": 140, "2": 40, "3": 12}),
                                        ("c", "tau=2", "query", {"2": 100, "3": 92}),
                                        ("d", "tau=3", "query", None)):
        run = runs / name
        run.mkdir(parents=True)
        log = {"steps": 12, "config": {"rel": int(variant[-1]), "unit": unit, "loss": "infonce", "seed": 0}}
        if counts is not None:
            log[LOG_KEY] = counts
        (run / "train_log.json").write_text(json.dumps(log))
        (run / "condition.json").write_text(json.dumps({"condition": {"scenario": "s", "variant": variant,
                                                                      "train": ["gradrel/xquad-r/en/train"]}}))
    (runs / "baseline").mkdir()  # no train_log.json: not a fine-tuned run
    with caplog.at_level("WARNING"):
        counts = positive_grades_from_logs(runs)
    assert "1 run(s)" in caplog.text and set(counts["run"]) == {"a", "b", "c"}
    shares = positive_shares(counts).set_index(["unit", "variant", "grade"])
    assert shares.loc[("pair", "tau=1", 1), "count"] == 290 and shares.loc[("pair", "tau=1", 1), "n_runs"] == 2
    assert shares.loc[("pair", "tau=1", 1), "share"] == pytest.approx(290 / 384)
    assert shares.loc[("query", "tau=2", 3), "share"] == pytest.approx(92 / 192)
    with pytest.raises(FileNotFoundError, match="experiments/runs"):
        positive_grades_from_logs(tmp_path / "nope")


def test_positive_grades_from_logs_leaves_out_counts_of_part_of_a_run(tmp_path, caplog):
    import json

    from pyterrier_gradrel.experiments._positives import LOG_KEY, positive_grades_from_logs

    runs = tmp_path / "runs" / "x"
    for name, extra in (("whole", {"steps_this_session": 4, "positive_grades_steps": 12}),  # resumed, count carried
                        ("old-whole", {"steps_this_session": 12}),  # an older log of an uninterrupted run
                        ("partial", {"steps_this_session": 4, "positive_grades_steps": 4}),  # from an old checkpoint
                        ("old-resumed", {"steps_this_session": 4})):  # an older log: its last session only
        run = runs / name
        run.mkdir(parents=True)
        log = {"steps": 12, LOG_KEY: {"1": 20, "2": 4}, "config": {"rel": 1, "unit": "pair", "seed": 0}, **extra}
        (run / "train_log.json").write_text(json.dumps(log))
        (run / "condition.json").write_text(json.dumps({"condition": {"scenario": "s", "variant": "tau=1",
                                                                      "train": ["gradrel/xquad-r/en/train"]}}))
    with caplog.at_level("WARNING"):
        counts = positive_grades_from_logs(runs)
    assert set(counts["run"]) == {"whole", "old-whole"}
    assert "2 run(s)" in caplog.text and "part of their steps" in caplog.text


@pytest.mark.parametrize("unit", ["query", "pair"])
def test_replay_counts_the_trainers_positives(unit, mirror):
    from pyterrier_gradrel.experiments._positives import replay_positive_grades

    cfg = {"name": "tiny", "scenarios": [{"type": "monolingual", "collection": "xquad-r", "languages": ["en"]}],
           "thresholds": [1, 2, 3], "graded_loss": False, "seeds": [0], "limit_queries": 40,
           "training": {"max_steps": 7, "batch_size": 8, "unit": unit}, "baselines": [],
           "calibration": {"enabled": False}}
    counts = replay_positive_grades(cfg)
    per_run = counts.groupby("variant")["count"].sum()
    # 7 steps of 8 examples; 40 queries make 5 batches per epoch under unit=query, so epoch 2 is reached
    assert per_run.to_dict() == {"tau=1": 56, "tau=2": 56, "tau=3": 56}
    assert (counts["grade"] >= counts["rel"]).all() and (counts["unit"] == unit).all()
    assert set(counts[counts["variant"] == "tau=3"]["grade"]) == {3}
    assert set(counts[counts["variant"] == "tau=1"]["grade"]) >= {1, 3}  # τ = 1 draws mostly grade-1 passages
