"""The plan of an experiment: its conditions, each fine-tuned one carrying the trainer's ``TrainConfig``.

:func:`plan` turns a config into :class:`Condition` objects: the shared baselines, then one fine-tuned
condition per training group × variant × seed × fraction × noise rate. A fine-tuned condition carries its
τ (an int; ``None`` for the graded loss), its loss and the :class:`~pyterrier_gradrel.training.TrainConfig`
the trainer runs, whose :meth:`~pyterrier_gradrel.training.TrainConfig.key` is part of the run key.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pyterrier_gradrel.datasets import info
from pyterrier_gradrel.experiments._scenarios import Scenario, Target, group_targets, scenario_datasets
from pyterrier_gradrel.training._config import TrainConfig

__all__ = ["GRADED", "Condition", "Variant", "plan", "train_config"]

GRADED = "graded"


@dataclass(frozen=True)
class Variant:
    """One fine-tuning variant: InfoNCE with positives at grade >= ``tau``, or the graded loss (``tau=None``).

    τ stays an int from the config to the loss; :attr:`label` (``"tau=2"``, ``"graded"``) names a variant in
    tables and files and is never read back: the per-query frame carries ``tau`` and ``loss`` as typed columns.

    Attributes:
        tau: the binarisation threshold τ, or ``None`` for the graded loss.
    """

    tau: int | None

    @property
    def loss(self) -> str:
        """The trainer's loss: ``"infonce"`` (binarised at τ) or ``"graded"``."""
        return GRADED if self.tau is None else "infonce"

    @property
    def label(self) -> str:
        """How the variant is written to files: ``"tau=<τ>"`` or ``"graded"``."""
        return GRADED if self.tau is None else f"tau={self.tau}"

    @property
    def display(self) -> str:
        """How reports name the variant: ``"τ=<τ>"`` or ``"graded loss"``."""
        return "graded loss" if self.tau is None else f"τ={self.tau}"


class _Calibration(Protocol):
    @property
    def enabled(self) -> bool: ...


class PlanConfig(Protocol):
    """What :func:`plan` reads of an experiment config (``experiments._config.ExperimentConfig`` validates it and
    keeps its plan)."""

    @property
    def scenarios(self) -> Sequence[Scenario]: ...
    @property
    def hyperparameters(self) -> Mapping[str, object]: ...
    @property
    def variants(self) -> Sequence[Variant]: ...
    @property
    def seeds(self) -> Sequence[int]: ...
    @property
    def fractions(self) -> Sequence[float]: ...
    @property
    def noise_rates(self) -> Sequence[float]: ...
    @property
    def baselines(self) -> Sequence[str]: ...
    @property
    def calibration(self) -> _Calibration: ...


@dataclass(frozen=True)
class Condition:
    """One unit of work for the runner: a baseline evaluated on one dataset (shared by every scenario that tests on
    it), or a model fine-tuned with one variant, seed, training fraction and grade-noise rate, evaluated on its
    scenario's targets (test, and dev when calibrating).

    Attributes:
        scenario: the scenario name (``monolingual-xquad-r``), or ``""`` for a shared baseline.
        system: ``fine-tuned`` or a baseline name.
        train: training dataset ids (empty for baselines).
        targets: evaluated datasets (test, and dev when calibrating).
        seed: training seed (0 for baselines).
        fraction: fraction of training queries (1.0 for baselines).
        noise: grade-noise rate (0.0 for baselines).
        tau: the binarisation threshold τ; ``None`` for the graded loss and for baselines.
        loss: ``"infonce"`` (binarised at τ), ``"graded"``, or ``None`` for baselines.
        train_config: the trainer's config of a fine-tuned condition (``None`` for baselines).
    """

    scenario: str
    system: str
    train: tuple[str, ...]
    targets: tuple[Target, ...]
    seed: int = 0
    fraction: float = 1.0
    noise: float = 0.0
    tau: int | None = None
    loss: str | None = None
    train_config: TrainConfig | None = None

    @property
    def fine_tuned(self) -> bool:
        """True for a fine-tuned system."""
        return self.system == "fine-tuned"

    @property
    def variant(self) -> str:
        """The variant's label as written to files: ``tau=<τ>``, ``graded``, or ``""`` for baselines."""
        return Variant(tau=self.tau).label if self.fine_tuned else ""

    def describe(self) -> str:
        """A one-line description for progress bars and logs."""
        if not self.fine_tuned:
            return f"{self.system} on {', '.join(t.label + '/' + t.split for t in self.targets)}"
        return (f"{self.scenario}: train {'+'.join(d.split('/')[2] for d in self.train)} {self.variant} "
                f"seed={self.seed} frac={self.fraction:g} noise={self.noise:g}")

    def to_dict(self) -> dict[str, object]:
        """A JSON-able dict of the condition (``condition.json``), the variant's label included."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "train_config"}
        d["targets"] = [dataclasses.asdict(t) for t in self.targets]
        d["train"] = list(self.train)
        d["variant"] = self.variant
        d["train_config"] = self.train_config.to_dict() if self.train_config is not None else None
        return d


def train_config(cfg: PlanConfig, train: tuple[str, ...], variant: Variant, *, seed: int, fraction: float,
                 noise: float) -> TrainConfig:
    """The trainer's ``TrainConfig`` of one fine-tuned model.

    The config's ``training:`` hyper-parameters, plus what the sweep sets: ``seed``, ``fraction``, ``noise``,
    the training datasets' ``grades`` and either ``loss="infonce", rel=τ`` or ``loss="graded"`` (grade-weighted
    multi-positive InfoNCE with the trainer's default weights 2^g - 1), and, unless ``training:`` sets it to true or
    false (null leaves it unset), what the training datasets ask for as ``exclude_own_article``
    (``datasets.exclude_own_article``: True for structure-derived grades, False for judged ones), the rule
    ``gradrel train`` applies to the same data.

    Raises:
        ValueError: the trainer refuses the parameters (e.g. ``batch_size: 0``); the message names the model
            (training datasets, variant, seed, fraction, noise).
    """
    params: dict[str, object] = dict(cfg.hyperparameters)
    params.update(seed=seed, fraction=fraction, noise=noise, grades=info(train[0]).grade_scale,
                  loss=variant.loss)
    if params.get("exclude_own_article") is None:
        from pyterrier_gradrel.datasets import exclude_own_article

        params["exclude_own_article"] = exclude_own_article(train)
    if variant.tau is not None:
        params["rel"] = variant.tau
    try:
        return TrainConfig(**params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"training: {exc} (in the trainer's config for train {'+'.join(train)} {variant.label} "
                         f"seed={seed} frac={fraction:g} noise={noise:g})") from None


def plan(cfg: PlanConfig) -> list[Condition]:
    """All conditions of an experiment: shared baselines first, then fine-tuned models.

    Validating a config runs it once and the config keeps the result (``_config.ExperimentConfig.conditions``), which the
    runner uses.

    Fine-tuned conditions are ordered level → seed → group → variant, a level being a (fraction, noise) pair and
    the reference level (the largest fraction at the lowest noise rate, which every other level is compared with)
    coming first, the others in the config's order. A partial run thus holds the reference's τ sweep of every seed
    before any reduced-data or noisy condition, and can compare the levels it has finished against it.

    Raises:
        ValueError: the trainer refuses the ``TrainConfig`` of a condition (e.g. ``batch_size: 0``); the message
            names the condition.
    """
    baseline_targets: dict[str, Target] = {}
    finetuned: list[Condition] = []
    for s in cfg.scenarios:
        for group in scenario_datasets(s).groups:
            targets = group_targets(group, calibrate=cfg.calibration.enabled)
            for t in targets:
                baseline_targets.setdefault(t.dataset, t)
            for fraction, noise, seed, variant in itertools.product(cfg.fractions, cfg.noise_rates, cfg.seeds,
                                                                    cfg.variants):
                tc = train_config(cfg, group.train, variant, seed=seed, fraction=fraction, noise=noise)
                finetuned.append(Condition(scenario=s.name, system="fine-tuned", train=group.train,
                                           targets=tuple(targets), seed=seed, fraction=fraction, noise=noise,
                                           tau=variant.tau, loss=variant.loss, train_config=tc))
    levels = list(itertools.product(cfg.fractions, cfg.noise_rates))
    reference = (max(cfg.fractions), min(cfg.noise_rates))
    levels.sort(key=lambda level: level != reference)  # stable: the others keep the config's order
    order = {(*level, seed): i for i, (level, seed) in enumerate(itertools.product(levels, cfg.seeds))}
    finetuned.sort(key=lambda c: order[(c.fraction, c.noise, c.seed)])
    baselines = [Condition(scenario="", system=b, train=(), targets=(t,))
                 for b in cfg.baselines for t in baseline_targets.values()]
    return baselines + finetuned

