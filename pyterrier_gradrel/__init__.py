"""pyterrier-gradrel: graded relevance thresholds for multilingual dense retrieval.

Importing this package is cheap (no torch, no faiss) and registers the benchmark's
graded datasets with ir_datasets, so ``pt.get_dataset('irds:gradrel/xquad-r/de/test')``
works right after ``import pyterrier_gradrel`` (PyTerrier also imports it as ``pt.gradrel``
through its ``pyterrier.modules`` entry point).

Heavy components are loaded on first attribute access, e.g. ``pyterrier_gradrel.Binarize``.
"""
from __future__ import annotations

from pyterrier_gradrel._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> "module:attribute"; resolved lazily so that importing the package stays cheap
_LAZY: dict[str, str] = {
    # datasets
    "register": "pyterrier_gradrel.datasets:register",
    "GRADES": "pyterrier_gradrel.datasets:GRADES",
    # models
    "resolve_model": "pyterrier_gradrel.models:resolve_model",
    "load_encoder": "pyterrier_gradrel.models:load_encoder",
    "E5BiEncoder": "pyterrier_gradrel.models:E5BiEncoder",
    # training
    "Binarize": "pyterrier_gradrel.binarize:Binarize",
    "binarize": "pyterrier_gradrel.binarize:binarize",
    "ContrastiveTrainer": "pyterrier_gradrel.training:ContrastiveTrainer",
    "TrainConfig": "pyterrier_gradrel.training:TrainConfig",
    "InfoNCELoss": "pyterrier_gradrel.training:InfoNCELoss",
    "GradedInfoNCELoss": "pyterrier_gradrel.training:GradedInfoNCELoss",
    # retrieval
    "bm25": "pyterrier_gradrel.retrieval:bm25",
    "baselines": "pyterrier_gradrel.retrieval:baselines",
    "dense": "pyterrier_gradrel.retrieval:dense",
    # experiments
    "run_experiment": "pyterrier_gradrel.experiments:run_experiment",
    "load_config": "pyterrier_gradrel.experiments:load_config",
    # judge
    "LLMJudge": "pyterrier_gradrel.judge:LLMJudge",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def _register_datasets() -> None:
    from pyterrier_gradrel.datasets import register

    register()


_register_datasets()
