"""multilingual-e5-small re-ranking BM25's top 100: a ``gradrel evaluate --system`` factory.

BM25 (script tokenizer, as in ``bm25_script.py``; Robertson & Zaragoza 2009, over PISA) retrieves 100 passages
per query, and multilingual-e5-small (Wang et al., "Multilingual E5 Text Embeddings: A Technical Report",
arXiv:2402.05672, 2024), zero-shot and in float32, re-scores them with :func:`pyterrier_gradrel.dense_scorer`:
the passage vectors come from the same per-model pool cache that dense retrieval fills, so re-ranking encodes
only the queries once the pool is cached. With ``TOKENIZER = "auto"`` this is the ``BM25>>mE5`` baseline.

No extra dependency. Run on the whole suite::

    gradrel evaluate --system examples/systems/bm25_me5_rerank.py:factory --name "BM25-script>>mE5" --threads 1
"""
from __future__ import annotations

import functools

import pyterrier as pt

import pyterrier_gradrel as gr

#: BM25 results re-ranked per query (also the suite's evaluation depth)
DEPTH = 100
#: BM25 tokenizer (``"auto"``: the measured default, lower-cased XLM-R pieces)
TOKENIZER = "script"


@functools.cache
def encoder() -> gr.E5BiEncoder:
    """multilingual-e5-small in float32 with one torch thread, loaded once per process."""
    return gr.load_encoder("multilingual-e5-small", precision="float32", num_threads=1)


def factory(dataset_id: str, *, tokenizer: str = TOKENIZER) -> pt.Transformer:
    """The system for one task: ``bm25 % 100 >> dense_scorer(mE5)`` over the task's pool.

    Args:
        dataset_id: The task's dataset, e.g. ``"gradrel/xquad-r/de/test"``.
        tokenizer: The BM25 tokenizer spec.

    Returns:
        A transformer from the task's topics (``qid``, ``query``) to BM25's top :data:`DEPTH`, re-ranked by mE5.
    """
    first_stage = gr.bm25(dataset_id, tokenizer=tokenizer, num_results=DEPTH)
    return first_stage >> gr.dense_scorer(encoder(), dataset_id)
