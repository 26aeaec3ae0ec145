"""``LLMJudge``: a PyTerrier transformer that grades (query, passage) pairs 0-3 with an LLM backend.

Quality needs a real judge model: the judge is only as good as the LLM behind the backend. No
judge-quality LLM is available offline on this project's development machines; the tests use scripted
local servers and tiny random models, which check the machinery, not the grades.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import pyterrier as pt
import pyterrier_alpha as pta

from pyterrier_gradrel.judge._base import JudgeBackend, Judgement
from pyterrier_gradrel.judge._cache import JudgementCache, judgement_key
from pyterrier_gradrel.judge._prompt import PROMPT_VERSION

INPUT_COLUMNS = ["qid", "query", "docno", "text"]
PROB_COLUMNS = ["p_0", "p_1", "p_2", "p_3"]
OUTPUT_COLUMNS = ["grade", "judge_raw", "judge_error", *PROB_COLUMNS]


class LLMJudge(pt.Transformer):
    """Grade each (query, passage) row 0..3 with an LLM judge.

    Input: a frame with ``qid``, ``query``, ``docno``, ``text`` (e.g. the output of a retriever followed by
    a text loader). Output: the input plus ``grade`` (pandas ``Int64``: 0..3, ``<NA>`` where the judge gave
    no parseable grade or the request failed), ``judge_raw`` (the judge's answer text), ``judge_error`` (why
    the grade is missing, ``None`` where there is one) and ``p_0..p_3`` (the probability of each grade where
    the backend exposes token probabilities, else NaN).

    Identical (query, text) pairs are judged once. With a cache, every completed judgement is persisted
    immediately, so an interrupted run resumes with only the missing pairs. Transient failures (timeouts,
    5xx, connection errors, answers that are not a well-formed response: see the backend) are never
    cached, so the next run asks again; answers without a clean grade are final and cached as missing
    (``grade=None``) unless ``retry_missing=True`` asks for them again.

    Args:
        backend: a judge backend (:class:`OpenAIChatBackend`, :class:`TransformersBackend` or anything with
            ``model_id`` and ``judge_many``).
        cache: a :class:`JudgementCache`, a path to a JSONL cache file, ``True`` for the default cache file
            of this judge model under ``$GRADREL_HOME/judgements/``, or ``None``/``False`` for no cache.
        retry_missing: re-judge pairs whose cached judgement has no grade.
        batch_size: pairs handed to the backend at a time (progress granularity), >= 1.
        verbose: show a progress bar.
    """

    def __init__(self, backend: JudgeBackend, *, cache: JudgementCache | str | os.PathLike | bool | None = None,
                 retry_missing: bool = False, batch_size: int = 64, verbose: bool = False) -> None:
        if not isinstance(backend, JudgeBackend):
            raise TypeError(f"backend must provide model_id and judge_many(pairs, on_result=...), "
                            f"got {type(backend).__name__}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if cache is True:
            cache = JudgementCache(name=backend.model_id)
        elif cache is False:
            cache = None
        elif isinstance(cache, (str, os.PathLike)):
            cache = JudgementCache(cache)
        elif cache is not None and not isinstance(cache, JudgementCache):
            raise TypeError(f"cache must be a JudgementCache, a path, True, False or None, got {type(cache).__name__}")
        self.backend = backend
        self.cache: JudgementCache | None = cache
        self.retry_missing = bool(retry_missing)
        self.batch_size = batch_size
        self.verbose = bool(verbose)
        self.judged_last = 0  # how many pairs the last transform sent to the backend
        # how many of those failed transiently or were refused by the server (not cached; the next run asks again)
        self.transient_last = 0

    @property
    def model_id(self) -> str:
        """The backend's judge model id."""
        return self.backend.model_id

    def __repr__(self) -> str:
        cache = f"JudgementCache({str(self.cache.path)!r})" if self.cache is not None else "None"
        return f"LLMJudge({self.backend!r}, cache={cache}, prompt={PROMPT_VERSION!r})"

    def key(self, query: str, text: str) -> str:
        """The cache key of a (query, passage text) pair for this judge."""
        return judgement_key(self.model_id, query, text)

    @staticmethod
    def _record(judgement: Judgement, qid: Any, docno: Any) -> dict[str, Any]:
        return {"grade": judgement.grade, "raw": judgement.raw,
                "probs": list(judgement.probs) if judgement.probs is not None else None,
                "error": judgement.error, "qid": str(qid), "docno": str(docno)}

    @staticmethod
    def _check_texts(rows: pd.DataFrame) -> None:
        """Refuse rows without a query or passage text (``None``/NaN), before any request."""
        for column in ("query", "text"):
            absent = rows[column].isna().to_numpy()
            if absent.any():
                first = rows[absent].iloc[0]
                raise ValueError(f"{column} is missing in {int(absent.sum())} of {len(rows)} rows (first: qid "
                                 f"{first['qid']!r}, docno {first['docno']!r}); the judge needs every pair's query "
                                 f"and passage text (a text loader, e.g. pt.text.get_text(dataset, 'text'), adds it)")

    def judge_pairs(self, rows: pd.DataFrame) -> dict[str, dict]:
        """Judge the distinct (query, text) pairs of ``rows``; returns key -> record (from cache or fresh).

        Raises:
            ValueError: a row has no query or no text (``None``/NaN); nothing is judged.
        """
        self._check_texts(rows)
        keys = [self.key(q, t) for q, t in zip(rows["query"].astype(str), rows["text"].astype(str), strict=True)]
        found: dict[str, dict] = {}
        todo: dict[str, tuple[str, str, Any, Any]] = {}
        for key, q, t, qid, docno in zip(keys, rows["query"].astype(str), rows["text"].astype(str),
                                         rows["qid"], rows["docno"], strict=True):
            if key in found or key in todo:
                continue
            cached = self.cache.get(key) if self.cache is not None else None
            if cached is not None and (cached.get("grade") is not None or not self.retry_missing):
                found[key] = cached
            else:
                todo[key] = (q, t, qid, docno)
        self.judged_last = self.transient_last = 0
        items = list(todo.items())
        bar = None
        if self.verbose and items:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc="judging", unit="pair")
        try:
            for start in range(0, len(items), self.batch_size):
                chunk = items[start:start + self.batch_size]

                def on_result(i: int, judgement: Judgement, chunk=chunk) -> None:
                    key, (_q, _t, qid, docno) = chunk[i]
                    record = self._record(judgement, qid, docno)
                    record.update(model=self.model_id, prompt_version=PROMPT_VERSION)
                    found[key] = record
                    self.judged_last += 1
                    self.transient_last += int(judgement.transient)
                    if self.cache is not None and not judgement.transient:
                        self.cache.put(key, record)
                    if bar is not None:
                        bar.update(1)

                results = self.backend.judge_many([(q, t) for _k, (q, t, _i, _d) in chunk], on_result=on_result)
                for i, judgement in enumerate(results):  # backends that do not call on_result
                    if chunk[i][0] not in found:
                        on_result(i, judgement)
        finally:
            if bar is not None:
                bar.close()
        return {k: found[k] for k in keys if k in found}

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        """Add ``grade``, ``judge_raw``, ``judge_error`` and ``p_0..p_3`` to each row of ``inp``.

        Raises:
            ValueError: a row has no query or no text (``None``/NaN); nothing is judged.
        """
        pta.validate.columns(inp, includes=INPUT_COLUMNS)
        out = inp.drop(columns=[c for c in OUTPUT_COLUMNS if c in inp.columns]).copy()
        if len(out) == 0:
            out["grade"] = pd.Series([], dtype="Int64")
            out["judge_raw"] = pd.Series([], dtype=object)
            out["judge_error"] = pd.Series([], dtype=object)
            for c in PROB_COLUMNS:
                out[c] = pd.Series([], dtype=float)
            return out
        records = self.judge_pairs(out)
        keys = [self.key(q, t) for q, t in zip(out["query"].astype(str), out["text"].astype(str), strict=True)]
        grades, raws, errors, probs = [], [], [], []
        for key in keys:
            rec = records.get(key) or {}
            grades.append(rec.get("grade"))
            raws.append(rec.get("raw"))
            errors.append(None if rec.get("grade") is not None else (rec.get("error") or "not judged"))
            p = rec.get("probs")
            probs.append(p if p is not None else [np.nan] * 4)
        out["grade"] = pd.array(grades, dtype="Int64")
        out["judge_raw"] = pd.Series(raws, index=out.index, dtype=object)
        out["judge_error"] = pd.Series(errors, index=out.index, dtype=object)
        parr = np.asarray(probs, dtype=float).reshape(len(out), 4)
        for j, c in enumerate(PROB_COLUMNS):
            out[c] = parr[:, j]
        return out
