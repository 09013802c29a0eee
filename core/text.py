"""Truth as people type it: the one text -> bool parser of Kiln (settings, widget
properties, query fields, posted checkboxes)."""

from __future__ import annotations

from typing import Any

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0", "", "none", "null"})


def parse_bool(value: Any) -> bool | None:
    """True or False for a truth word (any case, spaces around) or a non-text value;
    None for text that is neither (``"maybe"``), so the caller can refuse it."""
    if value is None:
        return False
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        return None
    return bool(value)


def as_bool(value: Any, *, unknown: bool = True) -> bool:
    """Like ``parse_bool``, with ``unknown`` for text that is no truth word: a widget
    property reads any other text as true (as JavaScript does), a query flag as false."""
    parsed = parse_bool(value)
    return unknown if parsed is None else parsed
