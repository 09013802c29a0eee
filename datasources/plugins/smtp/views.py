"""“Connect with Google / Microsoft”: the authorization code flow with PKCE that saves an
SMTP datasource's OAuth2 refresh token, for deployments browsers reach at
``KILN_PUBLIC_URL``.

The start view is an editor's POST on a saved datasource; it keeps the request's state
and PKCE verifier in the session. The provider sends the browser back to one fixed
address (the redirect URI registered with the app), whose view finds the datasource
from that state, so no workspace is in its URL.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_POST

from datasources.errors import PluginError
from datasources.models import Datasource
from datasources.plugins.smtp import oauth
from datasources.plugins.smtp.config import (
    Auth,
    OAuth2Provider,
    OAuth2Secret,
    SmtpSettings,
    oauth2_redirect_uri,
)
from workspaces import audit
from workspaces.access import get_membership
from workspaces.audit import Action
from workspaces.models import Role

log = logging.getLogger(__name__)

#: The session key of the authorizations started and not yet answered, by state.
PENDING = "kiln_smtp_oauth2"
#: At most this many at once (the oldest go first): tabs left open do not pile up.
PENDING_LIMIT = 5


def _smtp_datasource(request: HttpRequest, workspace: str, pk: int) -> Datasource:
    membership = get_membership(request, workspace, Role.EDITOR)
    return get_object_or_404(Datasource, pk=pk, workspace=membership.workspace, kind="smtp")


def _bound_to(s: SmtpSettings) -> dict[str, str]:
    """What a refresh token is issued for: the callback saves it only if these have not
    changed since the start."""
    return {
        "provider": s.oauth_provider,
        "tenant": s.oauth_tenant,
        "client_id": s.client_id,
        "username": s.username,
    }


@login_required
@require_POST
def oauth2_start(request: HttpRequest, workspace: str, pk: int) -> HttpResponse:
    datasource = _smtp_datasource(request, workspace, pk)
    if not settings.KILN_PUBLIC_URL:
        raise Http404("Connect needs KILN_PUBLIC_URL")
    s = datasource.settings()
    if s.auth != Auth.OAUTH2 or not (s.oauth_provider and s.client_id and s.username):
        messages.error(
            request,
            "Connect: save the datasource with OAuth2, a provider, a client ID and a "
            "username first.",
        )
        return redirect("datasources:edit", workspace, datasource.pk)
    started = oauth.authorization(
        s.oauth_provider, s.oauth_tenant, s.client_id, s.username, oauth2_redirect_uri()
    )
    pending = dict(request.session.get(PENDING) or {})
    while len(pending) >= PENDING_LIMIT:
        pending.pop(next(iter(pending)))
    pending[started.state] = {
        "workspace": datasource.workspace.slug,
        "datasource": datasource.pk,
        "verifier": started.verifier,
        **_bound_to(s),
    }
    request.session[PENDING] = pending
    return redirect(started.url)


@login_required
@require_GET
def oauth2_callback(request: HttpRequest) -> HttpResponse:
    """The provider's answer: the state must be one this session started (else 400,
    a forged or replayed answer), then the code becomes the saved refresh token."""
    pending = dict(request.session.get(PENDING) or {})
    entry = pending.pop(request.GET.get("state", ""), None)
    if entry is None:
        return HttpResponseBadRequest(
            "state: this answer does not match a “Connect” started in this browser "
            "session (or it was already used). Start again from the datasource page.",
            content_type="text/plain; charset=utf-8",
        )
    request.session[PENDING] = pending
    datasource = _smtp_datasource(request, entry["workspace"], entry["datasource"])
    back = redirect("datasources:edit", entry["workspace"], datasource.pk)
    label = OAuth2Provider.label(entry["provider"])
    if request.GET.get("error"):
        said = oauth.provider_said(request.GET["error"], request.GET.get("error_description"))
        messages.error(request, f"{label} did not authorize Kiln ({said}).")
        return back
    code = request.GET.get("code", "")
    if not code:
        return HttpResponseBadRequest(
            "code: the answer holds no authorization code.",
            content_type="text/plain; charset=utf-8",
        )
    s = datasource.settings()
    if s.auth != Auth.OAUTH2 or _bound_to(s) != {k: entry[k] for k in _bound_to(s)}:
        messages.error(
            request,
            "Connect: the datasource's OAuth2 settings changed meanwhile; nothing was "
            "saved. Connect again.",
        )
        return back
    try:
        refresh_token = oauth.exchange_code(s, code, entry["verifier"], oauth2_redirect_uri())
    except PluginError as exc:
        messages.error(request, f"Connect: {exc.message}")
        return back
    _save_refresh_token(request, datasource, s, refresh_token)
    messages.success(request, f"Connected {s.username} with {label}: the refresh token is saved.")
    return back


def _save_refresh_token(
    request: HttpRequest, datasource: Datasource, s: SmtpSettings, refresh_token: str
) -> None:
    datasource.secret = OAuth2Secret(s.client_secret, refresh_token).dump()
    with transaction.atomic():
        datasource.save(update_fields=["secret", "updated_at"])
        audit.record(
            datasource.workspace,
            Action.CHANGED,
            "datasource",
            datasource.name,
            request=request,
            detail={"oauth2": "connected", "provider": s.oauth_provider, "account": s.username},
        )
    log.info("datasource %s connected with OAuth2 (%s)", datasource.pk, s.oauth_provider)
