"""Fetch the benchmark's source files: from a local mirror or their pinned URL, md5-verified, atomically.

Files are cached under ``<ir_datasets home>/gradrel/<folder>/<path>`` (``$IR_DATASETS_HOME``, by default
``~/.ir_datasets``). When ``$GRADREL_MIRROR`` is set, the file is copied from
``$GRADREL_MIRROR/<folder>/<path>`` and the network is never touched; otherwise it is downloaded from its
commit-pinned URL. Either way the bytes are checked against the md5 declared in ``datasets_registry``
before they appear in the cache, so a mismatch or an interrupted transfer leaves no file behind.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pyterrier_gradrel._atomic import atomic_path
from pyterrier_gradrel.datasets._registry import FileSpec

MIRROR_ENV = "GRADREL_MIRROR"
_CHUNK = 1 << 20
_TIMEOUT_S = 60
_logger = logging.getLogger(__name__)
_verified: set[Path] = set()  # cached files whose md5 was checked in this process
_lock = threading.Lock()


class DownloadError(RuntimeError):
    """A source file could not be obtained (no mirror copy, no network, ...)."""


class ChecksumError(DownloadError):
    """A source file's bytes do not match the md5 declared in ``datasets_registry``."""


def cache_root() -> Path:
    """``<ir_datasets home>/gradrel``: the folder holding fetched source files."""
    import ir_datasets

    return Path(ir_datasets.util.home_path()) / "gradrel"


def cached_path(spec: FileSpec) -> Path:
    """Where ``spec`` lies (or will lie) in the cache."""
    return cache_root() / spec.folder / spec.path


def mirror_root() -> Path | None:
    """The mirror folder from ``$GRADREL_MIRROR``, or ``None`` when the variable is unset or empty."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def md5sum(path: Path) -> str:
    """The md5 hex digest of the file at ``path``."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_url(url: str) -> IO[bytes]:
    """Open ``url`` for reading (the one place that touches the network; tests replace it)."""
    import urllib.request

    return urllib.request.urlopen(url, timeout=_TIMEOUT_S)  # noqa: S310 (commit-pinned https URLs)


@contextmanager
def _source(spec: FileSpec) -> Iterator[tuple[IO[bytes], str]]:
    """Yield ``(stream, description)`` for the mirror copy of ``spec`` or its URL."""
    mirror = mirror_root()
    if mirror is not None:
        src = mirror / spec.folder / spec.path
        if not src.is_file():
            raise DownloadError(
                f"{spec.relpath}: not found in the mirror {MIRROR_ENV}={mirror} (looked for {src}). "
                f"Put the file there (it is served by {spec.url}) or unset {MIRROR_ENV} to download it."
            )
        with open(src, "rb") as f:
            yield f, str(src)
        return
    try:
        stream = _open_url(spec.url)
    except OSError as exc:  # URLError, timeouts, DNS failures are all OSErrors
        raise DownloadError(
            f"{spec.relpath}: cannot download {spec.url} ({exc}). Without network access, set {MIRROR_ENV} to a "
            f"folder that holds {spec.relpath} (e.g. a copy of the benchmark's shared/data folder)."
        ) from exc
    with stream:
        yield stream, spec.url


def fetch(spec: FileSpec, *, force: bool = False) -> Path:
    """Make sure ``spec`` is in the cache with the right md5 and return its path.

    Args:
        spec: The file to fetch.
        force: Fetch again even if a verified copy is cached.

    Returns:
        The cached file's path.

    Raises:
        DownloadError: The file is neither in the mirror nor downloadable (the message names the file, its
            URL and ``$GRADREL_MIRROR``).
        ChecksumError: The fetched bytes do not match the declared md5; nothing is written to the cache.
    """
    target = cached_path(spec)
    with _lock:
        if not force and target in _verified and target.is_file():
            return target
        if not force and target.is_file():
            if md5sum(target) == spec.md5:
                _verified.add(target)
                return target
            _logger.warning("%s: cached copy has the wrong md5; removing it and fetching it again", target)
            target.unlink()
        with _source(spec) as (stream, origin):
            digest = hashlib.md5()
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as out:
                    for chunk in iter(lambda: stream.read(_CHUNK), b""):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != spec.md5:
                    raise ChecksumError(
                        f"{spec.relpath}: md5 mismatch for the copy from {origin}: expected {spec.md5} "
                        f"(datasets_registry), got {digest.hexdigest()}. Nothing was written to {target}"
                        f"{_old_copy_note(target, spec)}; check the {MIRROR_ENV} folder or the download "
                        f"({spec.url})."
                    )
        _verified.add(target)
        return target


def _old_copy_note(target: Path, spec: FileSpec) -> str:
    """What became of a copy already at ``target`` after a failed fetch: a corrupted one is removed."""
    if not target.is_file():
        return ""
    if md5sum(target) == spec.md5:
        return " (the verified copy already there is kept)"
    target.unlink()
    _verified.discard(target)
    return " (the corrupted copy that was there has been removed)"


def open_text(spec: FileSpec) -> IO[str]:
    """Fetch ``spec`` if needed and open it as UTF-8 text."""
    return open(fetch(spec), encoding="utf-8")


def fetch_all(specs: list[FileSpec], *, force: bool = False) -> list[Path]:
    """Fetch several files (``gradrel datasets fetch``); see :func:`fetch`."""
    return [fetch(spec, force=force) for spec in specs]


def remove_cached(spec: FileSpec) -> None:
    """Delete the cached copy of ``spec`` (if any)."""
    target = cached_path(spec)
    _verified.discard(target)
    if target.is_file():
        target.unlink()
