"""``gradrel judge | build | agreement``: grade pairs with an LLM, build LLM-graded collections, measure agreement.

The API key of an OpenAI-compatible endpoint is read from ``$GRADREL_JUDGE_API_KEY`` (or ``$OPENAI_API_KEY``)
only: a key on the command line would be visible to every user of the machine.

Quality needs a real judge model; a tiny or random model only exercises the machinery.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BACKENDS = ("openai", "hf")


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("judge backend")
    g.add_argument("--backend", choices=BACKENDS, required=True,
                   help="openai: an OpenAI-compatible chat-completions endpoint; hf: a local transformers causal LM")
    g.add_argument("--model", default=None,
                   help="served model name (openai; default $GRADREL_JUDGE_MODEL) or model folder / hub id (hf)")
    g.add_argument("--base-url", default=None, help="API root, e.g. http://127.0.0.1:8000/v1 (default $GRADREL_JUDGE_BASE_URL); "
                   "the key comes from $GRADREL_JUDGE_API_KEY or $OPENAI_API_KEY")
    g.add_argument("--max-workers", type=int, default=4, help="concurrent requests (openai)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per request (openai)")
    g.add_argument("--max-retries", type=int, default=5,
                   help="retries on timeouts, 429, 5xx and malformed answers (openai)")
    g.add_argument("--max-tokens", type=int, default=None, metavar="N",
                   help="longest answer in tokens (openai; default 8, enough for a bare grade): raise it for a "
                        "reasoning model (e.g. 2048), whose answer cut off inside its reasoning has no grade; a "
                        "non-default value is part of the judge's model id, e.g. openai:<model>[max_tokens=2048], so "
                        "judgements cached with another limit are not reused")
    g.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="sampling temperature in [0, 2] (openai; default 0: greedy); a non-default value is part of "
                        "the judge's model id")
    g.add_argument("--seed", type=int, default=None,
                   help="seed sent with each request for servers that sample reproducibly (openai; default 0); part "
                        "of the judge's model id when not 0 and --temperature is above 0")
    g.add_argument("--no-logprobs", action="store_true",
                   help="do not ask for token log-probabilities (no p_0..p_3; for servers that send malformed ones)")
    g.add_argument("--batch-size", type=int, default=4, help="prompts per forward pass (hf)")
    g.add_argument("--max-length", type=int, default=2048, help="longest prompt in tokens (hf)")
    g.add_argument("--device", default=None, help="torch device (hf)")
    g.add_argument("--cache", default=None, help="judgement cache file (default: $GRADREL_HOME/judgements/<model>.jsonl)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write a judgement cache")
    g.add_argument("--retry-missing", action="store_true", help="ask again for cached pairs without a grade")


def add_parser(subparsers: Any) -> None:
    """Add the ``judge``, ``build`` and ``agreement`` commands to the ``gradrel`` sub-parsers."""
    p = subparsers.add_parser("judge", help="grade (query, passage) pairs 0-3 with an LLM judge",
                              description="Read pairs (TSV with a header or JSON Lines: qid, query, docno, text), "
                                          "write JSON Lines with grade, judge_raw, judge_error and p_0..p_3, one "
                                          "line per input row. A pair without a grade has \"grade\": null and "
                                          "judge_error saying why; when no pair got a grade because the backend "
                                          "failed (endpoint down, every request erred) the command exits 1.")
    p.add_argument("--input", required=True, help="pairs file (.tsv with header qid query docno text, or .jsonl)")
    p.add_argument("--output", default="-", help="output JSON Lines (default: stdout)")
    _add_backend_args(p)
    p.set_defaults(func=_judge_cmd)

    p = subparsers.add_parser("build", help="pool, judge and write an LLM-graded local collection",
                              description="Pool BM25 + dense candidates per query from a dataset, judge them and "
                                          "write $GRADREL_HOME/collections/<name> (gradrel/local/<name>/<split>).")
    p.add_argument("name", help="collection name (letters, digits, _ . -)")
    p.add_argument("--dataset", required=True, help="source dataset id, e.g. gradrel/xquad-r/de/test")
    p.add_argument("--splits", default=None,
                   help="comma-separated splits of --dataset to build, e.g. train,dev,test (default: its own split)")
    p.add_argument("--depth", type=int, default=20, help="candidates per query and retriever (default 20)")
    p.add_argument("--max-queries", type=int, default=None, help="judge only the first N queries (a slice)")
    p.add_argument("--encoder", default="multilingual-e5-small", help="dense retriever's encoder")
    p.add_argument("--folder", default=None, help="write here instead of $GRADREL_HOME/collections/<name>")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing collection folder, only one that gradrel build wrote (its build.json) "
                        "holding nothing else; any other folder is refused and left as it is")
    _add_backend_args(p)
    p.set_defaults(func=_build_cmd)

    p = subparsers.add_parser("agreement", help="compare judge grades with a dataset's existing grades",
                              description="Confusion matrix and Cohen's weighted kappa of a built collection's "
                                          "judgements against the grades of the dataset it was built from, over "
                                          "the judge's 0-3 and the reference dataset's own grade scale (a "
                                          "judged pair the reference does not list has grade 0).")
    p.add_argument("judgements", help="a collection name, a collection folder or a judgements.jsonl file")
    p.add_argument("--dataset", default=None, help="reference dataset id (default: the collection's source)")
    p.add_argument("--by", default="lang", help="group by this query field (default lang; 'none' for overall only)")
    p.add_argument("--output", default=None, help="also write the markdown report here")
    p.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    p.set_defaults(func=_agreement_cmd)


#: options of the OpenAI backend that change its answers: given only when set, so the backend's defaults (and the
#: default model id) apply otherwise
_SAMPLING_OPTIONS = ("max_tokens", "temperature", "seed")


def make_backend(args: argparse.Namespace) -> Any:
    """The judge backend described by the command-line options.

    Raises:
        ValueError: ``--max-tokens``, ``--temperature`` or ``--seed`` with ``--backend hf`` (which reads one
            forward pass and samples nothing), or a value the backend refuses.
    """
    sampling = {k: getattr(args, k) for k in _SAMPLING_OPTIONS if getattr(args, k, None) is not None}
    if args.backend == "openai":
        from pyterrier_gradrel.judge._http import OpenAIChatBackend

        return OpenAIChatBackend(model=args.model, base_url=args.base_url, max_workers=args.max_workers,
                                 timeout=args.timeout, max_retries=args.max_retries, logprobs=not args.no_logprobs,
                                 **sampling)
    if sampling:
        given = ", ".join("--" + k.replace("_", "-") for k in sampling)
        raise ValueError(f"{given}: only for --backend openai (the hf backend reads the grade probabilities from one "
                         f"forward pass and generates no answer)")
    if not args.model:
        raise ValueError("--model (a model folder or cached hub id) is required with --backend hf")
    from pyterrier_gradrel.judge._hf import TransformersBackend

    return TransformersBackend(args.model, batch_size=args.batch_size, max_length=args.max_length, device=args.device)


def make_judge(args: argparse.Namespace) -> Any:
    """An :class:`LLMJudge` with the backend and cache chosen on the command line."""
    from pyterrier_gradrel.judge._judge import LLMJudge

    cache: Any = False if args.no_cache else (args.cache or True)
    return LLMJudge(make_backend(args), cache=cache, retry_missing=args.retry_missing, verbose=True)


def _read_jsonl(path: str | Path, **kwargs: Any) -> Any:
    """``path`` read as JSON Lines into a frame (``pandas.read_json`` keywords); ``ValueError`` naming the file
    when it is not JSON Lines."""
    import pandas as pd

    try:
        return pd.read_json(path, orient="records", lines=True, **kwargs)
    except ValueError as exc:  # pandas' parser names neither the file nor the line
        raise ValueError(f"{path}: not JSON Lines (one JSON object per line): {exc}") from None


def _read_pairs(path: str) -> Any:
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"gradrel judge: no such file {path}")
    if p.suffix == ".jsonl":
        frame = _read_jsonl(p, dtype=False)
    elif p.suffix == ".tsv":
        try:
            frame = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, quoting=3)
        except ValueError as exc:  # a ParserError or a decoding error
            raise ValueError(f"{path}: not a tab-separated file with a header: {exc}") from None
    else:
        raise SystemExit(f"gradrel judge: --input must end with .tsv or .jsonl, got {path}")
    missing = [c for c in ("qid", "query", "docno", "text") if c not in frame.columns]
    if missing:
        raise SystemExit(f"gradrel judge: {path} lacks columns {missing}; needs qid, query, docno, text")
    return frame


def judged_rows(out: Any) -> list[dict[str, Any]]:
    """The JSON records of an :class:`LLMJudge` output frame: ``grade`` is an int or ``None`` (missing),
    ``judge_error`` says why it is missing, ``p_0..p_3`` are floats or ``None``."""
    import pandas as pd

    from pyterrier_gradrel.datasets import GRADES

    rows = []
    for row in out.itertuples(index=False):
        probs = [getattr(row, f"p_{g}") for g in GRADES]
        rows.append({"qid": str(row.qid), "docno": str(row.docno),
                     "grade": None if pd.isna(row.grade) else int(row.grade), "judge_raw": row.judge_raw,
                     "judge_error": row.judge_error,
                     **{f"p_{g}": None if pd.isna(p) else float(p) for g, p in enumerate(probs)}})
    return rows


def _check_output_file(output: str | None) -> None:
    """Refuse an ``--output`` that is a folder before any work (a file never replaces a folder)."""
    if output not in (None, "-") and Path(output).is_dir():
        raise ValueError(f"--output {output} is a folder: give the path of a file to write")


def _judge_cmd(args: argparse.Namespace) -> int:
    _check_output_file(args.output)
    frame = _read_pairs(args.input)
    judge = make_judge(args)
    out = judge.transform(frame)
    lines = [json.dumps(row, ensure_ascii=False) for row in judged_rows(out)]
    text = "".join(line + "\n" for line in lines)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        from pyterrier_gradrel._atomic import write_text

        write_text(args.output, text)
    missing = int(out["grade"].isna().sum())
    if len(out) and missing == len(out) and judge.transient_last:  # the backend failed: no judge answered
        first = next((e for e in out["judge_error"] if isinstance(e, str) and e), "unknown error")
        raise ValueError(f"no pair got a grade: {judge.transient_last} of the {len(out)} pairs failed on backend "
                         f"errors (first: {first}); the output holds each pair's judge_error")
    print(f"judged {len(out)} pairs ({missing} without a grade)", file=sys.stderr)
    if missing:
        print(f"  {judge.transient_last} of the pairs sent failed on transport errors or were refused by the "
              f"server (not cached: the next run asks again); answers without a clean grade are cached as final "
              f"(--retry-missing asks again)",
              file=sys.stderr)
    return 0


def _build_cmd(args: argparse.Namespace) -> int:
    from pyterrier_gradrel.judge._base import JudgeBackendError
    from pyterrier_gradrel.judge._build import build_collection

    splits = [x.strip() for x in args.splits.split(",") if x.strip()] if args.splits else None
    try:
        folder = build_collection(args.name, judge=make_judge(args), dataset=args.dataset, splits=splits,
                                  depth=args.depth, max_queries=args.max_queries, encoder=args.encoder,
                                  folder=args.folder, overwrite=args.overwrite, verbose=True)
    except JudgeBackendError as exc:
        raise SystemExit(f"gradrel build: {exc}") from None
    build = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    print(f"wrote {folder}")
    print(json.dumps({"judge": build["judge"]["model"], "prompt_version": build["judge"]["prompt_version"],
                      "counts": build["counts"]}, indent=2))
    splits = ", ".join(f"irds:gradrel/local/{args.name}/{s}" for s in build["counts"]["splits"])
    print(f"load it with pt.get_dataset(...) on: {splits}")
    return 0


def _resolve_judgements(target: str) -> tuple[Path, dict[str, Any] | None]:
    path = Path(target)
    if not path.exists():
        from pyterrier_gradrel.judge._build import _collections_home

        path = _collections_home() / target
    if path.is_dir():
        build_path = path / "build.json"
        build = json.loads(build_path.read_text(encoding="utf-8")) if build_path.is_file() else None
        path = path / "judgements.jsonl"
    else:
        build = None
    if not path.is_file():
        raise SystemExit(f"gradrel agreement: no judgements at {path} (give a collection name, folder or .jsonl)")
    return path, build


def _scales(datasets: list[str], qrels: Any) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """(the scale to compare on, the reference's scale, whether a dataset declares its scale): the reference's is
    its datasets' declared grades (a ``gradrel/`` id's, e.g. a local collection's manifest; another ir_datasets
    id's ``qrels_defs()``), the grades its qrels use and 0 (unlisted pairs); the comparison's adds the judge's
    0..3."""
    from pyterrier_gradrel.datasets import GRADES, info

    reference = {0, *(int(g) for g in qrels["label"].dropna().unique())}
    declared = False
    for d in datasets:
        if d.startswith("gradrel/"):
            reference |= set(info(d).grade_scale)
            declared = True
            continue
        try:
            import ir_datasets

            defs = ir_datasets.load(d).qrels_defs() or {}
        except (KeyError, AttributeError, NotImplementedError, TypeError, ValueError):
            defs = {}  # no declared scale: the grades its qrels use
        reference |= {int(g) for g in defs}
        declared = declared or bool(defs)
    return tuple(sorted(reference | set(GRADES))), tuple(sorted(reference)), declared


def _agreement_cmd(args: argparse.Namespace) -> int:
    import pandas as pd
    import pyterrier as pt

    from pyterrier_gradrel.datasets import GRADES
    from pyterrier_gradrel.judge._agreement import agreement

    _check_output_file(args.output)
    path, build = _resolve_judgements(args.judgements)
    source = (build or {}).get("source") or {}
    if args.dataset:
        datasets = [args.dataset.removeprefix("irds:")]
    else:
        datasets = list((source.get("datasets") or {}).values()) or ([source["dataset"]] if source.get("dataset") else [])
    if not datasets:
        raise SystemExit("gradrel agreement: pass --dataset (the judgements do not name their source dataset)")
    from pyterrier_gradrel.datasets import require_split

    for d in datasets:
        if d.startswith("gradrel/"):
            require_split(d, "test")  # the grades to compare with are a split's qrels
    dataset = ", ".join(datasets)
    judged = _read_jsonl(path, dtype={"qid": str, "docno": str})
    missing = [c for c in ("qid", "docno", "grade") if c not in judged.columns]
    if missing:
        raise ValueError(f"{path} lacks {missing}: judgements are JSON Lines with qid, docno and grade (0-3 or null), "
                         f"as gradrel judge and gradrel build write them")
    judged["grade"] = judged["grade"].astype("Int64")
    qrels = pd.concat([pt.get_dataset(f"irds:{d}").get_qrels() for d in datasets], ignore_index=True)
    by = None if args.by in ("none", "") else args.by
    if by is not None and by not in judged.columns:
        import ir_datasets

        field = {q.query_id: getattr(q, by, None) for d in datasets for q in ir_datasets.load(d).queries_iter()}
        if not any(v is not None for v in field.values()):
            raise SystemExit(f"gradrel agreement: the queries of {dataset} have no field {by!r}; use --by none")
        judged[by] = judged["qid"].map(field)
    grades, reference_scale, declared = _scales(datasets, qrels)
    report = agreement(judged, qrels, by=by, grades=grades)
    note = ""
    # a declared scale other than 0..3 (a binary one too) is named; grades only seen in the qrels, when they leave it
    if (set(reference_scale) != set(GRADES)) if declared else not set(reference_scale) <= set(GRADES):
        note = (f"The reference grades are on the scale {list(reference_scale)} (0 also for a pair it does not "
                f"list), the judge's on {list(GRADES)}: the confusion matrix covers {list(grades)}, and exact "
                f"agreement and kappa compare the grade numbers.")
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        frame = report.to_frame()
        print(json.dumps({"dataset": dataset, "judgements": str(path), "grades": list(report.grades),
                          "groups": frame.to_dict("records"),
                          "confusion": report.confusion_frame().to_numpy().tolist()}, indent=2))
    else:
        print(report.to_markdown())
    if args.output:
        from pyterrier_gradrel._atomic import write_text

        write_text(args.output, f"# Judge agreement with {dataset}\n\nJudgements: `{path}`\n\n"
                                f"{note + chr(10) * 2 if note else ''}{report.to_markdown()}\n")
    return 0
