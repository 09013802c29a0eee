"""The error a binding raises: it names the field and the expression."""

from __future__ import annotations

from typing import Any

from core.errors import KilnError


class BindingError(KilnError, ValueError):
    """A binding that cannot be evaluated; ``str()`` names the field and the expression."""

    def __init__(self, field: str, expression: str, message: str) -> None:
        super().__init__(field, message)
        self.expression = expression

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        if self.expression:
            text += f" in << {self.expression} >>"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles exceptions; the default would call __init__ with one argument.
        return (type(self), (self.field, self.expression, self.message))


class Refused(Exception):
    """Raised by the sandbox's hooks; turned into a BindingError naming the field."""
