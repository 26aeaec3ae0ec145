"""``gradrel train``: fine-tune an encoder on a graded training split at a threshold τ."""
from __future__ import annotations

import argparse
import json
from typing import Any

from pyterrier_gradrel._device import PRECISION_ALIASES, PRECISIONS


def _negatives(value: str) -> str | int:
    if value in ("zero", "below"):
        return value
    try:
        return int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--negatives must be 'zero', 'below' or an integer grade, got {value!r}") from exc


def _weights(value: str) -> dict[int, float]:
    try:
        return {int(g): float(w) for g, w in (part.split(":") for part in value.split(","))}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--grade-weights must look like '1:1,2:3,3:7', got {value!r}") from exc


#: training losses (``TrainConfig.loss``; the same as ``training._config.LOSSES``, kept here so that building
#: the parser imports no torch)
LOSSES = ("infonce", "graded")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser("train", help="fine-tune a bi-encoder on graded training data at a threshold τ",
                              description="Fine-tune an encoder on a graded training split at a threshold τ "
                                          "and print the run folder and training report as JSON.")
    p.add_argument("--dataset", required=True, help="a training split id, e.g. gradrel/xquad-r/th/train")
    p.add_argument("--base", default="multilingual-e5-small", help="model name, hub id or encoder folder")
    p.add_argument("--rel", type=int, default=2, help="τ: minimum grade counted positive")
    p.add_argument("--negatives", type=_negatives, default="zero",
                   help="hard negatives: zero (grade 0 and unjudged), below (any grade below τ) or an integer "
                        "neg_max < τ (grades <= neg_max)")
    p.add_argument("--unit", choices=["query", "pair"], default="query",
                   help="sampling unit: one example per query or per positive pair")
    p.add_argument("--loss", choices=LOSSES, default="infonce",
                   help="infonce: binary InfoNCE at τ; graded: grade-weighted InfoNCE")
    p.add_argument("--grade-weights", type=_weights, default=None,
                   help="--loss graded: weight per grade, e.g. 1:1,2:3,3:7 (default: 2^g - 1 for every grade g > 0 of the dataset's scale)")
    p.add_argument("--temperature", type=float, default=0.05, help="softmax temperature of the loss")
    p.add_argument("--hard-negatives", type=int, default=1, help="hard negatives per example")
    p.add_argument("--batch-size", type=int, default=16, help="examples per training step")
    p.add_argument("--lr", type=float, default=2e-5, help="peak learning rate (AdamW)")
    p.add_argument("--warmup", type=float, default=0.1, help="linear warm-up: a share of the steps if < 1, else a number of steps")
    p.add_argument("--epochs", type=int, default=1,
                   help="passes over the training examples (ignored with --max-steps)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="train exactly N steps instead of --epochs epochs (more or less than one pass: the "
                        "training log and report say how many epochs N steps are; default: all epochs)")
    p.add_argument("--max-length", type=int, default=64, help="token limit of queries and passages")
    p.add_argument("--train-embeddings", action="store_true", help="also train the word-embedding matrix")
    p.add_argument("--seed", type=int, default=0, help="random seed (sampling, dropout)")
    p.add_argument("--fraction", type=float, default=1.0, help="share of the training queries kept (nested, stratified by language)")
    p.add_argument("--noise", type=float, default=0.0, help="grade-noise rate: each judged pair's grade is replaced by another with this probability")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's setting)")
    p.add_argument("--precision", choices=[*PRECISIONS, *PRECISION_ALIASES], default="float32",
                   help="float32, or bfloat16 autocast mixed precision (aliases fp32, bf16)")
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between resumable checkpoints (0: at the end of each epoch)")
    p.add_argument("--run-dir", default=None,
                   help="run folder (default: the cache, runs/<base fingerprint>/<run name>-data<hash of the "
                        "training topics, qrels and passages>); a folder of another run or other data is refused")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1; not part of the run name")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``gradrel train``: print the run folder and the training report as JSON."""
    import pyterrier as pt

    from pyterrier_gradrel.datasets import GRADES, exclude_own_article, info, require_split
    from pyterrier_gradrel.training import ContrastiveTrainer, TrainConfig
    from pyterrier_gradrel.training._data import dataset_topics

    grades = GRADES
    own_article = True
    dataset_id = args.dataset.removeprefix("irds:")
    if dataset_id.startswith("gradrel/"):
        require_split(dataset_id, "train")  # the training queries and qrels are a split's
    try:
        meta = info(dataset_id)
        grades = meta.grade_scale
        own_article = exclude_own_article(dataset_id)  # the rule gradrel run applies (experiments.train_config)
    except (ImportError, AttributeError, KeyError, ValueError):
        pass
    cfg = TrainConfig(rel=args.rel, negatives=args.negatives, grades=grades, unit=args.unit, loss=args.loss,
                      grade_weights=args.grade_weights, temperature=args.temperature,
                      hard_negatives=args.hard_negatives, batch_size=args.batch_size, lr=args.lr,
                      warmup=args.warmup, epochs=args.epochs, max_steps=args.max_steps,
                      max_length=args.max_length, freeze_embeddings=not args.train_embeddings, seed=args.seed,
                      fraction=args.fraction, noise=args.noise, exclude_own_article=own_article,
                      checkpoint_every=args.checkpoint_every, threads=args.threads,
                      precision=args.precision)
    ds = pt.get_dataset(f"irds:{dataset_id}")
    trainer = ContrastiveTrainer(args.base, config=cfg, verbose=not args.quiet, device=args.device)
    # stdout holds only the JSON report: dataset_topics avoids get_topics()'s "multiple query fields" notice
    folder = trainer.train(dataset_topics(ds), ds.get_qrels(), ds.get_corpus_iter(verbose=False),
                           run_dir=args.run_dir)
    report = {k: v for k, v in (trainer.last_report or {}).items() if k != "losses"}
    print(json.dumps({"model": str(folder), **report}, indent=2))
    return 0
