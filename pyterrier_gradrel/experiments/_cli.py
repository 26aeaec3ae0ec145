"""``gradrel run experiments/<name>.yaml [--dry-run] [--limit-queries N]`` and ``gradrel report ...``."""
from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``report`` sub-commands."""
    run = subparsers.add_parser("run", help="run (or resume) an experiment config and write its report")
    run.add_argument("config", help="path to experiments/<name>.yaml")
    run.add_argument("--dry-run", action="store_true", help="list the conditions and which are reusable")
    run.add_argument("--limit-queries", type=int, default=None, metavar="N",
                     help="only the first N queries of every dataset (smoke runs; part of the run keys)")
    run.add_argument("--root", default=None, help="the experiments folder (default: ./experiments)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)
    rep = subparsers.add_parser("report", help="re-write the report of an experiment from its finished runs")
    rep.add_argument("config", help="path to experiments/<name>.yaml")
    rep.add_argument("--limit-queries", type=int, default=None, metavar="N",
                     help="the report of a run made with the same --limit-queries")
    rep.add_argument("--root", default=None, help="the experiments folder (default: ./experiments)")
    rep.set_defaults(func=_report)


def _run(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.experiments._runner import run_experiment

    result = run_experiment(args.config, root=args.root, limit_queries=args.limit_queries, dry_run=args.dry_run,
                            verbose=not args.quiet)
    if not args.dry_run:
        report = result.results_dir / "report.md"
        if report.is_file():
            print(summary(report.read_text(encoding="utf-8")))
        print(f"{result.n_run} conditions run, {result.n_reused} reused in {result.wall_time:.0f} s; "
              f"report: {report}")
    return 0


def summary(report: str) -> str:
    """The headline part of a report: setup, the primary-measure tables and the calibration summary."""
    keep, out = True, []
    for line in report.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            keep = not (title.startswith("Other measures") or title.startswith("Bootstrap")
                        or title.startswith("Plots"))
        if keep:
            out.append(line)
    return "\n".join(out).rstrip() + "\n"


def _report(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.experiments._runner import run_experiment

    result = run_experiment(args.config, root=args.root, limit_queries=args.limit_queries, compute=False,
                            verbose=False)
    print(f"report from {result.n_reused} finished conditions ({result.n_missing} not run yet): "
          f"{result.results_dir / 'report.md'}")
    return 0
