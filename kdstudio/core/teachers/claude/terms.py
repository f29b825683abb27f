"""What Anthropic's terms say about training on Claude's outputs, in the one line the wizard, the
harvest and every model card of a Claude-taught student show."""

CLAUDE_TERMS_LINE = (
    "Anthropic's terms do not allow using Claude's outputs to train models that compete with Claude; "
    "task-specific students like this one are the intended use."
)


def teaches_with_claude(teacher_spec: str | None) -> bool:
    """Whether a teacher spec names Claude (``claude:MODEL``)."""
    return bool(teacher_spec) and str(teacher_spec).startswith("claude:")


__all__ = ["CLAUDE_TERMS_LINE", "teaches_with_claude"]
