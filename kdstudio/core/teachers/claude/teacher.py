"""``ClaudeTeacher``: the two lanes together, with what the harvest asks of every teacher
(settings, the dry run's estimate, the check before the first request)."""

from __future__ import annotations

import hashlib
import math
import re
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

_CUT_OFF = re.compile(r"cut off at max_tokens=(\d+)")

if TYPE_CHECKING:
    from kdstudio.core.store import Project


class ClaudeTeacher(RealtimeLane, BatchLane):
    """The ``claude:MODEL_ID`` teacher. Options (``context.options``):

    - ``concurrency`` (8): requests in flight in the real-time lane;
    - ``budget_usd`` (None): stop before the next request would take the teacher's spending
      (``spent_usd`` + this run) past it;
    - ``spent_usd`` (0): what this teacher has already cost in the project;
    - ``k_samples`` (0 = off), ``uncertain_fraction`` (0.15): k-sample mode;
    - ``max_tokens`` (default: the longest valid answer, from the schema; 1024 for generation);
    - ``top_k`` (classification: every label up to 10 labels, else the 5 most likely; 0 = every
      label);
    - ``retry_failed`` (set by the harvest): answers cut off at ``max_tokens`` before are asked
      again with twice the limit they had;
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

    @property
    def verbalized(self) -> bool:
        """Label distributions stated in words (classification); completions are not distributions."""
        return self.prompt.distribution

    def settings(self) -> dict[str, Any]:
        """Prompt (as a hash), method and k-sample settings: a change makes a new teacher."""
        s: dict[str, Any] = {
            "prompt_version": PROMPT_VERSION,
            "prompt_sha": hashlib.sha256(self.prompt.system_text.encode()).hexdigest()[:16],
            "method": self.prompt.method,
            "few_shot": len(self.few_shot),
            **self.prompt.settings(),
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
        retry = self._raise_cut_off_limit(project, teacher_id)
        if retry:
            yield Log(retry)
        source = secrets.describe_source("option" if self._api_key else secrets.key_source())
        yield Log(
            f"Claude teacher {self.model}: key from {source}, "
            f"${prices.input:g}/${prices.output:g} per MTok in/out (prices of {pricing.load_table().get('updated')}), "
            f"{self.concurrency} requests at a time"
            + (f", budget {pricing.usd(self.budget_usd)} ({pricing.usd(self.spent_usd)} spent before)"
               if self.budget_usd is not None else "")
        )

    def _raise_cut_off_limit(self, project: Project, teacher_id: int) -> str | None:
        """On a retry, answers that were cut off at ``max_tokens`` get twice the highest limit
        they had (unless ``max_tokens`` was given): the same limit would cut them off again."""
        opts = self.context.options or {}
        if not opts.get("retry_failed") or opts.get("max_tokens"):
            return None
        limits = [int(m.group(1)) for _, _, reason in project.failures(teacher_id, limit=100_000)
                  if (m := _CUT_OFF.search(reason or ""))]
        if not limits:
            return None
        raised = max(self.max_tokens, 2 * max(limits))
        self.max_tokens = raised
        return (f"{len(limits)} answer(s) were cut off at max_tokens={max(limits)}; asking again with "
                f"max_tokens={raised}")

    def estimate(self, items: Sequence[Item], *, ms_per_item: float | None = None,
                 sample: int = 50) -> TeacherEstimate:
        """Tokens and USD a harvest of ``items`` would cost, for ``--dry-run``; no model call.

        Input: ``count_tokens`` (free) on up to ``sample`` evenly spread examples, extrapolated.
        The cached prefix (instructions, labels, schema) is measured too: when it is at least the
        model's minimum cacheable length, the first ``concurrency`` requests (one in a batch)
        write it and the rest read it; below the minimum, every request pays it in full and a note
        says so. Output: a typical answer in the schema's shape, counted the same way. With
        k-sample mode the extra requests are included; ``batch_api`` halves the price. The time
        follows from ``ms_per_item`` (the latency of earlier answers) and ``concurrency``.
        """
        items = list(items)
        n = len(items)
        prices = self.price
        about = {"model": self.model, "batch": self.batch_api, "counted_with": "count_tokens",
                 "prices_updated": pricing.load_table().get("updated"), "price_per_mtok": prices.as_dict(),
                 "max_tokens": self.max_tokens}
        if n == 0:
            return TeacherEstimate(n=0, requests=0, **about)
        step = max(1, n // max(1, sample))
        picked = items[::step][:sample]
        client = None
        counted_from_characters = ""
        try:
            try:
                client = self._client()  # TeacherError without a key: the estimate counts characters
                counts = [self._count(client, self.request_params(text)) for _, text in picked]
                bare = self.request_params(picked[0][1])
                for part in ("system", "tools", "tool_choice", "output_config"):  # the cached prefix
                    bare.pop(part, None)
                prefix = counts[0] - self._count(client, bare)
                plain = {"model": self.model, "messages": [{"role": "user", "content": "."}]}
                answer = self._count(client, {**plain, "messages": [
                    {"role": "user", "content": self.prompt.typical_answer()}]}) - self._count(client, plain) + 1
            except Exception as exc:
                raise_if_fatal(exc, self.model)
                about["counted_with"] = "characters"
                counted_from_characters = short_message(exc)
                counts = [self._estimate_input_tokens(t) for _, t in picked]
                prefix = math.ceil((len(self.prompt.system_text) + self.prompt.overhead_chars()) / 3.0)
                answer = math.ceil(len(self.prompt.typical_answer()) / 3.5)
        finally:
            if client is not None:
                client.close()
        factor = 1.0 + (self.k_samples * self.uncertain_fraction if self.k_samples else 0.0)
        requests = math.ceil(n * factor)
        prompt_tokens = round(sum(counts) / len(counts) * requests)
        answer = max(1, min(answer, self.max_tokens))
        output_tokens = answer * requests
        notes = [f"answers of ~{answer} output tokens ({self.prompt.settings().get('answer', 'completion')}), "
                 f"max_tokens {self.max_tokens}"]
        if self.thinking:
            notes.append("plus the model's thinking (effort low), not counted here")
        if counted_from_characters:
            notes.append("tokens guessed from the number of characters, since count_tokens could not be asked "
                         f"({counted_from_characters})")
        minimum = prices.min_cache_tokens
        writes = reads = 0
        if minimum is not None and prefix >= minimum:
            writes = 1 if self.batch_api else min(requests, self.concurrency)
            reads = requests - writes
            notes.append(f"the {prefix:,}-token prefix (instructions and labels) is cached: written by the first "
                         f"{writes} request(s), read by the rest at {prices.cache_read / prices.input:.0%} of the "
                         "input price" + (" (batches cache on a best-effort basis)" if self.batch_api else ""))
        else:
            why = (f"under {self.model}'s minimum of {minimum:,} for caching" if minimum is not None
                   else f"of a model whose minimum cacheable length is not known ({self.model})")
            notes.append(f"no caching savings: the {prefix:,}-token prefix (instructions and labels) is {why}, "
                         "so every request pays for it in full")
        per_request = sum(counts) / len(counts)

        def one(kind: str) -> float:  # priced per request: long-prompt tiers apply to one request's prompt
            cached = {"write": "cache_creation_input_tokens", "read": "cache_read_input_tokens"}.get(kind)
            usage = {"input_tokens": per_request - (prefix if cached else 0), "output_tokens": answer}
            if cached:
                usage[cached] = prefix
            return prices.cost(usage, batch=self.batch_api)

        cost = writes * one("write") + reads * one("read") + (requests - writes - reads) * one("none")
        usage = {"input_tokens": prompt_tokens - prefix * (writes + reads),
                 "cache_creation_input_tokens": prefix * writes, "cache_read_input_tokens": prefix * reads}
        seconds = None
        if ms_per_item is not None and not self.batch_api:
            seconds = round(requests * ms_per_item / 1000 / self.concurrency, 1)
        return TeacherEstimate(
            n=n, input_tokens=usage["input_tokens"], output_tokens=output_tokens, cost_usd=round(cost, 6),
            sampled=len(picked), requests=requests, estimated_seconds=seconds,
            cache_write_tokens=usage["cache_creation_input_tokens"], cache_read_tokens=usage["cache_read_input_tokens"],
            output_tokens_per_answer=answer, cached_prefix_tokens=prefix, min_cache_tokens=minimum,
            cost_per_example=round(cost / n, 8), notes=tuple(notes), **about)

    @staticmethod
    def _count(client: Any, params: dict[str, Any]) -> int:
        params = {k: v for k, v in params.items() if k != "max_tokens"}
        return int(client.messages.count_tokens(**params).input_tokens)

    def close(self) -> None:
        """Nothing to release: clients live only as long as one call."""
