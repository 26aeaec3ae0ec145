"""``gradrel datasets list|stats|fetch|check``: inspect, fetch and validate the benchmark's datasets."""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``datasets`` command to the ``gradrel`` sub-parsers."""
    parser = subparsers.add_parser("datasets", help="list, describe, fetch and validate the graded datasets")
    sub = parser.add_subparsers(dest="datasets_command", required=True)

    p = sub.add_parser("list", help="list the registered dataset ids")
    p.add_argument("--collection", choices=["xquad-r", "afriqa", "local"], default=None,
                   help="only the ids of this collection (default: all)")
    p.add_argument("--with-docs-only", action="store_true", help="also list the ids without a split (pools)")
    p.set_defaults(func=_list)

    p = sub.add_parser("stats", help="count queries, documents and qrels per grade of dataset ids")
    p.add_argument("ids", nargs="+", metavar="ID", help="e.g. gradrel/xquad-r/de/test")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_stats)

    p = sub.add_parser("fetch", help="copy from $GRADREL_MIRROR or download, and md5-check, the source files")
    p.add_argument("collection", nargs="?", choices=["xquad-r", "afriqa"], default=None)
    p.add_argument("--force", action="store_true", help="fetch again even if a verified copy is cached")
    p.set_defaults(func=_fetch)

    p = sub.add_parser("check", help="validate a local collection folder (docs.jsonl, queries, qrels): every "
                                      "error, one line each, and a summary of what the collection supports")
    p.add_argument("folder")
    p.add_argument("--name", default=None, help="register it under this name and print its ids (if it is valid)")
    p.add_argument("--max-errors", type=int, default=50, help="stop after this many errors (default 50)")
    p.set_defaults(func=_check)
    return parser


def _list(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.datasets import SPLITS, dataset_ids, register

    register()
    for dataset_id in dataset_ids(args.collection):
        if args.with_docs_only or dataset_id.rsplit("/", 1)[-1] in SPLITS:
            print(dataset_id)
    return 0


def stats(dataset_id: str) -> dict[str, Any]:
    """Counts for one id: documents, queries, qrels per grade, queries with a top-grade document."""
    import ir_datasets

    from pyterrier_gradrel.datasets import info, register

    register()
    meta = info(dataset_id)
    ds = ir_datasets.load(dataset_id)
    out: dict[str, Any] = {"id": dataset_id, "docs": ds.docs_count(), "structural": meta.structural}
    if ds.has_queries():
        out["queries"] = sum(1 for _ in ds.queries_iter())
        grades: Counter[int] = Counter()
        top = max(meta.grades)
        with_top: set[str] = set()
        for qrel in ds.qrels_iter():
            grades[qrel.relevance] += 1
            if qrel.relevance == top:
                with_top.add(qrel.query_id)
        out["qrels_per_grade"] = {str(g): grades[g] for g in sorted(meta.grades) if g > 0 or grades[g]}
        out[f"queries_with_grade_{top}"] = len(with_top)
        if meta.collection == "afriqa" and meta.split:
            from pyterrier_gradrel.datasets import _afriqa

            lang = dataset_id.split("/")[2].removesuffix("-translated")
            out["dropped_queries_without_gold"] = len(_afriqa.dropped(lang, meta.split))
    return out


def _stats(args: argparse.Namespace) -> int:
    rows = [stats(i) for i in args.ids]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    for row in rows:
        extra = ", ".join(f"{k}={v}" for k, v in row.items() if k != "id")
        print(f"{row['id']}: {extra}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.datasets import fetch

    for path in fetch(args.collection, force=args.force):
        print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    """Print the summary and every error (one line each); exit status 1 when there is any error."""
    from pyterrier_gradrel.datasets import _local, register_local

    report = _local.check(args.folder, limit=max(1, args.max_errors))
    for split, data in report.splits.items():
        grades = Counter(q.relevance for q in data.qrels)
        print(f"{split}: {len(data.pool.docs)} docs, {len(data.queries)} queries, "
              f"qrels per grade {dict(sorted(grades.items()))}")
    for line in report.features():
        print(line)
    if report.errors:
        more = f" (stopped after {len(report.errors)}; --max-errors to see more)" if report.truncated else ""
        print(f"{len(report.errors)} error(s){more}:", file=sys.stderr)
        for message in report.errors:
            print(f"  {message}", file=sys.stderr)
        return 1
    if args.name:
        for dataset_id in register_local(args.name, args.folder):
            print(dataset_id)
    return 0
