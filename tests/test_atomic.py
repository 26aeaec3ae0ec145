"""Atomic writes: temporaries of killed writers are removed by the next writer, a live writer's never."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pyterrier_gradrel import _atomic


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _tmp_name(target: str, pid: int, host: str | None = None) -> str:
    return f".{target}.{pid}@{host or _atomic._host()}.abcd_123.tmp"


def test_write_is_atomic_and_leaves_nothing_beside_the_target(tmp_path):
    _atomic.write_text(tmp_path / "a.json", "1")
    _atomic.write_text(tmp_path / "a.json", "2")
    with _atomic.atomic_path(tmp_path / "folder") as tmp:
        tmp.mkdir()
        (tmp / "x").write_text("x")
    with _atomic.atomic_path(tmp_path / "folder") as tmp:
        tmp.mkdir()
        (tmp / "y").write_text("y")
    assert (tmp_path / "a.json").read_text() == "2"
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "folder"]


def test_temporary_names_its_owner(tmp_path):
    with _atomic.atomic_path(tmp_path / "model") as tmp:
        assert tmp.parent.name.startswith(f".model.{os.getpid()}@{_atomic._host()}.")
        assert tmp.parent.name.endswith(".tmp")
        tmp.mkdir()


def test_stale_temporary_of_a_dead_writer_is_removed_a_live_ones_kept(tmp_path, live_pid):
    stale = tmp_path / _tmp_name("model", _dead_pid())
    live = tmp_path / _tmp_name("model", live_pid)
    other_host = tmp_path / _tmp_name("model", _dead_pid(), host="elsewhere")
    other_target = tmp_path / _tmp_name("model2", _dead_pid())
    for d in (stale, live, other_host, other_target):
        (d / "model").mkdir(parents=True)
        (d / "model" / "weights.bin").write_bytes(b"\0" * 1024)
    with _atomic.atomic_path(tmp_path / "model") as tmp:
        tmp.mkdir()
    assert not stale.exists()
    assert live.exists() and other_host.exists() and other_target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other_host.name, other_target.name, "model"])


def test_a_writer_killed_by_sigkill_is_cleaned_up_by_the_next(tmp_path):
    target = tmp_path / "collections" / "bk"
    script = textwrap.dedent(f"""
        import os, signal
        from pyterrier_gradrel._atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.mkdir()
            (tmp / "docs.jsonl").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent, check=False)
    assert proc.returncode == -9
    left = [p.name for p in target.parent.iterdir()]
    assert len(left) == 1 and left[0].startswith(".bk.") and left[0].endswith(".tmp")  # what a kill leaves
    with _atomic.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "docs.jsonl").write_text("whole")
    assert [p.name for p in target.parent.iterdir()] == ["bk"]
    assert (target / "docs.jsonl").read_text() == "whole"


def test_remove_stale_alone_and_old_folder_is_restored_when_target_is_missing(tmp_path):
    pid = _dead_pid()
    old = tmp_path / f".model.old-{pid}@{_atomic._host()}"  # killed between the two renames of a folder write
    old.mkdir()
    (old / "config.json").write_text("{}")
    tmp = tmp_path / _tmp_name("model", pid)
    tmp.mkdir()
    removed = _atomic.remove_stale(tmp_path / "model")
    assert removed == [tmp]
    assert (tmp_path / "model" / "config.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_stale_old_folder_beside_an_existing_target_is_removed(tmp_path):
    (tmp_path / "model").mkdir()
    old = tmp_path / f".model.old-{_dead_pid()}"  # format without host
    old.mkdir()
    _atomic.remove_stale(tmp_path / "model")
    assert not old.exists() and (tmp_path / "model").is_dir()


def test_temporaries_without_owner_are_removed_only_when_old(tmp_path):
    recent = tmp_path / ".model.abcd1234.tmp"
    ancient = tmp_path / ".model.wxyz5678.tmp"
    recent.mkdir()
    ancient.mkdir()
    long_ago = time.time() - _atomic.LEGACY_MAX_AGE_S - 60
    os.utime(ancient, (long_ago, long_ago))
    _atomic.write_text(tmp_path / "model", "x")
    assert recent.exists() and not ancient.exists()
