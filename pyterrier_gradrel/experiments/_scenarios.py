"""Which datasets each scenario of a config trains and tests on (the conditions are built by :mod:`._plan`).

Scenarios:

* **monolingual** (XQuAD-R): per language L, train on ``L/train``, test on ``L/test``.
* **multilingual** mixture: *one* model trained on the union of ``L/train`` over the languages, tested
  on every ``L/test`` and (XQuAD-R, ``multi_pool``) on the ``multi/test`` pool.
* **crosslingual** XQuAD-R: per pair (q, d), queries in q against the d pool (``q-d``).
  **crosslingual** AfriQA: per language L, African-language queries against the pivot-language pool
  (``L``), with the human-translated queries (``L-translated/test``) as a control target evaluated by
  the same systems. **crosslingual** local: per collection, like monolingual (its queries and documents
  differ in language by the collection's own ``query_lang``).
* **transfer**: one model per variant trained on the union of the ``train`` ids, tested on every ``test``
  id (train on one dataset, test on another).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class Scenario(Protocol):
    """What this module reads of a scenario: the fields of the config's ``scenarios[]`` entries
    (``experiments._config.ScenarioSpec`` validates them)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def collection(self) -> str: ...
    @property
    def languages(self) -> tuple[str, ...]: ...
    @property
    def pairs(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def translated_control(self) -> bool: ...
    @property
    def multi_pool(self) -> bool: ...
    @property
    def train(self) -> tuple[str, ...]: ...
    @property
    def test(self) -> tuple[str, ...]: ...


def dataset_id(collection: str, lang: str, split: str) -> str:
    """The ir_datasets id of ``collection``/``lang``/``split`` (``lang`` may be ``q-d``, ``multi``, ``x-translated``)."""
    return f"gradrel/{collection}/{lang}/{split}"


@dataclass(frozen=True)
class Target:
    """One evaluated dataset of a scenario.

    Attributes:
        dataset: the ir_datasets id.
        label: a short row label, e.g. ``en``, ``de-en``, ``hau``, ``hau-translated``, ``multi``.
        split: ``test`` or ``dev``.
        role: ``main`` (τ is compared and calibrated here), ``control`` (translated queries) or ``pool``.
    """

    dataset: str
    label: str
    split: str
    role: str = "main"


@dataclass(frozen=True)
class TrainingGroup:
    """One trained model per variant × seed × fraction × noise: its training data and its test targets."""

    train: tuple[str, ...]
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class ScenarioPlan:
    """The datasets one scenario touches."""

    groups: tuple[TrainingGroup, ...]

    @property
    def train(self) -> list[str]:
        """Every training dataset id."""
        return sorted({d for g in self.groups for d in g.train})

    @property
    def test(self) -> list[str]:
        """Every test dataset id."""
        return sorted({t.dataset for g in self.groups for t in g.targets if t.split == "test"})

    @property
    def dev(self) -> list[str]:
        """The dev ids that calibration evaluates: the dev split of every target that is not a control."""
        return list(dict.fromkeys(t.dataset for g in self.groups for t in group_targets(g, calibrate=True)
                                  if t.split == "dev"))


def scenario_datasets(s: Scenario) -> ScenarioPlan:
    """The training groups and test targets of one scenario (dev targets are added by :func:`plan`)."""
    c = s.collection
    if s.type == "multilingual":
        targets = [Target(dataset_id(c, lang, "test"), lang, "test") for lang in s.languages]
        if c == "xquad-r" and s.multi_pool:
            targets.append(Target(dataset_id(c, "multi", "test"), "multi", "test", role="pool"))
        groups = [TrainingGroup(tuple(dataset_id(c, lang, "train") for lang in s.languages), tuple(targets))]
    elif s.type == "transfer":
        groups = [TrainingGroup(tuple(s.train), tuple(Target(d, "/".join(d.split("/")[1:-1]), "test") for d in s.test))]
    else:  # monolingual and crosslingual: one model per language (AfriQA, local) or XQuAD-R pair
        groups = []
        for lang in [*(f"{q}-{d}" for q, d in s.pairs), *s.languages]:
            targets = [Target(dataset_id(c, lang, "test"), lang, "test")]
            if c == "afriqa" and s.translated_control:
                targets.append(Target(dataset_id(c, f"{lang}-translated", "test"), f"{lang}-translated", "test",
                                      role="control"))
            groups.append(TrainingGroup((dataset_id(c, lang, "train"),), tuple(targets)))
    return ScenarioPlan(groups=tuple(groups))


def group_targets(group: TrainingGroup, *, calibrate: bool) -> list[Target]:
    """A training group's targets: its test targets, plus (when calibrating) the dev split of each one that is
    not a control."""
    targets = list(group.targets)
    if calibrate:
        targets += [Target(t.dataset.rsplit("/", 1)[0] + "/dev", t.label, "dev", t.role)
                    for t in group.targets if t.role != "control"]
    return targets


def scenario_targets(scenarios: Iterable[Scenario], *, calibrate: bool) -> dict[str, list[Target]]:
    """Scenario name → the targets it reports (test, plus dev when ``calibrate``)."""
    return {s.name: [t for g in scenario_datasets(s).groups for t in group_targets(g, calibrate=calibrate)]
            for s in scenarios}
