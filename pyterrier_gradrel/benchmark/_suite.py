"""A benchmark suite declared as data: ``datasets_registry/suites/<name>.yaml``.

A suite is a named, versioned list of tasks. Each task names an ir_datasets id, its group (for the
leaderboard's means), the bootstrap cluster scope and the **data fingerprint** recorded when the suite was
declared: sha256 over the sorted queries (every field), qrels and document pool. A task whose data no longer
hashes to the declared fingerprint is refused (:class:`DataChangedError`), never silently compared.

A suite is frozen once results are published under it; changing a task means a new suite (``gradrel-v2``).
While a suite is being declared, ``gradrel benchmark fingerprint --write`` recomputes and writes every
fingerprint in place (comments and order of the YAML are kept).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyterrier_gradrel._evaluation import MeasureSpec

__all__ = ["DataChangedError", "Suite", "Task", "data_fingerprint", "load_suite", "suite_path",
           "write_fingerprints"]

DEFAULT_SUITE = "gradrel-v1"
#: prefix of every fingerprint string (the hash names itself)
_HASH = "sha256"
_REQUIRED_SUITE = ("name", "version", "main_score", "profile", "depth", "groups", "tasks")
_REQUIRED_TASK = ("name", "dataset", "group", "fingerprint")


class DataChangedError(ValueError):
    """A task's data (queries, qrels or pool) no longer matches the fingerprint its suite or result recorded.

    A ``ValueError``: it reports data the user has to refresh or results to recompute, so the command line shows
    its message as a user error (exit 1), not as an unexpected failure.
    """


@dataclass(frozen=True)
class Task:
    """One task of a suite.

    Attributes:
        name: Task name, unique in the suite, usable as a file name (``xquad-r-de-en``).
        dataset: The ir_datasets id (``gradrel/xquad-r/de-en/test``).
        group: Leaderboard group (``monolingual``, ``cross-lingual``, ``multi``, ``afriqa``).
        fingerprint: ``sha256:<hex>`` of the data at declaration (see :func:`data_fingerprint`), or None
            while the suite is being declared.
        version: The task's version inside the suite.
        cluster_scope: Tasks with the same scope share one bootstrap draw of clusters (articles), because
            their queries are about the same articles (XQuAD-R's test articles in every language).
    """

    name: str
    dataset: str
    group: str
    fingerprint: str | None
    version: int = 1
    cluster_scope: str = ""

    @property
    def scope(self) -> str:
        """The cluster scope (the task's own name when none is declared)."""
        return self.cluster_scope or self.name


@dataclass(frozen=True)
class Suite:
    """A parsed suite declaration.

    Attributes:
        name: ``gradrel-v1``.
        version: The suite version (part of every result).
        main_score: Name of the main score column (``nDCG@10``: graded, gains 2^g - 1).
        rels: The thresholds of the profile (``rel`` = minimum grade counted relevant).
        measures: The profile's measure names as declared (``nDCG@10``, ``R@100``, ``RR@100``), each scored at
            every ``rel`` (:func:`suite_measures` parses them).
        depth: Results per query that are evaluated (the deepest cutoff of the measures).
        groups: Group names in table order.
        tasks: The tasks in table order.
        path: The YAML file the suite was read from.
    """

    name: str
    version: int
    main_score: str
    rels: tuple[int, ...]
    depth: int
    groups: tuple[str, ...]
    tasks: tuple[Task, ...]
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    measures: tuple[str, ...] = ()

    @property
    def hash(self) -> str:
        """``sha256:<hex>`` of the suite's definition: what decides a score and how results are compared.

        Covers the name, version, main score, profile (thresholds and measures), depth, groups and every
        task's name, dataset, group, version, cluster scope and data fingerprint, in order; not comments, key
        order or the file's location. Every result records it; a result whose suite hash differs was scored
        by another definition and is never read as this suite's.
        """
        definition = {"name": self.name, "version": self.version, "main_score": self.main_score,
                      "rels": list(self.rels), "measures": list(self.measures), "depth": self.depth,
                      "groups": list(self.groups),
                      "tasks": [[t.name, t.dataset, t.group, t.version, t.scope, t.fingerprint] for t in self.tasks]}
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return f"{_HASH}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"

    @property
    def folder_name(self) -> str:
        """The results folder of this suite under a results root.

        The suite's name when its definition is the registered suite of that name (or no suite of that name is
        registered); ``<name>@<hash[:12]>`` for an altered copy, so that its results never land beside the
        registered suite's.
        """
        try:
            registered = _registered_hash(self.name)
        except FileNotFoundError:
            return self.name
        return self.name if registered == self.hash else f"{self.name}@{self.hash.split(':')[1][:12]}"

    def task(self, name: str) -> Task:
        """The task called ``name`` (or whose dataset id is ``name``); ``KeyError`` lists the known names."""
        for t in self.tasks:
            if name in (t.name, t.dataset):
                return t
        raise KeyError(f"suite {self.name!r} has no task {name!r}; known: {[t.name for t in self.tasks]}")

    def select(self, names: Iterable[str] | None) -> list[Task]:
        """The tasks named in ``names`` (task names, dataset ids or group names), in suite order; all if None."""
        if names is None:
            return list(self.tasks)
        if isinstance(names, str):
            names = [names]
        wanted = [n for n in names if n]
        chosen: set[str] = set()
        for n in wanted:
            if n in self.groups:
                chosen.update(t.name for t in self.tasks if t.group == n)
            else:
                chosen.add(self.task(n).name)
        return [t for t in self.tasks if t.name in chosen]


def _suites_dirs() -> list[Path]:
    """Where suite files are looked for: the source checkout's ``datasets_registry/suites``, then the package's."""
    dirs = [Path(__file__).resolve().parents[2] / "datasets_registry" / "suites"]
    try:
        from importlib import resources

        dirs.append(Path(str(resources.files("pyterrier_gradrel.datasets_registry") / "suites")))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - a broken install
        pass
    return dirs


def _registered_hash(name: str) -> str:
    """The hash of the registered suite called ``name`` (``FileNotFoundError`` when there is none)."""
    for folder in _suites_dirs():
        path = folder / f"{name}.yaml"
        if path.is_file():
            return load_suite(path).hash
    raise FileNotFoundError(name)


def suite_path(name: str | Path = DEFAULT_SUITE) -> Path:
    """The YAML file of suite ``name`` (a suite name or a path to a ``.yaml`` file).

    Raises:
        FileNotFoundError: No such suite file or registered suite (the message lists the registered names).
        ValueError: ``name`` is a file (or a path) that does not end with ``.yaml`` or ``.yml``.
    """
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise FileNotFoundError(f"suite file {candidate} does not exist")
        return candidate
    if candidate.is_file() or len(candidate.parts) > 1:
        raise ValueError(f"a suite is a registered name or a .yaml file, got {str(name)!r}")
    dirs = list(dict.fromkeys(d.resolve() for d in _suites_dirs()))  # a source checkout is also the package
    for folder in dirs:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml") if not p.stem.endswith(".expected")})
    raise FileNotFoundError(f"no suite {str(name)!r}: expected one of {known} or a .yaml file "
                            f"(looked in {[str(d) for d in dirs]})")


def load_suite(name: str | Path = DEFAULT_SUITE) -> Suite:
    """Read and validate a suite declaration.

    Args:
        name: Suite name (``"gradrel-v1"``) or a path to a suite YAML file.

    Raises:
        FileNotFoundError: No such suite.
        ValueError: The YAML lacks a required key, a task is malformed, names repeat, or a measure is unknown
            (message names the file).
    """
    from pyterrier_gradrel._yaml import load_file

    path = suite_path(name)
    raw = load_file(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a suite must be a mapping with keys {list(_REQUIRED_SUITE)}")
    missing = [k for k in _REQUIRED_SUITE if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing keys {missing} (a suite needs {list(_REQUIRED_SUITE)})")
    groups = tuple(str(g) for g in raw["groups"])
    profile = raw["profile"] or {}
    rels = tuple(int(r) for r in profile.get("rels", ()))
    measures = tuple(str(m) for m in profile.get("measures", ()))
    if not rels or any(r not in (1, 2, 3) for r in rels):
        raise ValueError(f"{path}: profile.rels must be a non-empty list of grades in [1, 2, 3], got {rels}")
    tasks = []
    for i, item in enumerate(raw["tasks"] or []):
        if not isinstance(item, dict) or any(k not in item for k in _REQUIRED_TASK):
            raise ValueError(f"{path}: task #{i} must be a mapping with keys {list(_REQUIRED_TASK)}, got {item!r}")
        task = Task(name=str(item["name"]), dataset=str(item["dataset"]), group=str(item["group"]),
                    fingerprint=item["fingerprint"] or None, version=int(item.get("version", 1)),
                    cluster_scope=str(item.get("cluster_scope") or ""))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", task.name):
            raise ValueError(f"{path}: task name must be a file-name-safe word, got {task.name!r}")
        if task.group not in groups:
            raise ValueError(f"{path}: task {task.name!r} has group {task.group!r}, not one of {list(groups)}")
        if task.fingerprint is not None and not re.fullmatch(rf"{_HASH}:[0-9a-f]{{64}}", task.fingerprint):
            raise ValueError(f"{path}: task {task.name!r} fingerprint must be '{_HASH}:<64 hex>', got {task.fingerprint!r}")
        tasks.append(task)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"{path}: task names must be unique and non-empty, got {names}")
    suite = Suite(name=str(raw["name"]), version=int(raw["version"]), main_score=str(raw["main_score"]),
                  rels=rels, depth=int(raw["depth"]), groups=groups, tasks=tuple(tasks), path=path, raw=raw,
                  measures=measures)
    try:
        suite_measures(suite)
    except ValueError as exc:
        raise ValueError(f"{path}: main_score / profile.measures: {exc}") from None
    return suite


@lru_cache(maxsize=16)
def _parse(main_score: str, profile: tuple[str, ...], rels: tuple[int, ...], depth: int) -> tuple[MeasureSpec, ...]:
    # pandas and ir_measures are imported only when a suite is loaded
    from pyterrier_gradrel._evaluation import parse_measures

    specs = parse_measures(graded=[main_score], binary=profile, rels=rels, depth=depth)
    graded, binary = specs[:1], specs[1:]
    # the threshold profile in table order: per rel, the profile's measures as declared
    binary.sort(key=lambda spec: rels.index(spec.rel))
    return (*graded, *binary)


def suite_measures(suite: Suite) -> list[MeasureSpec]:
    """The suite's measures in table order: the main score (graded), then per ``rel`` the profile's measures.

    Raises:
        ValueError: The suite's ``main_score`` (a graded nDCG) or ``profile.measures`` is not a measure name
            :func:`pyterrier_gradrel._evaluation.parse_measures` knows, or a cut-off exceeds the suite's depth.
    """
    specs = _parse(suite.main_score, tuple(suite.measures), tuple(suite.rels), int(suite.depth))
    if specs[0].label != suite.main_score:
        raise ValueError(f"suite {suite.name}: main_score {suite.main_score!r} must be written as its label "
                         f"{specs[0].label!r}")
    deeper = [s.label for s in specs if (s.cutoff or 0) > suite.depth]
    if deeper:
        raise ValueError(f"suite {suite.name}: measures {deeper} cut deeper than the evaluated depth {suite.depth}")
    return list(specs)


def _line(*values: Any) -> bytes:
    return ("\t".join(str(v) for v in values) + "\n").encode("utf-8")


def data_fingerprint(dataset_id: str) -> str:
    """``sha256:<hex>`` over a dataset's sorted queries (all fields), qrels and document pool.

    The pool is part of the hash because a changed passage text changes every system's scores as surely as
    a changed query does.
    """
    import ir_datasets

    import pyterrier_gradrel  # noqa: F401  (registers the gradrel datasets)

    ds = ir_datasets.load(dataset_id)
    if not (ds.has_queries() and ds.has_qrels()):
        raise ValueError(f"{dataset_id!r} has no queries or qrels: a task needs a split id such as "
                         f"'gradrel/xquad-r/de/test'")
    digest = hashlib.sha256()
    digest.update(b"queries\n")
    for q in sorted(tuple(q) for q in ds.queries_iter()):
        digest.update(_line(*q))
    digest.update(b"qrels\n")
    for r in sorted((r.query_id, r.doc_id, int(r.relevance)) for r in ds.qrels_iter()):
        digest.update(_line(*r))
    digest.update(b"docs\n")
    for d in sorted((d.doc_id, d.text) for d in ds.docs_iter()):
        digest.update(_line(*d))
    return f"{_HASH}:{digest.hexdigest()}"


def check_task_data(task: Task, *, cache: dict[str, str] | None = None) -> str:
    """The task's current data fingerprint, checked against the declared one.

    Raises:
        DataChangedError: The data differs from the declaration (or the task has no declared fingerprint).
    """
    cache = {} if cache is None else cache
    if task.dataset not in cache:
        cache[task.dataset] = data_fingerprint(task.dataset)
    actual = cache[task.dataset]
    if task.fingerprint is None:
        raise DataChangedError(f"task {task.name!r} ({task.dataset}) has no declared fingerprint; declare it with "
                               "`gradrel benchmark fingerprint --write` before evaluating")
    if actual != task.fingerprint:
        raise DataChangedError(
            f"task {task.name!r}: the data of {task.dataset} hashes to {actual}, but the suite declared "
            f"{task.fingerprint}. Results under this suite would not be comparable; if the change is intended, "
            "declare a new suite version (or, before any result is published, rerun "
            "`gradrel benchmark fingerprint --write`)")
    return actual


def write_fingerprints(suite: str | Path = DEFAULT_SUITE, tasks: Sequence[str] | None = None,
                       *, verbose: bool = True) -> dict[str, str]:
    """Recompute the fingerprints of ``suite``'s tasks and write them into its YAML, keeping the file's text.

    Each task's ``fingerprint:`` value is replaced on the task's own line (tasks are one-line mappings).

    Returns:
        Task name -> new fingerprint.
    """
    from pyterrier_gradrel import _atomic

    spec = load_suite(suite)
    assert spec.path is not None
    text = spec.path.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for task in spec.select(tasks):
        value = data_fingerprint(task.dataset)
        pattern = re.compile(rf"^(\s*-\s*\{{\s*name:\s*{re.escape(task.name)}\s*,.*?fingerprint:\s*)([^,}}]*)",
                             re.MULTILINE)
        text, count = pattern.subn(lambda m, v=value: m.group(1) + v, text)
        if count != 1:
            raise ValueError(f"{spec.path}: expected one one-line entry '- {{name: {task.name}, ..., fingerprint: ...}}', "
                             f"found {count}")
        out[task.name] = value
        if verbose:
            print(f"{task.name:24s} {value}", flush=True)
    _atomic.write_text(spec.path, text)
    return out
