"""The Anthropic API key: read from the environment or the OS keyring, never from a file.

Order of precedence: a key typed in the app for this session only (:func:`use_for_session`: held
in memory, never saved; the app does this when no keyring can keep the key, or when the
environment variable would hide the key just typed), then the ``ANTHROPIC_API_KEY`` environment
variable, then the key saved in the OS keyring (service ``kdstudio``). The key is never written
to a project, a log or a settings file; on a machine without a keyring backend (a headless Linux
box) the only way to keep it between sessions is the environment variable.
"""

from __future__ import annotations

import os

from kdstudio.core.errors import ConfigError

SERVICE = "kdstudio"
USERNAME = "anthropic_api_key"
ENV_VAR = "ANTHROPIC_API_KEY"

#: Where a person can put a key, for messages that ask for one.
WHERE_TO_PUT_A_KEY = (
    f"set the {ENV_VAR} environment variable, or paste the key in the app (Teacher: Claude), which "
    f"keeps it in the OS keyring (service {SERVICE})"
)

_session_key: str | None = None

_NO_KEYRING = (
    "no OS keyring is available on this machine, so KD Studio cannot save the key; "
    f"set the {ENV_VAR} environment variable instead (the key is never written to a file)"
)


def _keyring_get() -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(SERVICE, USERNAME) or None
        except KeyringError:
            return None
    except Exception:  # a broken backend (D-Bus down, locked store) must not stop the app
        return None


def get_api_key() -> str | None:
    """The key to use: the session's key if one was typed, else ``$ANTHROPIC_API_KEY`` if set,
    else the one saved in the keyring, else None."""
    if _session_key:
        return _session_key
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    return _keyring_get()


def key_source() -> str | None:
    """Where :func:`get_api_key` finds the key: ``"session"``, ``"environment"``, ``"keyring"`` or None."""
    if _session_key:
        return "session"
    if os.environ.get(ENV_VAR, "").strip():
        return "environment"
    if _keyring_get():
        return "keyring"
    return None


def describe_source(source: str | None) -> str:
    """Where the key comes from, in words: ``the ANTHROPIC_API_KEY environment variable``."""
    return {
        "session": "the key typed in the app for this session (not saved)",
        "environment": f"the {ENV_VAR} environment variable",
        "keyring": f"the OS keyring (service {SERVICE})",
        "option": "the api_key option",
    }.get(source or "", "nowhere (no key)")


def saved_in_keyring(key: str | None) -> bool:
    """Whether the OS keyring holds ``key`` (so a key typed in the app outlives the session)."""
    return bool(key) and _keyring_get() == key


def use_for_session(key: str) -> None:
    """Use ``key`` until the process ends, before the environment and the keyring; it is held in
    memory only. Raises ConfigError for an empty key or one with spaces."""
    global _session_key
    _session_key = _checked(key)


def forget_session_key() -> None:
    """Stop using the key given to :func:`use_for_session`."""
    global _session_key
    _session_key = None


def _checked(key: str) -> str:
    key = (key or "").strip()
    if not key:
        raise ConfigError("the API key is empty")
    if any(c.isspace() for c in key):
        raise ConfigError("the API key contains spaces or line breaks; paste it again")
    return key


def set_api_key(key: str) -> None:
    """Save ``key`` in the OS keyring (service ``kdstudio``).

    Raises ConfigError when the key is empty or when no working keyring backend exists; the
    message tells the user to set ``ANTHROPIC_API_KEY`` instead. The key is read back to make
    sure a backend that silently drops secrets is not mistaken for a working one.
    """
    key = _checked(key)
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        raise ConfigError(_NO_KEYRING) from None
    try:
        keyring.set_password(SERVICE, USERNAME, key)
        stored = keyring.get_password(SERVICE, USERNAME)
    except KeyringError:
        raise ConfigError(_NO_KEYRING) from None
    except Exception as exc:  # D-Bus or backend failures
        raise ConfigError(f"the OS keyring refused the key ({type(exc).__name__}); " + _NO_KEYRING) from None
    if stored != key:
        raise ConfigError(_NO_KEYRING)


def delete_api_key() -> bool:
    """Remove the saved key from the keyring; True if one was removed."""
    if _keyring_get() is None:
        return False
    try:
        import keyring

        keyring.delete_password(SERVICE, USERNAME)
    except Exception:
        return False
    return True


def redact(text: str, *keys: str | None) -> str:
    """``text`` with the key in use (:func:`get_api_key`) and each of ``keys`` replaced by its
    :func:`mask`: for messages that quote what a server or proxy echoed back (headers, a request)."""
    for key in {k for k in (get_api_key(), *keys) if k and len(k) >= 8}:
        text = text.replace(key, mask(key))
    return text


def mask(key: str | None) -> str:
    """A form of the key safe to show: ``sk-ant-…wxyz`` (never the whole key)."""
    if not key:
        return "(none)"
    if len(key) <= 12:
        return "…" + key[-2:]
    return f"{key[:7]}…{key[-4:]}"
