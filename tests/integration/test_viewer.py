"""The published app through Django's test client (eager Celery): access, events,
validation, publishing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from builder.demo import create_demo_app
from builder.models import Widget
from builder.publishing import publish
from queries.models import QueryRun
from tests.support.apps import mailer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(team, smtp_server):
    datasource = mailer(team.workspace, smtp_server.port)
    return create_demo_app(team.workspace, datasource, team.owner)


def form_post(**overrides):
    data = {
        "widget": "form1",
        "event": "submit",
        "name": "Ann",
        "email": "ann@example.com",
        "message": "Hello <b>there</b>",
    }
    data.update(overrides)
    return data


EVENT = "/apps/contact-us/contact/events"


def test_a_viewer_sees_the_published_page(client, team, demo):
    client.force_login(team.viewer)
    response = client.get("/apps/contact-us/")
    assert response.status_code == 200
    assert 'id="w-form1"' in response.text and "Send us a message" in response.text
    assert "nothing sent yet" in response.text


def test_another_workspace_gets_404_and_cannot_post_events(client, team, demo, smtp_server):
    client.force_login(team.outsider)
    assert client.get("/apps/contact-us/").status_code == 404
    assert client.post(EVENT, form_post()).status_code == 404
    assert not QueryRun.objects.exists() and smtp_server.handler.transactions == 0


def test_an_unpublished_app_is_404(client, team, demo):
    demo.versions.all().delete()
    client.force_login(team.owner)
    assert client.get("/apps/contact-us/").status_code == 404


def test_submitting_the_form_sends_and_answers_at_once(client, team, demo, smtp_server):
    client.force_login(team.viewer)
    files = [
        SimpleUploadedFile("a.txt", b"alpha", "text/plain"),
        SimpleUploadedFile("b.txt", b"beta", "text/plain"),
    ]
    response = client.post(EVENT, {**form_post(), "attachments": files})
    assert response.status_code == 200
    # Embedded default: the run ended inside the click's own request, so its response
    # carries the result, with no poller.
    assert "kiln-poller" not in response.text
    assert "Thanks Ann, your message was sent." in response.text
    assert 'id="w-last_result"' in response.text and "Email sent successfully" in response.text
    (received,) = smtp_server.received
    msg = received.message
    assert msg["Reply-To"] == "ann@example.com"
    assert msg["Subject"] == "Message from Ann"
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in msg.get_body(("html",)).get_content()
    assert [a.get_filename() for a in msg.iter_attachments()] == ["a.txt", "b.txt"]

    # Polling an ended run (a page that lost the click's answer) brings the same result.
    run = QueryRun.objects.get()
    poll = client.post(
        f"/apps/contact-us/contact/runs/{run.pk}/poll",
        {**form_post(), "path": "submit-0", "trigger": "form1"},
    )
    assert "Thanks Ann, your message was sent." in poll.text
    assert 'id="w-last_result"' in poll.text and "Email sent successfully" in poll.text
    assert 'id="w-sent"' in poll.text


def test_a_required_field_left_empty_sends_nothing(client, team, demo, smtp_server):
    client.force_login(team.viewer)
    response = client.post(EVENT, form_post(email=""))
    assert 'id="email-errors"' in response.text
    assert "is required" in response.text
    assert not QueryRun.objects.exists() and smtp_server.handler.transactions == 0


def test_a_file_over_the_limit_is_refused_by_the_server(client, team, demo, smtp_server):
    client.force_login(team.viewer)
    big = SimpleUploadedFile("big.bin", b"x" * (5 * 1024 * 1024 + 1), "application/octet-stream")
    response = client.post(EVENT, {**form_post(), "attachments": big})
    assert 'id="attachments-errors"' in response.text
    assert "big.bin" in response.text and "5 MB" in response.text
    assert not QueryRun.objects.exists()


def test_the_published_version_holds_until_the_next_publish(client, team, demo):
    title = Widget.objects.get(page__app=demo, name="title")
    title.properties = {**title.properties, "text": "Talk to us"}
    title.save()
    client.force_login(team.viewer)
    assert "Contact us" in client.get("/apps/contact-us/").text
    assert "Talk to us" not in client.get("/apps/contact-us/").text
    publish(demo, team.owner)
    assert "Talk to us" in client.get("/apps/contact-us/").text


def test_a_published_version_that_cannot_be_read_is_a_404_until_published_again(client, team, demo):
    version = demo.versions.get()
    version.document["pages"] = "no longer a list of pages"
    version.save()
    client.force_login(team.viewer)
    response = client.get("/apps/contact-us/")
    assert response.status_code == 404
    publish(demo, team.owner)
    assert client.get("/apps/contact-us/").status_code == 200


def test_a_failing_binding_shows_an_inline_error(client, team, demo):
    text = Widget.objects.get(page__app=demo, name="last_result")
    text.properties = {**text.properties, "text": "<< nope.value >>"}
    text.save()
    publish(demo, team.owner)
    client.force_login(team.viewer)
    response = client.get("/apps/contact-us/")
    assert response.status_code == 200
    assert "kiln-binding-error" in response.text and "nope" in response.text
