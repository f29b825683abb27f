"""resources_dir() finds the resources both in a checkout and inside a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import kdstudio
from kdstudio.core.paths import resources_dir


def test_resources_dir_is_beside_the_package_when_not_frozen(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    folder = resources_dir()
    assert folder == Path(kdstudio.__file__).resolve().parent.parent / "resources"
    assert (folder / "sample" / "train.csv").is_file()
    assert (folder / "style.qss").is_file()


def test_resources_dir_is_in_the_bundle_data_folder_when_frozen(tmp_path, monkeypatch):
    # PyInstaller 6 one-folder layout: dist/kdstudio/kdstudio + dist/kdstudio/_internal/...
    internal = tmp_path / "kdstudio" / "_internal"
    (internal / "resources" / "sample").mkdir(parents=True)
    (internal / "resources" / "sample" / "train.csv").write_text(
        "text,category\n", encoding="utf-8"
    )
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    assert resources_dir() == internal / "resources"
    assert (resources_dir() / "sample" / "train.csv").is_file()


def test_a_stray_meipass_without_frozen_is_ignored(tmp_path, monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources_dir() == Path(kdstudio.__file__).resolve().parent.parent / "resources"
