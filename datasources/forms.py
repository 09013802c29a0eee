from __future__ import annotations

from django import forms

from datasources.models import Datasource
from datasources.plugins import get_plugin
from datasources.plugins.base import ConfigForm
from workspaces.models import Workspace


class DatasourceNameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)

    def __init__(self, *args, workspace: Workspace, instance: Datasource | None = None, **kw):
        super().__init__(*args, **kw)
        self.workspace = workspace
        self.instance = instance

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Datasource.objects.filter(workspace=self.workspace, name=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(f"A datasource named “{name}” already exists here.")
        return name


def config_form_for(kind: str, data=None, instance: Datasource | None = None) -> ConfigForm:
    """The plugin's settings form, filled from ``data`` or from a saved datasource."""
    form_class = get_plugin(kind).config_form
    stored_secret = instance.secret if instance is not None else ""
    initial = dict(instance.config) if instance is not None else None
    return form_class(data, initial=initial, stored_secret=stored_secret)
