from __future__ import annotations


class RunRequestError(ValueError):
    """A run that cannot be created: a binding, an input or a field is wrong. Nothing
    was stored or sent. ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message

    def as_dict(self) -> dict:
        return {"error": self.message, "field": self.field}
