"""A small app for tests: a contact page and a send_welcome query on an SMTP server."""

from __future__ import annotations

import base64
import json

from django.urls import reverse

from builder.models import App, Page, Query, Widget
from datasources.models import Datasource

WELCOME_FIELDS = {
    "from": "Kiln <app@kiln.test>",
    "to": "<< form1.data.email >>",
    "cc": "<< cc_input.value >>",
    "subject": "Welcome, << form1.data.name >>!",
    "body": "<p>Hello << form1.data.name >>, you wrote: << form1.data.message >></p>",
    "body_type": "html",
    "attachments": "<< files1.files >>",
}


def mailer(
    workspace, smtp_port: int, *, name: str = "Mailer", host: str = "127.0.0.1", timeout: int = 5
) -> Datasource:
    """An SMTP datasource on a test server: no TLS, no authentication."""
    return Datasource.objects.create(
        workspace=workspace,
        name=name,
        kind="smtp",
        config={
            "host": host,
            "port": smtp_port,
            "security": "none",
            "auth": "none",
            "timeout": timeout,
            "verify_certificate": True,
        },
    )


def password_mailer(workspace, password: str, **config) -> Datasource:
    """An SMTP datasource that signs in with a password over STARTTLS (127.0.0.1:587
    unless ``config`` says otherwise); no server needs to listen there."""
    return Datasource.objects.create(
        workspace=workspace,
        name="Mailer",
        kind="smtp",
        config={
            "host": "127.0.0.1",
            "port": 587,
            "security": "starttls",
            "auth": "password",
            "username": "mailer",
            "timeout": 10,
            "verify_certificate": True,
            **config,
        },
        secret=password,
    )


def make_app(workspace, smtp_port: int, host: str = "127.0.0.1", name: str = "Contact"):
    datasource = mailer(workspace, smtp_port, name=f"Mailer {smtp_port}", host=host)
    app = App.objects.create(workspace=workspace, name=name)
    page = Page.objects.create(app=app, name="Home")
    form = Widget.objects.create(page=page, name="form1", type="form")
    for child in ("name", "email", "message"):
        Widget.objects.create(page=page, parent=form, name=f"{child}_input", type="input")
    Widget.objects.create(page=page, name="cc_input", type="input")
    Widget.objects.create(page=page, name="files1", type="filepicker")
    query = Query.objects.create(
        app=app, name="send_welcome", datasource=datasource, fields=dict(WELCOME_FIELDS)
    )
    return app, query


def welcome_inputs(email: str = "ann@example.com", **extra) -> dict:
    inputs = {
        "form1": {"data": {"name": "Ann", "email": email, "message": "Hi <there>"}},
        "cc_input": {"value": ""},
        "files1": {"files": []},
    }
    inputs.update(extra)
    return inputs


def data_url(mime: str, content: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(content).decode()


def picked(name: str, content: bytes, mime: str = "image/png") -> dict:
    """A file as a file picker gives it (Appsmith's shape)."""
    return {"name": name, "type": mime, "size": len(content), "data": data_url(mime, content)}


def post_run(client, app: App, inputs: dict, token: str, query: str = "send_welcome"):
    """A run through the run API, as a JSON body, with an API token."""
    return client.post(
        f"/api/v1/apps/{app.slug}/queries/{query}/runs",
        json.dumps({"inputs": inputs}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def post_preview(client, app: App, query: Query, test_values: dict, **fields: str):
    """The editor's Preview of ``query`` as the query form posts it (htmx): its text
    fields, Body type HTML, ``test_values`` as the inputs, and ``fields`` over them."""
    data = {
        "name": query.name,
        "datasource": str(query.datasource_id),
        "timeout_seconds": str(query.timeout_seconds),
        "body_type": "html",
        "test_values": json.dumps(test_values),
        **{k: v for k, v in query.fields.items() if isinstance(v, str)},
        **fields,
    }
    return client.post(
        reverse("editor:query_preview", args=[app.slug, query.name]),
        data,
        headers={"HX-Request": "true"},
    )
