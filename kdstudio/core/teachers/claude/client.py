"""The Anthropic clients of a Claude teacher, and what its errors mean.

:func:`client_kwargs` builds the arguments of ``Anthropic``/``AsyncAnthropic``: the key is the given
one, else :func:`kdstudio.core.secrets.get_api_key` (never stored in the project nor logged);
without ``base_url`` the SDK reads ``ANTHROPIC_BASE_URL``, which is how a person points KD Studio at
a proxy or gateway. :func:`raise_if_fatal` turns the errors that concern every request (a rejected
key, no permission, a spend limit) into one-line ``TeacherError``s that stop the harvest; every other
error concerns one example and becomes a failed row. :func:`list_models` and
:func:`test_connection` serve the settings wizard, which runs them as the jobs
:func:`list_claude_models` and :func:`check_claude` (typed results, off the window's thread).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kdstudio.core import secrets
from kdstudio.core.errors import ConfigError, TeacherError
from kdstudio.core.events import CancelToken, Event, Finished, JobResult
from kdstudio.core.teachers import pricing

SPEND_LIMIT_CODES = ("enforced_spend_limit_reached", "contract_spend_limit_reached",
                     "linked_organization_spend_limit_reached")


def client_kwargs(api_key: str | None, base_url: str | None, max_retries: int, timeout_s: float) -> dict[str, Any]:
    """Arguments for ``Anthropic``/``AsyncAnthropic``. Without ``base_url`` the SDK reads
    ``ANTHROPIC_BASE_URL``; the key is the given one, else :func:`secrets.get_api_key`."""
    import anthropic

    key = api_key or secrets.get_api_key()
    if not key and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        raise TeacherError(f"no Anthropic API key: {secrets.WHERE_TO_PUT_A_KEY}")
    kwargs: dict[str, Any] = {
        "max_retries": max_retries,
        "timeout": anthropic.Timeout(timeout_s, connect=min(5.0, timeout_s)),
    }
    if key:
        kwargs["api_key"] = key
    if base_url:
        kwargs["base_url"] = base_url
    return kwargs


def short_message(exc: BaseException) -> str:
    """An error's message on one line, at most 200 characters, with the API key masked."""
    msg = getattr(exc, "api_message", None) or str(exc) or type(exc).__name__
    return " ".join(secrets.redact(msg).split())[:200]


def is_spend_limit(exc: Any) -> bool:
    import anthropic

    classes = tuple(getattr(anthropic, name) for name in (
        "EnforcedSpendLimitReachedError", "ContractSpendLimitReachedError",
        "LinkedOrganizationSpendLimitReachedError") if hasattr(anthropic, name))
    if classes and isinstance(exc, classes):
        return True
    code = getattr(exc, "error_code", None) or ""
    msg = (getattr(exc, "api_message", None) or "").lower()
    return code in SPEND_LIMIT_CODES or "spend_limit" in code or "credit balance is too low" in msg


def raise_if_fatal(exc: BaseException, model: str) -> None:
    """Raise TeacherError for API errors that concern every request, not one example."""
    status = getattr(exc, "status_code", None)
    if is_spend_limit(exc):
        raise TeacherError(
            f"Anthropic spend limit reached ({getattr(exc, 'error_code', None) or 'spend limit'}): "
            f"{short_message(exc).rstrip('.')}. "
            "Raise the limit in the Anthropic console, then run the harvest again; the answers so far are saved"
        ) from None
    if status == 401:
        raise TeacherError(
            "API key rejected by the Anthropic API (401 authentication_error): check the key, then "
            + secrets.WHERE_TO_PUT_A_KEY
        ) from None
    if status == 403:
        raise TeacherError(f"the Anthropic API refused access (403 permission_error): {short_message(exc)}; check that "
                           f"the key's workspace may use {model}") from None
    if isinstance(exc, TypeError) and "authentication" in str(exc):
        raise TeacherError(f"no Anthropic API key: {secrets.WHERE_TO_PUT_A_KEY}") from None


def raise_for_setup(exc: BaseException, model: str, client: Any) -> None:
    """Map an error from a setup call (models, count_tokens) to a one-line KD Studio error;
    returns for errors that should not stop the harvest."""
    import anthropic

    raise_if_fatal(exc, model)
    if isinstance(exc, anthropic.NotFoundError) and getattr(exc, "type", None) == "not_found_error":
        raise ConfigError(f"the Anthropic API does not offer model {model!r}; pick one from the model list") from None
    if isinstance(exc, anthropic.APIConnectionError):
        raise TeacherError(f"cannot reach the Anthropic API at {client.base_url}: {short_message(exc)}") from None


@dataclass(frozen=True)
class ClaudeModel:
    """A model the API offers, as the models API describes it, with ``price`` (USD per MTok: input,
    output, cache writes, cache read, batch discount) from the price table, or None when the table
    does not know it."""

    id: str
    display_name: str | None = None
    created_at: str | None = None
    lifecycle: str | None = None
    max_input_tokens: int | None = None
    max_tokens: int | None = None
    price: dict[str, Any] | None = None

    @classmethod
    def priced(cls, model_id: str, **fields: Any) -> ClaudeModel:
        """``model_id`` with its price from the price table (None when unknown)."""
        try:
            price: dict[str, Any] | None = pricing.price(model_id).as_dict()
        except ConfigError:
            price = None
        return cls(id=model_id, price=price, **fields)


def list_models(api_key: str | None = None, base_url: str | None = None) -> list[ClaudeModel]:
    """The models the API offers to this key (models API), newest first as the API lists them,
    each with its price from the price table."""
    import anthropic

    client = anthropic.Anthropic(**client_kwargs(api_key, base_url, 1, 20.0))
    out: list[ClaudeModel] = []
    try:
        for m in client.models.list():
            out.append(ClaudeModel.priced(
                m.id,
                display_name=m.display_name,
                created_at=m.created_at.isoformat() if m.created_at else None,
                lifecycle=getattr(m, "lifecycle", None),
                max_input_tokens=getattr(m, "max_input_tokens", None),
                max_tokens=getattr(m, "max_tokens", None),
            ))
    except Exception as exc:
        raise_for_setup(exc, "(model list)", client)
        raise TeacherError(f"cannot list models: {short_message(exc)}") from None
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

    client = anthropic.Anthropic(**client_kwargs(api_key, base_url, 1, float(timeout_s)))
    try:
        started = time.monotonic()
        client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "ping"}])
        ms = (time.monotonic() - started) * 1000
    except Exception as exc:
        raise_for_setup(exc, model, client)
        raise TeacherError(f"the test request failed: {short_message(exc)}") from None
    finally:
        client.close()
    source = secrets.describe_source("option" if api_key else secrets.key_source())
    try:
        p = pricing.price(model)
        price = f"${p.input:g}/${p.output:g} per MTok in/out"
    except ConfigError:
        price = "no price known: add it to " + str(pricing.override_path())
    return f"Connected to {client.base_url} with the key from {source}: {model} answers ({ms:.0f} ms; {price})"


test_connection.__test__ = False  # a public API name, not a test for pytest to collect


@dataclass(frozen=True)
class ClaudeModels(JobResult):
    """What :func:`list_claude_models` finishes with."""

    models: tuple[ClaudeModel, ...]


@dataclass(frozen=True)
class ClaudeCheck(JobResult):
    """What :func:`check_claude` finishes with: ``message`` is :func:`test_connection`'s line."""

    model: str
    message: str


def list_claude_models(*, api_key: str | None = None, base_url: str | None = None,
                       cancel: CancelToken | None = None) -> Iterator[Event]:
    """The job behind the settings' model list (needs the network): ``Finished(ClaudeModels)``."""
    yield Finished(ClaudeModels(models=tuple(list_models(api_key, base_url))))


def check_claude(model: str, *, api_key: str | None = None, base_url: str | None = None,
                 cancel: CancelToken | None = None) -> Iterator[Event]:
    """The job behind the settings' "Test connection": one free request, ``Finished(ClaudeCheck)``."""
    yield Finished(ClaudeCheck(model=model, message=test_connection(model, api_key, base_url)))
