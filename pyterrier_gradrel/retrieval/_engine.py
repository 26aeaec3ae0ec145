"""The BM25 engine's identity, without importing PyTerrier: which pyterrier-pisa and tokenizer make BM25's scores.

pyterrier-pisa's wheel ships PISA's indexer and query processor, so another version may write another index
format or score differently; the tokenizer ``"auto"`` resolves to decides the terms. Every cache or key of BM25
work carries the engine that produced it, except that the engine of the committed results
(:data:`REFERENCE_BM25_ENGINE`) is left out, so what was made with it keeps its names:

* the BM25 index cache (:func:`pyterrier_gradrel.retrieval.bm25`): :func:`index_suffix`;
* the benchmark's BM25 baselines' fingerprints (``benchmark._systems.bm25_settings``);
* the experiment runner's run keys of the baselines BM25 makes (``experiments._store.key_material``).

This is the one definition of the reference engine; data flows retrieval -> benchmark and experiments.
"""
from __future__ import annotations

__all__ = ["REFERENCE_BM25_ENGINE", "REFERENCE_PISA", "bm25_engine", "engine_material", "index_suffix",
           "pisa_version"]

#: the pyterrier-pisa version of the committed results (``experiments/results/benchmark`` records it in
#: ``versions``) and of the index folders named before the version entered their names
REFERENCE_PISA = "0.4.9"

#: the BM25 engine of the committed reference results (BM25, BM25>>mE5 and RRF(BM25,mE5) record pyterrier-pisa
#: 0.4.9 in ``versions`` and this tokenizer in ``system.pipeline``). Their fingerprints, and the experiments' run
#: keys, were computed before the engine entered them: work done on this engine keeps those names; any other
#: engine adds itself (:func:`engine_material`)
REFERENCE_BM25_ENGINE: dict[str, str | None] = {
    "pyterrier-pisa": REFERENCE_PISA, "tokenizer": "subword-multilingual-e5-small-b7b03bb354-lc"}


def pisa_version() -> str | None:
    """The installed pyterrier-pisa version (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyterrier-pisa")
    except PackageNotFoundError:
        return None


def bm25_engine() -> dict[str, str | None]:
    """What decides the built-in BM25's scores besides k1 and b.

    Returns:
        ``{"pyterrier-pisa": <installed version or None>, "tokenizer": <name>}``: the exact name of the tokenizer
        ``tokenizer="auto"`` resolves to (:attr:`pyterrier_gradrel.retrieval.Bm25Tokenizer.name`, which changes
        with the vocabulary and the tokenizing rules; resolving it loads multilingual-e5-small's tokenizer).
    """
    from pyterrier_gradrel.retrieval._tokenize import get_tokenizer

    return {"pyterrier-pisa": pisa_version(), "tokenizer": get_tokenizer("auto").name}


def engine_material(engine: dict[str, str | None]) -> dict[str, str | None] | None:
    """The engine as fingerprint or key material: None for :data:`REFERENCE_BM25_ENGINE` (left out, so the names
    made with it stay as they are), else ``engine`` itself."""
    return None if engine == REFERENCE_BM25_ENGINE else dict(engine)


def index_suffix(version: str | None = None) -> str:
    """What a BM25 index cache name adds for the pyterrier-pisa that builds and reads it.

    Args:
        version: A pyterrier-pisa version (default: the installed one, :func:`pisa_version`).

    Returns:
        ``""`` for :data:`REFERENCE_PISA` (the index folders named before the version entered the name),
        otherwise ``".pisa-<version>"``, so another PISA builds its own index instead of opening an old one.
    """
    found = pisa_version() if version is None else version
    return "" if found == REFERENCE_PISA else f".pisa-{found}"
