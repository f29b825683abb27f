"""Cells a spreadsheet opens as text, never as a formula (CSV injection).

Every CSV KD Studio writes for a person to open (the comparison and teacher exports, a plot's data)
passes each cell through :func:`formula_safe`: a text that starts with ``= + - @``, a tab or a carriage
return gets a leading apostrophe, which spreadsheets show as text and do not run. Numbers are left
as numbers (a negative number is not a formula), so pass numeric values unformatted.
"""

from __future__ import annotations

from typing import Any

#: What a spreadsheet may read as the start of a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(cell: Any) -> Any:
    """``cell`` with a leading apostrophe when it is text starting with one of ``FORMULA_PREFIXES``;
    any other value (numbers, None, other text) is returned unchanged."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell
