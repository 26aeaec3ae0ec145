"""``gradrel run experiments/<name>.yaml [--dry-run] [--restore] [--scenario NAME ...] [--limit-queries N]
[--executor local|ray] [--address ADDR] [--device DEVICE]`` and ``gradrel report experiments/<name>.yaml
[--from-results] [--control <control>.yaml]``."""
from __future__ import annotations

import argparse
import sys

_RESTORE_HELP = ("first rebuild the run folders of the finished conditions recorded in results/<name>/runs.json "
                 "(with their scores in results/<name>/perquery.csv.gz) that runs/<name>/ lacks, e.g. to resume on a "
                 "fresh clone a sweep whose partial results are committed; only conditions with the same run keys "
                 "(code, data, model and inference precision) are restored")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``report`` sub-commands."""
    run = subparsers.add_parser("run", help="run (or resume) an experiment config and write its report")
    run.add_argument("config", help="path to experiments/<name>.yaml")
    run.add_argument("--dry-run", action="store_true",
                     help="list the conditions: finished, to restore from the run record (with --restore), to copy "
                          "from another experiment's finished run with the same key, to run, or left for later (not "
                          "in the --scenario chosen)")
    run.add_argument("--restore", action="store_true", help=_RESTORE_HELP)
    run.add_argument("--scenario", action="append", default=None, metavar="NAME",
                     help="compute only this scenario's conditions (e.g. crosslingual-afriqa; repeat for several) and "
                          "the baselines its targets need; the report covers the whole config, partial until the "
                          "others have run")
    run.add_argument("--limit-queries", type=int, default=None, metavar="N",
                     help="only the first N queries of every dataset (smoke runs; part of the run keys); the report "
                          "goes to results/<name>-limit<N>")
    run.add_argument("--root", default=None, help="the experiments folder (default: $GRADREL_EXPERIMENTS, else ./experiments)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: one condition after the other in this process (default); ray: each condition "
                          "a Ray task (needs pip install 'pyterrier-gradrel[ray]'): baselines first, then the "
                          "fine-tuned conditions in parallel, one GPU each where the cluster has GPUs, else "
                          "training.threads CPUs each; a killed worker is retried and resumes from its checkpoint")
    run.add_argument("--address", default=None, metavar="ADDR",
                     help="the Ray cluster to attach to (e.g. ray://head:10001 or auto; default: $RAY_ADDRESS, "
                          "else a local Ray on this machine). Runs and caches must be on a filesystem all nodes share")
    run.add_argument("--device", default=None, metavar="DEVICE",
                     help="where models run: auto (CUDA when available, else CPU), cpu, cuda, cuda:1 "
                          "(default: the config's training.device, else auto); not part of the run keys")
    run.set_defaults(func=_run)
    rep = subparsers.add_parser("report", help="re-write the report of an experiment from its finished runs: those "
                                "under runs/<name>/ and those its run record results/<name>/runs.json holds")
    rep.add_argument("config", help="path to experiments/<name>.yaml")
    rep.add_argument("--limit-queries", type=int, default=None, metavar="N",
                     help="the report of a smoke run made with the same --limit-queries (results/<name>-limit<N>)")
    rep.add_argument("--root", default=None, help="the experiments folder (default: $GRADREL_EXPERIMENTS, else ./experiments)")
    rep.add_argument("--from-results", action="store_true",
                     help="no run folders needed: rebuild every CSV, plot and section of the report from "
                          "results/<name>/perquery.csv.gz with this code's analyses; the title, description and Setup "
                          "section stay as committed (a 'Sampling unit × τ' section needs --control again)")
    rep.add_argument("--control", default=None, metavar="CONFIG",
                     help="a control experiment with the same targets and variants (e.g. the unit: query runs of a "
                          "unit: pair config): writes units.csv and a 'Sampling unit × τ' section")
    rep.set_defaults(func=_report)


def _run(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.experiments._result import ConditionsFailed
    from pyterrier_gradrel.experiments._runner import run_experiment

    try:
        result = run_experiment(args.config, root=args.root, limit_queries=args.limit_queries,
                                dry_run=args.dry_run, verbose=not args.quiet, executor=args.executor,
                                address=args.address, device=args.device, restore=args.restore,
                                scenarios=args.scenario)
        failed = None
    except ConditionsFailed as e:
        result, failed = e.result, e
    if not args.dry_run:
        report = result.results_dir / "report.md"
        if report.is_file():
            print(summary(report.read_text(encoding="utf-8")))
        print(f"{result.n_run} conditions run, {result.n_reused} reused in {result.wall_time:.0f} s; "
              f"report: {report}")
    if failed is not None:
        print(f"{failed}\n(tracebacks: <run key>.partial/error.txt under {result.runs_dir})", file=sys.stderr)
        return 1
    return 0


def summary(report: str) -> str:
    """The headline part of a report: setup, the primary-measure tables and the calibration summary."""
    keep, out = True, []
    for line in report.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            keep = not title.startswith(("Other measures", "Bootstrap", "Plots"))
        if keep:
            out.append(line)
    return "\n".join(out).rstrip() + "\n"


def _report(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.experiments._diagonal import add_unit_comparison
    from pyterrier_gradrel.experiments._report import refresh_report
    from pyterrier_gradrel.experiments._runner import run_experiment

    if args.from_results:
        print(f"report rebuilt from the committed per-query results: {refresh_report(args.config, root=args.root)}")
    else:
        result = run_experiment(args.config, root=args.root, limit_queries=args.limit_queries, compute=False,
                                verbose=False, restore=True)
        print(f"report from {result.n_reused} finished conditions ({result.n_missing} not run yet): "
              f"{result.results_dir / 'report.md'}")
    if args.control:
        print(f"sampling unit × τ against {args.control}: {add_unit_comparison(args.config, args.control, root=args.root)}")
    return 0
