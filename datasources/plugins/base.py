"""The contract every datasource plugin fills in (a template method, as in anymail's
backends): parse and validate its settings, test a connection, run an action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str


@dataclass
class ActionResult:
    """What an action returns: ``data`` is what bindings see as ``query.data``."""

    data: Any
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ActionSpec:
    name: str
    label: str
    fields: tuple[str, ...]


class Plugin:
    kind: ClassVar[str]
    label: ClassVar[str]
    #: The form that edits this plugin's settings; it also builds the settings object.
    config_form: ClassVar[type[forms.Form]]
    actions: ClassVar[dict[str, ActionSpec]]

    def load_config(self, config: dict, secret: str) -> Any:
        """The typed settings from a datasource's stored config and secret."""
        raise NotImplementedError

    def test_connection(self, settings: Any) -> ConnectionCheck:
        raise NotImplementedError

    def execute(
        self, settings: Any, action: str, fields: dict, context: Any = None
    ) -> ActionResult:
        """Run ``action`` with evaluated ``fields``; raise a ``PluginError`` on failure."""
        raise NotImplementedError
