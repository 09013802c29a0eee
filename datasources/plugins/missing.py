"""The stand-in for a plugin that is not installed any more (an extra plugin whose
setting was removed): its datasources stay listed and their queries stay readable, and
everything that would need the plugin says so, naming the datasource, instead of
failing with a 500."""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar

from datasources.errors import PluginError
from datasources.plugins.base import ActionSpec, ConfigForm, ConnectionCheck, Plugin


class _NoSettings(ConfigForm):
    """No settings can be edited without the plugin."""

    def stored(self) -> tuple[dict, str]:
        raise PluginError(missing_message(self.kind), field="datasource")

    def settings(self) -> Any:
        raise PluginError(missing_message(self.kind), field="datasource")

    kind: ClassVar[str] = ""


class MissingPlugin(Plugin):
    actions: ClassVar[dict[str, ActionSpec]] = {}

    @property
    def message(self) -> str:
        return missing_message(self.kind)

    def action_spec(self, action: str) -> ActionSpec:
        raise PluginError(self.message, field="datasource")

    def load_config(self, config: dict, secret: str) -> Any:
        raise PluginError(self.message, field="datasource")

    def test_connection(self, settings: Any) -> ConnectionCheck:
        return ConnectionCheck(False, self.message)


def missing_message(kind: str) -> str:
    return (
        f"The “{kind}” datasource plugin is not installed on this server, so this "
        "datasource cannot be used; install the plugin or choose another datasource."
    )


@cache
def missing_plugin(kind: str) -> Plugin:
    """The stand-in for ``kind`` (one per kind)."""
    form = type("NoSettings", (_NoSettings,), {"kind": kind})
    attrs = {"kind": kind, "label": f"{kind} (not installed)", "config_form": form}
    return type("MissingPlugin", (MissingPlugin,), attrs)()
