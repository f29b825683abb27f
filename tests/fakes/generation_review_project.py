"""A small generation project built with the store's own calls: E2E-like meaning representations as
prompts, several references each, a teacher that wrote a completion for every prompt, and a finished
run whose predictions carry completions and their scores (``score_completion``, ``primary_score``)."""

from __future__ import annotations

import math
import random
from pathlib import Path

from kdstudio.core.data import text_hash
from kdstudio.core.store import Project, TeacherOutput
from kdstudio.core.text_metrics import primary_score, score_completion

NAMES = ("The Eagle", "Blue Spice", "The Mill", "Alimentum", "Giraffe", "Zizzi", "Cotto", "Wildwood")
FOODS = ("Italian", "French", "Chinese", "English", "Japanese", "Indian", "fast food")
AREAS = ("city centre", "riverside")
PRICES = ("cheap", "moderate", "high")


def meaning(i: int) -> tuple[str, dict[str, str]]:
    slots = {"name": NAMES[i % len(NAMES)], "food": FOODS[i % len(FOODS)], "area": AREAS[i % 2],
             "priceRange": PRICES[i % 3]}
    return ", ".join(f"{k}[{v}]" for k, v in slots.items()) + f", customer rating[{1 + i % 5} out of 5]", slots


def describe(slots: dict[str, str], variant: int) -> str:
    name, food, area, price = slots["name"], slots["food"], slots["area"], slots["priceRange"]
    forms = (
        f"{name} serves {food} food in the {area} at {price} prices.",
        f"In the {area}, {name} is a {price} {food} restaurant.",
        f"{name} is a {food} place near the {area} with {price} prices.",
    )
    return forms[variant % len(forms)]


def build_generation_project(folder: Path, n: int = 24, *, name: str = "e2e", teacher_spec: str = "recorded:e2e",
                             run: bool = True) -> tuple[Path, int | None]:
    """``name.kdproj`` with ``n`` prompts (train, valid and test), 3 references each, a teacher with a
    completion for each prompt, and (``run``) a finished ``gpt-tiny`` run with scored completions on
    valid and test. Returns the path and the run id."""
    rng = random.Random(0)
    path = folder / f"{name}.kdproj"
    Project.create(path, "generation").close()
    with Project(path) as project:
        rows, refs = [], []
        for i in range(n):
            split = ("train", "train", "valid", "test")[i % 4]
            prompt, slots = meaning(i)
            variants = [describe(slots, v) for v in range(3)]
            rows.append((prompt, None, variants[0], split, "e2e.csv", i + 2, text_hash(prompt)))
            refs += [(split, text_hash(prompt), v) for v in variants]
        with project.transaction():
            project.insert_examples(rows)
            project.add_references(refs)
        teacher = project.upsert_teacher(teacher_spec, teacher_spec.split(":")[0], teacher_spec.split(":")[-1],
                                         "fp", {})
        examples = project.examples()
        slots_of = {ex: meaning(i)[1] for i, (ex, _t, _l) in enumerate(examples)}
        project.save_outputs(teacher, [
            TeacherOutput(ex, completion=describe(slots_of[ex], 1), output_tokens=14, latency_ms=420.0)
            for ex, _t, _l in examples])
        run_id = None
        if run:
            run_id = project.create_run("gpt-tiny", teacher, {"student": "gpt-tiny", "epochs": 3}, status="running")
            metrics = []
            for step in range(1, 121):
                epoch = 3 * step / 120
                loss = 3.2 * math.exp(-step / 30) + 0.6 + rng.random() * 0.05
                metrics.append((step, epoch, step * 0.1, "train/loss", loss))
                if step % 20 == 0:
                    valid = loss + 0.1
                    metrics += [(step, epoch, step * 0.1, "valid/loss", valid),
                                (step, epoch, step * 0.1, "valid/perplexity", math.exp(valid))]
            project.add_metrics(run_id, metrics)
            references = project.references_of()
            teacher_text = {o["id"]: o["completion"] for o in project.teacher_outputs(teacher)}
            preds = []
            for i, (ex, _t, _l) in enumerate(examples):
                split = ("train", "train", "valid", "test")[i % 4]
                if split not in ("valid", "test"):
                    continue
                slots = slots_of[ex]
                # some right, some half right, some wrong: the scores spread from low to 1
                if i % 3 == 0:
                    text = teacher_text[ex]
                elif i % 3 == 1:
                    text = f"{slots['name']} is a {slots['food']} restaurant in the riverside area."
                else:
                    text = f"The {slots['priceRange']} place is near the station."
                scores = score_completion(text, teacher=teacher_text[ex], references=references.get(ex, []))
                preds.append({"example": ex, "completion": text, "confidence": -0.2 - 0.1 * (i % 7),
                              "latency_ms": 30.0 + i, "scores": scores, "score": primary_score(scores)})
            project.save_predictions(run_id, preds)
            project.update_run(run_id, status="finished")
    return path, run_id
