"""``ClaudeTeacher``: the two lanes together, with what the harvest asks of every teacher
(settings, the dry run's estimate, the check before the first request)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

from kdstudio.core import secrets
from kdstudio.core.events import CancelToken, Event, Log
from kdstudio.core.teachers import pricing
from kdstudio.core.teachers.base import Item, TeacherEstimate
from kdstudio.core.teachers.claude.batch import BatchLane
from kdstudio.core.teachers.claude.client import raise_for_setup, raise_if_fatal, short_message
from kdstudio.core.teachers.claude.prompt import PROMPT_VERSION
from kdstudio.core.teachers.claude.realtime import RealtimeLane

if TYPE_CHECKING:
    from kdstudio.core.store import Project


class ClaudeTeacher(RealtimeLane, BatchLane):
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
    - ``batch_api`` (False): only changes the prices :meth:`estimate` uses;
    - ``poll_s`` (30): seconds between two looks at open batches in the batch lane.
    """

    kind = "claude"
    batch_lane = True
    metered = True

    def settings(self) -> dict[str, Any]:
        """Prompt (as a hash), method and k-sample settings: a change makes a new teacher."""
        s: dict[str, Any] = {
            "prompt_version": PROMPT_VERSION,
            "prompt_sha": hashlib.sha256(self.prompt.system_text.encode()).hexdigest()[:16],
            "method": self.prompt.method,
            "few_shot": len(self.few_shot),
        }
        if self.k_samples:
            s.update(method="k-sample", k_samples=self.k_samples, uncertain_fraction=self.uncertain_fraction)
        return s

    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Generator[Event, None, None]:
        """Check prices, the key and that the API offers the model (no tokens are spent)."""
        prices = self.price  # ConfigError for an unknown model
        client = self._client()
        cancel.check()
        try:
            client.with_options(max_retries=1).models.retrieve(self.model)
        except Exception as exc:
            raise_for_setup(exc, self.model, client)
            yield Log(f"could not check model {self.model} ({short_message(exc)}); going on", level="warning")
        finally:
            client.close()
        source = secrets.key_source() if not self._api_key else "settings"
        yield Log(
            f"Claude teacher {self.model}: key from {source or 'the environment'}, "
            f"${prices.input:g}/${prices.output:g} per MTok in/out (prices of {pricing.load_table().get('updated')}), "
            f"{self.concurrency} requests at a time"
            + (f", budget ${self.budget_usd:.2f} (${self.spent_usd:.4f} spent)" if self.budget_usd is not None else "")
        )

    def estimate(self, items: Sequence[Item], *, ms_per_item: float | None = None,
                 sample: int = 50) -> TeacherEstimate:
        """Tokens and USD a harvest of ``items`` would cost, for ``--dry-run``: ``count_tokens``
        (free) on up to ``sample`` evenly spread examples, extrapolated; no model call.

        The estimate is cautious: the cached system prompt is counted at the full input price.
        Output tokens are a typical answer length. With k-sample mode the extra requests are
        included; ``batch_api`` halves the price. The time follows from ``ms_per_item`` (the
        latency of earlier answers) and ``concurrency`` in the real-time lane; a batch has none.
        """
        items = list(items)
        n = len(items)
        prices = self.price
        about = {"model": self.model, "batch": self.batch_api, "counted_with": "count_tokens",
                 "prices_updated": pricing.load_table().get("updated"), "price_per_mtok": prices.as_dict()}
        if n == 0:
            return TeacherEstimate(n=0, requests=0, **about)
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
                except Exception as exc:
                    raise_if_fatal(exc, self.model)
                    about["counted_with"] = "characters"
                    counts = [self._estimate_input_tokens(t) for _, t in picked]
                    break
        finally:
            client.close()
        factor = 1.0 + (self.k_samples * self.uncertain_fraction if self.k_samples else 0.0)
        requests = math.ceil(n * factor)
        input_tokens = round(sum(counts) / len(counts) * n * factor)
        output_tokens = round(self.prompt.expected_output_tokens(self.max_tokens) * n * factor)
        cost = prices.cost({"input_tokens": input_tokens, "output_tokens": output_tokens}, batch=self.batch_api)
        seconds = None
        if ms_per_item is not None and not self.batch_api:
            seconds = round(requests * ms_per_item / 1000 / self.concurrency, 1)
        return TeacherEstimate(n=n, input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=round(cost, 6),
                               sampled=len(picked), requests=requests, estimated_seconds=seconds, **about)

    def close(self) -> None:
        """Nothing to release: clients live only as long as one call."""
