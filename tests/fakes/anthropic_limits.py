"""The rate limits of the fake Anthropic API (:mod:`fakes.anthropic_server`): the request window
(``ratelimit``) and the per-minute input/output token buckets (``token_limits``), with the
``anthropic-ratelimit-*`` headers every reply carries and the ``retry-after`` of a 429.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from fakes.anthropic_wire import _iso


class LimitsMixin:
    """Rate limits, mixed into :class:`fakes.anthropic_server.FakeAnthropic` (which owns the state
    below)."""

    ratelimit: tuple[int, float] | None
    token_limits: tuple[int, int]
    _lock: threading.Lock
    _window: tuple[float, int]
    _token_window: list[float]

    def _ratelimit_headers(self) -> tuple[dict[str, str], bool]:
        if self.ratelimit is None:
            return {}, True
        limit, window = self.ratelimit
        with self._lock:
            now = time.time()
            start, used = self._window
            if now - start >= window:
                start, used = now, 0
            ok = used < limit
            used += int(ok)
            self._window = (start, used)
        reset = datetime.fromtimestamp(start + window, timezone.utc)
        return {
            "anthropic-ratelimit-requests-limit": str(limit),
            "anthropic-ratelimit-requests-remaining": str(max(0, limit - used)),
            "anthropic-ratelimit-requests-reset": _iso(reset),
        }, ok

    def _charge_tokens(self, input_tokens: int, output_tokens: int) -> tuple[dict[str, str], str | None]:
        """Take tokens from this minute's buckets; the headers after it, and which limit a request
        that does not fit would pass (None when it fits)."""
        in_limit, out_limit = self.token_limits
        with self._lock:
            now = time.time()
            w = self._token_window
            if now - w[0] >= 60.0:
                w[:] = [now, 0.0, 0.0]
            over = None
            if w[1] + input_tokens > in_limit:
                over = "input tokens per minute"
            elif w[2] + output_tokens > out_limit:
                over = "output tokens per minute"
            else:
                w[1] += input_tokens
                w[2] += output_tokens
            start, used_in, used_out = w
        reset = _iso(datetime.fromtimestamp(start + 60.0, timezone.utc))
        headers = {
            "anthropic-ratelimit-input-tokens-limit": str(in_limit),
            "anthropic-ratelimit-input-tokens-remaining": str(int(max(0, in_limit - used_in))),
            "anthropic-ratelimit-input-tokens-reset": reset,
            "anthropic-ratelimit-output-tokens-limit": str(out_limit),
            "anthropic-ratelimit-output-tokens-remaining": str(int(max(0, out_limit - used_out))),
            "anthropic-ratelimit-output-tokens-reset": reset,
            "anthropic-ratelimit-tokens-limit": str(in_limit + out_limit),
            "anthropic-ratelimit-tokens-remaining": str(int(max(0, in_limit + out_limit - used_in - used_out))),
            "anthropic-ratelimit-tokens-reset": reset,
        }
        if over is not None:
            headers["retry-after"] = str(max(1, int(start + 60.0 - now + 0.999)))
        return headers, over

    def _settle_output(self, reserved: int, used: int) -> None:
        """Give back the part of the up-front ``max_tokens`` charge that was not written."""
        with self._lock:
            self._token_window[2] = max(0.0, self._token_window[2] - (reserved - used))
