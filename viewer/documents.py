"""Published versions as the viewer reads them: each parsed once per process, with what
its pages' bindings are worked out once too.

A version is never changed once published (builder.publishing makes a new one), so its
typed document can serve every request that follows; the version found with the app
(builder.publishing.with_published) says which one is current, so a new publish shows
at once. The document is shared by the requests of a process: the runtime only reads
it. The key holds the version's publication time beside its id, since a test database
rolled back can give a later version the same id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from bindings import is_literal, referenced_names
from builder.models import App, AppVersion
from builder.schema import AppDocument, PageDocument

#: How many published versions a process keeps parsed (the least recently used go).
CACHED_VERSIONS = 32


@dataclass(frozen=True)
class PagePlan:
    """What a page's bindings are, from its document alone.

    ``literal``: the (widget, property) pairs holding no binding, whose value is the
    property itself (a table's 1,000 literal rows are not walked on every request).
    ``reads``: the top-level names that the page's properties and event actions read:
    the only queries whose runs a request of the page loads (queries.context)."""

    literal: frozenset[tuple[str, str]]
    reads: frozenset[str]


def plan_page(page: PageDocument) -> PagePlan:
    literal: set[tuple[str, str]] = set()
    reads: set[str] = set()
    for widget in page.widgets:
        for prop, raw in widget.properties.items():
            if is_literal(raw):
                literal.add((widget.name, prop))
            else:
                # A binding that does not compile reads nothing: evaluating it says why.
                reads |= referenced_names(raw, skip_errors=True)
        reads |= referenced_names(widget.events, skip_errors=True)
    return PagePlan(literal=frozenset(literal), reads=frozenset(reads))


@dataclass
class Published:
    """A published version's document, and the plans of its pages as they are opened."""

    document: AppDocument
    plans: dict[str, PagePlan] = field(default_factory=dict)


_VERSIONS: OrderedDict[tuple[int, Any], Published] = OrderedDict()
_LOCK = threading.Lock()


def published_version(app: App) -> Published | None:
    """The published version of ``app`` (found by builder.publishing.with_published),
    parsed, or None when there is none. Raises pydantic's ValidationError when the
    stored document cannot be read (nothing is kept then)."""
    version_id = getattr(app, "published_version_id", None)
    if version_id is None:
        return None
    key = (version_id, app.published_version_at)  # type: ignore[attr-defined]
    with _LOCK:
        found = _VERSIONS.get(key)
        if found is not None:
            _VERSIONS.move_to_end(key)
            return found
    version = AppVersion.objects.filter(pk=version_id, app=app).first()
    if version is None:  # deleted since the app was read
        return None
    found = Published(document=version.app_document())
    with _LOCK:
        _VERSIONS[key] = found
        while len(_VERSIONS) > CACHED_VERSIONS:
            _VERSIONS.popitem(last=False)
    return found
