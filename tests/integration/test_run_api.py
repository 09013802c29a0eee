"""The run API in the embedded default (eager Celery): tokens, access, errors, files."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from queries.models import ApiToken, QueryRun
from tests.support.apps import make_app, welcome_inputs

# Runs are enqueued on commit: the tests need real commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def contact(team, smtp_server):
    return make_app(team.workspace, smtp_server.port)


@pytest.fixture
def token(team):
    return ApiToken.issue(team.teammate, "tests")[1]


def post_run(client, app_slug, token, inputs=None, query="send_welcome", **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if "data" in kw:
        return client.post(
            f"/api/v1/apps/{app_slug}/queries/{query}/runs", kw["data"], headers=headers
        )
    body = json.dumps({"inputs": inputs if inputs is not None else welcome_inputs()})
    return client.post(
        f"/api/v1/apps/{app_slug}/queries/{query}/runs",
        body,
        content_type="application/json",
        headers=headers,
    )


def test_a_run_is_accepted_and_sent_with_the_bound_values(client, contact, token, smtp_server):
    app, _ = contact
    response = post_run(client, app.slug, token)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["url"].endswith(f"/api/v1/runs/{body['id']}")
    (received,) = smtp_server.received
    msg = received.message
    assert received.rcpt_tos == ["ann@example.com"]
    assert msg["Subject"] == "Welcome, Ann!"
    html = msg.get_body(("html",)).get_content()
    assert "Hello Ann, you wrote: Hi &lt;there&gt;" in html

    run = client.get(f"/api/v1/runs/{body['id']}", headers={"Authorization": f"Bearer {token}"})
    assert run.status_code == 200
    assert run.json()["status"] == "sent"
    assert run.json()["data"] == {"success": True, "message": "Email sent successfully"}
    assert run.json()["attempts"] == 1
    assert set(run.json()) >= {
        "id",
        "status",
        "data",
        "error",
        "attempts",
        "created_at",
        "finished_at",
    }


def test_it_needs_a_token(client, contact):
    app, _ = contact
    assert post_run(client, app.slug, None).status_code == 401
    response = post_run(client, app.slug, "kiln_not-a-real-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/runs/1").status_code == 401
    assert not QueryRun.objects.exists()


def test_another_workspace_gets_404(client, contact, team):
    app, _ = contact
    outsider_token = ApiToken.issue(team.outsider)[1]
    assert post_run(client, app.slug, outsider_token).status_code == 404
    own = ApiToken.issue(team.teammate)[1]
    run_id = post_run(client, app.slug, own).json()["id"]
    response = client.get(
        f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {outsider_token}"}
    )
    assert response.status_code == 404
    assert QueryRun.objects.count() == 1


def test_an_unknown_query_is_404(client, contact, token):
    app, _ = contact
    assert post_run(client, app.slug, token, query="nope").status_code == 404


def test_a_bad_binding_is_400_naming_the_field(client, contact, token, smtp_server):
    app, query = contact
    query.fields["subject"] = "Hi << form9.name >>"
    query.save()
    response = post_run(client, app.slug, token)
    assert response.status_code == 400
    assert response.json()["field"] == "subject"
    assert "form9" in response.json()["error"]
    assert not QueryRun.objects.exists() and smtp_server.handler.transactions == 0


def test_a_bad_address_is_400_naming_the_field(client, contact, token, smtp_server):
    app, _ = contact
    response = post_run(client, app.slug, token, welcome_inputs(email="ann@"))
    assert response.status_code == 400
    assert response.json() == {
        "error": response.json()["error"],
        "field": "to",
    }
    assert "To email(s) has an invalid address" in response.json()["error"]
    assert not QueryRun.objects.exists()


@pytest.mark.parametrize(
    ("inputs", "field"),
    [([1, 2], "inputs"), ({"form1": "x"}, "inputs.form1"), ({"bad name": {}}, "inputs.bad name")],
)
def test_bad_inputs_are_400(client, contact, token, inputs, field):
    app, _ = contact
    response = post_run(client, app.slug, token, inputs)
    assert response.status_code == 400
    assert response.json()["field"] == field


class UnreadBody(io.BytesIO):
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def test_a_throttled_token_is_refused_before_its_body_is_read(client, contact, token, settings):
    app, _ = contact
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 1
    assert post_run(client, app.slug, token).status_code == 202
    size = 39_000_000
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
        CONTENT_LENGTH=str(size),
        **{"wsgi.input": UnreadBody()},
    )
    assert response.status_code == 429
    assert "KILN_RUNS_PER_USER_PER_MINUTE" in response.json()["error"]
    assert QueryRun.objects.count() == 1


def test_invalid_json_is_400(client, contact, token):
    app, _ = contact
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        "{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("body: invalid JSON")


def test_a_value_holding_a_binding_is_not_evaluated_again(client, contact, token, smtp_server):
    app, _ = contact
    inputs = welcome_inputs()
    inputs["form1"]["data"]["name"] = "<< user.email >>{{ 7*7 }}"
    assert post_run(client, app.slug, token, inputs).status_code == 202
    assert smtp_server.received[0].message["Subject"] == "Welcome, << user.email >>{{ 7*7 }}!"


def test_multipart_files_become_attachments(client, contact, token, smtp_server):
    app, _ = contact
    data = {
        "inputs": json.dumps(welcome_inputs()),
        "files1": [
            SimpleUploadedFile("a.txt", b"alpha", content_type="text/plain"),
            SimpleUploadedFile("b.bin", bytes(range(256)), content_type="application/x-b"),
        ],
    }
    response = post_run(client, app.slug, token, data=data)
    assert response.status_code == 202, response.json()
    attachments = [
        (a.get_filename(), a.get_content())
        for a in smtp_server.received[0].message.iter_attachments()
    ]
    assert attachments == [("a.txt", "alpha"), ("b.bin", bytes(range(256)))]
    run = QueryRun.objects.get()
    assert [(a.name, a.size) for a in run.attachments.all()] == [("a.txt", 5), ("b.bin", 256)]


def test_appsmith_file_objects_in_json_are_attached(client, contact, token, smtp_server):
    app, _ = contact
    png = b"\x89PNG fake"
    inputs = welcome_inputs(
        files1={
            "files": [
                {
                    "name": "logo.png",
                    "type": "image/png",
                    "size": len(png),
                    "data": "data:image/png;base64," + base64.b64encode(png).decode(),
                }
            ]
        }
    )
    assert post_run(client, app.slug, token, inputs).status_code == 202
    (attachment,) = smtp_server.received[0].message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content()) == ("logo.png", png)


def test_a_failed_send_is_recorded_with_the_server_text(client, contact, token, smtp_server):
    app, _ = contact
    smtp_server.reply_to_data("554 5.7.1 Rejected as spam")
    body = post_run(client, app.slug, token).json()
    run = QueryRun.objects.get(pk=body["id"])
    assert (run.status, run.attempts) == ("failed", 1)
    assert "554 5.7.1 Rejected as spam" in run.error
    assert run.failures[0]["type"] == "PluginError"


def test_create_api_token_prints_a_working_token(client, contact, team):
    out = io.StringIO()
    call_command("create_api_token", "teammate", stdout=out)
    key = out.getvalue().strip()
    assert key.startswith("kiln_")
    assert key not in str(list(ApiToken.objects.values()))
    app, _ = contact
    assert post_run(client, app.slug, key).status_code == 202


def test_query_names_are_readable_in_bindings(client, contact, token, smtp_server):
    app, query = contact
    post_run(client, app.slug, token)
    query.fields["subject"] = "Last: << send_welcome.status >> << send_welcome.data.message >>"
    query.save()
    post_run(client, app.slug, token)
    assert smtp_server.received[1].message["Subject"] == "Last: sent Email sent successfully"


def test_members_read_their_own_runs_and_editors_read_all(client, contact, team):
    app, _ = contact
    viewer_key = ApiToken.issue(team.viewer)[1]
    owner_key = ApiToken.issue(team.owner)[1]
    run_id = post_run(client, app.slug, owner_key).json()["id"]
    as_viewer = client.get(
        f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {viewer_key}"}
    )
    assert as_viewer.status_code == 404
    editor_key = ApiToken.issue(team.teammate)[1]
    as_editor = client.get(
        f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {editor_key}"}
    )
    assert as_editor.status_code == 200
