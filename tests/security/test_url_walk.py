"""Every URL pattern, taken from the URL resolver, with GET and POST, as an anonymous
visitor, a signed-in stranger, and a viewer and an editor of workspace A, with the ids
of workspace B in every URL argument: nothing of B is read or changed.

A new URL argument must be given a value in ``ARGUMENTS`` (the test fails and says so),
so no route escapes the walk."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver

from builder.models import App, AppVersion, Page, Query, Widget
from builder.publishing import publish
from datasources.models import Datasource
from devmailbox.models import MailboxMessage
from queries.models import ApiToken, QueryRun
from workspaces.audit import AuditEvent
from workspaces.members import invite
from workspaces.models import Invitation, Membership, Role, Workspace

pytestmark = pytest.mark.django_db

#: What must never show in an answer to someone outside workspace B.
SECRETS = (
    "Secret B App",
    "Secret Page Name",
    "SECRET-WIDGET-TEXT",
    "Secret DS Name",
    "B-PASSWORD-XYZ",
    "SECRET-RUN-DATA",
    "SECRET-MAIL-BODY",
    "b-owner@secret.test",
)
#: Answers that reveal and change nothing.
REFUSED = {400, 401, 403, 404, 405, 409, 422, 429}
#: Routes anyone may open; they must still show none of B's secrets.
OPEN_ROUTES = {"home", "login", "logout", "healthz"}
#: Routes whose URL argument is itself the credential: whoever holds an invitation link
#: may read it (GET); accepting it (POST) is for the account it names.
CAPABILITY_GETS = {"workspaces:invitation"}
#: Routes whose POST makes something of the caller's own (a new workspace of theirs).
MAKES_OWN = {"logout", "workspaces:create"}
#: A body for every POST: plausible fields of every form, pointing at B's things.
POSTED = {
    "name": "hacked",
    "value": "hacked",
    "prop": "label",
    "type": "text",
    "widget": "secret_widget",
    "event": "click",
    "events_json": "{}",
    "selected": "secret_widget",
    "x": "1",
    "y": "1",
    "kind": "smtp",
    "path": "click-0",
    "trigger": "secret_widget",
    "role": "admin",
    "workspace": "b-corp",
    "who": "stranger",
    "username": "stranger",
    "password": "stranger-pass-1",
}


def routes(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    """(route, name) of every URL pattern, nested includes flattened."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace else (pattern.name or "")
            yield prefix + str(pattern.pattern), name


@pytest.fixture
def other(team):
    """Workspace B and one of everything in it, with secrets in every text."""
    users = get_user_model().objects
    owner = users.create_user("b_owner", "b-owner@secret.test", "b-owner-pass-1")
    workspace = Workspace.objects.create(name="B corp", slug="b-corp")
    workspace.add_member(owner, Role.ADMIN)
    datasource = Datasource.objects.create(
        workspace=workspace,
        name="Secret DS Name",
        kind="smtp",
        config={
            "host": "127.0.0.1",
            "port": 2525,
            "security": "none",
            "auth": "password",
            "username": "b",
            "timeout": 5,
            "verify_certificate": True,
        },
        secret="B-PASSWORD-XYZ",
    )
    app = App.objects.create(workspace=workspace, name="Secret B App", slug="secret-b")
    page = Page.objects.create(app=app, name="Secret Page Name", slug="secret-page")
    Widget.objects.create(
        page=page,
        name="secret_widget",
        type="button",
        properties={"text": "SECRET-WIDGET-TEXT"},
        events={"click": [{"action": "run_query", "query": "secret_query"}]},
    )
    query = Query.objects.create(
        app=app,
        name="secret_query",
        datasource=datasource,
        fields={"from": "b@secret.test", "to": "b-owner@secret.test", "subject": "Hi"},
    )
    publish(app, owner)
    run = QueryRun.objects.create(
        workspace=workspace,
        query=query,
        datasource=datasource,
        action="send_email",
        created_by=owner,
        fields={"to": "b-owner@secret.test"},
        status="sent",
        data={"message": "SECRET-RUN-DATA"},
    )
    # An invitation for one account: only that account may accept it, link or not.
    users.create_user("b_friend", "b-friend@secret.test", "b-friend-pass-1")
    invitation, token = invite(workspace, "b_friend", Role.EDITOR, owner)
    mail = MailboxMessage.receive(
        "b@secret.test",
        ["b-owner@secret.test"],
        b"Subject: Secret\r\n\r\nSECRET-MAIL-BODY\r\n",
    )
    return {
        "workspace": workspace.slug,
        "app": app.slug,
        "page": page.slug,
        "widget": "secret_widget",
        "query": query.name,
        "run_id": run.pk,
        "datasource": datasource.pk,
        "message": mail.pk,
        "member": workspace.memberships.get(user=owner).pk,
        "invitation": invitation.pk,
        "token": token,
    }


def argument(name: str, route: str, other: dict) -> object:
    """The value of workspace B for URL argument ``name`` of ``route``."""
    if name == "name":
        return other["query"] if "/queries/" in route else other["widget"]
    if name == "pk":
        return other["message"] if route.startswith("devmailbox/") else other["datasource"]
    values = {
        "workspace": other["workspace"],
        "app": other["app"],
        "page": other["page"],
        "query": other["query"],
        "run_id": other["run_id"],
        "run": other["run_id"],
        # A merge's row (viewer merge retry): B's run stands for one.
        "row_id": other["run_id"],
        "kind": "smtp",
        "prop": "text",
        "index": 0,
        "member": other["member"],
        "invitation": other["invitation"],
        "token": other["token"],
    }
    if name not in values:
        pytest.fail(f"Give the URL argument {name!r} of {route!r} a value of workspace B")
    return values[name]


def url_for(route: str, other: dict) -> str:
    def fill(match: re.Match) -> str:
        return str(argument(match.group("name"), route, other))

    return "/" + re.sub(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>", fill, route)


def state() -> str:
    """A digest of every row that a request could change."""
    models = (
        Workspace,
        Membership,
        App,
        Page,
        Widget,
        Query,
        AppVersion,
        Datasource,
        QueryRun,
        MailboxMessage,
        ApiToken,
        AuditEvent,
        Invitation,
    )
    parts = []
    for model in models:
        rows = model.objects.order_by("pk").values()
        # A token's last use is stamped by any authenticated API call: not a change of B.
        rows = [{k: v for k, v in row.items() if k != "last_used_at"} for row in rows]
        parts.append(repr([sorted(row.items()) for row in rows]))
    return hashlib.sha256("".join(parts).encode()).hexdigest()


@pytest.fixture
def actors(team):
    stranger = get_user_model().objects.create_user("stranger", "s@kiln.test", "stranger-pass-1")
    return {
        "anonymous": None,
        "stranger": stranger,
        "viewer": team.viewer,
        "editor": team.teammate,
    }


def test_every_url_refuses_workspace_b_to_everyone_outside_it(client, other, actors):
    walked = list(routes())
    assert len(walked) > 40
    problems = []
    for actor_name, user in actors.items():
        client.logout()
        headers = {}
        if user is not None:
            client.force_login(user)
            headers["Authorization"] = "Bearer " + ApiToken.issue(user, "walk")[1]
        for route, name in walked:
            if route.startswith("admin/"):
                continue
            url = url_for(route, other)
            for method in ("get", "post"):
                before = state() if method == "post" else None
                data = POSTED if method == "post" else None
                response = getattr(client, method)(url, data, headers=headers)
                body = response.content.decode("utf-8", "replace")
                where = f"{actor_name} {method.upper()} {url} ({name})"
                leaked = [secret for secret in SECRETS if secret in body]
                if leaked:
                    problems.append(f"{where}: shows {leaked}")
                if name in OPEN_ROUTES or "<" not in route:
                    # No URL argument of B: the caller's own page; it must show none of
                    # B's secrets, and change nothing but what is the caller's own.
                    if before is not None and name not in MAKES_OWN and state() != before:
                        problems.append(f"{where}: changed something")
                    if user is not None and name == "logout":
                        client.force_login(user)
                    continue
                status = response.status_code
                if name in CAPABILITY_GETS and method == "get" and status == 200:
                    continue
                to_login = status == 302 and response["Location"].startswith("/accounts/login")
                if status not in REFUSED and not to_login:
                    problems.append(f"{where}: answered {status}")
                if before is not None and state() != before:
                    problems.append(f"{where}: changed something")
    assert problems == [], "\n".join(problems)


def test_the_walk_knows_every_url_argument(other):
    for route, _ in routes():
        if not route.startswith("admin/"):
            url_for(route, other)


def test_a_public_app_is_open_to_anyone_and_its_editor_is_not(client, other, actors):
    App.objects.filter(slug=other["app"]).update(public=True)
    public_pages = {"viewer:app", "viewer:app_page"}
    problems = []
    for actor_name, user in actors.items():
        client.logout()
        if user is not None:
            client.force_login(user)
        for route, name in routes():
            if route.startswith("admin/") or "<slug:app>" not in route:
                continue
            url = url_for(route, other)
            response = client.get(url)
            where = f"{actor_name} GET {url} ({name})"
            status = response.status_code
            if name in public_pages:
                if status != 200 or "SECRET-WIDGET-TEXT" not in response.content.decode():
                    problems.append(f"{where}: the public app answered {status}")
                continue
            if name.startswith("editor:") or name.startswith("viewer:preview"):
                to_login = status == 302 and response["Location"].startswith("/accounts/login")
                if status not in REFUSED and not to_login:
                    problems.append(f"{where}: the editor of a public app answered {status}")
    assert problems == [], "\n".join(problems)
