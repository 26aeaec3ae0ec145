"""Shared caches under concurrency: processes racing on one index build it once; a dead holder blocks nobody."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from pyterrier_gradrel import _lock
from pyterrier_gradrel.retrieval._tokenize import Bm25Tokenizer

DOCS = [{"docno": f"d{i}", "text": f"alpha beta{i} gamma{i % 3}"} for i in range(20)]
_CTX = multiprocessing.get_context("fork")  # the children share the test's imports and $GRADREL_HOME


class SlowTokenizer(Bm25Tokenizer):
    """Whitespace terms; each build appends a line to ``log`` and dawdles so that builders overlap."""

    name = "slow-ws"

    def __init__(self, log: Path) -> None:
        self.log = log
        self.started = False

    def tokenize(self, text: str) -> list[str]:
        if not self.started:
            self.started = True
            with open(self.log, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            time.sleep(0.6)
        return text.split()


class SlowEncoder:
    """The part of an encoder that ``dense_index`` uses: a fingerprint and a (slow, logged) ``encode_docs``."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def fingerprint(self) -> str:
        return "ab" * 32

    def encode_docs(self, texts: list[str]) -> np.ndarray:
        """pyterrier-dr's ``BiEncoder.encode_docs``: one vector per text (from the number in ``beta<i>``)."""
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.6)
        return np.stack([np.full(4, float(t.split()[1][4:]) + 1, dtype=np.float32) for t in texts])


def _bm25_child(log: Path, out: Path) -> None:
    from pyterrier_gradrel.retrieval._bm25 import bm25_index

    index = bm25_index(DOCS, name="race.test.slow-ws", tokenizer=SlowTokenizer(log))
    out.write_text(str(index.num_docs()))


def _dense_child(log: Path, out: Path) -> None:
    from pyterrier_gradrel.retrieval._dense import dense_index

    index = dense_index(SlowEncoder(log), DOCS, corpus="race.test")
    out.write_text(str(len(index)))


def _race(target, tmp_path: Path) -> tuple[list[str], list[str]]:
    log = tmp_path / "builds.log"
    outs = [tmp_path / f"out{i}" for i in range(2)]
    procs = [_CTX.Process(target=target, args=(log, out)) for out in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, f"a racing process failed (exit code {p.exitcode})"
    return log.read_text().split(), [o.read_text() for o in outs]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_two_processes_build_one_bm25_index_once(home, tmp_path):
    builders, counts = _race(_bm25_child, tmp_path)
    assert len(builders) == 1, f"the index was built by {len(builders)} processes"
    assert counts == ["20", "20"]  # the loser waited and opened the winner's index
    assert not any(p.name.endswith(".tmp") for p in (home / "indexes").iterdir())


def test_two_processes_encode_one_pool_once(home, tmp_path):
    import pyterrier_dr  # noqa: F401  (imported once here, not in each forked child)

    builders, counts = _race(_dense_child, tmp_path)
    assert len(builders) == 1, f"the pool was encoded by {len(builders)} processes"
    assert counts == ["20", "20"]


def _hold_then_die(target: Path, ready: Path) -> None:
    with _lock.file_lock(target):
        ready.write_text("held")
        os.kill(os.getpid(), signal.SIGKILL)  # dies holding the lock


def _hold(target: Path, ready: Path, seconds: float) -> None:
    with _lock.file_lock(target):
        ready.write_text("held")
        time.sleep(seconds)


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"the child never took the lock ({path} missing)"
        time.sleep(0.02)


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path):
    target, ready = tmp_path / "cache", tmp_path / "ready"
    p = _CTX.Process(target=_hold_then_die, args=(target, ready))
    p.start()
    p.join(30)
    assert p.exitcode == -signal.SIGKILL and ready.exists()
    t0 = time.monotonic()
    with _lock.file_lock(target, timeout=5):
        pass
    assert time.monotonic() - t0 < 1


def test_lock_waits_for_a_live_holder_and_names_it(tmp_path):
    target, ready = tmp_path / "cache", tmp_path / "ready"
    p = _CTX.Process(target=_hold, args=(target, ready, 1.5))
    p.start()
    try:
        _wait_for(ready)
        with pytest.raises(TimeoutError, match=f"pid {p.pid} on"):
            with _lock.file_lock(target, timeout=0.3, poll=0.05):
                pass
    finally:
        p.join(30)
    with _lock.file_lock(target, timeout=5):
        pass


def test_build_once_skips_a_finished_cache(tmp_path):
    calls = []
    assert _lock.build_once(tmp_path / "c", lambda: False, lambda: calls.append(1) or "built") == "built"
    assert _lock.build_once(tmp_path / "c", lambda: True, lambda: calls.append(1)) is None
    assert calls == [1]
