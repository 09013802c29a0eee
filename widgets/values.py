"""How widget values become text and numbers: one rule for every widget, so that a
table cell, a Text widget and a property read the same way."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_number(value: Any) -> int | float | None:
    """A number from a posted or typed value; ``None`` if it is not one.

    Integers stay ``int`` ("42" -> 42) so that bindings print them without ".0"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    text = str(value if value is not None else "").strip()
    if not _NUMBER.match(text):
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    number = float(text)
    return number if math.isfinite(number) else None


def format_number(value: int | float) -> str:
    """5 -> "5", 5.0 -> "5", 2.5 -> "2.5"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def display_text(value: Any) -> str:
    """A value as the text a user sees: nothing for None, true/false for booleans,
    compact JSON for lists and dicts, a file's name for a file."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)
