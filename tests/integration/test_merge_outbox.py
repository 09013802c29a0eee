"""A mail merge seen by the other parts of issue 12: its rows in the outbox (listed,
searchable, resent), a merge scheduled with send_at, and a merge through a sandboxed
datasource. Real SMTP fixture; tasks run in the web process (eager Celery)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from queries.execution import create_run
from queries.models import QueryRun, RunAttachment, RunStatus
from queries.outbox import execute_run
from queries.tasks import sweep
from tests.support.merge import make_merge_app, people
from workspaces.files import FileContent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def merge_app(team, smtp_server):
    return make_merge_app(team.workspace, smtp_server.port)


def outbox(team) -> str:
    return f"/w/{team.workspace.slug}/outbox/"


def merge(query, user, rows: list, **inputs) -> QueryRun:
    return create_run(query, user, {"table1": {"data": rows}, **inputs})


def test_a_merges_rows_are_listed_and_searchable_in_the_outbox(
    client, team, merge_app, smtp_server
):
    _, query = merge_app
    parent = merge(query, team.teammate, people(5))
    assert parent.status == RunStatus.SENT
    row = parent.children.get(row_index=3)
    # bulk_create skips QueryRun.save(): the columns the outbox lists are filled anyway.
    assert (row.subject, row.mail_to, row.query_name) == (
        "Hello Person 3 (row 4 of 5)",
        "person3@example.com",
        "send_each",
    )
    assert row.app_id == query.app_id
    client.force_login(team.teammate)
    page = client.get(outbox(team), {"q": "person3@example.com"})
    assert page.status_code == 200
    assert [run.pk for run in page.context["page_obj"].object_list] == [row.pk]
    assert client.get(f"{outbox(team)}{row.pk}/").status_code == 200
    assert client.get(f"{outbox(team)}{parent.pk}/").status_code == 200


def test_a_merge_is_not_resent_whole_and_a_row_that_never_had_a_message_is_not_resent(
    client, team, merge_app, smtp_server
):
    _, query = merge_app
    rows = [*people(2), {"name": "No address"}]
    parent = merge(query, team.teammate, rows)
    assert parent.status == RunStatus.FAILED
    client.force_login(team.teammate)
    refused = client.post(f"{outbox(team)}{parent.pk}/resend")
    assert refused.status_code == 409
    assert "row by row" in refused.content.decode()
    broken = parent.children.get(row_index=2)
    assert broken.status == RunStatus.FAILED and broken.payload is None
    refused = client.post(f"{outbox(team)}{broken.pk}/resend")
    assert refused.status_code == 409
    assert "never had a message" in refused.content.decode()
    assert QueryRun.objects.filter(resent_from__isnull=False).count() == 0
    assert len(smtp_server.received) == 2


def test_resending_a_failed_row_sends_the_merges_shared_files(client, team, merge_app, smtp_server):
    app, query = merge_app
    query.fields = {**query.fields, "attachments": "<< files1.files >>"}
    query.save()
    files = [FileContent("terms.txt", "text/plain", b"the terms")]
    smtp_server.refuse("person0@example.com")
    parent = merge(query, team.teammate, people(1), files1={"files": files})
    row = parent.children.get()
    assert row.status == RunStatus.FAILED
    smtp_server.handler.refuse.clear()
    client.force_login(team.teammate)
    response = client.post(f"{outbox(team)}{row.pk}/resend")
    assert response.status_code == 302
    new = QueryRun.objects.get(resent_from=row)
    assert [a.name for a in RunAttachment.objects.filter(run=new)] == ["terms.txt"]
    assert QueryRun.objects.get(pk=new.pk).status == RunStatus.SENT
    (received,) = smtp_server.received
    (attachment,) = received.message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content()) == ("terms.txt", "the terms")


def test_a_merge_with_send_at_waits_scheduled_and_goes_out_at_its_time(
    team, merge_app, smtp_server
):
    _, query = merge_app
    due = timezone.now() + timedelta(minutes=10)
    query.send_at = due.isoformat()
    query.save()
    parent = merge(query, team.teammate, people(3))
    rows = list(parent.children.order_by("row_index"))
    assert {row.status for row in rows} == {RunStatus.SCHEDULED}
    assert {row.send_at for row in rows} == {due}
    assert all(execute_run(row.pk) is None for row in rows)  # not due: nothing claimed
    assert smtp_server.received == []
    QueryRun.objects.filter(parent=parent).update(
        next_attempt_at=timezone.now(), send_at=timezone.now()
    )
    sweep()
    parent.refresh_from_db()
    assert parent.status == RunStatus.SENT
    assert len(smtp_server.received) == 3


def test_a_sandboxed_merge_sends_every_row_to_the_catch_all(team, merge_app, smtp_server):
    _, query = merge_app
    datasource = query.datasource
    datasource.config = {
        **datasource.config,
        "sandbox": "catchall",
        "sandbox_address": "catch@kiln.test",
    }
    datasource.save()
    parent = merge(query, team.teammate, people(3))
    assert parent.status == RunStatus.SENT
    assert {tuple(r.rcpt_tos) for r in smtp_server.received} == {("catch@kiln.test",)}
    row = parent.children.get(row_index=1)
    assert row.payload_meta["sandbox"]["original_recipients"] == ["person1@example.com"]


def test_send_the_rest_of_a_stopped_scheduled_merge_keeps_its_time(team, merge_app, smtp_server):
    from queries.merge import resume_merge, stop_merge

    _, query = merge_app
    due = timezone.now() + timedelta(minutes=10)
    query.send_at = due.isoformat()
    query.save()
    parent = merge(query, team.teammate, people(3))
    assert stop_merge(parent, "teammate") == 3
    assert resume_merge(parent, "teammate") == 3
    rows = list(parent.children.all())
    assert {row.status for row in rows} == {RunStatus.SCHEDULED}
    assert {row.next_attempt_at for row in rows} == {due}
    assert smtp_server.received == []


def catch_all(datasource, on: bool = True) -> None:
    extra = {"sandbox": "catchall", "sandbox_address": "catch@kiln.test"} if on else {}
    datasource.config = {
        **{k: v for k, v in datasource.config.items() if not k.startswith("sandbox")},
        **extra,
    }
    datasource.save()


def test_a_run_page_says_where_a_run_went_not_where_it_was_planned_to(client, team, smtp_server):
    from tests.support.apps import make_app, welcome_inputs

    _, query = make_app(team.workspace, smtp_server.port)
    client.force_login(team.teammate)
    # Stored with sandbox mode off, sent after it was turned on: it went to the catch-all.
    query.send_at = (timezone.now() + timedelta(minutes=5)).isoformat()
    query.save()
    later = create_run(query, team.teammate, welcome_inputs())
    catch_all(query.datasource)
    QueryRun.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now())
    assert execute_run(later.pk).status == RunStatus.SENT
    page = client.get(f"{outbox(team)}{later.pk}/").content.decode()
    assert "Sent in sandbox mode, to catch@kiln.test" in page
    assert [r.rcpt_tos for r in smtp_server.received] == [["catch@kiln.test"]]
    # Stored in sandbox mode and cancelled: never "sent".
    cancelled = create_run(query, team.teammate, welcome_inputs())
    assert cancelled.cancel(by="teammate")
    page = client.get(f"{outbox(team)}{cancelled.pk}/").content.decode()
    assert "Sent in sandbox mode" not in page
    assert "Stored in sandbox mode" in page and "it was not sent" in page


def test_a_literal_send_at_in_a_run_query_action_is_checked_where_it_is_typed():
    from editor.canvas_events import send_at_warnings

    (warning,) = send_at_warnings({"action": "run_query", "send_at": "next tuesday"})
    assert warning.startswith("Send at: ") and "next tuesday" in warning
    (warning,) = send_at_warnings({"action": "run_query", "send_at": "2001-01-01T09:00"})
    assert "past" in warning
    ahead = (timezone.now() + timedelta(days=1)).isoformat()
    assert send_at_warnings({"action": "run_query", "send_at": ahead}) == []
    assert send_at_warnings({"action": "run_query", "send_at": "<< form1.data.when >>"}) == []
    assert send_at_warnings({"action": "run_query"}) == []


def test_a_merges_page_lists_its_rows_and_a_rows_page_links_its_merge(
    client, team, merge_app, smtp_server
):
    _, query = merge_app
    parent = merge(query, team.teammate, [*people(2), {"name": "No address"}])
    client.force_login(team.teammate)
    page = client.get(f"{outbox(team)}{parent.pk}/")
    text = page.content.decode()
    assert "Mail merge of 3 rows" in text
    assert "2 sent, 1 failed, 0 remaining" in text
    for row in parent.children.all():
        assert f"{outbox(team)}{row.pk}/" in text
    # No Resend where a resend would be refused: the parent, a row never built.
    assert "outbox_resend" not in text and "/resend" not in text
    broken = parent.children.get(row_index=2)
    text = client.get(f"{outbox(team)}{broken.pk}/").content.decode()
    assert f"{outbox(team)}{parent.pk}/" in text and "/resend" not in text


def test_test_values_typed_before_a_widget_was_added_gain_its_default(client, team, merge_app):
    import json as jsonlib

    from builder.models import Widget

    app, query = merge_app
    client.force_login(team.teammate)
    session = client.session
    session[f"kiln.query_test_values.{app.pk}"] = jsonlib.dumps({"files1": {"files": []}})
    session.save()
    page = Widget.objects.get(name="table1").page
    Widget.objects.create(page=page, name="table2", type="table")
    response = client.get(f"/edit/{app.slug}/queries/{query.name}/")
    values = jsonlib.loads(response.context["form"]["test_values"].value())
    assert values["files1"] == {"files": []}  # as typed
    assert "table1" in values and "table2" in values  # added since


def test_test_values_that_are_no_json_object_are_kept_as_typed():
    from editor.queries import _with_new_widgets

    assert _with_new_widgets('{"a": ', {"table1": {}}) == '{"a": '
    assert _with_new_widgets("[1]", {"table1": {}}) == "[1]"
    assert _with_new_widgets('{"table1": {}}', {"table1": {"data": []}}) == '{"table1": {}}'


def test_the_outbox_list_says_when_a_scheduled_run_sends(client, team, smtp_server):
    from tests.support.apps import make_app, welcome_inputs

    _, query = make_app(team.workspace, smtp_server.port)
    due = timezone.localtime(timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    query.send_at = due.isoformat()
    query.save()
    create_run(query, team.teammate, welcome_inputs())
    client.force_login(team.teammate)
    text = client.get(outbox(team)).content.decode()
    assert "sends at" in text
    assert due.strftime("%Y-%m-%d %H:%M") in text


def test_a_scheduled_merges_panel_says_when_it_sends(team, merge_app, smtp_server):
    from viewer.merges import state_label, waiting_for

    _, query = merge_app
    due = timezone.now() + timedelta(minutes=10)
    query.send_at = due.isoformat()
    query.save()
    parent = merge(query, team.teammate, people(2))
    assert parent.send_at == due
    progress = parent.progress()
    assert waiting_for(parent, progress) == due
    assert state_label(progress, due).startswith("Scheduled for ")
    # The sweep never takes the parent for a stuck send.
    sweep()
    parent.refresh_from_db()
    assert parent.status == RunStatus.SENDING
