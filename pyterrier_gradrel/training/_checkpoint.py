"""Training checkpoints: saved atomically, resumed without unpickling anything but tensors and plain values."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyterrier_gradrel import _atomic

if TYPE_CHECKING:
    import torch

CHECKPOINT = "checkpoint.pt"


@dataclass
class State:
    """Where a training run stands: steps done, the loss of each, the training seconds they took and the grades of
    the positives they drew.

    ``seconds`` sums every session's training time up to ``step``; ``None`` when a session's time is unknown (a
    checkpoint written before checkpoints recorded it). ``positive_grades`` counts the drawn positives per grade
    over every step up to ``step``; ``None`` when an earlier session's count is unknown (likewise).
    """

    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float | None = 0.0
    positive_grades: dict[int, int] | None = field(default_factory=dict)


def load_checkpoint(path: Path) -> dict:
    """Read a training checkpoint without unpickling anything but tensors and plain values."""
    import pickle

    import torch

    def fail(why: str) -> ValueError:
        return ValueError(f"checkpoint {path} cannot be resumed: {why}. Delete it to restart this run from "
                          f"step 0, or delete the run folder {path.parent}")

    try:
        ckpt = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise fail("it holds Python objects other than tensors and plain values, and checkpoints are never "
                   f"unpickled ({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError) as e:
        raise fail(f"it is truncated or corrupted ({type(e).__name__}: {str(e)[:200]})") from None
    expected = {"model": dict, "optimizer": dict, "scheduler": dict, "rng": torch.Tensor, "step": int, "losses": list}
    if not isinstance(ckpt, dict):
        raise fail(f"expected a dict with keys {sorted(expected)}, got {type(ckpt).__name__}")
    for key, kind in expected.items():
        if not isinstance(ckpt.get(key), kind):
            raise fail(f"expected {key!r} to be a {kind.__name__}, got {type(ckpt.get(key)).__name__}")
    if not isinstance(ckpt.get("seconds"), (float, int, type(None))):
        raise fail(f"expected 'seconds' to be a number or absent, got {type(ckpt['seconds']).__name__}")
    counts = ckpt.get("positive_grades")
    if counts is not None and not (isinstance(counts, dict) and all(
            type(g) is int and type(n) is int for g, n in counts.items())):
        raise fail(f"expected 'positive_grades' to be a dict of int grade -> int count or absent, got {counts!r}"[:300])
    return ckpt


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, state: State) -> None:
    """Write the trainable weights, optimizer, scheduler, RNG states, step, losses, seconds and drawn positive
    grades atomically."""
    import torch

    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    sd = {k: v for k, v in model.state_dict().items() if k not in frozen}  # the frozen matrix never changes
    with _atomic.atomic_path(path) as tmp:
        torch.save({"model": sd, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                    "step": state.step, "losses": state.losses, "seconds": state.seconds,
                    "positive_grades": None if state.positive_grades is None else
                    {int(g): int(n) for g, n in sorted(state.positive_grades.items())}}, tmp)


def resume_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      scheduler: torch.optim.lr_scheduler.LRScheduler) -> State:
    """Load the checkpoint at ``path`` into ``model``, ``optimizer``, ``scheduler`` and torch's RNG; its state.

    A checkpoint written before checkpoints counted the drawn positives gives ``positive_grades=None``.
    """
    import torch

    ckpt = load_checkpoint(path)
    result = model.load_state_dict(ckpt["model"], strict=False)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    if result.unexpected_keys or set(result.missing_keys) - frozen:
        raise ValueError(f"checkpoint {path} does not fit the model (unexpected "
                         f"{result.unexpected_keys[:3]}, missing {sorted(set(result.missing_keys) - frozen)[:3]})")
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"])
    if ckpt.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    counts = ckpt.get("positive_grades")
    return State(step=ckpt["step"], losses=list(ckpt["losses"]), seconds=ckpt.get("seconds"),
                 positive_grades=None if counts is None else dict(counts))
