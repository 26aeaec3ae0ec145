"""Atomic file and folder writes: a reader never sees a half-written file, a crash loses nothing.

A write goes to a temporary folder beside the target, ``.<name>.<pid>@<host>.<random>.tmp``, and is
renamed onto the target when complete. A process killed mid-write (SIGKILL, power loss) leaves that
temporary behind; the next write of the same target (or :func:`remove_stale`) removes the temporaries
whose owning process, named by the pid and host in the name, is no longer alive. A live writer's
temporary is never removed, so two processes (or threads) may write the same target at once: the last rename
wins. A folder that replaces a folder moves the old one aside first (``.<name>.old-<pid>@<host>.<random>``, a
name unique per write), retrying when another writer's rename comes in between (:func:`_swap_in`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "is_temporary", "remove_stale", "write_bytes", "write_text"]

#: Temporaries in the format without owner (``.<name>.<8 random chars>.tmp``) are removed only when
#: untouched for this long: their writer cannot be asked whether it is alive, and no single write runs
#: this long.
LEGACY_MAX_AGE_S = 24 * 3600

#: How often a write moves aside a folder that another writer put in place between its two renames before
#: giving up (each retry means another writer's rename landed in that window)
SWAP_ATTEMPTS = 1000

#: rename(2) errors that mean "the target is a folder in the way": not empty (Linux, macOS) or a file
#: onto a folder
_IN_THE_WAY = (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _owner() -> str:
    return f"{os.getpid()}@{_host()}"


def _alive(pid: int, host: str | None) -> bool:
    """Whether process ``pid`` may still be writing. Another host's process cannot be asked: assumed alive."""
    if host is not None and host != _host():
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:  # pragma: no cover - pid out of range and the like
        return False
    return True


def is_temporary(name: str) -> bool:
    """Whether ``name`` (a file or folder name) is one of this module's temporaries or a moved-aside old
    version: ``.<name>.<pid>@<host>.<random>.tmp``, ``.<name>.<8 random chars>.tmp`` (the format without
    owner) or ``.<name>.old-<pid>[@<host>][.<random>]``, whether its writer is alive or not."""
    return bool(re.fullmatch(r"\..+\.\d+@[A-Za-z0-9-]+\.[A-Za-z0-9_]+\.tmp", name)
                or re.fullmatch(r"\..+\.[a-z0-9_]{8}\.tmp", name)
                or re.fullmatch(r"\..+\.old-\d+(?:@[A-Za-z0-9-]+)?(?:\.[A-Za-z0-9_]+)?", name))


def _stale(name: str, target_name: str, now: float, entry: os.DirEntry) -> bool:
    t = re.escape(target_name)
    m = (re.fullmatch(rf"\.{t}\.(\d+)@([A-Za-z0-9-]+)\.[A-Za-z0-9_]+\.tmp", name)
         or re.fullmatch(rf"\.{t}\.old-(\d+)(?:@([A-Za-z0-9-]+))?(?:\.[A-Za-z0-9_]+)?", name))
    if m:
        return not _alive(int(m.group(1)), m.group(2))
    if re.fullmatch(rf"\.{t}\.[a-z0-9_]{{8}}\.tmp", name):
        try:
            return now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_MAX_AGE_S
        except OSError:
            return False
    return False


def remove_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of writes of ``target`` whose writing process has died.

    Args:
        target: The file or folder that :func:`atomic_path` writes.

    A previous version of a folder that a killed writer had moved aside (``.<name>.old-<pid>@<host>``)
    is put back when ``target`` itself is missing.

    Returns:
        The removed paths (restored ones not included).
    """
    target = Path(target)
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(target.parent))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if entry.name.startswith(f".{target.name}.") and _stale(entry.name, target.name, now, entry):
            path = Path(entry.path)
            if ".old-" in entry.name and not os.path.lexists(target):
                # killed between the two renames of a folder write: the previous version is the complete one
                with contextlib.suppress(OSError):
                    os.replace(path, target)
                    continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    Works for files and folders. On error the temporary path is removed and ``target`` is untouched.
    Temporaries left by killed writers of the same target are removed first (:func:`remove_stale`).
    Concurrent writers of one target (processes or threads) each complete; the last rename wins.

    Raises:
        ValueError: ``target`` is a folder and what was written is a file: a folder is replaced only by a folder
            (a file written onto, say, an output folder given by mistake would delete the folder).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_owner()}.", suffix=".tmp", dir=target.parent))
    tmp_target = tmp / target.name
    try:
        yield tmp_target
        _refuse_file_over_folder(target, tmp_target)
        _swap_in(tmp_target, target, tmp.name.split(".")[-2])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, target: Path, tag: str) -> None:
    """Rename ``new`` onto ``target``; a folder in the way is moved aside (then removed) and the rename retried.

    A rename replaces a file (or an absent target) in one step. A folder cannot be renamed over, so it is
    first moved to ``.<name>.old-<pid>@<host>.<tag>`` (``tag``: this write's random part, so concurrent
    writers, threads included, never share the name). Between the two renames another writer may move the
    folder away (the move finds nothing: try again) or put its own in place (the rename finds a folder in the
    way: move that one aside too); either way the rename is retried, so every concurrent write completes and
    the last one wins.

    Raises:
        OSError: when ``new`` cannot go onto ``target`` for another reason (a folder onto a file, say), or
            after :data:`SWAP_ATTEMPTS` folders put in the way.
    """
    olds: list[Path] = []
    try:
        for attempt in range(SWAP_ATTEMPTS):
            try:
                os.replace(new, target)
                return
            except OSError as exc:
                if exc.errno not in _IN_THE_WAY:
                    raise
                try:  # one look at what is in the way now
                    in_the_way = os.lstat(target).st_mode
                except FileNotFoundError:  # another writer moved it away meanwhile: try again
                    continue
                if not stat.S_ISDIR(in_the_way):  # not a folder: no race explains it
                    raise
            old = target.with_name(f".{target.name}.old-{_owner()}.{tag}{attempt or ''}")
            with contextlib.suppress(FileNotFoundError):  # another writer moved it first: retry the rename
                os.replace(target, old)
                olds.append(old)
        raise OSError(errno.EBUSY, f"gave up replacing {target}: other writers put a folder there "
                                   f"{SWAP_ATTEMPTS} times while this one moved it aside")
    finally:
        for old in olds:
            shutil.rmtree(old, ignore_errors=True)


def _refuse_file_over_folder(target: Path, written: Path) -> None:
    """Raise ``ValueError`` when ``written`` is a file and ``target`` an existing (real) folder."""
    if target.is_dir() and not target.is_symlink() and not written.is_dir():
        raise ValueError(f"{target} is a folder: refusing to replace it with a file (give a file path)")


def write_text(target: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
