"""Datasource pages: list, create, edit, delete, and the htmx "Test connection"."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import ProtectedError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.core import is_ratelimited

from datasources.errors import PluginError
from datasources.forms import DatasourceNameForm, config_form_for
from datasources.models import Datasource
from datasources.plugins import get_plugin, plugin_kinds
from workspaces import audit
from workspaces.access import get_membership
from workspaces.audit import Action
from workspaces.models import Role

log = logging.getLogger(__name__)


def _datasource(request: HttpRequest, workspace: str, pk: int) -> Datasource:
    membership = get_membership(request, workspace, Role.EDITOR)
    return get_object_or_404(Datasource, pk=pk, workspace=membership.workspace)


@login_required
def datasource_list(request: HttpRequest, workspace: str) -> HttpResponse:
    membership = get_membership(request, workspace, Role.EDITOR)
    datasources = membership.workspace.datasources.all()
    plugins = [get_plugin(kind) for kind in plugin_kinds()]
    return render(
        request,
        "datasources/list.html",
        {"workspace": membership.workspace, "datasources": datasources, "plugins": plugins},
    )


def _render_form(request, workspace, kind, name_form, config_form, instance=None, status=200):
    context = {
        "workspace": workspace,
        "plugin": get_plugin(kind),
        "name_form": name_form,
        "config_form": config_form,
        "datasource": instance,
    }
    return render(request, "datasources/form.html", context, status=status)


def _save(request, workspace, kind, instance: Datasource | None) -> HttpResponse:
    name_form = DatasourceNameForm(request.POST, workspace=workspace, instance=instance)
    config_form = config_form_for(kind, request.POST, instance)
    if not (name_form.is_valid() and config_form.is_valid()):
        # 422 keeps what was stored: nothing is written when any field is wrong.
        return _render_form(request, workspace, kind, name_form, config_form, instance, 422)
    config, secret = config_form.stored()
    datasource = instance or Datasource(workspace=workspace, kind=kind)
    datasource.name = name_form.cleaned_data["name"]
    datasource.config = config
    datasource.secret = secret
    with transaction.atomic():
        datasource.save()
        # The settings as stored, never the secret.
        action = Action.CHANGED if instance is not None else Action.CREATED
        audit.record(workspace, action, "datasource", datasource.name, request=request)
    log.info("datasource %s saved in workspace %s", datasource.pk, workspace.slug)
    messages.success(request, f"Saved “{datasource.name}”.")
    return redirect("datasources:edit", workspace.slug, datasource.pk)


@login_required
@require_http_methods(["GET", "POST"])
def datasource_create(request: HttpRequest, workspace: str, kind: str) -> HttpResponse:
    membership = get_membership(request, workspace, Role.EDITOR)
    if kind not in plugin_kinds():
        raise Http404("No such kind of datasource")
    if request.method == "POST":
        return _save(request, membership.workspace, kind, None)
    name_form = DatasourceNameForm(
        workspace=membership.workspace, initial={"name": f"{get_plugin(kind).label} server"}
    )
    return _render_form(request, membership.workspace, kind, name_form, config_form_for(kind))


@login_required
@require_http_methods(["GET", "POST"])
def datasource_edit(request: HttpRequest, workspace: str, pk: int) -> HttpResponse:
    datasource = _datasource(request, workspace, pk)
    if request.method == "POST":
        return _save(request, datasource.workspace, datasource.kind, datasource)
    name_form = DatasourceNameForm(
        workspace=datasource.workspace, instance=datasource, initial={"name": datasource.name}
    )
    config_form = config_form_for(datasource.kind, instance=datasource)
    return _render_form(
        request, datasource.workspace, datasource.kind, name_form, config_form, datasource
    )


@login_required
@require_http_methods(["GET", "POST"])
def datasource_delete(request: HttpRequest, workspace: str, pk: int) -> HttpResponse:
    datasource = _datasource(request, workspace, pk)
    if request.method == "POST":
        name = datasource.name
        try:
            with transaction.atomic():
                datasource.delete()
                audit.record(
                    datasource.workspace, Action.DELETED, "datasource", name, request=request
                )
        except ProtectedError:
            # Query.datasource is PROTECT: say which queries hold it, keep everything.
            # Queries live in a layer above: read by name, not imported.
            users = sorted(
                {f"{q.app.name} › {q.name}" for q in datasource.queries.select_related("app")}
            )
            messages.error(
                request,
                f"“{name}” is used by {len(users)} quer{'y' if len(users) == 1 else 'ies'}: "
                f"{', '.join(users)}. Point them at another datasource or delete them first.",
            )
            return redirect("datasources:edit", workspace, datasource.pk)
        messages.success(request, f"Deleted “{name}”.")
        return redirect("datasources:list", workspace)
    return render(request, "datasources/delete.html", {"datasource": datasource})


def _named_errors(form) -> list[str]:
    """Each error of ``form``, starting with the label of its field, once: many errors
    name their field already, some by the label's short form ("CA certificate: ..."
    for "CA certificate (PEM)"), and those are not named a second time."""
    named = []
    for name, errors in form.errors.items():
        label = str(form.fields[name].label) if name in form.fields else ""
        for error in errors:
            named.append(error if _names_field(error, label) else f"{label}: {error}")
    return named


def _names_field(error: str, label: str) -> bool:
    """Whether ``error`` starts with ``label`` or with its short form, the label without
    its parenthesised note ("Pinned fingerprint" for "Pinned fingerprint (SHA-256)")."""
    if not label or error.startswith(label):
        return True
    short = re.sub(r"\s*\([^)]*\)\s*$", "", label)
    return bool(short) and error.startswith(f"{short}:")


@login_required
@require_POST
def datasource_test(request: HttpRequest, workspace: str, pk: int | None = None) -> HttpResponse:
    """Test the settings as typed in the form (a saved datasource lends its password
    when the field is left blank)."""
    membership = get_membership(request, workspace, Role.EDITOR)
    instance = None
    if pk is not None:
        instance = get_object_or_404(Datasource, pk=pk, workspace=membership.workspace)
    kind = instance.kind if instance else request.POST.get("kind", "")
    if kind not in plugin_kinds():
        raise Http404("No such kind of datasource")
    limit = settings.KILN_TEST_CONNECTION_PER_MINUTE
    if limit > 0 and is_ratelimited(
        request, group="kiln-test-connection", key="user", rate=f"{limit}/m", increment=True
    ):
        message = (
            f"Too many connection tests: at most {limit} a minute for each user "
            "(limit KILN_TEST_CONNECTION_PER_MINUTE). Try again in a minute."
        )
        context = {"check": {"ok": False, "message": message}}
        return render(request, "datasources/form.html#check-result", context, status=429)
    config_form = config_form_for(kind, request.POST, instance)
    if config_form.is_valid():
        try:
            check = get_plugin(kind).test_connection(config_form.settings())
            ok, message = check.ok, check.message
        except PluginError as exc:
            ok, message = False, exc.message
    else:
        ok = False
        message = "Fix the settings first: " + " ".join(_named_errors(config_form))
    return render(
        request, "datasources/form.html#check-result", {"check": {"ok": ok, "message": message}}
    )
