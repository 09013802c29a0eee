"""The page a locked-out sign-in gets (django-axes calls ``locked_out``)."""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def cooloff_minutes() -> int:
    """The cool-off as whole minutes, rounded up (at least 1)."""
    seconds = settings.AXES_COOLOFF_TIME.total_seconds()
    return max(1, math.ceil(seconds / 60))


def locked_out(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    context = {"limit": settings.AXES_FAILURE_LIMIT, "minutes": cooloff_minutes()}
    return render(request, "registration/locked_out.html", context, status=429)
