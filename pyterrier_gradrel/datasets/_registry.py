"""The declarative collection descriptions in ``datasets_registry/*.yaml``, read once per process."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

REGISTRY_PACKAGE = "pyterrier_gradrel.datasets_registry"
_REQUIRED = ("collection", "title", "loader", "structural", "default_rel", "grades", "license", "citation")


@dataclass(frozen=True)
class FileSpec:
    """One source file of a collection.

    Attributes:
        key: The file's name inside its collection (e.g. ``"de"`` or ``"gold/hau/test"``).
        folder: The collection folder below ``$GRADREL_MIRROR`` and the download cache.
        path: The path inside ``folder`` (the path in the source repository).
        url: A commit-pinned public URL serving the exact bytes.
        md5: The expected md5 of those bytes.
        bytes: The expected size.
    """

    key: str
    folder: str
    path: str
    url: str
    md5: str
    bytes: int

    @property
    def relpath(self) -> str:
        """``<folder>/<path>``: where the file lies below the mirror and below the cache."""
        return f"{self.folder}/{self.path}"


@dataclass(frozen=True)
class CollectionSpec:
    """A parsed ``datasets_registry/<collection>.yaml``."""

    name: str
    title: str
    loader: str
    structural: bool
    default_rel: int
    grades: dict[int, str]
    license: str
    citation: str
    text_version: int = 1
    languages: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, FileSpec] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def file(self, key: str) -> FileSpec:
        """The :class:`FileSpec` called ``key``; ``KeyError`` lists the known keys."""
        try:
            return self.files[key]
        except KeyError:
            raise KeyError(f"collection {self.name!r} has no file {key!r}; known: {sorted(self.files)}") from None


def _parse(source: str, data: dict[str, Any]) -> CollectionSpec:
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{source}: missing required keys {missing} (required: {list(_REQUIRED)})")
    grades = {int(k): str(v) for k, v in data["grades"].items()}
    if sorted(grades) != list(range(max(grades) + 1)):
        raise ValueError(f"{source}: grades must be 0..n without gaps, got {sorted(grades)}")
    default_rel = int(data["default_rel"])
    if default_rel not in grades or default_rel == 0:
        raise ValueError(f"{source}: default_rel must be one of {sorted(g for g in grades if g)}, got {default_rel}")
    files = {}
    for key, spec in (data.get("files") or {}).items():
        try:
            files[key] = FileSpec(key=key, folder=spec["folder"], path=spec["path"], url=spec["url"],
                                  md5=spec["md5"], bytes=int(spec["bytes"]))
        except KeyError as exc:
            raise ValueError(f"{source}: file {key!r} lacks {exc.args[0]!r} (needs folder, path, url, md5, bytes)") from None
    return CollectionSpec(
        name=data["collection"], title=data["title"], loader=data["loader"], structural=bool(data["structural"]),
        default_rel=default_rel, grades=grades, license=data["license"], citation=data["citation"],
        text_version=int(data.get("text_version", 1)), languages=dict(data.get("languages") or {}), files=files, raw=data,
    )


@functools.cache
def collections() -> dict[str, CollectionSpec]:
    """All collections declared in ``datasets_registry``, by name (parsed once per process)."""
    from pyterrier_gradrel._yaml import loads

    out: dict[str, CollectionSpec] = {}
    for entry in sorted(resources.files(REGISTRY_PACKAGE).iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        spec = _parse(entry.name, loads(entry.read_text(encoding="utf-8"), source=str(entry)))
        if spec.name in out:
            raise ValueError(f"{entry.name}: collection {spec.name!r} is declared twice")
        out[spec.name] = spec
    return out


def collection(name: str) -> CollectionSpec:
    """The :class:`CollectionSpec` called ``name``; ``ValueError`` names the declared collections."""
    specs = collections()
    if name not in specs:
        raise ValueError(f"unknown collection {name!r}; declared collections: {sorted(specs)}")
    return specs[name]
