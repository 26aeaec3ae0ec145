"""Inter-process locks around cache builds: two processes needing one index build it once.

The pattern (see :func:`build_once`): look for the finished cache; if it is missing, take the cache's
lock, look again (another process may have finished it while this one waited) and only then build.
The build itself still writes through :mod:`._atomic`, so a reader without the lock never sees half
an index.

The lock is an exclusive ``fcntl.flock`` on ``<cache>.lock``: the kernel releases it when its owner
exits, however it dies (SIGKILL, OOM killer, a lost Ray worker), so a stale lock can never block a
later build; the file holds the owner's host and pid only so that a waiting process can say whom it
waits for. ``flock`` also works on NFS (Linux maps it onto NFS byte-range locks), where Ray workers on
several nodes share one ``$GRADREL_HOME``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

_log = logging.getLogger(__name__)
T = TypeVar("T")


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of the cache at ``target``: ``<target>.lock`` beside it."""
    target = Path(target)
    return target.with_name(target.name + ".lock")


@contextlib.contextmanager
def file_lock(target: str | os.PathLike, *, timeout: float | None = None, poll: float = 0.2) -> Iterator[Path]:
    """Hold the exclusive lock of ``target`` (a cache file or folder) for the ``with`` block.

    Args:
        target: The cache path the lock protects; the lock file is :func:`lock_path` of it.
        timeout: Seconds to wait for another holder before ``TimeoutError``; ``None`` waits as long as
            the holder lives (a dead holder's lock is released by the kernel at once).
        poll: Seconds between attempts while another process holds the lock.

    Yields:
        The lock file's path.
    """
    import fcntl

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        logged = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if timeout is not None and waited >= timeout:
                    raise TimeoutError(f"waited {waited:.0f} s for the lock {path} (held by {_owner(path)}); "
                                       f"expected its holder to finish its build within {timeout:g} s") from None
                if not logged:
                    _log.info("waiting for %s, held by %s", path, _owner(path))
                    logged = True
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _owner(path: Path) -> str:
    try:
        owner = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "an unknown process"
    return f"pid {owner['pid']} on {owner['host']} since {owner['since']}" if owner else "an unknown process"


def build_once(target: str | os.PathLike, done: Callable[[], bool], build: Callable[[], T]) -> T | None:
    """Run ``build()`` unless ``done()``; concurrent callers for one ``target`` build it once.

    Returns:
        ``build()``'s value when this call built the cache, ``None`` when it was (or became) done.
    """
    if done():
        return None
    with file_lock(target):
        if done():  # another process built it while this one waited
            return None
        return build()
