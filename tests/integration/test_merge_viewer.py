"""A mail merge on the published page: the click's answer (its progress panel), the
count the confirmation asks about, the panel drawn again on load, Stop, Send the rest and
Retry, and who may do any of it (another workspace, another person: 404; CSRF)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from queries.models import QueryRun
from queries.outbox import execute_run
from tests.support.apps import mailer

# No real commit: the rows' tasks never run by themselves (on_commit does not fire inside
# the test's transaction), so a merge stays where the test leaves it; execute_run sends.
pytestmark = pytest.mark.django_db

ROWS = [{"name": f"P{i}", "email": f"p{i}@example.com"} for i in range(6)]


@pytest.fixture
def merge_app(team, smtp_server):
    app = App.objects.create(workspace=team.workspace, name="News", slug="news")
    home = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(page=home, name="table1", type="table", properties={"data": ROWS})
    Widget.objects.create(
        page=home,
        name="send_btn",
        type="button",
        properties={"text": "Send"},
        events={"click": [{"action": "run_query", "query": "news"}]},
    )
    Widget.objects.create(
        page=home,
        name="plain_btn",
        type="button",
        properties={"text": "Plain"},
        events={"click": [{"action": "run_query", "query": "plain"}]},
    )
    datasource = mailer(team.workspace, smtp_server.port)
    Query.objects.create(
        app=app,
        name="news",
        datasource=datasource,
        fields={
            "from": "news@kiln.test",
            "to": "<< row.email >>",
            "subject": "Hi << row.name >>",
            "body": "Row << index >>",
        },
        for_each="<< table1.data >>",
    )
    Query.objects.create(
        app=app,
        name="plain",
        datasource=datasource,
        fields={"from": "news@kiln.test", "to": "ann@example.com", "subject": "Hi", "body": "x"},
    )
    publish(app, team.owner)
    return app


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def click(client, app, widget="send_btn"):
    return client.post(
        f"/apps/{app.slug}/home/events", {"widget": widget, "event": "click", "table1": ""}
    )


def start(client, app) -> QueryRun:
    response = click(client, app)
    assert response.status_code == 200, response.content
    return QueryRun.objects.get(query__app=app, query__name="news", parent__isnull=True)


def merge_url(app, run, tail=""):
    return f"/apps/{app.slug}/home/merges/{run.pk}{tail}"


def send_waiting(parent) -> None:
    for child in parent.children.filter(status__in=["queued", "scheduled"]).order_by("row_index"):
        execute_run(child.pk)


def attr(html: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', html)
    assert found, html
    return found.group(1)


def test_the_button_asks_with_the_count_of_emails(team, merge_app):
    client = signed_in(team.owner)
    page = client.get(f"/apps/{merge_app.slug}/").content.decode()
    assert 'data-merge-count="/apps/news/home/merges/count"' in page
    response = client.post("/apps/news/home/merges/count", {"widget": "send_btn", "event": "click"})
    assert response.json() == {"count": 6, "message": "Send 6 emails?"}
    # Nothing was stored or sent for the count.
    assert not QueryRun.objects.exists()


def test_the_count_of_an_event_without_a_merge_is_404(team, merge_app):
    client = signed_in(team.owner)
    response = client.post(
        "/apps/news/home/merges/count", {"widget": "plain_btn", "event": "click"}
    )
    assert response.status_code == 404


def test_a_for_each_that_is_no_list_is_told_by_the_count_and_the_click(team, merge_app):
    query = Query.objects.get(app=merge_app, name="news")
    query.for_each = "<< table1.search_text >>"
    query.save()
    publish(merge_app, team.owner)
    client = signed_in(team.owner)
    answer = client.post("/apps/news/home/merges/count", {"widget": "send_btn", "event": "click"})
    assert (
        "for_each" in answer.json()["error"].lower().replace(" ", "_")
        or "For each" in (answer.json()["error"])
    )
    response = click(client, merge_app)
    assert response.status_code == 200
    assert "kiln-toast-error" in response.content.decode()
    assert not QueryRun.objects.exists()


def test_the_click_answers_with_the_panel_and_the_page_draws_it_again(team, merge_app, smtp_server):
    client = signed_in(team.owner)
    response = click(client, merge_app)
    html = response.content.decode()
    assert 'hx-swap-oob="afterbegin:#kiln-merges"' in html
    parent = QueryRun.objects.get(query__app=merge_app, parent__isnull=True)
    assert attr(html, "data-total") == "6"
    assert attr(html, "data-remaining") == "6"
    # A reload: the merge still going on is drawn, and asks for itself again.
    page = client.get(f"/apps/{merge_app.slug}/").content.decode()
    assert f'id="merge-{parent.pk}"' in page
    assert f'hx-post="{merge_url(merge_app, parent)}"' in page

    send_waiting(parent)
    refreshed = client.post(merge_url(merge_app, parent)).content.decode()
    assert attr(refreshed, "data-sent") == "6"
    assert "6 sent" in refreshed  # the toast of its end
    assert 'hx-trigger="load' not in refreshed.split("kiln-toast")[0]
    assert len(smtp_server.received) == 6
    assert {m.message["Subject"] for m in smtp_server.received} == {f"Hi P{i}" for i in range(6)}
    # Ended with every row sent: the page no longer draws it.
    assert f'id="merge-{parent.pk}"' not in client.get(f"/apps/{merge_app.slug}/").content.decode()


def test_stop_then_send_the_rest_sends_each_row_once(team, merge_app, smtp_server):
    client = signed_in(team.owner)
    parent = start(client, merge_app)
    first = parent.children.order_by("row_index").first()
    execute_run(first.pk)
    stopped = client.post(merge_url(merge_app, parent, "/stop")).content.decode()
    assert "Stopped: 5 emails will not be sent." in stopped
    assert attr(stopped, "data-sent") == "1"
    assert "Send the rest (5)" in stopped
    send_waiting(parent)  # a late task finds nothing to send
    assert len(smtp_server.received) == 1

    resumed = client.post(merge_url(merge_app, parent, "/resume")).content.decode()
    assert "Sending the rest: 5 emails." in resumed
    send_waiting(parent)
    assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == sorted(
        row["email"] for row in ROWS
    )
    assert parent.progress()["sent"] == 6


def test_a_failed_row_is_listed_and_sent_again_by_retry(team, merge_app, smtp_server):
    smtp_server.refuse("p2@example.com")
    client = signed_in(team.owner)
    parent = start(client, merge_app)
    send_waiting(parent)
    html = client.post(merge_url(merge_app, parent)).content.decode()
    assert "1 of 6 failed" in html
    assert "Row 3" in html and "p2@example.com" in html
    failed = parent.children.get(status="failed")
    assert f"{merge_url(merge_app, parent)}/rows/{failed.pk}/retry" in html

    smtp_server.handler.refuse.clear()
    retried = client.post(f"{merge_url(merge_app, parent)}/rows/{failed.pk}/retry")
    assert retried.status_code == 200
    assert "Row 3 is sent again." in retried.content.decode()
    send_waiting(parent)
    assert parent.progress()["sent"] == 6
    assert sum(m.rcpt_tos == ["p2@example.com"] for m in smtp_server.received) == 1


@pytest.mark.parametrize("tail", ["", "/stop", "/resume"])
def test_another_workspace_or_another_person_gets_404(team, merge_app, tail):
    parent = start(signed_in(team.teammate), merge_app)
    for user in (team.outsider, team.viewer):
        response = signed_in(user).post(merge_url(merge_app, parent, tail))
        assert response.status_code == 404, (user, response.status_code)
    # An editor of the app may act on anyone's merge.
    assert signed_in(team.owner).post(merge_url(merge_app, parent, tail)).status_code == 200


def test_a_row_of_another_merge_or_a_row_as_a_merge_is_404(team, merge_app):
    client = signed_in(team.owner)
    first = start(client, merge_app)
    assert client.post(merge_url(merge_app, first.children.first())).status_code == 404
    click(client, merge_app)
    other = QueryRun.objects.filter(parent__isnull=True).exclude(pk=first.pk).get()
    foreign = other.children.first()
    assert client.post(f"{merge_url(merge_app, first)}/rows/{foreign.pk}/retry").status_code == 404


def test_the_merge_endpoints_need_the_csrf_token(team, merge_app):
    parent = start(signed_in(team.owner), merge_app)
    client = Client(enforce_csrf_checks=True)
    client.force_login(team.owner)
    assert client.post(merge_url(merge_app, parent, "/stop")).status_code == 403
    assert parent.children.filter(status="queued").count() == 6


def test_a_get_is_refused(team, merge_app):
    parent = start(signed_in(team.owner), merge_app)
    assert signed_in(team.owner).get(merge_url(merge_app, parent, "/stop")).status_code == 405


def test_the_editors_run_asks_with_the_count_before_a_merge(team, merge_app, smtp_server):
    from django.urls import reverse

    from tests.integration.test_editor_queries import HTMX, form_data

    query = Query.objects.get(app=merge_app, name="news")
    client = signed_in(team.teammate)
    url = reverse("editor:query_run", args=[merge_app.slug, query.name])
    values = {"table1": {"data": ROWS}}
    asked = client.post(url, form_data(query, values, for_each=query.for_each), headers=HTMX)
    assert asked.status_code == 200
    assert "Send 6 emails?" in asked.content.decode()
    assert 'name="confirmed" value="1"' in asked.content.decode()
    assert not QueryRun.objects.exists()
    assert smtp_server.received == []


def test_the_editors_preview_shows_the_count_and_the_first_rows(team, merge_app, smtp_server):
    from django.urls import reverse

    from tests.integration.test_editor_queries import HTMX, form_data

    query = Query.objects.get(app=merge_app, name="news")
    client = signed_in(team.teammate)
    url = reverse("editor:query_preview", args=[merge_app.slug, query.name])
    values = {"table1": {"data": [*ROWS[:1], {"name": "Bad"}, *ROWS[2:]]}}
    html = client.post(url, form_data(query, values, for_each=query.for_each), headers=HTMX)
    text = html.content.decode()
    assert "<strong>6</strong> emails will go; the first 3:" in text
    assert "p0@example.com" in text and "Hi P0" in text
    assert text.count('class="qe-merge-row"') == 2
    assert "qe-merge-row qe-merge-row-error" in text  # the row with no email
    assert "This row will fail; the others are sent." in text
    assert not QueryRun.objects.exists()
    assert smtp_server.received == []


def test_the_editor_knows_row_and_index_only_in_a_merge(team, merge_app):
    client = signed_in(team.teammate)
    page = client.get(f"/edit/{merge_app.slug}/queries/news/").content.decode()
    assert "unknown name &#x27;row&#x27;" not in page and "unknown name 'row'" not in page
    plain = Query.objects.get(app=merge_app, name="plain")
    plain.fields = {**plain.fields, "subject": "Hi << row.name >>"}
    plain.save()
    page = client.get(f"/edit/{merge_app.slug}/queries/plain/").content.decode()
    assert "unknown name" in page and "row" in page


def test_a_rows_values_are_escaped_in_the_panel(team, merge_app, smtp_server):
    """A row's recipient and error come from the rows (a CSV, a table): text, never
    markup."""
    evil = '<img src=x onerror="alert(1)">'
    widget = Widget.objects.get(page__app=merge_app, name="table1")
    widget.properties = {"data": [{"name": "X", "email": evil}]}
    widget.save()
    publish(merge_app, team.owner)
    client = signed_in(team.owner)
    parent = start(client, merge_app)
    send_waiting(parent)
    html = client.post(merge_url(merge_app, parent)).content.decode()
    assert "1 of 1 failed" in html
    assert evil not in html
    assert "&lt;img src=x onerror=" in html
