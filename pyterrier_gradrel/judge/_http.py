"""A judge backend for any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp server, ...).

Only the standard library is used (``urllib``). The API key is kept in a private attribute and sent
only in the ``Authorization`` header: it never appears in ``repr``, log records or exception messages
(any text that could echo it is scrubbed, before it is cut to a snippet).

What is final and what is retried. An outcome is *final* only when the endpoint returned a well-formed
chat completion whose answer text holds no clean grade 0-3 (``"I think 3"``, ``"5"``, an empty or ``null``
message): after ``parse_retries`` extra requests the pair is recorded as missing (``grade=None``), the
cache keeps it, and a later run asks again only with ``retry_missing=True`` (``--retry-missing``).
Everything else that yields no grade is *transient* (``Judgement.transient``): timeouts, connection
errors, HTTP 408/409/425/429/5xx, and 200 answers that are not a well-formed chat completion (a body that
is not JSON, such as a proxy's HTML error page, a truncated or empty body, a connection closed before the body
its ``Content-Length`` announces, a status line that is not HTTP; JSON without
``choices[0].message.content`` or with non-text content; malformed ``logprobs``: entries that are not
objects, log-probabilities that are not finite numbers <= 0 such as ``1000``, ``Infinity``, ``NaN`` or
strings; with ``logprobs=False`` (``--no-logprobs``) the ``logprobs`` a server sends anyway are not read).
Transient outcomes are retried with backoff within the run (``max_retries``), then returned as
missing grades that are never cached, so the next run asks for them again; ``max_consecutive_failures``
of them in a row stop the run with :class:`JudgeBackendError`. HTTP 401/403/404/405/407/501 (a wrong key, base
URL or model name) stop it at once. Any other HTTP error (400, 413, 422, ...: the server refuses this request,
e.g. a prompt longer than the model's context) fails only its pair: it is not retried within the run, not
cached (the next run asks again) and its ``judge_error`` quotes the server's message. Such refusals stop the run
only while the endpoint has accepted none of this backend's requests: after ``max_consecutive_failures`` of them in a
row, one minimal request (:data:`PROBE_PAIR`, a one-word query and passage, without log-probabilities) is sent, and
the run stops only if it is not accepted either (every request is refused, e.g. an option the server does not take);
if it is, the first pairs were refused for themselves (prompts beyond the model's context) and the run goes on. A
400 to a request that asks for
log-probabilities is sent once more without them, and log-probabilities are switched off for the rest of the
run only when that request is accepted (the server refuses the parameter, not the prompt).

Judge quality depends entirely on the model behind the endpoint: use a real instruction-tuned judge
model (e.g. a 7B+ model served by vLLM). No judge-quality LLM is available offline on the development
machines of this project, so the tests exercise this backend against a local scripted server.
"""
from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import logging
import math
import os
import queue
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from pyterrier_gradrel.judge._base import JudgeBackendError, Judgement, ResultCallback, normalise_probs
from pyterrier_gradrel.judge._prompt import answer_start, build_messages, parse_grade

logger = logging.getLogger(__name__)

ENV_BASE_URL = "GRADREL_JUDGE_BASE_URL"
ENV_MODEL = "GRADREL_JUDGE_MODEL"
ENV_API_KEYS = ("GRADREL_JUDGE_API_KEY", "OPENAI_API_KEY")

#: characters of a response body quoted in an error message (after the API key is hidden)
SNIPPET_CHARS = 200
#: bytes of an HTTP error body read for its message: enough that a key echoed near its start is read whole
ERROR_BODY_BYTES = 65536
#: the shortest start of the API key hidden where a cut leaves it at the end of a snippet
MIN_KEY_PREFIX = 4
#: retried with backoff, as is every other 5xx but those in :data:`_FATAL_STATUS` and 505
_RETRY_STATUS = frozenset({408, 409, 425, 429})
#: the (query, passage) of the one request that tells a server refusing every request from one refusing the first
#: pairs (their prompts beyond the model's context): sent when ``max_consecutive_failures`` pairs in a row were
#: refused before any request was accepted
PROBE_PAIR = ("test", "test")
# the defaults of the settings that change answers: a judge with all of them has the bare ``openai:<model>`` id
_DEFAULT_TEMPERATURE, _DEFAULT_MAX_TOKENS, _DEFAULT_SEED = 0.0, 8, 0
#: the endpoint, the key or the model is wrong: the run stops at once
_FATAL_STATUS = frozenset({401, 403, 404, 405, 407, 501})


def _retryable(status: int) -> bool:
    return status in _RETRY_STATUS or (500 <= status < 600 and status not in _FATAL_STATUS and status != 505)


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Refused(Exception):
    """The server refused this one request (an HTTP error that is neither retried nor fatal)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail!r}")
        self.status = status
        self.detail = detail


# what became of one pair (``_judge_one``), as ``judge_many`` counts it
_GRADED, _FINAL, _TRANSIENT, _REFUSED, _ABORTED = "graded", "final", "transient", "refused", "aborted"


class _DaemonPool:
    """At most ``workers`` calls at a time, on daemon threads.

    Unlike a ``concurrent.futures.ThreadPoolExecutor``, whose threads the interpreter joins at exit, a request that an
    interrupted :meth:`OpenAIChatBackend.judge_many` abandons does not hold up the end of the process (``gradrel
    judge`` after Ctrl-C) until it completes, up to the request timeout.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Future, Any, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Any, *args: Any) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():  # cancelled while queued
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, *, wait: bool) -> None:
        """Let every thread end after the calls queued before it (cancel their futures first to skip them);
        ``wait``: until they have."""
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


class _Secret:
    """Holds the API key so that ``repr``/``vars`` of the backend never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def __bool__(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return "<secret>" if self._value else "<unset>"

    def __reduce__(self) -> Any:
        raise TypeError("the API key is not picklable")


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


_GRADE_TOKENS = ("0", "1", "2", "3")


def _malformed(what: str) -> _Transient:
    return _Transient(f"malformed logprobs: {what} (logprobs=False, --no-logprobs, stops asking for them)")


def _token_logprob(entry: Any, where: str) -> tuple[str, float]:
    """(token, log-probability) of one logprobs entry; raises :class:`_Transient` unless the token is text and
    the log-probability a number <= 0 (``-inf`` allowed: probability 0)."""
    if not isinstance(entry, dict):
        raise _malformed(f"{where} is {type(entry).__name__}, expected an object")
    token, lp = entry.get("token"), entry.get("logprob")
    if not isinstance(token, str):
        raise _malformed(f"{where}.token is {type(token).__name__}, expected text")
    if isinstance(lp, bool) or not isinstance(lp, (int, float)):
        raise _malformed(f"{where}.logprob is {type(lp).__name__}, expected a number")
    try:
        value = float(lp)
    except OverflowError:  # an integer beyond float range
        value = math.inf
    if not value <= 1e-6:  # NaN, +inf and any positive log-probability (a probability above 1); 1e-6 for rounding
        raise _malformed(f"{where}.logprob is {str(lp)[:40]}, expected a number <= 0")
    return token, min(value, 0.0)


def _answer_entries(content: list[Any]) -> Iterator[tuple[int, Any, str]]:
    """``(n, entry, token)`` of the logprobs entries of the answer proper, after a think block.

    The answer begins where :func:`~pyterrier_gradrel.judge._prompt.answer_start` says it does in the tokens'
    joined text, as :func:`~pyterrier_gradrel.judge._prompt.parse_grade` finds it in the answer: after the last
    ``</think>`` (with or without an opening ``<think>``), so a digit inside the reasoning is never taken as the
    grade. A token that straddles the block's end is skipped; after an unclosed block nothing is yielded. Every
    entry is validated (the block's end is looked for in all of them).
    """
    tokens = [_token_logprob(entry, f"content[{n}]")[0] for n, entry in enumerate(content)]
    start = answer_start("".join(tokens))
    if start is None:
        return
    at = 0
    for n, (entry, token) in enumerate(zip(content, tokens, strict=True)):
        if at >= start:
            yield n, entry, token
        at += len(token)


def _grade_probs(logprobs: Any) -> tuple[float, float, float, float] | None:
    """Probabilities of grades 0..3 at the first answer token that is a grade, from a choice's ``logprobs``.

    Tokens of a think block (up to the last ``</think>``) are not answer tokens (:func:`_answer_entries`), as
    :func:`~pyterrier_gradrel.judge._prompt.parse_grade` skips the block: the probabilities are those of the
    token the grade was parsed from. ``None`` when the server sent no log-probabilities or no grade token after
    the block; raises :class:`_Transient` when an entry, or the grade token's alternatives, are
    malformed.
    """
    if logprobs is None:
        return None
    if not isinstance(logprobs, dict):
        raise _malformed(f"logprobs is {type(logprobs).__name__}, expected an object")
    content = logprobs.get("content")
    if content is None:
        return None
    if not isinstance(content, list):
        raise _malformed(f"logprobs.content is {type(content).__name__}, expected a list")
    for n, entry, token in _answer_entries(content):
        if token.strip() not in _GRADE_TOKENS:
            continue
        alternatives = entry.get("top_logprobs")
        if alternatives is None:
            alternatives = []
        if not isinstance(alternatives, list):
            raise _malformed(f"content[{n}].top_logprobs is {type(alternatives).__name__}, expected a list")
        mass = [0.0, 0.0, 0.0, 0.0]
        seen: set[str] = set()
        for j, alt in enumerate([entry, *alternatives]):
            tok, lp = _token_logprob(alt, f"content[{n}]" if j == 0 else f"content[{n}].top_logprobs[{j - 1}]")
            if tok.strip() in _GRADE_TOKENS and tok not in seen:
                seen.add(tok)
                mass[int(tok.strip())] += math.exp(lp)
        return normalise_probs(mass)
    return None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAIChatBackend:
    """Grade pairs through an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: the served model name (default: ``$GRADREL_JUDGE_MODEL``).
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (default: ``$GRADREL_JUDGE_BASE_URL``);
            requests go to ``<base_url>/chat/completions``.
        api_key: bearer token (default: ``$GRADREL_JUDGE_API_KEY``, then ``$OPENAI_API_KEY``; may be unset
            for local servers). Never logged or shown.
        max_workers: concurrent requests (a thread pool), >= 1.
        timeout: seconds per request (connect and each read).
        max_retries: retries per pair on timeouts, connection errors, HTTP 429 and 5xx, and 200 answers
            that are not a well-formed chat completion (>= 0).
        backoff: first retry delay in seconds; doubles each retry (with up to 25% jitter), capped at
            ``max_backoff``. A ``Retry-After`` header (seconds or HTTP date) is honoured, also capped.
        max_backoff: the longest single wait in seconds.
        parse_retries: extra requests when an answer is not a clean grade; after that the pair is
            recorded as missing (``grade=None``, final) with the raw answer. Nothing is guessed.
        max_consecutive_failures: after this many pairs in a row fail on transient errors (all retries
            spent), the run stops with :class:`JudgeBackendError` (a dead server is not hammered); so does it
            when this many pairs in a row are refused (HTTP 400, 422, ...) before the endpoint accepted any, and a
            minimal request (:data:`PROBE_PAIR`) sent then is not accepted either.
        temperature: sampling temperature (0 = greedy).
        max_tokens: answer length limit (a grade needs 1-3 tokens; raise it for reasoning models). Like
            ``temperature`` (and ``seed`` when sampling), part of :attr:`model_id` when not the default.
        logprobs: ask for token log-probabilities (``top_logprobs=top_logprobs``) to derive ``p_0..p_3``;
            switched off for the run when a request refused with HTTP 400 is accepted without them (the
            server refuses the parameter, not the prompt). Switch it off for a server
            that answers malformed log-probabilities (they make the answer transient, see above).
        top_logprobs: how many alternatives per token to request.
        seed: sent as ``seed`` for servers that support reproducible sampling (``None``: not sent).
        interrupt_grace: when a run is interrupted (Ctrl-C, an exception), the longest wait in seconds for the
            requests in flight; the answers that arrive within it are passed to ``on_result`` (so cached), the
            others are lost (0: pass on only the answers already there).
    """

    def __init__(self, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 max_workers: int = 4, timeout: float = 60.0, max_retries: int = 5, backoff: float = 1.0,
                 max_backoff: float = 30.0, parse_retries: int = 2, max_consecutive_failures: int = 3,
                 temperature: float = _DEFAULT_TEMPERATURE, max_tokens: int = _DEFAULT_MAX_TOKENS,
                 logprobs: bool = True, top_logprobs: int = 5, seed: int | None = _DEFAULT_SEED,
                 interrupt_grace: float = 2.0) -> None:
        model = model or os.environ.get(ENV_MODEL)
        base_url = base_url or os.environ.get(ENV_BASE_URL)
        if not model:
            raise ValueError(f"model is required: pass model=... or set ${ENV_MODEL}")
        if not base_url:
            raise ValueError(f"base_url is required (e.g. http://127.0.0.1:8000/v1): pass base_url=... or set ${ENV_BASE_URL}")
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {base_url!r}")
        if parsed.username or parsed.password:
            raise ValueError("base_url must not embed credentials; pass api_key=... or set $GRADREL_JUDGE_API_KEY")
        for name, value, low in (("max_workers", max_workers, 1), ("max_retries", max_retries, 0),
                                 ("parse_retries", parse_retries, 0), ("max_consecutive_failures",
                                                                       max_consecutive_failures, 1),
                                 ("max_tokens", max_tokens, 1), ("top_logprobs", top_logprobs, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, value in (("timeout", timeout), ("backoff", backoff), ("max_backoff", max_backoff),
                            ("interrupt_grace", interrupt_grace)):
            if not isinstance(value, (int, float)) or not value >= 0 or (name == "timeout" and value == 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise ValueError(f"temperature must be in [0, 2], got {temperature!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.endpoint = f"{self.base_url}/chat/completions"
        self._key = _Secret(api_key if api_key is not None else next(
            (os.environ[v] for v in ENV_API_KEYS if os.environ.get(v)), None))
        self.max_workers = max_workers
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.parse_retries = parse_retries
        self.max_consecutive_failures = max_consecutive_failures
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.logprobs = bool(logprobs)
        self.top_logprobs = top_logprobs
        self.seed = seed
        self.interrupt_grace = float(interrupt_grace)
        handlers: list[urllib.request.BaseHandler] = []
        if _is_loopback(parsed.hostname):
            handlers.append(urllib.request.ProxyHandler({}))  # loopback traffic never goes through a proxy
        self._opener = urllib.request.build_opener(*handlers)
        self._lock = threading.Lock()
        self._consecutive_failures = 0  # pairs in a row that failed transiently (this judge_many call)
        self._refused_in_a_row = 0  # pairs in a row the endpoint refused while it had accepted no request
        self._accepted = False  # whether the endpoint has accepted a request of this backend
        self._probe_failed: str | None = None  # why the probe request of this judge_many call failed, if it did
        self._resume = threading.Event()  # cleared while the probe request is in flight: no request starts then
        self._resume.set()

    # -- identity ----------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """The judge model's name in cache keys and manifests: ``openai:<model>`` followed by
        :meth:`settings_suffix`, so a judgement cached under other sampling settings is never reused."""
        return f"openai:{self.model}{self.settings_suffix()}"

    def settings_suffix(self) -> str:
        """The settings that change this judge's answers and differ from the defaults, as ``[k=v,...]`` (or ``""``).

        ``temperature``, ``max_tokens`` (a reasoning model's answer cut at 8 tokens has no grade and is cached as
        missing; with a larger limit it is asked again) and, when sampling (``temperature`` > 0), ``seed``. With
        every default the suffix is empty, so the default ``model_id`` is the one earlier versions wrote and
        their cached judgements stay valid. ``logprobs`` changes only ``p_0..p_3``, not the grade, and is left out.
        """
        parts = []
        if self.temperature != _DEFAULT_TEMPERATURE:
            parts.append(f"temperature={self.temperature!r}")
        if self.max_tokens != _DEFAULT_MAX_TOKENS:
            parts.append(f"max_tokens={self.max_tokens}")
        if self.temperature != 0 and self.seed != _DEFAULT_SEED:
            parts.append(f"seed={self.seed!r}")
        return f"[{','.join(parts)}]" if parts else ""

    @property
    def has_api_key(self) -> bool:
        """Whether a key will be sent (the key itself is never exposed)."""
        return bool(self._key)

    def __repr__(self) -> str:
        key = "set" if self._key else "unset"
        return (f"OpenAIChatBackend(model={self.model!r}, base_url={self.base_url!r}, api_key=<{key}>, "
                f"max_workers={self.max_workers}, timeout={self.timeout:g})")

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("OpenAIChatBackend is not picklable (it holds an API key)")

    def _scrub(self, text: str) -> str:
        key = self._key.reveal()
        if key:
            text = text.replace(key, "***")
        return text

    def _snippet(self, text: str | bytes, limit: int = SNIPPET_CHARS) -> str:
        """The first ``limit`` characters of ``text`` for a message, the API key hidden before the cut.

        Scrubbing after the cut would miss a key the cut splits; a start of the key that the cut (or a bounded
        read) leaves at the end (:data:`MIN_KEY_PREFIX` characters or more) is hidden as well.
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        cut = self._scrub(text)[:limit]
        key = self._key.reveal()
        if key:
            for n in range(min(len(key) - 1, len(cut)), MIN_KEY_PREFIX - 1, -1):
                if cut.endswith(key[:n]):
                    return cut[:-n] + "***"
        return cut

    # -- one request -------------------------------------------------------------------------------
    def _payload(self, query: str, passage: str, *, logprobs: bool | None = None) -> dict[str, Any]:
        """The request body; ``logprobs`` (default: the backend's setting) asks for log-probabilities."""
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": build_messages(query, passage),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            payload["seed"] = self.seed
        if self.logprobs if logprobs is None else logprobs:
            payload["logprobs"] = True
            payload["top_logprobs"] = self.top_logprobs
        return payload

    def _post(self, payload: dict[str, Any]) -> Any:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                detail = self._snippet(exc.read(ERROR_BODY_BYTES))
            except Exception:  # noqa: BLE001 - the body of an error is best effort
                detail = ""
            retry_after = _retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if _retryable(status):
                raise _Transient(f"HTTP {status}", retry_after) from None
            if status in _FATAL_STATUS:
                raise JudgeBackendError(
                    f"{self.endpoint} answered HTTP {status}: check the base URL, the model name "
                    f"({self.model!r}) and the API key ({'set' if self._key else 'unset'}); {detail!r}"
                ) from None
            raise _Refused(status, detail) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
            # HTTPException: a body cut short (IncompleteRead), a status line that is not HTTP (BadStatusLine)
            reason = getattr(exc, "reason", exc)
            raise _Transient(self._scrub(f"{type(exc).__name__}: {reason}")) from None
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError included
            snippet = self._snippet(body)
            raise _Transient(f"HTTP 200 with a body that is not JSON ({len(body)} bytes): {snippet!r}") from None

    def _extract(self, body: Any, *,
                 logprobs: bool | None = None) -> tuple[str | None, tuple[float, float, float, float] | None]:
        """(answer text, grade probabilities) from a chat-completions body.

        The text is ``None`` for a ``null`` message (an answer without a grade). Raises :class:`_Transient`
        when the body is not a well-formed chat completion or, when the request asked for log-probabilities
        (``logprobs``; default: the backend's setting), its ``logprobs`` are malformed. Otherwise a server's
        ``logprobs`` are not read at all.
        """
        try:
            choice = body["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise _Transient(f"HTTP 200 with JSON that is not a chat completion (no choices[0].message.content): "
                             f"{self._snippet(json.dumps(body))!r}") from None
        if text is not None and not isinstance(text, str):
            raise _Transient(f"HTTP 200 with message content of type {type(text).__name__}, expected text")
        asked = self.logprobs if logprobs is None else logprobs
        return text, (_grade_probs(choice.get("logprobs")) if asked else None)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_backoff, retry_after)
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return min(self.max_backoff, base * (1.0 + random.uniform(0.0, 0.25)))

    def judge_one(self, query: str, passage: str, *, abort: threading.Event | None = None) -> Judgement:
        """Grade one pair with retries (see the class docstring); raises :class:`JudgeBackendError` on fatal errors."""
        return self._judge_one(query, passage, abort or threading.Event())[0]

    def _request(self, query: str, passage: str, logprobs: bool) -> tuple[str | None, Any]:
        """One request: (answer text with the key hidden, grade probabilities); raises :class:`_Transient`,
        :class:`_Refused` or :class:`JudgeBackendError`."""
        text, probs = self._extract(self._post(self._payload(query, passage, logprobs=logprobs)), logprobs=logprobs)
        return (self._scrub(text) if text is not None else None), probs

    def _logprobs_refused(self) -> None:
        """The server refused a request for its log-probabilities and took it without them: stop asking."""
        with self._lock:
            if not self.logprobs:
                return
            self.logprobs = False
        logger.warning("%s refused the logprobs parameters; continuing without grade probabilities", self.endpoint)

    def _refused(self, exc: _Refused) -> Judgement:
        reason = (f"HTTP {exc.status}: the endpoint refused this request (not retried, not cached: the next run "
                  f"asks again; a prompt longer than the model's context is one cause): {exc.detail!r}")
        logger.warning("judge request to %s refused: %s", self.endpoint, reason)
        return Judgement(None, error=reason, transient=True)

    def _judge_one(self, query: str, passage: str, abort: threading.Event) -> tuple[Judgement, str]:
        """:meth:`judge_one` and what became of the pair (``_GRADED``, ``_FINAL``, ``_TRANSIENT``, ``_REFUSED``,
        ``_ABORTED``)."""
        transport = parse_failures = 0
        last_text: str | None = None
        logprobs = self.logprobs
        while True:
            self._resume.wait()
            if abort.is_set():
                return Judgement(None, error="aborted: the run stopped", transient=True), _ABORTED
            try:
                text, probs = self._request(query, passage, logprobs)
            except _Transient as exc:
                transport += 1
                reason = self._scrub(exc.reason)
                if transport > self.max_retries:
                    return Judgement(None, raw=last_text, error=f"gave up after {transport} attempts: {reason}",
                                     transient=True), _TRANSIENT
                delay = self._delay(transport, exc.retry_after)
                logger.warning("judge request to %s failed (%s); retry %d/%d in %.2fs", self.endpoint,
                               reason, transport, self.max_retries, delay)
                abort.wait(delay)
                continue
            except _Refused as exc:
                if exc.status == 400 and logprobs:  # the parameter or the prompt? ask once without logprobs
                    logprobs = False
                    continue
                return self._refused(exc), _REFUSED
            self._accepted = True
            if logprobs != self.logprobs:  # accepted only without log-probabilities
                self._logprobs_refused()
            grade = parse_grade(text)
            if grade is not None:
                return Judgement(grade, raw=text, probs=probs), _GRADED
            last_text = text
            parse_failures += 1
            if parse_failures > self.parse_retries:
                return Judgement(None, raw=text, error=f"unparseable answer after {parse_failures} attempts"), _FINAL
            logger.info("unparseable judge answer %r; asking again (%d/%d)", (text or "")[:80], parse_failures,
                        self.parse_retries)

    # -- many requests -----------------------------------------------------------------------------
    def judge_many(self, pairs: Sequence[tuple[str, str]], *,
                   on_result: ResultCallback | None = None) -> list[Judgement]:
        """Grade ``pairs`` of (query, passage) with at most ``max_workers`` requests in flight.

        ``on_result(i, judgement)`` is called in the calling thread as each pair completes. An exception in the
        calling thread (Ctrl-C, one raised by ``on_result``) or in a request stops the run: queued pairs are never
        sent, requests in flight are not retried, the answers that completed but were not passed on yet and those
        in flight that arrive within ``interrupt_grace`` seconds are passed to ``on_result``, and the exception
        propagates (slower requests are abandoned: their daemon threads end with them, within ``timeout``, or with
        the process, which does not wait for them).

        Raises:
            JudgeBackendError: on HTTP 401/403/404/405/407/501, when ``max_consecutive_failures`` pairs in a row
                failed on transient errors, or when as many pairs in a row were refused (an HTTP error such as
                400) before the endpoint accepted any request and a minimal request was not accepted either.
                Judgements completed before that were already passed to ``on_result``.
        """
        results: list[Judgement | None] = [None] * len(pairs)
        if not pairs:
            return []
        abort = threading.Event()
        self._consecutive_failures = self._refused_in_a_row = 0
        self._probe_failed = None
        fatal: BaseException | None = None
        # daemon threads, not a ThreadPoolExecutor: an interrupted run abandons slow requests, which must not hold up
        # the end of the process either
        pool = _DaemonPool(min(self.max_workers, len(pairs)), "gradrel-judge")
        futures = {pool.submit(self._judge_one, q, p, abort): i for i, (q, p) in enumerate(pairs)}
        pending = set(futures)
        handled: set[Future] = set()  # completed futures taken in hand (their judgement passed on, or not to be)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    handled.add(future)
                    i = futures[future]
                    try:
                        judgement, outcome = future.result()
                    except JudgeBackendError as exc:
                        fatal = fatal or exc
                        abort.set()
                        continue
                    results[i] = judgement
                    stop = self._count(judgement, outcome, abort)
                    if stop is not None and fatal is None:
                        fatal = stop
                        abort.set()
                    if on_result is not None and outcome != _ABORTED:
                        on_result(i, judgement)
        except BaseException:  # Ctrl-C, a failing on_result or worker: no queued pair is sent, none retried
            abort.set()
            for future in futures:
                future.cancel()  # the queued ones: never sent
            pool.shutdown(wait=False)
            self._pass_on_late(futures, handled, on_result)
            raise
        pool.shutdown(wait=True)  # every request has completed
        if fatal is not None:
            raise fatal
        return [r if r is not None else Judgement(None, error="not judged", transient=True) for r in results]

    def _pass_on_late(self, futures: dict[Future, int], handled: set[Future], on_result: ResultCallback | None) -> None:
        """An interrupted run: pass to ``on_result`` the answers that completed but were not passed on yet, and
        those in flight that arrive within :attr:`interrupt_grace` seconds (so the cache keeps them); stops at the
        first error of ``on_result`` (the interruption is what propagates)."""
        if on_result is None:
            return
        left = [f for f in futures if f not in handled and not f.cancelled()]
        done, _ = wait(left, timeout=self.interrupt_grace)
        for future in sorted(done, key=futures.__getitem__):
            if future.cancelled() or future.exception() is not None:
                continue
            judgement, outcome = future.result()
            if outcome == _ABORTED:
                continue
            try:
                on_result(futures[future], judgement)
            except Exception:  # noqa: BLE001 - say the disk is full: the first error is the one reported
                logger.warning("could not record the judgements that arrived after the run was interrupted",
                               exc_info=True)
                return

    def _count(self, judgement: Judgement, outcome: str, abort: threading.Event) -> JudgeBackendError | None:
        """Count a completed pair toward the run's stopping rules; the error that stops the run, if it must
        (``abort`` is the run's: a failed probe sets it)."""
        if outcome in (_GRADED, _FINAL):
            self._consecutive_failures = 0
        elif outcome == _TRANSIENT:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.max_consecutive_failures:
                return JudgeBackendError(f"{self.endpoint}: {self._consecutive_failures} pairs in a row failed "
                                         f"({judgement.error}); stopping")
        elif outcome == _REFUSED and not self._accepted:
            self._refused_in_a_row += 1
            if self._refused_in_a_row >= self.max_consecutive_failures:
                if self._probe_failed is None:  # once per run: later refusals arrive after the run stopped
                    self._probe_failed = self._probe(abort)
                    if self._probe_failed is None:
                        return None
                return JudgeBackendError(
                    f"{self.endpoint} refused the first {self._refused_in_a_row} requests and accepted none "
                    f"({judgement.error}), nor a minimal one ({self._probe_failed}); check the model name ({self.model!r}) and "
                    f"the options the server takes (--no-logprobs, logprobs=False, drops the log-probability ones); "
                    f"stopping")
        return None

    def _probe(self, abort: threading.Event) -> str | None:
        """Send one minimal request (:data:`PROBE_PAIR`, without log-probabilities) after the first pairs were all
        refused: ``None`` if the endpoint accepts it (it refused those pairs, e.g. prompts beyond the model's
        context, not every request: the run goes on), else why it failed, with ``abort`` set. A transient failure
        is retried with backoff as a pair's is (``max_retries``). Its answer is not used. No request starts while
        it is in flight (one a worker had started before may still arrive); a failed probe sets ``abort`` before
        the workers resume, so none of them sends another pair."""
        self._resume.clear()
        failed: str | None = None
        try:
            for attempt in range(1, self.max_retries + 2):
                try:
                    self._request(*PROBE_PAIR, logprobs=False)
                except _Refused as exc:
                    failed = f"HTTP {exc.status}: {exc.detail!r}"
                except _Transient as exc:
                    failed = self._scrub(exc.reason)
                    if attempt <= self.max_retries:
                        abort.wait(self._delay(attempt, exc.retry_after))
                        continue
                except JudgeBackendError as exc:
                    failed = str(exc)
                else:
                    failed = None
                break
        finally:
            if failed is not None:
                abort.set()
            self._resume.set()
        if failed is not None:
            return failed
        self._accepted = True
        logger.warning("%s refused the first %d pairs but accepted a minimal request: those pairs are refused "
                       "(prompts beyond the model's context?), not every request; going on", self.endpoint,
                       self._refused_in_a_row)
        return None
