"""Training throughput: our ContrastiveTrainer vs sentence-transformers' MultipleNegativesRankingLoss.

Both train the same model (the converted multilingual-e5-small by default) on the same XQuAD-R
(query, positive) pairs (per-query sampling at τ=2, the prefixes ``query: ``/``passage: `` applied),
with the same batch size, max length, learning rate and warm-up, thread count, and the same frozen
layers (the word-embedding matrix). Each side runs in its own fresh process, one after the other,
so peak memory (the process's max RSS: libraries, model, training) is measured per trainer.
Throughput counts training steps only (loading and saving excluded): (query, positive) pairs per second over ``--steps`` steps after ``--skip``
warm-up steps. Both precisions run in one call (``--precisions``; bf16 only where the CPU multiplies bf16
natively): float32, and bf16 mixed precision with float32 master weights on both sides (our
``TrainConfig(precision="bfloat16")``, the HF Trainer's ``bf16=True``: autocast). Prints a table, the ratio
ours / sentence-transformers at each precision, our bf16 / float32 step speed, and the fraction of the
measured matmul peak each run reaches (training's matmul work taken as three times the forward pass's,
``_flops.encoder_flops``, over the unpadded token counts). The last lines are ``peak fraction float32: X.XX``
and, where bf16 is native, ``peak fraction bfloat16: X.XX`` (ours).

    python benchmarks/bench_train.py --threads 1 --steps 12
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import PeakRSS  # noqa: E402


def _data(lang: str, rel: int, n: int, seed: int):
    """The first ``n`` training examples (query text, positive text) of our sampler's epoch 0."""
    import pyterrier as pt

    import pyterrier_gradrel  # noqa: F401
    from pyterrier_gradrel.binarize import binarize
    from pyterrier_gradrel.training import PairSampler
    from pyterrier_gradrel.training._data import corpus_frame as _frame
    from pyterrier_gradrel.training._data import topics_frame as _topics

    ds = pt.get_dataset(f"irds:gradrel/xquad-r/{lang}/train")
    topics, qrels, docs = _topics(ds.get_topics()), ds.get_qrels(), _frame(ds.get_corpus_iter(verbose=False))
    b = binarize(qrels, rel=rel, qids=topics["qid"])
    sampler = PairSampler(b, topics, docs, batch_size=16, hard_negatives=0, seed=seed)
    qtext = dict(zip(topics["qid"], topics["query"], strict=True))
    exs = [ex for batch in sampler.epoch(0) for ex in batch][:n]
    return topics, qrels, docs, [(qtext[ex.qid], sampler.text[ex.positive]) for ex in exs]


def _worker_ours(args) -> dict:
    import torch

    from pyterrier_gradrel.training import ContrastiveTrainer, TrainConfig

    torch.set_num_threads(args.threads)
    topics, qrels, docs, _ = _data(args.lang, args.rel, 1, args.seed)
    cfg = TrainConfig(rel=args.rel, hard_negatives=0, batch_size=args.batch_size, lr=2e-5, warmup=0.1,
                      max_steps=args.skip + args.steps, max_length=args.max_length, seed=args.seed,
                      checkpoint_every=0, threads=args.threads, precision=args.precision)
    trainer = ContrastiveTrainer(args.model, config=cfg, verbose=False)
    with tempfile.TemporaryDirectory() as run_dir, PeakRSS() as mem:
        trainer.train(topics, qrels, docs, run_dir=run_dir)
    elapsed = sum(trainer.last_report["step_seconds"][args.skip:])  # the timed steps of the training loop
    n = args.steps * args.batch_size
    return {"trainer": "ours (ContrastiveTrainer)", "pairs": n, "seconds": elapsed, "pairs_per_s": n / elapsed,
            "rss_before_mib": mem.start, "peak_rss_mib": mem.peak,
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _worker_st(args) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers import TrainerCallback

    torch.set_num_threads(args.threads)
    total = args.skip + args.steps
    *_, pairs = _data(args.lang, args.rel, total * args.batch_size, args.seed)
    from pyterrier_gradrel.models import resolve_model

    st = SentenceTransformer(str(resolve_model(args.model).path), device="cpu")
    st.max_seq_length = args.max_length
    st[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    train = Dataset.from_dict({"anchor": ["query: " + q for q, _ in pairs],
                               "positive": ["passage: " + d for _, d in pairs]})
    loss = MultipleNegativesRankingLoss(st, scale=20.0)  # = temperature 0.05
    times: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if state.global_step == args.skip:
                times["start"] = time.perf_counter()
            if state.global_step == total:
                times["end"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        targs = SentenceTransformerTrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, learning_rate=2e-5, warmup_ratio=0.1,
            max_steps=total, save_strategy="no", report_to="none", logging_strategy="no", seed=args.seed,
            dataloader_num_workers=0, use_cpu=True, disable_tqdm=True, bf16=args.precision == "bf16")
        trainer = SentenceTransformerTrainer(model=st, args=targs, train_dataset=train, loss=loss,
                                             callbacks=[Clock()])
        with PeakRSS() as mem:
            trainer.train()
    elapsed = times["end"] - times["start"]
    n = args.steps * args.batch_size
    return {"trainer": "sentence-transformers MNRL", "pairs": n, "seconds": elapsed, "pairs_per_s": n / elapsed,
            "rss_before_mib": mem.start, "peak_rss_mib": mem.peak,
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="multilingual-e5-small")
    p.add_argument("--lang", default="th")
    p.add_argument("--rel", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=12, help="timed steps")
    p.add_argument("--skip", type=int, default=2, help="untimed warm-up steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precisions", default=None,
                   help="comma-separated of fp32, bf16 (default: fp32, and bf16 where the CPU has native bf16)")
    p.add_argument("--precision", choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    p.add_argument("--order", default="st,ours", help="run order of the two workers")
    p.add_argument("--repeats", type=int, default=1, help="alternating runs per trainer (median reported)")
    p.add_argument("--worker", choices=["ours", "st"], help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.worker:
        res = (_worker_ours if args.worker == "ours" else _worker_st)(args)
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    from bench_encode import native_bf16_cpu

    precisions = (args.precisions.split(",") if args.precisions
                  else ["fp32", *(["bf16"] if native_bf16_cpu() else [])])
    bad = sorted(set(precisions) - {"fp32", "bf16"})
    if bad:
        raise SystemExit(f"--precisions must name fp32 and/or bf16, got {bad}")
    runs: dict[tuple[str, str], list[dict]] = {}
    base = [a for a in (argv if argv is not None else sys.argv[1:])]
    for precision in precisions:
        for _ in range(args.repeats):  # alternate the workers so that background load hits both alike
            for name in args.order.split(","):
                proc = subprocess.run([sys.executable, __file__, *base, "--worker", name, "--precision", precision],
                                      capture_output=True, text=True,
                                      env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"worker {name} ({precision}) failed (exit {proc.returncode})")
                runs.setdefault((precision, name), []).append(json.loads(lines[-1][7:]))
                print(f"{name} {precision}: {runs[precision, name][-1]['pairs_per_s']:.2f} pairs/s", file=sys.stderr,
                      flush=True)
    results = {key: {**rs[0], "pairs_per_s": statistics.median(r["pairs_per_s"] for r in rs),
                     "pairs_per_s_all": [round(r["pairs_per_s"], 3) for r in rs],
                     "maxrss_mib": max(r["maxrss_mib"] for r in rs)} for key, rs in runs.items()}
    from _flops import encoder_flops, matmul_peak
    from transformers import AutoConfig, AutoTokenizer

    from pyterrier_gradrel.models import resolve_model

    folder = str(resolve_model(args.model).path)
    *_, pairs = _data(args.lang, args.rel, args.batch_size * 8, args.seed)  # 8 batches: the average step
    tok = AutoTokenizer.from_pretrained(folder)
    lengths = [len(x) for x in tok([f"query: {q}" for q, _ in pairs] + [f"passage: {d}" for _, d in pairs],
                                   truncation=True, max_length=args.max_length)["input_ids"]]
    flop_per_pair = 3 * encoder_flops(AutoConfig.from_pretrained(folder), lengths) / len(pairs)
    peaks = {p: matmul_peak({"fp32": "float32", "bf16": "bfloat16"}[p], threads=args.threads) for p in precisions}
    print(f"model={args.model} lang={args.lang} batch={args.batch_size} max_length={args.max_length} "
          f"threads={args.threads} steps={args.steps} (+{args.skip} warm-up) repeats={args.repeats} "
          f"frozen=word embeddings; {flop_per_pair / 1e9:.2f} GFLOP of matmul work per pair; matmul peak "
          + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in peaks.items())
          + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'precision':<10} {'trainer':34s} {'pairs/s (median)':>17s} {'GFLOP/s':>8s} {'peak':>5s} {'all runs':>20s} "
          f"{'peak RSS MiB':>13s}")
    for (precision, _), r in results.items():
        r["peak_fraction"] = r["pairs_per_s"] * flop_per_pair / 1e9 / peaks[precision]
        print(f"{precision:<10} {r['trainer']:34s} {r['pairs_per_s']:17.2f} {r['pairs_per_s'] * flop_per_pair / 1e9:8.0f} "
              f"{r['peak_fraction']:5.2f} {str(r['pairs_per_s_all']):>20s} {r['maxrss_mib']:13.0f}")
    ratios = {}
    for precision in precisions:
        ours, st = results[precision, "ours"], results[precision, "st"]
        ratios[precision] = ours["pairs_per_s"] / st["pairs_per_s"]
        print(f"ratio ours / sentence-transformers, {precision}: {ratios[precision]:.3f} (pairs/s); peak RSS ratio "
              f"{ours['maxrss_mib'] / st['maxrss_mib']:.3f}")
    if len(precisions) == 2:
        print(f"ours bf16 / fp32 step speed: "
              f"{results['bf16', 'ours']['pairs_per_s'] / results['fp32', 'ours']['pairs_per_s']:.2f}x")
    for precision in precisions:
        name = {"fp32": "float32", "bf16": "bfloat16"}[precision]
        print(f"peak fraction {name}: {results[precision, 'ours']['peak_fraction']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "ratios": ratios,
                                               "results": {f"{p}/{n}": r for (p, n), r in results.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
