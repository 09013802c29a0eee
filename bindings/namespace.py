"""The binding namespace: which names a ``<< >>`` expression can read, and which names a
builder may give a widget or a query.

In scope on a page: every widget by its name, every query by its name (with
``QUERY_KEYS``), and the ``CONTEXT_NAMES`` the context gives a meaning of its own. The
binding context itself is built by queries.context; the editor's warnings and
suggestions read the same lists from here.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable

#: A widget's or a query's name: what bindings call it by (``form1``, ``send_welcome``).
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: Names every binding can read besides widgets and queries.
CONTEXT_NAMES = ("user", "url", "app", "page")
#: Paths under the context names, for the editor's suggestions.
CONTEXT_PATHS = (
    "user.anonymous",
    "user.email",
    "user.name",
    "user.username",
    "app.name",
    "app.slug",
    "page.name",
    "page.slug",
)
#: Names the fields of a mail merge's query read besides those: the row being sent and
#: its position (0-based). Only in a merge: elsewhere they are unknown names.
MERGE_NAMES = ("row", "index")
#: What ``<< query_name.x >>`` has: the latest run's outcome and the user's recent runs,
#: and for a mail merge its progress (None for a query that is not one).
QUERY_KEYS = ("data", "error", "status", "last_run_at", "send_at", "runs", "progress")
#: Names a widget or query may not take: the context's own, Jinja's literals and operators.
RESERVED = frozenset(
    {*CONTEXT_NAMES, "true", "false", "none", "True", "False", "None"}
    | {"and", "or", "not", "in", "is", "if", "else", "range", "loop", "self"}
)


def identifier_problem(value: str) -> str | None:
    """Why ``value`` cannot name a widget or a query, or None if it can."""
    if not IDENTIFIER.match(value or ""):
        return (
            f"“{value}” is not a valid name: use letters, digits and _, starting with a "
            "letter (e.g. send_welcome)."
        )
    if value in RESERVED or keyword.iskeyword(value):
        return f"“{value}” is reserved; choose another name."
    return None


def names_in_scope(
    widgets: Iterable[str], queries: Iterable[str], *, merge: bool = False
) -> frozenset[str]:
    """Every top-level name a binding on a page with these widgets and queries can read;
    with ``merge``, in the fields of a mail merge's query, ``row`` and ``index`` too."""
    return frozenset({*widgets, *queries, *CONTEXT_NAMES, *(MERGE_NAMES if merge else ())})
