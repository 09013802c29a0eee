"""The query editor: create, save (raw fields, binding warnings), Run against a real SMTP
server, Preview that sends nothing, access, delete; and the SMTP plugin's preview hook."""

from __future__ import annotations

import base64
import json
import re
import types

import pytest
from django.urls import reverse

from builder.models import App, Page, Query, Widget
from datasources.errors import FieldError
from datasources.models import Datasource
from datasources.plugins.base import Plugin
from datasources.plugins.smtp.plugin import SEND_EMAIL, SmtpPlugin
from editor.queries import default_test_values, text_fields
from queries.models import QueryRun
from tests.support.apps import WELCOME_FIELDS, make_app, welcome_inputs

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}
TEXT_FIELDS = text_fields(SEND_EMAIL)
ORDER = [
    "From email",
    "Set Reply To Email",
    "Reply to email",
    "To email(s)",
    "CC email(s)",
    "BCC email(s)",
    "Subject",
    "Body",
    "Attachment(s)",
    "Inline images",
    "Invite start",
    "Invite end",
    "Invite time zone",
    "Invite title",
    "Invite location",
    "Invite description",
]


@pytest.fixture
def mailer(team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    return types.SimpleNamespace(app=app, query=query, server=smtp_server, team=team)


def url(name, app, *args):
    return reverse(f"editor:{name}", args=[app.slug, *args])


def form_data(query, test_values=None, **overrides):
    """The editor's whole form for ``query`` as stored, with ``overrides``."""
    data = {
        "name": query.name,
        "datasource": str(query.datasource_id),
        "timeout_seconds": str(query.timeout_seconds),
        "body_type": query.fields.get("body_type", "text"),
        "test_values": json.dumps(test_values if test_values is not None else {}),
    }
    for key in TEXT_FIELDS:
        data[key] = query.fields.get(key, "")
    if query.fields.get("set_reply_to"):
        data["set_reply_to"] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def data_url(mime: str, content: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(content).decode()


def section(html: str, css_class: str) -> str:
    match = re.search(rf'<dl class="{css_class}">(.*?)</dl>', html, re.S)
    assert match, f"no {css_class} in the response"
    return match.group(1)


# ---------------------------------------------------------------------- list and create


def test_the_list_shows_the_apps_queries(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.get(url("queries", mailer.app))
    assert response.status_code == 200
    text = response.text
    assert "send_welcome" in text
    assert f"Mailer {mailer.server.port} · Send email" in text
    assert "New query" in text and "editor-queries.css" in text


def test_an_editor_creates_a_query_and_lands_in_its_editor(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("queries", mailer.app),
        {"name": "notify_team", "datasource": mailer.query.datasource_id},
    )
    created = Query.objects.get(app=mailer.app, name="notify_team")
    assert response.status_code == 302
    assert response["Location"] == url("query", mailer.app, "notify_team")
    assert created.action == "send_email"
    assert created.fields == {}
    assert created.datasource == mailer.query.datasource


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("2fast", "is not a valid name"),
        ("user", "is reserved"),
        ("send_welcome", "There is already a query named “send_welcome”"),
        ("form1", "is the name of a widget on the page “Home”"),
    ],
)
def test_a_bad_or_taken_name_is_refused_by_field(client, mailer, name, message):
    client.force_login(mailer.team.owner)
    response = client.post(
        url("queries", mailer.app), {"name": name, "datasource": mailer.query.datasource_id}
    )
    assert response.status_code == 422
    assert message in response.text
    assert 'id="new-name-errors"' in response.text
    assert Query.objects.filter(app=mailer.app).count() == 1


def test_without_a_datasource_the_list_links_to_add_one(client, team):
    app = App.objects.create(workspace=team.workspace, name="Empty")
    client.force_login(team.owner)
    response = client.get(url("queries", app))
    assert response.status_code == 200
    link = reverse("datasources:list", args=[team.workspace.slug])
    assert f'href="{link}"' in response.text
    assert "Add a datasource" in response.text
    assert "Create query" not in response.text


# ---------------------------------------------------------------------- the editor page


def test_the_editor_shows_every_send_email_field_in_order(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.get(url("query", mailer.app, "send_welcome"))
    assert response.status_code == 200
    text = response.text
    positions = [text.index(f">{label}") for label in ORDER]
    assert positions == sorted(positions)
    assert 'name="set_reply_to"' in text and 'name="body_type"' in text
    assert "&lt;&lt; form1.data.email &gt;&gt;" in text  # stored raw, shown raw
    assert 'hx-trigger="change, kiln-typed delay:800ms' in text  # typed: editor-queries.js
    link = reverse("datasources:list", args=[mailer.team.workspace.slug])
    assert "Edit datasources" in text and f'href="{link}"' in text


def test_test_values_are_prefilled_from_the_apps_widgets(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.get(url("query", mailer.app, "send_welcome"))
    values = json.loads(response.context["form"].initial["test_values"])
    assert values == {
        "form1": {"data": {"name_input": "", "email_input": "", "message_input": ""}},
        "name_input": {"value": ""},
        "email_input": {"value": ""},
        "message_input": {"value": ""},
        "cc_input": {"value": ""},
        "files1": {"files": []},
    }


def test_default_test_values_follow_each_widget_type(mailer):
    page = Page.objects.create(app=mailer.app, name="Second")
    form = Widget.objects.create(page=page, name="signup", type="form")
    Widget.objects.create(
        page=page, parent=form, name="plan", type="select", properties={"default_value": "pro"}
    )
    Widget.objects.create(
        page=page,
        parent=form,
        name="agree",
        type="checkbox",
        properties={"default_value": True},
    )
    box = Widget.objects.create(page=page, parent=form, name="box", type="container")
    Widget.objects.create(
        page=page,
        parent=box,
        name="greeting",
        type="input",
        properties={"default_value": "Hi << user.username >>"},
    )
    Widget.objects.create(page=page, name="orders", type="table")
    Widget.objects.create(page=page, name="heading", type="text")
    values = default_test_values(mailer.app, mailer.team.owner)
    assert values["signup"] == {"data": {"plan": "pro", "agree": True, "greeting": "Hi owner"}}
    assert values["plan"] == {"value": "pro"}
    assert values["agree"] == {"value": True}
    assert values["orders"] == {"selected_row": None, "data": []}
    assert "heading" not in values


# ---------------------------------------------------------------------- save


def test_save_stores_the_fields_raw(client, mailer):
    client.force_login(mailer.team.teammate)
    query = mailer.query
    query.fields = {**query.fields, "from_name": "Kiln"}  # not on the form: kept
    query.save()
    response = client.post(
        url("query_save", mailer.app, "send_welcome"),
        form_data(
            query,
            set_reply_to="on",
            reply_to="<< form1.data.email >>",
            bcc="archive@kiln.test",
            subject="Hi << form1.data.name|upper >>",
            body_type="text",
            run_on_page_load="on",
            timeout_seconds="120",
        ),
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "Saved" in response.text
    query.refresh_from_db()
    assert query.fields == {
        **dict.fromkeys(TEXT_FIELDS, ""),  # every text field on the form, empty or not
        **WELCOME_FIELDS,
        "from_name": "Kiln",
        "set_reply_to": True,
        "reply_to": "<< form1.data.email >>",
        "bcc": "archive@kiln.test",
        "subject": "Hi << form1.data.name|upper >>",
        "body_type": "text",
        # Fields the form shows empty are stored empty.
        "html_body": "",
        "headers": "",
    }
    assert query.run_on_page_load is True
    assert query.confirm_before_run is False
    assert query.timeout_seconds == 120


def test_a_binding_to_an_unknown_name_warns_on_save_and_on_the_page(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_save", mailer.app, "send_welcome"),
        form_data(mailer.query, cc="<< nobody.value >>", subject="Hi << form1.data. >>"),
        headers=HTMX,
    )
    assert response.status_code == 200
    text = response.text
    cc = re.search(r'<div class="qe-msgs" id="msgs-cc" hx-swap-oob="true">(.*?)</div>', text, re.S)
    assert cc and "unknown name &#x27;nobody&#x27;" in cc.group(1)
    subject = re.search(r'id="msgs-subject" hx-swap-oob="true">(.*?)</div>', text, re.S)
    assert subject and "syntax error" in subject.group(1)
    # Names that exist give no warning: widgets of every page, queries, the context.
    to = re.search(r'id="msgs-to" hx-swap-oob="true">(.*?)</div>', text, re.S)
    assert to and not to.group(1).strip()
    # Stored anyway (a warning is not an error), and shown on the page too.
    assert Query.objects.get(pk=mailer.query.pk).fields["cc"] == "<< nobody.value >>"
    page = client.get(url("query", mailer.app, "send_welcome")).text
    assert "unknown name &#x27;nobody&#x27;" in page


def test_a_bad_input_is_shown_by_field_and_writes_nothing(client, mailer):
    client.force_login(mailer.team.owner)
    before = Query.objects.get(pk=mailer.query.pk)
    response = client.post(
        url("query_save", mailer.app, "send_welcome"),
        form_data(mailer.query, name="bad name", timeout_seconds="0", to="someone@kiln.test"),
        headers=HTMX,
    )
    assert response.status_code == 422
    text = response.text
    assert "Not saved" in text
    name = re.search(r'id="msgs-name" hx-swap-oob="true">(.*?)</div>', text, re.S)
    assert name and "is not a valid name" in name.group(1)
    timeout = re.search(r'id="msgs-timeout_seconds" hx-swap-oob="true">(.*?)</div>', text, re.S)
    assert timeout and "greater than or equal to 1" in timeout.group(1)
    after = Query.objects.get(pk=mailer.query.pk)
    assert (after.name, after.fields, after.timeout_seconds) == (
        before.name,
        before.fields,
        before.timeout_seconds,
    )


def test_a_list_from_the_apps_code_survives_a_save_that_leaves_it_alone(client, mailer):
    query = mailer.query
    query.fields = {**query.fields, "to": ["ann@example.com", "<< form1.data.email >>"]}
    query.save()
    client.force_login(mailer.team.owner)
    page = client.get(url("query", mailer.app, "send_welcome"))
    shown = page.context["form"].initial["to"]
    assert shown == '["ann@example.com", "<< form1.data.email >>"]'
    client.post(
        url("query_save", mailer.app, "send_welcome"),
        form_data(query, to=shown, subject="Changed"),
        headers=HTMX,
    )
    query.refresh_from_db()
    assert query.fields["to"] == ["ann@example.com", "<< form1.data.email >>"]
    assert query.fields["subject"] == "Changed"


def test_test_values_are_kept_for_the_app_until_reset(client, mailer):
    client.force_login(mailer.team.owner)
    typed = json.dumps(welcome_inputs(email="kept@example.com"))
    client.post(
        url("query_save", mailer.app, "send_welcome"),
        {**form_data(mailer.query), "test_values": typed},
        headers=HTMX,
    )
    page = client.get(url("query", mailer.app, "send_welcome"))
    # As typed; a widget the typed values do not name gets its default beside them.
    kept = json.loads(page.context["form"].initial["test_values"])
    assert {name: kept[name] for name in json.loads(typed)} == json.loads(typed)
    reset = client.get(url("query", mailer.app, "send_welcome") + "?defaults=1")
    assert "kept@example.com" not in reset.context["form"].initial["test_values"]


def test_a_plain_form_save_redirects_back_to_the_editor(client, mailer):
    client.force_login(mailer.team.owner)
    response = client.post(
        url("query_save", mailer.app, "send_welcome"), form_data(mailer.query, subject="Hello")
    )
    assert response.status_code == 302
    assert response["Location"] == url("query", mailer.app, "send_welcome")
    assert Query.objects.get(pk=mailer.query.pk).fields["subject"] == "Hello"


def test_renaming_moves_the_editor_to_the_new_name(client, mailer):
    client.force_login(mailer.team.owner)
    response = client.post(
        url("query_save", mailer.app, "send_welcome"),
        form_data(mailer.query, name="welcome_mail"),
        headers=HTMX,
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == url("query", mailer.app, "welcome_mail")
    assert Query.objects.get(pk=mailer.query.pk).name == "welcome_mail"


# ---------------------------------------------------------------------- run


def test_run_sends_with_the_test_values(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_run", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs(), subject="Welcome aboard, << form1.data.name >>"),
        headers=HTMX,
    )
    assert response.status_code == 200
    text = response.text
    assert "Email sent successfully" in text
    assert "&quot;success&quot;: true" in text
    assert re.search(r'class="qe-timing"[^>]*>\d+ ms<', text)
    assert "qe-badge-sent" in text
    (received,) = mailer.server.received
    assert received.rcpt_tos == ["ann@example.com"]
    assert received.message["Subject"] == "Welcome aboard, Ann"  # saved first, then run
    run = QueryRun.objects.get()
    assert run.created_by == mailer.team.teammate and run.status == "sent"
    # The result links the run's page in the outbox.
    outbox_run = reverse("editor:outbox_run", args=[mailer.team.workspace.slug, run.pk])
    assert re.search(rf'<a href="{outbox_run}"[^>]*>Run #{run.pk}</a>', text)
    assert Query.objects.get(pk=mailer.query.pk).fields["subject"].startswith("Welcome aboard")


def test_run_with_a_bad_address_names_to_and_runs_nothing(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_run", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs(email="not-an-address")),
        headers=HTMX,
    )
    assert response.status_code == 422
    assert '<p class="qe-error-field">To email(s)</p>' in response.text
    assert "not-an-address" in response.text
    assert not QueryRun.objects.exists()
    assert mailer.server.handler.transactions == 0


def test_a_run_error_is_also_shown_under_its_field(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_run", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs(email="not-an-address")),
        headers=HTMX,
    )
    to = re.search(r'id="msgs-to" hx-swap-oob="true">(.*?)</div>', response.text, re.S)
    assert to and "invalid address" in to.group(1)


def test_a_refused_recipient_fails_the_run_and_names_to(client, mailer):
    mailer.server.refuse("gone@example.com")
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_run", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs(email="gone@example.com")),
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "qe-badge-failed" in response.text
    assert '<p class="qe-error-field">To email(s)</p>' in response.text
    assert "The server refused recipient(s), nothing was sent: gone@example.com" in response.text
    assert QueryRun.objects.get().status == "failed"
    assert not mailer.server.received


def test_run_with_invalid_test_values_names_them(client, mailer):
    client.force_login(mailer.team.teammate)
    data = form_data(mailer.query)
    data["test_values"] = '{"form1": '
    response = client.post(url("query_run", mailer.app, "send_welcome"), data, headers=HTMX)
    assert response.status_code == 422
    assert '<p class="qe-error-field">Test values</p>' in response.text
    assert "invalid JSON" in response.text
    assert not QueryRun.objects.exists()


def test_run_with_a_binding_that_fails_names_the_field(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_run", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs(), bcc="<< ghost.value >>"),
        headers=HTMX,
    )
    assert response.status_code == 422
    assert '<p class="qe-error-field">BCC email(s)</p>' in response.text
    assert "unknown name" in response.text
    assert not QueryRun.objects.exists()


def test_run_with_an_invalid_form_saves_and_runs_nothing(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_run", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs(), timeout_seconds="601"),
        headers=HTMX,
    )
    assert response.status_code == 422
    assert "less than or equal to 600" in response.text
    assert not QueryRun.objects.exists() and mailer.server.handler.transactions == 0


def test_a_plain_form_run_shows_the_whole_page_with_the_response(client, mailer):
    client.force_login(mailer.team.owner)
    response = client.post(
        url("query_run", mailer.app, "send_welcome"), form_data(mailer.query, welcome_inputs())
    )
    assert response.status_code == 200
    assert "<html" in response.text and "Email sent successfully" in response.text
    assert len(mailer.server.received) == 1


# ---------------------------------------------------------------------- preview


def test_preview_shows_the_email_and_sends_nothing(client, mailer):
    client.force_login(mailer.team.teammate)
    inputs = welcome_inputs(
        files1={
            "files": [
                {
                    "name": "report.txt",
                    "type": "text/plain",
                    "data": data_url("text/plain", b"hello"),
                }
            ]
        },
    )
    response = client.post(
        url("query_preview", mailer.app, "send_welcome"),
        form_data(mailer.query, inputs),
        headers=HTMX,
    )
    assert response.status_code == 200
    text = response.text
    headers = section(text, "qe-headers")
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        assert f"<dt>{name}</dt>" in headers
    assert "Kiln &lt;app@kiln.test&gt;" in headers and "Welcome, Ann!" in headers
    # The HTML body in a sandboxed iframe, escaped once for the attribute; the visitor's
    # "<there>" was escaped by the binding, so it shows as text inside the frame.
    assert '<iframe class="qe-html" sandbox srcdoc="&lt;p&gt;Hello Ann, you wrote: ' in text
    assert "Hi &amp;lt;there&amp;gt;&lt;/p&gt;" in text
    assert "Hello Ann, you wrote: Hi &lt;there&gt;" in text  # the plain-text part, in a <pre>
    assert "report.txt" in text and "5\xa0bytes" in text
    assert mailer.server.handler.transactions == 0
    assert not QueryRun.objects.exists()


def test_bcc_is_listed_as_envelope_only_not_in_the_headers(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_preview", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs(), bcc="secret@kiln.test"),
        headers=HTMX,
    )
    text = response.text
    assert "secret@kiln.test" not in section(text, "qe-headers")
    envelope = section(text, "qe-envelope")
    assert "<dt>BCC (envelope only, not in the headers)</dt><dd>secret@kiln.test</dd>" in envelope
    assert "ann@example.com, secret@kiln.test" in envelope


def test_preview_errors_name_the_field(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_preview", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs(), **{"from": "nobody"}),
        headers=HTMX,
    )
    assert response.status_code == 422
    assert '<p class="qe-error-field">From email</p>' in response.text
    assert mailer.server.handler.transactions == 0


# ---------------------------------------------------------------------- access and delete


def _every_view(app):
    return [
        ("get", url("queries", app)),
        ("post", url("queries", app)),
        ("get", url("query", app, "send_welcome")),
        ("post", url("query_save", app, "send_welcome")),
        ("post", url("query_run", app, "send_welcome")),
        ("post", url("query_preview", app, "send_welcome")),
        ("post", url("query_delete", app, "send_welcome")),
    ]


def test_viewers_get_403_and_outsiders_404(client, mailer):
    for user, status in ((mailer.team.viewer, 403), (mailer.team.outsider, 404)):
        client.force_login(user)
        for method, address in _every_view(mailer.app):
            response = getattr(client, method)(address, form_data(mailer.query))
            assert response.status_code == status, (user, address)
    assert Query.objects.filter(pk=mailer.query.pk).exists()
    assert mailer.server.handler.transactions == 0


def test_signed_out_users_go_to_the_login_page(client, mailer):
    response = client.get(url("query", mailer.app, "send_welcome"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_unknown_query_is_404(client, mailer):
    client.force_login(mailer.team.owner)
    assert client.get(url("query", mailer.app, "nope")).status_code == 404


def test_delete_removes_the_query(client, mailer):
    client.force_login(mailer.team.teammate)
    response = client.post(url("query_delete", mailer.app, "send_welcome"), headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == url("queries", mailer.app)
    assert not Query.objects.filter(pk=mailer.query.pk).exists()
    assert client.get(url("queries", mailer.app)).status_code == 200


def test_a_plain_form_delete_redirects_to_the_list(client, mailer):
    client.force_login(mailer.team.owner)
    response = client.post(url("query_delete", mailer.app, "send_welcome"))
    assert response.status_code == 302 and response["Location"] == url("queries", mailer.app)
    assert not Query.objects.exists()


# ---------------------------------------------------------------------- the plugin hook


def test_smtp_preview_builds_the_email_without_sending(settings):
    preview = SmtpPlugin().preview(
        "send_email",
        {
            "from": "Kiln <app@kiln.test>",
            "set_reply_to": True,
            "reply_to": "help@kiln.test",
            "to": "ann@example.com, bob@example.com",
            "cc": ["carl@example.com"],
            "bcc": "secret@kiln.test",
            "subject": "Grüße",
            "body": "<p>Hello <b>Ann</b></p>",
            "body_type": "html",
            "attachments": [
                {"name": "a.txt", "type": "text/plain", "data": data_url("text/plain", b"abc")}
            ],
        },
    )
    names = [name for name, _ in preview["headers"]]
    assert names == ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID"]
    headers = dict(preview["headers"])
    assert headers["To"] == "ann@example.com, bob@example.com"
    assert headers["Subject"] == "Grüße"
    assert all("secret@kiln.test" not in value for value in headers.values())
    assert preview["bcc"] == ["secret@kiln.test"]
    assert preview["envelope_to"] == [
        "ann@example.com",
        "bob@example.com",
        "carl@example.com",
        "secret@kiln.test",
    ]
    assert preview["html"].strip() == "<p>Hello <b>Ann</b></p>"
    assert preview["text"].strip() == "Hello Ann"
    assert preview["attachments"] == [{"name": "a.txt", "type": "text/plain", "size": 3}]


def test_smtp_preview_of_a_text_email_has_no_html():
    preview = SmtpPlugin().preview(
        "send_email", {"from": "app@kiln.test", "to": "ann@example.com", "body": "Hi"}
    )
    assert preview["html"] is None
    assert preview["text"].strip() == "Hi"
    assert preview["bcc"] == [] and preview["attachments"] == []
    assert "Reply-To" not in dict(preview["headers"])


def test_smtp_preview_checks_fields_like_a_send():
    with pytest.raises(FieldError) as caught:
        SmtpPlugin().preview("send_email", {"from": "app@kiln.test", "to": "not-an-address"})
    assert caught.value.field == "to"
    with pytest.raises(FieldError) as caught:
        SmtpPlugin().preview(
            "send_email",
            {"from": "app@kiln.test", "to": "a@kiln.test", "attachments": "/etc/hosts"},
        )
    assert caught.value.field == "attachments"


def test_a_plugin_without_preview_says_so():
    with pytest.raises(NotImplementedError):
        Plugin().preview("send_email", {})


def test_it_previews_a_workspace_file_only_in_its_workspace(team):
    from types import SimpleNamespace

    from django.core.files.base import ContentFile

    from workspaces.models import WorkspaceFile

    stored = WorkspaceFile.objects.create(
        workspace=team.workspace,
        name="terms.pdf",
        content_type="application/pdf",
        size=4,
        file=ContentFile(b"%PDF", name="terms.pdf"),
    )
    fields = {"from": "app@kiln.test", "to": "a@kiln.test", "attachments": [{"id": stored.pk}]}
    preview = SmtpPlugin().preview("send_email", fields, SimpleNamespace(workspace=team.workspace))
    assert preview["attachments"] == [{"name": "terms.pdf", "type": "application/pdf", "size": 4}]
    with pytest.raises(FieldError):
        SmtpPlugin().preview("send_email", fields, SimpleNamespace(workspace=team.other_workspace))


def test_datasources_of_another_workspace_cannot_be_picked(client, mailer):
    foreign = Datasource.objects.create(
        workspace=mailer.team.other_workspace,
        name="Theirs",
        kind="smtp",
        config={"host": "127.0.0.1", "port": 25, "security": "none", "auth": "none"},
    )
    client.force_login(mailer.team.owner)
    response = client.post(
        url("query_save", mailer.app, "send_welcome"),
        form_data(mailer.query, datasource=str(foreign.pk)),
        headers=HTMX,
    )
    assert response.status_code == 422
    assert Query.objects.get(pk=mailer.query.pk).datasource_id == mailer.query.datasource_id


def test_the_confirmation_message_is_saved_and_shown(client, mailer):
    client.force_login(mailer.team.teammate)
    query = mailer.query
    response = client.post(
        url("query_save", mailer.app, "send_welcome"),
        form_data(query, confirm_before_run="on", confirm_message="Send this welcome?"),
        headers=HTMX,
    )
    assert response.status_code == 200
    query.refresh_from_db()
    assert query.confirm_before_run is True
    assert query.confirm_message == "Send this welcome?"
    page = client.get(url("query", mailer.app, "send_welcome")).text
    assert 'value="Send this welcome?"' in page and "Confirmation message" in page
    too_long = form_data(query, confirm_before_run="on", confirm_message="x" * 201)
    client.post(url("query_save", mailer.app, "send_welcome"), too_long, headers=HTMX)
    query.refresh_from_db()
    assert query.confirm_message == "Send this welcome?"


def test_an_error_on_a_datasource_setting_names_the_datasource_and_links_to_it(client, mailer):
    """The plain server offers no AUTH: the error is on the datasource's "auth", a
    setting the query's page does not have."""
    datasource = mailer.query.datasource
    datasource.config = {**datasource.config, "auth": "password", "username": "mailer"}
    datasource.secret = "pw"
    datasource.save()
    client.force_login(mailer.team.teammate)
    response = client.post(
        url("query_run", mailer.app, "send_welcome"),
        form_data(mailer.query, welcome_inputs()),
        headers=HTMX,
    )
    assert response.status_code == 200
    edit = reverse("datasources:edit", args=[mailer.team.workspace.slug, datasource.pk])
    title = (
        f'<p class="qe-error-field">Datasource “<a href="{edit}">{datasource.name}</a>”'
        " › Authentication</p>"
    )
    assert title in response.text
    assert '<p class="qe-error-field">auth</p>' not in response.text
    assert "does not offer authentication" in response.text
