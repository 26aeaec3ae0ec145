"""Anything that answers queries, as a benchmark system: a name, a fingerprint and a pipeline per task.

* an encoder: a model name or folder (:func:`pyterrier_gradrel.models.load_encoder`) or an object with
  ``fingerprint()`` (``E5BiEncoder``), retrieved with :func:`pyterrier_gradrel.retrieval.dense`;
* a factory ``dataset_id -> pt.Transformer`` (any PyTerrier pipeline);
* a named baseline (:data:`pyterrier_gradrel.retrieval.BASELINES`), mE5 in float32 so that its pinned scores
  reproduce on any CPU.

The system fingerprint names the result folder: an encoder's is its weights hash (precision included); a
factory's covers the code it runs (:func:`code_fingerprint`: its own, and pyterrier_gradrel's engines and, in a
checkout, source) and an optional version string of the caller's; a
baseline's its settings, its encoder's fingerprint and, for the BM25 baselines, the BM25 engine
(:func:`bm25_engine`) when it is not the one the reference results were made with.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

# the BM25 engine and its reference, defined once in retrieval (light: no PyTerrier)
from pyterrier_gradrel.retrieval._engine import REFERENCE_BM25_ENGINE, bm25_engine, engine_material

# the light home of the baseline names (importing retrieval._baselines would load PyTerrier)
from pyterrier_gradrel.retrieval._names import BASELINES

__all__ = ["GRADREL_SOURCE", "REFERENCE_BM25_ENGINE", "System", "as_system", "baseline_system", "bm25_engine",
           "bm25_settings", "code_fingerprint", "earlier_fingerprint", "earlier_scheme", "earlier_scheme_note", "gradrel_runtime",
           "slug"]

_BASELINE_ENCODER = "multilingual-e5-small"

@dataclass
class System:
    """A system under evaluation.

    Attributes:
        name: Display name (also the result folder, made file-name safe).
        fingerprint: Hex digest identifying what produces the runs.
        factory: ``dataset_id -> pt.Transformer`` (query frame -> result frame).
        description: What the system is, for the result JSON (kind, model, settings, device, precision).
    """

    name: str
    fingerprint: str
    factory: Callable[[str], Any]
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The name as a folder name (``BM25>>mE5`` -> ``BM25__mE5``)."""
        return slug(self.name)


def slug(name: str) -> str:
    """A system name as a folder name (``BM25>>mE5`` -> ``BM25__mE5``)."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", name).strip("_") or "system"


def _sha(*parts: Any) -> str:
    return hashlib.sha256("\n".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def _encoder_description(encoder: Any) -> dict[str, Any]:
    device = getattr(encoder, "device", None)
    return {"kind": "encoder", "class": type(encoder).__name__, "path": str(getattr(encoder, "path", "") or ""),
            "base": (getattr(encoder, "settings", None) or {}).get("base"),
            "precision": getattr(encoder, "precision", None), "device": str(device) if device is not None else None}


def _load(encoder: Any, precision: str, threads: int | None) -> Any:
    if isinstance(encoder, str | Path):
        from pyterrier_gradrel.models import load_encoder

        return load_encoder(str(encoder), precision=precision, num_threads=threads)
    return encoder


def encoder_system(encoder: Any, *, name: str | None = None, precision: str = "float32",
                   threads: int | None = None, backend: str = "numpy") -> System:
    """An encoder as a system: exact dense retrieval over each task's pool (vectors cached per pool)."""
    from pyterrier_gradrel.retrieval import dense

    enc = _load(encoder, precision, threads)
    # a name or folder names the system; an encoder object is named after the folder it was loaded from
    source = encoder if isinstance(encoder, str | Path) else (getattr(enc, "path", None) or type(enc).__name__)
    label = name or Path(str(source)).name
    fingerprint = getattr(enc, "fingerprint", None)
    if not callable(fingerprint):
        raise TypeError(f"an encoder system needs fingerprint() (e.g. an E5BiEncoder), got {type(enc).__name__}")
    description = {**_encoder_description(enc), "model": str(encoder) if isinstance(encoder, str | Path) else label,
                   "retrieval": f"pyterrier_gradrel.retrieval.dense(backend={backend!r})"}
    return System(label, _sha("encoder", fingerprint(), backend),
                  lambda dataset_id: dense(enc, dataset_id, backend=backend), description)


def factory_system(factory: Callable[[str], Any], *, name: str | None = None,
                   fingerprint: str | None = None) -> System:
    """A factory ``dataset_id -> pt.Transformer`` as a system.

    The factory contract: :func:`pyterrier_gradrel.benchmark.evaluate` calls ``factory(dataset_id)`` once per
    task with the task's ir_datasets id, without PyTerrier's ``irds:`` prefix (``"gradrel/xquad-r/de/test"``).
    It must return a ``pt.Transformer`` that takes the task's topics (columns ``qid``, ``query``) and returns a
    ranking: ``qid``, ``docno`` and ``score`` or ``rank``, at least the suite's depth (100) documents per query
    (deeper results are cut; unanswered queries score 0), each (qid, docno) at most once and every docno from the
    task's pool (:func:`pyterrier_gradrel.benchmark.task_pool` gives ``docno``, ``text`` to index).

    Args:
        factory: Called once per task with the task's dataset id.
        name: Display name (default: the factory's qualified name).
        fingerprint: A version string of your own (``--fingerprint``/``--system-version``), added to the code
            fingerprint: bump it when something the code hash cannot see changes (weights downloaded at run
            time, a remote service).

    The system's fingerprint (its result folder) covers the factory's qualified name, the source of its module
    and of every local module it imports (recursively: modules whose file is not an installed distribution's),
    the versions of the distributions it imports, pyterrier_gradrel's runtime (:func:`gradrel_runtime`: the versions
    of the engines it imports lazily, and its source hash when it is not an installed release) and ``fingerprint``;
    a result is reused only when all of it matches (:func:`code_fingerprint`). A factory without a module file (``python -c``, stdin, ``exec``, a
    notebook) is fingerprinted by its code objects, closures and the globals it reads.

    Raises:
        UnstableFingerprintError: A fileless factory reads a value without a stable repr and ``fingerprint`` is
            None (pass one, or define the factory in a file).
    """
    if not callable(factory):
        raise TypeError(f"a system is an encoder or a callable dataset_id -> pt.Transformer, got {factory!r}")
    target = getattr(factory, "func", factory)  # functools.partial
    module_name = getattr(target, "__module__", None) or type(target).__module__
    qualname = f"{module_name}:{getattr(target, '__qualname__', type(target).__name__)}"
    token = _LENIENT.set(fingerprint is not None)
    try:
        modules, packages = code_fingerprint(factory)
    finally:
        _LENIENT.reset(token)
    material = json.dumps({"factory": qualname, "modules": modules, "packages": packages, "version": fingerprint},
                          sort_keys=True)
    description = {"kind": "factory", "factory": qualname, "version": fingerprint, "modules": modules,
                   "packages": packages}
    return System(name or qualname.split(":")[-1], _sha("factory", material), factory, description)


def earlier_scheme(description: Any) -> str | None:
    """What a result's system fingerprint covers when an earlier fingerprint scheme made it, else None.

    Factory results written before fingerprints covered the code a factory runs record
    ``fingerprint_from: "source"`` (the fingerprint was the sha256 of the factory's qualified name and the source
    of the factory function alone) or ``"given"`` (of the ``fingerprint`` string alone), and no ``modules`` or
    ``packages``. Today's fingerprint of the same factory (:func:`factory_system`) also covers its module, the
    local modules it imports and the versions of the packages it imports: it is another value, so evaluating the
    factory again writes a new folder, and those results are never reused for it.

    Args:
        description: A result's ``system.description``.
    """
    if not isinstance(description, dict) or description.get("kind") != "factory" or "modules" in description:
        return None
    covered = {"source": "the factory function's qualified name and source only",
               "given": "the version string given for the factory only"}.get(description.get("fingerprint_from"))
    if covered is None:
        return None
    return (f"earlier factory fingerprint scheme (fingerprint_from: {description['fingerprint_from']}: {covered}, "
            "not the factory's module, local imports or package versions)")


def earlier_scheme_note(scheme: str) -> str:
    """What a result of an earlier fingerprint scheme (``scheme``, from :func:`earlier_scheme`) means for its
    factory today: the start of the note ``verify`` and the leaderboard show."""
    return f"a fingerprint of the {scheme}; evaluating its factory today gives another fingerprint"


def earlier_fingerprint(factory: Callable[[str], Any], fingerprint: str | None = None) -> str | None:
    """The fingerprint the earlier factory scheme (see :func:`earlier_scheme`) gives ``factory`` today.

    Equal to a result's fingerprint, it shows that the factory function's qualified name and source (or the given
    version string) are those the result was made with; it says nothing about the rest of the code the factory
    runs. None when the factory's source cannot be read.
    """
    if fingerprint is not None:
        return _sha("factory", fingerprint)
    qualname = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', type(factory).__name__)}"
    try:
        return _sha("factory", qualname, inspect.getsource(factory))
    except (OSError, TypeError):
        return None


def _factory_source(factory: Any) -> tuple[str, str | None, bool]:
    """(module name, the text its hash is taken of, is a package) where the factory is defined.

    A factory in a module file: that file's source. A fileless one (``python -c``, stdin, ``exec``, a notebook
    cell): a digest of what it runs (:func:`_runtime_digest`: its code, closures and the globals it reads), so
    that editing it, or a global it uses, changes the fingerprint.
    """
    target = getattr(factory, "func", factory)
    module = sys.modules.get(getattr(target, "__module__", None) or type(target).__module__)
    name = getattr(module, "__name__", "__main__")
    path = getattr(module, "__file__", None)
    scope = getattr(target, "__globals__", None)
    # exec'd code may carry the name of a module with a file (``__main__``) without being that module's code
    same = module is not None and (scope is None or scope is vars(module))
    if same and path and Path(path).is_file():
        return name, Path(path).read_text(encoding="utf-8"), Path(path).name == "__init__.py"
    return name, "fileless factory " + _runtime_digest(factory), False


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|object at |<built-in method ")


#: set while fingerprinting a factory the caller versions itself (``fingerprint=``): unstable values are named
#: by their type instead of refused
_LENIENT: ContextVar[bool] = ContextVar("gradrel_lenient_fingerprint", default=False)


class UnstableFingerprintError(ValueError):
    """A fileless factory reads a value whose content cannot be hashed stably (its repr holds a memory address)."""


def _runtime_digest(factory: Any) -> str:
    """sha256 of what a fileless factory runs: code objects recursively (bytecode, constants, names), closure
    cells, defaults, ``functools.partial`` arguments, and the globals its code reads (functions and classes by
    their code, modules by file or distribution version, other values by repr).

    Raises:
        UnstableFingerprintError: A value it depends on has no stable repr (e.g. ``<object at 0x7f...>``).
    """
    return hashlib.sha256(_digest_value(factory, set(), "the factory").encode("utf-8")).hexdigest()


def _digest_code(code: Any, seen: set[int], where: str) -> str:
    consts = [_digest_code(c, seen, where) if inspect.iscode(c) else _digest_value(c, seen, where)
              for c in code.co_consts]
    return f"code({code.co_code.hex()},{consts},{code.co_names},{code.co_varnames},{code.co_freevars})"


def _global_names(code: Any) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names += _global_names(const)
    return sorted(set(names))


def _digest_function(fn: Any, seen: set[int], where: str) -> str:
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    if (getattr(module, "__file__", None) and Path(module.__file__).is_file() and module.__name__ != "__main__"
            and fn.__globals__ is vars(module)):
        return f"function {fn.__module__}:{fn.__qualname__} in {_module_digest(module)}"
    where = f"{fn.__qualname__}"
    parts = [_digest_code(fn.__code__, seen, where), _digest_value(fn.__defaults__, seen, where),
             _digest_value(fn.__kwdefaults__, seen, where)]
    for cell_name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        try:
            parts.append(f"{cell_name}={_digest_value(cell.cell_contents, seen, f'{where}.{cell_name}')}")
        except ValueError:  # an empty cell
            parts.append(f"{cell_name}=<empty>")
    scope = fn.__globals__
    for name in _global_names(fn.__code__):
        if name in scope:
            parts.append(f"{name}={_digest_value(scope[name], seen, f'the global {name!r} of {where}')}")
    return f"function({','.join(parts)})"


def _module_digest(module: Any) -> str:
    path = getattr(module, "__file__", None)
    top = module.__name__.split(".")[0]
    if top in sys.stdlib_module_names or not path:
        return f"module {module.__name__}"
    if not _is_local(Path(path), top):
        versions = [f"{dist}=={v}" for dist, v in _versions(top).items()]
        return f"module {module.__name__} {versions}"
    return f"module {module.__name__} sha256:{hashlib.sha256(Path(path).read_bytes()).hexdigest()}"


def _digest_class(cls: type, seen: set[int], where: str) -> str:
    module = sys.modules.get(cls.__module__)
    if module is not None and module.__name__ != "__main__" and (
            getattr(module, "__file__", None) or cls.__module__ == "builtins"):
        return f"class {cls.__module__}:{cls.__qualname__} in {_module_digest(module)}"
    members = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__", "__module__")}
    body = [f"{k}={_digest_value(v, seen, f'{cls.__qualname__}.{k}')}" for k, v in sorted(members.items())]
    bases = [_digest_value(b, seen, where) for b in cls.__bases__]
    return f"class {cls.__qualname__}({bases}){{{','.join(body)}}}"


def _digest_container(value: Any, seen: set[int], where: str) -> str:
    if isinstance(value, list | tuple):
        return f"{type(value).__name__}[{','.join(_digest_value(v, seen, where) for v in value)}]"
    if isinstance(value, set | frozenset):
        return f"{type(value).__name__}{{{','.join(sorted(_digest_value(v, seen, where) for v in value))}}}"
    items = sorted(f"{_digest_value(k, seen, where)}:{_digest_value(v, seen, where)}" for k, v in value.items())
    return f"dict{{{','.join(items)}}}"


def _digest_value(value: Any, seen: set[int], where: str) -> str:
    """A stable text of ``value`` for :func:`_runtime_digest` (see there)."""
    import functools
    import types

    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return repr(value)
    if id(value) in seen:
        return f"<recursive {type(value).__name__}>"
    seen = seen | {id(value)}
    if isinstance(value, list | tuple | set | frozenset | dict):
        return _digest_container(value, seen, where)
    if isinstance(value, functools.partial):
        return (f"partial({_digest_value(value.func, seen, where)},{_digest_value(value.args, seen, where)},"
                f"{_digest_value(value.keywords, seen, where)})")
    if isinstance(value, types.FunctionType):
        return _digest_function(value, seen, where)
    if isinstance(value, types.MethodType):
        return f"method({_digest_value(value.__func__, seen, where)},{_digest_value(value.__self__, seen, where)})"
    if isinstance(value, types.ModuleType):
        return _module_digest(value)
    if isinstance(value, type):
        return _digest_class(value, seen, where)
    if isinstance(value, types.BuiltinFunctionType):
        return f"builtin {getattr(value, '__module__', None)}.{value.__qualname__}"
    text = repr(value)
    if _ADDRESS.search(text) and _LENIENT.get():
        return f"<{type(value).__module__}.{type(value).__qualname__}: versioned by the caller's fingerprint>"
    if _ADDRESS.search(text):
        raise UnstableFingerprintError(
            f"cannot fingerprint {where}: a {type(value).__name__} whose repr is not stable ({text[:80]}); a "
            "fileless factory (python -c, stdin, exec, a notebook) is fingerprinted by its code and the values it "
            "reads. Define the factory in a .py file, or pass fingerprint=... (--system-version) yourself and bump "
            "it whenever the system changes")
    return f"{type(value).__module__}.{type(value).__qualname__}:{text}"


def _imported_names(source: str, module: str, is_package: bool) -> list[str]:
    """Absolute names of the modules ``source`` imports (relative imports resolved against ``module``)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join([*parts, base] if base else parts)
            if base:
                names.append(base)
                names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return dict(packages_distributions())


def _local_file(name: str) -> Path | None:
    """The source file of module ``name`` when it exists outside every installed distribution, else None."""
    import importlib.util

    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            return None
        origin = spec.origin if spec is not None else None
    if origin is None or not Path(origin).is_file() or not origin.endswith(".py"):
        return None
    return Path(origin)


@lru_cache(maxsize=1)
def _install_dirs() -> tuple[Path, ...]:
    """The folders installed distributions live in: site-packages, purelib, platlib (user site included)."""
    import site
    import sysconfig

    dirs = {sysconfig.get_paths().get(k) for k in ("purelib", "platlib")}
    try:
        dirs |= set(site.getsitepackages()) | {site.getusersitepackages()}
    except AttributeError:  # pragma: no cover - a virtualenv's old site module
        pass
    return tuple(Path(d).resolve() for d in dirs if d)


@cache
def _distribution_files(dist: str) -> tuple[frozenset[Path], Path | None]:
    """(the files a distribution installed, the source folder of an editable install or None)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        found = distribution(dist)
    except PackageNotFoundError:
        return frozenset(), None
    files = frozenset(Path(found.locate_file(f)).resolve() for f in (found.files or ()))
    editable = None
    direct = found.read_text("direct_url.json")
    if direct:
        info = json.loads(direct)
        if (info.get("dir_info") or {}).get("editable") and str(info.get("url", "")).startswith("file://"):
            editable = Path(info["url"].removeprefix("file://")).resolve()
    return files, editable


def _is_local(path: Path, top: str) -> bool:
    """Whether the module file ``path`` is the user's own code rather than an installed distribution's: outside
    site-packages/purelib/platlib, not among the files of a distribution providing ``top`` and not under an
    editable install's source folder (a local ``tests`` package is local although a distribution installs one)."""
    path = path.resolve()
    if any(path.is_relative_to(d) for d in _install_dirs()):
        return False
    for dist in _distributions().get(top, []):
        files, editable = _distribution_files(dist)
        if path in files or (editable is not None and path.is_relative_to(editable)):
            return False
    return True


#: pyterrier_gradrel's modules that no system runs: the command line, the docs build, the leaderboard's tables and
#: figures, the experiment sweeps and reports, the judge that builds collections (paths relative to the package
#: folder; a folder ends with ``/``)
_NOT_RUNTIME = ("cli.py", "_sphinx.py", "benchmark/_leaderboard.py", "experiments/", "judge/")

#: the ``modules`` entry of pyterrier_gradrel's own source when it runs from a checkout, not a release
GRADREL_SOURCE = "pyterrier_gradrel (source checkout)"


def _gradrel_runtime_files() -> list[tuple[str, Path]]:
    """(module name, file) of every pyterrier_gradrel module a system may run (all but :data:`_NOT_RUNTIME` and
    the sub-packages' ``_cli.py``), sorted."""
    import pyterrier_gradrel

    root = Path(pyterrier_gradrel.__file__).resolve().parent
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in _NOT_RUNTIME or path.name == "_cli.py" or any(
                rel.startswith(d) for d in _NOT_RUNTIME if d.endswith("/")):
            continue
        parts = ["pyterrier_gradrel", *path.relative_to(root).with_suffix("").parts]
        found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def _gradrel_is_release() -> bool:
    """Whether the running pyterrier_gradrel is an installed release, named exactly by its version: its files are
    those the ``pyterrier-gradrel`` distribution installed, not an editable install (``direct_url.json``), and its
    version has no development or local part (``.dev``, ``+...``). A checkout on ``sys.path``, an editable install
    or a build of unreleased code is not: its modules may differ under the same version string."""
    import pyterrier_gradrel

    try:
        from importlib.metadata import PackageNotFoundError, version

        installed = version("pyterrier-gradrel")
    except PackageNotFoundError:
        return False
    files, editable = _distribution_files("pyterrier-gradrel")
    running = Path(pyterrier_gradrel.__file__).resolve()
    return editable is None and running in files and re.search(r"dev|\+", installed) is None


def gradrel_runtime() -> tuple[dict[str, str], str | None]:
    """What pyterrier_gradrel contributes to every factory's fingerprint.

    A factory runs inside pyterrier_gradrel's benchmark and usually through its code (``gr.bm25``, ``gr.dense``,
    the encoders), which imports its engines lazily and is reached through lazy names, so an import scan of the
    factory sees neither: pyterrier-pisa, torch, transformers, faiss... are missing, and pyterrier_gradrel's own
    modules appear only as its version string.

    Returns:
        (the versions of the distributions pyterrier_gradrel's runtime modules import, at module level or inside
        functions, with pyterrier-gradrel's own; the sha256 of those modules' source when pyterrier_gradrel is
        not an installed release (:func:`_gradrel_is_release`), else None).
    """
    packages: dict[str, str] = dict(_versions("pyterrier_gradrel"))
    digest = hashlib.sha256()
    for name, path in _gradrel_runtime_files():
        text = path.read_text(encoding="utf-8")
        digest.update(f"{name}\n{hashlib.sha256(text.encode('utf-8')).hexdigest()}\n".encode())
        for imported in _imported_names(text, name, path.name == "__init__.py"):
            top = imported.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("__future__", "pyterrier_gradrel"):
                packages.update(_versions(top))
    return dict(sorted(packages.items())), None if _gradrel_is_release() else digest.hexdigest()


def code_fingerprint(factory: Any) -> tuple[dict[str, str], dict[str, str]]:
    """What a factory's runs depend on: (module -> sha256 of its source, distribution -> version).

    Starts from the factory's module and follows its imports: standard-library modules are skipped, a module
    whose file is a local one (:func:`_is_local`: outside the install folders and the files of the distribution
    its top-level name belongs to, e.g. a ``tests`` package beside the factory) contributes its source hash and
    is followed in turn, any other contributes its distribution's version. Imports inside functions count (the
    source is parsed, not executed). A fileless factory's module entry is the digest of its code and the
    globals it reads.

    pyterrier_gradrel itself is never followed module by module: every factory gets :func:`gradrel_runtime`, the
    versions of the engines the package imports (lazily too) and, in a source checkout or editable install, the
    hash of its runtime modules (the ``modules`` entry :data:`GRADREL_SOURCE`), whether the factory imports the
    package directly, through a helper or not visibly at all.
    """
    modules: dict[str, str] = {}
    packages, gradrel_source = gradrel_runtime()
    if gradrel_source is not None:
        modules[GRADREL_SOURCE] = gradrel_source
    pending = [_factory_source(factory)]
    while pending:
        name, text, is_package = pending.pop()
        if name in modules or text is None:
            continue
        modules[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        for imported in _imported_names(text, name, is_package):
            top = imported.split(".")[0]
            if top in sys.stdlib_module_names or top in ("__future__", "pyterrier_gradrel") or imported in modules:
                continue
            path = _local_file(imported)
            if path is not None and _is_local(path, top):
                pending.append((imported, path.read_text(encoding="utf-8"), path.name == "__init__.py"))
                continue
            packages.update(_versions(top))
    return dict(sorted(modules.items())), dict(sorted(packages.items()))


def _versions(top: str) -> dict[str, str]:
    """``{distribution: version}`` of the installed distributions that provide the top-level name ``top``."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in _distributions().get(top, []):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def bm25_settings() -> tuple[str, dict[str, str | None]]:
    """(the BM25 baselines' fingerprint material, the engine it was made for).

    The material names k1 and b (the defaults of :func:`pyterrier_gradrel.retrieval.bm25`, which the baselines
    use) and the tokenizer spec; it adds the engine (:func:`bm25_engine`) unless the engine is
    :data:`REFERENCE_BM25_ENGINE` (both defined in :mod:`pyterrier_gradrel.retrieval._engine`, shared with the BM25
    index cache and the experiments' run keys), so upgrading pyterrier-pisa or changing the tokenizer gives new
    fingerprints (never reusing results of the old engine) while the reference results keep theirs.
    """
    from pyterrier_gradrel.retrieval import AUTO_TOKENIZER, bm25

    defaults = inspect.signature(bm25).parameters
    settings = f"pisa k1={defaults['k1'].default} b={defaults['b'].default} tokenizer={AUTO_TOKENIZER}"
    engine = bm25_engine()
    material = engine_material(engine)
    if material is not None:
        settings += " engine=" + json.dumps(material, sort_keys=True)
    return settings, engine


def baseline_system(name: str, *, encoder: Any = None, precision: str = "float32",
                    threads: int | None = None) -> System:
    """One of the named baselines as a system.

    The fingerprint covers the baseline's name, its encoder's fingerprint (the mE5 baselines) and its BM25
    settings with the BM25 engine (:func:`bm25_settings`: pyterrier-pisa's version and the resolved tokenizer,
    left out while they are those of the reference results).

    Args:
        name: One of :data:`pyterrier_gradrel.retrieval.BASELINES`.
        encoder: The dense model of the mE5 baselines (default multilingual-e5-small).
        precision: Inference precision of that model (default float32: the pinned scores are float32).
        threads: torch threads while encoding.
    """
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {list(BASELINES)}, got {name!r}")
    if name == "BM25":
        from pyterrier_gradrel.retrieval import bm25

        settings, engine = bm25_settings()
        return System(name, _sha("baseline", name, settings), lambda dataset_id: bm25(dataset_id),
                      {"kind": "baseline", "baseline": name, "bm25": settings, "bm25_engine": engine})
    enc = _load(encoder if encoder is not None else _BASELINE_ENCODER, precision, threads)
    description = {"kind": "baseline", "baseline": name, "encoder": _encoder_description(enc),
                   "model": str(encoder or _BASELINE_ENCODER)}
    if name == "mE5-zero-shot":
        from pyterrier_gradrel.retrieval import dense

        return System(name, _sha("baseline", name, enc.fingerprint()),
                      lambda dataset_id: dense(enc, dataset_id), description)

    def factory(dataset_id: str) -> Any:
        from pyterrier_gradrel.retrieval import baselines

        return baselines(dataset_id, encoder=enc)[name]

    settings, engine = bm25_settings()
    description.update(bm25=settings, bm25_engine=engine)
    return System(name, _sha("baseline", name, enc.fingerprint(), settings), factory, description)


def as_system(system: Any, *, name: str | None = None, fingerprint: str | None = None,
              precision: str = "float32", threads: int | None = None) -> System:
    """Turn what the user passed into a :class:`System`.

    ``system`` may be a :class:`System`, a baseline name (``"BM25"``), a model name or folder, an encoder
    object (anything with ``fingerprint()`` and ``encode_queries``) or a factory ``dataset_id -> pt.Transformer``.
    A baseline's mE5 model is loaded in ``precision`` (part of its fingerprint) and ``name`` renames it (its
    results then go to that name's folder; the fingerprint is the baseline's).
    """
    if isinstance(system, System):
        return system
    if isinstance(system, str) and system in BASELINES:
        baseline = baseline_system(system, precision=precision, threads=threads)
        return replace(baseline, name=name) if name else baseline
    if isinstance(system, str | Path):
        return encoder_system(system, name=name, precision=precision, threads=threads)
    if callable(getattr(system, "fingerprint", None)) and hasattr(system, "encode_queries"):
        return encoder_system(system, name=name)
    if callable(system):
        return factory_system(system, name=name, fingerprint=fingerprint)
    raise TypeError(f"system must be a baseline name {list(BASELINES)}, a model name or folder, an encoder "
                    f"with fingerprint(), or a callable dataset_id -> pt.Transformer; got {type(system).__name__}")
