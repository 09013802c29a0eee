"""Mail merge (docs/merge.md): a query with for_each sends one email per row, through
the run API, against a real SMTP server; eager Celery here, real worker processes in
test_merge_workers.py."""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from builder.models import Query
from queries.errors import RunRequestError
from queries.execution import create_run
from queries.merge import (
    csv_rows,
    merge_rows,
    preview_merge,
    resume_merge,
    retry_row,
    stop_merge,
)
from queries.models import ApiToken, QueryRun, RunAttachment, RunStatus
from queries.tasks import sweep
from tests.support.merge import CSV_FIELDS, make_merge_app, people
from tests.support.services import CeleryWorker
from workspaces.audit import AuditEvent
from workspaces.files import FileContent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def merge_app(team, smtp_server):
    return make_merge_app(team.workspace, smtp_server.port)


@pytest.fixture
def api(client, team):
    key = ApiToken.issue(team.teammate, "tests")[1]
    headers = {"Authorization": f"Bearer {key}"}

    def call(method: str, path: str, body=None, **kw):
        if method == "get":
            return client.get(f"/api/v1/{path}", headers=headers)
        if body is not None and not isinstance(body, dict | str):
            raise TypeError(body)
        if isinstance(body, dict) and kw.get("multipart"):
            return client.post(f"/api/v1/{path}", body, headers=headers)
        return client.post(
            f"/api/v1/{path}",
            json.dumps(body or {}),
            content_type="application/json",
            headers=headers,
        )

    return call


def start(api, app, inputs, query="send_each"):
    return api("post", f"apps/{app.slug}/queries/{query}/runs", {"inputs": inputs})


def test_a_merge_sends_one_personalised_email_per_row(api, merge_app, smtp_server):
    app, _ = merge_app
    response = start(api, app, {"table1": {"data": people(20)}})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "sent"
    assert body["progress"]["total"] == 20
    assert body["progress"]["sent"] == 20
    assert body["progress"]["remaining"] == 0
    assert body["progress"]["finished"] is True
    assert body["data"] == {"total": 20, "sent": 20, "failed": 0, "cancelled": 0, "unknown": 0}
    received = smtp_server.received
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(
        f"person{i}@example.com" for i in range(20)
    )
    subjects = {r.message["Subject"] for r in received}
    assert len(subjects) == 20
    assert "Hello Person 7 (row 8 of 20)" in subjects
    parent = QueryRun.objects.get(pk=body["id"])
    assert parent.children.count() == 20
    assert list(parent.children.order_by("row_index").values_list("row_index", flat=True)) == list(
        range(20)
    )
    # One audit entry for the whole merge.
    assert AuditEvent.objects.filter(action="ran").count() == 1


def test_a_row_whose_bindings_fail_fails_alone(api, merge_app, smtp_server):
    app, _ = merge_app
    rows = people(5)
    rows[2] = {"name": "No Email"}  # row.email is missing
    response = start(api, app, {"table1": {"data": rows}})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"] == "1 of 5 rows failed."
    assert body["progress"]["sent"] == 4
    assert body["progress"]["failed"] == 1
    assert len(smtp_server.received) == 4
    bad = QueryRun.objects.get(parent_id=body["id"], row_index=2)
    assert bad.status == RunStatus.FAILED
    assert bad.error_field == "to"
    assert bad.error.startswith("Row 3:")
    assert bad.attempts == 0
    assert bad.details == {"row": {"name": "No Email"}}


def test_for_each_that_is_not_a_list_is_a_400_naming_it(api, merge_app):
    app, _ = merge_app
    for value, expected in [
        ({"a": 1}, "an object"),
        ("text", "the text"),
        (None, "nothing"),
        ([], "empty list"),
    ]:
        response = start(api, app, {"table1": {"data": value}})
        assert response.status_code == 400, value
        assert response.json()["field"] == "for_each"
        assert expected in response.json()["error"]
    assert not QueryRun.objects.exists()


def test_row_outside_a_merge_is_an_unknown_name(team, merge_app):
    app, query = merge_app
    query.for_each = ""
    query.save()
    with pytest.raises(RunRequestError) as caught:
        create_run(query, team.teammate, {"table1": {"data": people(2)}})
    assert "row" in caught.value.message
    assert not QueryRun.objects.exists()


def test_preview_counts_and_shows_the_first_rows(team, merge_app, smtp_server):
    _, query = merge_app
    rows = people(10)
    rows[1] = {"name": "Broken", "email": "not an address"}
    preview = preview_merge(query, team.teammate, {"table1": {"data": rows}}, limit=3)
    assert preview.count == 10
    assert [row.index for row in preview.rows] == [0, 1, 2]
    first = preview.rows[0]
    assert first.row == rows[0]
    assert first.fields["to"] == "person0@example.com"
    assert first.fields["subject"] == "Hello Person 0 (row 1 of 10)"
    assert first.preview is not None and "Person 0" in first.preview["text"]
    assert preview.rows[1].error_field == "to"
    assert preview.rows[1].fields is None
    assert preview.limit_error == ""
    assert not QueryRun.objects.exists()
    assert smtp_server.received == []


def test_preview_says_when_a_limit_would_refuse_the_merge(team, merge_app, settings):
    _, query = merge_app
    settings.KILN_RUNS_PER_APP_PER_HOUR = 5
    preview = preview_merge(query, team.teammate, {"table1": {"data": people(6)}})
    assert preview.count == 6
    assert "This merge has 6 rows" in preview.limit_error
    assert not QueryRun.objects.exists()


def test_a_csv_with_a_malformed_address_fails_that_row_only(api, team, smtp_server):
    app, _ = make_merge_app(team.workspace, smtp_server.port, fields=CSV_FIELDS)
    csv_text = "email;name\nann@example.com;Ann\nnot-an-address;Bob\ncid@example.com;Cid\n"
    upload = SimpleUploadedFile("list.csv", csv_text.encode("utf-8-sig"), "text/csv")
    response = api(
        "post",
        f"apps/{app.slug}/queries/send_each/runs",
        {"inputs": "{}", "files1": upload},
        multipart=True,
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["progress"]["sent"] == 2
    assert body["progress"]["failed"] == 1
    (bad,) = QueryRun.objects.filter(parent_id=body["id"], status="failed")
    assert bad.row_index == 1
    assert bad.error_field == "to"
    assert "not-an-address" in bad.error
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "ann@example.com",
        "cid@example.com",
    ]


def test_stop_then_resume_sends_each_row_once(team, merge_app, smtp_server, settings):
    _, query = merge_app
    settings.KILN_MERGE_RATE_PER_MINUTE = 60  # rows wait, scheduled a second apart
    parent = create_run(query, team.teammate, {"table1": {"data": people(5)}})
    parent.refresh_from_db()
    # Eagerly, the first row is due at once and sent; the others wait.
    assert parent.progress()["sent"] == 1
    assert stop_merge(parent, "teammate") == 4
    assert parent.status == RunStatus.CANCELLED
    assert parent.error == "Stopped: 4 of 5 rows not sent (1 sent)."
    settings.KILN_MERGE_RATE_PER_MINUTE = 0
    assert resume_merge(parent, "teammate") == 4
    parent.refresh_from_db()
    assert parent.status == RunStatus.SENT
    assert len(smtp_server.received) == 5
    assert len({r.rcpt_tos[0] for r in smtp_server.received}) == 5
    # Nothing left to resume: sent rows are never queued again.
    assert resume_merge(parent, "teammate") == 0
    assert len(smtp_server.received) == 5


def test_row_and_index_are_known_names_only_in_a_merge(merge_app):
    from editor.queries import field_warnings, known_names

    app, query = merge_app
    texts = {"to": "<< row.email >>", "subject": "<< index >>"}
    assert field_warnings(texts, known_names(app, merge=True)) == {"to": [], "subject": []}
    warnings = field_warnings(texts, known_names(app))
    assert "unknown name 'row'" in warnings["to"][0]
    assert "unknown name 'index'" in warnings["subject"][0]


def test_for_each_travels_in_the_app_file(team, merge_app):
    from builder.document import export_app, import_app

    app, _ = merge_app
    exported = export_app(app)
    (query,) = exported["queries"]
    assert query["for_each"] == "<< table1.data >>"
    copy = import_app(exported, team.workspace)
    assert copy.queries.get().for_each == "<< table1.data >>"
    exported["queries"][0]["for_each"] = 12
    from builder.document import AppFileError

    with pytest.raises(AppFileError) as caught:
        import_app(exported, team.workspace)
    assert "for_each" in str(caught.value)


def test_retry_a_failed_row_after_the_cause_is_fixed(team, merge_app, smtp_server):
    _, query = merge_app
    smtp_server.refuse("person1@example.com")
    parent = create_run(query, team.teammate, {"table1": {"data": people(3)}})
    parent.refresh_from_db()
    assert parent.status == RunStatus.FAILED
    assert parent.error == "1 of 3 rows failed."
    bad = parent.children.get(row_index=1)
    assert bad.status == RunStatus.FAILED
    assert "No such user" in bad.error
    del smtp_server.handler.refuse["person1@example.com"]
    retried = retry_row(bad, "teammate")
    assert retried.pk == bad.pk
    retried.refresh_from_db()
    assert retried.status == RunStatus.SENT
    assert len(retried.failures) == 1  # the refusal is kept as history
    parent.refresh_from_db()
    assert parent.status == RunStatus.SENT
    assert parent.error == ""
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "person0@example.com",
        "person1@example.com",
        "person2@example.com",
    ]
    # A sent row is never sent again.
    with pytest.raises(RunRequestError):
        retry_row(retried, "teammate")
    assert len(smtp_server.received) == 3


def _csv(text: str | bytes, name: str = "list.csv") -> FileContent:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return FileContent(name, "text/csv", data)


def test_csv_rows_read_bom_semicolons_tabs_quotes_and_blank_lines():
    rows = csv_rows(_csv('\ufeffemail;name\r\na@x.org;Ann\r\n\r\nb@x.org;"Smith; Bob"\r\n'))
    assert rows == [
        {"email": "a@x.org", "name": "Ann"},
        {"email": "b@x.org", "name": "Smith; Bob"},
    ]
    assert csv_rows(_csv("email\tname\na@x.org\tAnn\n")) == [{"email": "a@x.org", "name": "Ann"}]
    assert csv_rows(_csv("email,name,city\na@x.org,Ann\n")) == [
        {"email": "a@x.org", "name": "Ann", "city": ""}
    ]
    assert csv_rows(_csv("email\na@x.org\n")) == [{"email": "a@x.org"}]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "is empty"),
        ("\n\n  \n", "is empty"),
        ("email,name\n", "no rows to send"),
        ("email,name\na@x.org,Ann,extra\n", "line 2: 3 values"),
        ("email,,name\na,b,c\n", "needs a name"),
        ("email,email\na,b\n", "names email more than once"),
        (b"email\n\xe9t\xe9@x.org\n", "not UTF-8"),
    ],
)
def test_csv_oddities_are_errors_naming_for_each(text, expected):
    with pytest.raises(RunRequestError) as caught:
        csv_rows(_csv(text))
    assert caught.value.field == "for_each"
    assert expected in caught.value.message
    assert "list.csv" in caught.value.message


def test_more_rows_than_the_cap_are_refused(settings):
    settings.KILN_MERGE_MAX_ROWS = 10000
    text = "email\n" + "".join(f"p{i}@x.org\n" for i in range(10001))
    with pytest.raises(RunRequestError) as caught:
        csv_rows(_csv(text))
    assert "more than 10000 rows" in caught.value.message
    assert "KILN_MERGE_MAX_ROWS" in caught.value.message
    assert len(csv_rows(_csv("email\n" + "".join(f"p{i}@x.org\n" for i in range(10000))))) == 10000
    with pytest.raises(RunRequestError):
        merge_rows(list(range(10001)))
    with pytest.raises(RunRequestError) as caught:
        merge_rows([_csv("a\n1\n"), _csv("a\n2\n")])
    assert "2 files" in caught.value.message


def test_a_csv_over_the_cap_through_the_api_stores_nothing(api, team, smtp_server, settings):
    settings.KILN_MERGE_MAX_ROWS = 5
    app, _ = make_merge_app(team.workspace, smtp_server.port, fields=CSV_FIELDS)
    text = "email,name\n" + "".join(f"p{i}@x.org,P{i}\n" for i in range(6))
    response = api(
        "post",
        f"apps/{app.slug}/queries/send_each/runs",
        {"inputs": "{}", "files1": SimpleUploadedFile("big.csv", text.encode(), "text/csv")},
        multipart=True,
    )
    assert response.status_code == 400
    assert response.json()["field"] == "for_each"
    assert "more than 5 rows" in response.json()["error"]
    assert not QueryRun.objects.exists()
    assert smtp_server.received == []


def test_row_values_are_escaped_in_an_html_body_and_cannot_inject_headers(
    team, merge_app, smtp_server
):
    _, query = merge_app
    query.fields = {**query.fields, "body": "<p>Dear << row.name >></p>", "body_type": "html"}
    query.save()
    rows = [
        {"name": "<script>alert(1)</script>", "email": "a@x.org"},
        {"name": "Eve\r\nBcc: victim@x.org", "email": "b@x.org"},
    ]
    parent = create_run(query, team.teammate, {"table1": {"data": rows}})
    (received,) = smtp_server.received
    html = received.message.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    bad = parent.children.get(row_index=1)
    assert bad.status == RunStatus.FAILED
    assert bad.error_field == "subject"
    assert received.rcpt_tos == ["a@x.org"]


def test_a_sending_rate_spaces_the_rows_and_counts_their_timeout_from_then(
    team, merge_app, settings, monkeypatch
):
    import queries.merge

    monkeypatch.setattr(queries.merge, "start_merge_walk", lambda parent_id: None)
    _, query = merge_app
    settings.KILN_MERGE_RATE_PER_MINUTE = 30  # one every 2 s
    parent = create_run(query, team.teammate, {"table1": {"data": people(4)}})
    rows = list(parent.children.order_by("row_index"))
    assert [r.status for r in rows] == ["queued", "scheduled", "scheduled", "scheduled"]
    due = [r.next_attempt_at for r in rows]
    gaps = [(due[i + 1] - due[i]).total_seconds() for i in range(3)]
    assert gaps == [2.0, 2.0, 2.0]
    assert [r.timeout_seconds for r in rows] == [60, 62, 64, 66]


def test_a_published_merge_runs_as_published(api, team, merge_app, smtp_server):
    from builder.publishing import publish

    app, query = merge_app
    publish(app, team.owner)
    query.for_each = ""  # the draft is no merge any more; the published app still is
    query.save()
    response = start(api, app, {"table1": {"data": people(3)}})
    assert response.status_code == 202, response.json()
    assert response.json()["progress"]["sent"] == 3
    assert len(smtp_server.received) == 3


def test_a_list_of_single_values_is_rows_too(team, merge_app, smtp_server):
    _, query = merge_app
    query.for_each = "<< table1.data >>"
    query.fields = {**query.fields, "to": "<< row >>", "subject": "No. << index >>", "body": "Hi"}
    query.save()
    parent = create_run(query, team.teammate, {"table1": {"data": ["a@x.org", "b@x.org"]}})
    assert parent.status == RunStatus.SENT, list(parent.children.values_list("error", flat=True))
    assert sorted(r.message["Subject"] for r in smtp_server.received) == ["No. 0", "No. 1"]


def test_progress_is_one_sql_query(team, merge_app, django_assert_num_queries):
    _, query = merge_app
    parent = create_run(query, team.teammate, {"table1": {"data": people(5)}})
    parent.refresh_from_db()
    with django_assert_num_queries(1):
        progress = parent.progress()
    assert progress["total"] == 5
    assert progress["sent"] == 5
    assert progress["finished"] is True
    assert set(progress) >= {
        "total",
        "sent",
        "failed",
        "cancelled",
        "unknown",
        "remaining",
        "rate",
        "started_at",
        "finished",
        "status",
    }


def test_a_merge_is_one_run_for_the_per_person_limit_and_its_rows_for_the_app_cap(
    api, team, merge_app, settings
):
    app, query = merge_app
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 2
    settings.KILN_RUNS_PER_APP_PER_HOUR = 30
    assert start(api, app, {"table1": {"data": people(10)}}).status_code == 202
    assert start(api, app, {"table1": {"data": people(10)}}).status_code == 202
    # Two merges of 10 rows: two runs for the person, who may run no more this minute.
    refused = start(api, app, {"table1": {"data": people(1)}})
    assert refused.status_code == 429
    assert "KILN_RUNS_PER_USER_PER_MINUTE" in refused.json()["error"]
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 100
    # 20 rows sent this hour; 11 more would pass the app's 30.
    refused = start(api, app, {"table1": {"data": people(11)}})
    assert refused.status_code == 429
    assert "This merge has 11 rows" in refused.json()["error"]
    assert "20 of them in the last hour" in refused.json()["error"]
    assert start(api, app, {"table1": {"data": people(10)}}).status_code == 202
    assert QueryRun.objects.filter(parent__isnull=False).count() == 30


def test_the_same_attachment_is_stored_once_for_every_row(team, merge_app, smtp_server):
    _, query = merge_app
    query.fields = {**query.fields, "attachments": "<< files1.files >>"}
    query.save()
    pdf = FileContent("terms.pdf", "application/pdf", b"%PDF-1.4 terms" * 100)
    inputs = {"table1": {"data": people(4)}, "files1": {"files": [pdf]}}
    parent = create_run(query, team.teammate, inputs)
    assert parent.status == RunStatus.SENT
    assert RunAttachment.objects.count() == 1
    assert RunAttachment.objects.get().run_id == parent.pk
    for received in smtp_server.received:
        (part,) = list(received.message.iter_attachments())
        assert part.get_filename() == "terms.pdf"
        assert part.get_content() == pdf.data


def test_binding_context_shows_a_merge_as_one_run_with_its_progress(team, merge_app):
    from queries.context import query_states

    _, query = merge_app
    create_run(query, team.teammate, {"table1": {"data": people(3)}})
    state = query_states([query], team.teammate)["send_each"]
    assert state["status"] == "sent"
    assert len(state["runs"]) == 1
    assert state["progress"]["sent"] == 3
    assert state["data"]["sent"] == 3


def test_another_workspace_cannot_stop_resume_retry_or_read_a_merge(
    client, api, team, merge_app, smtp_server
):
    app, _ = merge_app
    smtp_server.refuse("person1@example.com")
    parent_id = start(api, app, {"table1": {"data": people(3)}}).json()["id"]
    failed = QueryRun.objects.get(parent_id=parent_id, row_index=1)
    outsider = ApiToken.issue(team.outsider)[1]
    headers = {"Authorization": f"Bearer {outsider}"}
    for path in ("stop", "resume", "cancel"):
        assert client.post(f"/api/v1/runs/{parent_id}/{path}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/runs/{failed.pk}/retry", headers=headers).status_code == 404
    assert client.get(f"/api/v1/runs/{parent_id}/rows", headers=headers).status_code == 404
    assert client.get(f"/api/v1/runs/{failed.pk}", headers=headers).status_code == 404
    # The workspace's viewer did not start it: 404 too.
    viewer = ApiToken.issue(team.viewer)[1]
    headers = {"Authorization": f"Bearer {viewer}"}
    assert client.post(f"/api/v1/runs/{failed.pk}/retry", headers=headers).status_code == 404
    failed.refresh_from_db()
    assert failed.status == RunStatus.FAILED
    assert len(smtp_server.received) == 2


def test_the_api_lists_rows_and_refuses_what_cannot_be_done(api, merge_app, smtp_server):
    app, _ = merge_app
    smtp_server.refuse("person1@example.com")
    parent_id = start(api, app, {"table1": {"data": people(3)}}).json()["id"]
    rows = api("get", f"runs/{parent_id}/rows?status=failed").json()
    assert rows["progress"]["failed"] == 1
    (row,) = rows["rows"]
    assert row["row_index"] == 1
    assert row["parent"] == parent_id
    assert "No such user" in row["error"]
    assert row["summary"] == {"to": "person1@example.com", "subject": "Hello Person 1 (row 2 of 3)"}
    assert api("get", f"runs/{parent_id}/rows?status=nope").status_code == 400
    sent = QueryRun.objects.get(parent_id=parent_id, row_index=0)
    refused = api("post", f"runs/{sent.pk}/retry")
    assert refused.status_code == 409
    assert refused.json()["field"] == "status"
    assert api("post", f"runs/{sent.pk}/stop").status_code == 409
    del smtp_server.handler.refuse["person1@example.com"]
    retried = api("post", f"runs/{row['id']}/retry")
    assert retried.status_code == 200, retried.json()
    assert retried.json()["status"] == "sent"
    assert api("get", f"runs/{parent_id}").json()["status"] == "sent"
    assert AuditEvent.objects.filter(action="ran").count() == 2  # the merge, the retry


# -- real worker processes --------------------------------------------------------------


def until(condition, timeout: float = 30, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            return value
        time.sleep(step)
    return value


def progress_of(parent_id: int) -> dict:
    return QueryRun.objects.get(pk=parent_id).progress()


@pytest.mark.redis
def test_200_rows_with_a_worker_arrive_once_each_over_one_connection(
    celery_worker, api, merge_app, smtp_server
):
    app, _ = merge_app
    started = time.monotonic()
    response = start(api, app, {"table1": {"data": people(200)}})
    created_in = time.monotonic() - started
    assert response.status_code == 202, response.json()
    # About 0.4 s here (docs/decisions.md); the bound leaves room for a busy machine.
    assert created_in < 3.0
    parent_id = response.json()["id"]
    assert until(lambda: progress_of(parent_id)["finished"], timeout=60), celery_worker.output()
    progress = progress_of(parent_id)
    assert progress["sent"] == 200
    assert progress["status"] == "sent"
    assert progress["rate"] > 0
    received = smtp_server.received
    assert len(received) == 200
    assert len({r.rcpt_tos[0] for r in received}) == 200
    assert len({r.message["Subject"] for r in received}) == 200
    # One worker process keeps its connection between rows (KILN_SMTP_REUSE_SECONDS).
    assert smtp_server.handler.connections <= 2


@pytest.mark.redis
def test_a_worker_killed_midway_then_restarted_ends_with_200_messages_none_twice(
    celery_worker, api, merge_app, smtp_server, settings
):
    app, _ = merge_app
    # Killed while the server holds a message's data and has not answered yet: the
    # server keeps that message (it had queued it), the worker never learns, and the
    # row ends unknown. So exactly 200 arrive, and the unknown row is never sent again.
    smtp_server.delay_data(0.05)
    smtp_server.handler.keep_when_client_leaves = True
    handler = smtp_server.handler
    response = start(api, app, {"table1": {"data": people(200)}})
    parent_id = response.json()["id"]

    def in_flight_after_60() -> bool:
        # The data of a message arrived less than the delay ago: its answer is pending.
        with handler.lock:
            return handler.transactions >= 60 and time.monotonic() - handler.last_data_at < 0.025

    assert until(in_flight_after_60, step=0.002), celery_worker.output()
    celery_worker.process.send_signal(signal.SIGKILL)
    celery_worker.process.wait(10)
    assert 60 <= len(smtp_server.received) < 200
    assert not progress_of(parent_id)["finished"]

    # A new worker: Redis hands it the killed worker's unacknowledged tasks (after the
    # visibility timeout) and the rest of the queue; the claim skips rows taken already.
    second = CeleryWorker(
        celery_worker.redis_url,
        celery_worker.env["DATABASE_URL"],
        extra_env={"KILN_BROKER_VISIBILITY_TIMEOUT": "1", "KILN_BROKER_RESTORE_EVERY_SECONDS": "1"},
    ).start()
    try:
        assert until(lambda: progress_of(parent_id)["remaining"] <= 1, timeout=60), second.output()
        # A row the killed worker was sending stays sending until the sweep says unknown:
        # it is never sent again.
        settings.KILN_RUN_STUCK_SECONDS = 900
        QueryRun.objects.filter(parent_id=parent_id, status="sending").update(
            started_at=timezone.now() - timedelta(seconds=901)
        )
        sweep()
        time.sleep(1.5)  # a redelivered task of that row would show now
    finally:
        second.stop()
    progress = progress_of(parent_id)
    assert progress["finished"]
    assert progress["remaining"] == 0
    assert progress["sent"] + progress["unknown"] == 200
    assert progress["unknown"] == 1
    assert progress["status"] == "unknown"
    recipients = [r.rcpt_tos[0] for r in smtp_server.received]
    assert len(recipients) == 200
    assert len(set(recipients)) == 200


@pytest.mark.redis
def test_stop_halfway_then_resume_with_a_worker_sends_each_row_once(
    celery_worker, api, merge_app, smtp_server
):
    app, _ = merge_app
    smtp_server.delay_data(0.03)
    parent_id = start(api, app, {"table1": {"data": people(60)}}).json()["id"]
    assert until(lambda: len(smtp_server.received) >= 10), celery_worker.output()
    stopped = api("post", f"runs/{parent_id}/stop")
    assert stopped.status_code == 200, stopped.json()
    assert stopped.json()["stopped"] > 0
    assert until(lambda: progress_of(parent_id)["finished"])
    progress = progress_of(parent_id)
    assert progress["status"] == "cancelled"
    assert progress["sent"] + progress["cancelled"] == 60
    sent_before = len(smtp_server.received)
    assert sent_before == progress["sent"] < 60

    resumed = api("post", f"runs/{parent_id}/resume")
    assert resumed.status_code == 200, resumed.json()
    assert resumed.json()["resumed"] == 60 - sent_before
    assert until(lambda: progress_of(parent_id)["finished"]), celery_worker.output()
    assert progress_of(parent_id)["sent"] == 60
    recipients = [r.rcpt_tos[0] for r in smtp_server.received]
    assert len(recipients) == 60
    assert len(set(recipients)) == 60


def test_the_editors_run_starts_a_merge(client, team, merge_app, smtp_server):
    from django.urls import reverse

    from tests.integration.test_editor_queries import HTMX, form_data

    app, query = merge_app
    client.force_login(team.teammate)
    response = client.post(
        reverse("editor:query_run", args=[app.slug, query.name]),
        # Run asks first with the count; confirmed=1 is its "Send 3 emails" button.
        form_data(query, {"table1": {"data": people(3)}}, confirmed="1"),
        headers=HTMX,
    )
    assert response.status_code == 200
    parent = QueryRun.objects.get(parent__isnull=True)
    assert parent.is_merge
    assert parent.status == RunStatus.SENT
    assert Query.objects.get(pk=query.pk).for_each == "<< table1.data >>"  # kept by the save
    assert len(smtp_server.received) == 3


def test_a_button_on_the_published_page_starts_a_merge_over_its_table(
    client, team, merge_app, smtp_server
):
    from builder.models import Widget
    from builder.publishing import publish

    app, _ = merge_app
    page = app.pages.get()
    page.widgets.filter(name="table1").update(properties={"data": people(4)})
    Widget.objects.create(
        page=page,
        name="send_all",
        type="button",
        events={"click": [{"action": "run_query", "query": "send_each"}]},
    )
    publish(app, team.owner)
    client.force_login(team.viewer)
    response = client.post(
        f"/apps/{app.slug}/home/events", {"widget": "send_all", "event": "click"}
    )
    assert response.status_code == 200
    parent = QueryRun.objects.get(parent__isnull=True)
    assert parent.created_by == team.viewer
    assert parent.status == RunStatus.SENT
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        f"person{i}@example.com" for i in range(4)
    ]


def test_the_sweep_never_makes_a_long_merge_unknown_and_settles_stuck_rows(
    team, merge_app, settings, monkeypatch
):
    import queries.merge

    monkeypatch.setattr(queries.merge, "start_merge_walk", lambda parent_id: None)
    monkeypatch.setattr("queries.tasks.enqueue", lambda run_id, countdown=None: False)
    _, query = merge_app
    parent = create_run(query, team.teammate, {"table1": {"data": people(2)}})
    long_ago = timezone.now() - timedelta(seconds=settings.KILN_RUN_STUCK_SECONDS + 1)
    QueryRun.objects.filter(pk=parent.pk).update(started_at=long_ago)
    sweep()
    parent.refresh_from_db()
    assert parent.status == RunStatus.SENDING  # its rows still wait: it is not stuck
    # Both rows were being sent by a worker that died: unknown, and the merge with them.
    parent.children.update(status=RunStatus.SENDING, started_at=long_ago)
    assert sweep()["unknown"] == 2
    parent.refresh_from_db()
    assert parent.status == RunStatus.UNKNOWN
    assert parent.error == "2 of 2 rows may or may not have been sent (unknown)."
    # Nothing resumes an unknown row.
    assert resume_merge(parent, "teammate") == 0
    assert parent.children.filter(status=RunStatus.UNKNOWN).count() == 2


def test_a_row_whose_attachment_differs_fails_alone(team, merge_app, smtp_server):
    _, query = merge_app
    query.fields = {**query.fields, "attachments": "<< row.files >>"}
    query.save()
    same = FileContent("terms.pdf", "application/pdf", b"%PDF-1.4 terms")
    copy = FileContent("terms.pdf", "application/pdf", b"%PDF-1.4 " + b"terms")  # equal bytes
    other = FileContent("terms.pdf", "application/pdf", b"%PDF-1.4 other")
    rows = [
        {**person, "files": [file]}
        for person, file in zip(people(3), [same, copy, other], strict=True)
    ]
    parent = create_run(query, team.teammate, {"table1": {"data": rows}})
    assert parent.progress()["sent"] == 2
    bad = parent.children.get(status=RunStatus.FAILED)
    assert bad.row_index == 2
    assert bad.error_field == "attachments"
    assert RunAttachment.objects.count() == 1


def test_a_row_whose_inline_image_differs_fails_naming_inline_images(team, merge_app, smtp_server):
    _, query = merge_app
    query.fields = {
        **query.fields,
        "body": '<p>Dear << row.name >></p><img src="cid:logo.png">',
        "body_type": "html",
        "inline_images": "<< row.logo >>",
        "attachments": "<< files1.files >>",
    }
    query.save()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    logos = [png, png, b"GIF89a" + bytes(range(64))]
    rows = [
        {**person, "logo": [FileContent("logo.png", "image/png", logo)]}
        for person, logo in zip(people(3), logos, strict=True)
    ]
    pdf = FileContent("terms.pdf", "application/pdf", b"%PDF-1.4 terms")
    parent = create_run(
        query, team.teammate, {"table1": {"data": rows}, "files1": {"files": [pdf]}}
    )
    assert parent.progress()["sent"] == 2
    bad = parent.children.get(status=RunStatus.FAILED)
    assert (bad.row_index, bad.error_field) == (2, "inline_images")
    assert "inline_images: every row of a merge sends the same files" in bad.error


def test_with_the_broker_down_a_merge_is_stored_and_the_sweep_sends_it(
    team, merge_app, smtp_server, settings, monkeypatch
):
    from queries.tasks import enqueue_merge_task

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("Redis is down")

    _, query = merge_app
    settings.CELERY_TASK_ALWAYS_EAGER = False  # as in production: the walk is a message
    monkeypatch.setattr(enqueue_merge_task, "apply_async", broker_down)
    parent = create_run(query, team.teammate, {"table1": {"data": people(3)}})
    assert parent.status == RunStatus.SENDING
    assert parent.children.filter(status="queued", enqueued_at__isnull=True).count() == 3
    assert smtp_server.received == []
    # The broker is back (tasks run eagerly here): the sweep enqueues the rows.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert sweep()["enqueued"] == 3
    parent.refresh_from_db()
    assert parent.status == RunStatus.SENT
    assert len(smtp_server.received) == 3


@pytest.mark.redis
def test_two_workers_share_a_merge_and_send_each_row_once(
    celery_worker, api, merge_app, smtp_server
):
    app, _ = merge_app
    smtp_server.delay_data(0.01)
    second = CeleryWorker(
        celery_worker.redis_url, celery_worker.env["DATABASE_URL"], name="second"
    ).start()
    try:
        parent_id = start(api, app, {"table1": {"data": people(100)}}).json()["id"]
        assert until(lambda: progress_of(parent_id)["finished"], timeout=60), second.output()
    finally:
        second.stop()
    assert progress_of(parent_id)["sent"] == 100
    recipients = [r.rcpt_tos[0] for r in smtp_server.received]
    assert len(recipients) == 100
    assert len(set(recipients)) == 100
    # Both took rows: each keeps its own connection.
    assert 2 <= smtp_server.handler.connections <= 4
