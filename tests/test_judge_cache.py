"""The judgement cache: keys, torn lines, and resuming a judge run that was killed halfway."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from judge_server import JudgeServer, overlap_rule

from pyterrier_gradrel.judge import PROMPT_VERSION, JudgementCache, judgement_key


def test_key_covers_model_prompt_query_and_text():
    base = judgement_key("m", "q", "t")
    assert len(base) == 64
    assert base == judgement_key("m", "q", "t", prompt_version=PROMPT_VERSION)
    others = {judgement_key("m2", "q", "t"), judgement_key("m", "q2", "t"), judgement_key("m", "q", "t2"),
              judgement_key("m", "q", "t", prompt_version="other"), judgement_key("m", "qt", ""),
              judgement_key("m", "", "qt")}
    assert base not in others and len(others) == 6


def test_put_get_and_reload(tmp_path):
    cache = JudgementCache(tmp_path / "c.jsonl")
    cache.put("k1", {"grade": 2, "raw": "2", "probs": [0.1, 0.2, 0.6, 0.1]})
    cache.put("k2", {"grade": None, "raw": "??"})
    cache.put("k1", {"grade": 3, "raw": "3"})  # a later record overrides
    again = JudgementCache(tmp_path / "c.jsonl")
    assert len(again) == 2 and again.get("k1")["grade"] == 3 and again.get("k2")["grade"] is None
    assert "k2" in again and "k3" not in again and again.get("k3") is None
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(x)["key"] for x in lines)
    with pytest.raises(ValueError, match="key"):
        cache.put("", {"grade": 1})


def test_default_location_is_under_gradrel_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADREL_HOME", str(tmp_path / "home"))
    cache = JudgementCache(name="openai:some/model")
    assert cache.path.parent == tmp_path / "home" / "judgements"
    assert cache.path.name == "openai_some_model.jsonl"


def test_torn_last_line_is_ignored_and_next_append_is_clean(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = JudgementCache(path)
    cache.put("k1", {"grade": 1})
    cache.put("k2", {"grade": 2})
    with open(path, "ab") as f:  # a crash in the middle of writing the third line
        f.write(b'{"key":"k3","gra')
    torn = JudgementCache(path)
    assert len(torn) == 2 and torn.skipped_lines == 1 and "k3" not in torn
    torn.put("k3", {"grade": 3})
    final = JudgementCache(path)
    assert {k: final.get(k)["grade"] for k in final} == {"k1": 1, "k2": 2, "k3": 3}
    assert final.skipped_lines == 1  # only the torn fragment, on its own line


CHILD = textwrap.dedent("""
    import sys
    import pandas as pd
    from pyterrier_gradrel.judge import LLMJudge, OpenAIChatBackend
    frame = pd.read_json(sys.argv[3], orient="records", lines=True, dtype=False)
    backend = OpenAIChatBackend(model="judge-model", base_url=sys.argv[1], max_workers=2, backoff=0.01)
    LLMJudge(backend, cache=sys.argv[2], batch_size=4).transform(frame)
    print("finished")
""")


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_run_killed_halfway_resumes_with_only_the_missing_pairs(tmp_path):
    words = ["capital", "france", "paris", "river", "seine", "faust", "goethe", "wrote"]
    pairs = [(f"{words[i % 8]} {words[(i * 3) % 8]} q{i}", f"{words[(i * 5) % 8]} {words[(i + 1) % 8]} passage {i}")
             for i in range(40)]
    frame = pd.DataFrame([{"qid": f"q{i}", "query": q, "docno": f"d{i}", "text": t}
                          for i, (q, t) in enumerate(pairs)])
    frame_path = tmp_path / "pairs.jsonl"
    frame.to_json(frame_path, orient="records", lines=True, force_ascii=False)
    cache_path = tmp_path / "judgements.jsonl"
    with JudgeServer() as server:
        server.delay = 0.05
        child = subprocess.Popen([sys.executable, "-c", CHILD, server.base_url, str(cache_path), str(frame_path)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
        deadline = time.monotonic() + 120
        while _lines(cache_path) < 10 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        stdout, stderr = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
        assert b"finished" not in stdout
    before = JudgementCache(cache_path)
    kept = {k: before.get(k) for k in before}
    assert 10 <= len(kept) < len(pairs)

    from pyterrier_gradrel.judge import LLMJudge, OpenAIChatBackend

    with JudgeServer() as server:
        judge = LLMJudge(OpenAIChatBackend(model="judge-model", base_url=server.base_url), cache=cache_path)
        out = judge.transform(frame)
        judged_again = {(r["payload"]["messages"][1]["content"]) for r in server.requests}
        assert len(server.requests) == judge.judged_last == len(pairs) - len(kept)
    assert out["grade"].tolist() == [overlap_rule(q, t) for q, t in pairs]
    after = JudgementCache(cache_path)
    assert len(after) == len(pairs)
    assert all(after.get(k) == rec for k, rec in kept.items())  # nothing that was written got lost or changed
    # and no pair that had been judged before the kill was sent again
    from pyterrier_gradrel.judge import build_messages

    for key, rec in kept.items():
        i = int(rec["qid"][1:])
        assert key == judgement_key("openai:judge-model", *pairs[i])
        assert build_messages(*pairs[i])[1]["content"] not in judged_again


def test_openai_sampling_settings_are_part_of_the_key(tmp_path):
    """A reasoning model's answer cut by max_tokens=8 is cached as missing; a run with room for the answer (or
    another temperature) must ask again, not reuse it. With every default the id is the bare one earlier
    versions wrote, so their caches stay valid."""
    import pandas as pd
    from judge_server import JudgeServer

    from pyterrier_gradrel.judge import LLMJudge, OpenAIChatBackend

    def model_id(**kw):
        return OpenAIChatBackend(model="m", base_url="http://127.0.0.1:9/v1", **kw).model_id

    assert model_id() == model_id(seed=7) == model_id(logprobs=False, top_logprobs=2, max_workers=1) == "openai:m"
    assert model_id(max_tokens=512) == "openai:m[max_tokens=512]"
    assert model_id(temperature=0.7) == "openai:m[temperature=0.7]"
    assert model_id(temperature=0.7, seed=1, max_tokens=64) == "openai:m[temperature=0.7,max_tokens=64,seed=1]"
    rows = pd.DataFrame({"qid": ["q1"], "query": ["capital of france"], "docno": ["d1"],
                         "text": ["Paris is the capital of France."]})
    with JudgeServer() as server:
        server.script = [("text", "<think>The passage")] * 3  # cut off by max_tokens
        short = LLMJudge(OpenAIChatBackend(model="m", base_url=server.base_url, max_tokens=4, parse_retries=2),
                         cache=tmp_path / "c.jsonl")
        assert short.transform(rows)["grade"].isna().all() and len(server.requests) == 3
        roomy = LLMJudge(OpenAIChatBackend(model="m", base_url=server.base_url, max_tokens=512),
                         cache=tmp_path / "c.jsonl")
        assert roomy.transform(rows)["grade"].tolist() == [3] and len(server.requests) == 4
        assert short.transform(rows)["grade"].isna().all() and len(server.requests) == 4  # its own entry
