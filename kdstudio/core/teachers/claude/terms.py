"""What Anthropic's terms say about distilling Claude, in the one line the app shows wherever a
student learns from Claude's outputs (the new-project wizard, the model card of an export)."""

from __future__ import annotations

#: Shown once, as is, wherever Claude is (or was) a student's teacher.
CLAUDE_TERMS_NOTE = (
    "Anthropic's terms do not allow using Claude's outputs to train models that compete with Claude; "
    "task-specific students, like the ones KD Studio distils, are the intended use."
)


def is_claude_spec(spec: str | None) -> bool:
    """Whether a teacher spec names Claude (``claude:MODEL``)."""
    return bool(spec) and spec.startswith("claude:")


__all__ = ["CLAUDE_TERMS_NOTE", "is_claude_spec"]
