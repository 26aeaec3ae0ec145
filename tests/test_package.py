import subprocess
import sys

import pytest


def test_import_is_cheap():
    code = ("import sys, pyterrier_gradrel; "
            "print('torch' in sys.modules, 'faiss' in sys.modules, 'ir_datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


@pytest.mark.parametrize("order", ["package first", "ir_datasets first", "a submodule first", "pyterrier only"])
def test_datasets_are_registered_whatever_is_imported_first(order):
    """The datasets register the moment ir_datasets is imported, whichever import comes first."""
    first = {
        "package first": "import pyterrier_gradrel, ir_datasets",
        "ir_datasets first": "import ir_datasets, pyterrier_gradrel",
        "a submodule first": "import pyterrier_gradrel.datasets._local, ir_datasets",
        "pyterrier only": "import ir_datasets, pyterrier as pt; pt.gradrel",  # the pyterrier.modules entry point
    }[order]
    code = f"{first}; import ir_datasets; print(ir_datasets.load('gradrel/xquad-r/de/test').docs_cls().__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "XQuadDoc"


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
