"""What Claude is told and how its reply becomes an answer: one small class per task.

A prompt holds the system text (task instructions, labels with their descriptions, few-shot
examples; sent with ``cache_control: ephemeral`` so every request after the first reads it from
the prompt cache), the user message for one example, what makes the reply structured, and the
parse of the reply text into the answer fields of a ``TeacherOutput``:

- :class:`ClassificationPrompt`: JSON with the chosen ``label`` (an enum of the project's
  labels), a ``probabilities`` object with one number property per label and a one-line
  ``rationale``, through JSON outputs (``output_config.format``) or a forced tool call with the
  same schema. The API has no log-probabilities, so the soft label is the model's *verbalized*
  distribution, clipped to [1e-6, 1] and renormalised.
- :class:`GenerationPrompt`: the completion text, unstructured.

:func:`prompt_for` picks the class for the project's task; the rest of the teacher never asks
which task it serves.
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol

from kdstudio.core.errors import ConfigError
from kdstudio.core.teachers.base import TeacherContext

TOOL_NAME = "record_label"
PROMPT_VERSION = 1
MIN_PROB = 1e-6


class AnswerError(ValueError):
    """The reply holds no usable answer; the message is the failed row's reason."""


class Prompt(Protocol):
    method: str  #: stored with each plain answer (``verbalized``, ``completion``)
    default_max_tokens: int
    distribution: bool  #: answers are label distributions (k-sample mode applies)
    system_text: str

    def user_content(self, text: str) -> str: ...

    def structure(self, mode: str) -> dict[str, Any]:
        """Request parameters that shape the reply in output ``mode`` (json or tool)."""

    def overhead_chars(self) -> int:
        """Characters sent with every request besides the system text and the example."""

    def expected_output_tokens(self, max_tokens: int) -> int:
        """A typical answer's length, for the dry run's estimate."""

    def parse(self, text: str, blocks: list[Any]) -> dict[str, Any]:
        """``TeacherOutput`` fields from the reply's text and content blocks; AnswerError if unusable."""


class ClassificationPrompt:
    method = "verbalized"
    default_max_tokens = 512
    distribution = True

    def __init__(self, context: TeacherContext, few_shot: list[tuple[str, str]]) -> None:
        self.labels: list[str] = list(context.labels or [])
        if len(self.labels) < 2:
            raise ConfigError("a classification project needs at least two labels before Claude can label it")
        instructions = (context.instructions or "").strip()
        descriptions = context.descriptions or {}
        lines = ["You are a careful annotator for a text classification task."]
        if instructions:
            lines += ["", instructions]
        lines += ["", "The labels:"]
        for name in self.labels:
            desc = (descriptions.get(name) or "").strip()
            lines.append(f"- {name}: {desc}" if desc else f"- {name}")
        lines += [
            "",
            "The user gives one text between <text> tags. Answer with JSON only:",
            '- "label": the single best label, written exactly as above;',
            '- "probabilities": for every label, the probability (0 to 1) that it is the right one. '
            "They sum to 1 and show your real uncertainty: when the text is ambiguous, spread the "
            "probability over the plausible labels instead of answering 1 and 0;",
            '- "rationale": one short line saying why.',
        ]
        if few_shot:
            lines += ["", "Examples:"]
            for text, label in few_shot:
                lines.append(f"<example>\n<text>\n{text}\n</text>\n<label>{label}</label>\n</example>")
        self.system_text = "\n".join(lines)

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["label", "probabilities", "rationale"],
            "properties": {
                "label": {"type": "string", "enum": list(self.labels)},
                "probabilities": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": list(self.labels),
                    "properties": {name: {"type": "number"} for name in self.labels},
                },
                "rationale": {"type": "string", "description": "one short line"},
            },
        }

    def user_content(self, text: str) -> str:
        return f"<text>\n{text}\n</text>"

    def structure(self, mode: str) -> dict[str, Any]:
        if mode == "json":
            return {"output_config": {"format": {"type": "json_schema", "schema": self.schema()}}}
        return {
            "tools": [{
                "name": TOOL_NAME,
                "description": "Record the label, the probability of every label and a one-line rationale.",
                "input_schema": self.schema(),
                "strict": True,
            }],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }

    def overhead_chars(self) -> int:
        return len(json.dumps(self.schema()))

    def expected_output_tokens(self, max_tokens: int) -> int:
        return min(max_tokens, 40 + 10 * len(self.labels))

    def parse(self, text: str, blocks: list[Any]) -> dict[str, Any]:
        data: Any = next((b.input for b in blocks if getattr(b, "type", None) == "tool_use"
                          and getattr(b, "name", None) == TOOL_NAME), None)
        if data is None:
            try:
                data = json.loads(_strip_fences(text))
            except ValueError:
                raise AnswerError(f"invalid JSON in the answer: {text[:80]!r}") from None
        if not isinstance(data, dict):
            raise AnswerError(f"the answer is not a JSON object: {str(data)[:80]!r}")
        label = data.get("label")
        if label not in self.labels:
            raise AnswerError(f"unknown label {str(label)[:40]!r} (expected one of: {', '.join(self.labels)})")
        probs = probability_vector(data.get("probabilities"), self.labels)
        if probs is None:
            raise AnswerError("the answer has no probabilities")
        rationale = " ".join(str(data.get("rationale") or "").split())[:300] or None
        return {"probs": probs, "label": self.labels.index(label), "rationale": rationale, "method": self.method}


class GenerationPrompt:
    method = "completion"
    default_max_tokens = 1024
    distribution = False

    def __init__(self, context: TeacherContext, few_shot: list[tuple[str, str]]) -> None:
        instructions = (context.instructions or "").strip()
        parts = [instructions or "Respond to the text the user gives, as the task requires. "
                 "Answer with the response only."]
        for text, completion in few_shot:
            parts.append(f"<example>\n<input>\n{text}\n</input>\n<output>\n{completion}\n</output>\n</example>")
        self.system_text = "\n\n".join(parts)

    def user_content(self, text: str) -> str:
        return text

    def structure(self, mode: str) -> dict[str, Any]:
        return {}

    def overhead_chars(self) -> int:
        return 0

    def expected_output_tokens(self, max_tokens: int) -> int:
        return max(1, max_tokens // 2)

    def parse(self, text: str, blocks: list[Any]) -> dict[str, Any]:
        if not text.strip():
            raise AnswerError("empty completion")
        return {"completion": text, "method": self.method}


#: Project task → the prompt that serves it.
PROMPTS: dict[str, type[ClassificationPrompt] | type[GenerationPrompt]] = {
    "classification": ClassificationPrompt,
    "generation": GenerationPrompt,
}


def prompt_for(context: TeacherContext, few_shot: list[tuple[str, str]]) -> Prompt:
    """The prompt for the context's task."""
    if context.task not in PROMPTS:
        raise ConfigError(f"Claude teachers answer {' and '.join(PROMPTS)} tasks, not {context.task!r}")
    return PROMPTS[context.task](context, few_shot)


def renormalise(values: list[float]) -> list[float]:
    """Clip to [MIN_PROB, 1] and scale to sum 1."""
    clipped = [min(1.0, max(MIN_PROB, v)) for v in values]
    total = sum(clipped)
    return [v / total for v in clipped]


def probability_vector(probs: Any, labels: list[str]) -> list[float] | None:
    """The answer's probabilities in label order, renormalised; None when it names no label."""
    if isinstance(probs, list):  # [{"label": ..., "p": ...}] answers
        probs = {d.get("label"): d.get("p", d.get("probability")) for d in probs if isinstance(d, dict)}
    if not isinstance(probs, dict) or not any(name in probs for name in labels):
        return None
    values = []
    for name in labels:
        v = probs.get(name)
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = 0.0
        values.append(f if math.isfinite(f) else 0.0)
    return renormalise(values)


def _strip_fences(text: str) -> str:
    s = text.strip()
    if s.startswith("```"):
        s = s.split("\n", 1)[1] if "\n" in s else ""
        if s.rstrip().endswith("```"):
            s = s.rstrip()[:-3]
    return s.strip()
