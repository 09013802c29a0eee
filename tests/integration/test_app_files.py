"""Apps as code: export_app / import_app, the functions and the commands."""

from __future__ import annotations

import copy
import io
import json

import pytest
from django.core.management import CommandError, call_command

from builder.document import AppFileError, export_app, import_app
from builder.models import App, Page, Query, Widget
from datasources.models import Datasource
from workspaces.models import Workspace

PASSWORD_ENV = {"SMTP_PASSWORD": "pw-new"}


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


@pytest.fixture
def app(team) -> App:
    mailbox = Datasource.objects.create(
        workspace=team.workspace,
        name="Dev mailbox",
        kind="smtp",
        config={
            "host": "127.0.0.1",
            "port": 1025,
            "security": "starttls",
            "auth": "password",
            "username": "mailer",
            "timeout": 10,
            "verify_certificate": True,
        },
        secret="pw-XYZ-secret",
    )
    # Not used by any query: it must stay out of the file.
    Datasource.objects.create(workspace=team.workspace, name="Unused", kind="smtp")
    app = App.objects.create(workspace=team.workspace, name="Signup")
    page = Page.objects.create(app=app, name="Home", position=0)
    Widget.objects.create(page=page, name="title", type="text", properties={"text": "Hi"})
    # Children are laid out inside the form, so their y comes before the form's own y:
    # layout order alone would put them before their parent.
    form = Widget.objects.create(page=page, name="form1", type="form", y=2, w=6, h=4)
    for y, name in enumerate(["name", "email"]):
        Widget.objects.create(
            page=page,
            parent=form,
            name=f"{name}_input",
            type="input",
            properties={"label": name.title()},
            y=y,
        )
    Widget.objects.create(
        page=page,
        parent=form,
        name="submit",
        type="button",
        properties={"label": "Sign up"},
        events={"click": [{"action": "run_query", "query": "send_welcome"}]},
        y=2,
    )
    Page.objects.create(app=app, name="Thanks", position=1)
    Query.objects.create(
        app=app,
        name="send_welcome",
        datasource=mailbox,
        action="send_email",
        fields={
            "from": "kiln@kiln.test",
            "to": "<< form1.data.email >>",
            "subject": "Welcome, << form1.data.name >>",
            "body": "Thanks for signing up.",
        },
        confirm_before_run=True,
        timeout_seconds=30,
    )
    return app


@pytest.fixture
def document(app) -> dict:
    """The exported app, with the password source an import into a new workspace needs."""
    doc = json.loads(run("export_app", app.slug))
    doc["datasources"][0]["password"] = {"env": "SMTP_PASSWORD"}
    return doc


def without_app_slug(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    del doc["app"]["slug"]
    return doc


def stored_counts() -> tuple[int, ...]:
    models = (App, Page, Widget, Query, Datasource)
    return tuple(model.objects.count() for model in models)


def test_export_leaves_secrets_and_unused_datasources_out(app):
    text = run("export_app", app.slug)
    assert "pw-XYZ-secret" not in text
    assert "secret" not in text.lower()
    doc = json.loads(text)
    entry = doc["datasources"][0]
    assert "password" not in entry and "password" not in entry["config"]
    assert doc["kiln"] == "app" and doc["version"] == 1
    assert [d["name"] for d in doc["datasources"]] == ["Dev mailbox"]
    assert doc["datasources"][0]["config"]["username"] == "mailer"
    assert text.startswith('{\n  "kiln"')  # indented for diffs and review


def test_export_puts_parents_before_children(app):
    widgets = export_app(app)["pages"][0]["widgets"]
    names = [w["name"] for w in widgets]
    assert names == ["title", "form1", "name_input", "email_input", "submit"]
    assert {w["name"]: w["parent"] for w in widgets}["submit"] == "form1"
    assert widgets[0]["parent"] is None


def test_export_names_the_unknown_slug(db):
    with pytest.raises(CommandError, match="'nope'"):
        run("export_app", "nope")


def test_round_trip_into_another_workspace(team, app, document):
    original = export_app(app)
    imported = import_app(document, team.other_workspace, environ=PASSWORD_ENV)

    assert imported.workspace == team.other_workspace
    assert imported.slug != app.slug  # slugs are unique across Kiln
    assert without_app_slug(export_app(imported)) == without_app_slug(original)
    mailbox = Datasource.objects.get(workspace=team.other_workspace, name="Dev mailbox")
    assert mailbox.secret == "pw-new"
    assert mailbox.config == original["datasources"][0]["config"]
    assert imported.queries.get().datasource == mailbox
    submit = Widget.objects.get(page__app=imported, name="submit")
    assert submit.parent.name == "form1" and submit.parent.page == submit.page


def test_round_trip_after_deleting_the_app_keeps_its_slug(team, app, document):
    original, slug = export_app(app), app.slug
    app.delete()
    Datasource.objects.filter(workspace=team.workspace).delete()

    imported = import_app(document, team.workspace, environ=PASSWORD_ENV)

    assert imported.slug == slug
    assert export_app(imported) == original
    assert Datasource.objects.get(workspace=team.workspace, name="Dev mailbox").secret == "pw-new"


def test_it_reuses_a_same_named_datasource(team, app, document):
    del document["datasources"][0]["password"]
    existing = Datasource.objects.get(workspace=team.workspace, name="Dev mailbox")
    before = Datasource.objects.count()

    # No environment needed: the workspace's datasource is used as it is.
    imported = import_app(document, team.workspace, environ={})

    assert Datasource.objects.count() == before
    assert imported.queries.get().datasource == existing
    existing.refresh_from_db()
    assert existing.secret == "pw-XYZ-secret"


def test_a_query_may_use_a_workspace_datasource_not_in_the_file(team, app, document):
    document["datasources"] = []
    imported = import_app(document, team.workspace, environ={})
    assert imported.queries.get().datasource.name == "Dev mailbox"


def test_it_refuses_a_reused_datasource_of_another_kind(team, app, document):
    Datasource.objects.filter(name="Dev mailbox").update(kind="other")
    before = stored_counts()
    with pytest.raises(AppFileError) as caught:
        import_app(document, team.workspace, environ=PASSWORD_ENV)
    assert caught.value.path == "datasources[0].kind"
    assert stored_counts() == before


def test_a_missing_setting_takes_the_form_default(team, document):
    del document["datasources"][0]["config"]["verify_certificate"]
    import_app(document, team.other_workspace, environ=PASSWORD_ENV)
    mailbox = Datasource.objects.get(workspace=team.other_workspace)
    assert mailbox.config["verify_certificate"] is True


def test_false_settings_stay_false(team, document):
    document["datasources"][0]["config"]["verify_certificate"] = False
    import_app(document, team.other_workspace, environ=PASSWORD_ENV)
    mailbox = Datasource.objects.get(workspace=team.other_workspace)
    assert mailbox.config["verify_certificate"] is False


def _set(path: list, value):
    def change(doc):
        *parents, last = path
        target = doc
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _duplicate_widget(doc):
    doc["pages"][0]["widgets"][2]["name"] = "form1"


def _unknown_datasource(doc):
    doc["queries"][0]["datasource"] = "Prod mailbox"


def _unused_password(doc):
    del doc["datasources"][0]["password"]


def _event_to_missing_query(doc):
    doc["queries"][0]["name"] = "send_hello"


def _chained_download_of_missing_query(doc):
    doc["pages"][0]["widgets"][4]["events"]["click"][0]["on_error"] = [
        {"action": "show_toast", "kind": "error", "message": "No"},
        {"action": "download", "query": "gone", "filename": ""},
    ]


ERRORS = [
    ("version", _set(["version"], 2), "unsupported version 2"),
    ("kiln", _set(["kiln"], "page"), "not a Kiln app file"),
    ("pages[0].widgets[2].name", _duplicate_widget, "duplicate widget name “form1”"),
    ("pages[0].widgets[1].name", _set(["pages", 0, "widgets", 1, "name"], "form 1"), "valid name"),
    ("queries[0].name", _set(["queries", 0, "name"], "if"), "reserved"),
    ("pages[0].widgets[2].parent", _set(["pages", 0, "widgets", 2, "parent"], "nope"), "nope"),
    (
        "pages[0].widgets[1].parent",
        _set(["pages", 0, "widgets", 1, "parent"], "name_input"),
        "cycle",
    ),
    (
        "datasources[0].password",
        _set(["datasources", 0, "password"], {"env": "NOT_SET_ANYWHERE"}),
        "environment variable NOT_SET_ANYWHERE is not set",
    ),
    (
        "datasources[0].password",
        _set(["datasources", 0, "password"], "hunter2"),
        "put it in an environment variable",
    ),
    (
        "datasources[0].config.password",
        _set(["datasources", 0, "config", "password"], "hunter2"),
        "put it in an environment variable",
    ),
    ("datasources[0].password", _unused_password, 'Add "password": {"env": "VARIABLE"}'),
    ("datasources[0].kind", _set(["datasources", 0, "kind"], "ftp"), "unknown datasource kind"),
    ("datasources[0].config.port", _set(["datasources", 0, "config", "port"], "x"), "number"),
    ("datasources[0].config.hots", _set(["datasources", 0, "config", "hots"], "a"), "unknown"),
    ("queries[0].datasource", _unknown_datasource, "no datasource named “Prod mailbox”"),
    ("queries[0].action", _set(["queries", 0, "action"], "fax"), "no action “fax”"),
    ("queries[0].run_on_pageload", _set(["queries", 0, "run_on_pageload"], True), "unknown key"),
    ("queries[0].timeout_seconds", _set(["queries", 0, "timeout_seconds"], True), "whole number"),
    ("pages[0].widgets[4].events.click[0].query", _event_to_missing_query, "send_welcome"),
    (
        "pages[0].widgets[4].events.click[0].on_error[1].query",
        _chained_download_of_missing_query,
        "no query named “gone”",
    ),
]


@pytest.mark.parametrize(("path", "change", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_it_refuses_a_bad_file_and_stores_nothing(team, document, path, change, message):
    change(document)
    before = stored_counts()

    with pytest.raises(AppFileError) as caught:
        import_app(document, team.other_workspace, environ={"SMTP_PASSWORD": "pw-new"})

    assert caught.value.path == path
    assert message in caught.value.message
    assert str(caught.value) == f"{path}: {caught.value.message}"
    assert stored_counts() == before


def test_an_empty_environment_variable_is_refused(team, document):
    with pytest.raises(AppFileError, match="SMTP_PASSWORD is empty"):
        import_app(document, team.other_workspace, environ={"SMTP_PASSWORD": ""})


def test_import_command_reads_a_file_into_the_chosen_workspace(
    team, document, tmp_path, monkeypatch
):
    monkeypatch.setenv("SMTP_PASSWORD", "pw-from-env")
    path = tmp_path / "app.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    output = run("import_app", str(path), "--workspace", team.other_workspace.slug)

    imported = App.objects.get(workspace=team.other_workspace)
    assert imported.slug in output
    assert "2 page(s), 5 widget(s), 1 query, 1 datasource(s)" in output
    assert Datasource.objects.get(workspace=team.other_workspace).secret == "pw-from-env"


def test_import_command_reads_stdin_and_uses_the_only_workspace(db, tmp_path):
    workspace = Workspace.objects.create(name="Solo")
    doc = {"kiln": "app", "version": 1, "app": {"name": "Empty"}, "pages": [{"name": "Home"}]}
    output = run("import_app", "-", stdin=io.StringIO(json.dumps(doc)))
    app = App.objects.get(workspace=workspace)
    assert app.slug == "empty" and "Imported app empty into workspace solo" in output
    assert app.pages.get().slug == "home"


def test_import_command_asks_for_a_workspace_when_there_are_several(team, document, tmp_path):
    path = tmp_path / "app.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CommandError, match="--workspace, one of: acme, other"):
        run("import_app", str(path))
    with pytest.raises(CommandError, match="No workspace 'nope'"):
        run("import_app", str(path), "--workspace", "nope")


def test_import_command_reports_invalid_json_with_its_place(team, tmp_path):
    path = tmp_path / "app.json"
    path.write_text('{\n  "kiln": "app",\n  "version": 1,,\n}', encoding="utf-8")
    with pytest.raises(CommandError, match="not valid JSON: .* at line 3, column 16"):
        run("import_app", str(path), "--workspace", "acme")


def test_import_command_reports_a_file_error_with_its_path(team, document, tmp_path):
    document["version"] = 7
    path = tmp_path / "app.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    before = stored_counts()
    with pytest.raises(CommandError, match=r"^version: unsupported version 7"):
        run("import_app", str(path), "--workspace", "other")
    assert stored_counts() == before
