"""The wire pieces of the fake Anthropic API (:mod:`fakes.anthropic_server`), shared by the server and
its Message Batches part: the reply and record types, the error body, the timestamps the API writes,
the token counter, the fault/marker patterns, and the readers of a request body.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

FAULT = re.compile(r"\[\[fault:([a-z_0-9]+)(?:\*(\d+))?\]\]")
BATCH_FAULT = re.compile(r"\[\[batch:([a-z_]+)(?:\*(\d+))?\]\]")
LATENCY = re.compile(r"\[\[latency:(\d+)\]\]")
CONF = re.compile(r"\[\[conf:([0-9.]+)\]\]")
VOTES = re.compile(r"\[\[votes:([^\]]+)\]\]")
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
RESET = -1  #: the status recorded for a request whose connection was reset without a reply

DEFAULT_MODELS = [
    ("claude-haiku-5-5", "Claude Haiku 5.5", "2026-10-07T00:00:00Z"),
    ("claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-10-07T00:00:00Z"),
    ("claude-opus-5-5", "Claude Opus 5.5", "2026-09-22T00:00:00Z"),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
]


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: The pieces a BPE tokenizer tends to make: a word (with its leading space), a number, a run of
#: punctuation, a run of whitespace. Long pieces count as several tokens.
_PIECE = re.compile(r" ?[A-Za-z_]+| ?\d+(?:\.\d+)?| ?[^\sA-Za-z\d_]+|\s+")


def count_tokens(text: str) -> int:
    """Tokens in ``text`` the way a tokenizer counts them, roughly: 3.3–3.6 characters a token for
    JSON with label names (a banking77 answer with all 77 probabilities is about 680 tokens), about
    4 for English prose. Used for every count this server reports and for the ``max_tokens`` cut."""
    n = 0
    for m in _PIECE.finditer(text):
        core = m.group().strip()
        if not core:
            n += 1
        elif core[0].isalpha() or core[0] == "_":
            n += -(-len(core) // 5)
        elif core[0].isdigit():
            n += -(-len(core) // 4)
        else:
            n += -(-len(core) // 3)
    return n


def _tokens(text: str) -> int:
    return max(1, count_tokens(text))


def cut_to_tokens(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that is at most ``limit`` tokens (where generation stops at
    ``max_tokens``)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


#: The shortest prompt prefix each model caches; below it caching silently does nothing (both
#: usage counters 0, the whole prompt billed as input), as the real API does.
MIN_CACHEABLE = {
    "claude-haiku-5-5": 512, "claude-opus-5-5": 512, "claude-fable-5-1": 512, "claude-fable-5-2": 512,
    "claude-sonnet-5-5": 1024, "claude-sonnet-4-5": 1024, "claude-haiku-4-5": 4096,
}


def _error(kind: str, message: str, error_code: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"type": kind, "message": message}
    if error_code:
        err["details"] = {"error_code": error_code}
    return {"type": "error", "error": err, "request_id": "req_fake" + uuid.uuid4().hex[:12]}


@dataclass
class Recorded:
    """One HTTP request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"


def _user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    for msg in reversed(messages):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        return "".join(b.get("text", "") for b in content or [] if b.get("type") == "text")
    return ""


def _unwrap(text: str) -> str:
    m = re.fullmatch(r"\s*<text>\n?(.*?)\n?</text>\s*", text, re.S)
    return m.group(1) if m else text


def _schema(body: dict[str, Any]) -> dict[str, Any]:
    schema = ((body.get("output_config") or {}).get("format") or {}).get("schema")
    if schema is None and body.get("tools"):
        schema = body["tools"][0].get("input_schema")
    return schema or {}


def _schema_labels(schema: dict[str, Any]) -> list[str] | None:
    """The label names a classification schema allows (an enum on ``label`` or on the items of
    ``labels``); None for a schema that asks for no label."""
    props = schema.get("properties", {})
    enum = props.get("label", {}).get("enum") or props.get("labels", {}).get("items", {}).get("enum")
    return list(enum) if enum else None


def _first_label(payload: dict[str, Any]) -> str:
    return payload["label"] if "label" in payload else payload["labels"][0]


def _rename_label(payload: dict[str, Any], name: str) -> None:
    if "label" in payload:
        payload["label"] = name
    else:
        payload["labels"][0] = name
