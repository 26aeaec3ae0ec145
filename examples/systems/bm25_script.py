"""BM25 with the script tokenizer: a ``gradrel evaluate --system`` factory.

BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", Foundations and Trends
in IR 3(4), 2009) over PISA (Mallia et al., "PISA: Performant Indexes and Search for Academia", OSIRRC@SIGIR
2019; pyterrier-pisa), k1=0.9, b=0.4, with :class:`pyterrier_gradrel.retrieval.ScriptTokenizer`: NFKC and case
folding, words split by Unicode script, character bigrams for scripts written without spaces (Han, Thai, ...),
light Arabic normalisation. The ``BM25`` baseline uses the measured default tokenizer instead (lower-cased
XLM-R pieces, ``gradrel bm25-tokenizers``); this system shows what BM25 scores without any model vocabulary.

No extra dependency. Run on the whole suite::

    gradrel evaluate --system examples/systems/bm25_script.py:factory --name BM25-script --threads 1
"""
from __future__ import annotations

import pyterrier as pt

import pyterrier_gradrel as gr

#: the suite evaluates each system's top 100 results per query
DEPTH = 100


def factory(dataset_id: str) -> pt.Transformer:
    """The system for one task: BM25 (script tokenizer) over the task's document pool.

    Args:
        dataset_id: The task's dataset, e.g. ``"gradrel/xquad-r/de/test"``.

    Returns:
        A transformer from the task's topics (``qid``, ``query``) to its top :data:`DEPTH` results.
    """
    return gr.bm25(dataset_id, tokenizer="script", num_results=DEPTH)
