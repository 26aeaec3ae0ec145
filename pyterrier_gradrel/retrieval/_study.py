"""The two measured tables of the retrieval module.

* :func:`tokenizer_study`: BM25 effectiveness per language and tokenizer on XQuAD-R (how ``"auto"`` was chosen).
* :func:`baseline_table`: every baseline on monolingual and cross-lingual XQuAD-R pairs.

Both compute each run once, check coverage (queries with at least one result) and evaluate the runs with
one prepared ir_measures evaluator per dataset (:func:`pyterrier_gradrel.retrieval._evaluate.evaluate_runs`), whose
columns are named in the package's one measure vocabulary (:func:`pyterrier_gradrel._evaluation.label`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads in the functions: `gradrel --help` reads this module's constants
    import pandas as pd

__all__ = ["BASELINE_PAIRS", "STUDY_TOKENIZERS", "baseline_table", "load_eval", "tokenizer_study"]

_log = logging.getLogger(__name__)

#: (query language, document language) pairs of the acceptance table
BASELINE_PAIRS = (("en", "en"), ("ar", "ar"), ("hi", "hi"), ("th", "th"), ("zh", "zh"), ("de", "en"), ("th", "en"))

#: tokenizers compared by :func:`tokenizer_study`
STUDY_TOKENIZERS = ("script", "subword", "subword-lower")


def _query_fields(ds: Any) -> tuple[str, ...]:
    """The query fields of an ir_datasets-backed PyTerrier dataset (empty for any other dataset)."""
    ref = getattr(ds, "irds_ref", None)
    if ref is None:
        return ()
    irds = ref()
    return tuple(irds.queries_cls()._fields) if irds.has_queries() else ()


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows)


def dataset_id(qlang: str, dlang: str, split: str) -> str:
    """The XQuAD-R dataset id of a (query language, document language) pair."""
    pair = qlang if qlang == dlang else f"{qlang}-{dlang}"
    return f"gradrel/xquad-r/{pair}/{split}"


def load_eval(dataset: str | Any) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """(PyTerrier dataset, topics, qrels) of a dataset id or object."""
    from pyterrier_gradrel.retrieval._bm25 import _as_pt_dataset

    ds = _as_pt_dataset(dataset)
    # ir_datasets queries with several fields (ours: text, lang, article): ask for "text" directly, since a plain
    # get_topics() prints PyTerrier's "multiple query fields" notice
    topics = ds.get_topics("text") if "text" in _query_fields(ds) else ds.get_topics()
    if "query" not in topics.columns:
        topics = ds.get_topics("text")
    qrels = ds.get_qrels()
    if topics.empty:
        raise ValueError(f"{dataset!r} has no queries")
    return ds, topics[["qid", "query"]], qrels


def tokenizer_study(
    langs: Sequence[str],
    *,
    split: str = "test",
    tokenizers: Sequence[str] = STUDY_TOKENIZERS,
) -> pd.DataFrame:
    """BM25 per language x tokenizer: the measures, coverage, vocabulary size and index build time.

    Args:
        langs: XQuAD-R languages (monolingual datasets ``gradrel/xquad-r/<lang>/<split>``).
        split: ``train``, ``dev`` or ``test``.
        tokenizers: Tokenizer specs (see :func:`pyterrier_gradrel.retrieval.get_tokenizer`).

    Returns:
        One row per (lang, tokenizer).
    """
    import json
    from pathlib import Path

    from pyterrier_gradrel.retrieval._bm25 import bm25
    from pyterrier_gradrel.retrieval._evaluate import evaluate_runs

    rows = []
    for lang in langs:
        ds, topics, qrels = load_eval(dataset_id(lang, lang, split))
        runs, extra = {}, {}
        for spec in tokenizers:
            started = time.time()
            retr = bm25(ds, tokenizer=spec)
            meta = json.loads((Path(retr.index.path) / "gradrel_index.json").read_text(encoding="utf-8"))
            runs[spec] = retr(topics)
            extra[spec] = {"tokenizer_name": meta["tokenizer"], "terms": meta["terms"],
                           "seconds": round(time.time() - started, 2)}
        table = evaluate_runs(runs, topics, qrels)
        for row in table.to_dict(orient="records"):
            name = row.pop("name")
            rows.append({"lang": lang, "tokenizer": name, **row, **extra[name]})
    return _frame(rows)


def baseline_table(
    pairs: Sequence[tuple[str, str]] = BASELINE_PAIRS,
    *,
    split: str = "test",
    encoder: Any = None,
    tokenizer: str = "auto",
    datasets: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, dict[Any, dict[str, pd.DataFrame]]]:
    """Every baseline on every (query language, document language) pair of XQuAD-R, or on given datasets.

    Args:
        pairs: (query language, document language) pairs of XQuAD-R.
        split: ``train``, ``dev`` or ``test`` (of the XQuAD-R pairs).
        encoder: Dense model (``None``: zero-shot multilingual-e5-small).
        tokenizer: BM25 tokenizer spec.
        datasets: Any registered dataset ids with queries (``gradrel/afriqa/hau/test``,
            ``gradrel/local/<name>/test``, ...) to evaluate instead of ``pairs``; their languages come from
            :func:`pyterrier_gradrel.datasets.info`.

    Returns:
        (table with one row per (pair or dataset, baseline), the runs keyed by pair, or by dataset id with
        ``datasets``, then baseline name). ``answered``
        counts queries with at least one result, ``with_bm25_terms`` queries whose BM25 tokenization is not
        empty (so an unanswered BM25 query with terms shares no term with the pool: a lexical gap, e.g.
        Thai queries over English documents, not a tokenization failure).
    """
    from pyterrier_gradrel.retrieval._baselines import baselines
    from pyterrier_gradrel.retrieval._dense import _resolve_encoder
    from pyterrier_gradrel.retrieval._evaluate import evaluate_runs

    if datasets is not None:
        targets = [(ds_id, *dataset_languages(ds_id), ds_id) for ds_id in datasets]
    else:
        targets = [(dataset_id(qlang, dlang, split), qlang, dlang, (qlang, dlang)) for qlang, dlang in pairs]
    encoder = _resolve_encoder("multilingual-e5-small" if encoder is None else encoder)
    rows, all_runs = [], {}
    for ds_id, qlang, dlang, key in targets:
        ds, topics, qrels = load_eval(ds_id)
        systems = baselines(ds_id, encoder=encoder, tokenizer=tokenizer)
        bm25_tok = systems["BM25"].tokenizer
        with_terms = int(sum(bool(bm25_tok.tokenize(str(q))) for q in topics["query"]))
        runs = {}
        for name, system in systems.items():
            started = time.time()
            runs[name] = system(topics)
            _log.info("%s %s: %d rows in %.1fs", ds_id, name, len(runs[name]), time.time() - started)
        table = evaluate_runs(runs, topics, qrels)
        for row in table.to_dict(orient="records"):
            name = row.pop("name")
            rows.append({"queries_lang": qlang, "docs_lang": dlang, "dataset": ds_id, "baseline": name, **row,
                         "with_bm25_terms": with_terms})
        all_runs[key] = runs
    return _frame(rows), all_runs


def dataset_languages(ds_id: str) -> tuple[str, str]:
    """(query language, document language) of a dataset id with queries, ``+``-joined when several.

    Raises:
        ValueError: ``ds_id`` is unknown, or a documents-only id (no split, so no queries).
    """
    from pyterrier_gradrel.datasets import info

    meta = info(ds_id.removeprefix("irds:"))
    if meta.split is None:
        raise ValueError(f"{ds_id!r} names documents only: add a split with queries, e.g. {ds_id}/test")
    qlang = meta.query_lang or "+".join(meta.query_langs) or "und"
    dlang = meta.doc_lang or "+".join(meta.doc_langs) or "und"
    return qlang, dlang
