import subprocess
import sys

import pytest


def test_import_is_cheap():
    code = ("import sys, pyterrier_gradrel; "
            "print([m for m in ('torch', 'faiss', 'ir_datasets', 'pydantic') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # pydantic comes with the first config that is read


@pytest.mark.parametrize("order", ["package first", "ir_datasets first", "a submodule first", "pyterrier only",
                                   "datasets._afriqa first", "datasets._xquad_r first", "datasets._base first"])
def test_datasets_are_registered_whatever_is_imported_first(order):
    """The datasets register the moment ir_datasets is imported, whichever import comes first; when a dataset
    module that registration needs is what imported ir_datasets, registration finishes on the first lookup."""
    first = {
        "package first": "import pyterrier_gradrel, ir_datasets",
        "ir_datasets first": "import ir_datasets, pyterrier_gradrel",
        "a submodule first": "import pyterrier_gradrel.datasets._local, ir_datasets",
        "pyterrier only": "import ir_datasets, pyterrier as pt; pt.gradrel",  # the pyterrier.modules entry point
        "datasets._afriqa first": "import pyterrier_gradrel.datasets._afriqa",
        "datasets._xquad_r first": "import pyterrier_gradrel.datasets._xquad_r",
        "datasets._base first": "import pyterrier_gradrel.datasets._base",
    }[order]
    code = (f"{first}; import ir_datasets; print(ir_datasets.load('gradrel/xquad-r/de/test').docs_cls().__name__); "
            f"print(ir_datasets.load('gradrel/afriqa/hau/test').docs_cls().__name__); "
            f"print(sum(d.startswith('gradrel/') for d in ir_datasets.registry) > 400)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-3:] == ["XQuadDoc", "AfriqaDoc", "True"]


def test_gr_binarize_stays_the_function_after_its_submodule_is_imported():
    """``gr.Binarize`` / ``gr.FineTuned`` import the sub-module ``pyterrier_gradrel.binarize``, which the import
    system binds to the package attribute of that name; ``gr.binarize`` must still be the function (a fresh
    interpreter: nothing imported before)."""
    code = ("import pandas as pd, sys, pyterrier_gradrel as gr\n"
            "gr.Binarize(rel=2); gr.FineTuned\n"
            "import pyterrier_gradrel.binarize\n"
            "from pyterrier_gradrel import binarize\n"
            "qrels = pd.DataFrame({'qid': ['1', '1', '2'], 'docno': ['a', 'b', 'c'], 'label': [3, 1, 1]})\n"
            "b = gr.binarize(qrels, rel=2)\n"
            "print(b.positives, b.dropped, binarize is gr.binarize,\n"
            "      type(sys.modules['pyterrier_gradrel.binarize']).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "{'1': ['a']} ['2'] True module"


def test_tiny_encoder_fixture(tiny_encoder_dir):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = AutoModel.from_pretrained(tiny_encoder_dir)
    enc = tok(["สุนัขจิ้งจอก", "hello world"], padding=True, return_tensors="pt")
    assert model(**enc).last_hidden_state.shape[-1] == 32


def _module_imports(path, package: str) -> set[str]:
    """The modules of ``package`` that ``path`` imports when it runs: at module level and inside functions,
    not in ``if TYPE_CHECKING:`` blocks (which never run)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for b in node.body for n in ast.walk(b)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith(package + ".")}
    return found


@pytest.mark.parametrize("subpackage", ["experiments", "retrieval", "training"])
def test_no_import_cycle_inside_subpackage(subpackage):
    """No module of the subpackage imports, directly or through others, a module that imports it back."""
    from pathlib import Path

    import pyterrier_gradrel

    root = Path(pyterrier_gradrel.__file__).parent / subpackage
    package = f"pyterrier_gradrel.{subpackage}"
    modules = {f"{package}.{p.stem}": p for p in root.glob("*.py") if p.stem != "__init__"}
    graph = {m: _module_imports(p, package) & set(modules) for m, p in modules.items()}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo += graph[m]
        return seen

    cycles = sorted(m for m in graph if m in reachable(m))
    assert not cycles, f"modules on an import cycle: {cycles}"


def _annotation_problems(qualname: str, fn) -> list[str]:
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    out = []
    for name, p in sig.parameters.items():
        if name in ("self", "cls"):
            continue
        if p.annotation is inspect.Parameter.empty:
            out.append(f"{qualname}({name}): not annotated")
        elif "Any" in str(p.annotation):
            out.append(f"{qualname}({name}): {p.annotation}")
    if fn.__name__ != "__init__" and sig.return_annotation is inspect.Signature.empty:
        out.append(f"{qualname}: return not annotated")
    elif "Any" in str(sig.return_annotation):
        out.append(f"{qualname} -> {sig.return_annotation}")
    return out


@pytest.mark.parametrize("subpackage", ["experiments", "retrieval", "training"])
def test_public_api_is_annotated_without_any(subpackage):
    """Every public function, method and dataclass field of the subpackage's exports is annotated, never with Any."""
    import dataclasses
    import importlib
    import inspect

    mod = importlib.import_module(f"pyterrier_gradrel.{subpackage}")
    problems = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.isfunction(obj):
            problems += _annotation_problems(name, obj)
        elif inspect.isclass(obj):
            if dataclasses.is_dataclass(obj):
                problems += [f"{name}.{f.name}: {f.type}" for f in dataclasses.fields(obj) if "Any" in str(f.type)]
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                fn = value.__func__ if isinstance(value, (staticmethod, classmethod)) else \
                    value.fget if isinstance(value, property) else value
                ours = inspect.isfunction(fn) and fn.__module__.startswith("pyterrier_gradrel")  # not typing's Protocol.__init__
                if ours and not (attr == "__init__" and dataclasses.is_dataclass(obj)):
                    problems += _annotation_problems(f"{name}.{attr}", fn)
    assert not problems, "\n".join(problems)



_FACT_TUPLES = {
    "splits": (("train", "dev", "test"), "pyterrier_gradrel/datasets/__init__.py"),
    "grades": ((0, 1, 2, 3), "pyterrier_gradrel/datasets/__init__.py"),
    "baseline names": (("BM25", "mE5-zero-shot", "BM25>>mE5", "RRF(BM25,mE5)"), "pyterrier_gradrel/retrieval/_names.py"),
}


def _spelled_out(tree, value: tuple) -> list[int]:
    """Lines of ``tree`` that write ``value`` as a tuple or list literal, or (for the grades) loop over
    ``range(4)`` with a named loop variable (``for _ in range(4)`` is a retry count, not the grade scale)."""
    import ast

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Constant) for e in node.elts):
            if tuple(e.value for e in node.elts) == value:
                lines.append(node.lineno)
        elif (value == (0, 1, 2, 3) and isinstance(node, (ast.For, ast.comprehension))
              and ast.unparse(node.iter) == "range(4)" and ast.unparse(node.target) != "_"):
            lines.append(node.iter.lineno)
        elif value == (0, 1, 2, 3) and isinstance(node, ast.Call) and ast.unparse(node.func) == "max" \
                and node.args and ast.unparse(node.args[0]) == "range(4)":
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("fact", sorted(_FACT_TUPLES))
def test_fact_tuples_are_spelled_out_once(fact):
    """The split names, the grade scale and the baseline names are written out in one module of the package
    (``datasets`` for splits and grades, ``retrieval._names`` for the baselines); the others import them."""
    import ast
    from pathlib import Path

    import pyterrier_gradrel

    value, home = _FACT_TUPLES[fact]
    root = Path(pyterrier_gradrel.__file__).parent
    found = [f"{path.relative_to(root.parent).as_posix()}:{line}" for path in sorted(root.rglob("*.py"))
             for line in _spelled_out(ast.parse(path.read_text(encoding="utf-8")), value)]
    assert [f.rsplit(":", 1)[0] for f in found] == [home], found


def test_fact_constants_are_shared_objects():
    """Modules that use, re-export or default to a fact constant hold the very same object."""
    import importlib
    import inspect

    import pyterrier_gradrel
    from pyterrier_gradrel import datasets, retrieval
    from pyterrier_gradrel.benchmark import _cli as benchmark_cli
    from pyterrier_gradrel.benchmark import _systems
    from pyterrier_gradrel.datasets import _afriqa, _local, _xquad_r
    from pyterrier_gradrel.experiments import _config
    from pyterrier_gradrel.judge import _agreement, _build, _prompt
    from pyterrier_gradrel.retrieval import _baselines
    from pyterrier_gradrel.retrieval import _cli as retrieval_cli
    from pyterrier_gradrel.training import TrainConfig, _subsets

    binarize = importlib.import_module("pyterrier_gradrel.binarize")  # the package attribute is the function
    assert pyterrier_gradrel.GRADES is datasets.GRADES
    for mod in (_afriqa, _local, _xquad_r, _config, _build, retrieval_cli):
        assert mod.SPLITS is datasets.SPLITS, mod.__name__
    for mod in (_prompt, _build, _config):
        assert mod.GRADES is datasets.GRADES, mod.__name__
    assert TrainConfig().grades is datasets.GRADES
    for fn in (_subsets.grade_noise, _agreement.agreement, binarize.neg_max_for, binarize.binarize):
        assert inspect.signature(fn).parameters["grades"].default is datasets.GRADES, fn.__name__
    for mod in (benchmark_cli, _systems, _config, _baselines):
        assert mod.BASELINES is retrieval.BASELINES, mod.__name__
    assert _config.ExperimentConfig.model_fields["baselines"].default == retrieval.BASELINES[:2]


def test_collection_languages_come_from_the_registry(tmp_path, monkeypatch):
    """The experiment configs and ``gradrel baselines`` take the collections' languages from ``datasets``; a local
    scenario's "languages" are the local collections' names."""
    from _local_fixture import judged_collection

    from pyterrier_gradrel.datasets import collection, collection_languages, local_collections
    from pyterrier_gradrel.experiments import _config

    assert collection_languages("xquad-r") == ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
    afriqa = collection("afriqa").languages
    assert collection_languages("afriqa") == tuple(sorted(k for k, v in afriqa.items() if v["splits"]))
    assert "wol" in afriqa and "wol" not in collection_languages("afriqa")
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path))
    judged_collection(tmp_path, "zeta")
    judged_collection(tmp_path, "alpha")
    assert collection_languages("local") == tuple(local_collections()) and {"alpha", "zeta"} <= set(local_collections())
    assert list(collection_languages("local")) == sorted(collection_languages("local"))
    assert _config.collection_languages is collection_languages
