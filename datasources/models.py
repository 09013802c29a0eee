from __future__ import annotations

from typing import Any

from django.db import models
from encrypted_model_fields.fields import EncryptedCharField

from datasources.plugins import Plugin, get_plugin, plugin_choices
from datasources.plugins.missing import missing_plugin
from workspaces.models import Workspace


class Datasource(models.Model):
    """A connection to an outside service. ``config`` holds the plugin's settings;
    the secret (a password) is encrypted at rest and never rendered back."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="datasources")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=30, choices=plugin_choices)
    config = models.JSONField(default=dict, blank=True)
    secret = EncryptedCharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="datasource_name_unique")
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Datasource {self.pk} {self.kind} {self.name!r}>"

    @property
    def plugin(self) -> Plugin:
        """The datasource's plugin; a stand-in that explains itself when that kind of
        plugin is not installed any more."""
        try:
            return get_plugin(self.kind)
        except LookupError:
            return missing_plugin(self.kind)

    def settings(self) -> Any:
        return self.plugin.load_config(self.config, self.secret)

    @property
    def sandbox_note(self) -> str:
        """The banner of a sandboxed datasource (its emails go to the dev mailbox or a
        catch-all address); "" when sandbox mode is off."""
        return self.plugin.sandbox_note(self.config or {})

    @property
    def setup_warning(self) -> str:
        """What it still lacks before it can be used (plugin.setup_warning); ""."""
        return self.plugin.setup_warning(self.config or {}, self.secret or "")

    @property
    def summary(self) -> str:
        try:
            return self.plugin.config_summary(self.config)
        except LookupError:
            return ""
