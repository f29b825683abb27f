"""Claude as a black-box teacher (``claude:MODEL_ID``), through the Anthropic Messages API.

Classification: the model answers JSON with the chosen ``label`` (an enum of the project's
labels), a ``probabilities`` object with one number property per label, and a one-line
``rationale``. The API has no log-probabilities, so the soft label is the model's *verbalized*
distribution (clipped to [1e-6, 1] and renormalised). With ``k_samples > 0`` the most uncertain
answers are asked k more times and their distribution is re-estimated from the k+1 answers
(method ``k-sample``). Generation: the completion text.

The request: a system text block with the task instructions, the labels and their descriptions
and optional few-shot examples, marked ``cache_control: ephemeral`` so every request after the
first reads the shared prefix from the prompt cache; the example is the user message. JSON
outputs (``output_config.format``) are used first; a model that rejects them gets a forced tool
call instead (and the other way round). ``temperature``/``top_p``/``top_k`` are never sent.

Real-time lane (:meth:`ClaudeTeacher.answer`): ``AsyncAnthropic`` with ``concurrency``
requests in flight, in a private event loop on a helper thread; answers are yielded in small
groups as they complete; the ``anthropic-ratelimit-*`` headers pause dispatching before the
limit is hit; the SDK retries 429/529/5xx and timeouts. Batch lane
(:meth:`ClaudeTeacher.answer_batch`): the Message Batches API at half price, resumable from the
batch ids stored in the project.

What stops a harvest (raises): a rejected key (401), no permission (403), a spend limit, a budget
that the next request would pass (:class:`BudgetExceeded`). Everything else that goes wrong with
one example becomes a failed row with the reason, and the harvest goes on.

The API key comes from ``options["api_key"]``, else :func:`kdstudio.core.secrets.get_api_key`;
it is never stored in the project nor logged. ``ANTHROPIC_BASE_URL`` points the client at a proxy
or gateway (``options["base_url"]`` wins).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kdstudio.core import secrets
from kdstudio.core.errors import BudgetExceeded, Cancelled, ConfigError, TeacherError
from kdstudio.core.events import CancelToken, Event, Log
from kdstudio.core.store.outputs import TeacherOutput
from kdstudio.core.teachers import pricing

if TYPE_CHECKING:
    from kdstudio.core.store import Project

TOOL_NAME = "record_label"
PROMPT_VERSION = 1
MIN_PROB = 1e-6
BATCH_MAX_REQUESTS = 100_000
BATCH_MAX_BYTES = 200 * 1024 * 1024  # the API allows 256 MB; keep a margin
CANCEL_GRACE_S = 1.0  # requests in flight when a job stops get this long to finish
TRANSIENT_STREAK_LIMIT = 25  # this many failures in a row (after SDK retries) stop the harvest
SPEND_LIMIT_CODES = ("enforced_spend_limit_reached", "contract_spend_limit_reached",
                     "linked_organization_spend_limit_reached")
# Models with thinking always on: effort "low" keeps labelling cheap (thinking counts as output).
_LOW_EFFORT_PREFIXES = ("claude-opus-5-5", "claude-fable-5")


def _now_utc() -> datetime:
    return datetime.now(timezone.utc)


# ------------------------------------------------------------------------------------------------
# The teacher
# ------------------------------------------------------------------------------------------------
class ClaudeTeacher:
    """The ``claude:MODEL_ID`` teacher. Options (``context.options``):

    - ``concurrency`` (8): requests in flight in the real-time lane;
    - ``budget_usd`` (None): stop before the next request would take the teacher's spending
      (``spent_usd`` + this run) past it;
    - ``spent_usd`` (0): what this teacher has already cost in the project;
    - ``k_samples`` (0 = off), ``uncertain_fraction`` (0.15): k-sample mode;
    - ``max_tokens`` (512 for classification, 1024 for generation);
    - ``few_shot``: list of (text, label or completion) shown in the cached system prompt;
    - ``api_key``, ``base_url``, ``timeout_s`` (120), ``max_retries`` (4);
    - ``effort`` ("low" on models that always think, else not sent); ``output_mode``
      ("json" or "tool"; default json with automatic fallback);
    - ``batch_api`` (False): only changes the prices :meth:`estimate` uses.
    """

    kind = "claude"

    def __init__(self, model: str, context: Any) -> None:
        self.model = model
        self.spec = f"claude:{model}"
        self.context = context
        opts = dict(context.options or {})
        self.task = context.task
        self.labels: list[str] = list(context.labels or [])
        if self.task == "classification" and len(self.labels) < 2:
            raise ConfigError("a classification project needs at least two labels before Claude can label it")
        self.concurrency = max(1, int(opts.get("concurrency") or 8))
        self.k_samples = max(0, int(opts.get("k_samples") or 0)) if self.task == "classification" else 0
        self.uncertain_fraction = float(opts.get("uncertain_fraction", 0.15) if opts.get("uncertain_fraction")
                                        is not None else 0.15)
        default_max = 512 if self.task == "classification" else 1024
        self.max_tokens = max(1, int(opts.get("max_tokens") or default_max))
        self.few_shot: list[tuple[str, str]] = [(str(t), str(y)) for t, y in (opts.get("few_shot") or [])]
        self._api_key: str | None = opts.get("api_key") or None
        self.base_url: str | None = opts.get("base_url") or None
        self.timeout_s = float(opts.get("timeout_s") or 120.0)
        self.max_retries = int(opts.get("max_retries", 4) if opts.get("max_retries") is not None else 4)
        self.batch_api = bool(opts.get("batch_api"))
        effort = opts.get("effort", "default")
        if effort == "default":
            effort = "low" if model.startswith(_LOW_EFFORT_PREFIXES) else None
        self._effort: str | None = effort or None
        mode = opts.get("output_mode") or "json"
        if mode not in ("json", "tool"):
            raise ConfigError(f"output_mode must be 'json' or 'tool', not {mode!r}")
        self._mode = mode
        self._system_text = self._build_system()
        schema_chars = len(json.dumps(self._schema())) if self.task == "classification" else 0
        self._prompt_chars = len(self._system_text) + schema_chars + 60  # everything but the example
        self._observed = 0  # answers seen, and the longest output among them (for the budget estimate)
        self._longest_out = 0
        self._price: pricing.ModelPrice | None = None
        self.last_run: dict[str, Any] = {}

    # Read live from the options: the harvest fills in ``spent_usd`` after building the teacher.
    @property
    def budget_usd(self) -> float | None:
        """The spending limit for this teacher in USD, or None."""
        budget = (self.context.options or {}).get("budget_usd")
        return None if budget is None else float(budget)

    @property
    def spent_usd(self) -> float:
        """What this teacher had already cost in the project when the harvest started."""
        return float((self.context.options or {}).get("spent_usd") or 0.0)

    # -- what changes the answers ----------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """Prompt (as a hash), method and k-sample settings: a change makes a new teacher."""
        s: dict[str, Any] = {
            "prompt_version": PROMPT_VERSION,
            "prompt_sha": hashlib.sha256(self._system_text.encode()).hexdigest()[:16],
            "method": "completion" if self.task == "generation" else "verbalized",
            "few_shot": len(self.few_shot),
        }
        if self.k_samples:
            s.update(method="k-sample", k_samples=self.k_samples, uncertain_fraction=self.uncertain_fraction)
        return s

    # -- prompt and request ----------------------------------------------------------------------
    def _build_system(self) -> str:
        instructions = (self.context.instructions or "").strip()
        if self.task == "generation":
            parts = [instructions or "Respond to the text the user gives, as the task requires. "
                     "Answer with the response only."]
            for text, completion in self.few_shot:
                parts.append(f"<example>\n<input>\n{text}\n</input>\n<output>\n{completion}\n</output>\n</example>")
            return "\n\n".join(parts)
        descriptions = self.context.descriptions or {}
        lines = ["You are a careful annotator for a text classification task."]
        if instructions:
            lines += ["", instructions]
        lines += ["", "The labels:"]
        for name in self.labels:
            desc = (descriptions.get(name) or "").strip()
            lines.append(f"- {name}: {desc}" if desc else f"- {name}")
        lines += [
            "",
            "The user gives one text between <text> tags. Answer with JSON only:",
            '- "label": the single best label, written exactly as above;',
            '- "probabilities": for every label, the probability (0 to 1) that it is the right one. '
            "They sum to 1 and show your real uncertainty: when the text is ambiguous, spread the "
            "probability over the plausible labels instead of answering 1 and 0;",
            '- "rationale": one short line saying why.',
        ]
        if self.few_shot:
            lines += ["", "Examples:"]
            for text, label in self.few_shot:
                lines.append(f"<example>\n<text>\n{text}\n</text>\n<label>{label}</label>\n</example>")
        return "\n".join(lines)

    def _schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["label", "probabilities", "rationale"],
            "properties": {
                "label": {"type": "string", "enum": list(self.labels)},
                "probabilities": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": list(self.labels),
                    "properties": {name: {"type": "number"} for name in self.labels},
                },
                "rationale": {"type": "string", "description": "one short line"},
            },
        }

    def _user_content(self, text: str) -> str:
        return f"<text>\n{text}\n</text>" if self.task == "classification" else text

    def request_params(self, text: str, mode: str | None = None) -> dict[str, Any]:
        """The Messages API parameters for one example (also the body of a batch request)."""
        mode = mode or self._mode
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [{"type": "text", "text": self._system_text, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": self._user_content(text)}],
        }
        output_config: dict[str, Any] = {}
        if self._effort:
            output_config["effort"] = self._effort
        if self.task == "classification":
            if mode == "json":
                output_config["format"] = {"type": "json_schema", "schema": self._schema()}
            else:
                params["tools"] = [{
                    "name": TOOL_NAME,
                    "description": "Record the label, the probability of every label and a one-line rationale.",
                    "input_schema": self._schema(),
                    "strict": True,
                }]
                params["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        if output_config:
            params["output_config"] = output_config
        return params

    @property
    def price(self) -> pricing.ModelPrice:
        """This model's prices (read once per teacher; ConfigError for an unknown model)."""
        if self._price is None:
            self._price = pricing.price(self.model)
        return self._price

    # -- clients ---------------------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        return _client_kwargs(self._api_key, self.base_url, self.max_retries, self.timeout_s)

    def _client(self) -> Any:
        import anthropic

        return anthropic.Anthropic(**self._client_kwargs())

    def _async_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(**self._client_kwargs())

    # -- harvest protocol ------------------------------------------------------------------------
    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Iterator[Event]:
        """Check prices, the key and that the API offers the model (no tokens are spent)."""
        prices = self.price  # ConfigError for an unknown model
        client = self._client()
        cancel.check()
        try:
            client.with_options(max_retries=1).models.retrieve(self.model)
        except Exception as exc:  # noqa: BLE001 - mapped to messages below
            _raise_for_setup(exc, self.model, client)
            yield Log(f"could not check model {self.model} ({_short(exc)}); going on", level="warning")
        finally:
            client.close()
        source = secrets.key_source() if not self._api_key else "settings"
        yield Log(
            f"Claude teacher {self.model}: key from {source or 'the environment'}, "
            f"${prices.input:g}/${prices.output:g} per MTok in/out (prices of {pricing.load_table().get('updated')}), "
            f"{self.concurrency} requests at a time"
            + (f", budget ${self.budget_usd:.2f} (${self.spent_usd:.4f} spent)" if self.budget_usd is not None else "")
        )

    def close(self) -> None:
        """Nothing to release: clients live only as long as one call."""

    # -- parsing ---------------------------------------------------------------------------------
    def _usage_fields(self, usage: Any, batch: bool) -> dict[str, Any]:
        if usage is None:
            return {}
        return {
            "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
            "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
            "cache_write_tokens": int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
            "cache_read_tokens": int(getattr(usage, "cache_read_input_tokens", 0) or 0),
            "cost_usd": self.price.cost(usage, batch=batch),
        }

    def parse_message(self, message: Any, *, batch: bool = False) -> TeacherOutput:
        """A TeacherOutput (example 0, to be filled in) from a Messages API response."""
        fields = self._usage_fields(getattr(message, "usage", None), batch)
        extra = {"stop_reason": message.stop_reason}
        if fields.get("output_tokens"):
            self._observed += 1
            self._longest_out = max(self._longest_out, fields["output_tokens"])

        def failed(reason: str) -> TeacherOutput:
            return TeacherOutput(0, status="failed", error=reason, extra=extra, **fields)

        stop = message.stop_reason
        if stop == "refusal":
            return failed("refusal: the model declined to answer (stop_reason refusal)")
        if stop == "max_tokens":
            return failed(f"answer cut off at max_tokens={self.max_tokens} (stop_reason max_tokens); "
                          "raise max_tokens and retry failed examples")
        if stop == "model_context_window_exceeded":
            return failed("the text is too long for the model's context window")
        blocks = list(getattr(message, "content", None) or [])
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text")
        if self.task == "generation":
            if not text.strip():
                return failed("empty completion")
            return TeacherOutput(0, completion=text, method="completion", extra=extra, **fields)
        data: Any = next((b.input for b in blocks if getattr(b, "type", None) == "tool_use"
                          and getattr(b, "name", None) == TOOL_NAME), None)
        if data is None:
            try:
                data = json.loads(_strip_fences(text))
            except ValueError:
                return failed(f"invalid JSON in the answer: {text[:80]!r}")
        if not isinstance(data, dict):
            return failed(f"the answer is not a JSON object: {str(data)[:80]!r}")
        label = data.get("label")
        if label not in self.labels:
            return failed(f"unknown label {str(label)[:40]!r} (expected one of: {', '.join(self.labels)})")
        probs = _probability_vector(data.get("probabilities"), self.labels)
        if probs is None:
            return failed("the answer has no probabilities")
        rationale = " ".join(str(data.get("rationale") or "").split())[:300] or None
        return TeacherOutput(0, probs=probs, label=self.labels.index(label), rationale=rationale,
                             method="verbalized", extra=extra, **fields)

    def _error_output(self, exc: Any) -> TeacherOutput:
        """A failed row for an API error that concerns one example; raises TeacherError for the
        errors that concern every example (key, permission, spend limit)."""
        status = getattr(exc, "status_code", None)
        message = getattr(exc, "api_message", None) or str(exc)
        _raise_if_fatal(exc, self.model)
        kind = getattr(exc, "type", None) or "error"
        transient = status in (408, 409, 429) or (status or 0) >= 500
        reason = f"{status} {kind}: {message}"
        if status == 429:
            reason = f"rate limited (429) after {self.max_retries} retries: {message}"
        elif transient:
            reason += f" (after {self.max_retries} retries)"
        return TeacherOutput(0, status="failed", error=reason[:500], extra={"transient": transient})

    def _mode_rejected(self, exc: Any, mode: str) -> bool:
        if getattr(exc, "status_code", None) != 400:
            return False
        msg = (getattr(exc, "api_message", None) or str(exc)).lower()
        if mode == "json":
            return any(k in msg for k in ("output_config", "output_format", "json_schema", "structured output"))
        return any(k in msg for k in ("tool_choice", "tool use", "forced tool", "forcing tool"))

    def _effort_rejected(self, exc: Any) -> bool:
        msg = (getattr(exc, "api_message", None) or str(exc)).lower()
        return bool(self._effort) and getattr(exc, "status_code", None) == 400 and "effort" in msg

    async def _request(self, client: Any, text: str, gate: _RateGate | None) -> TeacherOutput:
        """One Messages request with the fallbacks between output modes; never raises for a
        problem of this example alone."""
        import anthropic

        tried: set[str] = set()
        while True:
            mode = self._mode
            tried.add(mode)
            try:
                raw = await client.messages.with_raw_response.create(**self.request_params(text, mode))
                message = await raw.parse()
            except anthropic.APIStatusError as exc:
                if self._effort_rejected(exc):
                    self._effort = None
                    continue
                if self._mode_rejected(exc, mode):
                    if self._mode == mode:
                        self._mode = "tool" if mode == "json" else "json"
                    if self._mode not in tried:
                        continue
                return self._error_output(exc)
            except anthropic.APITimeoutError:
                return TeacherOutput(0, status="failed", extra={"transient": True},
                                     error=f"timed out after {self.timeout_s:g} s ({self.max_retries} retries)")
            except anthropic.APIConnectionError as exc:
                return TeacherOutput(0, status="failed", extra={"transient": True},
                                     error=f"connection failed ({self.max_retries} retries): {_short(exc)}")
            if gate is not None:
                gate.update(raw.headers, need_input=self._estimate_input_tokens(text), need_output=self.max_tokens)
            out = self.parse_message(message)
            out.extra["request_id"] = raw.request_id
            out.extra["retries"] = raw.retries_taken
            return out

    # -- estimates -------------------------------------------------------------------------------
    def _estimate_input_tokens(self, text: str) -> int:
        return math.ceil((self._prompt_chars + len(text)) / 3.0)

    def _expected_output_tokens(self) -> int:
        if self.task == "generation":
            return max(1, self.max_tokens // 2)
        return min(self.max_tokens, 40 + 10 * len(self.labels))

    def estimate_request_cost(self, text: str, *, batch: bool = False) -> float:
        """A cautious cost of the next request (used by the budget check): the whole prompt at
        the input price and ``max_tokens`` of output, or twice the longest output seen once a few
        answers are in."""
        out = self.max_tokens
        if self._observed >= 5:
            out = min(self.max_tokens, 2 * self._longest_out)
        usage = {"input_tokens": self._estimate_input_tokens(text), "output_tokens": out}
        return self.price.cost(usage, batch=batch)

    def estimate(self, items: Sequence[tuple[int, str]], sample: int = 50) -> dict[str, Any]:
        """Tokens and USD a harvest of ``items`` would cost, for ``--dry-run``: ``count_tokens``
        (free) on up to ``sample`` evenly spread examples, extrapolated; no model call.

        The estimate is cautious: the cached system prompt is counted at the full input price.
        Output tokens are a typical answer length. With k-sample mode the extra requests are
        included; ``batch_api`` halves the price.
        """
        items = list(items)
        n = len(items)
        prices = self.price
        result: dict[str, Any] = {"n": n, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
                                  "model": self.model, "batch": self.batch_api, "sampled": 0,
                                  "counted_with": "count_tokens", "prices_updated": pricing.load_table().get("updated"),
                                  "price_per_mtok": prices.as_dict()}
        if n == 0:
            return result
        step = max(1, n // max(1, sample))
        picked = items[::step][:sample]
        counts: list[int] = []
        client = self._client()
        try:
            for _, text in picked:
                params = self.request_params(text)
                params.pop("max_tokens", None)
                try:
                    counts.append(int(client.messages.count_tokens(**params).input_tokens))
                except Exception as exc:  # noqa: BLE001 - a gateway may lack count_tokens
                    _raise_if_fatal(exc, self.model)
                    result["counted_with"] = "characters"
                    counts = [self._estimate_input_tokens(t) for _, t in picked]
                    break
        finally:
            client.close()
        factor = 1.0 + (self.k_samples * self.uncertain_fraction if self.k_samples else 0.0)
        input_tokens = round(sum(counts) / len(counts) * n * factor)
        output_tokens = round(self._expected_output_tokens() * n * factor)
        cost = self.price.cost({"input_tokens": input_tokens, "output_tokens": output_tokens}, batch=self.batch_api)
        result.update(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=round(cost, 6),
                      sampled=len(picked), requests=math.ceil(n * factor))
        return result

    # -- real-time lane --------------------------------------------------------------------------
    def answer(self, items: Sequence[tuple[int, str]], *, cancel: CancelToken) -> Iterator[list[TeacherOutput]]:
        """Answer every (example id, text) with up to ``concurrency`` requests in flight, yielding
        lists of outputs as they complete.

        Cancelling stops within about two seconds: no new request starts, requests in flight get
        a short grace period, and every answer received is yielded before ``Cancelled`` is
        raised. A fatal error (key, spend limit) or the budget stops the same way, then raises
        TeacherError or BudgetExceeded.
        """
        items = list(items)
        if not items:
            return
        _ = self.price  # unknown model: a clear error before any request
        self._client_kwargs()  # no key: a clear error before starting the thread
        job = _RealtimeJob(self, items, cancel)
        job.start()
        try:
            while True:
                try:
                    cancel.check()
                except Cancelled:
                    job.stop()
                    job.join()
                    rest, _ = job.collect(0.0, limit=None)
                    if rest:
                        yield rest
                    raise
                group, ended = job.collect(0.1)
                if group:
                    yield group
                if ended:
                    break
            self.last_run = job.summary()
            if job.error is not None:
                raise job.error
        finally:
            job.stop()
            job.join()

    # -- batch lane ------------------------------------------------------------------------------
    def answer_batch(
        self,
        project: Project,
        teacher_id: int,
        items: Sequence[tuple[int, str]],
        *,
        cancel: CancelToken,
        poll_s: float = 30.0,
    ) -> Iterator[list[TeacherOutput]]:
        """Answer through the Message Batches API (half price; most batches end within an hour).

        Open batches of this teacher stored in the project are resumed first (never submitted
        again); examples not in an open batch are submitted in new batches, whose ids and
        (custom_id, example, attempt) rows are stored before polling. Results are joined on
        custom_id. Errored (other than invalid_request_error), expired or cancelled requests are
        resubmitted once. Requests and batches are marked ingested only after their outputs were
        yielded, so a crash at any point loses nothing and stores nothing twice. Cancelling stops
        polling; the batches keep running and the next harvest picks them up.
        """
        if self.k_samples:
            raise ConfigError("k-sample mode works with the real-time lane only; leave out --batch-api")
        _ = self.price
        items = list(items)
        texts = dict(items)
        client = self._client()
        try:
            open_ids = list(project.open_batches(teacher_id))
            busy = project.examples_in_open_batches(teacher_id)
            fresh = [(ex, text) for ex, text in items if ex not in busy]
            over_budget: str | None = None
            if self.budget_usd is not None:
                total = self.spent_usd
                for i, (_, text) in enumerate(fresh):
                    total += self.estimate_request_cost(text, batch=True)
                    if total > self.budget_usd:
                        over_budget = (f"budget ${self.budget_usd:.2f} reached: {len(fresh) - i} examples were not "
                                       f"submitted (${self.spent_usd:.4f} spent before this harvest)")
                        fresh = fresh[:i]
                        break
            for chunk in _batch_chunks(fresh, self.request_params):
                cancel.check()
                open_ids.append(self._submit_batch(client, project, teacher_id, chunk, attempt=1))
            yield from self._poll_batches(client, project, teacher_id, open_ids, texts, cancel, poll_s)
            if over_budget:
                raise BudgetExceeded(over_budget)
        finally:
            client.close()

    def _submit_batch(self, client: Any, project: Project, teacher_id: int,
                      chunk: Sequence[tuple[int, str]], *, attempt: int) -> str:
        nonce = uuid.uuid4().hex[:10]
        rows = [(f"e{ex}-a{attempt}-{nonce}", ex, attempt) for ex, _ in chunk]
        requests = [{"custom_id": cid, "params": self.request_params(text)}
                    for (cid, _, _), (_, text) in zip(rows, chunk, strict=True)]
        try:
            batch = client.messages.batches.create(requests=requests)
        except Exception as exc:  # noqa: BLE001
            _raise_if_fatal(exc, self.model)
            raise TeacherError(f"the Message Batches API refused the batch: {_short(exc)}") from None
        project.record_batch(batch.id, teacher_id, rows)
        return batch.id

    def _poll_batches(self, client: Any, project: Project, teacher_id: int, open_ids: list[str],
                      texts: dict[int, str], cancel: CancelToken, poll_s: float) -> Iterator[list[TeacherOutput]]:
        import anthropic

        open_ids = list(dict.fromkeys(open_ids))
        while open_ids:
            for batch_id in list(open_ids):
                cancel.check()
                try:
                    batch = client.messages.batches.retrieve(batch_id)
                except anthropic.NotFoundError:
                    # The batch is gone (another workspace, or deleted): its examples become pending.
                    project.set_batch_request_status(list(project.batch_requests(batch_id)), "lost")
                    project.set_batch_status(batch_id, "ingested")
                    open_ids.remove(batch_id)
                    continue
                except Exception as exc:  # noqa: BLE001
                    _raise_if_fatal(exc, self.model)
                    raise TeacherError(f"cannot check batch {batch_id}: {_short(exc)}; run the harvest again "
                                       "later to pick it up") from None
                if batch.processing_status != "ended":
                    continue
                outputs, done, retry = self._ingest_batch(client, project, teacher_id, batch_id)
                if retry:
                    chunk = [(ex, texts.get(ex) or (project.example(ex) or {}).get("text", "")) for ex, _ in retry]
                    open_ids.append(self._submit_batch(client, project, teacher_id, chunk, attempt=2))
                    project.set_batch_request_status([cid for _, cid in retry], "resubmitted")
                if outputs:
                    yield outputs  # the harvest saves them before this generator resumes
                project.set_batch_request_status(done, "done")
                project.set_batch_status(batch_id, "ingested")
                open_ids.remove(batch_id)
            if open_ids:
                deadline = time.monotonic() + poll_s
                while time.monotonic() < deadline:
                    cancel.check()
                    time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _ingest_batch(self, client: Any, project: Project, teacher_id: int, batch_id: str
                      ) -> tuple[list[TeacherOutput], list[str], list[tuple[int, str]]]:
        requests = project.batch_requests(batch_id)
        stored = project.output_statuses(teacher_id, [ex for ex, _, _ in requests.values()])
        outputs: list[TeacherOutput] = []
        done: list[str] = []
        retry: list[tuple[int, str]] = []
        seen: set[str] = set()
        try:
            results = list(client.messages.batches.results(batch_id))
        except Exception as exc:  # noqa: BLE001
            _raise_if_fatal(exc, self.model)
            raise TeacherError(f"cannot download the results of batch {batch_id}: {_short(exc)}") from None
        for item in results:
            cid = item.custom_id
            info = requests.get(cid)
            if info is None or info[2] != "pending" or cid in seen:
                continue
            seen.add(cid)
            example, attempt, _ = info
            if stored.get(example) == "ok":  # saved before a crash, not yet marked
                done.append(cid)
                continue
            result = item.result
            if result.type == "succeeded":
                out = self.parse_message(result.message, batch=True)
                out.example = example
                out.extra["batch"] = batch_id
                outputs.append(out)
                done.append(cid)
                continue
            if result.type == "errored":
                err = getattr(getattr(result, "error", None), "error", None)
                kind = getattr(err, "type", None) or "error"
                reason = f"batch request errored: {kind}: {getattr(err, 'message', '')}"
                if kind != "invalid_request_error" and attempt < 2:
                    retry.append((example, cid))
                else:
                    outputs.append(TeacherOutput(example, status="failed", error=reason[:500]))
                    done.append(cid)
                continue
            if attempt < 2:  # expired or canceled
                retry.append((example, cid))
            else:
                outputs.append(TeacherOutput(example, status="failed", error=f"batch request {result.type} twice"))
                done.append(cid)
        for cid, (example, attempt, status) in requests.items():
            if status == "pending" and cid not in seen and stored.get(example) != "ok":
                if attempt < 2:
                    retry.append((example, cid))
                else:
                    outputs.append(TeacherOutput(example, status="failed", error="no result for this batch request"))
                    done.append(cid)
        return outputs, done, retry


# ------------------------------------------------------------------------------------------------
# The real-time job: an event loop on a helper thread, outputs handed over through a queue
# ------------------------------------------------------------------------------------------------
_END = object()


class _RateGate:
    """Pauses dispatching until the reset time when a response says a rate limit is nearly used."""

    def __init__(self) -> None:
        self.until = 0.0

    def update(self, headers: Any, *, need_input: int, need_output: int) -> None:
        needs = {"requests": 1, "tokens": need_input + need_output, "input-tokens": need_input,
                 "output-tokens": need_output}
        for kind, need in needs.items():
            remaining = headers.get(f"anthropic-ratelimit-{kind}-remaining")
            reset = headers.get(f"anthropic-ratelimit-{kind}-reset")
            if remaining is None or reset is None:
                continue
            try:
                if int(float(remaining)) >= need:
                    continue
                at = datetime.fromisoformat(reset.replace("Z", "+00:00"))
            except ValueError:
                continue
            wait = min(60.0, (at - _now_utc()).total_seconds())
            if wait > 0:
                self.until = max(self.until, time.monotonic() + wait)

    def wait_s(self) -> float:
        return max(0.0, self.until - time.monotonic())


@dataclass
class _Mix:
    """The k extra answers for one uncertain example."""

    first: TeacherOutput
    samples: list[list[float]] = field(default_factory=list)
    votes: Counter = field(default_factory=Counter)
    asked: int = 0
    tokens: Counter = field(default_factory=Counter)
    cost: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, out: TeacherOutput) -> None:
        self.asked += 1
        for name in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            self.tokens[name] += getattr(out, name)
        self.cost += out.cost_usd
        if out.latency_ms is not None:
            self.latencies.append(out.latency_ms)
        if out.status == "ok" and out.probs is not None:
            self.samples.append(out.probs)
            self.votes[out.label] += 1

    def output(self) -> TeacherOutput:
        """Half the mean verbalized distribution, half the vote frequencies, of all k+1 answers."""
        first = self.first
        dists = [first.probs, *self.samples]
        n_labels = len(first.probs)
        mean = [sum(d[i] for d in dists) / len(dists) for i in range(n_labels)]
        votes = Counter(self.votes)
        votes[first.label] += 1
        freq = [votes[i] / len(dists) for i in range(n_labels)]
        mix = _renormalise([0.5 * m + 0.5 * f for m, f in zip(mean, freq, strict=True)])
        latency = sum(self.latencies + [first.latency_ms or 0.0]) / (len(self.latencies) + 1)
        return TeacherOutput(
            first.example, probs=mix, rationale=first.rationale,
            method="k-sample" if self.samples else first.method, cost_usd=self.cost, latency_ms=latency,
            extra={"k": len(self.samples), "asked": self.asked}, **dict(self.tokens),
        )


class _RealtimeJob:
    def __init__(self, teacher: ClaudeTeacher, items: list[tuple[int, str]], cancel: CancelToken) -> None:
        self.t = teacher
        self.items = items
        self.cancel = cancel
        self.out: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.budget_hit = False
        self.gate = _RateGate()
        self.done_cost = 0.0
        self.reserved = 0.0
        self.streak = 0
        self.counts: Counter = Counter()
        self.first: dict[int, tuple[str, TeacherOutput]] = {}
        self.mixes: dict[int, _Mix] = {}
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="claude-teacher", daemon=True)
        self._ended = False

    # -- the generator's side --------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def join(self) -> None:
        if self.thread.is_alive():
            self.thread.join(timeout=CANCEL_GRACE_S + 3.0)

    def collect(self, wait_s: float, limit: int | None = 64) -> tuple[list[TeacherOutput], bool]:
        """Outputs ready now (waiting up to ``wait_s`` for the first), and whether the job ended."""
        group: list[TeacherOutput] = []
        if self._ended:
            return group, True
        try:
            item = self.out.get(timeout=wait_s) if wait_s > 0 else self.out.get_nowait()
            while True:
                if item is _END:
                    self._ended = True
                    break
                group.append(item)
                if limit is not None and len(group) >= limit:
                    break
                item = self.out.get_nowait()
        except queue.Empty:
            pass
        return group, self._ended

    def summary(self) -> dict[str, Any]:
        return {"requests": sum(self.counts.values()), "ok": self.counts["ok"], "failed": self.counts["failed"],
                "cost_usd": self.done_cost, "seconds": time.monotonic() - self.t0,
                "k_sampled": len(self.mixes)}

    # -- the loop thread -------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the generator
            if self.error is None:
                self.error = exc if isinstance(exc, Exception) else TeacherError(str(exc))
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
            self.out.put(_END)

    def _fatal(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stopping.set()

    def _halted(self) -> bool:
        if self.cancel.cancelled:
            self.stopping.set()
        return self.stopping.is_set() or self.budget_hit

    async def _main(self) -> None:
        client = self.t._async_client()
        try:
            await self._pass(client, [(ex, text, None) for ex, text in self.items])
            if self.t.k_samples and self.first and not self._halted():
                jobs = []
                for ex in self._uncertain():
                    text, first = self.first[ex]
                    self.mixes[ex] = _Mix(first)
                    jobs += [(ex, text, self.mixes[ex])] * self.t.k_samples
                # interleaved, so a stop leaves many examples with some extra answers, not a few with all
                await self._pass(client, _round_robin(jobs, self.t.k_samples))
        finally:
            for mix in self.mixes.values():
                if mix.asked:
                    self.out.put(mix.output())
            await client.close()

    def _uncertain(self) -> list[int]:
        frac = min(1.0, max(0.0, self.t.uncertain_fraction))
        n = math.ceil(frac * len(self.first))
        ranked = sorted(self.first, key=lambda ex: (max(self.first[ex][1].probs), ex))
        return ranked[:n]

    async def _pass(self, client: Any, jobs: list[tuple[int, str, _Mix | None]]) -> None:
        if not jobs:
            return
        it = iter(jobs)
        workers = [asyncio.create_task(self._worker(client, it)) for _ in range(min(self.t.concurrency, len(jobs)))]
        pending = set(workers)
        loop = asyncio.get_running_loop()
        while pending:
            _, pending = await asyncio.wait(pending, timeout=0.05)
            if self.cancel.cancelled:
                self.stopping.set()
            if pending and self.stopping.is_set():
                deadline = loop.time() + CANCEL_GRACE_S
                while pending and loop.time() < deadline:
                    _, pending = await asyncio.wait(pending, timeout=0.05)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
        for task in workers:
            if task.done() and not task.cancelled() and task.exception() is not None:
                self._fatal(task.exception())

    async def _ready(self) -> bool:
        while True:
            if self._halted():
                return False
            if self.cancel.paused:
                await asyncio.sleep(0.05)
                continue
            wait = self.gate.wait_s()
            if wait > 0:
                await asyncio.sleep(min(wait, 0.1))
                continue
            return True

    async def _worker(self, client: Any, jobs: Iterator[tuple[int, str, _Mix | None]]) -> None:
        for example, text, mix in jobs:
            if not await self._ready():
                return
            estimate = self.t.estimate_request_cost(text)
            budget = self.t.budget_usd
            if budget is not None and self.t.spent_usd + self.done_cost + self.reserved + estimate > budget:
                if not self.budget_hit:
                    self.budget_hit = True
                    self.error = BudgetExceeded(
                        f"budget ${budget:.2f} reached: ${self.t.spent_usd + self.done_cost:.4f} spent and the next "
                        f"request would cost about ${estimate:.4f}; the answers so far are saved"
                    )
                return
            self.reserved += estimate
            started = time.monotonic()
            try:
                out = await self.t._request(client, text, self.gate)
            except TeacherError as exc:
                self._fatal(exc)
                return
            finally:
                self.reserved -= estimate
            out.example = example
            out.latency_ms = round((time.monotonic() - started) * 1000, 1)
            self.done_cost += out.cost_usd
            self.counts[out.status] += 1
            if out.extra.pop("transient", False):
                self.streak += 1
                if self.streak >= TRANSIENT_STREAK_LIMIT:
                    self._fatal(TeacherError(
                        f"the Anthropic API failed {self.streak} requests in a row (last: {out.error}); "
                        "the answers so far are saved, run the harvest again later"))
            else:
                self.streak = 0
            if mix is not None:
                mix.add(out)
                continue
            self.out.put(out)
            if self.t.k_samples and out.status == "ok" and out.probs is not None:
                self.first[example] = (text, out)


# ------------------------------------------------------------------------------------------------
# Helpers and the functions the settings wizard uses
# ------------------------------------------------------------------------------------------------
def _client_kwargs(api_key: str | None, base_url: str | None, max_retries: int, timeout_s: float) -> dict[str, Any]:
    """Arguments for ``Anthropic``/``AsyncAnthropic``. Without ``base_url`` the SDK reads
    ``ANTHROPIC_BASE_URL``; the key is the given one, else :func:`secrets.get_api_key`."""
    import anthropic

    key = api_key or secrets.get_api_key()
    if not key and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        raise TeacherError(
            "no Anthropic API key: set the ANTHROPIC_API_KEY environment variable or save a key in "
            "KD Studio's settings"
        )
    kwargs: dict[str, Any] = {
        "max_retries": max_retries,
        "timeout": anthropic.Timeout(timeout_s, connect=min(5.0, timeout_s)),
    }
    if key:
        kwargs["api_key"] = key
    if base_url:
        kwargs["base_url"] = base_url
    return kwargs


def _round_robin(jobs: list[Any], k: int) -> list[Any]:
    """[a,a,a,b,b,b] → [a,b,a,b,a,b]: the first extra answer of every example comes first."""
    if k <= 1:
        return jobs
    groups = [jobs[i : i + k] for i in range(0, len(jobs), k)]
    return [g[r] for r in range(k) for g in groups if r < len(g)]


def _renormalise(values: list[float]) -> list[float]:
    clipped = [min(1.0, max(MIN_PROB, v)) for v in values]
    total = sum(clipped)
    return [v / total for v in clipped]


def _probability_vector(probs: Any, labels: list[str]) -> list[float] | None:
    if isinstance(probs, list):  # [{"label": ..., "p": ...}] answers
        probs = {d.get("label"): d.get("p", d.get("probability")) for d in probs if isinstance(d, dict)}
    if not isinstance(probs, dict) or not any(name in probs for name in labels):
        return None
    values = []
    for name in labels:
        v = probs.get(name)
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = 0.0
        values.append(f if math.isfinite(f) else 0.0)
    return _renormalise(values)


def _strip_fences(text: str) -> str:
    s = text.strip()
    if s.startswith("```"):
        s = s.split("\n", 1)[1] if "\n" in s else ""
        if s.rstrip().endswith("```"):
            s = s.rstrip()[:-3]
    return s.strip()


def _short(exc: BaseException) -> str:
    msg = getattr(exc, "api_message", None) or str(exc) or type(exc).__name__
    return " ".join(msg.split())[:200]


def _is_spend_limit(exc: Any) -> bool:
    import anthropic

    classes = tuple(getattr(anthropic, name) for name in (
        "EnforcedSpendLimitReachedError", "ContractSpendLimitReachedError",
        "LinkedOrganizationSpendLimitReachedError") if hasattr(anthropic, name))
    if classes and isinstance(exc, classes):
        return True
    code = getattr(exc, "error_code", None) or ""
    msg = (getattr(exc, "api_message", None) or "").lower()
    return code in SPEND_LIMIT_CODES or "spend_limit" in code or "credit balance is too low" in msg


def _raise_if_fatal(exc: BaseException, model: str) -> None:
    """Raise TeacherError for API errors that concern every request, not one example."""
    status = getattr(exc, "status_code", None)
    if _is_spend_limit(exc):
        raise TeacherError(
            f"Anthropic spend limit reached ({getattr(exc, 'error_code', None) or 'spend limit'}): {_short(exc)}. "
            "Raise the limit in the Anthropic console, then run the harvest again; the answers so far are saved"
        ) from None
    if status == 401:
        raise TeacherError(
            "ANTHROPIC_API_KEY rejected by the Anthropic API (401 authentication_error): check the key, or save "
            "a new one in KD Studio's settings"
        ) from None
    if status == 403:
        raise TeacherError(f"the Anthropic API refused access (403 permission_error): {_short(exc)}; check that "
                           f"the key's workspace may use {model}") from None
    if isinstance(exc, TypeError) and "authentication" in str(exc):
        raise TeacherError("no Anthropic API key: set the ANTHROPIC_API_KEY environment variable") from None


def _raise_for_setup(exc: BaseException, model: str, client: Any) -> None:
    """Map an error from a setup call (models, count_tokens) to a one-line KD Studio error;
    returns for errors that should not stop the harvest."""
    import anthropic

    _raise_if_fatal(exc, model)
    if isinstance(exc, anthropic.NotFoundError) and getattr(exc, "type", None) == "not_found_error":
        raise ConfigError(f"the Anthropic API does not offer model {model!r}; pick one from the model list") from None
    if isinstance(exc, anthropic.APIConnectionError):
        raise TeacherError(f"cannot reach the Anthropic API at {client.base_url}: {_short(exc)}") from None


def _batch_chunks(items: Sequence[tuple[int, str]], params: Any) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    size = 0
    for ex, text in items:
        n = len(json.dumps(params(text))) + 100
        if chunk and (len(chunk) >= BATCH_MAX_REQUESTS or size + n > BATCH_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append((ex, text))
        size += n
    if chunk:
        yield chunk


def list_models(api_key: str | None = None, base_url: str | None = None) -> list[dict[str, Any]]:
    """The models the API offers to this key (models API), newest first as the API lists them,
    each with ``price`` (USD per MTok: input, output, cache writes, cache read, batch discount)
    from the price table, or None when the table does not know it."""
    import anthropic

    client = anthropic.Anthropic(**_client_kwargs(api_key, base_url, 1, 20.0))
    out: list[dict[str, Any]] = []
    try:
        for m in client.models.list():
            try:
                price: dict[str, Any] | None = pricing.price(m.id).as_dict()
            except ConfigError:
                price = None
            out.append({
                "id": m.id,
                "display_name": m.display_name,
                "created_at": m.created_at.isoformat() if m.created_at else None,
                "lifecycle": getattr(m, "lifecycle", None),
                "max_input_tokens": getattr(m, "max_input_tokens", None),
                "max_tokens": getattr(m, "max_tokens", None),
                "price": price,
            })
    except Exception as exc:  # noqa: BLE001
        _raise_for_setup(exc, "(model list)", client)
        raise TeacherError(f"cannot list models: {_short(exc)}") from None
    finally:
        client.close()
    return out


def test_connection(model: str, api_key: str | None = None, base_url: str | None = None,
                    timeout_s: float = 20.0) -> str:
    """Check the key, the address and the model with a free ``count_tokens`` call.

    Returns a one-line message for the wizard ("Connected: ..."); raises TeacherError or
    ConfigError with a one-line message when something is wrong.
    """
    import anthropic

    client = anthropic.Anthropic(**_client_kwargs(api_key, base_url, 1, float(timeout_s)))
    try:
        started = time.monotonic()
        client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "ping"}])
        ms = (time.monotonic() - started) * 1000
    except Exception as exc:  # noqa: BLE001
        _raise_for_setup(exc, model, client)
        raise TeacherError(f"the test request failed: {_short(exc)}") from None
    finally:
        client.close()
    source = "given key" if api_key else (secrets.key_source() or "environment")
    try:
        p = pricing.price(model)
        price = f"${p.input:g}/${p.output:g} per MTok in/out"
    except ConfigError:
        price = "no price known: add it to " + str(pricing.override_path())
    return f"Connected to {client.base_url} with the {source} key: {model} answers ({ms:.0f} ms; {price})"


test_connection.__test__ = False  # a public API name, not a test for pytest to collect
