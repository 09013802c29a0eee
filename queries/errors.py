from __future__ import annotations

from core.errors import KilnError


class RunRequestError(KilnError, ValueError):
    """A run that cannot be created: a binding, an input or a field is wrong. Nothing
    was stored or sent. ``field`` names what is wrong."""


class RunLimitError(RunRequestError):
    """A run refused by a rate limit (KILN_RUNS_PER_...): nothing was stored. Answered
    with HTTP 429."""

    status = 429
