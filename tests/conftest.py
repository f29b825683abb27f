"""Shared fixtures: every test gets its own settings and data folders, and no network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("KDSTUDIO_DATASETS", ROOT.parent / "shared" / "datasets"))
sys.path.insert(0, str(ROOT / "tests"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Point the app's settings and data at a temp folder and hide any real API key."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("KDSTUDIO_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    from kdstudio.core import secrets

    monkeypatch.setattr(secrets, "_session_key", None)  # a key typed in the app lasts one test
    yield home


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The real data sets shipped beside the project for tests (skips when absent)."""
    if not DATASETS.is_dir():
        pytest.skip("shared data sets not available")
    return DATASETS


@pytest.fixture
def memory_keyring():
    """A working keyring, in memory only, for the tests that store a key in it."""
    import keyring
    from fakes.keyrings import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)
