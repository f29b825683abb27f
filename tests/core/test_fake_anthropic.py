"""The loopback Anthropic server behaves like the API wherever KD Studio depends on it: one test
per behaviour, through the real SDK."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import anthropic
import pytest
from fakes.anthropic_server import FakeAnthropic, count_tokens
from fakes.label_sets import banking77

LABELS = banking77()
MODEL = "claude-haiku-5-5"  # caches prefixes of 512 tokens or more


def full_schema(labels: list[str]) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["label", "probabilities", "rationale"],
            "properties": {"label": {"type": "string", "enum": labels},
                           "probabilities": {"type": "object", "additionalProperties": False, "required": labels,
                                             "properties": {n: {"type": "number"} for n in labels}},
                           "rationale": {"type": "string"}}}


def ask(client, text: str, *, max_tokens: int = 4096, system: str = "Label it.", labels=LABELS, **kw):
    return client.messages.with_raw_response.create(
        model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": text}],
        system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        output_config={"format": {"type": "json_schema", "schema": full_schema(labels)}}, **kw)


@pytest.fixture
def server():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def client(server):
    c = anthropic.Anthropic(api_key="test-key", base_url=server.url, max_retries=0)
    yield c
    c.close()


def test_output_tokens_are_counted_from_the_text_returned(client):
    message = ask(client, "I am still waiting on my card?").parse()
    text = message.content[0].text
    assert message.usage.output_tokens == count_tokens(text)
    # a full banking77 distribution is ~2,000+ characters of JSON at 3–4 characters a token
    assert len(json.loads(text)["probabilities"]) == 77
    assert 3.0 <= len(text) / message.usage.output_tokens <= 4.0
    assert 550 <= message.usage.output_tokens <= 750


def test_max_tokens_cuts_the_answer_and_says_so(client):
    message = ask(client, "I am still waiting on my card?", max_tokens=512).parse()
    text = message.content[0].text
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == count_tokens(text) <= 512
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_cache_counters_stay_zero_below_the_minimum_prefix(client):
    for _ in range(2):  # the prefix: a two-label schema and one line of instructions
        usage = ask(client, "where is my card", system="Label banking messages.", labels=LABELS[:2]).parse().usage
        assert usage.cache_creation_input_tokens == usage.cache_read_input_tokens == 0
        assert usage.input_tokens > 0


def test_a_long_prefix_is_written_once_then_read(client):
    system = "Label banking messages. The labels:\n" + "\n".join(f"- {n}: {n.replace('_', ' ')}" for n in LABELS)
    assert count_tokens(system) >= 512
    first = ask(client, "where is my card", system=system).parse().usage
    second = ask(client, "my card is lost", system=system).parse().usage
    assert first.cache_creation_input_tokens >= 512 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0


def test_requests_in_flight_together_all_write_the_cache(server):
    server.latency_s = 0.3
    system = "Label banking messages. The labels:\n" + "\n".join(f"- {n}: {n.replace('_', ' ')}" for n in LABELS)
    usages = []

    def one(i: int) -> None:
        with anthropic.Anthropic(api_key="test-key", base_url=server.url, max_retries=0) as c:
            usages.append(ask(c, f"card question {i}", system=system).parse().usage)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(u.cache_creation_input_tokens > 0 and u.cache_read_input_tokens == 0 for u in usages)


def test_rate_limit_headers_count_down(client):
    first = ask(client, "where is my card", max_tokens=1000)
    second = ask(client, "my card is lost", max_tokens=1000)
    for name in ("input-tokens", "output-tokens", "tokens"):
        a = int(first.headers[f"anthropic-ratelimit-{name}-remaining"])
        b = int(second.headers[f"anthropic-ratelimit-{name}-remaining"])
        assert b < a <= int(first.headers[f"anthropic-ratelimit-{name}-limit"])
        datetime.fromisoformat(second.headers[f"anthropic-ratelimit-{name}-reset"].replace("Z", "+00:00"))
    # output is charged up front from max_tokens and settled with what was written: between the two
    # headers, the first request's charge shrank to its output and the second's took 1,000
    out = [int(r.headers["anthropic-ratelimit-output-tokens-remaining"]) for r in (first, second)]
    assert out[0] - out[1] == first.parse().usage.output_tokens


def test_past_a_token_limit_comes_a_429_with_retry_after():
    with FakeAnthropic(token_limits=(1_000_000, 1500)) as server, \
            anthropic.Anthropic(api_key="test-key", base_url=server.url, max_retries=0) as c:
        ask(c, "where is my card", max_tokens=1000)
        with pytest.raises(anthropic.RateLimitError) as err:
            ask(c, "my card is lost", max_tokens=1000)
        assert int(err.value.response.headers["retry-after"]) >= 1
        assert "output tokens per minute" in err.value.message
