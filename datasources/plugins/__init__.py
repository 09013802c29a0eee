"""The datasource plugin registry.

A plugin is one package under ``datasources/plugins/<kind>/`` exposing a ``Plugin``
subclass; adding one is that package plus one line in ``PLUGINS`` (see
docs/plugins.md for the checklist).
"""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from datasources.plugins.base import Plugin

PLUGINS: dict[str, str] = {
    "smtp": "datasources.plugins.smtp.plugin.SmtpPlugin",
}


@cache
def get_plugin(kind: str) -> Plugin:
    try:
        path = PLUGINS[kind]
    except KeyError:
        raise LookupError(f"No datasource plugin of kind {kind!r}") from None
    return import_string(path)()


def plugin_choices() -> list[tuple[str, str]]:
    return [(kind, get_plugin(kind).label) for kind in PLUGINS]
