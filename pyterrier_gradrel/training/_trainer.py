"""``ContrastiveTrainer``: threshold-binarized contrastive fine-tuning of an E5-style bi-encoder."""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pyterrier_gradrel import _atomic
from pyterrier_gradrel._device import PRECISION_ALIASES, PRECISIONS, canonical_precision
from pyterrier_gradrel._paths import home
from pyterrier_gradrel.binarize import DEFAULT_GRADES, binarize, neg_max_for, policy_name

__all__ = ["LOSSES", "SIDES", "ContrastiveTrainer", "TrainConfig"]

logger = logging.getLogger(__name__)

LOSSES = ("infonce", "graded")
#: How :meth:`TrainConfig.to_dict` (and so run keys and run folders) spells each precision: the short
#: spelling run identities were first hashed with, kept so that existing runs keep their names.
_IDENTITY_PRECISION = {canonical: alias for alias, canonical in PRECISION_ALIASES.items()}
#: What is fine-tuned: ``"both"`` (one shared encoder for queries and passages, the paper's setting) or
#: ``"query"`` (passages keep the base model's vectors; only the query side learns).
SIDES = ("both", "query")
#: Bumped whenever a code change alters the weights a config trains to (part of every run name), so a
#: cached run of older code is never returned as this code's result. 2: length-grouped sub-batches.
TRAINER_VERSION = 2
_CKPT = "checkpoint.pt"
_DONE = "train_report.json"


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything that decides a fine-tuning run (and so its run name and cache key).

    Attributes:
        rel: τ, the minimum grade counted positive (for ``loss="graded"``: the smallest grade with a
            positive weight is used for sampling positives and ``rel`` is ignored).
        negatives: Negatives policy: ``"zero"``, ``"below"`` or an integer ``neg_max`` < ``rel``.
        grades: The dataset's grade scale.
        unit: Sampling unit, ``"query"`` (default) or ``"pair"``.
        loss: ``"infonce"`` or ``"graded"`` (grade-weighted multi-positive InfoNCE).
        grade_weights: grade → weight for ``loss="graded"`` (default ``2^g - 1``).
        temperature: Softmax temperature (0.05 = scale 20).
        hard_negatives: Hard negatives sampled per example.
        batch_size: Examples per step.
        lr: Peak learning rate (AdamW).
        warmup: Warm-up: a fraction of the total steps if < 1, else a number of steps (linear
            warm-up, then linear decay to 0).
        weight_decay: AdamW weight decay.
        epochs: Passes over the sampling units; ignored when ``max_steps`` is set.
        max_steps: Train exactly this many steps, overriding ``epochs`` (``None``: ``epochs`` full epochs).
            A step is one batch of ``batch_size`` units, so ``max_steps`` may be less or more than one pass
            (12 steps of 16 on 89 training queries are ~2.2 epochs); the training log and the report's
            ``schedule`` say which (see :func:`schedule_note`).
        max_length: Maximum tokens per query/passage in training.
        freeze_embeddings: Freeze the word-embedding matrix (the 250k-row matrix dominates memory).
        seed: Seed of sampling, dropout and subsets.
        fraction: Fraction of training queries kept (nested, stratified by language).
        noise: Grade-noise rate ``p`` (see :mod:`pyterrier_gradrel.training._subsets`).
        negative_split: Only passages of this split may be hard negatives (``None``: any).
        exclude_own_article: Unjudged hard negatives come from outside the query's article.
        checkpoint_every: Steps between checkpoints (0: only at the end of each epoch).
        threads: ``torch.set_num_threads`` during ``fit`` (``None``: leave as is).
        precision: ``"float32"`` (default) or ``"bfloat16"`` (autocast mixed precision for the encoder
            forward/backward, float32 master weights and loss; fast on CPUs with AMX/AVX512-BF16). The
            aliases ``"fp32"``/``"bf16"`` are accepted and stored canonically; :meth:`to_dict` writes the
            short spelling, which run names and keys are hashed with.
        side: ``"both"`` (default: queries and passages share the encoder being tuned) or ``"query"``
            (query-side fine-tuning: passages are scored with the base encoder's vectors, which stay fixed,
            so an index of the base model serves every fine-tuned model; the result loads as a
            :class:`~pyterrier_gradrel.models.QueryTunedEncoder`).
    """

    rel: int = 2
    negatives: str | int = "zero"
    grades: tuple[int, ...] = DEFAULT_GRADES
    unit: str = "query"
    loss: str = "infonce"
    grade_weights: tuple[tuple[int, float], ...] | None = None
    temperature: float = 0.05
    hard_negatives: int = 1
    batch_size: int = 16
    lr: float = 2e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    epochs: int = 1
    max_steps: int | None = None
    max_length: int = 64
    freeze_embeddings: bool = True
    seed: int = 0
    fraction: float = 1.0
    noise: float = 0.0
    negative_split: str | None = "train"
    exclude_own_article: bool = True
    checkpoint_every: int = 50
    threads: int | None = None
    precision: str = "float32"
    side: str = "both"

    def __post_init__(self):
        if isinstance(self.grade_weights, Mapping):
            object.__setattr__(self, "grade_weights", tuple(sorted((int(g), float(w))
                                                                   for g, w in self.grade_weights.items())))
        object.__setattr__(self, "grades", tuple(self.grades))
        from pyterrier_gradrel.training._sampler import UNITS

        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {list(UNITS)}, got {self.unit!r}")
        object.__setattr__(self, "precision", canonical_precision(self.precision, allowed=PRECISIONS))
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {list(SIDES)}, got {self.side!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.grade_weights is not None and self.loss != "graded":
            raise ValueError(f"grade_weights only apply to loss='graded', got loss={self.loss!r}")
        neg_max_for(self.negatives, self.positive_rel, self.grades)  # validates rel, negatives, grades
        for name in ("hard_negatives", "epochs", "batch_size", "max_length", "checkpoint_every", "seed"):
            v = getattr(self, name)
            low = {"epochs": 1, "batch_size": 1, "max_length": 2}.get(name, 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"max_steps must be None or an int >= 1, got {self.max_steps!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be None or an int >= 1, got {self.threads!r}")
        if not self.lr > 0 or not self.temperature > 0 or self.warmup < 0 or self.weight_decay < 0:
            raise ValueError("lr and temperature must be > 0; warmup and weight_decay >= 0, got "
                             f"lr={self.lr}, temperature={self.temperature}, warmup={self.warmup}, "
                             f"weight_decay={self.weight_decay}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}")
        if not 0 <= self.noise <= 1:
            raise ValueError(f"noise must be in [0, 1], got {self.noise!r}")
        self.make_loss()  # validates grade weights

    @property
    def weights(self) -> dict[int, float] | None:
        """The graded loss's weights as a dict (``None`` for the default)."""
        return dict(self.grade_weights) if self.grade_weights is not None else None

    @property
    def positive_rel(self) -> int:
        """The τ used to sample positives (``rel``, or the graded loss's smallest positive-weight grade)."""
        if self.loss == "graded":
            from pyterrier_gradrel.training._losses import GradedInfoNCELoss

            return GradedInfoNCELoss(weights=self.weights).min_positive_grade
        return self.rel

    def make_loss(self):
        """The loss module of this config."""
        from pyterrier_gradrel.training._losses import GradedInfoNCELoss, InfoNCELoss

        if self.loss == "graded":
            return GradedInfoNCELoss(weights=self.weights, temperature=self.temperature)
        return InfoNCELoss(temperature=self.temperature)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the config."""
        d = dataclasses.asdict(self)
        if d["side"] == "both":  # added later: the default stays out, so keys of earlier runs stay valid
            del d["side"]
        d["grades"] = list(self.grades)
        d["precision"] = _IDENTITY_PRECISION[self.precision]
        d["grade_weights"] = [list(x) for x in self.grade_weights] if self.grade_weights is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["grades"] = tuple(d.get("grades", DEFAULT_GRADES))
        if d.get("grade_weights") is not None:
            d["grade_weights"] = tuple((int(g), float(w)) for g, w in d["grade_weights"])
        return cls(**d)

    def key(self) -> str:
        """A short hash over the whole config and :data:`TRAINER_VERSION`."""
        material = {**self.to_dict(), "trainer_version": TRAINER_VERSION}
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:8]

    def run_name(self) -> str:
        """Run name carrying τ, negatives policy, sampling unit, loss, seed, fraction, noise (+ config hash)."""
        loss = self.loss if self.loss == "infonce" else "graded" + "-".join(
            f"{g}x{_fmt(w)}" for g, w in sorted((self.weights or {1: 1.0, 2: 3.0, 3: 7.0}).items()))
        rel = f"rel{self.rel}" if self.loss == "infonce" else f"rel{self.positive_rel}"
        side = "" if self.side == "both" else f"-{self.side}side"
        return (f"{rel}-neg{policy_name(self.negatives)}-{self.unit}-{loss}{side}-s{self.seed}"
                f"-f{_fmt(self.fraction)}-p{_fmt(self.noise)}-{self.key()}")


@dataclass
class _State:
    step: int = 0
    losses: list[float] = field(default_factory=list)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _folder_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def _base_files(path: Path) -> dict[str, str]:
    """relative path -> sha256 of the files of an encoder folder that decide its vectors.

    Weights, model config, tokenizer and ``gradrel_encoder.json`` count; the conversion's provenance
    record (bundle path, timestamps) does not, so a re-materialised identical model keeps its fingerprint.
    """
    from pyterrier_gradrel.models._convert import CONVERSION_FILE

    rel = {f.relative_to(path).as_posix(): f for f in _folder_files(path)}
    return {name: _file_sha256(f) for name, f in rel.items()
            if name != CONVERSION_FILE and not any(part.startswith(".") for part in name.split("/"))}


def _fingerprint_files(files: Mapping[str, str]) -> str:
    return hashlib.sha256("".join(f"{name}\0{sha}\n" for name, sha in sorted(files.items())).encode()).hexdigest()


def _legacy_fingerprint_folder(path: Path) -> str:
    """The base fingerprint that run folders without ``base_files`` in their ``run.json`` carry: every file's
    bytes, provenance included. Accepted for those folders (same base folder), so their runs resume."""
    h = hashlib.sha256()
    for f in _folder_files(path):
        h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):  # noqa: B023
                h.update(chunk)
    return h.hexdigest()


_ABSENT = "(absent)"


def _identity_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between a run folder's recorded identity and the requested run."""
    lines = []
    oc, nc = old.get("config") or {}, new.get("config") or {}
    for k in sorted(set(oc) | set(nc)):
        if oc.get(k, _ABSENT) != nc.get(k, _ABSENT):
            lines.append(f"config {k}: {oc.get(k, _ABSENT)!r} in the folder, {nc.get(k, _ABSENT)!r} now")
    if old.get("base_fingerprint") != new.get("base_fingerprint"):
        lines.append(f"base model: {old.get('base')} (fingerprint {old.get('base_fingerprint')}) in the folder, "
                     f"{new.get('base')} (fingerprint {new.get('base_fingerprint')}) now")
        of, nf = old.get("base_files"), new.get("base_files")
        if isinstance(of, Mapping) and isinstance(nf, Mapping):
            for name in sorted(set(of) | set(nf)):
                if name not in of:
                    lines.append(f"base file {name}: only in the new base model")
                elif name not in nf:
                    lines.append(f"base file {name}: only in the folder's base model")
                elif of[name] != nf[name]:
                    lines.append(f"base file {name}: sha256 {of[name][:12]} in the folder, {nf[name][:12]} now")
        elif of is None:
            lines.append("(the folder does not record its base model's files, so which files differ is unknown)")
    return lines


def _is_ours(name: str) -> bool:
    """Entries a run folder may hold before its ``run.json``: temporaries of our atomic writes."""
    return name.startswith(".") and (name.endswith(".tmp") or ".old-" in name)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint without unpickling anything but tensors and plain values."""
    import pickle

    import torch

    def fail(why: str) -> ValueError:
        return ValueError(f"checkpoint {path} cannot be resumed: {why}. Delete it to restart this run from "
                          f"step 0, or delete the run folder {path.parent}")

    try:
        ckpt = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise fail("it holds Python objects other than tensors and plain values, and checkpoints are never "
                   f"unpickled ({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError) as e:
        raise fail(f"it is truncated or corrupted ({type(e).__name__}: {str(e)[:200]})") from None
    expected = {"model": dict, "optimizer": dict, "scheduler": dict, "rng": torch.Tensor, "step": int, "losses": list}
    if not isinstance(ckpt, dict):
        raise fail(f"expected a dict with keys {sorted(expected)}, got {type(ckpt).__name__}")
    for key, kind in expected.items():
        if not isinstance(ckpt.get(key), kind):
            raise fail(f"expected {key!r} to be a {kind.__name__}, got {type(ckpt.get(key)).__name__}")
    return ckpt


def _frame(corpus: pd.DataFrame | Iterable) -> pd.DataFrame:
    if isinstance(corpus, pd.DataFrame):
        df = corpus
    else:
        rows = []
        for doc in corpus:
            if hasattr(doc, "_asdict"):
                doc = doc._asdict()
            rows.append(dict(doc))
        df = pd.DataFrame(rows)
    if "docno" not in df.columns and "doc_id" in df.columns:
        df = df.rename(columns={"doc_id": "docno"})
    if "docno" not in df.columns or "text" not in df.columns:
        raise ValueError(f"corpus must give 'docno' (or 'doc_id') and 'text', got columns {list(df.columns)}")
    return df


def schedule_note(cfg: TrainConfig, units: int) -> str:
    """How long a run trains, in words: ``"max_steps=12 stops after 12 steps = 2.2 epochs of 89 units
    (batch 16; epochs=1 is ignored)"`` or ``"1 epoch of 89 units = 6 steps (batch 16)"``.

    Args:
        cfg: The training config.
        units: Sampling units per epoch (queries, or positive pairs with ``unit="pair"``).
    """
    per_epoch = -(-units // cfg.batch_size)
    if cfg.max_steps is None:
        return (f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''} of {units} {cfg.unit} units = "
                f"{cfg.epochs * per_epoch} steps (batch {cfg.batch_size})")
    epochs = cfg.max_steps * cfg.batch_size / units if units else float("nan")
    return (f"max_steps={cfg.max_steps} stops after {cfg.max_steps} steps = {epochs:.1f} epochs of {units} "
            f"{cfg.unit} units (batch {cfg.batch_size}; epochs={cfg.epochs} is ignored)")


def _topics(topics: pd.DataFrame) -> pd.DataFrame:
    if "query" not in topics.columns:
        if "text" in topics.columns:
            topics = topics.rename(columns={"text": "query"})
        else:
            raise ValueError(f"train_topics must have 'qid' and 'query' (or 'text'), got {list(topics.columns)}")
    if "qid" not in topics.columns:
        raise ValueError(f"train_topics must have 'qid' and 'query', got {list(topics.columns)}")
    return topics.assign(qid=topics["qid"].astype(str))


class ContrastiveTrainer:
    """Fine-tunes an E5-style bi-encoder with threshold-binarized (or graded) contrastive learning.

    Example::

        trainer = ContrastiveTrainer("multilingual-e5-small", config=TrainConfig(rel=3, seed=1))
        ds = pt.get_dataset("irds:gradrel/xquad-r/th/train")
        model = trainer.fit(ds.get_topics(), ds.get_qrels(), ds.get_corpus_iter())
        model >> index.indexer()   # an E5BiEncoder, like the zero-shot one
    """

    def __init__(self, base: Any = "multilingual-e5-small", *, config: TrainConfig | None = None,
                 verbose: bool = True, device: str | None = "auto"):
        """Args:
        base: Model name (resolved by :func:`pyterrier_gradrel.models.resolve_model`), an encoder
            folder path, or an ``E5BiEncoder`` (its ``path`` is used).
        config: The run's :class:`TrainConfig` (default: ``TrainConfig()``).
        verbose: Show a tqdm progress bar with the running loss.
        device: Torch device to train on: ``"auto"`` (default: CUDA when available, else CPU;
            :func:`pyterrier_gradrel._device.resolve_device`), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
            Not part of the run identity.
        """
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.base = base
        self.config = config or TrainConfig()
        self.verbose = verbose
        self.device = "auto" if device is None else device
        self.last_report: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"ContrastiveTrainer({self.base!r}, config={self.config!r})"

    # -- model loading ------------------------------------------------------------------------------
    def base_path(self) -> Path:
        """The folder of the base encoder."""
        base = self.base
        if hasattr(base, "path") and base.path is not None:
            return Path(base.path)
        if isinstance(base, (str, os.PathLike)) and Path(base).expanduser().is_dir():
            return Path(base).expanduser()
        from pyterrier_gradrel.models import resolve_model

        return Path(resolve_model(str(base)).path)

    def _load(self, path: Path):
        """The encoder to fine-tune, cutting texts at the config's ``max_length``."""
        from pyterrier_gradrel.models import E5BiEncoder

        return E5BiEncoder.from_pretrained(path, device=self.device, max_length=self.config.max_length)

    # -- public API ---------------------------------------------------------------------------------
    def fit(self, train_topics: pd.DataFrame, train_qrels: pd.DataFrame, corpus: pd.DataFrame | Iterable, *,
            run_dir: str | os.PathLike | None = None,
            doc_vectors: Callable[[Sequence[str]], np.ndarray] | None = None):
        """Fine-tune on graded training data and return the fine-tuned encoder.

        Args:
            train_topics: ``qid``, ``query`` (or ``text``), optional ``lang`` (fraction strata) and
                ``article`` (own-article rule).
            train_qrels: ``qid``, ``docno``, ``label`` (graded).
            corpus: Frame or iterable of docs (``docno``/``doc_id``, ``text``, optional ``split``, ``article``).
            run_dir: Where checkpoints and the final model go (default: the cache,
                ``runs/<base fingerprint>/<run name>``). A finished run there is returned without
                training; an interrupted one resumes from its last checkpoint.
            doc_vectors: Only for ``side="query"``: docnos -> ``(n, dim)`` float32 array of the base
                encoder's passage vectors, e.g. read from its cached index (the runner does this). Default:
                the needed passages are encoded with the base encoder on first use. Either way the
                vectors must be the ones retrieval will use, or training and retrieval disagree.

        Returns:
            The fine-tuned ``E5BiEncoder`` (loaded from ``run_dir/model``); with ``side="query"`` a
            ``QueryTunedEncoder`` over the base encoder's passage vectors.
        """
        return self._encoder(self.train(train_topics, train_qrels, corpus, run_dir=run_dir, doc_vectors=doc_vectors))

    def train(self, train_topics: pd.DataFrame, train_qrels: pd.DataFrame, corpus: pd.DataFrame | Iterable, *,
              run_dir: str | os.PathLike | None = None,
              doc_vectors: Callable[[Sequence[str]], np.ndarray] | None = None) -> Path:
        """Like :meth:`fit`, but return the folder of the fine-tuned encoder (``run_dir/model``)."""
        import torch

        cfg = self.config
        if doc_vectors is not None and cfg.side != "query":
            raise ValueError(f"doc_vectors only apply to side='query', got side={cfg.side!r}")
        run_dir = self.run_dir(run_dir)
        fp = self._base_fingerprint()
        meta = {"config": cfg.to_dict(), "run_name": cfg.run_name(), "base": str(self.base),
                "base_fingerprint": fp, "base_files": self._base_files()}
        self._adopt(run_dir, meta)
        for name in ("run.json", _CKPT, "model", _DONE):  # temporaries of writers killed mid-write
            _atomic.remove_stale(run_dir / name)
        if (run_dir / _DONE).exists() and (run_dir / "model" / "gradrel_encoder.json").exists():
            self.last_report = json.loads((run_dir / _DONE).read_text(encoding="utf-8"))
            return run_dir / "model"

        sampler, data_report, topics = self._prepare(train_topics, train_qrels, corpus)
        old_threads = torch.get_num_threads()
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        try:
            report = self._train(sampler, topics, self.base_path(), run_dir, doc_vectors)
        finally:
            torch.set_num_threads(old_threads)
        report.update(data=data_report, run_name=cfg.run_name(), base=str(self.base), base_fingerprint=fp)
        _atomic.write_text(run_dir / _DONE, json.dumps(report, indent=2))
        (run_dir / _CKPT).unlink(missing_ok=True)
        self.last_report = report
        return run_dir / "model"

    def _base_files(self) -> dict[str, str] | None:
        """The base folder's deciding files and their sha256 (``None`` for an in-memory encoder)."""
        if hasattr(self.base, "fingerprint"):
            return None
        if getattr(self, "_files", None) is None:
            self._files = _base_files(self.base_path())
        return self._files

    def _base_fingerprint(self) -> str:
        """12 hex chars naming the base model: the encoder's own fingerprint, or a hash of its folder's deciding files."""
        if getattr(self, "_fp", None) is None:
            files = self._base_files()
            fp = self.base.fingerprint() if files is None else _fingerprint_files(files)
            self._fp = str(fp)[:12]
        return self._fp

    def _legacy_fingerprint(self) -> str | None:
        if hasattr(self.base, "fingerprint"):
            return None
        if getattr(self, "_legacy_fp", None) is None:
            self._legacy_fp = _legacy_fingerprint_folder(self.base_path())[:12]
        return self._legacy_fp

    def _adopt(self, run_dir: Path, meta: dict[str, Any]) -> None:
        """Take ``run_dir`` for this run: a new or empty folder, or one holding this very run; refuse any other."""
        meta_path = run_dir / "run.json"
        if not meta_path.exists():
            foreign = sorted(p.name for p in run_dir.iterdir() if not _is_ours(p.name))
            if foreign:
                raise ValueError(f"run_dir {run_dir} is not empty and is not a training run folder (no run.json; "
                                 f"it holds {foreign[:5]}{' ...' if len(foreign) > 5 else ''}); nothing was "
                                 "changed there. Give an empty or new folder as run_dir.")
            _atomic.write_text(meta_path, json.dumps(meta, indent=2))
            return
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{meta_path} is not valid JSON ({e}); delete the run folder {run_dir} to "
                             "start this run afresh") from None
        same_base = old.get("base_fingerprint") == meta["base_fingerprint"]
        if not same_base and old.get("base_files") is None and old.get("base_fingerprint") == self._legacy_fingerprint():
            same_base = True  # recorded with the fingerprint over every file of the folder: same folder
            _atomic.write_text(meta_path, json.dumps({**old, **{k: meta[k] for k in ("base_fingerprint", "base_files")}},
                                                     indent=2))
        if old.get("config") != meta["config"] or not same_base:
            differences = "\n".join(f"  - {line}" for line in _identity_diff(old, meta))
            raise ValueError(f"run_dir {run_dir} holds a different run ({old.get('run_name')}) than "
                             f"{meta['run_name']}:\n{differences}\nUse another run_dir, or delete {run_dir} "
                             "to train this run there.")

    def run_dir(self, run_dir: str | os.PathLike | None = None) -> Path:
        """The run folder: ``run_dir`` if given, else ``<cache>/runs/<base fingerprint>/<run name>``."""
        path = Path(run_dir) if run_dir is not None else self._default_run_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _default_run_dir(self) -> Path:
        name = self.config.run_name()
        runs = home() / "runs"
        path = runs / self._base_fingerprint() / name
        if not path.exists() and any(runs.glob(f"*/{glob.escape(name)}/run.json")):
            legacy = self._legacy_fingerprint()  # a run of this base recorded under the older fingerprint?
            if legacy is not None and (runs / legacy / name / "run.json").is_file():
                return runs / legacy / name
        return path

    # -- internals ----------------------------------------------------------------------------------
    def _prepare(self, train_topics, train_qrels, corpus):
        from pyterrier_gradrel.training._sampler import PairSampler
        from pyterrier_gradrel.training._subsets import grade_noise, nested_fraction

        cfg = self.config
        topics = _topics(train_topics)
        qrels = train_qrels.assign(qid=train_qrels["qid"].astype(str), docno=train_qrels["docno"].astype(str))
        qrels = qrels[qrels["qid"].isin(set(topics["qid"]))]
        noisy = 0
        if cfg.noise > 0:
            qrels = grade_noise(qrels, cfg.noise, seed=cfg.seed, grades=cfg.grades)
            noisy = int(qrels["noisy"].sum())
        topics = nested_fraction(topics, cfg.fraction, seed=cfg.seed)
        b = binarize(qrels, rel=cfg.positive_rel, negatives=cfg.negatives, grades=cfg.grades,
                     qids=topics["qid"].tolist())
        if not b.positives:
            raise ValueError(f"no training query has a positive at rel={cfg.positive_rel} "
                             f"({len(b.dropped)} queries dropped)")
        docs = _frame(corpus)
        sampler = PairSampler(b, topics, docs, unit=cfg.unit, batch_size=cfg.batch_size,
                              hard_negatives=cfg.hard_negatives, seed=cfg.seed,
                              negative_split=cfg.negative_split, exclude_own_article=cfg.exclude_own_article)
        report = {**b.report(), "queries_in": int(len(topics)), "noisy_judgements": noisy,
                  "units_per_epoch": sampler.units(), "hard_negative_pool": len(sampler.pool),
                  "negative_split": sampler.negative_split, "own_article_rule": bool(sampler.q_article)}
        logger.info("training data: %s", report)
        return sampler, report, topics

    def _encoder(self, path: Path):
        from pyterrier_gradrel.models import load_encoder

        return load_encoder(str(path))

    def _doc_encoder(self):
        """The frozen base encoder (``side="query"``): passage vectors and the reference saved with the model."""
        if getattr(self, "_docs", None) is None:
            from pyterrier_gradrel.models import E5BiEncoder

            base = self.base
            self._docs = base if isinstance(base, E5BiEncoder) else E5BiEncoder.from_pretrained(
                self.base_path(), device=self.device)
        return self._docs

    def _step(self, encoder, sampler, batch, query_text, loss_fn, optimizer, scheduler, doc_vectors=None):
        import torch

        cfg = self.config
        cands = sampler.candidates(batch)
        with torch.autocast(encoder.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bfloat16"):
            q = encoder.encode_queries_torch([query_text[ex.qid] for ex in batch])
            if doc_vectors is None:
                d = encoder.encode_docs_torch([sampler.text[c] for c in cands])
            else:  # query side only: the base model's fixed passage vectors
                d = torch.from_numpy(np.ascontiguousarray(doc_vectors(cands), dtype=np.float32)).to(q.device)
        scores = q.float() @ d.float().T
        grades = torch.from_numpy(sampler.grade_matrix(batch, cands)).to(scores.device)
        loss = loss_fn(scores, grades, torch.from_numpy(sampler.mask(batch, cands)).to(scores.device))
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def _train(self, sampler, topics, base_path: Path, run_dir: Path,
               doc_vectors: Callable[[Sequence[str]], np.ndarray] | None = None) -> dict[str, Any]:
        import torch
        from tqdm.auto import tqdm

        cfg = self.config
        if cfg.side == "query":  # before seeding: loading the base model must not shift the dropout stream
            docs = self._doc_encoder()
            doc_vectors = _checked_vectors(doc_vectors or _OnDemandVectors(docs, sampler.text), dim=docs.dim)
        torch.manual_seed(cfg.seed)
        encoder = self._load(base_path)
        model = encoder.model
        emb = model.get_input_embeddings()
        if cfg.freeze_embeddings:
            emb.weight.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        try:
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
        except (RuntimeError, TypeError):  # pragma: no cover - fused AdamW unavailable
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr, foreach=True)
        per_epoch = sampler.steps_per_epoch()
        total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * per_epoch
        schedule = schedule_note(cfg, sampler.units())
        logger.info("%s: %s", run_dir.name, schedule)
        warm = int(math.ceil(cfg.warmup * total)) if cfg.warmup < 1 else int(cfg.warmup)

        def lr_lambda(step: int) -> float:
            if step < warm:
                return step / max(1, warm)
            return max(0.0, (total - step) / max(1, total - warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        state = _State()
        ckpt_path = run_dir / _CKPT
        if ckpt_path.exists():
            ckpt = _load_checkpoint(ckpt_path)
            result = model.load_state_dict(ckpt["model"], strict=False)
            frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
            if result.unexpected_keys or set(result.missing_keys) - frozen:
                raise ValueError(f"checkpoint {ckpt_path} does not fit the model (unexpected "
                                 f"{result.unexpected_keys[:3]}, missing {sorted(set(result.missing_keys) - frozen)[:3]})")
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            torch.set_rng_state(ckpt["rng"])
            if ckpt.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
            state = _State(step=ckpt["step"], losses=list(ckpt["losses"]))
            logger.info("resuming %s at step %d of %d", run_dir.name, state.step, total)
        query_text = dict(zip(topics["qid"], topics["query"].astype(str), strict=True))
        loss_fn = cfg.make_loss().to(model.device)
        model.train()
        t0, pairs, started, step_seconds = time.perf_counter(), 0, state.step, []
        drawn: Counter[int] = Counter()  # grades of the positives trained on in this session
        bar = tqdm(total=total, initial=state.step, desc=cfg.run_name(), disable=not self.verbose, unit="step")
        try:
            while state.step < total:
                epoch, offset = divmod(state.step, per_epoch)
                batches = sampler.epoch(epoch)
                for batch in batches[offset:]:
                    if state.step >= total:
                        break
                    t_step = time.perf_counter()
                    loss = self._step(encoder, sampler, batch, query_text, loss_fn, optimizer, scheduler,
                                      doc_vectors)
                    step_seconds.append(round(time.perf_counter() - t_step, 4))
                    state.step += 1
                    state.losses.append(loss)
                    pairs += len(batch)
                    drawn.update(sampler.grade(ex.qid, ex.positive) for ex in batch)
                    bar.update(1)
                    recent = state.losses[-20:]
                    bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", epoch=epoch)
                    end_of_epoch = state.step % per_epoch == 0
                    if state.step < total and ((cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0)
                                               or end_of_epoch):
                        self._checkpoint(ckpt_path, model, optimizer, scheduler, state)
        finally:
            bar.close()
        elapsed = time.perf_counter() - t0
        model.eval()
        from pyterrier_gradrel.models import E5BiEncoder

        out_settings = {**encoder.settings, "fine_tuned": cfg.run_name(), "train_max_length": cfg.max_length}
        if cfg.side == "query":
            from pyterrier_gradrel.models._query_tuned import with_doc_reference

            out_settings = with_doc_reference(out_settings, self._doc_encoder())
        E5BiEncoder.from_model(model, encoder.tokenizer, out_settings, device=self.device).save(run_dir / "model")
        _atomic.write_text(run_dir / "model" / "gradrel_training.json", json.dumps(cfg.to_dict(), indent=2))
        return {"steps": state.step, "steps_this_session": state.step - started, "pairs_this_session": pairs,
                "seconds_this_session": round(elapsed, 2),
                "pairs_per_s": round(pairs / elapsed, 3) if elapsed > 0 else None,
                "loss_first": state.losses[0] if state.losses else None,
                "loss_last20": float(np.mean(state.losses[-20:])) if state.losses else None,
                "losses": [round(x, 5) for x in state.losses], "step_seconds": step_seconds,
                "positive_grades": {str(g): n for g, n in sorted(drawn.items())},
                "schedule": schedule, "config": cfg.to_dict()}

    @staticmethod
    def _checkpoint(path: Path, model, optimizer, scheduler, state: _State) -> None:
        import torch

        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        sd = {k: v for k, v in model.state_dict().items() if k not in frozen}  # the frozen matrix never changes
        with _atomic.atomic_path(path) as tmp:
            torch.save({"model": sd, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                        "step": state.step, "losses": state.losses}, tmp)


class _OnDemandVectors:
    """docnos -> the base encoder's passage vectors, encoded on first use and kept (``side="query"``)."""

    def __init__(self, encoder: Any, text: Mapping[str, str]) -> None:
        self.encoder, self.text, self.cache = encoder, text, {}

    def __call__(self, docnos: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(d for d in docnos if d not in self.cache))
        if missing:
            for d, v in zip(missing, self.encoder.encode_docs([self.text[d] for d in missing]), strict=True):
                self.cache[d] = v
        return np.stack([self.cache[d] for d in docnos])


def _checked_vectors(fn: Callable[[Sequence[str]], np.ndarray], *, dim: int) -> Callable[[Sequence[str]], np.ndarray]:
    def lookup(docnos: Sequence[str]) -> np.ndarray:
        out = np.asarray(fn(list(docnos)))
        if out.shape != (len(docnos), dim):
            raise ValueError(f"doc_vectors returned shape {out.shape} for {len(docnos)} docnos; expected "
                             f"({len(docnos)}, {dim})")
        return out
    return lookup
