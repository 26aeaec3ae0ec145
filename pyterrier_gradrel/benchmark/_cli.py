"""``gradrel evaluate``, ``gradrel leaderboard`` and ``gradrel benchmark fingerprint|check|tasks``.

Building the parser imports nothing heavy: pandas, PyTerrier and torch load inside the command functions.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

# the light home of the baseline names: building the parser does not import PyTerrier
from pyterrier_gradrel.retrieval._names import BASELINES

__all__ = ["add_parser", "load_factory"]

_DEFAULT_OUT = "experiments/results/benchmark"


def _csv(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one task, dataset id or group, e.g. 'xquad-r-en,afriqa'")
    return items


def add_parser(subparsers: Any) -> None:
    """Add ``evaluate``, ``leaderboard`` and ``benchmark`` to the ``gradrel`` command."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate a model, baseline or PyTerrier pipeline on the gradrel benchmark suite",
        description="Run a system on the suite's tasks (default: all of gradrel-v1) and write one result JSON "
                    "(+ per-query scores) per task under --out/<suite>/<system>/<fingerprint>/; existing results "
                    "are reused unless --overwrite.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="encoder: model name, hub id or folder (dense retrieval)")
    which.add_argument("--system", help="factory dataset_id -> pt.Transformer as module:attribute or file.py:attribute")
    which.add_argument("--baseline", choices=BASELINES, help="a named baseline (mE5 in float32)")
    p.add_argument("--name", help="display name of the system (default: model folder or factory name)")
    p.add_argument("--suite", default="gradrel-v1", help="suite name or YAML (default: gradrel-v1)")
    p.add_argument("--tasks", type=_csv, default=None, help="comma-separated task names, dataset ids or groups")
    p.add_argument("--out", type=Path, default=Path(_DEFAULT_OUT), help=f"results root (default: {_DEFAULT_OUT})")
    p.add_argument("--overwrite", action="store_true", help="recompute tasks that already have a result")
    p.add_argument("--precision", default="float32", choices=["auto", "float32", "bfloat16"],
                   help="encoder precision; float32, like the pinned scores, so that a score does not depend on "
                        "the hardware it ran on; auto: bfloat16 where it is native (AMX CPUs, recent CUDA) "
                        "(default: float32)")
    p.add_argument("--threads", type=int, default=None, help="torch threads while encoding")
    p.add_argument("--check", action="store_true",
                   help="compare the main scores with the suite's pinned expectations (exit 1 on FAIL)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_evaluate)

    lb = subparsers.add_parser(
        "leaderboard", help="write the suite's leaderboard (Markdown, CSV, PNG) with rank intervals (ties)",
        description="Rank every system with results for all selected tasks; rank intervals from a paired "
                    "bootstrap over articles; overlapping intervals = tied.")
    lb.add_argument("--suite", default="gradrel-v1", help="benchmark suite name or YAML file")
    lb.add_argument("--results", type=Path, default=Path(_DEFAULT_OUT), help="results root")
    lb.add_argument("--out", type=Path, default=None, help="output folder (default: <results>/<suite>)")
    lb.add_argument("--tasks", type=_csv, default=None, help="restrict to these tasks / groups")
    lb.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (default 1000)")
    lb.add_argument("--level", type=float, default=0.95, help="coverage of the rank intervals (default 0.95)")
    lb.add_argument("--seed", type=int, default=0, help="seed of the rank-interval bootstrap")
    lb.add_argument("--no-figure", action="store_true", help="skip the PNG")
    lb.set_defaults(func=_leaderboard)

    b = subparsers.add_parser("benchmark", help="suite declaration: list tasks, data fingerprints, pinned checks")
    sub = b.add_subparsers(dest="benchmark_command", required=True)
    t = sub.add_parser("tasks", help="list the suite's tasks")
    t.add_argument("--suite", default="gradrel-v1", help="benchmark suite name or YAML file")
    t.set_defaults(func=_tasks)
    f = sub.add_parser("fingerprint", help="hash each task's data and compare with (or --write into) the suite YAML")
    f.add_argument("--suite", default="gradrel-v1", help="benchmark suite name or YAML file")
    f.add_argument("--tasks", type=_csv, default=None, help="comma-separated tasks, dataset ids or groups (default: all)")
    f.add_argument("--write", action="store_true",
                   help="write the fingerprints into the suite YAML (only before results are published under it)")
    f.set_defaults(func=_fingerprint)
    c = sub.add_parser("check", help="evaluate the pinned systems and report OK / OKish / FAIL per task")
    c.add_argument("--suite", default="gradrel-v1", help="benchmark suite name or YAML file")
    c.add_argument("--systems", type=_csv, default=None, help="pinned systems to check (default: all pinned)")
    c.add_argument("--tasks", type=_csv, default=None, help="restrict to these tasks / groups (CI: a few)")
    c.add_argument("--expected", type=Path, default=None, help="expectations YAML (default: <suite>.expected.yaml)")
    c.add_argument("--out", type=Path, default=Path(_DEFAULT_OUT), help="results root")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_check)


def load_factory(spec: str) -> Any:
    """``module:attribute`` or ``path/to/file.py:attribute`` -> the object."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise SystemExit(f"--system must be module:attribute or file.py:attribute, got {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise SystemExit(f"--system: no file {path}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"--system: {target} has no attribute {attr!r}") from None


def _print_check(system: str, table: Any, exp: Any) -> bool:
    print(f"\n{system}: pinned {exp.measure}, OK <= {exp.ok:g}, OKish <= {exp.okish:g} ({exp.path})")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    counts = table["status"].value_counts().to_dict()
    print("  " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return "FAIL" not in counts


def _evaluate(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._runner import evaluate

    if args.model:
        system: Any = args.model
    elif args.baseline:
        system = args.baseline
    else:
        system = load_factory(args.system)
    result = evaluate(system, args.suite, args.tasks, out=args.out, overwrite=args.overwrite, name=args.name,
                      precision=args.precision, threads=args.threads, verbose=not args.quiet)
    table = result.table()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"{len(result.computed)} computed, {len(result.reused)} reused; results in {result.folder}")
    if args.check:
        from pyterrier_gradrel.benchmark._check import check_scores, load_expectations

        exp = load_expectations(suite=args.suite)
        key = args.baseline or args.model or result.system["name"]
        if key not in exp.systems:
            print(f"--check: {key!r} has no pinned scores in {exp.path} (pinned: {list(exp.systems)})")
            return 1
        checked = check_scores(result.main_scores(), exp.scores(key), ok=exp.ok, okish=exp.okish,
                               tasks=list(result.results))
        return 0 if _print_check(key, checked, exp) else 1
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._leaderboard import leaderboard

    board = leaderboard(args.suite, results=args.results, out=args.out, tasks=args.tasks, n_boot=args.bootstrap,
                        level=args.level, seed=args.seed, figure=not args.no_figure)
    if len(board.table):
        print(board.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for system, missing in board.incomplete.items():
        print(f"incomplete (not ranked): {system}: {len(missing)} tasks missing")
    out = args.out or args.results / board_suite_name(args.suite)
    print(f"wrote {out}/leaderboard.md, .csv, leaderboard_tasks.csv" + ("" if args.no_figure else ", .png"))
    return 0


def board_suite_name(suite: str) -> str:
    from pyterrier_gradrel.benchmark._suite import load_suite

    return load_suite(suite).name


def _tasks(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._suite import load_suite

    spec = load_suite(args.suite)
    print(f"{spec.name} (version {spec.version}, {len(spec.tasks)} tasks, main score {spec.main_score}; {spec.path})")
    for t in spec.tasks:
        print(f"  {t.name:18s} {t.group:14s} {t.dataset:34s} {t.fingerprint or '(no fingerprint)'}")
    return 0


def _fingerprint(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._suite import data_fingerprint, load_suite, write_fingerprints

    if args.write:
        write_fingerprints(args.suite, args.tasks)
        print(f"wrote the fingerprints into {load_suite(args.suite).path}")
        return 0
    spec = load_suite(args.suite)
    changed = 0
    for t in spec.select(args.tasks):
        actual = data_fingerprint(t.dataset)
        same = actual == t.fingerprint
        changed += not same
        print(f"{'OK     ' if same else 'CHANGED'} {t.name:18s} {actual}" + ("" if same else f" (declared {t.fingerprint})"),
              flush=True)
    return 1 if changed else 0


def _check(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._check import check, load_expectations

    exp = load_expectations(args.expected, suite=args.suite)
    systems = args.systems or list(exp.systems)
    good = True
    for system in systems:
        table = check(system, args.suite, args.tasks, expectations=exp, out=args.out, verbose=not args.quiet)
        good &= _print_check(system, table, exp)
    return 0 if good else 1
