"""Build the evaluation report of one run: quality on the test split, speed, size, the cascade.

The parts are assembled as plain numbers and lists (what the metric functions return) and become
one :class:`~kdstudio.core.evaluate.result.EvalReport` at the end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kdstudio.core.calibration import Calibration, calibrated
from kdstudio.core.errors import ConfigError, KDStudioError
from kdstudio.core.evaluate import metrics
from kdstudio.core.evaluate.cascade import cascade
from kdstudio.core.evaluate.result import EvalReport
from kdstudio.core.evaluate.speed import (
    megabytes,
    stored_latency,
    time_interleaved,
    weights_size_bytes,
)
from kdstudio.core.events import CancelToken, Event, Finished, Log, Progress
from kdstudio.core.store import Project
from kdstudio.core.threads import torch_threads

STAGES = 4  # quality, models loaded (and exported), timed, saved


def evaluate_run(
    project_path: str | Path,
    run_id: int | None = None,
    *,
    speed: bool = True,
    onnx: bool = True,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """See ``kdstudio.core.evaluate.evaluate``."""
    cancel = cancel or CancelToken()
    t0 = time.monotonic()
    with Project(project_path) as project:
        run_id, run = _pick_run(project, run_id)
        yield Progress("eval", 0, STAGES)
        report, data = quality_report(project, run_id, run)
        cancel.check()
        yield Progress("eval", 1, STAGES)
        folder = _student_folder(project.path, run_id, run)
        device = _device()
        texts = data["texts"]
        # all cores but one, as training; the ONNX sessions get as many
        with torch_threads(cpu=device == "cpu") as threads, _workdir() as workdir:
            student, predictors = _student_size(folder, device)
            report.update(student)
            teacher_part, teacher, notes = _teacher_size(project, report["teacher"], cancel)
            report.update(teacher_part)
            try:
                sizes: dict[str, Any] = {}
                if speed:
                    predictors, sizes = _predictors(predictors, teacher, folder, texts, workdir, threads, onnx, notes)
                for note in notes:
                    yield Log(note, "warning")
                yield Progress("eval", 2, STAGES)
                report.update(_timing(predictors if speed else None, sizes, texts, report, cancel))
            finally:
                if teacher is not None:
                    teacher.close()
        report["threads"] = threads if device == "cpu" else None
        yield Progress("eval", 3, STAGES)
        s_ms, t_ms = report["student_latency_ms_p50"], report["teacher_latency_ms_p50"]
        report["cascade"] = (
            cascade(
                data["conf"],
                data["student_label"],
                data["teacher_label"],
                data["gold"],
                teacher_cost_usd=report["teacher_cost_per_1m_usd"] / 1e6
                if report["teacher_cost_per_1m_usd"]
                else 0.0,
                student_ms=s_ms,
                teacher_ms=t_ms,
            )
            if len(data["gold"])
            else None
        )
        report["seconds"] = round(time.monotonic() - t0, 3)
        result = EvalReport.of(report)
        project.save_evaluation(run_id, result.to_json())
        if result.teacher is not None:
            project.ensure_compare_rows(run_id, result.teacher)  # the viewer opens at once
        yield Progress("eval", STAGES, STAGES)
    yield Finished(result)


def _pick_run(project: Project, run_id: int | None) -> tuple[int, dict[str, Any]]:
    if project.task != "classification":
        raise ConfigError(
            "evaluation covers classification projects; this project is a generation task"
        )
    if run_id is None:
        run_id = project.latest_run()
        if run_id is None:
            raise ConfigError(
                "no finished run in this project; train a student first (kdstudio train)"
            )
    run = project.run(run_id)
    if run is None:
        raise ConfigError(f"no run #{run_id} in this project")
    return run_id, run


def quality_report(
    project: Project, run_id: int, run: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The quality part of the report (no timing) and the aligned arrays the cascade needs."""
    labels = project.labels()
    k = len(labels)
    # Reviews on test rows: a corrected label is the gold label, an excluded row is left out.
    reviewed = project.reviewed_examples("test")
    excluded = reviewed.excluded
    stored = [p for p in project.predictions(run_id, split="test") if p["example"] not in excluded]
    predictions = [p for p in stored if p["probs"] is not None and len(p["probs"]) == k]
    if stored and not predictions:  # probabilities that do not read as k numbers: an edited or damaged file
        raise ConfigError(f"run #{run_id} has no test predictions that can be read ({len(stored)} stored are damaged: "
                          "the project file was edited or is corrupt); train the student again")
    if not predictions:
        raise ConfigError(
            f"run #{run_id} ({run['status']}) has no test predictions; a finished run with a test split has them"
        )
    teacher_id = run["teacher"] if run["teacher"] is not None else project.default_teacher()
    gold_of = reviewed.labels()
    corrected = reviewed.corrected
    texts_of = {ex: t for ex, t, _ in project.examples("test")}
    teacher_of: dict[int, list[float]] = {}
    calibrated_of: dict[int, list[float]] = {}
    calibration = None
    if teacher_id is not None:
        rows = [o for o in project.teacher_outputs(teacher_id, ["test"]) if o["probs"] is not None
                and len(o["probs"]) == k]
        teacher_of = {o["id"]: o["probs"] for o in rows}
        calibration = Calibration.from_dict(project.calibration(teacher_id))
        if calibration is not None:
            calibrated_of = {o["id"]: calibrated(o, calibration) for o in rows}

    ids = np.array([p["example"] for p in predictions])
    student = np.array([p["probs"] for p in predictions], dtype=np.float64)
    student_label = student.argmax(1)
    gold = np.array([gold_of.get(int(i)) if gold_of.get(int(i)) is not None else -1 for i in ids])
    has_gold = gold >= 0
    has_teacher = np.array([int(i) in teacher_of for i in ids])
    teacher = np.array([teacher_of.get(int(i), [1.0 / k] * k) for i in ids], dtype=np.float64)
    teacher = teacher / teacher.sum(1, keepdims=True)
    teacher_label = teacher.argmax(1)
    both = has_gold & has_teacher

    student_acc = metrics.accuracy(student_label[has_gold], gold[has_gold])
    teacher_acc = metrics.accuracy(teacher_label[both], gold[both])
    student_ece, student_bins = metrics.expected_calibration_error(
        student[has_gold], gold[has_gold]
    )
    teacher_ece, teacher_bins = metrics.expected_calibration_error(teacher[both], gold[both])
    teacher_ece_calibrated = None
    if calibration is not None:
        fitted = np.array([calibrated_of.get(int(i), [1.0 / k] * k) for i in ids], dtype=np.float64)
        teacher_ece_calibrated = metrics.expected_calibration_error(fitted[both], gold[both])[0]
    student_prf = metrics.per_class_prf(student_label[has_gold], gold[has_gold], labels)
    teacher_prf = metrics.per_class_prf(teacher_label[both], gold[both], labels)
    kl = metrics.kl_divergence(teacher[has_teacher], student[has_teacher])
    teacher_info = project.teacher(teacher_id) if teacher_id is not None else None

    report: dict[str, Any] = {
        "run": run_id,
        "student": run["student"],
        "teacher": teacher_id,
        "teacher_spec": teacher_info["spec"] if teacher_info else None,
        "labels": labels,
        "n_test": len(predictions),
        "n_gold": int(has_gold.sum()),
        "reviews_applied": {"corrected": len(corrected), "excluded": len(excluded)},
        "n_teacher": int(has_teacher.sum()),
        "teacher_accuracy": teacher_acc,
        "student_accuracy": student_acc,
        "agreement": metrics.accuracy(student_label[has_teacher], teacher_label[has_teacher]),
        "retention": student_acc / teacher_acc if student_acc is not None and teacher_acc else None,
        "kl": float(kl.mean()) if kl.size else None,
        "student_ece": student_ece,
        "teacher_ece": teacher_ece,
        "teacher_ece_calibrated": teacher_ece_calibrated,
        "teacher_calibration": calibration.as_dict() if calibration is not None else None,
        "reliability": {"student": student_bins, "teacher": teacher_bins},
        "per_class": {"student": student_prf, "teacher": teacher_prf},
        "student_macro_f1": metrics.macro_f1(student_prf),
        "teacher_macro_f1": metrics.macro_f1(teacher_prf),
        "confusion": {
            "student_teacher": metrics.confusion_matrix(
                student_label[has_teacher], teacher_label[has_teacher], k
            ),
            "student_gold": metrics.confusion_matrix(student_label[has_gold], gold[has_gold], k),
        },
    }
    data = {
        "texts": [texts_of.get(int(i), "") for i in ids],
        "conf": student.max(1)[both],
        "student_label": student_label[both],
        "teacher_label": teacher_label[both],
        "gold": gold[both],
    }
    return report, data


def _student_folder(project_path: Path, run_id: int, run: dict[str, Any]) -> Path:
    from kdstudio.core.train import run_folder

    best = run.get("best_checkpoint")
    return Path(best) if best and Path(best).is_dir() else run_folder(project_path, run_id) / "best"


def _device() -> str:
    from kdstudio.core.teachers.local import pick_device

    return pick_device(None)


def _workdir() -> Any:
    """A temporary folder for the ONNX files timed (removed afterwards, also where a session still
    holds one open)."""
    import tempfile

    return tempfile.TemporaryDirectory(prefix="kdstudio-eval-", ignore_cleanup_errors=True)


def _student_size(folder: Path, device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The student's parameters and size, and its torch predictor (``{"student/torch": …}``)."""
    from kdstudio.core.students import count_parameters, load_student, predict_probs, student_folder

    try:
        folder = student_folder(folder)
    except ConfigError:
        raise ConfigError(
            f"the run's checkpoint is missing ({folder}); it cannot be evaluated"
        ) from None
    model, tokenizer, meta = load_student(folder, device=device)
    out: dict[str, Any] = {
        "device": device,
        "student_params": count_parameters(model),
        "student_size_mb": megabytes(weights_size_bytes(folder)),
    }

    def predict(batch: list[str]) -> Any:
        return predict_probs(model, tokenizer, batch, batch_size=64, max_length=meta["max_length"])

    return out, {"student/torch": predict}


def _teacher_size(
    project: Project, teacher_id: int | None, cancel: CancelToken
) -> tuple[dict[str, Any], Any, list[str]]:
    """Parameters, size and $ per 1M predictions of the run's teacher, the teacher itself when it
    runs here (:class:`~kdstudio.core.teachers.base.MeasurableTeacher`, loaded and prepared, to be
    timed like the student; the caller closes it) and warnings. A metered teacher (an API: timing
    it would be paid again) reports the latencies its harvest recorded."""
    out: dict[str, Any] = {
        "teacher_params": None,
        "teacher_size_mb": None,
        "teacher_latency_ms_p50": None,
        "teacher_latency_ms_p95": None,
        "teacher_throughput_per_s": None,
        "teacher_cost_per_1m_usd": None,
        "teacher_timing": None,
    }
    info = project.teacher(teacher_id) if teacher_id is not None else None
    if info is None:
        return out, None, []
    ledger = project.count_outputs(teacher_id)
    out["teacher_cost_per_1m_usd"] = (
        ledger["cost_usd"] / ledger["n_ok"] * 1e6 if ledger["n_ok"] else 0.0
    )
    from kdstudio.core.teachers.registry import teacher_class

    try:
        metered = teacher_class(info["kind"]).metered
    except ConfigError:  # a kind this version does not know: loading it below says so
        metered = False
    if metered:
        outputs = project.teacher_outputs(teacher_id)
        out.update(
            {
                f"teacher_{k}": v
                for k, v in stored_latency([o["latency_ms"] for o in outputs]).items()
            }
        )
        out["teacher_timing"] = "recorded"
        return out, None, []
    from kdstudio.core.harvest import teacher_context
    from kdstudio.core.teachers import MeasurableTeacher, load_teacher
    from kdstudio.core.teachers.local import resolve_model

    try:
        context = teacher_context(project, info["spec"], info["settings"])
        teacher = load_teacher(info["spec"], context)
        for _ in teacher.prepare(project, teacher_id, cancel=cancel):
            pass
    except KDStudioError as exc:
        return out, None, [
            f"teacher #{teacher_id} ({info['spec']}) was not loaded, so it is not timed: {exc}"
        ]
    if not isinstance(teacher, MeasurableTeacher):
        teacher.close()
        return out, None, []
    try:
        out["teacher_params"] = int(teacher.parameter_count())
        out["teacher_size_mb"] = megabytes(weights_size_bytes(resolve_model(info["model"])))
    except BaseException:
        teacher.close()
        raise
    return out, teacher, []


def _predictors(
    predictors: dict[str, Any],
    teacher: Any,
    folder: Path,
    texts: list[str],
    workdir: str,
    threads: int,
    onnx: bool,
    notes: list[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every predictor to time, by ``"model/runtime"``: the student in torch (given), the local
    teacher in torch, and with ``onnx`` both exported to ONNX (the student also as int8); and the
    sizes of those files. An export that fails is a warning in ``notes``, not an error."""
    from kdstudio.core.evaluate import runtimes
    from kdstudio.core.teachers import ExportableTeacher

    out = dict(predictors)
    sizes: dict[str, Any] = {}
    if teacher is not None:
        out["teacher/torch"] = teacher.predict_probs
    if onnx and texts:
        from kdstudio.core.students import student_folder

        try:
            found, student_sizes = runtimes.student_onnx(student_folder(folder), texts, Path(workdir), threads=threads)
            out.update({f"student/{k}": v for k, v in found.items()})
            sizes.update(student_sizes)
        except Exception as exc:  # an export that fails leaves those runtimes untimed
            notes.append(f"the student was not exported to ONNX, so ONNX is not timed: {_first_line(exc)}")
        if isinstance(teacher, ExportableTeacher):
            try:
                predictor, size, diff = runtimes.teacher_onnx(teacher, texts, Path(workdir), threads=threads)
                out["teacher/onnx"] = predictor
                sizes["teacher_onnx_size_mb"] = size
                if diff > runtimes.TEACHER_PARITY_TOLERANCE:
                    notes.append(f"the teacher's ONNX probabilities differ from torch's by up to {diff:.1e} "
                                 f"(> {runtimes.TEACHER_PARITY_TOLERANCE:g}); its ONNX timing is reported anyway")
            except Exception as exc:  # the same for the teacher
                notes.append(f"the teacher was not exported to ONNX, so its ONNX runtime is not timed: "
                             f"{_first_line(exc)}")
    return out, sizes


def _first_line(exc: BaseException) -> str:
    """An exception as one line (an exporter's message can carry a whole traceback)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _timing(
    predictors: dict[str, Any] | None,
    sizes: dict[str, Any],
    texts: list[str],
    report: dict[str, Any],
    cancel: CancelToken,
) -> dict[str, Any]:
    """Time ``predictors`` interleaved (None: no timing) and fill the latency keys of the report:
    the matrix, the speed-ups per runtime, the files' sizes and the flat keys (torch, batch 1)."""
    from kdstudio.core.evaluate.runtimes import latency_matrix, speedups

    out: dict[str, Any] = {
        "student_latency_ms_p50": None,
        "student_latency_ms_p95": None,
        "student_throughput_per_s": None,
        "speedup": None,
        "speedup_runtime": None,
        "speedups": None,
        "latency": None,
        "student_onnx_size_mb": None,
        "student_int8_size_mb": None,
        "teacher_onnx_size_mb": None,
    }
    if predictors is None:
        return out
    out.update(sizes)
    matrix = latency_matrix(time_interleaved(predictors, texts, cancel=cancel))
    out["latency"] = matrix
    out["speedups"] = speedups(matrix)
    student = matrix["student"]["torch"]
    if student is not None:
        out["student_latency_ms_p50"] = student["batch1_ms_p50"]
        out["student_latency_ms_p95"] = student["batch1_ms_p95"]
        out["student_throughput_per_s"] = student["batch64_per_s"]
    teacher = matrix["teacher"]["torch"]
    if teacher is not None:
        out["teacher_latency_ms_p50"] = teacher["batch1_ms_p50"]
        out["teacher_latency_ms_p95"] = teacher["batch1_ms_p95"]
        out["teacher_throughput_per_s"] = teacher["batch64_per_s"]
        out["teacher_timing"] = "measured"
    s_ms = out["student_latency_ms_p50"]
    t_ms = out.get("teacher_latency_ms_p50", report["teacher_latency_ms_p50"])
    if s_ms and t_ms:
        out["speedup"] = round(t_ms / s_ms, 3)
        out["speedup_runtime"] = "torch" if teacher is not None else report["teacher_timing"]
    return out
