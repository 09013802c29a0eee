"""Names that bindings read: widgets and queries are called by them (``form1.data``)."""

from __future__ import annotations

import keyword
import re

from django.core.exceptions import ValidationError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Names the binding context gives a meaning of its own, and Jinja's literals and operators.
RESERVED = {"user", "url", "app", "page", "true", "false", "none", "True", "False", "None"}
RESERVED |= {"and", "or", "not", "in", "is", "if", "else", "range", "loop", "self"}


def validate_identifier(value: str) -> None:
    if not IDENTIFIER.match(value or ""):
        raise ValidationError(
            f"“{value}” is not a valid name: use letters, digits and _, starting with a "
            "letter (e.g. send_welcome)."
        )
    if value in RESERVED or keyword.iskeyword(value):
        raise ValidationError(f"“{value}” is reserved; choose another name.")
