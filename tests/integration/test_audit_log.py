"""The audit log: who created, changed, deleted, published, ran what, when and from
where; admins read and filter it, nobody else does."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from builder.models import App
from queries.models import ApiToken
from tests.support.apps import make_app, welcome_inputs
from workspaces.audit import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


def entries(team) -> list[tuple[str, str, str, str]]:
    events = AuditEvent.objects.filter(workspace=team.workspace).order_by("id")
    return [(e.actor_label, e.action, e.target_type, e.target_label) for e in events]


def test_app_actions_are_recorded_with_who_and_where(client, team):
    client.force_login(team.teammate)
    slug = team.workspace.slug
    client.post(reverse("editor:app_create", args=[slug]), {"name": "Desk"}, REMOTE_ADDR="10.1.2.3")
    app = App.objects.get(name="Desk")
    client.post(reverse("editor:app_rename", args=[app.slug]), {"name": "Help desk"})
    client.post(reverse("editor:publish", args=[app.slug]))
    client.post(reverse("editor:app_delete", args=[app.slug]))
    assert entries(team) == [
        ("teammate", "created", "app", "Desk"),
        ("teammate", "changed", "app", "Help desk"),
        ("teammate", "published", "app", "Help desk"),
        ("teammate", "deleted", "app", "Help desk"),
    ]
    first = AuditEvent.objects.order_by("id").first()
    assert first.address == "10.1.2.3" and first.actor == team.teammate


def test_datasource_query_canvas_and_run_changes_are_recorded(client, team, contact):
    app, query = contact
    client.force_login(team.teammate)
    page = app.pages.get()
    client.post(
        reverse("editor:canvas_add", args=[app.slug, page.slug]), {"type": "text", "x": "0"}
    )
    client.post(reverse("editor:queries", args=[app.slug]), {"name": "ping", "datasource": ""})
    client.post(
        reverse("editor:queries", args=[app.slug]),
        {"name": "ping", "datasource": str(query.datasource_id)},
    )
    client.post(reverse("editor:query_delete", args=[app.slug, "ping"]))
    client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
    )
    recorded = entries(team)
    assert ("teammate", "changed", "page", f"{app.name} / Home") in recorded
    assert ("teammate", "created", "query", "ping") in recorded
    assert ("teammate", "deleted", "query", "ping") in recorded
    # The run API needs a token: that anonymous call ran nothing and recorded nothing.
    assert not any(action == "ran" for _, action, _, _ in recorded)


def test_a_run_records_who_ran_which_query(client, team, contact):
    app, _ = contact
    key = ApiToken.issue(team.teammate, "tests")[1]
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": welcome_inputs()}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202
    event = AuditEvent.objects.get(action="ran")
    assert event.actor == team.teammate
    assert event.target_label == f"{app.name} / send_welcome"
    assert event.detail == {"run": response.json()["id"]}


def test_an_autosave_that_changes_nothing_records_nothing(client, team, contact):
    app, query = contact
    client.force_login(team.teammate)
    data = {
        "name": query.name,
        "datasource": str(query.datasource_id),
        "timeout_seconds": str(query.timeout_seconds),
        "body_type": query.fields.get("body_type", "text"),
        "test_values": "{}",
        **{key: value for key, value in query.fields.items() if isinstance(value, str)},
    }
    url = reverse("editor:query_save", args=[app.slug, query.name])
    assert client.post(url, data).status_code in (200, 302)
    client.post(url, data)
    changed = [e for e in entries(team) if e[1] == "changed" and e[2] == "query"]
    assert len(changed) <= 1
    client.post(url, {**data, "subject": "Something else"})
    changed = [e for e in entries(team) if e[1] == "changed" and e[2] == "query"]
    assert changed and changed[-1][3] == query.name


def test_admins_read_and_filter_the_log(client, team, contact):
    client.force_login(team.teammate)
    slug = team.workspace.slug
    client.post(reverse("editor:app_create", args=[slug]), {"name": "Desk"})
    client.post(reverse("editor:app_create", args=[slug]), {"name": "Shop"})
    client.force_login(team.owner)
    log_url = reverse("audit:log", args=[slug])
    page = client.get(log_url)
    assert page.status_code == 200
    assert "Desk" in page.text and "Shop" in page.text
    assert "teammate" in page.text
    only_shop = client.get(log_url, {"who": "teammate", "action": "created", "what": "app"})
    assert "Shop" in only_shop.text
    none = client.get(log_url, {"who": "nobody"})
    assert "Nothing recorded that matches these filters" in none.text
    bad = client.get(log_url, {"from": "yesterday"})
    assert bad.status_code == 200
    assert "“yesterday” is not a date (YYYY-MM-DD): from ignored." in bad.text


def test_only_admins_read_the_log(client, team):
    log_url = reverse("audit:log", args=[team.workspace.slug])
    client.force_login(team.teammate)
    assert client.get(log_url).status_code == 403
    client.force_login(team.viewer)
    assert client.get(log_url).status_code == 403
    client.force_login(team.outsider)
    assert client.get(log_url).status_code == 404
    client.logout()
    assert client.get(log_url).status_code == 302


def test_a_forged_forwarded_for_is_not_believed_without_a_trusted_proxy(client, team, settings):
    client.force_login(team.teammate)
    slug = team.workspace.slug
    client.post(
        reverse("editor:app_create", args=[slug]),
        {"name": "Desk"},
        REMOTE_ADDR="10.0.0.9",
        HTTP_X_FORWARDED_FOR="1.2.3.4",
    )
    assert AuditEvent.objects.get().address == "10.0.0.9"
    settings.KILN_TRUSTED_PROXY_COUNT = 1
    client.post(
        reverse("editor:app_create", args=[slug]),
        {"name": "Shop"},
        REMOTE_ADDR="10.0.0.9",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4",
    )
    assert AuditEvent.objects.order_by("-id").first().address == "1.2.3.4"


def test_member_changes_are_recorded(client, team):
    client.force_login(team.owner)
    slug = team.workspace.slug
    client.post(reverse("workspaces:invite", args=[slug]), {"who": "outsider", "role": "viewer"})
    teammate = team.workspace.memberships.get(user=team.teammate)
    client.post(reverse("workspaces:member_role", args=[slug, teammate.pk]), {"role": "viewer"})
    viewer = team.workspace.memberships.get(user=team.viewer)
    client.post(reverse("workspaces:member_remove", args=[slug, viewer.pk]))
    assert entries(team) == [
        ("owner", "invited", "member", "outsider"),
        ("owner", "role_changed", "member", "teammate"),
        ("owner", "removed", "member", "viewer"),
    ]
