"""Anything that answers queries, as a benchmark system: a name, a fingerprint and a pipeline per task.

* an encoder: a model name or folder (:func:`pyterrier_gradrel.models.load_encoder`) or an object with
  ``fingerprint()`` (``E5BiEncoder``), retrieved with :func:`pyterrier_gradrel.retrieval.dense`;
* a factory ``dataset_id -> pt.Transformer`` (any PyTerrier pipeline);
* a named baseline (:data:`pyterrier_gradrel.retrieval.BASELINES`), mE5 in float32 so that its pinned scores
  reproduce on any CPU.

The system fingerprint names the result folder: an encoder's is its weights hash (precision included); a
factory's is the hash of its qualified name and source code, unless the caller gives one.
"""
from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# the light home of the baseline names (importing retrieval._baselines would load PyTerrier)
from pyterrier_gradrel.retrieval._names import BASELINES

__all__ = ["System", "as_system", "baseline_system"]

_BASELINE_ENCODER = "multilingual-e5-small"


@dataclass
class System:
    """A system under evaluation.

    Attributes:
        name: Display name (also the result folder, made file-name safe).
        fingerprint: Hex digest identifying what produces the runs.
        factory: ``dataset_id -> pt.Transformer`` (query frame -> result frame).
        description: What the system is, for the result JSON (kind, model, settings, device, precision).
    """

    name: str
    fingerprint: str
    factory: Callable[[str], Any]
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The name as a folder name (``BM25>>mE5`` -> ``BM25__mE5``)."""
        return re.sub(r"[^A-Za-z0-9._=+-]+", "_", self.name).strip("_") or "system"


def _sha(*parts: Any) -> str:
    return hashlib.sha256("\n".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def _encoder_description(encoder: Any) -> dict[str, Any]:
    device = getattr(encoder, "device", None)
    return {"kind": "encoder", "class": type(encoder).__name__, "path": str(getattr(encoder, "path", "") or ""),
            "base": (getattr(encoder, "settings", None) or {}).get("base"),
            "precision": getattr(encoder, "precision", None), "device": str(device) if device is not None else None}


def _load(encoder: Any, precision: str, threads: int | None) -> Any:
    if isinstance(encoder, str | Path):
        from pyterrier_gradrel.models import load_encoder

        return load_encoder(str(encoder), precision=precision, num_threads=threads)
    return encoder


def encoder_system(encoder: Any, *, name: str | None = None, precision: str = "float32",
                   threads: int | None = None, backend: str = "numpy") -> System:
    """An encoder as a system: exact dense retrieval over each task's pool (vectors cached per pool)."""
    from pyterrier_gradrel.retrieval import dense

    enc = _load(encoder, precision, threads)
    # a name or folder names the system; an encoder object is named after the folder it was loaded from
    source = encoder if isinstance(encoder, str | Path) else (getattr(enc, "path", None) or type(enc).__name__)
    label = name or Path(str(source)).name
    fingerprint = getattr(enc, "fingerprint", None)
    if not callable(fingerprint):
        raise TypeError(f"an encoder system needs fingerprint() (e.g. an E5BiEncoder), got {type(enc).__name__}")
    description = {**_encoder_description(enc), "model": str(encoder) if isinstance(encoder, str | Path) else label,
                   "retrieval": f"pyterrier_gradrel.retrieval.dense(backend={backend!r})"}
    return System(label, _sha("encoder", fingerprint(), backend),
                  lambda dataset_id: dense(enc, dataset_id, backend=backend), description)


def factory_system(factory: Callable[[str], Any], *, name: str | None = None,
                   fingerprint: str | None = None) -> System:
    """A factory ``dataset_id -> pt.Transformer`` as a system.

    Args:
        factory: Called once per task with the task's dataset id.
        name: Display name (default: the factory's qualified name).
        fingerprint: What identifies the system's runs (default: sha256 of the factory's qualified name and
            source, so editing the factory's code starts a new result folder; code it calls is not hashed:
            pass a fingerprint, e.g. a version string, when that matters).
    """
    if not callable(factory):
        raise TypeError(f"a system is an encoder or a callable dataset_id -> pt.Transformer, got {factory!r}")
    qualname = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', type(factory).__name__)}"
    try:
        source = inspect.getsource(factory)
    except (OSError, TypeError):
        source = repr(factory)
    fp = _sha("factory", fingerprint) if fingerprint is not None else _sha("factory", qualname, source)
    return System(name or qualname.split(":")[-1], fp, factory,
                  {"kind": "factory", "factory": qualname, "fingerprint_from": "given" if fingerprint else "source"})


def baseline_system(name: str, *, encoder: Any = None, precision: str = "float32",
                    threads: int | None = None) -> System:
    """One of the named baselines as a system.

    Args:
        name: One of :data:`pyterrier_gradrel.retrieval.BASELINES`.
        encoder: The dense model of the mE5 baselines (default multilingual-e5-small).
        precision: Inference precision of that model (default float32: the pinned scores are float32).
        threads: torch threads while encoding.
    """
    from pyterrier_gradrel.retrieval import AUTO_TOKENIZER

    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {list(BASELINES)}, got {name!r}")
    bm25_settings = f"pisa k1=0.9 b=0.4 tokenizer={AUTO_TOKENIZER}"
    if name == "BM25":
        from pyterrier_gradrel.retrieval import bm25

        return System(name, _sha("baseline", name, bm25_settings), lambda dataset_id: bm25(dataset_id),
                      {"kind": "baseline", "baseline": name, "bm25": bm25_settings})
    enc = _load(encoder if encoder is not None else _BASELINE_ENCODER, precision, threads)
    description = {"kind": "baseline", "baseline": name, "encoder": _encoder_description(enc),
                   "model": str(encoder or _BASELINE_ENCODER)}
    if name == "mE5-zero-shot":
        from pyterrier_gradrel.retrieval import dense

        return System(name, _sha("baseline", name, enc.fingerprint()),
                      lambda dataset_id: dense(enc, dataset_id), description)

    def factory(dataset_id: str) -> Any:
        from pyterrier_gradrel.retrieval import baselines

        return baselines(dataset_id, encoder=enc)[name]

    description["bm25"] = bm25_settings
    return System(name, _sha("baseline", name, enc.fingerprint(), bm25_settings), factory, description)


def as_system(system: Any, *, name: str | None = None, fingerprint: str | None = None,
              precision: str = "float32", threads: int | None = None) -> System:
    """Turn what the user passed into a :class:`System`.

    ``system`` may be a :class:`System`, a baseline name (``"BM25"``), a model name or folder, an encoder
    object (anything with ``fingerprint()`` and ``encode_queries``) or a factory ``dataset_id -> pt.Transformer``.
    """
    if isinstance(system, System):
        return system
    if isinstance(system, str) and system in BASELINES:
        return baseline_system(system, threads=threads)
    if isinstance(system, str | Path):
        return encoder_system(system, name=name, precision=precision, threads=threads)
    if callable(getattr(system, "fingerprint", None)) and hasattr(system, "encode_queries"):
        return encoder_system(system, name=name)
    if callable(system):
        return factory_system(system, name=name, fingerprint=fingerprint)
    raise TypeError(f"system must be a baseline name {list(BASELINES)}, a model name or folder, an encoder "
                    f"with fingerprint(), or a callable dataset_id -> pt.Transformer; got {type(system).__name__}")
