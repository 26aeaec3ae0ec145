"""``TrainConfig``, what decides a fine-tuning run, and the one key function that names runs.

:func:`identity_key` with :data:`RUN_VERSION` names every run of the package: a :class:`TrainConfig`'s
:meth:`~TrainConfig.key` (the trainer's run folders) and the experiment runner's run keys, which are
built from that key plus the evaluation-side material (see ``experiments._store.key_material``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyterrier_gradrel._device import PRECISIONS, canonical_precision
from pyterrier_gradrel.binarize import neg_max_for, policy_name
from pyterrier_gradrel.datasets import GRADES

if TYPE_CHECKING:
    from pyterrier_gradrel.training._losses import GradedInfoNCELoss, InfoNCELoss

__all__ = ["LOSSES", "RUN_VERSION", "SIDES", "TrainConfig", "identity_key", "schedule_note"]

LOSSES = ("infonce", "graded")
#: What is fine-tuned: ``"both"`` (one shared encoder for queries and passages, the paper's setting) or
#: ``"query"`` (passages keep the base model's vectors; only the query side learns).
SIDES = ("both", "query")
#: Bumped whenever a code change alters what a run produces (the weights a config trains to, or how a run
#: is retrieved and evaluated). Part of every key :func:`identity_key` makes, so a run of older code is
#: never returned as this code's result.
RUN_VERSION = 3


def identity_key(material: Mapping[str, object], *, length: int) -> str:
    """The hex sha256 (first ``length`` characters) of ``material`` and :data:`RUN_VERSION`.

    The one key function of the package: training run names and experiment run keys both come from it.

    Args:
        material: A JSON-able mapping of everything that decides the run.
        length: How many hex characters to keep.
    """
    payload = json.dumps({"run_version": RUN_VERSION, **material}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything that decides a fine-tuning run (and so its run name and cache key).

    Attributes:
        rel: τ, the minimum grade counted positive (for ``loss="graded"``: the smallest grade with a
            positive weight is used for sampling positives and ``rel`` is ignored).
        negatives: Negatives policy: ``"zero"``, ``"below"`` or an integer ``neg_max`` < ``rel``.
        grades: The dataset's grade scale.
        unit: Sampling unit, ``"query"`` (default) or ``"pair"``.
        loss: ``"infonce"`` or ``"graded"`` (grade-weighted multi-positive InfoNCE).
        grade_weights: grade → weight for ``loss="graded"`` (default ``2^g - 1`` for every grade ``g > 0`` of
            ``grades``). Given weights must weigh (> 0) every grade of ``grades`` from the smallest weighted
            grade up: a higher grade left out would act as a negative.
        temperature: Softmax temperature (0.05 = scale 20).
        hard_negatives: Hard negatives sampled per example.
        batch_size: Examples per step.
        lr: Peak learning rate (AdamW).
        warmup: Warm-up: a fraction of the total steps if < 1, else a number of steps (linear
            warm-up, then linear decay to 0).
        weight_decay: AdamW weight decay.
        epochs: Passes over the sampling units; ignored when ``max_steps`` is set.
        max_steps: Train exactly this many steps, overriding ``epochs`` (``None``: ``epochs`` full epochs).
            A step is one batch of ``batch_size`` units, so ``max_steps`` may be less or more than one pass
            (12 steps of 16 on 89 training queries are ~2.2 epochs); the training log and the report's
            ``schedule`` say which (see :func:`schedule_note`).
        max_length: Maximum tokens per query/passage in training.
        freeze_embeddings: Freeze the word-embedding matrix (the 250k-row matrix dominates memory).
        seed: Seed of sampling, dropout and subsets.
        fraction: Fraction of training queries kept (nested, stratified by language; a language's order is
            seeded by its position among the training set's languages, so its subset differs between training
            sets, see :mod:`pyterrier_gradrel.training._subsets`).
        noise: Grade-noise rate ``p`` (see :mod:`pyterrier_gradrel.training._subsets`; a grade replaced by 0
            stays a judged grade-0 pair: a hard negative exempt from the own-article rule).
        negative_split: Only passages of this split may be hard negatives (``None``: any).
        exclude_own_article: Unjudged hard negatives come from outside the query's article.
        checkpoint_every: Steps between checkpoints (0: only at the end of each epoch).
        threads: ``torch.set_num_threads`` during ``fit`` (``None``: leave as is).
        precision: ``"float32"`` (default) or ``"bfloat16"`` (autocast mixed precision for the encoder
            forward/backward, float32 master weights and loss; fast on CPUs with AMX/AVX512-BF16). The
            aliases ``"fp32"``/``"bf16"`` are accepted and stored canonically.
        side: ``"both"`` (default: queries and passages share the encoder being tuned) or ``"query"``
            (query-side fine-tuning: passages are scored with the base encoder's vectors, which stay fixed,
            so an index of the base model serves every fine-tuned model; the result loads as a
            :class:`~pyterrier_gradrel.models.QueryTunedEncoder`).
    """

    rel: int = 2
    negatives: str | int = "zero"
    grades: tuple[int, ...] = GRADES
    unit: str = "query"
    loss: str = "infonce"
    grade_weights: tuple[tuple[int, float], ...] | None = None
    temperature: float = 0.05
    hard_negatives: int = 1
    batch_size: int = 16
    lr: float = 2e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    epochs: int = 1
    max_steps: int | None = None
    max_length: int = 64
    freeze_embeddings: bool = True
    seed: int = 0
    fraction: float = 1.0
    noise: float = 0.0
    negative_split: str | None = "train"
    exclude_own_article: bool = True
    checkpoint_every: int = 50
    threads: int | None = None
    precision: str = "float32"
    side: str = "both"

    def __post_init__(self) -> None:
        if isinstance(self.grade_weights, Mapping):
            object.__setattr__(self, "grade_weights", tuple(sorted((int(g), float(w))
                                                                   for g, w in self.grade_weights.items())))
        object.__setattr__(self, "grades", tuple(self.grades))
        from pyterrier_gradrel.training._sampler import UNITS

        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {list(UNITS)}, got {self.unit!r}")
        object.__setattr__(self, "precision", canonical_precision(self.precision, allowed=PRECISIONS))
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {list(SIDES)}, got {self.side!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.grade_weights is not None and self.loss != "graded":
            raise ValueError(f"grade_weights only apply to loss='graded', got loss={self.loss!r}")
        neg_max_for(self.negatives, self.positive_rel, self.grades)  # validates rel, negatives, grades
        self._check_numbers()
        self.make_loss()  # validates grade weights
        self._check_weights_cover_grades()

    def _check_numbers(self) -> None:
        """Raise ``ValueError`` naming the field for any count, rate or fraction out of its range."""
        for name in ("hard_negatives", "epochs", "batch_size", "max_length", "checkpoint_every", "seed"):
            v = getattr(self, name)
            low = {"epochs": 1, "batch_size": 1, "max_length": 2}.get(name, 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"max_steps must be None or an int >= 1, got {self.max_steps!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be None or an int >= 1, got {self.threads!r}")
        if not self.lr > 0 or not self.temperature > 0 or self.warmup < 0 or self.weight_decay < 0:
            raise ValueError("lr and temperature must be > 0; warmup and weight_decay >= 0, got "
                             f"lr={self.lr}, temperature={self.temperature}, warmup={self.warmup}, "
                             f"weight_decay={self.weight_decay}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}")
        if not 0 <= self.noise <= 1:
            raise ValueError(f"noise must be in [0, 1], got {self.noise!r}")

    def _check_weights_cover_grades(self) -> None:
        """Raise ``ValueError`` when explicit grade weights leave a grade of the scale above a weighted one at 0."""
        if self.loss != "graded" or self.grade_weights is None:
            return
        weights = dict(self.grade_weights)
        lowest = min(g for g, w in weights.items() if w > 0)
        unweighted = [g for g in self.grades if g >= lowest and not weights.get(g, 0.0) > 0]
        if unweighted:
            raise ValueError(f"grade_weights {weights} give no weight > 0 to grade(s) {unweighted} of the scale "
                             f"{list(self.grades)}, above the weighted grade {lowest}: such a grade would act as a "
                             f"negative; weigh every grade from {lowest} up")

    @property
    def weights(self) -> dict[int, float] | None:
        """The graded loss's weights as a dict (``None`` for the default)."""
        return dict(self.grade_weights) if self.grade_weights is not None else None

    @property
    def loss_weights(self) -> dict[int, float]:
        """The graded loss's weights in effect: :attr:`weights`, or by default ``2^g - 1`` for every grade
        ``g > 0`` of :attr:`grades` (``{1: 1.0, 2: 3.0, 3: 7.0}`` on 0..3)."""
        from pyterrier_gradrel.training._losses import default_weights

        return self.weights if self.weights is not None else default_weights(self.grades)

    @property
    def positive_rel(self) -> int:
        """The τ used to sample positives (``rel``, or the graded loss's smallest positive-weight grade)."""
        if self.loss == "graded":
            from pyterrier_gradrel.training._losses import GradedInfoNCELoss

            return GradedInfoNCELoss(weights=self.loss_weights).min_positive_grade
        return self.rel

    def make_loss(self) -> InfoNCELoss | GradedInfoNCELoss:
        """The loss module of this config."""
        from pyterrier_gradrel.training._losses import GradedInfoNCELoss, InfoNCELoss

        if self.loss == "graded":
            return GradedInfoNCELoss(weights=self.loss_weights, temperature=self.temperature)
        return InfoNCELoss(temperature=self.temperature)

    def to_dict(self) -> dict[str, object]:
        """A JSON-able dict of the config (the material of :meth:`key`)."""
        d = dataclasses.asdict(self)
        d["grades"] = list(self.grades)
        d["grade_weights"] = [list(x) for x in self.grade_weights] if self.grade_weights is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> TrainConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["grades"] = tuple(d.get("grades", GRADES))
        if d.get("grade_weights") is not None:
            d["grade_weights"] = tuple((int(g), float(w)) for g, w in d["grade_weights"])
        return cls(**d)

    @classmethod
    def field_descriptions(cls) -> dict[str, str]:
        """The fields as name → one-line description, read from the ``Attributes:`` section of this class's
        docstring (the experiment config's ``training:`` keys are documented with them)."""
        out: dict[str, str] = {}
        in_section, current = False, None
        for line in (inspect.getdoc(cls) or "").splitlines():
            if line.strip() == "Attributes:":
                in_section = True
            elif in_section and line and not line.startswith(" "):  # the next section
                break
            elif in_section and (match := re.match(r"^ {4}(\w+)(?: \([^)]*\))?: ?(.*)$", line)):
                current = match.group(1)
                out[current] = match.group(2).strip()
            elif in_section and current and line.strip():
                out[current] += " " + line.strip()
        return out

    def total_steps(self, steps_per_epoch: int) -> int:
        """The steps a run trains: ``max_steps`` when set, else ``epochs`` passes of ``steps_per_epoch`` batches."""
        return self.max_steps if self.max_steps is not None else self.epochs * steps_per_epoch

    def key(self) -> str:
        """8 hex characters naming the whole config (:func:`identity_key` of :meth:`to_dict`)."""
        return identity_key(self.to_dict(), length=8)

    def run_name(self) -> str:
        """Run name carrying τ, negatives policy, sampling unit, loss, seed, fraction, noise (+ config hash)."""
        loss = self.loss if self.loss == "infonce" else "graded" + "-".join(
            f"{g}x{_fmt(w)}" for g, w in sorted(self.loss_weights.items()))
        rel = f"rel{self.rel}" if self.loss == "infonce" else f"rel{self.positive_rel}"
        side = "" if self.side == "both" else f"-{self.side}side"
        return (f"{rel}-neg{policy_name(self.negatives)}-{self.unit}-{loss}{side}-s{self.seed}"
                f"-f{_fmt(self.fraction)}-p{_fmt(self.noise)}-{self.key()}")


def schedule_note(cfg: TrainConfig, units: int) -> str:
    """How long a run trains, in words: ``"max_steps=12 stops after 12 steps = 2.2 epochs of 89 units
    (batch 16; epochs=1 is ignored)"`` or ``"1 epoch of 89 units = 6 steps (batch 16)"``.

    Args:
        cfg: The training config.
        units: Sampling units per epoch (queries, or positive pairs with ``unit="pair"``).
    """
    per_epoch = -(-units // cfg.batch_size)
    if cfg.max_steps is None:
        return (f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''} of {units} {cfg.unit} units = "
                f"{cfg.epochs * per_epoch} steps (batch {cfg.batch_size})")
    epochs = cfg.max_steps * cfg.batch_size / units if units else float("nan")
    return (f"max_steps={cfg.max_steps} stops after {cfg.max_steps} steps = {epochs:.1f} epochs of {units} "
            f"{cfg.unit} units (batch {cfg.batch_size}; epochs={cfg.epochs} is ignored)")
