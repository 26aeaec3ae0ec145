"""Where pyterrier-gradrel keeps its caches (converted models, indexes, embeddings, runs)."""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The cache root: ``$GRADREL_HOME`` if set, else ``~/.cache/pyterrier_gradrel``."""
    root = os.environ.get("GRADREL_HOME")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "pyterrier_gradrel"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(*parts: str) -> Path:
    """A sub-folder of :func:`home` (created), e.g. ``cache_dir('models', 'mE5-small')``."""
    path = home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
