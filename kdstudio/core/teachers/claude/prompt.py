"""What Claude is told and how its reply becomes an answer: one small class per task.

A prompt holds the system text (task instructions, labels with their descriptions, few-shot
examples; sent with ``cache_control: ephemeral`` so every request after the first reads it from
the prompt cache when it is long enough for the model to cache), the user message for one
example, what makes the reply structured, how long a reply can be, and the parse of the reply text
into the answer fields of a ``TeacherOutput``:

- :class:`ClassificationPrompt`: JSON through JSON outputs (``output_config.format``) or a forced
  tool call with the same schema. The API has no log-probabilities, so the soft label is the
  model's *verbalized* distribution. Its length must not grow with the label set (output tokens
  cost five times input ones, and 77 spelled-out probabilities are ~700 tokens), so:

  * up to ``FULL_UP_TO`` labels the answer gives every label's probability (``label``,
    ``probabilities`` with one number property per label, ``rationale``);
  * above that it gives the ``top_k`` most likely labels, most likely first, with their
    probabilities (``labels``, ``probs``, ``rationale``; K = ``TOP_K`` unless the ``top_k``
    option says otherwise). The first label is the answer. The probability the answer leaves
    over (1 minus the named ones' sum) is spread evenly over the labels it did not name; when the
    named ones already sum to 1 or more, they are scaled down and the others get ``MIN_PROB``.

  In a full answer the labels written as 0 (most of them: models write two decimals) are treated
  like the labels a top-K answer does not name: they share the leftover mass evenly. Every
  distribution is clipped to [MIN_PROB, 1] and renormalised.
- :class:`GenerationPrompt`: the completion text, unstructured.

``max_tokens`` follows from the schema: the longest valid answer (every named label the longest
one, every probability written with 4 decimals, a ``RATIONALE_CHARS`` rationale) at a cautious
``CHARS_PER_TOKEN`` characters a token, plus a margin, plus room for thinking on models that
always think. :func:`prompt_for` picks the class for the project's task; the rest of the teacher
never asks which task it serves.
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol

from kdstudio.core.errors import ConfigError
from kdstudio.core.teachers.base import TeacherContext

TOOL_NAME = "record_label"
PROMPT_VERSION = 2
MIN_PROB = 1e-6
FULL_UP_TO = 10  #: label sets up to this size: every label's probability in the answer
TOP_K = 5  #: larger sets: the K most likely labels (measured in tests/bench/bench_claude_answers.py)
RATIONALE_CHARS = 200  #: the longest rationale ``max_tokens`` makes room for (asked for: one short line)
CHARS_PER_TOKEN = 2.5  #: cautious: JSON with label names is 3–4 characters a token
TOKEN_MARGIN = 24
THINKING_TOKENS = 1024  #: room for thinking (effort low) on models that always think


class AnswerError(ValueError):
    """The reply holds no usable answer; the message is the failed row's reason."""


class Prompt(Protocol):
    method: str  #: stored with each plain answer (``verbalized``, ``completion``)
    distribution: bool  #: answers are label distributions (k-sample mode applies)
    system_text: str

    def settings(self) -> dict[str, Any]:
        """What shapes the answer, for the teacher's settings (a change makes a new teacher)."""

    def user_content(self, text: str) -> str: ...

    def structure(self, mode: str) -> dict[str, Any]:
        """Request parameters that shape the reply in output ``mode`` (json or tool)."""

    def overhead_chars(self) -> int:
        """Characters sent with every request besides the system text and the example."""

    def max_tokens(self, *, thinking: bool) -> int:
        """The output limit that fits the longest valid answer, with a margin."""

    def typical_answer(self) -> str:
        """A reply of typical length, for the dry run's output-token estimate."""

    def parse(self, text: str, blocks: list[Any]) -> dict[str, Any]:
        """``TeacherOutput`` fields from the reply's text and content blocks; AnswerError if unusable."""


def _limit(longest_answer: str, thinking: bool) -> int:
    return math.ceil(len(longest_answer) / CHARS_PER_TOKEN) + TOKEN_MARGIN + (THINKING_TOKENS if thinking else 0)


class ClassificationPrompt:
    method = "verbalized"
    distribution = True

    def __init__(self, context: TeacherContext, few_shot: list[tuple[str, str]]) -> None:
        self.labels: list[str] = list(context.labels or [])
        if len(self.labels) < 2:
            raise ConfigError("a classification project needs at least two labels before Claude can label it")
        n = len(self.labels)
        requested = (context.options or {}).get("top_k")
        if requested is None:
            k = n if n <= FULL_UP_TO else TOP_K
        else:
            k = int(requested)
            if k < 0:
                raise ConfigError(f"top_k must be 0 (every label) or a number of labels, not {k}")
            k = n if k == 0 or k >= n else k
        self.top_k = k
        self.full = k >= n
        instructions = (context.instructions or "").strip()
        descriptions = context.descriptions or {}
        lines = ["You are a careful annotator for a text classification task."]
        if instructions:
            lines += ["", instructions]
        lines += ["", "The labels:"]
        for name in self.labels:
            desc = (descriptions.get(name) or "").strip()
            lines.append(f"- {name}: {desc}" if desc else f"- {name}")
        lines += ["", "The user gives one text between <text> tags. Answer with JSON only:"]
        if self.full:
            lines += [
                '- "label": the single best label, written exactly as above;',
                '- "probabilities": for every label, the probability (0 to 1) that it is the right one. '
                "They sum to 1 and show your real uncertainty: when the text is ambiguous, spread the "
                "probability over the plausible labels instead of answering 1 and 0;",
            ]
        else:
            lines += [
                f'- "labels": the {k} most likely labels, most likely first, each written exactly as above;',
                f'- "probs": the probability (0 to 1) that each of those {k} labels is the right one, in the same '
                "order. Show your real uncertainty: when the text is ambiguous, spread the probability over the "
                "plausible labels instead of answering 1 and 0. What is left over (1 minus their sum) is the "
                "probability of all the other labels together;",
            ]
        lines.append('- "rationale": one short line (at most 15 words) saying why.')
        if few_shot:
            lines += ["", "Examples:"]
            for text, label in few_shot:
                lines.append(f"<example>\n<text>\n{text}\n</text>\n<label>{label}</label>\n</example>")
        self.system_text = "\n".join(lines)

    def settings(self) -> dict[str, Any]:
        return {"answer": "full" if self.full else f"top-{self.top_k}"}

    def schema(self) -> dict[str, Any]:
        rationale = {"type": "string", "description": "one short line"}
        if self.full:
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
                    "rationale": rationale,
                },
            }
        k = self.top_k
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["labels", "probs", "rationale"],
            "properties": {
                "labels": {"type": "array", "minItems": 1,
                           "description": f"the {k} most likely labels, most likely first",
                           "items": {"type": "string", "enum": list(self.labels)}},
                "probs": {"type": "array", "minItems": 1,
                          "description": f"the probability of each of the {k} labels, in the same order",
                          "items": {"type": "number"}},
                "rationale": rationale,
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
                "description": "Record the most likely labels with their probabilities and a one-line rationale.",
                "input_schema": self.schema(),
                "strict": True,
            }],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }

    def overhead_chars(self) -> int:
        return len(json.dumps(self.schema()))

    def _answer(self, named: list[str], prob: str, rationale: str) -> str:
        if self.full:
            body = ", ".join(f'"{name}": {prob}' for name in self.labels)
            return f'{{"label": "{named[0]}", "probabilities": {{{body}}}, "rationale": "{rationale}"}}'
        names = ", ".join(f'"{name}"' for name in named)
        probs = ", ".join([prob] * len(named))
        return f'{{"labels": [{names}], "probs": [{probs}], "rationale": "{rationale}"}}'

    def max_tokens(self, *, thinking: bool) -> int:
        longest = sorted(self.labels, key=len, reverse=True)[: self.top_k]
        return _limit(self._answer(longest, "0.0001", "x" * RATIONALE_CHARS), thinking)

    def typical_answer(self) -> str:
        mean = round(sum(len(n) for n in self.labels) / len(self.labels))
        by_length = sorted(self.labels, key=lambda n: abs(len(n) - mean))
        return self._answer(by_length[: self.top_k], "0.05",
                            "The text asks about this directly, so it matches the first label best.")

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
        if "labels" in data or "probs" in data:
            label, probs = self._parse_top(data)
        else:
            label = data.get("label")
            if label not in self.labels:
                raise AnswerError(f"unknown label {str(label)[:40]!r} (expected one of: {self._names()})")
            given = data.get("probabilities")
            if not isinstance(given, dict) or not any(name in given for name in self.labels):
                raise AnswerError("the answer has no probabilities")
            # labels written as 0 (most of them, at two decimals) share what the others leave, as
            # the labels a top-K answer does not name do
            named = {name: p for name in self.labels if (p := _number(given.get(name))) > 0}
            probs = spread_rest(named, self.labels)
        rationale = " ".join(str(data.get("rationale") or "").split())[:300] or None
        return {"probs": probs, "label": self.labels.index(label), "rationale": rationale, "method": self.method}

    def _names(self) -> str:
        shown = ", ".join(self.labels[:12])
        return shown + (f" and {len(self.labels) - 12} more" if len(self.labels) > 12 else "")

    def _parse_top(self, data: dict[str, Any]) -> tuple[str, list[float]]:
        names, values = data.get("labels"), data.get("probs")
        if not isinstance(names, list) or not names:
            raise AnswerError("the answer names no labels")
        if not isinstance(values, list) or not values:
            raise AnswerError("the answer has no probabilities")
        named: dict[str, float] = {}
        for name, value in zip(names, values, strict=False):
            if name not in self.labels:
                raise AnswerError(f"unknown label {str(name)[:40]!r} (expected one of: {self._names()})")
            if name not in named:
                named[name] = _number(value)
        return names[0], spread_rest(named, self.labels)


def spread_rest(named: dict[str, float], labels: list[str]) -> list[float]:
    """A distribution over ``labels`` from the probabilities of some of them: the named ones as
    given (clipped to [0, 1]), the mass left over spread evenly over the rest (see the module
    docstring), clipped to [MIN_PROB, 1] and renormalised."""
    clipped = {name: min(1.0, max(0.0, p)) for name, p in named.items()}
    others = [name for name in labels if name not in clipped]
    rest = max(0.0, 1.0 - sum(clipped.values()))
    share = rest / len(others) if others else 0.0
    return renormalise([clipped.get(name, share) for name in labels])


def _number(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) else 0.0


class GenerationPrompt:
    method = "completion"
    distribution = False
    default_max_tokens = 1024

    def __init__(self, context: TeacherContext, few_shot: list[tuple[str, str]]) -> None:
        instructions = (context.instructions or "").strip()
        parts = [instructions or "Respond to the text the user gives, as the task requires. "
                 "Answer with the response only."]
        for text, completion in few_shot:
            parts.append(f"<example>\n<input>\n{text}\n</input>\n<output>\n{completion}\n</output>\n</example>")
        self.system_text = "\n\n".join(parts)

    def settings(self) -> dict[str, Any]:
        return {}

    def user_content(self, text: str) -> str:
        return text

    def structure(self, mode: str) -> dict[str, Any]:
        return {}

    def overhead_chars(self) -> int:
        return 0

    def max_tokens(self, *, thinking: bool) -> int:
        return self.default_max_tokens + (THINKING_TOKENS if thinking else 0)

    def typical_answer(self) -> str:
        return "x" * (self.default_max_tokens * 2)  # half the limit at ~4 characters a token

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


def _strip_fences(text: str) -> str:
    s = text.strip()
    if s.startswith("```"):
        s = s.split("\n", 1)[1] if "\n" in s else ""
        if s.rstrip().endswith("```"):
            s = s.rstrip()[:-3]
    return s.strip()
