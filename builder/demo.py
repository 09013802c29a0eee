"""The demo app the README's first command creates: a "Contact us" page whose form sends
an email through the dev mailbox."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from datasources.models import Datasource
from workspaces.models import Workspace

DEVMAILBOX_DATASOURCE = "Dev mailbox"


def devmailbox_config() -> dict:
    return {
        "host": settings.KILN_DEVMAILBOX_HOST,
        "port": settings.KILN_DEVMAILBOX_PORT,
        "security": "none",
        "auth": "none",
        "username": "",
        "timeout": 10,
        "verify_certificate": True,
    }


def ensure_devmailbox_datasource(workspace: Workspace) -> tuple[Datasource, bool]:
    """The workspace's "Dev mailbox" datasource, created on the configured dev mailbox
    port when missing. An existing one is returned as it is: a builder may have edited
    it, and a restart must not undo that."""
    return Datasource.objects.get_or_create(
        workspace=workspace,
        name=DEVMAILBOX_DATASOURCE,
        defaults={"kind": "smtp", "config": devmailbox_config(), "secret": ""},
    )


SEND_FIELDS = {
    "from": "Kiln demo <demo@kiln.test>",
    "to": "support@kiln.test",
    "set_reply_to": True,
    "reply_to": "<< form1.data.email >>",
    "subject": "Message from << form1.data.name >>",
    "body": "<p><strong><< form1.data.name >></strong> (<< form1.data.email >>) wrote:</p>"
    "<p><< form1.data.message >></p>",
    "body_type": "html",
    "attachments": "<< form1.data.attachments >>",
}

SUBMIT = [
    {
        "action": "run_query",
        "query": "send_message",
        "on_success": [
            {
                "action": "show_toast",
                "kind": "success",
                "message": "Thanks << form1.data.name >>, your message was sent.",
            },
            {"action": "reset_widget", "widget": "form1"},
        ],
        "on_error": [
            {
                "action": "show_toast",
                "kind": "error",
                "message": "Not sent: << send_message.error >>",
            }
        ],
    }
]


@transaction.atomic
def create_demo_app(workspace: Workspace, datasource: Datasource, user=None) -> App:
    app = App.objects.filter(workspace=workspace, slug="contact-us").first()
    if app is not None:
        return app
    app = App.objects.create(workspace=workspace, name="Contact us", slug="contact-us")
    page = Page.objects.create(app=app, name="Contact us", slug="contact")

    def widget(name, type_, props, parent=None, **layout):
        return Widget.objects.create(
            page=page, name=name, type=type_, properties=props, parent=parent, **layout
        )

    widget("title", "text", {"text": "Contact us", "style": "heading"}, x=0, y=0, w=12, h=1)
    form = widget(
        "form1",
        "form",
        {
            "title": "Send us a message",
            "submit_label": "Send",
            "show_reset": True,
            "reset_label": "Clear",
        },
        x=0,
        y=1,
        w=7,
        h=9,
    )
    form.events = {"submit": SUBMIT}
    form.save()
    widget(
        "name",
        "input",
        {"label": "Your name", "required": True, "placeholder": "Ada Lovelace"},
        form,
    )
    widget(
        "email",
        "input",
        {
            "label": "Email",
            "input_type": "email",
            "required": True,
            "placeholder": "ada@example.com",
        },
        form,
    )
    widget(
        "message",
        "input",
        {
            "label": "Message",
            "input_type": "multiline",
            "required": True,
            "placeholder": "How can we help?",
        },
        form,
    )
    widget(
        "attachments",
        "filepicker",
        {"label": "Attachments", "multiple": True, "max_files": 3, "max_file_size_mb": 5},
        form,
    )
    widget(
        "last_result",
        "text",
        {
            "text": "Last result: << send_message.data.message if send_message.data "
            "else (send_message.error or 'nothing sent yet') >>",
            "style": "muted",
        },
        x=7,
        y=1,
        w=5,
        h=1,
    )
    widget(
        "sent",
        "table",
        {
            "data": "<< send_message.runs >>",
            "columns": [
                {"key": "created_at", "label": "Sent at"},
                {"key": "subject", "label": "Subject"},
                {"key": "status", "label": "Status"},
            ],
            "page_size": 5,
            "searchable": True,
            "selectable": False,
        },
        x=7,
        y=2,
        w=5,
        h=8,
    )
    Query.objects.create(
        app=app, name="send_message", datasource=datasource, fields=dict(SEND_FIELDS)
    )
    publish(app, user)
    return app
