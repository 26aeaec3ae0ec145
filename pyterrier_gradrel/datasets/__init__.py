"""The benchmark's graded datasets, declared in ``datasets_registry/*.yaml`` and registered with ir_datasets.

Ids (see DEVELOPING.md)::

    gradrel/xquad-r/<lang>/<split>             monolingual (lang in ar de el en es hi ro ru th tr vi zh)
    gradrel/xquad-r/<qlang>-<dlang>/<split>    cross-lingual: queries of qlang, pool and grades of dlang
    gradrel/xquad-r/multi/<split>              all query languages against the pool of all languages
    gradrel/afriqa/<lang>/<split>              African-language queries, English (French for fon) passages
    gradrel/afriqa/<lang>-translated/<split>   the human translations of the same queries (control)
    gradrel/local/<name>/<split>               a local folder (register_local, or $GRADREL_HOME/collections/<name>)

Dropping the split (``gradrel/xquad-r/de``, ``gradrel/afriqa/hau``, ``gradrel/local/<name>``) gives the
documents only. The grades of XQuAD-R and AfriQA are **structure-derived** (answer span, paragraph, article,
gold passage, Wikipedia title), not judged by people or by an LLM; ``info(id).structural`` says so.

Example::

    import pyterrier as pt
    import pyterrier_gradrel  # registers the datasets
    ds = pt.get_dataset("irds:gradrel/xquad-r/de/test")
    topics, qrels = ds.get_topics("text"), ds.get_qrels()   # qrels: qid, docno, label (1..3)
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pyterrier_gradrel.datasets._download import MIRROR_ENV, ChecksumError, DownloadError
from pyterrier_gradrel.datasets._registry import CollectionSpec, FileSpec, collection, collections
from pyterrier_gradrel.datasets._sentences import split_sentences

__all__ = [
    "GRADES", "SPLITS", "DEFAULT_REL", "MIRROR_ENV", "DatasetInfo", "register", "register_local", "info", "dataset_ids",
    "exclude_own_article", "question_key", "require_split",
    "collection_languages", "fetch", "local_home", "local_collections", "collection", "collections", "CollectionSpec", "FileSpec", "split_sentences",
    "DownloadError", "ChecksumError", "LocalCollectionError",
]

#: The grade scale of the benchmark's collections (0 = not listed in the qrels).
GRADES: tuple[int, ...] = (0, 1, 2, 3)
#: The splits a dataset id may name, in this order (a collection offers some or all of them).
SPLITS: tuple[str, ...] = ("train", "dev", "test")
#: The default relevance threshold ``rel`` (ir_measures' meaning: minimum grade counted relevant).
DEFAULT_REL = 2

def __dir__() -> list[str]:  # the lazy exports too, so that dir() (and the API docs) list all of __all__
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str):  # noqa: ANN202 (PEP 562)
    # the local-collection reader imports ir_datasets (~0.7 s): load it when first asked for
    if name == "LocalCollectionError":
        from pyterrier_gradrel.datasets._local import LocalCollectionError

        return LocalCollectionError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_LOCAL_PATTERN = r"^gradrel/local/([^/]+)(?:/([^/]+))?$"
_lock = threading.Lock()
_registered = False
_local_folders: dict[str, Path] = {}


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset id means.

    Attributes:
        dataset_id: The id.
        collection: ``"xquad-r"``, ``"afriqa"`` or ``"local"``.
        split: ``"train"``, ``"dev"``, ``"test"``, or None for a documents-only id.
        query_lang: Language of the queries (None when several, or for documents-only ids).
        doc_lang: Language of the documents (None when several).
        query_langs: All query languages.
        doc_langs: All document languages.
        grades: Grade → text (the ir_datasets ``qrels_defs``).
        default_rel: The default threshold (2).
        structural: True when the grades are derived from the data's structure, not judged.
        resource: Resource level (high/medium/low, Joshi et al. 2020 classes) of the query language, if known.
        joshi_class: The query language's Joshi et al. (2020) class (0-5), where the registry records it.
        license: The data's license.
        citation: BibTeX of the sources.
        fixed: True when the collection is built from pinned, checksummed files, so a docno names the same
            passage text in every pool of the collection (XQuAD-R, AfriQA); False for local collections,
            whose files may be edited.
        text_version: The collection's text version (``text_version`` in its registry file; bumped whenever
            its indexed texts change, so caches of the old texts are never reused).
    """

    dataset_id: str
    collection: str
    split: str | None
    query_lang: str | None
    doc_lang: str | None
    query_langs: tuple[str, ...]
    doc_langs: tuple[str, ...]
    grades: dict[int, str]
    default_rel: int
    structural: bool
    resource: str | None
    license: str
    citation: str
    fixed: bool = False
    text_version: int = 1
    joshi_class: int | None = None

    @property
    def grade_scale(self) -> tuple[int, ...]:
        """The grades of :attr:`grades`, ascending (``(0, 1, 2, 3)``): the scale a model trains on and the measures'
        gains are built over."""
        return tuple(sorted(int(g) for g in self.grades))


def _xquad_ids() -> dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]]:
    from pyterrier_gradrel.datasets import _xquad_r

    return _xquad_r.dataset_ids()


def _afriqa_ids() -> dict[str, tuple[str, str | None, bool]]:
    from pyterrier_gradrel.datasets import _afriqa

    return _afriqa.dataset_ids()


def dataset_ids(collection_name: str | None = None) -> list[str]:
    """The ids of the declared collections plus the local ones (:func:`local_collections`), sorted.

    Args:
        collection_name: Restrict to one collection (``"xquad-r"``, ``"afriqa"`` or ``"local"``).
    """
    from pyterrier_gradrel.datasets import _local
    allowed = ("xquad-r", "afriqa", "local")
    if collection_name is not None and collection_name not in allowed:
        raise ValueError(f"collection must be one of {list(allowed)}, got {collection_name!r}")

    ids: list[str] = []
    if collection_name in (None, "xquad-r"):
        ids += _xquad_ids()
    if collection_name in (None, "afriqa"):
        ids += _afriqa_ids()
    if collection_name in (None, "local"):
        for name, folder in local_collections().items():
            ids += _local.dataset_ids(name, folder)
    return sorted(ids)


def _discover_local(key: str, groups: tuple[str | None, ...]):
    """ir_datasets pattern hook: ``gradrel/local/<name>[/<split>]`` from ``$GRADREL_HOME/collections/<name>``.

    ir_datasets registers the returned dataset under ``key`` itself. An unknown name or a missing split raises
    :class:`LocalCollectionError`, not ``KeyError``: ``pt.get_dataset`` replaces any ``KeyError`` of its
    provider with a bare "not found in provider 'irds'", and the user should see which splits there are.
    """
    from pyterrier_gradrel.datasets import _local
    from pyterrier_gradrel.datasets._local import LocalCollectionError

    name, split = groups
    with _lock:
        folder = _local_folders.get(name)
    if folder is None:  # validated without the lock (reading a manifest may import a module)
        candidate = local_home() / name
        if not candidate.is_dir():
            raise LocalCollectionError(
                f"{key}: no local collection {name!r}; call pyterrier_gradrel.datasets.register_local"
                f"({name!r}, folder) or put the collection at {candidate}")
        folder = _local.check_folder(candidate).resolve()
        _local.read_manifest(folder)
        with _lock:
            folder = _local_folders.setdefault(name, folder)
    if split is not None and split not in _local.available_splits(folder):
        raise LocalCollectionError(f"{key}: local collection {name!r} ({folder}) has no split {split!r}; "
                                   f"available: {list(_local.available_splits(folder))}")
    return _local.build_dataset(folder, split, name=name)


def local_collections() -> dict[str, Path]:
    """The local collections known by name: those registered with :func:`register_local` and the folders under
    :func:`local_home` that look like a collection (``docs.jsonl`` and a ``qrels.<split>.txt``; the manifest
    is optional). Their contents are not validated here.
    """
    from pyterrier_gradrel.datasets import _local

    out: dict[str, Path] = {}
    root = local_home()
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if (folder.is_dir() and _local.NAME_RE.match(folder.name) and (folder / "docs.jsonl").is_file()
                    and _local.available_splits(folder)):
                out[folder.name] = folder
    with _lock:
        out.update(_local_folders)
    return dict(sorted(out.items()))


def local_home() -> Path:
    """``$GRADREL_HOME/collections``: where local collections are discovered by name."""
    from pyterrier_gradrel._paths import home

    return home() / "collections"


def register() -> None:
    """Register every declared dataset id with ir_datasets (idempotent; no data is read, no torch imported).

    Safe from any entry point and any thread: no lock is held while a module is imported, because importing
    ir_datasets runs ``pyterrier_gradrel``'s import hook, which calls this function again (in the importing
    thread, or while another thread waits for that import). The dataset objects are built without the lock;
    the lock covers only the registry's bookkeeping.
    """
    if _registered:
        return
    import ir_datasets  # may re-enter register() through the package's import hook: no lock held here

    if _registered:  # the hook's call, run by the import above, did it
        return
    if _dataset_modules_importing():
        # ir_datasets was imported from inside a dataset module that the ids below are built with (someone
        # imported, say, datasets._afriqa first): finish on the first lookup of an id, when it is complete
        with _lock:
            _register_patterns(ir_datasets.registry, deferred=True)
        return
    from pyterrier_gradrel.datasets import _afriqa, _xquad_r

    built = {dataset_id: _xquad_r.build_dataset(*args) for dataset_id, args in _xquad_r.dataset_ids().items()}
    built.update((dataset_id, _afriqa.build_dataset(*args)) for dataset_id, args in _afriqa.dataset_ids().items())
    _register_built(ir_datasets.registry, built)


def _register_patterns(registry, *, deferred: bool) -> None:  # noqa: ANN001 (ir_datasets Registry)
    """Add the local-collection pattern (and, if ``deferred``, the finishing pattern) once; call with ``_lock``."""
    patterns = {p.pattern for p, _ in registry._patterns}
    if _LOCAL_PATTERN not in patterns:
        registry.register_pattern(_LOCAL_PATTERN, _discover_local)
    if deferred and _DEFERRED_PATTERN not in patterns:
        registry.register_pattern(_DEFERRED_PATTERN, _finish_registration)


def _register_built(registry, built: dict) -> None:  # noqa: ANN001 (ir_datasets Registry and Datasets)
    """Register the ``built`` datasets not registered yet, once (the first caller wins; the lock imports nothing)."""
    global _registered
    with _lock:
        if _registered:
            return
        _register_patterns(registry, deferred=False)
        existing = set(registry)
        for dataset_id, dataset in built.items():
            if dataset_id not in existing:
                registry.register(dataset_id, dataset)
        _registered = True


#: The ids that :func:`register` registers one by one (local collections have their own pattern)
_DEFERRED_PATTERN = r"^gradrel/(?:xquad-r|afriqa)/"
_DATASET_MODULES = ("_base", "_xquad_r", "_afriqa")


def _dataset_modules_importing() -> bool:
    """Whether a module that :func:`register` builds datasets with is being imported right now."""
    import sys

    for short in _DATASET_MODULES:
        module = sys.modules.get(f"{__name__}.{short}")
        if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
            return True
    return False


def _finish_registration(key: str, groups: tuple[str | None, ...]):  # noqa: ANN202 (ir_datasets pattern hook)
    """ir_datasets pattern hook of a deferred :func:`register`: registers every id, hands ``key``'s dataset back.

    The registry registers what this returns under ``key`` itself, so ``key`` is taken out again; an id that is
    not declared raises ``KeyError`` as an unknown id does.
    """
    import ir_datasets

    register()
    return ir_datasets.registry._registered.pop(key)


def register_local(name: str, folder: str | Path) -> list[str]:
    """Register the local collection in ``folder`` as ``gradrel/local/<name>/<split>``.

    The folder layout is described in ``datasets_registry/local.yaml``; its contents are validated when a
    split is first loaded (errors name file and line). Registering the same folder again is a no-op.

    Args:
        name: The collection name (letters, digits, ``_``, ``.``, ``-``).
        folder: The collection folder.

    Returns:
        The registered ids (the documents-only id and one per split).

    Raises:
        ValueError: ``name`` is malformed or already registered for another folder.
        LocalCollectionError: ``folder`` lacks ``docs.jsonl`` or any ``qrels.<split>.txt``, or its manifest is bad.
    """
    import ir_datasets

    from pyterrier_gradrel.datasets import _local


    if not isinstance(name, str) or not _local.NAME_RE.match(name):
        raise ValueError(f"local collection name must match {_local.NAME_RE.pattern}, got {name!r}")
    folder = _local.check_folder(folder).resolve()
    _local.read_manifest(folder)  # fail early on a bad manifest
    ids = _local.dataset_ids(name, folder)
    registry = ir_datasets.registry
    # the datasets are built without the lock (building reads the manifest); the lock covers the bookkeeping
    built = {dataset_id: _local.build_dataset(folder, split, name=name)
             for dataset_id, split in ids.items() if dataset_id not in registry._registered}
    with _lock:
        known = _local_folders.get(name)
        if known is not None and known != folder:
            raise ValueError(f"local collection {name!r} is already registered for {known}; choose another name")
        _local_folders[name] = folder
        existing = set(registry)
        for dataset_id, dataset in built.items():
            if dataset_id not in existing:
                registry.register(dataset_id, dataset)
    return list(ids)


def _split_of(dataset_id: str, parts: list[str], n: int) -> str | None:
    if len(parts) == n:
        return None
    if len(parts) == n + 1 and parts[n] in SPLITS:
        return parts[n]
    raise ValueError(f"{dataset_id!r}: split must be one of {list(SPLITS)}, got {parts[n:]!r}")


def collection_languages(collection_name: str) -> tuple[str, ...]:
    """The languages of a declared collection that have queries, sorted (read from ``datasets_registry``).

    A language whose registry entry lists its ``splits`` counts only if that list is non-empty (AfriQA's wol has
    none); one without such a list has every split (XQuAD-R's 12 languages). Reading the registry loads no
    ir_datasets, so command-line parsers may call this. ``local`` declares no languages: its ids name a
    collection where the others name a language (``gradrel/local/<name>/<split>``), so it answers with the names
    of :func:`local_collections` (which loads the local-collection reader, and with it ir_datasets).

    Raises:
        ValueError: ``collection_name`` is not declared.
    """
    if collection_name == "local":
        return tuple(sorted(local_collections()))
    languages = collection(collection_name).languages
    return tuple(sorted(lang for lang, meta in languages.items() if meta.get("splits", True)))


# XQuAD-R query ids are "<query language>-<SQuAD question id>" (``_xquad_r.queries`` and ``qrels`` build them)
_PARALLEL_QID = re.compile(r"^[a-z]{2,3}(?:-[a-z]+)?-([0-9a-f]{24})$")


def question_key(qid: str) -> str:
    """The question a query id translates: the SQuAD id of an XQuAD-R id (``ar-56beb4343aeaaa14008c925b`` →
    ``56beb4343aeaaa14008c925b``, shared by the 12 languages), else the id itself (AfriQA: a query and its
    translated version share the id; different languages' questions are different questions)."""
    m = _PARALLEL_QID.match(qid)
    return m.group(1) if m else qid


def info(dataset_id: str) -> DatasetInfo:
    """Describe ``dataset_id``: languages, split, grade texts, default ``rel``, whether grades are structural,
    whether the collection is fixed and its text version (what a pool's cache identity is built from).

    Raises:
        ValueError: ``dataset_id`` is not one of the benchmark's ids (the message lists the id patterns).
    """
    from pyterrier_gradrel.datasets import _local
    from pyterrier_gradrel.datasets._local import LocalCollectionError
    patterns = ["gradrel/xquad-r/<lang>[/<split>]", "gradrel/xquad-r/<qlang>-<dlang>/<split>",
                "gradrel/xquad-r/multi[/<split>]", "gradrel/afriqa/<lang>[-translated][/<split>]",
                "gradrel/local/<name>[/<split>]"]
    bad = ValueError(f"unknown dataset id {dataset_id!r}; expected one of {patterns}")
    parts = dataset_id.split("/") if isinstance(dataset_id, str) else []
    if len(parts) < 3 or parts[0] != "gradrel":
        raise bad
    kind = parts[1]
    if kind == "xquad-r":
        ids = _xquad_ids()
        if dataset_id not in ids:
            raise bad
        spec = collection("xquad-r")
        qlangs, dlangs, split = ids[dataset_id]
        qlang = qlangs[0] if len(qlangs) == 1 else None
        return DatasetInfo(
            dataset_id, "xquad-r", split, qlang, dlangs[0] if len(dlangs) == 1 else None, qlangs, dlangs,
            dict(spec.grades), spec.default_rel, spec.structural,
            spec.languages[qlang]["resource"] if qlang else None, spec.license, spec.citation,
            fixed=True, text_version=spec.text_version,
            joshi_class=spec.languages[qlang].get("joshi_class") if qlang else None,
        )
    if kind == "afriqa":
        ids = _afriqa_ids()
        if dataset_id not in ids:
            raise bad
        spec = collection("afriqa")
        lang, split, translated = ids[dataset_id]
        pivot = spec.languages[lang]["pivot"]
        qlang = (pivot if translated else lang) if split else None
        resource = (spec.languages[lang]["resource"] if not translated else None) if split else None
        return DatasetInfo(
            dataset_id, "afriqa", split, qlang, pivot, (qlang,) if qlang else (), (pivot,),
            dict(spec.grades), spec.default_rel, spec.structural, resource, spec.license, spec.citation,
            fixed=True, text_version=spec.text_version,
            joshi_class=spec.languages[lang].get("joshi_class") if resource is not None else None,
        )
    if kind == "local":
        from pyterrier_gradrel.datasets import _local

        if not re.match(_LOCAL_PATTERN, dataset_id):
            raise bad
        name = parts[2]
        split = _split_of(dataset_id, parts, 3)
        folder = _local_folders.get(name) or local_home() / name
        folder = _local.check_folder(folder)
        manifest = _local.read_manifest(folder)
        if split is not None and split not in _local.available_splits(folder):
            raise LocalCollectionError(f"{dataset_id}: local collection {name!r} ({folder}) has no split {split!r}; "
                                       f"available: {list(_local.available_splits(folder))}")
        lang, qlang = manifest.lang, manifest.queries_lang
        return DatasetInfo(
            dataset_id, "local", split, qlang if split else None, lang, (qlang,) if qlang and split else (),
            (lang,) if lang else (), dict(manifest.grades), manifest.default_rel, manifest.structural, None,
            manifest.license, manifest.citation,
        )
    raise bad


def require_split(dataset_id: str, example: str = "train") -> DatasetInfo:
    """:func:`info` of a dataset id that names a split (and so has queries and qrels).

    Args:
        dataset_id: A gradrel dataset id (an ``irds:`` prefix is allowed).
        example: The split the error message suggests.

    Raises:
        ValueError: ``dataset_id`` is unknown (see :func:`info`), or names documents only (no split):
            ``'gradrel/xquad-r/en' names documents only: add a split, e.g. gradrel/xquad-r/en/train``.
    """
    ds_id = dataset_id.removeprefix("irds:")
    meta = info(ds_id)
    if meta.split is None:
        raise ValueError(f"{ds_id!r} names documents only: add a split, e.g. {ds_id.rstrip('/')}/{example}")
    return meta


def exclude_own_article(dataset_ids: str | Iterable[str]) -> bool:
    """Whether training on ``dataset_ids`` draws its unjudged hard negatives from outside the query's article.

    ``gradrel train`` and ``gradrel run`` both ask this, so one dataset trains the same way through either.
    Structure-derived grades (XQuAD-R, AfriQA, a local collection with ``structural: true``) leave the other
    sentences of the gold article unjudged although they are often about the answer, so they are kept out of
    the negatives; judged grades (people or an LLM, ``structural: false``) are taken at their word: an
    unjudged passage of the same article is as good a negative as any other. With several datasets (one model
    trained on their union) the rule applies when any of them is structural. A collection without ``article``
    fields has no own article to exclude, whatever this says (see ``training.PairSampler``).

    Raises:
        ValueError: an id is unknown (see :func:`info`).
    """
    ids = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids)
    if not ids:
        raise ValueError("exclude_own_article needs at least one dataset id")
    return any(info(d.removeprefix("irds:")).structural for d in ids)


def fetch(collection_name: str | None = None, *, force: bool = False) -> list[Path]:
    """Fetch (mirror or download) and md5-check the source files of one or all declared collections.

    Args:
        collection_name: ``"xquad-r"`` or ``"afriqa"``; None for both.
        force: Fetch again even if a verified copy is cached.

    Returns:
        The cached paths.
    """
    from pyterrier_gradrel.datasets._download import fetch_all

    names = [n for n, spec in collections().items() if spec.files]
    if collection_name is not None and collection_name not in names:
        raise ValueError(f"collection must be one of {sorted(names)}, got {collection_name!r}")
    chosen = [collection_name] if collection_name else sorted(names)
    return fetch_all([f for n in chosen for f in collection(n).files.values()], force=force)
