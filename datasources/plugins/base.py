"""The contract every datasource plugin fills in (a template method, as in anymail's
backends): parse and validate its settings, test a connection, run an action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms

from workspaces.files import FileContent


@dataclass
class Prepared:
    """An action's fields checked and ready to store: ``fields`` is JSON, ``files`` are
    kept beside it, so that every retry sends the same bytes."""

    fields: dict
    files: list[FileContent] = field(default_factory=list)


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

    def prepare(self, action: str, fields: dict, context: Any = None) -> Prepared:
        """Check evaluated ``fields`` before a run is stored; raise ``FieldError``."""
        raise NotImplementedError

    def html_fields(self, action: str, fields: dict) -> set[str]:
        """Which fields are HTML, given the other evaluated fields: values bound into
        them are escaped."""
        return set()

    #: Fields evaluated last, once ``html_fields`` can be asked about them.
    html_candidates: ClassVar[frozenset[str]] = frozenset()

    def preview(self, action: str, fields: dict, context: Any = None) -> dict:
        """What running ``action`` with evaluated ``fields`` would do, without doing it
        (the editor's "Preview"). Checks the fields as ``prepare`` does and raises
        ``FieldError`` the same way; the shape of the result is the plugin's own."""
        raise NotImplementedError

    def execute(
        self, settings: Any, action: str, fields: dict, context: Any = None
    ) -> ActionResult:
        """Run ``action`` with prepared ``fields`` (``context.files`` holds the prepared
        files); raise a ``PluginError`` on failure."""
        raise NotImplementedError
