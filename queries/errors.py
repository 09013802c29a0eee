from __future__ import annotations

from core.errors import KilnError


class RunRequestError(KilnError, ValueError):
    """A run that cannot be created: a binding, an input or a field is wrong. Nothing
    was stored or sent. ``field`` names what is wrong."""
