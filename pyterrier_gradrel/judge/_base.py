"""What every judge backend returns, and the interface the :class:`LLMJudge` transformer drives."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pyterrier_gradrel.datasets import GRADES


class JudgeBackendError(RuntimeError):
    """The backend cannot judge at all (bad endpoint, bad key, unreachable server); nothing is guessed."""


@dataclass(frozen=True)
class Judgement:
    """One judge outcome for a (query, passage) pair.

    Attributes:
        grade: 0..3, or ``None`` when the judge gave no parseable grade (recorded as missing, never guessed).
        raw: the judge's raw answer text (``None`` when no answer arrived).
        probs: probability of each grade 0..3 (renormalised over the four grade tokens) where the
            backend exposes token probabilities, else ``None``.
        error: why ``grade`` is missing, if it is.
        transient: ``True`` if the failure was transient (timeouts, 5xx, connection errors, a 200 answer
            that is not a well-formed response) or the server refused the request (an HTTP 400 for a prompt
            beyond the model's context): such outcomes are not cached, so a later run tries again.
            A missing grade with ``transient=False`` is final: the judge answered, without a clean grade.
    """

    grade: int | None
    raw: str | None = None
    probs: tuple[float, float, float, float] | None = None
    error: str | None = None
    transient: bool = False

    def __post_init__(self) -> None:
        if self.grade is not None and self.grade not in GRADES:
            raise ValueError(f"grade must be one of {list(GRADES)} or None, got {self.grade!r}")
        if self.probs is not None:
            if len(self.probs) != len(GRADES) or not all(math.isfinite(p) and p >= 0 for p in self.probs):
                raise ValueError(f"probs must be 4 finite non-negative numbers, got {self.probs!r}")


ResultCallback = Callable[[int, Judgement], None]


@runtime_checkable
class JudgeBackend(Protocol):
    """A judge backend: grades many (query, passage) pairs.

    ``model_id`` names the judge model in cache keys and manifests (never contains secrets).
    ``judge_many`` returns one :class:`Judgement` per pair, in order, and calls ``on_result(i, judgement)``
    as each one completes (so that a cache can persist it at once).
    """

    model_id: str

    def judge_many(self, pairs: Sequence[tuple[str, str]], *,
                   on_result: ResultCallback | None = None) -> list[Judgement]: ...


def normalise_probs(mass: Sequence[float]) -> tuple[float, float, float, float] | None:
    """Renormalise non-negative masses of grades 0..3 to sum 1 (``None`` if they are all zero)."""
    total = float(sum(mass))
    if not total > 0:
        return None
    p = tuple(float(m) / total for m in mass)
    return p  # type: ignore[return-value]
