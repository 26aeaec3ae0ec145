"""Fetching source files: mirror copy, download, md5 mismatch, and no network without a mirror.

The network is never touched: the one function that opens URLs (``_download._open_url``) is replaced.
Each test uses its own ir_datasets home, so the real cache is not modified.
"""
from __future__ import annotations

import hashlib
import io
import urllib.error
from pathlib import Path

import pytest

from pyterrier_gradrel.datasets import ChecksumError, DownloadError, collection
from pyterrier_gradrel.datasets import _download as dl


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "irds"))
    return tmp_path / "irds" / "gradrel"


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def refuse(url):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(dl, "_open_url", refuse)
    return calls


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*")] if folder.exists() else []


def test_mirror_copy_is_verified_and_cached(home, mirror, no_network):
    spec = collection("xquad-r").file("de")
    path = dl.fetch(spec)
    assert path == home / "xquad-r" / "de.json"
    assert path.read_bytes() == (mirror / "xquad-r" / "de.json").read_bytes()
    assert dl.md5sum(path) == spec.md5 == "ca34197b707b08bd4e03db4b3640e863"
    assert no_network == []  # the mirror is used, not the URL
    assert dl.fetch(spec) == path  # cached


def test_every_declared_file_is_in_the_mirror_with_its_md5(mirror):
    for name in ("xquad-r", "afriqa"):
        for spec in collection(name).files.values():
            src = mirror / spec.folder / spec.path
            assert src.is_file(), spec.relpath
            assert src.stat().st_size == spec.bytes, spec.relpath
            assert dl.md5sum(src) == spec.md5, spec.relpath
            assert spec.url.startswith("https://raw.githubusercontent.com/") and len(spec.url.split("/")[5]) == 40


def test_md5_mismatch_leaves_no_file(home, tmp_path, monkeypatch, no_network):
    bad = tmp_path / "bad-mirror"
    (bad / "xquad-r").mkdir(parents=True)
    (bad / "xquad-r" / "de.json").write_bytes(b'{"data": []}')
    monkeypatch.setenv(dl.MIRROR_ENV, str(bad))
    spec = collection("xquad-r").file("de")
    with pytest.raises(ChecksumError) as err:
        dl.fetch(spec)
    msg = str(err.value)
    assert "xquad-r/de.json" in msg and spec.md5 in msg and hashlib.md5(b'{"data": []}').hexdigest() in msg
    assert _leftovers(home) in ([], [home / "xquad-r"])  # no file, no temporary left behind
    assert not (home / "xquad-r" / "de.json").exists()


def test_md5_mismatch_keeps_a_good_cached_copy_untouched(home, tmp_path, mirror, monkeypatch, no_network):
    spec = collection("xquad-r").file("en")
    good = dl.fetch(spec)
    bad = tmp_path / "bad-mirror"
    (bad / "xquad-r").mkdir(parents=True)
    (bad / "xquad-r" / "en.json").write_bytes(b"corrupt")
    monkeypatch.setenv(dl.MIRROR_ENV, str(bad))
    with pytest.raises(ChecksumError, match="verified copy already there is kept"):
        dl.fetch(spec, force=True)
    assert dl.md5sum(good) == spec.md5
    assert sorted(p.name for p in good.parent.iterdir()) == ["en.json"]


def test_no_network_and_no_mirror_names_file_url_and_variable(home, monkeypatch, no_network):
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    spec = collection("afriqa").file("gold/hau/test")
    with pytest.raises(DownloadError) as err:
        dl.fetch(spec)
    msg = str(err.value)
    assert spec.relpath in msg and spec.url in msg and dl.MIRROR_ENV in msg
    assert no_network == [spec.url]
    assert _leftovers(home) == [] or not any(p.is_file() for p in _leftovers(home))


def test_missing_mirror_file_names_the_mirror_and_url(home, tmp_path, monkeypatch, no_network):
    monkeypatch.setenv(dl.MIRROR_ENV, str(tmp_path / "empty-mirror"))
    spec = collection("xquad-r").file("ro")
    with pytest.raises(DownloadError) as err:
        dl.fetch(spec)
    msg = str(err.value)
    assert "xquad/xquad.ro.json" in msg and str(tmp_path / "empty-mirror") in msg and spec.url in msg
    assert no_network == []


def test_download_path_without_mirror(home, mirror, monkeypatch):
    """Without a mirror the pinned URL is read (served here from the mirror's bytes) and md5-checked."""
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    spec = collection("xquad-r").file("license-lareqa")
    payload = (mirror / spec.folder / spec.path).read_bytes()
    opened = []

    def serve(url):
        opened.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(dl, "_open_url", serve)
    path = dl.fetch(spec)
    assert opened == [spec.url] and path.read_bytes() == payload


def test_corrupted_cache_is_fetched_again(home, mirror, no_network):
    spec = collection("xquad-r").file("vi")
    path = dl.cached_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"truncated")
    assert dl.fetch(spec) == path
    assert dl.md5sum(path) == spec.md5


def test_loading_a_dataset_without_source_raises_the_download_error(home, monkeypatch, no_network):
    from pyterrier_gradrel.datasets import _xquad_r

    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    _xquad_r.load_language.cache_clear()
    try:
        with pytest.raises(DownloadError, match="GRADREL_MIRROR"):
            _xquad_r.load_language("el")
    finally:
        _xquad_r.load_language.cache_clear()


@pytest.mark.parametrize("force", [False, True])
def test_md5_mismatch_removes_a_corrupted_cached_copy_and_says_so(home, tmp_path, monkeypatch, no_network, force):
    spec = collection("xquad-r").file("de")
    target = dl.cached_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"old and truncated")
    bad = tmp_path / "bad-mirror"
    (bad / "xquad-r").mkdir(parents=True)
    (bad / "xquad-r" / "de.json").write_bytes(b"corrupt")
    monkeypatch.setenv(dl.MIRROR_ENV, str(bad))
    with pytest.raises(ChecksumError) as err:
        dl.fetch(spec, force=force)
    assert f"Nothing was written to {target}" in str(err.value)
    assert not target.exists()  # "nothing was written" must not leave the old corrupted copy in place
    assert not force or "corrupted copy that was there has been removed" in str(err.value)
