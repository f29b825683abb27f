"""A tiny generation project with a finished run, built with the store's API (never trained).

``make_generation_project(folder)`` writes an E2E-like project: meaning representations as
prompts, several references per prompt, a teacher's completion for every prompt, and a finished
run whose best checkpoint is a tiny causal LM (random weights) with its test and valid
completions stored as training stores them (completion, confidence = mean token log-probability,
latency_ms; with ``scores=False`` without the per-example scores).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

NAMES = ("Alimentum", "Cotto", "Zizzi", "Aromi", "Wildwood", "Strada")
FOODS = ("Chinese", "English", "French", "Italian", "Indian")
AREAS = ("riverside", "city centre")


@dataclass(frozen=True)
class GenerationProject:
    path: Path
    run: int
    teacher: int
    student_folder: Path
    teacher_folder: Path


def _row(i: int) -> tuple[str, list[str], str]:
    name, food, area = NAMES[i % len(NAMES)], FOODS[i % len(FOODS)], AREAS[i % len(AREAS)]
    prompt = f"name[{name}], food[{food}], area[{area}] #{i}"
    refs = [f"{name} serves {food} food in the {area}.", f"In the {area}, {name} has {food} food.",
            f"{name} is a {food} place."][: 1 + i % 3]
    teacher = f"{name} serves {food} food in the {area}." if i % 4 else f"{name} is in the {area}."
    return prompt, refs, teacher


def make_generation_project(
    folder: Path, *, n_test: int = 12, teacher_spec: str | None = None, scores: bool = False, max_new_tokens: int = 8,
    latency_ms: float | None = None, output_tokens: int = 0,
) -> GenerationProject:
    """See the module docstring. ``teacher_spec`` defaults to ``lm:<a tiny causal LM folder>``;
    ``latency_ms`` / ``output_tokens``: what the teacher's harvest recorded per answer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fakes.tiny_models import GEN_TEXTS, save_tiny_causal_lm
    from kdstudio.core.generate import generate_all
    from kdstudio.core.store import Project, TeacherOutput
    from kdstudio.core.students import save_student
    from kdstudio.core.text_metrics import primary_score, score_completion
    from kdstudio.core.train import run_folder

    folder = Path(folder)
    texts = GEN_TEXTS + [f"{_row(i)[0]}\n{_row(i)[2]}" for i in range(20)]
    teacher_folder = save_tiny_causal_lm(folder / "teacher-lm", texts=texts, layers=2, hidden=48, seed=1)
    teacher_spec = teacher_spec or f"lm:{teacher_folder}"
    path = folder / "gen.kdproj"
    project = Project.create(path, "generation")
    rows, refs = [], []
    sizes = {"train": 8, "valid": 4, "test": n_test}
    i = 0
    for split, n in sizes.items():
        for _ in range(n):
            prompt, references, _ = _row(i)
            digest = hashlib.sha256(f"{split}{prompt}".encode()).hexdigest()
            rows.append((prompt, None, references[0], split, "toy", i + 1, digest))
            refs += [(split, digest, r) for r in references]
            i += 1
    with project.transaction():
        project.insert_examples(rows)
        project.add_references(refs)
    kind, _, model = teacher_spec.partition(":")
    settings = {"max_new_tokens": max_new_tokens, "prompt": "{instructions}{text}\n"} if kind == "lm" else {}
    teacher = project.upsert_teacher(teacher_spec, kind, model, hashlib.sha256(teacher_spec.encode()).hexdigest()[:16],
                                     settings)
    by_text = {t: i for i, t in enumerate(_row(k)[0] for k in range(i))}
    rng = random.Random(0)
    project.save_outputs(teacher, [
        TeacherOutput(example=ex, completion=_row(by_text[text])[2], method="greedy",
                      latency_ms=latency_ms * rng.uniform(0.8, 1.2) if latency_ms else None,
                      output_tokens=output_tokens, cost_usd=0.001 if kind == "claude" else 0.0)
        for ex, text, _ in project.examples()
    ])
    run = project.create_run("gpt-tiny", teacher, {"student": "gpt-tiny", "max_new_tokens": max_new_tokens},
                             name="gpt-tiny KD")
    student_src = save_tiny_causal_lm(folder / "student-lm", texts=texts, seed=2)
    model, tok = AutoModelForCausalLM.from_pretrained(student_src).eval(), AutoTokenizer.from_pretrained(student_src)
    best = save_student(model, tok, run_folder(path, run) / "best",
                        {"spec": "gpt-tiny", "template": "{prompt}\n", "max_new_tokens": max_new_tokens,
                         "max_length": 128})
    teacher_text = {o["id"]: o["completion"] for o in project.teacher_outputs(teacher)}
    references = project.references_of()
    predictions = []
    for split in ("valid", "test"):
        examples = project.examples(split)
        out = generate_all(model, tok, [t for _, t, _ in examples], max_new_tokens=max_new_tokens)
        for (ex, _, _), c in zip(examples, out, strict=True):
            row = {"example": ex, "completion": c.text, "confidence": c.mean_logprob, "latency_ms": c.latency_ms}
            if scores:
                row["scores"] = score_completion(c.text, teacher=teacher_text.get(ex), references=references.get(ex, ()))
                row["score"] = primary_score(row["scores"])
            predictions.append(row)
    project.save_predictions(run, predictions)
    project.update_run(run, status="finished", best_checkpoint=str(best))
    project.close()
    return GenerationProject(path, run, teacher, best, teacher_folder)
