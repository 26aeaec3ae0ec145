"""Training run folders: the base model's fingerprint, and adopting a folder only for the run it holds (config, base
model and training data)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

from pyterrier_gradrel import _atomic


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _folder_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def base_files(path: Path) -> dict[str, str]:
    """relative path -> sha256 of the files of an encoder folder that decide its vectors.

    Weights, model config, tokenizer and ``gradrel_encoder.json`` count; the conversion's provenance
    record (bundle path, timestamps) does not, so a re-materialised identical model keeps its fingerprint.
    """
    from pyterrier_gradrel.models._convert import CONVERSION_FILE

    rel = {f.relative_to(path).as_posix(): f for f in _folder_files(path)}
    return {name: _file_sha256(f) for name, f in rel.items()
            if name != CONVERSION_FILE and not any(part.startswith(".") for part in name.split("/"))}


def fingerprint_files(files: Mapping[str, str]) -> str:
    return hashlib.sha256("".join(f"{name}\0{sha}\n" for name, sha in sorted(files.items())).encode()).hexdigest()


def legacy_fingerprint_folder(path: Path) -> str:
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


def identity_diff(old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
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
    lines += _data_diff(old.get("data"), new.get("data"))
    return lines


def _data_diff(old: object, new: object) -> list[str]:
    """The differing parts of two training-data records (``data_identity``); none when the folder has no record."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping) or old.get("sha256") == new.get("sha256"):
        return []
    sizes = {"topics": "queries", "qrels": "judgements", "corpus": "passages"}
    lines = [f"training {part}: sha256 {str(old.get(part))[:12]} ({old.get(size)} {size}) in the folder, "
             f"{str(new.get(part))[:12]} ({new.get(size)} {size}) now"
             for part, size in sizes.items() if old.get(part) != new.get(part)]
    return lines or [f"training data: sha256 {str(old.get('sha256'))[:12]} in the folder, "
                     f"{str(new.get('sha256'))[:12]} now"]


def same_data(old: Mapping[str, object], new: Mapping[str, object]) -> bool:
    """Whether a run folder's recorded training data is the requested run's. A folder written before ``run.json``
    recorded the data (no ``data``) cannot tell and is taken as it was before: by config and base model."""
    recorded = old.get("data")
    if recorded is None:
        return True
    return isinstance(recorded, Mapping) and recorded.get("sha256") == (new.get("data") or {}).get("sha256")


def is_ours(name: str) -> bool:
    """Entries a run folder may hold before its ``run.json``: temporaries of our atomic writes."""
    return name.startswith(".") and (name.endswith(".tmp") or ".old-" in name)


def adopt(run_dir: Path, meta: Mapping[str, object], *, legacy_fingerprint: Callable[[], str | None]) -> bool:
    """Take ``run_dir`` for the run ``meta`` describes: a new or empty folder, or one holding this very run (same
    config, base model and training data); refuse any other. ``legacy_fingerprint`` gives the base model's fingerprint over every file of its folder (``None``
    for an in-memory encoder), which older run folders record.

    Returns:
        True when this call wrote ``run.json`` (the folder was new or empty), False when it held the run already.
    """
    meta_path = run_dir / "run.json"
    if not meta_path.exists():
        foreign = sorted(p.name for p in run_dir.iterdir() if not is_ours(p.name))
        if foreign:
            raise ValueError(f"run_dir {run_dir} is not empty and is not a training run folder (no run.json; "
                             f"it holds {foreign[:5]}{' ...' if len(foreign) > 5 else ''}); nothing was "
                             "changed there. Give an empty or new folder as run_dir.")
        _atomic.write_text(meta_path, json.dumps(meta, indent=2))
        return True
    try:
        old = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{meta_path} is not valid JSON ({e}); delete the run folder {run_dir} to "
                         "start this run afresh") from None
    same_base = old.get("base_fingerprint") == meta["base_fingerprint"]
    if not same_base and old.get("base_files") is None and old.get("base_fingerprint") == legacy_fingerprint():
        same_base = True  # recorded with the fingerprint over every file of the folder: same folder
        _atomic.write_text(meta_path, json.dumps({**old, **{k: meta[k] for k in ("base_fingerprint", "base_files")}},
                                                 indent=2))
    if old.get("config") != meta["config"] or not same_base or not same_data(old, meta):
        differences = "\n".join(f"  - {line}" for line in identity_diff(old, meta))
        raise ValueError(f"run_dir {run_dir} holds a different run ({old.get('run_name')}) than "
                         f"{meta['run_name']}:\n{differences}\nUse another run_dir, or delete {run_dir} "
                         "to train this run there.")
    return False


def release(run_dir: Path, *, claimed: bool, created: bool) -> None:
    """Undo what a failed training call made before it had anything to resume from.

    The ``run.json`` that :func:`adopt` wrote in this call (``claimed``) is removed unless a checkpoint, the model
    or anything else now lies beside it; the folder itself too when this call created it (``created``) and it is
    empty again. A folder with a checkpoint keeps its ``run.json``: the next call resumes from there.
    """
    if not run_dir.is_dir():
        return
    if claimed and not [p for p in run_dir.iterdir() if p.name != "run.json" and not is_ours(p.name)]:
        (run_dir / "run.json").unlink(missing_ok=True)
    if created:
        try:
            run_dir.rmdir()  # only if empty
        except OSError:
            pass
