"""Evaluate a generation run on the test split: quality against the teacher and the references,
speed and size of student and teacher, the cascade. The report is a typed
:class:`~kdstudio.core.evaluate.generation_report.GenerationReport`.

Quality comes from the run's stored test completions (what the student wrote with
:func:`~kdstudio.core.generate.generate` when the run finished); a prediction stored without its
per-example scores gets them here, so the comparison viewer can sort by them. Speed is measured
again: the student writes ``SPEED_PROMPTS`` test completions at batch 1, and a local ``lm:``
teacher writes the same prompts in turn with the same routine (student, teacher, student, ...), so
both see the same machine load; an API or recorded teacher is not run again (that would be paid
twice): its stored latencies and output tokens give its figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kdstudio.core.errors import ConfigError, KDStudioError
from kdstudio.core.evaluate.cascade import generation_cascade
from kdstudio.core.evaluate.generation_report import GenerationReport
from kdstudio.core.evaluate.metrics import percentile_ms
from kdstudio.core.evaluate.speed import megabytes, weights_size_bytes
from kdstudio.core.events import CancelToken, Event, Finished, Log, Progress
from kdstudio.core.store import Project
from kdstudio.core.text_metrics import corpus_scores, primary_score, rouge_l, score_completion
from kdstudio.core.threads import torch_threads

STAGES = 4  # quality, speed, cascade, saved
#: Test prompts each model writes at batch 1 for the latency and tokens/s figures.
SPEED_PROMPTS = 16


def evaluate_generation(
    project_path: str | Path,
    run_id: int | None = None,
    *,
    speed: bool = True,
    speed_prompts: int = SPEED_PROMPTS,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """See :func:`kdstudio.core.evaluate.evaluate`; finishes with a :class:`GenerationReport`."""
    cancel = cancel or CancelToken()
    t0 = time.monotonic()
    with Project(project_path) as project:
        run_id, run = pick_generation_run(project, run_id)
        yield Progress("eval", 0, STAGES)
        report, data = generation_quality(project, run_id, run)
        cancel.check()
        yield Progress("eval", 1, STAGES)
        teacher = project.teacher(report["teacher"]) if report["teacher"] is not None else None
        folder = _student_folder(project.path, run_id, run)
        from kdstudio.core.teachers.local import pick_device

        device = pick_device(None)
        with torch_threads(cpu=device == "cpu") as threads:
            part, notes = generation_speed(project, folder, teacher, data["prompts"][:speed_prompts] if speed else [],
                                           device=device, cancel=cancel)
        report.update(part)
        report["threads"] = threads if device == "cpu" else None
        for note in notes:
            yield Log(note, "warning")
        yield Progress("eval", 2, STAGES)
        s_ms, t_ms = report["student_latency_ms_p50"], report["teacher_latency_ms_p50"]
        report["speedup"] = round(t_ms / s_ms, 3) if s_ms and t_ms else None
        cost = report["teacher_cost_per_1m_usd"]
        report["cascade"] = (
            generation_cascade(data["conf"], data["student_score"], data["teacher_score"],
                               teacher_cost_usd=cost / 1e6 if cost else 0.0, student_ms=s_ms, teacher_ms=t_ms,
                               against=data["against"])
            if len(data["conf"]) else None
        )
        report["seconds"] = round(time.monotonic() - t0, 3)
        result = GenerationReport.of(report)
        project.save_evaluation(run_id, result.to_json())
        yield Progress("eval", STAGES, STAGES)
    yield Finished(result)


def pick_generation_run(project: Project, run_id: int | None) -> tuple[int, dict[str, Any]]:
    """``run_id`` (default: the latest finished run) and its row; ConfigError when there is none."""
    if project.task != "generation":
        raise ConfigError(f"this project is a {project.task} task, not generation")
    if run_id is None:
        run_id = project.latest_run()
        if run_id is None:
            raise ConfigError("no finished run in this project; train a student first (kdstudio train)")
    run = project.run(run_id)
    if run is None:
        raise ConfigError(f"no run #{run_id} in this project")
    return run_id, run


def held_out_targets(project: Project, teacher_id: int | None) -> tuple[dict[int, str], dict[int, list[str]], set[int]]:
    """What the test completions are scored against: the teacher's completion per prompt (a
    person's corrected completion replaces it), the references per prompt, and the test prompts a
    person excluded."""
    reviews = project.reviews()
    teacher_text: dict[int, str] = {}
    if teacher_id is not None:
        teacher_text = {o["id"]: o["completion"] for o in project.teacher_outputs(teacher_id, ["test"])
                        if o["completion"] is not None}
    references = project.references_of(split="test")
    test_ids = set()
    for ex, _text, reference in project.references("test"):
        test_ids.add(ex)
        if reference is not None and ex not in references:
            references[ex] = [reference]
    corrected = {ex for ex, review in reviews.items() if ex in test_ids and review.get("corrected_completion")}
    for ex in corrected:
        teacher_text[ex] = reviews[ex]["corrected_completion"]
    excluded = {ex for ex, review in reviews.items() if review.get("exclude") and ex in test_ids}
    return teacher_text, references, excluded


def generation_quality(
    project: Project, run_id: int, run: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The quality part of the report and the per-prompt numbers the cascade and the timing need.
    Writes the per-example scores of test predictions stored without them."""
    teacher_id = run["teacher"] if run["teacher"] is not None else project.default_teacher()
    teacher_text, references, excluded = held_out_targets(project, teacher_id)
    predictions = [p for p in project.predictions(run_id, split="test")
                   if p["completion"] is not None and p["example"] not in excluded]
    if not predictions:
        raise ConfigError(
            f"run #{run_id} ({run['status']}) has no test completions; a finished run with a test split has them"
        )
    missing = []
    for p in predictions:
        if p["scores"] is None:
            ex = p["example"]
            p["scores"] = score_completion(p["completion"], teacher=teacher_text.get(ex),
                                           references=references.get(ex, ()))
            p["score"] = primary_score(p["scores"])
            missing.append(p)
    if missing:
        project.save_predictions(run_id, missing)
    ids = [p["example"] for p in predictions]
    texts = [p["completion"] for p in predictions]
    both = [i for i, ex in enumerate(ids) if ex in teacher_text and references.get(ex)]
    student_vs_refs = corpus_scores(texts, [references.get(ex, []) for ex in ids])
    teacher_vs_refs = corpus_scores([teacher_text[ids[i]] for i in both], [references[ids[i]] for i in both])
    # the cascade's per-prompt scores: against the references when there are any, else the teacher
    against = "references" if student_vs_refs["n"] else "teacher"
    rows = both if against == "references" else [i for i, ex in enumerate(ids) if ex in teacher_text]
    rows = [i for i in rows if predictions[i]["confidence"] is not None]
    if against == "references":
        student_score = [rouge_l(texts[i], references[ids[i]]) for i in rows]
        teacher_score = [rouge_l(teacher_text[ids[i]], references[ids[i]]) for i in rows]
    else:
        student_score = [rouge_l(texts[i], [teacher_text[ids[i]]]) for i in rows]
        teacher_score = [1.0] * len(rows)
    retention = None
    if against == "references" and rows and sum(teacher_score):
        retention = round(sum(student_score) / sum(teacher_score), 6)
    conf = [p["confidence"] for p in predictions if p["confidence"] is not None]
    teacher_info = project.teacher(teacher_id) if teacher_id is not None else None
    report: dict[str, Any] = {
        "run": run_id,
        "student": run["student"],
        "teacher": teacher_id,
        "teacher_spec": teacher_info["spec"] if teacher_info else None,
        "n_test": len(predictions),
        "n_teacher": sum(ex in teacher_text for ex in ids),
        "n_references": sum(bool(references.get(ex)) for ex in ids),
        "reviews_applied": {"corrected": len(set(ids) & set(project.corrected_completions())),
                            "excluded": len(excluded)},
        "student_vs_teacher": corpus_scores(texts, [[teacher_text[ex]] if ex in teacher_text else [] for ex in ids]),
        "student_vs_references": student_vs_refs,
        "teacher_vs_references": teacher_vs_refs,
        "retention": retention,
        "student_mean_logprob": round(float(np.mean(conf)), 6) if conf else None,
        "scores_written": len(missing),
    }
    data = {
        "prompts": [t for _ex, t, _ in project.examples(ids=ids)],
        "conf": [predictions[i]["confidence"] for i in rows],
        "student_score": student_score,
        "teacher_score": teacher_score,
        "against": against,
    }
    return report, data


def _student_folder(project_path: Path, run_id: int, run: dict[str, Any]) -> Path:
    from kdstudio.core.students import student_folder
    from kdstudio.core.train import run_folder

    best = run.get("best_checkpoint")
    folder = Path(best) if best and Path(best).is_dir() else run_folder(project_path, run_id) / "best"
    try:
        return student_folder(folder)
    except ConfigError:
        raise ConfigError(f"the run's checkpoint is missing ({folder}); it cannot be evaluated") from None


def _figures(completions: Sequence[Any]) -> dict[str, float | None]:
    """p50/p95 latency per completion and tokens/s (all tokens over all time) of timed completions."""
    ms = [c.latency_ms for c in completions]
    tokens = sum(c.n_tokens for c in completions)
    return {"latency_ms_p50": percentile_ms(ms, 50), "latency_ms_p95": percentile_ms(ms, 95),
            "tokens_per_s": round(tokens / (sum(ms) / 1000.0), 3) if sum(ms) > 0 else None}


def generation_speed(
    project: Project,
    folder: Path,
    teacher: dict[str, Any] | None,
    prompts: Sequence[str],
    *,
    device: str,
    cancel: CancelToken,
) -> tuple[dict[str, Any], list[str]]:
    """Parameters, size, latency per completion and tokens/s of the student and the teacher, and
    $ per 1M completions of the teacher. No prompts: sizes only (and a teacher's recorded figures)."""
    from kdstudio.core.generate import generate_all
    from kdstudio.core.students import count_parameters, load_student

    model, tokenizer, meta = load_student(folder, device=device)
    out: dict[str, Any] = {
        "device": device, "speed_prompts": len(prompts) or None,
        "student_params": count_parameters(model), "student_size_mb": megabytes(weights_size_bytes(folder)),
        "teacher_params": None, "teacher_size_mb": None, "teacher_timing": None, "teacher_cost_per_1m_usd": None,
        **{f"{who}_{k}": None for who in ("student", "teacher") for k in ("latency_ms_p50", "latency_ms_p95",
                                                                          "tokens_per_s")},
    }
    notes: list[str] = []
    lm = None
    if teacher is not None:
        ledger = project.count_outputs(teacher["id"])
        out["teacher_cost_per_1m_usd"] = ledger["cost_usd"] / ledger["n_ok"] * 1e6 if ledger["n_ok"] else 0.0
        if teacher["kind"] == "lm":
            try:
                lm = _load_lm_teacher(project, teacher, device)
            except KDStudioError as exc:
                notes.append(f"teacher #{teacher['id']} ({teacher['spec']}) was not loaded, so it is not timed: {exc}")
            else:
                out["teacher_params"] = sum(p.numel() for p in lm["model"].parameters())
                out["teacher_size_mb"] = megabytes(weights_size_bytes(lm["source"]))
        else:
            out.update(recorded_teacher_speed(project.teacher_outputs(teacher["id"])))
    student_kwargs = {"template": meta.get("template") or "{prompt}\n",
                      "max_new_tokens": int(meta.get("max_new_tokens") or 64)}
    if prompts:
        timed: dict[str, list[Any]] = {"student": [], "teacher": []}
        generate_all(model, tokenizer, prompts[:1], **student_kwargs)  # warm-up
        if lm is not None:
            generate_all(lm["model"], lm["tokenizer"], [lm["prompt"](prompts[0])], **lm["kwargs"])
        for prompt in prompts:
            cancel.check()
            timed["student"] += generate_all(model, tokenizer, [prompt], **student_kwargs)
            if lm is not None:
                timed["teacher"] += generate_all(lm["model"], lm["tokenizer"], [lm["prompt"](prompt)], **lm["kwargs"])
        out.update({f"student_{k}": v for k, v in _figures(timed["student"]).items()})
        if lm is not None:
            out.update({f"teacher_{k}": v for k, v in _figures(timed["teacher"]).items()})
            out["teacher_timing"] = "measured"
    return out, notes


def recorded_teacher_speed(outputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A teacher's figures from what its harvest stored: p50/p95 of the latencies and tokens/s over
    the answers with both a latency and output tokens (``teacher_timing`` "recorded", or None
    when nothing was recorded)."""
    ms = [float(o["latency_ms"]) for o in outputs if o.get("latency_ms")]
    if not ms:
        return {}
    timed = [(o["output_tokens"], o["latency_ms"]) for o in outputs if o.get("latency_ms") and o.get("output_tokens")]
    seconds = sum(t for _, t in timed) / 1000.0
    return {"teacher_latency_ms_p50": percentile_ms(ms, 50), "teacher_latency_ms_p95": percentile_ms(ms, 95),
            "teacher_tokens_per_s": round(sum(n for n, _ in timed) / seconds, 3) if seconds > 0 else None,
            "teacher_timing": "recorded"}


def _load_lm_teacher(project: Project, teacher: dict[str, Any], device: str) -> dict[str, Any]:
    """A local ``lm:`` teacher's model, tokenizer and prompt (laid out as the teacher lays it out)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kdstudio.core.students.pretrained import quiet_hf
    from kdstudio.core.teachers.lm import DEFAULT_PROMPT
    from kdstudio.core.teachers.local import load_pretrained, resolve_model

    options = teacher.get("settings") or {}
    source = resolve_model(teacher["model"])
    with quiet_hf():
        tokenizer = load_pretrained(AutoTokenizer, source)
        model = load_pretrained(AutoModelForCausalLM, source).to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    instructions = str(options.get("instructions") or project.settings().get("instructions") or "").strip()
    layout = options.get("prompt", DEFAULT_PROMPT)

    def prompt(text: str) -> str:
        return layout.format(instructions=f"{instructions}\n" if instructions else "", text=text)

    return {"model": model, "tokenizer": tokenizer, "source": source, "prompt": prompt,
            "kwargs": {"template": "{prompt}", "max_new_tokens": int(options.get("max_new_tokens", 64))}}


__all__ = [
    "SPEED_PROMPTS",
    "evaluate_generation",
    "generation_quality",
    "generation_speed",
    "held_out_targets",
    "pick_generation_run",
    "recorded_teacher_speed",
]
