"""An experiment config in a notebook: each scenario's topics, qrels, systems and its ``pt.Experiment``.

``load("experiments/quickstart.yaml").scenarios`` holds one :class:`Scenario` per training group and test target,
built from the same plan, datasets (query limit included), measures and ``TrainConfig`` as ``gradrel run``; its
:meth:`Scenario.experiment` fits one :class:`~pyterrier_gradrel.training.FineTuned` per variant and returns what
``pt.Experiment`` returns, with the same per-query values as the runner's ``perquery.csv.gz``::

    import pyterrier_gradrel as gr
    en = gr.experiments.load("experiments/quickstart.yaml").scenarios[0]
    en.experiment(baseline=1, correction="holm")    # BM25, zero-shot, tau=1..3 on en/test
"""
from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from pyterrier_gradrel.datasets import info
from pyterrier_gradrel.experiments._components import Components
from pyterrier_gradrel.experiments._config import ExperimentConfig, load_config
from pyterrier_gradrel.experiments._data import DataCache
from pyterrier_gradrel.experiments._plan import train_config
from pyterrier_gradrel.experiments._scenarios import Target, TrainingGroup, scenario_datasets

__all__ = ["Scenario", "load"]


@dataclass
class Scenario:
    """One scenario's training data and test target, with the systems the runner compares on it.

    Attributes:
        name: the scenario (``monolingual-xquad-r``).
        target: the test target (dataset id, row label, split).
        group: the training datasets and every target of the trained models.
        config: the experiment config.
    """

    name: str
    target: Target
    group: TrainingGroup
    config: ExperimentConfig
    data: DataCache = field(repr=False)
    components: Components = field(repr=False)
    _fitted: dict[tuple, object] = field(default_factory=dict, repr=False)

    @property
    def topics(self) -> pd.DataFrame:
        """The test target's queries (``qid``, ``query``), with the config's query limit."""
        return self.data.get(self.target.dataset).topics[["qid", "query"]]

    @property
    def qrels(self) -> pd.DataFrame:
        """The test target's graded qrels (``qid``, ``docno``, ``label``)."""
        return self.data.get(self.target.dataset).qrels

    @property
    def measures(self) -> list:
        """The config's measures as ir_measures objects on the target's grade scale (see :meth:`names`)."""
        grades = info(self.target.dataset).grade_scale
        return [m.ir_measure(grades) for m in self.config.measures]

    @property
    def names(self) -> list[str]:
        """The measures' names in result files (``nDCG@10``, ``R(rel=2)@100``)."""
        return [m.label for m in self.config.measures]

    def systems(self, *, seed: int | None = None) -> dict[str, object]:
        """Name → transformer: the config's baselines, then one fitted ``FineTuned`` per variant (``tau=<τ>``,
        ``graded``), each cut to the config's ``run_depth`` like the runner's runs.

        Args:
            seed: the training seed (default: the config's first); fraction and noise are the reference level
                (the largest fraction, the lowest noise rate).
        """
        import pyterrier as pt

        from pyterrier_gradrel.experiments._runner import _cut
        from pyterrier_gradrel.training import FineTuned

        cfg, ds = self.config, self.target.dataset
        seed = cfg.seeds[0] if seed is None else seed
        cut = pt.apply.generic(functools.partial(_cut, depth=cfg.run_depth))
        out = {b: self.components.baseline(b, ds) >> cut for b in cfg.baselines}
        for variant in cfg.variants:
            key = (variant, seed)
            if key not in self._fitted:
                tc = train_config(cfg, self.group.train, variant, seed=seed, fraction=max(cfg.fractions),
                                  noise=min(cfg.noise_rates))
                ft = FineTuned(cfg.base_model, dataset=ds, rel=variant.tau, config=tc, train_dataset=self.group.train,
                               device=self.components.device or cfg.training.device or "auto")
                self._fitted[key] = ft.fit(*self.data.train_data(self.group.train))
            out[variant.label] = self._fitted[key] >> cut
        return out

    def experiment(self, *, seed: int | None = None, **kwargs: object) -> pd.DataFrame:
        """``pt.Experiment`` of :meth:`systems` on the test target, with the config's measures and names.

        Args:
            seed: the training seed of the fine-tuned systems (default: the config's first).
            **kwargs: passed to ``pt.Experiment`` (``perquery``, ``baseline``, ``correction``, ...).
        """
        import pyterrier as pt

        from pyterrier_gradrel._device import torch_threads

        with torch_threads(self.config.training.threads):
            systems = self.systems(seed=seed)
            return pt.Experiment(list(systems.values()), self.topics, self.qrels, self.measures,
                                 names=list(systems), **kwargs)

    def rename(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``'s ``measure`` column (ir_measures' names, as ``pt.Experiment(..., perquery=True)`` writes them)
        in the result files' names (:attr:`names`).

        A measure that two names share (graded nDCG and ``nDCG(rel=1)`` on grades ``{0, 1}``, which
        ``pt.Experiment`` evaluates once) gives each of its rows once per name, as in the runner's frame.
        """
        names: dict[str, list[str]] = {}
        for measure, name in zip(map(str, self.measures), self.names, strict=True):
            names.setdefault(measure, []).append(name)
        return frame.assign(measure=frame["measure"].map(names)).explode("measure")


@dataclass
class LoadedExperiment:
    """A config's scenarios for a notebook (see :func:`load`)."""

    config: ExperimentConfig
    scenarios: list[Scenario]


def load(config: str | os.PathLike | Mapping[str, object] | ExperimentConfig, *,
         device: str | None = None) -> LoadedExperiment:
    """The scenarios of an experiment config, one per training group and test target (dev targets omitted).

    Args:
        config: a path to ``experiments/<name>.yaml``, a mapping, or an :class:`ExperimentConfig`.
        device: where models run (default: the config's ``training: {device: ...}``, else ``"auto"``).
    """
    cfg = load_config(config)
    data = DataCache(limit_queries=cfg.limit_queries)
    components = Components(base_model=cfg.base_model, device=device or cfg.training.device)
    scenarios = [Scenario(s.name, t, g, cfg, data, components)
                 for s in cfg.scenarios for g in scenario_datasets(s).groups for t in g.targets]
    return LoadedExperiment(cfg, scenarios)
