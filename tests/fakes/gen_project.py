"""A toy generation project built with the store's APIs: E2E-like meaning representations
(``name[Cotto], food[Italian], area[riverside]``) with two references each, and a teacher whose
completions follow one fixed pattern, so a tiny student learns it in a few steps.

``build_gen_project(path)`` returns ``(path, teacher_id)``; ``teacher_spec`` names the teacher
(``lm:FOLDER`` for a local causal LM, whose completions are then stored as its answers).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

NAMES = ["Alimentum", "Cotto", "Zizzi", "Aromi", "Giraffe", "Strada"]
FOODS = ["Chinese", "English", "French", "Italian"]
AREAS = ["riverside", "city centre"]


def meaning(name: str, food: str, area: str) -> str:
    return f"name[{name}], food[{food}], area[{area}]"


def teacher_text(name: str, food: str, area: str) -> str:
    return f"{name} serves {food} food in the {area}."


def references(name: str, food: str, area: str) -> list[str]:
    return [f"{name} is a {food} place in the {area}.", f"In the {area}, {name} serves {food} food."]


def gen_texts() -> list[str]:
    """Every prompt, teacher completion and reference of the toy project (for a tokenizer)."""
    out = []
    for combo in itertools.product(NAMES, FOODS, AREAS):
        out += [meaning(*combo), teacher_text(*combo), *references(*combo)]
    return out


def build_gen_project(path: str | Path, *, teacher_spec: str | None = "fake:writer", seed: int = 0,
                      sizes: dict[str, int] | None = None) -> tuple[Path, int | None]:
    """A generation project at ``path``: the 48 meaning representations shuffled into ``sizes``
    (default 32 train, 8 valid, 8 test), two references each, and a teacher's completion for every
    prompt (none when ``teacher_spec`` is None)."""
    from kdstudio.core.store import Project, TeacherOutput

    sizes = sizes or {"train": 32, "valid": 8, "test": 8}
    combos = list(itertools.product(NAMES, FOODS, AREAS))
    random.Random(seed).shuffle(combos)
    path = Path(path)
    project = Project.create(path, "generation")
    rows, refs, split_of = [], [], {}
    start = 0
    for split, n in sizes.items():
        for i, combo in enumerate(combos[start : start + n]):
            text = meaning(*combo)
            digest = hashlib.sha256(text.encode()).hexdigest()
            rows.append((text, None, None, split, "toy", i + 1, digest))
            refs += [(split, digest, r) for r in references(*combo)]
            split_of[text] = combo
        start += n
    with project.transaction():
        project.insert_examples(rows)
        project.add_references(refs)
    teacher_id = None
    if teacher_spec is not None:
        kind, _, model = teacher_spec.partition(":")
        teacher_id = project.upsert_teacher(teacher_spec, kind, model,
                                            hashlib.sha256(teacher_spec.encode()).hexdigest()[:16], {})
        project.save_outputs(teacher_id, [
            TeacherOutput(example=ex, completion=teacher_text(*split_of[text]), method="greedy")
            for ex, text, _ in project.examples()
        ])
    project.close()
    return path, teacher_id
