"""Pool encoding speed: bulk ``encode_docs`` vs the pool path of ``retrieval.dense()`` vs pyterrier-dr's indexer.

Every fine-tuned condition and every benchmark task encodes a passage pool. Three ways, same encoder (the
converted multilingual-e5-small, float32), same pool (XQuAD-R en: 1,180 sentences), same torch threads:

* ``bulk``: ``E5BiEncoder.encode_docs(all texts)``, the encoder's own speed (it sorts by length, so batches pad little);
* ``dense_index``: :func:`pyterrier_gradrel.retrieval._dense.dense_index` into a fresh cache folder (what
  ``dense()``/``gradrel evaluate``/the runner do), FlexIndex writing included;
* ``ptdr-indexer``: ``encoder.doc_encoder() >> FlexIndex(path).indexer()``, pyterrier-dr's stock pipeline, which
  hands the encoder chunks in corpus order (the pool path before it was changed).

Each is timed ``--repeats`` times and the fastest pass counts (other processes only ever slow a pass down).
Prints passages/s and the ratio to ``bulk`` (goal for ``dense_index``: >= 0.90).

    python benchmarks/bench_pool_encode.py --threads 1 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="gradrel/xquad-r/en/test", help="ir_datasets id whose pool is encoded")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per path; the fastest counts")
    p.add_argument("--limit", type=int, default=None, help="only the first N passages")
    args = p.parse_args(argv)
    if min(args.threads, args.repeats) < 1:
        raise SystemExit("--threads and --repeats must be positive")

    import torch

    torch.set_num_threads(args.threads)
    import ir_datasets
    import numpy as np
    from pyterrier_dr import FlexIndex

    import pyterrier_gradrel  # noqa: F401  (registers the gradrel datasets)
    from pyterrier_gradrel.models import load_encoder
    from pyterrier_gradrel.retrieval import _dense

    docs = [{"docno": d.doc_id, "text": d.text} for d in ir_datasets.load(args.dataset).docs_iter()]
    docs = docs[:args.limit] if args.limit else docs
    texts = [d["text"] for d in docs]
    enc = load_encoder("multilingual-e5-small", device="cpu", precision="float32", num_threads=args.threads)
    enc.encode_docs(texts[:32])  # warm-up

    def bulk(tmp: Path) -> None:
        enc.encode_docs(texts)

    def dense_index(tmp: Path) -> None:
        os.environ["GRADREL_HOME"] = str(tmp)
        _dense.dense_index(enc, docs, corpus=f"bench.{tmp.name}")

    def ptdr_indexer(tmp: Path) -> None:
        (enc.doc_encoder() >> FlexIndex(str(tmp / "ptdr.flex"), verbose=False).indexer()).index(iter(docs))

    paths = {"bulk": bulk, "dense_index": dense_index, "ptdr-indexer": ptdr_indexer}
    best: dict[str, float] = {}
    home = os.environ.get("GRADREL_HOME")
    try:
        for name, fn in paths.items():
            times = []
            for _ in range(args.repeats):
                tmp = Path(tempfile.mkdtemp(prefix="bench-pool-"))
                try:
                    start = time.perf_counter()
                    fn(tmp)
                    times.append(time.perf_counter() - start)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            best[name] = min(times)
            print(f"{name:<13} {len(texts) / best[name]:8.1f} passages/s  fastest {best[name]:7.2f} s  "
                  f"all {[round(t, 2) for t in times]}", flush=True)
    finally:
        if home is None:
            os.environ.pop("GRADREL_HOME", None)
        else:
            os.environ["GRADREL_HOME"] = home
    lengths = np.array([len(t) for t in texts])
    print(f"pool {args.dataset}: {len(texts)} passages ({lengths.mean():.0f} characters on average), "
          f"torch threads {torch.get_num_threads()}, batch size {enc.batch_size}, precision {enc.precision}")
    for name in ("dense_index", "ptdr-indexer"):
        print(f"{name} / bulk: {best['bulk'] / best[name]:.2f}" + ("  (goal >= 0.90)" if name == "dense_index" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
