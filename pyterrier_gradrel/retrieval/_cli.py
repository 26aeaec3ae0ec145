"""``gradrel baselines`` and ``gradrel bm25-tokenizers``: the retrieval module's measured tables.

Both write a Markdown table, the same table as CSV and a JSON record of what produced it (models, tokenizers,
package versions, time), atomically, into ``--out``. ``--out`` defaults to ``$GRADREL_HOME/results/<table>``, not
to a folder relative to the working directory: run from the repository root, that would overwrite the committed
tables in ``experiments/results/``, which are regenerated only by naming that folder explicitly.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from pyterrier_gradrel import _atomic
from pyterrier_gradrel.datasets import SPLITS, collection_languages

__all__ = ["add_parser", "parse_pairs"]


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``"en,ar,de-en"`` -> ``[("en", "en"), ("ar", "ar"), ("de", "en")]`` (validated)."""
    xquad_r_langs = collection_languages("xquad-r")
    pairs = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        qlang, _, dlang = item.partition("-")
        dlang = dlang or qlang
        for lang in (qlang, dlang):
            if lang not in xquad_r_langs:
                raise argparse.ArgumentTypeError(
                    f"language must be one of {list(xquad_r_langs)} (pairs as <lang> or <qlang>-<dlang>), got {lang!r}")
        pairs.append((qlang, dlang))
    if not pairs:
        raise argparse.ArgumentTypeError("give at least one language or pair, e.g. 'en,th,de-en'")
    return pairs


def _langs(text: str) -> list[str]:
    """``"en,th"`` -> ``["en", "th"]``: XQuAD-R languages (the BM25 study is monolingual: no pairs)."""
    known = collection_languages("xquad-r")
    langs = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [lang for lang in langs if lang not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"languages must be among {list(known)} (the study is monolingual: no "
                                         f"<qlang>-<dlang> pairs), got {unknown}")
    if not langs:
        raise argparse.ArgumentTypeError("give at least one language, e.g. 'en,th'")
    return list(dict.fromkeys(langs))


def _csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one item")
    return items


def _dataset_ids(text: str) -> list[str]:
    """``"gradrel/local/mine/test,gradrel/afriqa/hau/test"`` -> the ids, each known to ``datasets.info`` and
    with queries (a split)."""
    from pyterrier_gradrel.retrieval._study import dataset_languages

    ids = [t.removeprefix("irds:") for t in _csv_list(text)]
    for ds_id in ids:
        try:
            dataset_languages(ds_id)
        except ValueError as exc:
            message = str(exc)
            raise argparse.ArgumentTypeError(message if ds_id in message else f"{ds_id}: {message}") from None
    return ids


def add_parser(subparsers: Any) -> None:
    """Add ``baselines`` and ``bm25-tokenizers`` to the ``gradrel`` command."""
    from pyterrier_gradrel.retrieval._study import BASELINE_PAIRS, STUDY_TOKENIZERS

    default_pairs = ",".join(q if q == d else f"{q}-{d}" for q, d in BASELINE_PAIRS)
    p = subparsers.add_parser(
        "baselines", help="evaluate BM25, zero-shot mE5, BM25>>mE5 and RRF on XQuAD-R pairs or any dataset "
                          "id and write the table",
        description="Evaluate the named baselines (pyterrier_gradrel.retrieval.baselines) on XQuAD-R pairs, or "
                    "on any registered dataset ids (--datasets, e.g. a local collection), with pt.Experiment "
                    "(nDCG@10 with gains 2^g-1, R(rel=2)@100, RR(rel=2), RR(rel=3)).")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: $GRADREL_HOME/results/baselines; the committed table is "
                        "experiments/results/baselines)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--pairs", type=parse_pairs, default=parse_pairs(default_pairs),
                       help=f"comma-separated XQuAD-R <lang> or <qlang>-<dlang> (default: {default_pairs})")
    which.add_argument("--datasets", type=_dataset_ids, default=None, metavar="IDS",
                       help="comma-separated dataset ids with a split, instead of --pairs, e.g. "
                            "gradrel/local/<name>/test,gradrel/afriqa/hau/test")
    p.add_argument("--split", choices=SPLITS, default="test", help="XQuAD-R split of --pairs to evaluate")
    p.add_argument("--encoder", default="multilingual-e5-small", help="dense model name or folder")
    p.add_argument("--tokenizer", default="auto", help="BM25 tokenizer spec (auto, script, subword, ...)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's setting)")
    p.set_defaults(func=_run_baselines)

    t = subparsers.add_parser(
        "bm25-tokenizers", help="measure BM25 per language and tokenizer on XQuAD-R (how 'auto' was chosen)",
        description="BM25 (pyterrier-pisa) with each tokenizer on monolingual XQuAD-R, evaluated with pt.Experiment.")
    t.add_argument("--out", type=Path, default=None,
                   help="output folder (default: $GRADREL_HOME/results/bm25_tokenizers; the committed table is "
                        "experiments/results/bm25_tokenizers)")
    t.add_argument("--langs", type=_langs, default=list(collection_languages("xquad-r")),
                   help="comma-separated XQuAD-R languages (default: all 12)")
    t.add_argument("--split", choices=SPLITS, default="test", help="XQuAD-R split to evaluate")
    t.add_argument("--tokenizers", type=_csv_list, default=list(STUDY_TOKENIZERS),
                   help=f"comma-separated tokenizer specs (default: {','.join(STUDY_TOKENIZERS)})")
    t.set_defaults(func=_run_tokenizers)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("pyterrier-gradrel", "python-terrier", "pyterrier-pisa", "pyterrier-dr", "pyterrier-alpha",
                "ir_measures", "torch", "transformers", "faiss-cpu"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _write(out: Path | None, stem: str, title: str, notes: list[str], table, record: dict[str, Any]) -> None:
    from pyterrier_gradrel._paths import cache_dir
    from pyterrier_gradrel.retrieval._evaluate import markdown_table

    out = cache_dir("results", stem) if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", "", *notes, "", markdown_table(table)]
    _atomic.write_text(out / f"{stem}.md", "\n".join(md))
    _atomic.write_text(out / f"{stem}.csv", table.to_csv(index=False, float_format="%.6f"))
    _atomic.write_text(out / f"{stem}.json", json.dumps(record, indent=2, default=str) + "\n")
    print(f"wrote {out / (stem + '.md')}, .csv and .json")


def _run_baselines(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.models import load_encoder
    from pyterrier_gradrel.retrieval._study import baseline_table
    from pyterrier_gradrel.retrieval._tokenize import get_tokenizer

    started = time.time()
    encoder = load_encoder(args.encoder, num_threads=args.threads, verbose=True)  # encoding a pool takes minutes
    datasets = getattr(args, "datasets", None)
    table, _ = baseline_table(args.pairs, split=args.split, encoder=encoder, tokenizer=args.tokenizer,
                              datasets=datasets)
    tok = get_tokenizer(args.tokenizer)
    print(table.to_string(index=False))
    what = (", ".join(f"`{d}`" for d in datasets) if datasets else f"XQuAD-R `{args.split}`")
    notes = [
        f"{what}; generated by `gradrel baselines` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {time.time() - started:.0f} s.",
        f"Dense model `{args.encoder}` (fingerprint `{encoder.fingerprint()[:16]}`, {encoder.precision} inference), exact numpy retrieval; "
        f"BM25 = pyterrier-pisa (k1=0.9, b=0.4) over `{tok.name}` terms; `BM25>>mE5` re-ranks BM25's top 100; "
        "`RRF(BM25,mE5)` = reciprocal-rank fusion, k=60.",
        "Measures: nDCG@10 with gains 2^g-1 on grades 1-3 (own pt.Experiment call), R(rel=2)@100, RR(rel=2), "
        "RR(rel=3); `answered` = queries with at least one result (missing queries score 0); `with_bm25_terms` = "
        "queries whose BM25 tokenization is non-empty (an unanswered BM25 query with terms shares no term with "
        "the document pool: a lexical gap, as for Thai queries over English sentences, not a tokenization "
        "failure).",
    ]
    record = {"command": "gradrel baselines", **({"datasets": datasets} if datasets else
                                                 {"split": args.split, "pairs": args.pairs}),
              "encoder": args.encoder,
              "encoder_fingerprint": encoder.fingerprint(), "tokenizer": tok.name, "versions": _versions(),
              "seconds": round(time.time() - started, 1)}
    _write(args.out, "baselines", "Baselines" if datasets else "Baselines on XQuAD-R", notes, table, record)
    return 0


def _run_tokenizers(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.retrieval._study import tokenizer_study
    from pyterrier_gradrel.retrieval._tokenize import AUTO_TOKENIZER

    started = time.time()
    table = tokenizer_study(args.langs, split=args.split, tokenizers=args.tokenizers)
    print(table.to_string(index=False))
    summary = table.groupby("tokenizer", sort=False)[["nDCG@10", "R(rel=2)@100", "RR(rel=2)", "RR(rel=3)"]].mean()
    summary = summary.reset_index().assign(lang="mean")
    notes = [
        f"BM25 (pyterrier-pisa, k1=0.9, b=0.4) on monolingual XQuAD-R `{args.split}`; generated by "
        f"`gradrel bm25-tokenizers` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "`script` = NFKC + casefold + Unicode-script words, character bigrams for Han/Kana/Thai/Lao/Khmer/Myanmar, "
        "Arabic orthographic normalisation; `subword` = multilingual-e5-small's XLM-R SentencePiece pieces "
        "(`subword-lower`: after casefolding). `terms` = vocabulary size of the index; `seconds` = index build "
        "(or reuse) plus retrieval.",
        f"`tokenizer=\"auto\"` currently resolves to `{AUTO_TOKENIZER}`.",
        "",
        "Mean over languages:",
        "",
        _markdown(summary[["tokenizer", "nDCG@10", "R(rel=2)@100", "RR(rel=2)", "RR(rel=3)"]]),
        "Per language:",
    ]
    record = {"command": "gradrel bm25-tokenizers", "split": args.split, "langs": args.langs,
              "tokenizers": sorted(set(table["tokenizer_name"])), "versions": _versions(),
              "seconds": round(time.time() - started, 1)}
    _write(args.out, "bm25_tokenizers", "BM25 tokenizers on XQuAD-R", notes, table, record)
    return 0


def _markdown(frame) -> str:
    from pyterrier_gradrel.retrieval._evaluate import markdown_table

    return markdown_table(frame)
