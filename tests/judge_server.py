"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for the judge tests.

It behaves like a (very simple) judge: it reads the JSON data block of the user message, exactly as
the prompt declares it, and grades by a fixed rule (``rule(query, passage) -> int``). Failure modes are
scripted per request: ``server.script`` is a list of actions consumed in order (one per request), after
which every request gets the default answer. Actions:

* ``"ok"``: answer the rule's grade (with logprobs if asked for).
* ``("status", code, headers)``: an HTTP error with the given headers (e.g. ``Retry-After``).
* ``("sleep", seconds)``: sleep, then answer ``ok`` (a client with a shorter timeout times out).
* ``("text", content)``: answer ``content`` as the assistant message (garbage answers).
* ``("body", bytes)``: a 200 with a raw, non-JSON body.
* ``("raw", bytes)``: these bytes as the whole response (status line included), then the connection is closed.

``server.refuse(query, passage, payload)``, when set, is asked first for each request (after the scripted
action is taken from the script): an HTTP status it returns is answered with an OpenAI-style error body
(``vLLM``'s words for a prompt beyond the model's context), ``None`` lets the request through.
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FENCE = re.compile(r"<<<DATA ([0-9a-f]{12})>>>\n(.*)\n<<<END DATA \1>>>", re.DOTALL)


def data_block(messages: list[dict[str, str]]) -> dict[str, str]:
    """The (query, passage) JSON object inside the data fence of the user message; the fence tag must match
    the one the system message announces."""
    system, user = messages[0]["content"], messages[1]["content"]
    match = FENCE.search(user)
    assert match, "the user message has no data block"
    assert f"<<<DATA {match.group(1)}>>>" in system, "the system message announces another fence"
    return json.loads(match.group(2))


def overlap_rule(query: str, passage: str) -> int:
    """A transparent toy rule: the number of query words found in the passage, capped at 3."""
    q = {w.strip("?.,!").lower() for w in query.split()}
    p = {w.strip("?.,!").lower() for w in passage.split()}
    return min(3, len(q & p))


class JudgeServer:
    def __init__(self, rule: Callable[[str, str], int] = overlap_rule, *, api_key: str | None = None) -> None:
        self.rule = rule
        self.api_key = api_key
        self.script: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.killed = False
        self.delay = 0.0  # seconds every answer waits (to make a run slow enough to be killed halfway)
        self.refuse: Callable[[str, str, dict[str, Any]], int | None] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _done(self) -> None:
                """This request stops counting as in flight (once): before its answer is written, so a client
                that sends its next request on receiving it is never counted twice."""
                if getattr(self, "_counted", False):
                    with server.lock:
                        server.in_flight -= 1
                    self._counted = False

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self._done()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length))
                with server.lock:
                    server.in_flight += 1
                    self._counted = True
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.requests.append({"path": self.path, "payload": payload,
                                            "auth": self.headers.get("Authorization")})
                    action = server.script.pop(0) if server.script else "ok"
                try:
                    self._act(action, payload)
                finally:
                    self._done()

            def _act(self, action: Any, payload: dict[str, Any]) -> None:
                if server.api_key is not None and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(401, b'{"error": "bad key"}')
                    return
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}')
                    return
                if server.refuse is not None:
                    data = data_block(payload["messages"])
                    code = server.refuse(data["query"], data["passage"], payload)
                    if code is not None:
                        self._send(code, json.dumps({
                            "object": "error", "type": "BadRequestError", "code": code,
                            "message": "This model's maximum context length is 4096 tokens. However, you "
                                       "requested 5000 tokens"}).encode())
                        return
                kind = action if isinstance(action, str) else action[0]
                if kind == "status":
                    _, code, headers = action
                    self._send(code, json.dumps({"error": f"scripted {code}"}).encode(), headers)
                    return
                if kind == "body":
                    self._send(200, action[1])
                    return
                if kind == "raw":
                    self._done()
                    self.wfile.write(action[1])
                    self.close_connection = True
                    return
                if kind == "sleep":
                    time.sleep(action[1])
                elif server.delay:
                    time.sleep(server.delay)
                data = data_block(payload["messages"])
                grade = server.rule(data["query"], data["passage"])
                content = action[1] if kind == "text" else str(grade)
                choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content},
                                          "finish_reason": "stop"}
                if payload.get("logprobs") and kind != "text":
                    # the rule's grade gets 70%, the others share the rest
                    alts = [{"token": str(g), "logprob": math.log(0.7 if g == grade else 0.1)} for g in range(4)]
                    choice["logprobs"] = {"content": [{"token": content, "logprob": math.log(0.7),
                                                       "top_logprobs": alts}]}
                self._send(200, json.dumps({"id": "x", "object": "chat.completion", "model": payload["model"],
                                            "choices": [choice]}).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def kill(self) -> None:
        """Stop serving and close the socket (later requests get 'connection refused')."""
        if self.killed:
            return
        self.killed = True
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> JudgeServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()
