"""pyterrier-gradrel: graded relevance thresholds for multilingual dense retrieval.

Importing this package is cheap (no torch, no faiss, no ir_datasets) and registers the benchmark's
graded datasets with ir_datasets (at once, or the moment ir_datasets is imported), so ``pt.get_dataset('irds:gradrel/xquad-r/de/test')``
works right after ``import pyterrier_gradrel`` (PyTerrier also imports it as ``pt.gradrel``
through its ``pyterrier.modules`` entry point).

Heavy components are loaded on first attribute access, e.g. ``pyterrier_gradrel.Binarize``.
"""
from __future__ import annotations

import sys
import types

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
    "FineTuned": "pyterrier_gradrel.training:FineTuned",
    "ContrastiveTrainer": "pyterrier_gradrel.training:ContrastiveTrainer",
    "TrainConfig": "pyterrier_gradrel.training:TrainConfig",
    "InfoNCELoss": "pyterrier_gradrel.training:InfoNCELoss",
    "GradedInfoNCELoss": "pyterrier_gradrel.training:GradedInfoNCELoss",
    # retrieval
    "bm25": "pyterrier_gradrel.retrieval:bm25",
    "baselines": "pyterrier_gradrel.retrieval:baselines",
    "dense": "pyterrier_gradrel.retrieval:dense",
    "dense_scorer": "pyterrier_gradrel.retrieval:dense_scorer",
    # experiments
    "experiments": "pyterrier_gradrel.experiments",
    "run_experiment": "pyterrier_gradrel.experiments:run_experiment",
    "load_config": "pyterrier_gradrel.experiments:load_config",
    # judge
    "LLMJudge": "pyterrier_gradrel.judge:LLMJudge",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

#: public functions named like the sub-module that defines them: the package attribute stays the function
_SHADOWED_SUBMODULES = ("binarize",)


class _Package(types.ModuleType):
    """This package's module type: ``gr.binarize`` stays the function when its sub-module is imported.

    The import system sets a package attribute to each sub-module it imports (``import pyterrier_gradrel.binarize``,
    which ``gr.Binarize`` and ``gr.FineTuned`` run), which would turn ``gr.binarize`` into the module; here the
    function replaces the module in that assignment. The module itself stays in ``sys.modules`` for
    ``from pyterrier_gradrel.binarize import ...`` (not ``import pyterrier_gradrel.binarize as b``, which reads the
    package attribute).
    """

    def __setattr__(self, name: str, value: object) -> None:
        if (name in _SHADOWED_SUBMODULES and isinstance(value, types.ModuleType)
                and value.__name__ == f"{self.__name__}.{name}"):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


class _RegisterOnImport:
    """A one-shot import hook: registers the datasets right after ``ir_datasets`` has been imported.

    Importing ir_datasets costs ~0.7 s, which ``gradrel --help`` and code that never touches a dataset should not
    pay; every way to reach a dataset (``ir_datasets.load``, ``pt.get_dataset('irds:...')``) imports it first.
    The hook leaves ``sys.meta_path`` only once ir_datasets has been executed, so a bare
    ``importlib.util.find_spec("ir_datasets")`` (a probe that imports nothing) does not use it up.
    """

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201 (importlib protocol)
        if name != "ir_datasets":
            return None
        spec = _spec_from_other_finders(self, name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module  # a loader is made per spec: wrapping it touches no other import

        def exec_then_register(module):  # noqa: ANN001, ANN202
            exec_module(module)
            try:
                sys.meta_path.remove(self)
            except ValueError:  # already removed
                pass
            _register_datasets()

        spec.loader.exec_module = exec_then_register
        return spec


def _spec_from_other_finders(hook: object, name: str, path, target):  # noqa: ANN001, ANN202 (importlib protocol)
    """The spec that the other finders on ``sys.meta_path`` give for ``name`` (None if none does)."""
    for finder in list(sys.meta_path):
        if finder is hook or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(name, path, target)
        if spec is not None:
            return spec
    return None


def _register_datasets() -> None:
    from pyterrier_gradrel.datasets import register

    register()


if "ir_datasets" in sys.modules:
    _register_datasets()
elif not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterOnImport())
