"""One Claude teacher's Messages API requests: its options, the parameters of a request, the
clients, the price, the parse of a reply into a ``TeacherOutput`` and the cost of the next request.

Both lanes (:mod:`.realtime`, :mod:`.batch`) build on :class:`ClaudeMessages`; what the prompt says
and how a reply becomes an answer is the task's :mod:`.prompt`. ``temperature``/``top_p``/``top_k``
are never sent (API version 2026-10-21 rejects them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kdstudio.core import secrets
from kdstudio.core.errors import ConfigError
from kdstudio.core.store.outputs import TeacherOutput
from kdstudio.core.teachers import pricing
from kdstudio.core.teachers.base import TeacherContext
from kdstudio.core.teachers.claude.client import client_kwargs, raise_if_fatal
from kdstudio.core.teachers.claude.prompt import AnswerError, prompt_for

# Models with thinking always on: effort "low" keeps labelling cheap (thinking counts as output).
_LOW_EFFORT_PREFIXES = ("claude-opus-5-5", "claude-fable-5")  # they think: room for it in max_tokens


def thinks(model: str) -> bool:
    """Whether ``model`` always thinks (its ``max_tokens`` makes room for the thinking)."""
    return model.startswith(_LOW_EFFORT_PREFIXES)


@dataclass(frozen=True)
class AnswerShape:
    """What one answer holds with some options, before any request: ``labels`` in the label set,
    ``top_k`` of them named in each answer (all of them for a full answer; 0 for generation) and
    the ``max_tokens`` the teacher sets when none is given."""

    labels: int
    top_k: int
    max_tokens: int

    @property
    def full(self) -> bool:
        """Every label's probability is in the answer."""
        return self.top_k >= self.labels > 0


def answer_shape(task: str, labels: list[str], model: str, *, top_k: int | None = None) -> AnswerShape:
    """The answer a ``claude:MODEL`` teacher asks for on ``labels`` with the ``top_k`` option
    (None: the default), and its automatic ``max_tokens`` (what the app shows as "auto")."""
    prompt = prompt_for(TeacherContext(task, list(labels), options={"top_k": top_k}), [])
    k = int(getattr(prompt, "top_k", 0))
    return AnswerShape(labels=len(labels) if prompt.distribution else 0, top_k=k,
                       max_tokens=prompt.max_tokens(thinking=thinks(model)))


class ClaudeMessages:
    """The ``claude:MODEL_ID`` teacher's settings and single requests (options: see ``ClaudeTeacher``)."""

    def __init__(self, model: str, context: TeacherContext) -> None:
        self.model = model
        self.spec = f"claude:{model}"
        self.context = context
        opts = dict(context.options or {})
        self.few_shot: list[tuple[str, str]] = [(str(t), str(y)) for t, y in (opts.get("few_shot") or [])]
        self.prompt = prompt_for(context, self.few_shot)
        self.concurrency = max(1, int(opts.get("concurrency") or 8))
        self.k_samples = max(0, int(opts.get("k_samples") or 0)) if self.prompt.distribution else 0
        self.uncertain_fraction = float(opts.get("uncertain_fraction", 0.15) if opts.get("uncertain_fraction")
                                        is not None else 0.15)
        self.thinking = thinks(model)
        #: from the option, else from the schema: the longest valid answer with a margin
        self.max_tokens = max(1, int(opts.get("max_tokens") or self.prompt.max_tokens(thinking=self.thinking)))
        self._api_key: str | None = opts.get("api_key") or None
        self.base_url: str | None = opts.get("base_url") or None
        self.timeout_s = float(opts.get("timeout_s") or 120.0)
        self.max_retries = int(opts.get("max_retries", 4) if opts.get("max_retries") is not None else 4)
        self.batch_api = bool(opts.get("batch_api"))
        effort = opts.get("effort", "default")
        if effort == "default":
            effort = "low" if thinks(model) else None
        self._effort: str | None = effort or None
        mode = opts.get("output_mode") or "json"
        if mode not in ("json", "tool"):
            raise ConfigError(f"output_mode must be 'json' or 'tool', not {mode!r}")
        self._mode = mode
        # everything but the example
        self._prompt_chars = len(self.prompt.system_text) + self.prompt.overhead_chars() + 60
        self._observed = 0  # billed answers seen, and what they cost (for the budget's reservation)
        self._observed_cost = 0.0
        self._price: pricing.ModelPrice | None = None

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

    @property
    def price(self) -> pricing.ModelPrice:
        """This model's prices (read once per teacher; ConfigError for an unknown model)."""
        if self._price is None:
            self._price = pricing.price(self.model)
        return self._price

    # -- the request -----------------------------------------------------------------------------
    def request_params(self, text: str, mode: str | None = None) -> dict[str, Any]:
        """The Messages API parameters for one example (also the body of a batch request)."""
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [{"type": "text", "text": self.prompt.system_text, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": self.prompt.user_content(text)}],
        }
        structure = self.prompt.structure(mode or self._mode)
        output_config: dict[str, Any] = {"effort": self._effort} if self._effort else {}
        output_config.update(structure.pop("output_config", {}))
        params.update(structure)
        if output_config:
            params["output_config"] = output_config
        return params

    def _client_kwargs(self) -> dict[str, Any]:
        return client_kwargs(self._api_key, self.base_url, self.max_retries, self.timeout_s)

    def _client(self) -> Any:
        import anthropic

        return anthropic.Anthropic(**self._client_kwargs())

    def _async_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(**self._client_kwargs())

    # -- the reply -------------------------------------------------------------------------------
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
        """A TeacherOutput (example 0, to be filled in) from a Messages API response. A reply
        that was billed but holds no answer keeps its tokens and cost on the failed row."""
        fields = self._usage_fields(getattr(message, "usage", None), batch)
        extra = {"stop_reason": message.stop_reason, "max_tokens": self.max_tokens}
        if fields.get("output_tokens"):
            self._observed += 1
            self._observed_cost += fields["cost_usd"]

        def failed(reason: str) -> TeacherOutput:
            return TeacherOutput(0, status="failed", error=reason, extra=extra, **fields)

        stop = message.stop_reason
        if stop == "refusal":
            return failed("refusal: the model declined to answer (stop_reason refusal)")
        if stop == "max_tokens" and not self.prompt.distribution:
            return failed(f"completion cut off at max_tokens={self.max_tokens} (stop_reason max_tokens); a partial "
                          "completion is not kept: raise --max-tokens, or --retry-failed asks again with twice "
                          "the limit")
        if stop == "max_tokens":
            return failed(f"answer cut off at max_tokens={self.max_tokens} (stop_reason max_tokens); "
                          "retrying failed examples raises the limit")
        if stop == "model_context_window_exceeded":
            return failed("the text is too long for the model's context window")
        blocks = list(getattr(message, "content", None) or [])
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text")
        try:
            answer = self.prompt.parse(text, blocks)
        except AnswerError as exc:
            return failed(str(exc))
        return TeacherOutput(0, extra=extra, **answer, **fields)

    def _error_output(self, exc: Any) -> TeacherOutput:
        """A failed row for an API error that concerns one example; raises TeacherError for the
        errors that concern every example (key, permission, spend limit)."""
        status = getattr(exc, "status_code", None)
        message = secrets.redact(getattr(exc, "api_message", None) or str(exc), self._api_key)
        raise_if_fatal(exc, self.model)
        kind = getattr(exc, "type", None) or "error"
        transient = status in (408, 409, 429) or (status or 0) >= 500
        reason = f"{status} {kind}: {message}"
        if status == 429:
            reason = f"rate limited (429) after {self.max_retries} retries: {message}"
        elif transient:
            reason += f" (after {self.max_retries} retries)"
        return TeacherOutput(0, status="failed", error=reason[:500], extra={"transient": transient})

    # -- what the next request costs -------------------------------------------------------------
    def _estimate_input_tokens(self, text: str) -> int:
        return math.ceil((self._prompt_chars + len(text)) / 3.0)

    def expected_request_cost(self, text: str, *, batch: bool = False) -> float:
        """What the next request is expected to cost (the budget reserves it while the request is
        in flight): the mean cost of the answers billed so far, once there are a few, else the
        whole prompt at the input price and a typical answer's length of output."""
        if self._observed >= 3:
            return self._observed_cost / self._observed
        out = math.ceil(len(self.prompt.typical_answer()) / 3.5)
        usage = {"input_tokens": self._estimate_input_tokens(text), "output_tokens": min(out, self.max_tokens)}
        return self.price.cost(usage, batch=batch)

    def estimate_request_cost(self, text: str, *, batch: bool = False) -> float:
        """The most the next request can cost: the whole prompt at the input price and
        ``max_tokens`` of output (what a batch reserves, since it is paid for before any answer
        is seen)."""
        usage = {"input_tokens": self._estimate_input_tokens(text), "output_tokens": self.max_tokens}
        return self.price.cost(usage, batch=batch)
