"""The datasource plugin registry.

A plugin is one package under ``datasources/plugins/<kind>/`` exposing a ``Plugin``
subclass; adding one is that package plus one line in ``PLUGINS`` (see
docs/plugins.md for the checklist). ``settings.KILN_EXTRA_PLUGINS`` (kind to dotted
path, from the environment) adds plugins that live elsewhere, such as the tests' own:
read on every lookup, so a test can add one without editing this module, and a Celery
worker started with the same variable sees it too.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from datasources.plugins.base import Plugin

PLUGINS: dict[str, str] = {
    "smtp": "datasources.plugins.smtp.plugin.SmtpPlugin",
}


def plugin_paths() -> dict[str, str]:
    """Every registered kind and the dotted path of its plugin class."""
    extra = getattr(settings, "KILN_EXTRA_PLUGINS", None) or {}
    # The built-in plugins come first and cannot be replaced.
    return {**PLUGINS, **{kind: path for kind, path in extra.items() if kind not in PLUGINS}}


def plugin_kinds() -> list[str]:
    return list(plugin_paths())


def get_plugin(kind: str) -> Plugin:
    try:
        path = plugin_paths()[kind]
    except KeyError:
        raise LookupError(f"No datasource plugin of kind {kind!r}") from None
    return _load(path)


@cache
def _load(path: str) -> Plugin:
    return import_string(path)()


def plugin_choices() -> list[tuple[str, str]]:
    return [(kind, get_plugin(kind).label) for kind in plugin_paths()]
