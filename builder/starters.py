"""Starter templates for a new app: "Blank", "Contact form" and "Feedback form".

Each is an app document (the app file format, builder/schema.py) imported with
``import_app``, so a template goes through the same checks as a file. They are built in
Python rather than kept as JSON files: the contact form shares its query and events with
the demo app (builder/demo.py), and both send through the workspace's "Dev mailbox"
datasource, made on the configured dev mailbox port when missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from builder.demo import DEVMAILBOX_DATASOURCE, SEND_FIELDS, SUBMIT, ensure_devmailbox_datasource
from builder.document import import_app
from builder.models import App
from workspaces.models import Workspace


@dataclass(frozen=True)
class Starter:
    key: str
    label: str
    description: str
    #: Pages and queries of the app document; None for a blank app.
    build: Callable[[], dict] | None = None


def _widget(name: str, type_: str, properties: dict, parent: str | None = None, **layout):
    return {"name": name, "type": type_, "parent": parent, "properties": properties, **layout}


def _runs_table(query: str, y: int) -> dict:
    return _widget(
        "sent",
        "table",
        {
            "data": f"<< {query}.runs >>",
            "columns": [
                {"key": "created_at", "label": "Sent at"},
                {"key": "subject", "label": "Subject"},
                {"key": "status", "label": "Status"},
            ],
            "page_size": 5,
            "searchable": False,
            "selectable": False,
        },
        x=7,
        y=y,
        w=5,
        h=8,
    )


def _contact() -> dict:
    widgets = [
        _widget("title", "text", {"text": "Contact us", "style": "heading"}, x=0, y=0, w=12),
        {
            **_widget(
                "form1",
                "form",
                {"title": "Send us a message", "submit_label": "Send", "reset_label": "Clear"},
                x=0,
                y=1,
                w=7,
                h=8,
            ),
            "events": {"submit": SUBMIT},
        },
        _widget("name", "input", {"label": "Your name", "required": True}, "form1"),
        _widget(
            "email",
            "input",
            {"label": "Email", "input_type": "email", "required": True},
            "form1",
        ),
        _widget(
            "message",
            "input",
            {"label": "Message", "input_type": "multiline", "required": True},
            "form1",
        ),
        _runs_table("send_message", y=1),
    ]
    fields = {key: value for key, value in SEND_FIELDS.items() if key != "attachments"}
    return {
        "pages": [{"name": "Contact us", "slug": "contact", "widgets": widgets}],
        "queries": [
            {
                "name": "send_message",
                "datasource": DEVMAILBOX_DATASOURCE,
                "action": "send_email",
                "fields": fields,
            }
        ],
    }


FEEDBACK_FIELDS = {
    "from": "Kiln feedback <feedback@kiln.test>",
    "to": "feedback@kiln.test",
    "subject": "Feedback: << form1.data.rating >> out of 5",
    "body": "<p>Rating: <strong><< form1.data.rating >></strong> out of 5</p>"
    "<p><< form1.data.comments or '(no comments)' >></p>",
    "body_type": "html",
}

FEEDBACK_SUBMIT = [
    {
        "action": "run_query",
        "query": "send_feedback",
        "on_success": [
            {"action": "show_toast", "kind": "success", "message": "Thank you for your feedback."},
            {"action": "reset_widget", "widget": "form1"},
        ],
        "on_error": [
            {
                "action": "show_toast",
                "kind": "error",
                "message": "Not sent: << send_feedback.error >>",
            }
        ],
    }
]


def _feedback() -> dict:
    ratings = [
        {"label": f"{n} – {word}", "value": str(n)}
        for n, word in ((5, "Excellent"), (4, "Good"), (3, "Fair"), (2, "Poor"), (1, "Bad"))
    ]
    widgets = [
        _widget("title", "text", {"text": "Tell us what you think", "style": "heading"}, w=12),
        {
            **_widget(
                "form1",
                "form",
                {"title": "Feedback", "submit_label": "Send feedback", "show_reset": False},
                x=0,
                y=1,
                w=7,
                h=6,
            ),
            "events": {"submit": FEEDBACK_SUBMIT},
        },
        _widget(
            "rating",
            "select",
            {"label": "Rating", "options": ratings, "required": True},
            "form1",
        ),
        _widget(
            "comments",
            "input",
            {"label": "Comments", "input_type": "multiline"},
            "form1",
        ),
        _runs_table("send_feedback", y=1),
    ]
    return {
        "pages": [{"name": "Feedback", "slug": "feedback", "widgets": widgets}],
        "queries": [
            {
                "name": "send_feedback",
                "datasource": DEVMAILBOX_DATASOURCE,
                "action": "send_email",
                "fields": FEEDBACK_FIELDS,
            }
        ],
    }


STARTERS = {
    starter.key: starter
    for starter in (
        Starter("blank", "Blank", "An empty page."),
        Starter(
            "contact",
            "Contact form",
            "Name, email and message, sent through the dev mailbox.",
            _contact,
        ),
        Starter(
            "feedback",
            "Feedback form",
            "A rating and comments, sent through the dev mailbox.",
            _feedback,
        ),
    )
}


def starter_document(key: str, name: str) -> dict | None:
    """The app document of starter ``key`` named ``name``; None for a blank app."""
    build = STARTERS[key].build
    if build is None:
        return None
    return {"kiln": "app", "version": 1, "app": {"name": name}, **build()}


@transaction.atomic
def create_from_starter(workspace: Workspace, key: str, name: str) -> App:
    """A new app from a starter (not "blank"): makes the workspace's dev mailbox
    datasource first when missing. Raises ``AppFileError`` as an import would."""
    document = starter_document(key, name)
    if document is None:
        raise ValueError(f"starter {key!r} has no document")
    ensure_devmailbox_datasource(workspace)
    return import_app(document, workspace, environ={})
