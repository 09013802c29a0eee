"""Errors a datasource plugin raises. Each says whether trying again could help.

Messages are shown to users as they are: they name the field and the problem, and never
hold a secret.
"""

from __future__ import annotations

from core.errors import KilnError

#: The most characters of a value an error message quotes: enough to recognise it, and
#: a 5 MB subject gives an error of a line, not of 5 MB.
QUOTED = 80


def quoted(value: object, limit: int = QUOTED) -> str:
    """``value`` as an error message quotes it: its repr, cut after ``limit``
    characters with an ellipsis."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class PluginError(KilnError):
    """A failure to report. ``permanent`` errors must not be retried."""

    permanent = True

    def __init__(self, message: str, *, field: str | None = None, code: str = "error"):
        super().__init__(field, message)
        self.code = code

    def as_dict(self) -> dict[str, str]:
        return {**super().as_dict(), "code": self.code}


class FieldError(PluginError, ValueError):
    """A field's value is invalid; nothing was sent."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field, code="invalid")


class TransientError(PluginError):
    """The server or the network failed in a way that may pass: retry with backoff."""

    permanent = False


class DeliveryUnknown(PluginError):
    """The connection was lost after the message was handed over; it may have been
    delivered. Never retried automatically: a person decides."""

    def __init__(self, message: str):
        super().__init__(message, code="unknown")
