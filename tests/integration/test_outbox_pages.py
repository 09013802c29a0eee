"""The outbox pages (editor/outbox.py): the list, its filters and search, one run's
message, Resend, Cancel and the CSV export, with real runs of a real SMTP query."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from builder.models import Query
from queries.execution import create_run
from queries.models import QueryRun, RunAttachment
from queries.outbox import execute_run
from tests.support.apps import make_app, welcome_inputs
from workspaces.audit import AuditEvent
from workspaces.files import FileContent

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


def run_for(query, user, email="ann@example.com", **extra) -> QueryRun:
    """A run stored as a page's click stores it (not sent: no commit in these tests)."""
    return create_run(query, user, welcome_inputs(email, **extra))


def outbox_url(team) -> str:
    return f"/w/{team.workspace.slug}/outbox/"


def run_url(team, run) -> str:
    return f"/w/{team.workspace.slug}/outbox/{run.pk}/"


def listed(response) -> list[int]:
    return [int(pk) for pk in response.context["page_obj"].object_list.values_list("pk", flat=True)]


# -- The list --------------------------------------------------------------------------


def test_it_lists_every_run_of_the_workspace_newest_first(client, team, contact):
    _, query = contact
    first = run_for(query, team.teammate, "first@example.com")
    second = run_for(query, team.viewer, "second@example.com")
    client.force_login(team.teammate)
    response = client.get(outbox_url(team))
    assert response.status_code == 200
    assert listed(response) == [second.pk, first.pk]
    html = response.content.decode()
    assert "first@example.com" in html and "Welcome, Ann!" in html
    assert "send_welcome" in html and "viewer" in html


def test_the_app_outbox_lists_only_that_apps_runs(client, team, contact, smtp_factory):
    app, query = contact
    _, other_query = make_app(team.workspace, smtp_factory().port, name="Other")
    mine = run_for(query, team.teammate)
    run_for(other_query, team.teammate)
    client.force_login(team.teammate)
    response = client.get(f"/edit/{app.slug}/outbox/")
    assert response.status_code == 200
    assert listed(response) == [mine.pk]
    assert 'class="active">Outbox</a>' in response.content.decode()


def test_the_workspace_nav_and_the_app_editor_link_to_the_outbox(client, team, contact):
    app, _ = contact
    client.force_login(team.teammate)
    assert outbox_url(team) in client.get(f"/w/{team.workspace.slug}/apps/").content.decode()
    queries_page = client.get(f"/edit/{app.slug}/queries/").content.decode()
    assert f"/edit/{app.slug}/outbox/" in queries_page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "failed"}, ["failed"]),
        ({"recipient": "BOB@"}, ["bob"]),
        ({"q": "mailbox full"}, ["failed"]),
        ({"q": "carol@example"}, ["carol"]),
        ({"query": "send_welcome"}, ["carol", "failed", "bob"]),
        ({"query": "nothing_like_it"}, []),
    ],
)
def test_filters_and_search_narrow_the_list(client, team, contact, params, expected):
    _, query = contact
    bob = run_for(query, team.teammate, "bob@example.com")
    failed = run_for(query, team.teammate, "dave@example.com")
    QueryRun.objects.filter(pk=failed.pk).update(status="failed", error="550 Mailbox full")
    carol = run_for(query, team.teammate, "x@example.com", cc_input={"value": "carol@example.com"})
    names = {bob.pk: "bob", failed.pk: "failed", carol.pk: "carol"}
    client.force_login(team.teammate)
    response = client.get(outbox_url(team), params)
    assert response.status_code == 200
    assert [names[pk] for pk in listed(response)] == expected


def test_dates_filter_whole_days(client, team, contact):
    _, query = contact
    old = run_for(query, team.teammate)
    new = run_for(query, team.teammate)
    QueryRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    today = timezone.localdate().isoformat()
    client.force_login(team.teammate)
    assert listed(client.get(outbox_url(team), {"from": today})) == [new.pk]
    assert listed(client.get(outbox_url(team), {"to": today})) == [new.pk, old.pk]
    earlier = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert listed(client.get(outbox_url(team), {"to": earlier})) == [old.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "exploded"}, "status:"),
        ({"from": "yesterday"}, "from:"),
        ({"to": "2026-13-45"}, "to:"),
        ({"from": "2026-02-02", "to": "2026-01-01"}, "to:"),
        ({"q": "x" * 201}, "q:"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(client, team, contact, params, field):
    client.force_login(team.teammate)
    response = client.get(outbox_url(team), params)
    assert response.status_code == 400
    problems = response.context["filters"].problems
    assert len(problems) == 1 and problems[0].startswith(field)
    assert 'role="alert">' + field in response.content.decode()


def test_it_pages_fifty_runs_at_a_time(client, team, contact):
    _, query = contact
    template = run_for(query, team.teammate)
    QueryRun.objects.bulk_create(
        [
            QueryRun(
                workspace=team.workspace,
                app=query.app,
                query=query,
                query_name=query.name,
                created_by=team.teammate,
                subject=f"Bulk {i}",
                mail_to="bulk@example.com",
                payload=template.payload,
            )
            for i in range(60)
        ]
    )
    client.force_login(team.teammate)
    first = client.get(outbox_url(team))
    assert len(listed(first)) == 50
    assert "Page 1 of 2" in first.content.decode()
    second = client.get(outbox_url(team), {"page": 2})
    assert len(listed(second)) == 11
    assert set(listed(first)).isdisjoint(listed(second))


def test_the_list_reads_no_message_bytes_and_a_fixed_number_of_queries(
    client, team, contact, django_assert_max_num_queries
):
    _, query = contact
    for i in range(5):
        run_for(query, team.teammate, f"n{i}@example.com")
    client.force_login(team.teammate)
    client.get(outbox_url(team))  # the session and membership, warmed
    with django_assert_max_num_queries(12) as captured:
        response = client.get(outbox_url(team))
    assert response.status_code == 200
    run_selects = [q["sql"] for q in captured.captured_queries if "queries_queryrun" in q["sql"]]
    assert run_selects
    for sql in run_selects:
        assert '"payload"' not in sql and '"fields"' not in sql
    assert not any("queries_runattachment" in q["sql"] for q in captured.captured_queries)


def test_a_subject_with_markup_is_escaped_in_the_list(client, team, contact):
    _, query = contact
    run = run_for(query, team.teammate)
    QueryRun.objects.filter(pk=run.pk).update(subject='<script>alert("x")</script>')
    client.force_login(team.teammate)
    html = client.get(outbox_url(team)).content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


# -- One run ---------------------------------------------------------------------------


def test_a_sent_run_shows_its_headers_bodies_attachments_reply_and_message_id(
    client, team, contact, smtp_server
):
    _, query = contact
    files = [FileContent("report.pdf", "application/pdf", b"%PDF-1.4 " + b"x" * 2000)]
    run = run_for(query, team.teammate, files1={"files": files})
    assert execute_run(run.pk).status == "sent"
    run.refresh_from_db()
    client.force_login(team.teammate)
    response = client.get(run_url(team, run))
    assert response.status_code == 200
    html = response.content.decode()
    message_id = run.payload_meta["message_id"]
    assert message_id == smtp_server.received[0].message["Message-ID"]
    assert message_id.replace("<", "&lt;").replace(">", "&gt;") in html
    assert "Welcome, Ann!" in html and "ann@example.com" in html
    assert "report.pdf" in html and "2.0\xa0KB" in html
    assert run.details["server_reply"] and run.details["server_reply"] in html
    assert 'sandbox title="HTML body"' in html
    assert "Hi &amp;lt;there&amp;gt;" in html or "Hi &lt;there&gt;" in html


def test_the_html_body_is_served_sandboxed(client, team, contact):
    _, query = contact
    run = run_for(query, team.teammate)
    client.force_login(team.teammate)
    response = client.get(run_url(team, run) + "html")
    assert response.status_code == 200
    assert response["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"Hello Ann" in response.content


def test_script_in_a_body_never_runs_on_the_detail_page(client, team, contact):
    _, query = contact
    evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    data = {"name": evil, "email": "a@example.com", "message": "m"}
    run = run_for(query, team.teammate, form1={"data": data})
    client.force_login(team.teammate)
    page = client.get(run_url(team, run)).content.decode()
    assert "<script>alert(2)</script>" not in page
    assert 'onerror="alert(1)"' not in page
    body = client.get(run_url(team, run) + "html")
    # Bound values are escaped into the HTML body; and the frame's CSP forbids script anyway.
    assert b"<script>alert(2)</script>" not in body.content
    assert "script-src" not in body["Content-Security-Policy"]


def test_failures_are_listed_with_their_type(client, team, contact):
    _, query = contact
    run = run_for(query, team.teammate)
    QueryRun.objects.filter(pk=run.pk).update(
        status="failed",
        attempts=2,
        failures=[
            {"at": "2026-12-07T10:00:00", "attempt": n, "type": "TransientError", "message": m}
            for n, m in ((1, "451 a"), (2, "451 b"))
        ],
    )
    client.force_login(team.teammate)
    html = client.get(run_url(team, run)).content.decode()
    assert html.count("TransientError") == 2 and "451 b" in html


def test_a_run_whose_query_was_deleted_still_displays(client, team, contact):
    app, query = contact
    run = run_for(query, team.teammate)
    client.force_login(team.teammate)
    Query.objects.filter(pk=query.pk).delete()
    run.refresh_from_db()
    assert run.query_id is None and run.app_id == app.pk
    assert listed(client.get(f"/edit/{app.slug}/outbox/")) == [run.pk]
    response = client.get(run_url(team, run))
    assert response.status_code == 200
    assert "deleted since" in response.content.decode()


def test_sandbox_notes_and_original_recipients_are_shown(client, team, contact, monkeypatch):
    _, query = contact
    run = run_for(query, team.teammate)
    QueryRun.objects.filter(pk=run.pk).update(
        payload_meta={**run.payload_meta, "sandbox": {"original_recipients": ["real@corp.test"]}}
    )
    from datasources.models import Datasource

    monkeypatch.setattr(Datasource, "sandbox_note", "mail goes to the dev mailbox", raising=False)
    client.force_login(team.teammate)
    assert "mail goes to the dev mailbox" in client.get(outbox_url(team)).content.decode()
    assert "real@corp.test" in client.get(run_url(team, run)).content.decode()


# -- Resend and cancel -----------------------------------------------------------------


def test_resend_is_refused_for_a_sent_run(client, team, contact):
    _, query = contact
    run = run_for(query, team.teammate)
    assert execute_run(run.pk).status == "sent"
    client.force_login(team.teammate)
    response = client.post(run_url(team, run) + "resend")
    assert response.status_code == 409
    assert "only a failed or unknown run can be sent again" in response.content.decode()
    assert QueryRun.objects.count() == 1


def test_resend_copies_the_message_and_files_and_links_both_ways(client, team, contact):
    _, query = contact
    files = [FileContent("a.txt", "text/plain", b"alpha"), FileContent("b.txt", "text/plain", b"b")]
    run = run_for(query, team.viewer, files1={"files": files})
    QueryRun.objects.filter(pk=run.pk).update(status="unknown", error="lost after DATA")
    client.force_login(team.teammate)
    response = client.post(run_url(team, run) + "resend")
    new = QueryRun.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302 and response["Location"] == run_url(team, new)
    assert (new.status, new.resent_from_id, new.created_by) == ("queued", run.pk, team.teammate)
    assert bytes(new.payload) == bytes(run.payload)
    assert new.payload_meta["message_id"] == run.payload_meta["message_id"]
    assert (new.fields, new.action) == (run.fields, run.action)
    assert (new.datasource_id, new.timeout_seconds) == (run.datasource_id, run.timeout_seconds)
    copied = RunAttachment.objects.filter(run=new).order_by("position")
    assert [(a.name, bytes(a.content)) for a in copied] == [("a.txt", b"alpha"), ("b.txt", b"b")]
    assert RunAttachment.objects.filter(run=run).count() == 2
    entry = AuditEvent.objects.get(action="resent")
    assert entry.actor == team.teammate and entry.detail == {"run": new.pk, "resent_from": run.pk}
    assert f"/outbox/{run.pk}/" in client.get(run_url(team, new)).content.decode()
    assert f"/outbox/{new.pk}/" in client.get(run_url(team, run)).content.decode()


def test_a_viewer_cannot_resend_even_their_own_run(client, team, contact):
    _, query = contact
    run = run_for(query, team.viewer)
    QueryRun.objects.filter(pk=run.pk).update(status="failed")
    client.force_login(team.viewer)
    assert client.post(run_url(team, run) + "resend").status_code == 403
    assert QueryRun.objects.count() == 1


def test_cancel_a_queued_run_from_its_page(client, team, contact, smtp_server):
    _, query = contact
    run = run_for(query, team.viewer)
    client.force_login(team.teammate)
    response = client.post(run_url(team, run) + "cancel")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelled" and run.error == "Cancelled by teammate."
    assert execute_run(run.pk) is None and smtp_server.received == []
    assert AuditEvent.objects.get(action="cancelled").detail == {"run": run.pk}
    again = client.post(run_url(team, run) + "cancel")
    assert again.status_code == 409
    assert "only a queued or scheduled run can be cancelled" in again.content.decode()


def test_a_viewer_cancels_their_own_run_not_anothers(client, team, contact):
    _, query = contact
    own = run_for(query, team.viewer)
    others = run_for(query, team.teammate)
    client.force_login(team.viewer)
    assert client.post(run_url(team, others) + "cancel").status_code == 404
    assert client.post(run_url(team, own) + "cancel").status_code == 302


# -- CSV export ------------------------------------------------------------------------


def exported(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_holds_exactly_the_filtered_rows(client, team, contact):
    _, query = contact
    runs = [run_for(query, team.teammate, f"r{i}@example.com") for i in range(4)]
    QueryRun.objects.filter(pk__in=[runs[1].pk, runs[3].pk]).update(status="failed")
    client.force_login(team.teammate)
    response = client.get(outbox_url(team) + "export.csv", {"status": "failed"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = exported(response)
    assert [int(r["id"]) for r in rows] == [runs[3].pk, runs[1].pk]
    assert list(rows[0]) == [
        "id",
        "created_at",
        "status",
        "app",
        "query",
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "ran_by",
        "attempts",
        "started_at",
        "finished_at",
        "error",
        "message_id",
    ]
    assert rows[0]["to"] == "r3@example.com" and rows[0]["ran_by"] == "teammate"
    assert rows[0]["message_id"] == runs[3].payload_meta["message_id"]
    assert rows[0]["app"] == "Contact" and rows[0]["query"] == "send_welcome"
    everything = exported(client.get(outbox_url(team) + "export.csv"))
    assert len(everything) == 4


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_the_csv_neutralises_formulas(client, team, contact, start):
    _, query = contact
    run = run_for(query, team.teammate)
    QueryRun.objects.filter(pk=run.pk).update(subject=f"{start}HYPERLINK(1)", error=f"{start}1+1")
    client.force_login(team.teammate)
    rows = exported(client.get(outbox_url(team) + "export.csv"))
    assert rows[0]["subject"] == f"'{start}HYPERLINK(1)"
    assert rows[0]["error"] == f"'{start}1+1"


def test_a_bad_filter_exports_nothing(client, team, contact):
    client.force_login(team.teammate)
    response = client.get(outbox_url(team) + "export.csv", {"from": "soon"})
    assert response.status_code == 400
    assert response.content.decode().startswith("from:")


# -- Permissions -----------------------------------------------------------------------


def test_a_viewer_sees_only_their_own_runs(client, team, contact):
    app, query = contact
    own = run_for(query, team.viewer)
    others = run_for(query, team.teammate)
    client.force_login(team.viewer)
    assert listed(client.get(outbox_url(team))) == [own.pk]
    assert listed(client.get(f"/edit/{app.slug}/outbox/")) == [own.pk]
    assert client.get(run_url(team, own)).status_code == 200
    assert client.get(run_url(team, others)).status_code == 404
    assert client.get(run_url(team, others) + "html").status_code == 404
    rows = exported(client.get(outbox_url(team) + "export.csv"))
    assert [int(r["id"]) for r in rows] == [own.pk]


def test_another_workspaces_runs_are_404(client, team, contact):
    app, query = contact
    run = run_for(query, team.teammate)
    QueryRun.objects.filter(pk=run.pk).update(status="failed")
    client.force_login(team.outsider)
    other = team.other_workspace.slug
    assert client.get(outbox_url(team)).status_code == 404
    assert client.get(f"/edit/{app.slug}/outbox/").status_code == 404
    assert client.get(f"/edit/{app.slug}/outbox/export.csv").status_code == 404
    # The outsider's own workspace, with another workspace's run id.
    assert client.get(f"/w/{other}/outbox/").status_code == 200
    for suffix in ("", "html"):
        assert client.get(f"/w/{other}/outbox/{run.pk}/{suffix}").status_code == 404
    for action in ("resend", "cancel"):
        assert client.post(f"/w/{other}/outbox/{run.pk}/{action}").status_code == 404
    assert QueryRun.objects.count() == 1


def test_anonymous_users_are_sent_to_sign_in(client, team, contact):
    app, query = contact
    run = run_for(query, team.teammate)
    for url in (outbox_url(team), f"/edit/{app.slug}/outbox/", run_url(team, run)):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.post(run_url(team, run) + "cancel")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert QueryRun.objects.get(pk=run.pk).status == "queued"


def test_resend_and_cancel_need_the_csrf_token(team, contact):
    from django.test import Client

    _, query = contact
    run = run_for(query, team.teammate)
    QueryRun.objects.filter(pk=run.pk).update(status="failed")
    queued = run_for(query, team.teammate)
    client = Client(enforce_csrf_checks=True)
    client.force_login(team.teammate)
    assert client.post(run_url(team, run) + "resend").status_code == 403
    assert client.post(run_url(team, queued) + "cancel").status_code == 403
    assert QueryRun.objects.count() == 2
    assert QueryRun.objects.get(pk=queued.pk).status == "queued"


def test_with_htmx_a_filter_swaps_only_the_results(client, team, contact):
    _, query = contact
    run_for(query, team.teammate, "bob@example.com")
    client.force_login(team.teammate)
    response = client.get(outbox_url(team), {"recipient": "bob"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith('<div id="outbox-results">') and "bob@example.com" in html
    assert "<form" not in html and "HX-Request" in response["Vary"]
    bad = client.get(outbox_url(team), {"status": "x"}, headers={"HX-Request": "true"})
    assert bad.status_code == 200 and 'role="alert">status:' in bad.content.decode()


def test_a_run_that_stored_no_email_shows_its_fields(client, team, contact):
    _, query = contact
    run = QueryRun.objects.create(
        workspace=team.workspace, query=query, fields={"note": "hello there"}, status="failed"
    )
    client.force_login(team.teammate)
    html = client.get(run_url(team, run)).content.decode()
    assert "hello there" in html and "The message as sent" not in html
    assert client.get(run_url(team, run) + "html").status_code == 404


def test_a_retrying_run_reads_as_not_sent_with_times_and_field_labels(
    client, team, contact, settings
):
    settings.TIME_ZONE = "Europe/Paris"
    _, query = contact
    run = run_for(query, team.teammate)
    QueryRun.objects.filter(pk=run.pk).update(
        status="scheduled",
        attempts=1,
        error="Could not connect to 127.0.0.1:1: connection refused.",
        error_field="port",
        failures=[
            {
                "at": "2026-12-07T23:15:59.285431+00:00",
                "attempt": 1,
                "type": "TransientError",
                "message": "refused",
            }
        ],
    )
    client.force_login(team.teammate)
    html = client.get(run_url(team, run)).content.decode()
    assert "The message as sent" not in html and "The message to send" in html
    assert "2026-12-07T23:15:59" not in html
    assert "2026-12-08 00:15:59 CET" in html
    assert "(field Port)" in html and "(field port)" not in html


def test_a_retrying_run_is_labelled_and_filtered_apart_from_a_scheduled_one(client, team, contact):
    _, query = contact
    later = run_for(query, team.teammate, "later@example.com")
    again = run_for(query, team.teammate, "again@example.com")
    QueryRun.objects.filter(pk=later.pk).update(
        status="scheduled", send_at=timezone.now() + timedelta(days=1)
    )
    QueryRun.objects.filter(pk=again.pk).update(
        status="scheduled", attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    client.force_login(team.teammate)
    assert listed(client.get(outbox_url(team), {"status": "retrying"})) == [again.pk]
    assert listed(client.get(outbox_url(team), {"status": "scheduled"})) == [later.pk]
    html = client.get(outbox_url(team)).content.decode()
    assert '<option value="retrying">Retrying</option>' in html
    assert 'run-status-scheduled">Retrying</span>' in html
    assert 'run-status-scheduled">Scheduled</span>' in html
    assert (
        'run-status-scheduled">Retrying</span>' in client.get(run_url(team, again)).content.decode()
    )
    rows = exported(client.get(outbox_url(team) + "export.csv", {"status": "retrying"}))
    assert [row["status"] for row in rows] == ["scheduled"]


def test_after_several_attempts_the_run_page_says_the_last_attempt_started(client, team, contact):
    _, query = contact
    run = run_for(query, team.teammate)
    now = timezone.now()
    QueryRun.objects.filter(pk=run.pk).update(
        status="failed", attempts=1, started_at=now, finished_at=now + timedelta(seconds=2)
    )
    client.force_login(team.teammate)
    html = client.get(run_url(team, run)).content.decode()
    assert "<dt>Started</dt>" in html and "· took 2.00 s" in html
    QueryRun.objects.filter(pk=run.pk).update(attempts=3)
    html = client.get(run_url(team, run)).content.decode()
    assert "<dt>Last attempt started</dt>" in html and "last attempt took 2.00 s" in html
