"""Export a trained student for use outside KD Studio, and the teacher's answers as data.

``export(project_path, run_id, fmt, out_dir)`` writes one folder:

- ``hf``: ``config.json`` + weights + tokenizer files, loadable with
  ``transformers.pipeline("text-classification", model=out_dir)`` — for the transformer students
  (``transformer-*``, ``hf:``, ``teacher-layers:K``). ``bilstm`` and ``cnn`` are not transformers
  architectures, so they export as ONNX only; asking for ``hf`` gives a clear error that says so.
- ``onnx``: ``model.onnx`` (inputs ``input_ids`` and ``attention_mask``, int64, batch and
  sequence axes dynamic; output ``logits``), checked against torch with onnxruntime on up to
  100 project texts (max abs difference of the logits ≤ 1e-4), with the tokenizer files beside it.
  With ``int8=True`` also ``model_int8.onnx``, its dynamic int8 quantization, checked against the
  float file on the whole test split (top-1 agreement ≥ ``INT8_MIN_AGREEMENT``, :mod:`.int8`).

A generation student (a causal language model) exports as ``hf`` only: the model, its tokenizer and
``generation_config.json`` (KD Studio's greedy settings), checked by running
``transformers.pipeline("text-generation", model=out_dir)`` on test prompts against KD Studio's own
completions (:mod:`.generation`); asking for ``onnx`` gives a one-line refusal.

Both also hold ``README.md`` (the model card: teacher, data, metrics, intended use and limits),
``kdstudio.json`` (labels, maximum length, run and teacher) and ``teacher_outputs.jsonl``.
The folder is written beside ``out_dir`` under a hidden name and moved into place when it is
complete, so a failed or cancelled export leaves ``out_dir`` as it was (or absent).
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdstudio.core.csvsafe import formula_safe
from kdstudio.core.errors import ConfigError
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Log, Progress
from kdstudio.core.export.int8 import FLOAT_FILE, INT8_FILE, INT8_MIN_AGREEMENT, int8_summary, write_int8

FORMATS = ("hf", "onnx")
#: What each format writes, in a line (the app's export dialog offers the formats with these).
FORMAT_HELP = {
    "hf": "Hugging Face folder — config, weights and tokenizer for transformers "
    "(transformer-*, hf: and teacher-layers: students)",
    "onnx": "ONNX — model.onnx with its tokenizer, checked against the student with onnxruntime",
}
ONNX_TOLERANCE = 1e-4
CHECK_EXAMPLES = 100
MARKER = "kdstudio.json"
CAUSAL = "causal"  #: a generation student's arch (kdstudio.core.students.CAUSAL)


@dataclass(frozen=True)
class ExportResult(JobResult):
    """What ``kdstudio export --json`` prints."""

    run: int
    format: str
    out: str
    files: list[str]  # relative to ``out``
    seconds: float
    teacher_outputs: int | None = None  # rows in teacher_outputs.jsonl (None: the run has no teacher)
    max_abs_diff: float | None = None  # ONNX: the largest logit difference from torch
    checked_examples: int | None = None  # ONNX / generation: how many texts the parity check ran on
    identical: int | None = None  # generation: prompts on which transformers' pipeline wrote KD Studio's text
    onnx_bytes: int | None = None  # ONNX: size of model.onnx
    int8_bytes: int | None = None  # --int8: size of model_int8.onnx
    int8_agreement: float | None = None  # --int8: share of the checked texts with the float model's top label
    int8_checked_examples: int | None = None  # --int8: how many texts that share is over
    int8_texts: str | None = None  # --int8: "test" (the test split) or "project" (no test split: project texts)
    int8_max_abs_diff: float | None = None  # --int8: largest output difference from the float model
    int8_ops: str | None = None  # --int8: what was quantized: "all", "all-per-channel", "matmul+embeddings"
    # or "embeddings"


#: The formula escape every exported CSV cell passes through (:func:`kdstudio.core.csvsafe.formula_safe`).
csv_safe = formula_safe


def export_teacher_outputs(
    project_path: str | Path,
    teacher_id: int,
    path: str | Path,
    fmt: str = "jsonl",
    *,
    splits: list[str] | None = None,
) -> int:
    """Write a teacher's successful answers to ``path`` and return how many.

    JSONL: one object per line with ``id``, ``text``, ``split``, ``gold``, ``label``,
    ``probabilities`` (label name → probability), ``rationale`` and ``completion``.
    CSV: the same columns with one ``p_<label>`` column per label; every cell passes through
    :func:`~kdstudio.core.csvsafe.formula_safe`.
    """
    from kdstudio.core.store import Project

    if fmt not in ("jsonl", "csv"):
        raise ConfigError(f"teacher outputs export as jsonl or csv, not {fmt!r}")
    with Project(project_path) as project:
        if project.teacher(teacher_id) is None:
            raise ConfigError(f"no teacher {teacher_id} in this project")
        labels = project.labels()
        rows = project.teacher_outputs(teacher_id, splits)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def name(label_id: int | None) -> str | None:
        return labels[label_id] if label_id is not None and 0 <= label_id < len(labels) else None

    def probabilities(probs: list[float] | None) -> dict[str, float] | None:
        return dict(zip(labels, probs, strict=False)) if probs else None

    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as f:
            for r in rows:
                record = {
                    "id": r["id"],
                    "text": r["text"],
                    "split": r["split"],
                    "gold": name(r["gold"]),
                    "label": name(r["label"]),
                    "probabilities": probabilities(r["probs"]),
                    "rationale": r["rationale"],
                    "completion": r["completion"],
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["id", "text", "split", "gold", "label", *(f"p_{n}" for n in labels), "rationale"]
            )
            for r in rows:
                probs = r["probs"] if r["probs"] else [None] * len(labels)
                writer.writerow(
                    [
                        formula_safe(x)
                        for x in (
                            r["id"],
                            r["text"],
                            r["split"],
                            name(r["gold"]),
                            name(r["label"]),
                            *probs,
                            r["rationale"],
                        )
                    ]
                )
    return len(rows)


def formats_for(arch: str) -> tuple[str, ...]:
    """The formats a student of architecture ``arch`` (its checkpoint's ``arch``) exports to:
    ONNX always, ``hf`` only for a transformers model (``transformer-*``, ``hf:``, ``teacher-layers:``);
    a generation student (``causal``) only ``hf``."""
    if arch == CAUSAL:
        return ("hf",)
    return FORMATS if arch == "hf" else tuple(f for f in FORMATS if f != "hf")


def run_formats(project_path: str | Path, run_id: int) -> tuple[str, ...]:
    """The formats run ``run_id``'s saved student exports to (all of them when the run has no
    saved student yet: the export then says what is missing)."""
    from kdstudio.core.store import Project
    from kdstudio.core.students import META_FILE, student_folder
    from kdstudio.core.train import run_folder

    with Project(project_path) as project:
        folder = run_folder(project.path, run_id)
    try:
        meta = json.loads((student_folder(folder) / META_FILE).read_text())
    except (ConfigError, OSError, ValueError):
        return FORMATS
    return formats_for(meta.get("arch", ""))


def export(
    project_path: str | Path,
    run_id: int,
    fmt: str,
    out_dir: str | Path,
    *,
    int8: bool = False,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Export run ``run_id``'s best student as ``fmt`` (``hf`` or ``onnx``) into ``out_dir``;
    with ``int8`` (ONNX only) also its int8 quantization, checked against the float model.

    Yields ``Progress(stage="export")`` and ``Log`` events, then ``Finished(ExportResult)``.
    ``out_dir`` must be new, empty, or an earlier export (it is replaced). Raises ``ConfigError``
    for an unknown format or run, for ``hf`` with a ``bilstm``/``cnn`` student, for ``int8`` with
    another format than ``onnx``, and when the int8 model falls short of ``INT8_MIN_AGREEMENT``;
    a failed or cancelled export leaves ``out_dir`` as it was.
    """
    from kdstudio.core.store import Project
    from kdstudio.core.students import META_FILE, student_folder
    from kdstudio.core.train import run_folder

    cancel = cancel or CancelToken()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    t0 = time.monotonic()
    out = Path(out_dir)
    with Project(project_path) as project:
        run = project.run(run_id) if run_id is not None else None
        if run is None:
            raise ConfigError(f"no run #{run_id} in this project")
        try:
            folder = student_folder(run_folder(project.path, run_id))
        except ConfigError:
            if run["status"] == "finished":  # trained, then its folder was moved or deleted
                raise ConfigError(
                    f"run #{run_id}'s checkpoints are missing ({run_folder(project.path, run_id)}); "
                    "restore that folder or train the run again"
                ) from None
            raise ConfigError(
                f"run #{run_id} has no saved student (status: {run['status']}); train it to the end first"
            ) from None
        meta = json.loads((folder / META_FILE).read_text())
        generation = meta["arch"] == CAUSAL
        if int8 and (fmt != "onnx" or generation):
            raise ConfigError(
                "--int8 goes with --format onnx: it writes model_int8.onnx beside model.onnx"
                + (f" (run #{run_id} is a generation student, which exports as a Hugging Face folder only)"
                   if generation else "")
            )
        if generation and fmt not in formats_for(CAUSAL):
            raise ConfigError(
                f"run #{run_id} is a generation student (a causal language model); it exports as a Hugging Face "
                "folder for transformers' text-generation pipeline (--format hf), not as ONNX"
            )
        if fmt not in formats_for(meta["arch"]):
            raise ConfigError(
                f"run #{run_id} is a {meta['arch']} student, which is not a transformers architecture; "
                "export it with --format onnx (transformer-*, hf: and teacher-layers: students export to both)"
            )
        _prepare_out(out)
        total = 6 if int8 else 5
        yield Progress("export", 0, total)
        yield Log(f"exporting run #{run_id} ({meta['spec']}) as {fmt} to {out}")
        stage = _stage(out)
        try:
            parity: dict[str, Any] = {}
            if generation:
                from kdstudio.core.export.generation import parity_prompts, pipeline_parity, write_generation_hf

                write_generation_hf(folder, meta, stage)
                cancel.check()
                check = pipeline_parity(stage, folder, meta, parity_prompts(project))
                parity = {"checked_examples": check["checked_examples"], "identical": check["identical"]}
                yield Log(f"transformers' text-generation pipeline on the export writes KD Studio's text on "
                          f"{check['identical']}/{check['checked_examples']} test prompts",
                          "info" if check["first_difference"] is None else "warning")
            elif fmt == "hf":
                _write_hf(folder, meta, stage)
            else:
                from kdstudio.core.export.onnx import file_size

                cancel.check()
                parity = _write_onnx(folder, meta, stage, _check_texts(project))
                parity["onnx_bytes"] = file_size(stage / FLOAT_FILE)
                yield Log(
                    f"ONNX matches torch on {parity['checked_examples']} examples "
                    f"(max abs difference {parity['max_abs_diff']:.2e})"
                )
                if int8:
                    yield Progress("export", 2, total)
                    texts = [t for _, t, _ in project.examples("test")]
                    parity["int8_texts"] = "test" if texts else "project"
                    parity.update((yield from write_int8(stage, folder, meta, texts or _check_texts(project),
                                                         cancel=cancel)))
            yield Progress("export", total - 3, total)
            cancel.check()
            teacher = project.teacher(run["teacher"]) if run["teacher"] is not None else None
            stored = project.evaluation(run_id)
            info = project.info()
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    try:
        files, n_teacher_outputs = yield from _finish(project_path, run, meta, fmt, stage, teacher, stored, info,
                                                      int8=parity if int8 else None, cancel=cancel, total=total)
        _move_into_place(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    yield Progress("export", total, total)
    yield Finished(ExportResult(run=run_id, format=fmt, out=str(out), files=files,
                                seconds=round(time.monotonic() - t0, 3), teacher_outputs=n_teacher_outputs,
                                **parity))


def _finish(
    project_path: str | Path,
    run: dict[str, Any],
    meta: dict[str, Any],
    fmt: str,
    out: Path,
    teacher: dict[str, Any] | None,
    stored: Any,
    info: dict[str, Any],
    *,
    int8: dict[str, Any] | None,
    cancel: CancelToken,
    total: int,
) -> Generator[Event, None, tuple[list[str], int | None]]:
    """The rest of an export into ``out`` once the model is there: the run's evaluation (made now
    when none is stored), the teacher's outputs, the marker and the model card (``int8``: the int8
    check's figures, for the card). Returns ``(files, teacher outputs written)``."""
    from kdstudio.core.evaluate.tasks import report_from_json

    run_id = run["id"]
    generation = meta["arch"] == CAUSAL
    report = report_from_json(stored) if stored is not None else None
    if report is None:
        from kdstudio.core.evaluate import evaluate
        from kdstudio.core.events import run_to_end

        yield Log("no evaluation stored for this run; evaluating it on the test split (no timing)")
        try:
            report = run_to_end(evaluate(project_path, run_id, speed=False, cancel=cancel))
        except ConfigError as exc:
            yield Log(f"not evaluated: {exc}", "warning")
    yield Progress("export", total - 2, total)
    n_teacher_outputs = None
    if teacher is not None:
        n_teacher_outputs = export_teacher_outputs(project_path, teacher["id"], out / "teacher_outputs.jsonl")
    yield Progress("export", total - 1, total)
    (out / MARKER).write_text(
        json.dumps(
            {
                "format": fmt,
                "run": run_id,
                "student": meta["spec"],
                "arch": meta["arch"],
                "labels": meta.get("labels", []),
                "max_length": meta.get("max_length"),
                "teacher": teacher["spec"] if teacher else None,
                "project": info["name"],
                **({"task": "generation", "template": meta.get("template"),
                    "max_new_tokens": meta.get("max_new_tokens")} if generation
                   else {"int8": INT8_FILE if int8 else None}),
            },
            indent=1,
        )
    )
    from kdstudio.core.export.card import generation_model_card, model_card

    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    files = sorted({*files, "README.md"})
    card_args = {"name": f"{info['name']} — run {run_id} ({meta['spec']})", "fmt": fmt, "run": run, "meta": meta,
                 "teacher": teacher, "project": info, "report": report, "files": files}
    card = generation_model_card(**card_args) if generation else model_card(**card_args, int8=int8)
    (out / "README.md").write_text(card, encoding="utf-8")
    return files, n_teacher_outputs


def _stage(out: Path) -> Path:
    """A new hidden folder beside ``out`` to write the export into, moved into place when it is done."""
    import secrets

    out.parent.mkdir(parents=True, exist_ok=True)
    while True:  # mkdir, not mkdtemp: the folder gets the usual permissions, not the owner's only
        stage = out.parent / f".{out.name}.{secrets.token_hex(4)}.partial"
        try:
            stage.mkdir()
            return stage
        except FileExistsError:
            continue


def _move_into_place(stage: Path, out: Path) -> None:
    """Replace ``out`` (absent, empty, or an earlier export) by the finished ``stage``."""
    if out.is_dir():
        shutil.rmtree(out)
    stage.rename(out)


def _prepare_out(out: Path) -> None:
    """Check that ``out`` may be written: new, empty, or an earlier KD Studio export (replaced
    once the new one is complete)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(
            f"{out}: the folder is not empty; choose a new folder (an earlier export is replaced)"
        )


def _copy_tokenizer(folder: Path, meta: dict[str, Any], out: Path) -> None:
    """Tokenizer files beside the model, cut at the student's maximum length like in KD Studio."""
    for f in (folder / "tokenizer").iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    config_path = out / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        config["model_max_length"] = meta["max_length"]
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False))


def _write_hf(folder: Path, meta: dict[str, Any], out: Path) -> None:
    for f in (folder / "model").iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config["id2label"] = {str(i): name for i, name in enumerate(meta["labels"])}
    config["label2id"] = {name: i for i, name in enumerate(meta["labels"])}
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False))
    _copy_tokenizer(folder, meta, out)


def _check_texts(project: Any) -> list[str]:
    """Up to ``CHECK_EXAMPLES`` project texts (test first) to compare ONNX with torch on."""
    texts = [t for _, t, _ in project.examples("test")][:CHECK_EXAMPLES]
    if len(texts) < CHECK_EXAMPLES:
        texts += [t for _, t, _ in project.examples()][: CHECK_EXAMPLES - len(texts)]
    return texts or ["a short example text"]


def _write_onnx(folder: Path, meta: dict[str, Any], out: Path, texts: list[str]) -> dict[str, Any]:
    """Export to ONNX and compare onnxruntime's logits with torch's on ``texts``."""
    import numpy as np
    import torch

    from kdstudio.core.export.onnx import export_classifier, require_onnx, run_ids, session
    from kdstudio.core.students import load_student, pad_batch
    from kdstudio.core.students.tokenizer import encode, pad_id

    require_onnx()
    model, tokenizer, _ = load_student(folder, device="cpu")
    pad = pad_id(tokenizer)
    tokens = encode(tokenizer, texts, meta["max_length"])
    path = export_classifier(model, pad_batch(tokens[:2] if len(tokens) >= 2 else tokens * 2, pad),
                             out / FLOAT_FILE)
    sess = session(path)
    worst = 0.0
    for start in range(0, len(tokens), 25):
        ids, mask = pad_batch(tokens[start : start + 25], pad)
        with torch.no_grad():
            expected = model(ids, mask).float().numpy()
        worst = max(worst, float(np.abs(run_ids(sess, ids, mask) - expected).max()))
    if worst > ONNX_TOLERANCE:
        raise ConfigError(
            f"the ONNX model differs from the student by up to {worst:.2e} (> {ONNX_TOLERANCE}); "
            "export it with --format hf instead, or report this"
        )
    _copy_tokenizer(folder, meta, out)
    return {"max_abs_diff": worst, "checked_examples": len(tokens)}


__all__ = [
    "FORMATS",
    "FORMAT_HELP",
    "INT8_MIN_AGREEMENT",
    "ExportResult",
    "csv_safe",
    "export",
    "export_teacher_outputs",
    "formats_for",
    "int8_summary",
    "run_formats",
]
