"""``gradrel evaluate``, ``gradrel leaderboard`` and ``gradrel benchmark tasks|fingerprint|check|verify|upgrade``.

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

_DEFAULT_OUT = "$GRADREL_HOME/benchmark (~/.cache/pyterrier_gradrel/benchmark when GRADREL_HOME is unset)"
_REFERENCE_HELP = ("experiments/results/benchmark in a source checkout, the package data "
                   "pyterrier_gradrel/reference_results in an installed wheel")
_FACTORY_HELP = ("factory as module:attribute (a module importable from the current directory or sys.path) or "
                 "path/to/file.py:attribute; called once per task with the task's ir_datasets id "
                 "('gradrel/xquad-r/de/test', no 'irds:' prefix), it returns a pt.Transformer that maps the topics "
                 "(qid, query) to a ranking (qid, docno, score or rank; at least 100 documents per query, each once, "
                 "from the task's pool: pyterrier_gradrel.benchmark.task_pool(dataset_id) gives docno, text)")


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
    which.add_argument("--system", help=_FACTORY_HELP)
    which.add_argument("--baseline", choices=BASELINES, help="a named baseline (mE5 in float32)")
    p.add_argument("--name", help="display name of the system (default: model folder or factory name)")
    p.add_argument("--suite", default="gradrel-v1", help="suite name or YAML (default: gradrel-v1)")
    p.add_argument("--tasks", type=_csv, default=None, help="comma-separated task names, dataset ids or groups")
    p.add_argument("--out", type=Path, default=None, help=f"results root (default: {_DEFAULT_OUT})")
    p.add_argument("--overwrite", action="store_true", help="recompute tasks that already have a result")
    p.add_argument("--fingerprint", "--system-version", dest="system_version", default=None,
                   help="a --system's version string, added to its fingerprint (which already covers the source of "
                        "its module and of the local modules it imports, and the versions of the packages it "
                        "imports): change it when something the code cannot show changes, e.g. downloaded weights")
    p.add_argument("--precision", default="float32", choices=["auto", "float32", "bfloat16"],
                   help="encoder precision; float32, like the pinned scores, so that a score does not depend on "
                        "the hardware it ran on; auto: bfloat16 where it is native (AMX CPUs, recent CUDA) "
                        "(default: float32)")
    p.add_argument("--threads", type=int, default=None, help="torch threads while encoding")
    p.add_argument("--check", action="store_true",
                   help="compare the main scores with the suite's pinned expectations (exit 1 on FAIL or when no "
                        "evaluated task is pinned; a system without pinned scores is refused before anything is "
                        "evaluated)")
    p.add_argument("--query-prefix", default=None,
                   help="--model: the text put before each query (default: the model's own, from its folder's "
                        "settings or sentence-transformers prompts, else its family's, e.g. 'query: ' for E5); "
                        "part of the fingerprint")
    p.add_argument("--doc-prefix", default=None,
                   help="--model: the text put before each passage (default: found as --query-prefix is)")
    p.add_argument("--pooling", choices=["mean", "cls"], default=None,
                   help="--model: how token vectors become one vector (default: the model's own)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_evaluate)

    lb = subparsers.add_parser(
        "leaderboard", help="write the suite's leaderboard (Markdown, CSV, PNG) with rank intervals (ties)",
        description="Rank every system found in the results roots (read in place, each result verified and its "
                    "scores recomputed from its per-query file) together with the reference results that come "
                    "with the package, on the selected tasks that every system has; rank intervals from a paired "
                    "bootstrap over articles; overlapping intervals = tied. A refused result file stops it (exit 1).")
    lb.add_argument("--suite", default="gradrel-v1", help="benchmark suite name or YAML file")
    lb.add_argument("--results", type=Path, action="append", default=None,
                    help=f"a results root; repeat to merge several (default: {_DEFAULT_OUT})")
    lb.add_argument("--no-reference", dest="reference", action="store_false",
                    help="leave out the reference results that come with the package (by default they are read, "
                         f"in place, from {_REFERENCE_HELP})")
    lb.add_argument("--out", type=Path, default=None,
                    help="output folder (default: <first results root>/<suite>)")
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
    c = sub.add_parser("check", help="evaluate the pinned systems and report OK / OKish / FAIL per task (exit 1 on "
                                    "FAIL, on a task key the suite does not have, or when no selected task is pinned)")
    c.add_argument("--suite", default="gradrel-v1", help="benchmark suite name or YAML file")
    c.add_argument("--systems", type=_csv, default=None, help="pinned systems to check (default: all pinned)")
    c.add_argument("--tasks", type=_csv, default=None, help="restrict to these tasks / groups (CI: a few)")
    c.add_argument("--expected", type=Path, default=None, help="expectations YAML (default: <suite>.expected.yaml)")
    c.add_argument("--out", type=Path, default=None, help=f"results root (default: {_DEFAULT_OUT})")
    c.add_argument("--precision", default=None, choices=["auto", "float32", "bfloat16"],
                   help="encoder precision of the dense systems (default: each system's pinned precision, else "
                        "float32)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_check)
    _add_folder_command(
        sub, "verify", _verify,
        help="verify a results folder (e.g. one received to merge): exit 1 naming each refused file",
        description="Check every result of the suite in FOLDER (a results root or its <suite> folder): schema, "
                    "suite hash, task data fingerprints, place on disk, per-query file hash and completeness "
                    "(exactly the task's queries), and the scores recomputed from the per-query values.")
    _add_folder_command(
        sub, "upgrade", _upgrade,
        help="bring results of an earlier schema (1: no suite hash; 2: the old measure names) to the current one",
        description="For each schema-1 or schema-2 result of the suite in FOLDER: add the suite hash and the "
                    "per-query file's sha256 (schema 1), rename its measures to the current names (nDCG@10(rel=2) "
                    "-> nDCG(rel=2)@10, R(rel=1)@100 -> R@100, RR(rel=1)@100 -> RR@100) in its JSON and the "
                    "per-query file's header, values unchanged, verify it (as `benchmark verify`) and rewrite it; "
                    "a result that fails is left unchanged and named (exit 1).")


def _add_folder_command(sub: Any, name: str, func: Any, *, help: str, description: str) -> None:  # noqa: A002
    """A ``gradrel benchmark`` sub-command that works on one results folder of a suite."""
    cmd = sub.add_parser(name, help=help, description=description)
    cmd.add_argument("folder", type=Path, help="results root or suite folder")
    cmd.add_argument("--suite", default="gradrel-v1", help="benchmark suite name or YAML file")
    cmd.set_defaults(func=func)


def load_factory(spec: str) -> Any:
    """``module:attribute`` or ``path/to/file.py:attribute`` -> the object.

    Raises:
        ValueError: ``spec`` is malformed, names no file, a module that cannot be imported or no attribute of it.
    """
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"--system must be module:attribute or file.py:attribute, got {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"--system: no file {path}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        # the file's folder first on the path: its local imports resolve, as for `python file.py`
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        module_spec.loader.exec_module(module)
    else:
        # like `python -m`: modules in the current directory are importable
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise ValueError(f"--system: cannot import {target!r} ({exc}); give module:attribute for a module "
                             "in the current directory or on sys.path, or path/to/file.py:attribute") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"--system: {target} has no attribute {attr!r}") from None


def _print_check(system: str, table: Any, exp: Any) -> bool:
    """Print a check table; False when a task failed."""
    print(f"\n{system}: pinned {exp.measure}, OK <= {exp.ok:g}, OKish <= {exp.okish:g} ({exp.path})")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    counts = table["status"].value_counts().to_dict()
    print("  " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return "FAIL" not in counts


def _nothing_checked(tables: list[Any], exp: Any) -> bool:
    """True (after saying so on stderr) when no selected task of any system had a pinned score to compare."""
    from pyterrier_gradrel.benchmark._check import checked_any

    if any(checked_any(t) for t in tables):
        return False
    print(f"gradrel: nothing was checked: no selected task has a pinned score in {exp.path}", file=sys.stderr)
    return True


_ENCODER_OPTIONS = ("query_prefix", "doc_prefix", "pooling")


def _check_key(args: argparse.Namespace, system: Any) -> str:
    """The expectations' key of the system asked for (its spec, else its --name or factory name)."""
    return args.baseline or args.model or args.name or getattr(system, "__name__", str(args.system))


def _evaluate(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._runner import evaluate

    overrides = {k: getattr(args, k) for k in _ENCODER_OPTIONS if getattr(args, k, None) is not None}
    if overrides and not args.model:
        given = ", ".join("--" + k.replace("_", "-") for k in overrides)
        raise ValueError(f"{given} set(s) how a --model encodes; a --system or --baseline encodes its own way")
    if overrides:
        from pyterrier_gradrel.models import load_encoder

        system: Any = load_encoder(args.model, precision=args.precision, num_threads=args.threads, **overrides)
        args.name = args.name or Path(args.model).name
    elif args.model:
        system = args.model
    elif args.baseline:
        system = args.baseline
    else:
        system = load_factory(args.system)
    exp = None
    if args.check:  # refuse before any work: a system without pinned scores cannot be checked
        from pyterrier_gradrel.benchmark._check import load_expectations

        exp = load_expectations(suite=args.suite)
        if _check_key(args, system) not in exp.systems:
            print(f"gradrel evaluate: --check: {_check_key(args, system)!r} has no pinned scores in {exp.path} "
                  f"(pinned: {list(exp.systems)}); nothing evaluated. Run without --check to evaluate it.",
                  file=sys.stderr)
            return 1
    result = evaluate(system, args.suite, args.tasks, out=args.out, overwrite=args.overwrite, name=args.name,
                      fingerprint=args.system_version, precision=args.precision, threads=args.threads,
                      verbose=not args.quiet)
    table = result.table()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"{len(result.computed)} computed, {len(result.reused)} reused; results in {result.folder}")
    for note in result.notes:
        print(f"note: {note}")
    if exp is not None:
        from pyterrier_gradrel.benchmark._check import check_scores

        key = _check_key(args, system)
        checked = check_scores(result.main_scores(), exp.scores(key), ok=exp.ok, okish=exp.okish,
                               tasks=list(result.results))
        good = _print_check(key, checked, exp)
        return 0 if good and not _nothing_checked([checked], exp) else 1
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._leaderboard import leaderboard, results_roots

    roots = results_roots(args.results, reference=args.reference)
    board = leaderboard(args.suite, results=args.results, reference=args.reference, out=args.out, tasks=args.tasks,
                        n_boot=args.bootstrap, level=args.level, seed=args.seed, figure=not args.no_figure)
    print(f"results read from: {', '.join(str(r) for r in roots) or '(no results folder)'}")
    if not len(board.table):
        print(f"gradrel leaderboard: no result of suite {args.suite} in those folders; nothing written", file=sys.stderr)
        return 1
    print(board.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if len(board.used) < len(board.selected):
        print(f"ranked on the {len(board.used)} of {len(board.selected)} selected tasks that every system has: "
              f"{', '.join(board.used)}")
        for system, missing in board.incomplete.items():
            print(f"  {system}: {len(board.selected) - len(missing)} of {len(board.selected)} tasks")
    for label, note in board.earlier.items():
        print(f"note: {label}: {note}")
    print("wrote " + ", ".join(str(p) for p in board.written))
    return 0


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


def _verify(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._suite import load_suite
    from pyterrier_gradrel.benchmark._verify import verify_folder

    spec = load_suite(args.suite)
    report = verify_folder(args.folder, spec)
    for message in report.errors:
        print(f"REFUSED {message}")
    for path in report.stray:
        print(f"note: {path} is not a result file (ignored)")
    for path in report.leftovers:
        print(f"note: {path} is left over from an interrupted write (ignored; safe to remove once no "
              "gradrel process writes there)")
    for note in report.copies:
        print(f"note: {note} (another system's result, copied?)")
    for note in report.refingerprinted:
        print(f"note: {note} (the same system name under another fingerprint)")
    for note in report.earlier:
        print(f"note: {note}")
    systems = {(r.system["name"], r.system["fingerprint"]) for r in report.verified}
    print(f"{report.folder}: {len(report.verified)} results of {len(systems)} systems verified against {spec.name} "
          f"({spec.hash}), {len(report.errors)} refused")
    if not report.verified and not report.errors:
        print(f"gradrel benchmark verify: no result of suite {spec.name} in {args.folder}", file=sys.stderr)
    return 0 if report.ok else 1


def _upgrade(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._suite import load_suite
    from pyterrier_gradrel.benchmark._verify import upgrade_folder

    spec = load_suite(args.suite)
    upgraded, errors = upgrade_folder(args.folder, spec)
    for message in errors:
        print(f"NOT UPGRADED {message}")
    print(f"{upgraded} results upgraded to the current schema (suite hash {spec.hash}), {len(errors)} refused")
    return 1 if errors else 0


def _check(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.benchmark._check import check, load_expectations

    exp = load_expectations(args.expected, suite=args.suite)
    systems = args.systems or list(exp.systems)
    good = True
    tables = []
    for system in systems:
        table = check(system, args.suite, args.tasks, expectations=exp, out=args.out, precision=args.precision,
                      verbose=not args.quiet)
        good &= _print_check(system, table, exp)
        tables.append(table)
    return 0 if good and not _nothing_checked(tables, exp) else 1
