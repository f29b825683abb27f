"""The real-time lane of the Claude teacher: ``AsyncAnthropic`` with ``concurrency`` requests in
flight, in a private event loop on a helper thread; answers are handed to the harvest's generator
through a queue and yielded in small groups as they complete.

The ``anthropic-ratelimit-*`` headers pause dispatching before a limit is hit (:class:`RateGate`);
the SDK retries 429/529/5xx and timeouts. A budget stops dispatching before the request that would
pass it. With ``k_samples > 0`` the most uncertain answers are asked k more times and their
distribution is re-estimated from the k+1 answers (:class:`Mix`, method ``k-sample``).
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kdstudio.core.errors import BudgetExceeded, Cancelled, TeacherError
from kdstudio.core.events import CancelToken
from kdstudio.core.store.outputs import TeacherOutput
from kdstudio.core.teachers.base import Answers, Item
from kdstudio.core.teachers.claude.client import short_message
from kdstudio.core.teachers.claude.messages import ClaudeMessages
from kdstudio.core.teachers.claude.prompt import renormalise
from kdstudio.core.teachers.pricing import usd

CANCEL_GRACE_S = 1.0  # requests in flight when a job stops get this long to finish
TRANSIENT_STREAK_LIMIT = 25  # this many failures in a row (after SDK retries) stop the harvest


class RealtimeLane(ClaudeMessages):
    """Answers through the Messages API, ``concurrency`` requests at a time."""

    def answer(self, items: Sequence[Item], *, cancel: CancelToken) -> Answers:
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
        job = RealtimeJob(self, items, cancel)
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
                    yield group  # the harvest stores the group before this generator resumes
                    job.committed(len(group))
                if ended:
                    break
            if job.error is not None:
                raise job.error
        finally:
            job.stop()
            job.join()

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

    async def _request(self, client: Any, text: str, gate: RateGate | None) -> TeacherOutput:
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
                                     error=f"connection failed ({self.max_retries} retries): {short_message(exc)}")
            if gate is not None:
                gate.update(raw.headers, need_input=self._estimate_input_tokens(text), need_output=self.max_tokens)
            out = self.parse_message(message)
            out.extra["request_id"] = raw.request_id
            out.extra["retries"] = raw.retries_taken
            return out


# ------------------------------------------------------------------------------------------------
# The real-time job: an event loop on a helper thread, outputs handed over through a queue
# ------------------------------------------------------------------------------------------------
_END = object()


def _now_utc() -> datetime:
    return datetime.now(timezone.utc)


class RateGate:
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
class Mix:
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
        mix = renormalise([0.5 * m + 0.5 * f for m, f in zip(mean, freq, strict=True)])
        latency = sum([*self.latencies, first.latency_ms or 0.0]) / (len(self.latencies) + 1)
        return TeacherOutput(
            first.example, probs=mix, rationale=first.rationale,
            method="k-sample" if self.samples else first.method, cost_usd=self.cost, latency_ms=latency,
            extra={"k": len(self.samples), "asked": self.asked}, **dict(self.tokens),
            components={"verbalized": renormalise(mean), "votes": freq} if self.samples else None,
        )


class RealtimeJob:
    def __init__(self, teacher: RealtimeLane, items: list[Item], cancel: CancelToken) -> None:
        self.t = teacher
        self.items = items
        self.cancel = cancel
        self.out: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.budget_hit = False
        self.gate = RateGate()
        self.done_cost = 0.0
        self.reserved = 0.0
        self.streak = 0
        self.first: dict[int, tuple[str, TeacherOutput]] = {}
        self.mixes: dict[int, Mix] = {}
        self.thread = threading.Thread(target=self._run, name="claude-teacher", daemon=True)
        self._ended = False
        # Outputs handed over (loop thread) and stored (the consumer): a worker starts its next
        # request only once its last answer is stored, so at most ``concurrency`` requests are
        # ever paid for and not yet stored, however slow the storing; a kill loses no more.
        self.handed = 0
        self.stored = 0

    # -- the generator's side --------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def join(self) -> None:
        if self.thread.is_alive():
            self.thread.join(timeout=CANCEL_GRACE_S + 3.0)

    def committed(self, n: int) -> None:
        """The consumer stored the ``n`` outputs it was handed last."""
        self.stored += n

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

    # -- the loop thread -------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
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
                    self.mixes[ex] = Mix(first)
                    jobs += [(ex, text, self.mixes[ex])] * self.t.k_samples
                # interleaved, so a stop leaves many examples with some extra answers, not a few with all
                await self._pass(client, round_robin(jobs, self.t.k_samples))
        finally:
            for mix in self.mixes.values():
                if mix.asked:
                    self.handed += 1
                    self.out.put(mix.output())
            await client.close()

    def _uncertain(self) -> list[int]:
        frac = min(1.0, max(0.0, self.t.uncertain_fraction))
        n = math.ceil(frac * len(self.first))
        ranked = sorted(self.first, key=lambda ex: (max(self.first[ex][1].probs), ex))
        return ranked[:n]

    async def _pass(self, client: Any, jobs: list[tuple[int, str, Mix | None]]) -> None:
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

    async def _worker(self, client: Any, jobs: Iterator[tuple[int, str, Mix | None]]) -> None:
        for example, text, mix in jobs:
            if not await self._ready():
                return
            estimate = self.t.expected_request_cost(text)
            budget = self.t.budget_usd
            if budget is not None and self.t.spent_usd + self.done_cost + self.reserved + estimate > budget:
                if not self.budget_hit:
                    self.budget_hit = True
                    self.error = BudgetExceeded(
                        f"budget {usd(budget)} reached: the next request would cost about {usd(estimate)}")
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
            self.handed += 1
            mine = self.handed
            self.out.put(out)
            if self.t.k_samples and out.status == "ok" and out.probs is not None:
                self.first[example] = (text, out)
            while self.stored < mine and not self._halted():  # stored before this worker pays again
                await asyncio.sleep(0.002)


def round_robin(jobs: list[Any], k: int) -> list[Any]:
    """[a,a,a,b,b,b] → [a,b,a,b,a,b]: the first extra answer of every example comes first."""
    if k <= 1:
        return jobs
    groups = [jobs[i : i + k] for i in range(0, len(jobs), k)]
    return [g[r] for r in range(k) for g in groups if r < len(g)]
