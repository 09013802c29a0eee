"""System checks: Celery and outbox times that do not nest, and scheduled-send limits
that make no sense.

The outbox sends a run at most once because three clocks agree (docs/reliability.md):
Redis must not hand a task to a second worker while the first may still run it, Celery
must stop a task before that, and the sweep must not call a run "unknown" while its
worker may still be sending it. Each pair that disagrees is one Error naming both
settings, so a deployment that shortens one time learns what else to shorten.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.checks import Error, register

VISIBILITY = (
    "CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'] (KILN_BROKER_VISIBILITY_TIMEOUT)"
)
HARD = "CELERY_TASK_TIME_LIMIT (KILN_TASK_TIME_LIMIT)"
SOFT = "CELERY_TASK_SOFT_TIME_LIMIT (KILN_TASK_SOFT_TIME_LIMIT)"
LONGEST_RUN = "KILN_RUN_TIMEOUT_MAX_SECONDS"
STUCK = "KILN_RUN_STUCK_SECONDS"
#: How much of the visibility timeout a task's countdown may use (queries.tasks).
ETA_SHARE = 0.9


@dataclass(frozen=True)
class Times:
    """The times that must nest, in seconds; None where a setting is missing."""

    visibility: float | None
    hard: float | None
    soft: float | None
    longest_run: float | None
    stuck: float | None

    @classmethod
    def from_settings(cls) -> Times:
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
        return cls(
            visibility=options.get("visibility_timeout"),
            hard=getattr(settings, "CELERY_TASK_TIME_LIMIT", None),
            soft=getattr(settings, "CELERY_TASK_SOFT_TIME_LIMIT", None),
            longest_run=getattr(settings, "KILN_RUN_TIMEOUT_MAX_SECONDS", None),
            stuck=getattr(settings, "KILN_RUN_STUCK_SECONDS", None),
        )


def problems(times: Times) -> list[Error]:
    """Every rule the times break, as an Error naming the settings and their values."""
    errors: list[Error] = []
    required = {
        VISIBILITY: times.visibility,
        HARD: times.hard,
        SOFT: times.soft,
        LONGEST_RUN: times.longest_run,
        STUCK: times.stuck,
    }
    for name, value in required.items():
        if value is None or value <= 0:
            errors.append(
                Error(
                    f"{name} must be set to a number of seconds above 0 (it is {value!r}): "
                    "without it a task may be delivered twice or a run be left sending.",
                    id="queries.E001",
                )
            )
    if errors:
        return errors

    def rule(ok: bool, message: str, hint: str, code: str) -> None:
        if not ok:
            errors.append(Error(message, hint=hint, id=code))

    rule(
        times.visibility > times.hard,
        f"{VISIBILITY} = {times.visibility:g} s must be greater than {HARD} = "
        f"{times.hard:g} s: Redis would hand a task still running to a second worker.",
        "Raise the visibility timeout or lower the time limit.",
        "queries.E002",
    )
    rule(
        times.hard > times.soft,
        f"{HARD} = {times.hard:g} s must be greater than {SOFT} = {times.soft:g} s: the "
        "soft limit lets the task record its outcome before the hard limit kills it.",
        "Leave some seconds between the two limits.",
        "queries.E003",
    )
    rule(
        times.soft >= times.longest_run,
        f"{SOFT} = {times.soft:g} s must be at least {LONGEST_RUN} = "
        f"{times.longest_run:g} s: a run within its own timeout would be cut short.",
        "Raise the soft time limit or lower the longest run timeout allowed.",
        "queries.E004",
    )
    rule(
        times.stuck > times.hard,
        f"{STUCK} = {times.stuck:g} s must be greater than {HARD} = {times.hard:g} s: the "
        "sweep would mark a run unknown while its worker may still be sending it.",
        "Raise KILN_RUN_STUCK_SECONDS or lower the time limit.",
        "queries.E005",
    )
    return errors


@register()
def check_delivery_times(app_configs, **kwargs) -> list[Error]:
    return problems(Times.from_settings())


def send_at_problems(max_days, slack) -> list[Error]:
    """The limits of a scheduled send (queries/schedule.py) that make no sense."""
    errors = []
    if not isinstance(max_days, int) or max_days < 1:
        errors.append(
            Error(
                f"KILN_SEND_AT_MAX_DAYS must be a whole number of days, at least 1 (it is "
                f"{max_days!r}): no run could be scheduled.",
                id="queries.E006",
            )
        )
    if not isinstance(slack, int) or slack < 0:
        errors.append(
            Error(
                f"KILN_SEND_AT_PAST_SLACK_SECONDS must be a whole number of seconds, 0 or "
                f"more (it is {slack!r}).",
                id="queries.E007",
            )
        )
    return errors


@register()
def check_send_at_limits(app_configs, **kwargs) -> list[Error]:
    return send_at_problems(
        getattr(settings, "KILN_SEND_AT_MAX_DAYS", None),
        getattr(settings, "KILN_SEND_AT_PAST_SLACK_SECONDS", None),
    )


def retry_problems(base, cap, window, attempts, visibility=None) -> list[Error]:
    """A retry schedule (queries/outbox.py ``backoff``) that makes no sense: no delay
    before a retry (a server that greylists is hammered), a cap below the first delay,
    a negative window, or no attempt at all. A retry is a task with a countdown, so its
    longest delay must stay within the broker's ``visibility`` timeout, with the margin
    scheduled sends keep (queries.tasks ``eta_horizon``): Redis hands a task it has held
    longer to a second worker."""
    horizon = visibility * ETA_SHARE if isinstance(visibility, (int, float)) else None
    rules = [
        (
            isinstance(base, (int, float)) and base > 0,
            f"KILN_RUN_RETRY_BASE_SECONDS must be above 0 (it is {base!r}).",
        ),
        (
            isinstance(cap, (int, float)) and isinstance(base, (int, float)) and cap >= base,
            f"KILN_RUN_RETRY_MAX_SECONDS ({cap!r}) must be at least "
            f"KILN_RUN_RETRY_BASE_SECONDS ({base!r}).",
        ),
        (
            isinstance(window, int) and window >= 0,
            f"KILN_RUN_RETRY_WINDOW_SECONDS must be a whole number of seconds, 0 or more "
            f"(it is {window!r}).",
        ),
        (
            isinstance(attempts, int) and attempts >= 1,
            f"KILN_RUN_MAX_ATTEMPTS must be a whole number, at least 1 (it is {attempts!r}).",
        ),
        (
            horizon is None or not isinstance(cap, (int, float)) or cap < horizon,
            f"KILN_RUN_RETRY_MAX_SECONDS ({cap!r}) must be below 90% of {VISIBILITY} "
            f"({visibility!r}): a retry delayed longer would be handed to a second worker.",
        ),
    ]
    return [Error(message, id="queries.E008") for ok, message in rules if not ok]


@register()
def check_retry_schedule(app_configs, **kwargs) -> list[Error]:
    return retry_problems(
        getattr(settings, "KILN_RUN_RETRY_BASE_SECONDS", None),
        getattr(settings, "KILN_RUN_RETRY_MAX_SECONDS", None),
        getattr(settings, "KILN_RUN_RETRY_WINDOW_SECONDS", None),
        getattr(settings, "KILN_RUN_MAX_ATTEMPTS", None),
        Times.from_settings().visibility,
    )
