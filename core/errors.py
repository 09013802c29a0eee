"""The one error base: every error Kiln shows a user names what is wrong (``field``) and
says why (``message``), so any layer can report any other layer's error the same way."""

from __future__ import annotations


class KilnError(Exception):
    """An error to show as it is. ``field`` names the input at fault ("to",
    "pages[0].widgets[2].name", "test_values"), or is empty when none is."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field or ""
        self.message = message

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}
