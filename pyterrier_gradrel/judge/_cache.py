"""An on-disk, append-only JSONL cache of judgements, safe against crashes.

Each judgement is one JSON line keyed by ``sha256(judge model, prompt version, query, passage text)``.
Every record is written with a single ``os.write`` of the whole line to a file opened with ``O_APPEND``
and then ``fsync``-ed, so a killed run loses at most the line being written; a torn last line is
ignored on load (and the next append starts on a fresh line). A restarted run therefore judges only
the pairs that are missing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pyterrier_gradrel.judge._prompt import PROMPT_VERSION

logger = logging.getLogger(__name__)


def judgement_key(model_id: str, query: str, text: str, *, prompt_version: str = PROMPT_VERSION) -> str:
    """The cache key of one judgement: sha256 over (judge model, prompt version, query, passage text)."""
    blob = json.dumps([model_id, prompt_version, query, text], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:120] or "judge"


class JudgementCache:
    """An append-only JSONL file of judgements (one per line), loaded into memory on open.

    Args:
        path: the JSONL file. ``None`` uses ``$GRADREL_HOME/judgements/<name>.jsonl``.
        name: file stem when ``path`` is ``None`` (e.g. the judge's ``model_id``), default ``"judgements"``.
        fsync: ``fsync`` after every append (default ``True``: a crash loses nothing that was reported).

    Records are dicts with at least ``key`` and ``grade`` (int or ``None`` for a recorded unparseable
    answer). Later records for a key override earlier ones.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, name: str | None = None, fsync: bool = True) -> None:
        if path is None:
            from pyterrier_gradrel._paths import cache_dir

            path = cache_dir("judgements") / f"{_slug(name or 'judgements')}.jsonl"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = bool(fsync)
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._needs_newline = False
        self.skipped_lines = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self._needs_newline = True  # a torn last line from a crash: the next append starts a new line
        for lineno, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                self.skipped_lines += 1
                logger.warning("%s:%d: skipping an unreadable cache line (a torn write?)", self.path, lineno)
                continue
            self._records[record["key"]] = record

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._records))

    def get(self, key: str) -> dict[str, Any] | None:
        """The record stored for ``key``, or ``None``."""
        return self._records.get(key)

    def records(self) -> list[dict[str, Any]]:
        """All records (the latest one per key)."""
        return list(self._records.values())

    def put(self, key: str, record: Mapping[str, Any]) -> None:
        """Append ``record`` under ``key`` durably (one ``os.write`` of the full line, then ``fsync``)."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty str, got {key!r}")
        full = {"key": key, **{k: v for k, v in record.items() if k != "key"}}
        line = json.dumps(full, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            payload = (("\n" if self._needs_newline else "") + line).encode("utf-8")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, payload)
                while written < len(payload):  # regular files write fully; stay correct if not
                    written += os.write(fd, payload[written:])
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._needs_newline = False
            self._records[key] = full

    def __repr__(self) -> str:
        return f"JudgementCache({str(self.path)!r}, records={len(self)})"
