"""The Message Batches part of the fake Anthropic API (:mod:`fakes.anthropic_server`): create (with
the faults queued by :meth:`BatchesMixin.queue_batch_create_faults`), retrieve, list, cancel, delete,
and the JSONL results at the ``results_url``. A batch ends on its ``batch_polls``-th retrieve (at
once when ``batch_polls`` is 0); each request's result is what ``/v1/messages`` would answer, or
the ``[[batch:errored*N]]`` / ``[[batch:expired*N]]`` / ``[[batch:invalid]]`` result its text asks for.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from fakes.anthropic_wire import BATCH_FAULT, CUSTOM_ID, FAULT, RESET, _error, _iso, _Reply, _user_text


class BatchesMixin:
    """Message Batches, mixed into :class:`fakes.anthropic_server.FakeAnthropic` (which owns the
    state below and :meth:`answer`, the reply to one Messages request)."""

    batches: dict[str, dict[str, Any]]
    batch_polls: int
    url: str
    _lock: threading.Lock
    _batch_create_faults: deque[str]
    _batch_text_counts: Counter[str]
    _count: Callable[[Counter[str], str], int]
    answer: Callable[..., _Reply]

    def queue_batch_create_faults(self, *names: str) -> None:
        """Make the next batch creates fail: ``lost_reply`` (the batch is created, then the
        connection is reset before the reply), ``reset`` (reset, nothing created), ``529``
        (overloaded, nothing created)."""
        with self._lock:
            self._batch_create_faults.extend(names)

    def batch_result(self, custom_id: str, params: dict[str, Any]) -> dict[str, Any]:
        text = _user_text(params)
        seen = self._count(self._batch_text_counts, text)
        m = BATCH_FAULT.search(text)
        if m and (m.group(2) is None or seen <= int(m.group(2))):
            kind = m.group(1)
            if kind == "expired":
                return {"custom_id": custom_id, "result": {"type": "expired"}}
            if kind == "invalid":
                return {"custom_id": custom_id, "result": {"type": "errored", "error": _error(
                    "invalid_request_error", "messages: text content blocks must be non-empty")}}
            return {"custom_id": custom_id, "result": {"type": "errored", "error": _error("api_error", "Internal error")}}
        fault = None
        fm = FAULT.search(text)
        if fm and fm.group(1) in ("malformed", "unknown_label", "refusal", "max_tokens", "400"):
            fault = fm.group(1)
        reply = self.answer(params, fault, seen=seen)
        if reply.status != 200:
            return {"custom_id": custom_id, "result": {"type": "errored", "error": reply.body}}
        message = reply.body
        message["usage"]["service_tier"] = "batch"
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}

    def _batch_view(self, batch: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in batch.items() if not k.startswith("_")}
        return view

    def _finish_batch(self, batch: dict[str, Any], canceled: bool = False) -> None:
        results = []
        for req in batch["_requests"]:
            if canceled:
                results.append({"custom_id": req["custom_id"], "result": {"type": "canceled"}})
            else:
                results.append(self.batch_result(req["custom_id"], req["params"]))
        counts = Counter(r["result"]["type"] for r in results)
        batch["_results"] = list(reversed(results))  # any order: clients must join on custom_id
        batch["processing_status"] = "ended"
        batch["request_counts"] = {"processing": 0, "succeeded": counts["succeeded"], "errored": counts["errored"],
                                   "canceled": counts["canceled"], "expired": counts["expired"]}
        batch["ended_at"] = _iso(datetime.now(timezone.utc))
        batch["results_url"] = f"{self.url}/v1/messages/batches/{batch['id']}/results"

    def create_batch(self, body: dict[str, Any]) -> _Reply:
        with self._lock:
            fault = self._batch_create_faults.popleft() if self._batch_create_faults else None
        if fault == "reset":
            return _Reply(RESET, None)
        if fault == "529":
            return _Reply(529, _error("overloaded_error", "Overloaded"), headers={"retry-after": "0"})
        reply = self._create_batch(body)
        return _Reply(RESET, None) if fault == "lost_reply" and reply.status == 200 else reply

    def _create_batch(self, body: dict[str, Any]) -> _Reply:
        requests = body.get("requests") or []
        ids = [r.get("custom_id", "") for r in requests]
        bad = [c for c in ids if not CUSTOM_ID.match(str(c))]
        if not requests or bad or len(set(ids)) != len(ids):
            why = f"custom_id {bad[0]!r} is not valid" if bad else "custom_id values must be unique"
            return _Reply(400, _error("invalid_request_error", why if requests else "requests: empty"))
        now = datetime.now(timezone.utc)
        batch_id = "msgbatch_" + uuid.uuid4().hex[:24]
        batch = {
            "id": batch_id, "type": "message_batch", "processing_status": "in_progress",
            "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "created_at": _iso(now), "expires_at": _iso(now + timedelta(hours=24)), "ended_at": None,
            "archived_at": None, "cancel_initiated_at": None, "results_url": None,
            "_requests": requests, "_polls": 0,
        }
        with self._lock:
            self.batches[batch_id] = batch
        if self.batch_polls <= 0:
            self._finish_batch(batch)
        return _Reply(200, self._batch_view(batch))

    def retrieve_batch(self, batch_id: str) -> _Reply:
        batch = self.batches.get(batch_id)
        if batch is None:
            return _Reply(404, _error("not_found_error", f"batch {batch_id} not found"))
        with self._lock:
            batch["_polls"] += 1
            due = batch["processing_status"] != "ended" and batch["_polls"] >= self.batch_polls
        if due:
            self._finish_batch(batch, canceled=batch["processing_status"] == "canceling")
        return _Reply(200, self._batch_view(batch))

    def route_batches(self, method: str, path: str, body: Any) -> _Reply | None:
        """The reply to a request under ``/v1/messages/batches``; None for any other path."""
        if path == "/v1/messages/batches":
            if method == "POST":
                return self.create_batch(body or {})
            data = [self._batch_view(b) for b in sorted(self.batches.values(), key=lambda b: b["created_at"],
                                                          reverse=True)]
            return _Reply(200, {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                "last_id": data[-1]["id"] if data else None})
        m = re.fullmatch(r"/v1/messages/batches/([^/]+)(/results|/cancel)?", path)
        if m:
            batch_id, action = m.group(1), m.group(2)
            batch = self.batches.get(batch_id)
            if batch is None:
                return _Reply(404, _error("not_found_error", f"batch {batch_id} not found"))
            if method == "GET" and action is None:
                return self.retrieve_batch(batch_id)
            if method == "GET" and action == "/results":
                if batch["processing_status"] != "ended":
                    return _Reply(400, _error("invalid_request_error", "batch has not ended"))
                lines = "".join(json.dumps(r) + "\n" for r in batch["_results"]).encode()
                return _Reply(200, None, raw=lines, content_type="application/binary")
            if method == "POST" and action == "/cancel":
                if batch["processing_status"] == "in_progress":
                    batch["processing_status"] = "canceling"
                    batch["cancel_initiated_at"] = _iso(datetime.now(timezone.utc))
                return _Reply(200, self._batch_view(batch))
            if method == "DELETE" and action is None:
                self.batches.pop(batch_id, None)
                return _Reply(200, {"id": batch_id, "type": "message_batch_deleted"})
        return None
