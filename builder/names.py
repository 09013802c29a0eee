"""Widget and query names, checked as Django validators (the rules: bindings.namespace)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from bindings.namespace import identifier_problem


def validate_identifier(value: str) -> None:
    problem = identifier_problem(value)
    if problem is not None:
        raise ValidationError(problem)
