"""Every header Kiln writes refuses a value that would become more than one header line,
in every form of line break, through the published page and the run API, against a real
SMTP server: the error names the field and the server receives nothing."""

from __future__ import annotations

import base64
import json

import pytest

from builder.models import Widget
from builder.publishing import publish
from queries.models import ApiToken, QueryRun
from tests.support.apps import make_app

pytestmark = pytest.mark.django_db(transaction=True)

BREAKS = {
    "cr": "\r",
    "lf": "\n",
    "crlf": "\r\n",
    "nul": "\x00",
    "vt": "\x0b",
    "ff": "\x0c",
    "nel": "\x85",
    "u2028": "\u2028",
    "u2029": "\u2029",
}
INJECTED = {name: f"Hi{char}X-Evil: 1" for name, char in BREAKS.items()}
INJECTED["encoded-q"] = "=?utf-8?q?Hi=0D=0AX-Evil:_1?="
INJECTED["encoded-b"] = "=?utf-8?b?" + base64.b64encode(b"Hi\r\nX-Evil: 1").decode() + "?="

LABELS = {
    "from": "From email",
    "from_name": "From name",
    "reply_to": "Reply to email",
    "to": "To email(s)",
    "cc": "CC email(s)",
    "bcc": "BCC email(s)",
    "subject": "Subject",
    "attachments": "Attachment",
}
BASE = {
    "from": "app@kiln.test",
    "to": "ann@example.com",
    "subject": "Hello",
    "body": "Hi",
    "set_reply_to": True,
    "reply_to": "desk@kiln.test",
}
#: (field, where in it the value goes): the binding, and the typed value around it.
CASES = {
    ("from", "display name"): ("<< cc_input.value >>", '"{v}" <app@kiln.test>'),
    ("from_name", "value"): ("<< cc_input.value >>", "{v}"),
    ("subject", "value"): ("<< cc_input.value >>", "{v}"),
    ("attachments", "file name"): (
        '<< [{"name": cc_input.value, "data": "data:,hello"}] >>',
        "notes{v}.txt",
    ),
    **{
        (name, "display name"): ("<< cc_input.value >>", '"{v}" <z@example.com>')
        for name in ("reply_to", "to", "cc", "bcc")
    },
    **{
        (name, "list item"): ('<< ["ok@example.com", cc_input.value] >>', '"{v}" <z@example.com>')
        for name in ("reply_to", "to", "cc", "bcc")
    },
}
PARAMS = [
    pytest.param(field, where, form, id=f"{field}-{where.replace(' ', '_')}-{form}")
    for (field, where) in CASES
    for form in INJECTED
]


@pytest.fixture
def mail_app(team, smtp_server):
    def make(field: str, where: str):
        app, query = make_app(team.workspace, smtp_server.port)
        page = app.pages.get()
        Widget.objects.create(
            page=page,
            name="send",
            type="button",
            events={"click": [{"action": "run_query", "query": "send_welcome"}]},
        )
        query.fields = {**BASE, field: CASES[(field, where)][0]}
        query.save()
        publish(app, team.owner)
        return app

    return make


def typed(field: str, where: str, form: str) -> str:
    return CASES[(field, where)][1].format(v=INJECTED[form])


@pytest.mark.parametrize(("field", "where", "form"), PARAMS)
def test_the_viewer_refuses_it_naming_the_field(
    client, team, smtp_server, mail_app, field, where, form
):
    app = mail_app(field, where)
    client.force_login(team.viewer)

    response = client.post(
        f"/apps/{app.slug}/home/events",
        {"widget": "send", "event": "click", "cc_input": typed(field, where, form)},
    )

    assert response.status_code == 200
    assert "kiln-toast-error" in response.text
    assert LABELS[field] in response.text
    assert not QueryRun.objects.exists()
    assert smtp_server.received == []


@pytest.mark.parametrize(("field", "where", "form"), PARAMS)
def test_the_run_api_refuses_it_naming_the_field(
    client, team, smtp_server, mail_app, field, where, form
):
    app = mail_app(field, where)
    token = ApiToken.issue(team.teammate)[1]

    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        json.dumps({"inputs": {"cc_input": {"value": typed(field, where, form)}}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == field and LABELS[field] in body["error"], body
    assert not QueryRun.objects.exists()
    assert smtp_server.received == []


def test_a_clean_value_in_the_same_app_is_sent(client, team, smtp_server, mail_app):
    """The tests above fail for the injected value, not for the app."""
    app = mail_app("subject", "value")
    client.force_login(team.viewer)

    client.post(
        f"/apps/{app.slug}/home/events",
        {"widget": "send", "event": "click", "cc_input": "Plain subject"},
    )

    run = QueryRun.objects.get()
    run.wait(10)
    run.refresh_from_db()
    assert run.status == "sent", run.error
    (received,) = smtp_server.received
    assert received.message["Subject"] == "Plain subject"
