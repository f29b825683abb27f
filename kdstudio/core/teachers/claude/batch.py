"""The batch lane of the Claude teacher: the Message Batches API, at half price; most batches end
within an hour.

The lane is resumable from what it records in the project: a batch's (custom_id, example, attempt)
rows are stored before it is submitted (as an intent, status ``submitting``) and tied to the batch
id the API returns; requests and batches are marked ingested only after their outputs were saved,
so a crash at any point loses nothing and stores nothing twice. A crash between the API creating a
batch and the project recording its id leaves an intent: the next harvest lists the workspace's
batches and adopts the one that matches it (:meth:`BatchLane._recover_intents`) instead of paying
for the same examples again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from kdstudio.core.errors import BudgetExceeded, ConfigError, TeacherError
from kdstudio.core.events import CancelToken
from kdstudio.core.store.outputs import TeacherOutput
from kdstudio.core.teachers.base import Answers, Item
from kdstudio.core.teachers.claude.client import raise_if_fatal, short_message
from kdstudio.core.teachers.claude.messages import ClaudeMessages
from kdstudio.core.teachers.pricing import usd

if TYPE_CHECKING:
    from kdstudio.core.store import BatchIntent, Project

BATCH_MAX_REQUESTS = 100_000
BATCH_MAX_BYTES = 200 * 1024 * 1024  # the API allows 256 MB; keep a margin
DEFAULT_POLL_S = 30.0
#: How much earlier than the intent the API's clock may date the batch it created (clock skew).
CLOCK_SKEW = timedelta(minutes=5)
#: how many times a batch whose create call got no answer is looked for and submitted again
CREATE_TRIES = 3
CREATE_BACKOFF_S = 1.0


class BatchLane(ClaudeMessages):
    """Answers through the Message Batches API."""

    def answer_batch(
        self,
        project: Project,
        teacher_id: int,
        items: Sequence[Item],
        *,
        cancel: CancelToken,
        poll_s: float | None = None,
    ) -> Answers:
        """Answer through the Message Batches API (half price; most batches end within an hour).

        Batches recorded but never confirmed (a crash between submitting and recording) are found
        again first (:meth:`_recover_intents`); open batches of this teacher stored in the project
        are resumed (never submitted again); examples not in an open batch are submitted in new
        batches, whose (custom_id, example, attempt) rows are stored before the create call and
        tied to the batch id it returns. Results are joined on
        custom_id. Errored (other than invalid_request_error), expired or cancelled requests are
        resubmitted once. Requests and batches are marked ingested only after their outputs were
        yielded, so a crash at any point loses nothing and stores nothing twice. Cancelling stops
        polling; the batches keep running and the next harvest picks them up.

        ``poll_s``: seconds between two looks at the open batches (default: ``options["poll_s"]``,
        else 30).
        """
        if self.k_samples:
            raise ConfigError("k-sample mode works with the real-time lane only; leave out --batch-api")
        _ = self.price
        if poll_s is None:
            poll_s = float((self.context.options or {}).get("poll_s", DEFAULT_POLL_S))
        items = list(items)
        texts = dict(items)
        client = self._client()
        try:
            self._recover_intents(client, project, teacher_id)
            open_ids = list(project.open_batches(teacher_id))
            busy = project.examples_in_open_batches(teacher_id)
            fresh = [(ex, text) for ex, text in items if ex not in busy]
            over_budget: str | None = None
            if self.budget_usd is not None:
                total = self.spent_usd
                for i, (_, text) in enumerate(fresh):
                    total += self.estimate_request_cost(text, batch=True)
                    if total > self.budget_usd:
                        over_budget = (f"budget {usd(self.budget_usd)} reached: {len(fresh) - i} examples were not "
                                       "submitted: a batch is paid for before its answers are seen, so each "
                                       "request is reserved at max_tokens")
                        fresh = fresh[:i]
                        break
            for chunk in batch_chunks(fresh, self.request_params):
                cancel.check()
                open_ids.append(self._submit_batch(client, project, teacher_id, chunk, attempt=1))
            yield from self._poll_batches(client, project, teacher_id, open_ids, texts, cancel, poll_s)
            if over_budget:
                raise BudgetExceeded(over_budget)
        finally:
            client.close()

    def _submit_batch(self, client: Any, project: Project, teacher_id: int,
                      chunk: Sequence[Item], *, attempt: int) -> str:
        """Submit ``chunk`` as one batch, recorded as an intent first; return the batch's id.

        Creating a batch is not idempotent, so the SDK never retries it blind (a create whose
        reply was lost may have made a batch, and a second one would be paid twice). When a create
        gets no answer, the workspace's batches are listed to find it (:meth:`_recover_intents`);
        only if it is not there is the chunk submitted again, up to :data:`CREATE_TRIES` times."""
        import anthropic

        for tries in range(1, CREATE_TRIES + 1):
            nonce = uuid.uuid4().hex[:10]
            intent = f"intent-{nonce}"
            rows = [(f"e{ex}-a{attempt}-{nonce}", ex, attempt) for ex, _ in chunk]
            requests = [{"custom_id": cid, "params": self.request_params(text)}
                        for (cid, _, _), (_, text) in zip(rows, chunk, strict=True)]
            project.record_batch_intent(intent, teacher_id, rows)
            try:
                batch = client.with_options(max_retries=0).messages.batches.create(requests=requests)
            except Exception as exc:
                if isinstance(exc, anthropic.APIStatusError):  # the API answered: no batch was created
                    project.drop_batch_intent(intent)
                    raise_if_fatal(exc, self.model)
                    if _passing(exc) and tries < CREATE_TRIES:  # overloaded, rate-limited: try again
                        time.sleep(_retry_after(exc, CREATE_BACKOFF_S * tries))
                        continue
                    raise TeacherError(f"the Message Batches API refused the batch: {short_message(exc)}") from None
                raise_if_fatal(exc, self.model)
                time.sleep(CREATE_BACKOFF_S * tries)
                self._recover_intents(client, project, teacher_id)  # created after all? then it is adopted
                found = project.batch_of(rows[0][0])
                if found is not None:
                    return found
                if tries == CREATE_TRIES:
                    raise TeacherError(f"no answer from the Message Batches API when submitting a batch "
                                       f"({short_message(exc)}, {tries} tries); run the harvest again later") from None
                continue
            project.confirm_batch(intent, batch.id)
            return batch.id
        raise AssertionError("unreachable")

    def _recover_intents(self, client: Any, project: Project, teacher_id: int) -> None:
        """Settle the batches recorded as about to be submitted but never confirmed (the process
        died between the create call and recording its id, or the create call got no answer).

        The workspace's batches are listed (newest first) back to the oldest intent; a batch
        not recorded in the project, created at or after the intent (less :data:`CLOCK_SKEW`),
        with as many requests, is the intent's batch when its results carry the intent's
        custom_ids (which hold its nonce); a batch still running cannot show them, so the
        earliest such unclaimed batch is adopted (a wrong guess costs a resubmission, never an
        answer: results are joined on custom_id). An intent that matches nothing is dropped and its
        examples are submitted anew.
        """
        intents = project.batch_intents(teacher_id)
        if not intents:
            return
        oldest = min(_utc(i.created) for i in intents) - CLOCK_SKEW
        known = project.known_batch_ids(teacher_id)
        listed: list[Any] = []
        try:
            for batch in client.messages.batches.list(limit=100):
                if _utc(batch.created_at) < oldest:
                    break
                if batch.id not in known:
                    listed.append(batch)
        except Exception as exc:
            raise_if_fatal(exc, self.model)
            raise TeacherError("cannot list the workspace's batches to find one submitted before an interruption: "
                               f"{short_message(exc)}; run the harvest again later") from None
        for intent in intents:
            match = self._match_intent(client, intent, listed)
            if match is None:
                project.drop_batch_intent(intent.id)
            else:
                listed.remove(match)
                project.confirm_batch(intent.id, match.id)

    def _match_intent(self, client: Any, intent: BatchIntent, listed: list[Any]) -> Any:
        since = _utc(intent.created) - CLOCK_SKEW
        candidates = sorted((b for b in listed if _utc(b.created_at) >= since
                             and _request_total(b) == intent.request_count), key=lambda b: _utc(b.created_at))
        running = []
        for batch in candidates:
            if batch.processing_status != "ended":
                running.append(batch)
                continue
            try:
                ids = {item.custom_id for item in client.messages.batches.results(batch.id)}
            except Exception as exc:
                raise_if_fatal(exc, self.model)
                continue  # results gone (deleted, archived): it cannot be shown to be this intent's
            if ids == intent.custom_ids:
                return batch
        return running[0] if running else None

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
                except Exception as exc:
                    raise_if_fatal(exc, self.model)
                    raise TeacherError(f"cannot check batch {batch_id}: {short_message(exc)}; run the harvest again "
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
        except Exception as exc:
            raise_if_fatal(exc, self.model)
            raise TeacherError(f"cannot download the results of batch {batch_id}: {short_message(exc)}") from None
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


def _passing(exc: Any) -> bool:
    """An error status the API's own clients retry: a timeout, a conflict, a rate limit, a server error."""
    status = getattr(exc, "status_code", 0) or 0
    return status in (408, 409, 429) or status >= 500


def _retry_after(exc: Any, default: float) -> float:
    """Seconds the reply asks to wait (``retry-after-ms`` or ``retry-after``), at most a minute."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return min(60.0, max(0.0, float(headers.get(name)) * scale))
        except (TypeError, ValueError):
            continue
    return default


def _utc(value: str | datetime) -> datetime:
    t = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _request_total(batch: Any) -> int:
    c = batch.request_counts
    return int(c.processing + c.succeeded + c.errored + c.canceled + c.expired)


def batch_chunks(items: Sequence[Item], params: Callable[[str], dict[str, Any]]) -> Iterator[list[Item]]:
    """``items`` in chunks that fit one batch (count and size of the request bodies)."""
    chunk: list[Item] = []
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
