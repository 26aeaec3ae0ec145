"""Fine-tune mE5-small on XQuAD-R at several τ and compare test nDCG@10 with the zero-shot model.

Ranking is exact cosine (numpy) of the test queries against the test-language pool (all sentences
of the document language); evaluation with ir_measures on the graded test qrels: ``nDCG@10`` (gain =
grade) and, in a separate call, ``nDCG@10`` with gains ``2^g - 1`` (the pilot's measure).

Example (about 3 minutes per run on 2 threads)::

    python benchmarks/finetune_xquad.py --lang th --rel 2 3 --seeds 0 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def evaluate(encoder, lang_pair: str) -> dict[str, float]:
    """Graded nDCG@10 of exact cosine ranking on ``gradrel/xquad-r/<lang_pair>/test``."""
    import ir_measures
    import numpy as np
    import pyterrier as pt

    ds = pt.get_dataset(f"irds:gradrel/xquad-r/{lang_pair}/test")
    topics = ds.get_topics()
    qcol = "query" if "query" in topics.columns else "text"
    docs = list(ds.get_corpus_iter(verbose=False))
    dvec = encoder.encode_docs([d["text"] for d in docs])
    qvec = encoder.encode_queries(topics[qcol].tolist())
    scores = qvec @ dvec.T
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {str(q): {docs[j]["docno"]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(topics["qid"])}
    qrels = ds.get_qrels()
    qrels_d: dict[str, dict[str, int]] = {}
    for q, d, g in zip(qrels["qid"], qrels["docno"], qrels["label"], strict=True):
        qrels_d.setdefault(str(q), {})[str(d)] = int(g)
    lin = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels_d, run)
    exp = ir_measures.calc_aggregate([ir_measures.nDCG(gains={0: 0, 1: 1, 2: 3, 3: 7}) @ 10], qrels_d, run)
    return {"nDCG@10": round(float(next(iter(lin.values()))), 4),
            "nDCG@10(2^g-1)": round(float(next(iter(exp.values()))), 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lang", default="th", help="training/test language (monolingual)")
    p.add_argument("--eval", nargs="*", default=None, help="test pairs, e.g. th th-en (default: the --lang)")
    p.add_argument("--rel", type=int, nargs="+", default=[2, 3])
    p.add_argument("--negatives", default="zero")
    p.add_argument("--loss", default="infonce", choices=["infonce", "graded"])
    p.add_argument("--unit", default="query", choices=["query", "pair"])
    p.add_argument("--hard-negatives", type=int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-max-length", type=int, default=128)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)

    import pyterrier as pt
    import torch

    import pyterrier_gradrel  # noqa: F401  (registers the datasets)
    from pyterrier_gradrel.models import load_encoder
    from pyterrier_gradrel.training import ContrastiveTrainer, TrainConfig

    torch.set_num_threads(args.threads)
    pairs = args.eval or [args.lang]
    ds = pt.get_dataset(f"irds:gradrel/xquad-r/{args.lang}/train")
    topics, qrels, corpus = ds.get_topics(), ds.get_qrels(), list(ds.get_corpus_iter(verbose=False))
    results = []
    t = time.perf_counter()
    zero = load_encoder("multilingual-e5-small", max_length=args.eval_max_length, batch_size=64)
    for pair in pairs:
        results.append({"model": "zero-shot", "eval": pair, **evaluate(zero, pair)})
        print(json.dumps(results[-1]), flush=True)
    print(f"zero-shot eval: {time.perf_counter() - t:.1f}s", file=sys.stderr)
    negatives = args.negatives if args.negatives in ("zero", "below") else int(args.negatives)
    for seed in args.seeds:
        for rel in args.rel:
            cfg = TrainConfig(rel=rel, negatives=negatives, loss=args.loss, unit=args.unit, seed=seed,
                              hard_negatives=args.hard_negatives, batch_size=16, lr=2e-5, epochs=1,
                              max_length=64, threads=args.threads)
            trainer = ContrastiveTrainer("multilingual-e5-small", config=cfg)
            t = time.perf_counter()
            folder = trainer.train(topics, qrels, corpus)
            train_s = time.perf_counter() - t
            enc = load_encoder(folder, max_length=args.eval_max_length, batch_size=64)
            rep = trainer.last_report
            for pair in pairs:
                results.append({"model": cfg.run_name(), "rel": rel, "seed": seed, "eval": pair,
                                **evaluate(enc, pair), "train_s": round(train_s, 1),
                                "pairs_per_s": rep.get("pairs_per_s"), "steps": rep["steps"],
                                "queries_kept": rep["data"]["queries_kept"]})
                print(json.dumps(results[-1]), flush=True)
    if args.out:
        from pyterrier_gradrel._atomic import write_text

        write_text(Path(args.out), json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
