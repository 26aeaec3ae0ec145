"""Work and hardware limits for the side-by-side benchmarks: an encoder's FLOPs and one thread's matmul peak."""
from __future__ import annotations

import time
from collections.abc import Iterable


def encoder_flops(config, lengths: Iterable[int], *, padded_to: Iterable[int] | None = None) -> float:
    """Floating-point operations of one forward pass of a BERT-style encoder over texts of ``lengths`` tokens.

    Counts the multiply-adds (2 FLOPs each) of every layer's linear maps (query, key, value, output,
    the two feed-forward maps) per token, and of attention's two products (scores and weighted values),
    which grow with the square of the length. Embedding lookups, norms, activations and softmax are
    not counted: they are not matmul work.

    Args:
        config: The HF model config (``hidden_size``, ``intermediate_size``, ``num_hidden_layers``).
        lengths: Token count of each text (special tokens included): the useful work.
        padded_to: If given, the padded width each text was run at (the work actually done) instead.
    """
    h, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token = 2 * (4 * h * h + 2 * h * ff)
    widths = list(lengths) if padded_to is None else list(padded_to)
    total = 0.0
    for n in widths:
        total += n * per_token + 2 * 2 * n * n * h  # linears + (QK^T, AV)
    return float(total * layers)


def matmul_peak(dtype_name: str, *, threads: int, size: int = 1024, seconds: float = 1.0) -> float:
    """Measured GFLOP/s of ``size`` x ``size`` matrix products in ``dtype_name`` at ``threads`` torch threads.

    The best of repeated timed products over about ``seconds``: the machine's practical limit for the
    dense work an encoder does, against which :func:`encoder_flops` per second is read as a fraction.
    """
    import torch

    torch.set_num_threads(threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b  # warm-up: kernels chosen, caches filled
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9
