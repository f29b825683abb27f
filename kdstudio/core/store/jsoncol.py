"""Reading the project file's JSON columns safely.

A project file may come from anywhere (a colleague, a download): a JSON column can hold text that is
not JSON, JSON of another type, numbers past a float or nesting deep enough to exhaust the parser.
Such a value reads as missing (an empty dict, None), never as a crash; nothing in it is ever run (JSON
only, and keys like ``__class__`` are plain keys).
"""

from __future__ import annotations

import json
import math
from typing import Any


def _parse(text: Any) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None


def json_dict(text: Any) -> dict[str, Any]:
    """The column's JSON object, or ``{}`` when it is not one."""
    value = _parse(text)
    return value if isinstance(value, dict) else {}


def json_dict_or_none(text: Any) -> dict[str, Any] | None:
    """The column's JSON object, or None when it is empty or not one."""
    value = _parse(text)
    return value if isinstance(value, dict) else None


def probabilities(text: Any) -> list[float] | None:
    """A stored probability vector: a JSON list of finite numbers, else None."""
    value = _parse(text)
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(p, (int, float)) and not isinstance(p, bool) and math.isfinite(p) for p in value):
        return None
    return [float(p) for p in value]
