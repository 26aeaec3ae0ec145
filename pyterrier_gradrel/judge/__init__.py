"""LLM relevance judge: grade (query, passage) pairs 0-3, build LLM-graded collections, measure agreement.

Public API:

* :class:`LLMJudge` - a PyTerrier transformer adding ``grade``, ``judge_raw`` and ``p_0..p_3``.
* :class:`OpenAIChatBackend` - any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp).
* :class:`TransformersBackend` - a local ``transformers`` causal LM, grade probabilities in one forward pass.
* :class:`JudgementCache` - crash-safe on-disk JSONL cache of judgements.
* :func:`build_collection` - pool, judge and write a local graded collection (``gradrel/local/<name>``).
* :func:`agreement` - judge grades vs existing grades: confusion matrix, quadratic-weighted kappa, per group.

What is cached, retried and final. Every judgement is appended to the cache (fsync-ed) as it completes,
so a killed run keeps all finished pairs and the next run judges only the rest. A grade 0-3 is final. A
well-formed answer without a clean grade (text such as ``"maybe 3"`` or ``"5"``, an empty message) is
final too: cached as missing (``grade=None``) and asked again only with ``retry_missing=True``
(``--retry-missing``). Transient failures are never cached and are asked again by the next run: timeouts,
connection errors, HTTP 429/5xx, and 200 answers that are not a well-formed chat completion (a non-JSON,
HTML, truncated or empty body, JSON without a message, malformed ``logprobs``). A request the server refuses
(HTTP 400, 413, 422, ...: e.g. a prompt beyond the model's context) fails only its pair, is not cached and
is asked again by the next run; HTTP 401/403/404 stop the run. Missing grades are
``<NA>`` in ``grade`` with the reason in ``judge_error``, and ``null`` in JSON output; nothing is guessed.
:func:`build_collection` refuses to write a collection with a split in which no pair was graded.

Quality needs a real judge model. No judge-quality LLM is available offline on this project's
development machines, so the tests check the machinery with scripted local servers and tiny random models.

Names are imported lazily, so ``import pyterrier_gradrel.judge`` is cheap (no torch, no pyterrier).
"""
from __future__ import annotations

from pyterrier_gradrel._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "LLMJudge": "pyterrier_gradrel.judge._judge:LLMJudge",
    "OpenAIChatBackend": "pyterrier_gradrel.judge._http:OpenAIChatBackend",
    "TransformersBackend": "pyterrier_gradrel.judge._hf:TransformersBackend",
    "JudgementCache": "pyterrier_gradrel.judge._cache:JudgementCache",
    "judgement_key": "pyterrier_gradrel.judge._cache:judgement_key",
    "build_collection": "pyterrier_gradrel.judge._build:build_collection",
    "agreement": "pyterrier_gradrel.judge._agreement:agreement",
    "AgreementReport": "pyterrier_gradrel.judge._agreement:AgreementReport",
    "Judgement": "pyterrier_gradrel.judge._base:Judgement",
    "JudgeBackendError": "pyterrier_gradrel.judge._base:JudgeBackendError",
    "GRADE_TEXTS": "pyterrier_gradrel.judge._prompt:GRADE_TEXTS",
    "PROMPT_VERSION": "pyterrier_gradrel.judge._prompt:PROMPT_VERSION",
    "parse_grade": "pyterrier_gradrel.judge._prompt:parse_grade",
    "build_messages": "pyterrier_gradrel.judge._prompt:build_messages",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
