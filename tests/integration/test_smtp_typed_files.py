"""Files typed into a files field (Attachment(s), Inline images) rather than bound to a
file picker: a data URL, or JSON text of items, is a file; any other text is refused with
an error that says what the field accepts, in the words of that field."""

from __future__ import annotations

import json

import pytest

from queries.models import ApiToken
from tests.integration.test_smtp_inline import PDF, PNG, contact  # noqa: F401
from tests.support.apps import data_url, post_preview, post_run, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)

LOGO = data_url("image/png", PNG)


def preview(client, team, contact, status=200, **fields):  # noqa: F811
    app, query = contact
    client.force_login(team.teammate)
    response = post_preview(client, app, query, welcome_inputs(), attachments="", **fields)
    assert response.status_code == status, response.text
    return response.text


@pytest.mark.parametrize(
    ("typed", "cid"),
    [
        (LOGO, "image-1.png"),
        (json.dumps([{"name": "logo.png", "data": LOGO}]), "logo.png"),
        (json.dumps({"name": "logo.png", "data": LOGO}), "logo.png"),
    ],
)
def test_a_typed_data_url_or_json_text_is_an_inline_image(
    client,
    team,
    contact,  # noqa: F811
    smtp_server,
    typed,
    cid,
):
    text = preview(client, team, contact, inline_images=typed, body=f'<img src="cid:{cid}">')
    assert f'<code class="qe-cid">cid:{cid}</code>' in text
    assert "is not a file" not in text
    assert smtp_server.handler.transactions == 0


def test_other_text_in_inline_images_says_what_is_accepted(
    client,
    team,
    contact,  # noqa: F811
    smtp_server,
):
    text = preview(client, team, contact, 422, inline_images="logo.png")
    assert "Inline images:" in text
    assert "files1.files" in text
    assert "data URL" in text
    assert "Attachment" not in text.split("Inline images:", 1)[1].split("<", 1)[0]
    assert "paths on the server" not in text


def test_a_typed_data_url_attachment_is_sent_with_a_name_from_its_type(
    client,
    team,
    contact,  # noqa: F811
    smtp_server,
):
    app, query = contact
    query.fields = {
        **query.fields,
        "attachments": data_url("application/pdf", PDF),
        "inline_images": json.dumps([{"name": "logo.png", "data": LOGO}]),
    }
    query.save()
    token = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, app, welcome_inputs(), token)
    assert response.status_code == 202, response.json()
    (received,) = smtp_server.received
    names = [part.get_filename() for part in received.message.walk() if part.get_filename()]
    assert "attachment-1.pdf" in names


def test_other_text_in_attachments_is_a_400_naming_the_field(
    client,
    team,
    contact,  # noqa: F811
    smtp_server,
):
    app, query = contact
    query.fields = {**query.fields, "attachments": "C:/report.pdf"}
    query.save()
    token = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, app, welcome_inputs(), token)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "attachments"
    assert "data URL" in json.dumps(body)
    assert smtp_server.handler.transactions == 0
