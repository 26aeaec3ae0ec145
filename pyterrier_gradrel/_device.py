"""Where models run: ``device="auto"`` (CUDA when available, else CPU) and what follows from the device.

One resolver for the trainer, the encoders, the CLI and experiment configs. A device says *where* a
model runs, not *what* it computes, so it is never part of a run key or a cache key. Precision is part of
them: an encoder's ``precision="auto"`` resolves per device (``models._encoder.resolve_precision``: bf16 on
bf16-capable CUDA) into a value its fingerprint carries; training precision is an explicit
``TrainConfig.precision`` because it names the weights a run trains to. Both speak one vocabulary,
:data:`PRECISIONS` (torch's dtype names), and accept the short spellings of :data:`PRECISION_ALIASES`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: ``device`` values the CLI offers besides explicit torch devices such as ``cuda:1``
DEVICE_CHOICES = ("auto", "cpu", "cuda")
#: texts per encoder forward pass by device type: a GPU is only busy with large batches
ENCODE_BATCH_SIZES = {"cpu": 32, "cuda": 128}
#: Numeric precisions of encoders and training, by torch's dtype names
PRECISIONS = ("float32", "bfloat16")
#: Other spellings accepted for :data:`PRECISIONS` (and the ones training run names were first hashed with)
PRECISION_ALIASES = {"fp32": "float32", "bf16": "bfloat16"}


def canonical_precision(precision: str, *, allowed: tuple[str, ...] = PRECISIONS) -> str:
    """``precision`` in the canonical spelling: an alias (``"fp32"``, ``"bf16"``) becomes its :data:`PRECISIONS` name.

    Args:
        precision: a value of ``allowed`` or an alias of one.
        allowed: the canonical values the caller accepts (e.g. ``("auto", *PRECISIONS)`` for inference).

    Raises:
        ValueError: naming the allowed values and aliases.
    """
    value = PRECISION_ALIASES.get(precision, precision) if isinstance(precision, str) else precision
    if value not in allowed:
        aliases = ", ".join(f"{a!r}" for a, c in PRECISION_ALIASES.items() if c in allowed)
        raise ValueError(f"precision must be one of {list(allowed)} (or the aliases {aliases}), got {precision!r}")
    return value


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The torch device ``device`` stands for.

    Args:
        device: ``"auto"`` or ``None`` (CUDA when ``torch.cuda.is_available()``, else CPU), or a torch
            device / name such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

    Raises:
        ValueError: a CUDA device is asked for where torch sees none.
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch device such as 'cuda:1', "
                         f"got {device!r}") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but torch {torch.__version__} sees no CUDA device "
                         f"(torch.cuda.is_available() is False); use device='auto' or 'cpu'")
    return resolved


def bf16_capable(device: str | torch.device) -> bool:
    """Whether ``device`` is a CUDA device with native bf16 (where an encoder's ``precision="auto"`` is bf16).

    Native means compute capability 8.0 or higher (Ampere on), read for ``device`` itself (``"cuda"`` without an
    index: the current device). ``torch.cuda.is_bf16_supported()`` is not used: it also answers ``True`` for
    GPUs that only emulate bf16 (7.x: V100, T4), and it asks about the current device, not ``device``.
    """
    import torch

    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    return tuple(torch.cuda.get_device_capability(device)) >= (8, 0)


def encode_batch_size(device: str | torch.device | Any) -> int:
    """Texts per encoder forward pass on ``device``: 32 on CPU, 128 on CUDA."""
    import torch

    return ENCODE_BATCH_SIZES.get(torch.device(device).type, ENCODE_BATCH_SIZES["cpu"])


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` inside the block, then restored; ``None`` leaves torch's setting.

    The thread count changes float reductions, so numbers are bit-identical across runs (and across the
    experiment executors: a condition runs under its config's ``training.threads``) only when it is the same.
    """
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
