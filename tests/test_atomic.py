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


_RACE = """
import sys
from pathlib import Path
from pyterrier_gradrel._atomic import atomic_path, write_text
target, writer, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
failures = []
for k in range(n):
    try:
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "a.txt").write_text(f"{writer}-{k}")
            (tmp / "b.txt").write_text(f"{writer}-{k}")
        write_text(target.parent / "note.txt", f"{writer}-{k}")
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
print(len(failures), failures[:3])
"""


def test_two_processes_writing_one_folder_at_once_all_complete(tmp_path):
    target = tmp_path / "out" / "model"
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(target), str(w), "300"], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).parent.parent) for w in range(2)]
    outputs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs == ["0 []", "0 []"]
    a, b = (target / "a.txt").read_text(), (target / "b.txt").read_text()
    assert a == b and a.endswith("-299")  # one writer's complete, last write
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "b.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["model", "note.txt"]


def test_threads_writing_one_folder_use_their_own_old_names(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "model"

    def write(k: int) -> None:
        for i in range(100):
            with _atomic.atomic_path(target) as tmp:
                tmp.mkdir()
                (tmp / "x").write_text(f"{k}-{i}")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(write, range(2)))  # re-raises a writer's error
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (target / "x").read_text().endswith("-99")


def test_single_writer_replacements_and_the_old_folder_name(tmp_path):
    target = tmp_path / "model"
    _atomic.write_text(target, "a file")
    with pytest.raises(NotADirectoryError), _atomic.atomic_path(target) as tmp:  # a folder never replaces a file
        tmp.mkdir()
    assert target.read_text() == "a file"
    old = f".model.old-{_dead_pid()}@{_atomic._host()}.abc_12345"  # moved aside by a write killed mid-swap
    assert _atomic.is_temporary(old)
    target.unlink()
    (tmp_path / old).mkdir()
    _atomic.remove_stale(target)
    assert target.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_file_is_never_written_over_a_folder(tmp_path):
    """An output folder given where a file belongs is refused and kept with its files, not moved aside and deleted."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"out is a folder: refusing to replace it with a file"):
        _atomic.write_text(folder, "report")
    with pytest.raises(ValueError, match="is a folder"), _atomic.atomic_path(folder) as tmp:
        tmp.write_bytes(b"x")
    assert (folder / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with _atomic.atomic_path(folder) as tmp:  # a folder still replaces a folder
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["new.txt"]
