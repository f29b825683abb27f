"""Export a generation student (a causal language model) as a Hugging Face folder that
``transformers.pipeline("text-generation", model=DIR)`` loads and that writes what KD Studio wrote.

The folder holds the model's ``config.json`` and weights, the tokenizer files, and
``generation_config.json`` with :func:`~kdstudio.core.generate.generation_settings` for the
student's ``max_new_tokens`` (greedy, one beam, stop at end-of-text), so a pipeline decodes with
KD Studio's settings without being told them. :func:`pipeline_parity` checks it: on a sample of
test prompts laid out with the student's template, ``pipeline(prompt, return_full_text=False)``
must give the text :func:`~kdstudio.core.generate.generate` gives.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.generate import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPLATE

#: Test prompts the parity check runs on.
PARITY_PROMPTS = 8


def student_template(meta: dict[str, Any]) -> str:
    """The prompt template a causal student was trained with."""
    return meta.get("template") or DEFAULT_TEMPLATE


def student_max_new_tokens(meta: dict[str, Any]) -> int:
    return int(meta.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)


def write_generation_hf(folder: Path, meta: dict[str, Any], out: Path) -> None:
    """Model, tokenizer and ``generation_config.json`` of the student in ``folder``, into ``out``."""
    from transformers import GenerationConfig

    from kdstudio.core.generate import generation_settings
    from kdstudio.core.students.tokenizer import load_tokenizer

    for sub in ("model", "tokenizer"):
        for f in (folder / sub).iterdir():
            if f.is_file():
                shutil.copy2(f, out / f.name)
    tokenizer = load_tokenizer(folder / "tokenizer")
    settings = generation_settings(tokenizer, student_max_new_tokens(meta))
    (out / "generation_config.json").unlink(missing_ok=True)
    GenerationConfig(**settings).save_pretrained(str(out))


def parity_prompts(project: Any, limit: int = PARITY_PROMPTS) -> list[str]:
    """Up to ``limit`` prompts to check the export on: the test split's first, then any."""
    prompts = [t for _, t, _ in project.examples("test")][:limit]
    if len(prompts) < limit:
        prompts += [t for _, t, _ in project.examples()][: limit - len(prompts)]
    return prompts or ["a short prompt"]


def pipeline_parity(out: Path, folder: Path, meta: dict[str, Any], prompts: Sequence[str]) -> dict[str, Any]:
    """Run ``transformers.pipeline("text-generation", model=out)`` on ``prompts`` (formatted with the
    student's template, ``return_full_text=False``, no decoding settings passed: the folder's
    ``generation_config.json`` supplies them) and compare with KD Studio's ``generate`` on the
    student: ``{"checked_examples": n, "identical": k, "first_difference": (prompt, ours, theirs) | None}``."""
    from transformers import pipeline

    from kdstudio.core.generate import format_prompt, generate_all
    from kdstudio.core.students import load_student
    from kdstudio.core.students.pretrained import quiet_hf

    template, max_new = student_template(meta), student_max_new_tokens(meta)
    model, tokenizer, _ = load_student(folder, device="cpu")
    ours = [c.text for c in generate_all(model, tokenizer, prompts, template=template, max_new_tokens=max_new)]
    with quiet_hf():
        pipe = pipeline("text-generation", model=str(out), device="cpu", trust_remote_code=False)
    theirs = [pipe(format_prompt(p, template), return_full_text=False)[0]["generated_text"].strip() for p in prompts]
    same = [a == b for a, b in zip(ours, theirs, strict=True)]
    first = next(((p, a, b) for p, a, b, s in zip(prompts, ours, theirs, same, strict=True) if not s), None)
    return {"checked_examples": len(prompts), "identical": sum(same), "first_difference": first}


__all__ = ["PARITY_PROMPTS", "parity_prompts", "pipeline_parity", "student_max_new_tokens", "student_template",
           "write_generation_hf"]
