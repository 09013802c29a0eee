"""Every plugin passes the same editor, viewer and run API tests: each test here runs once
for the SMTP plugin (against a real aiosmtpd server) and once for the test-only recorder
plugin (tests/support/recorder_plugin.py, writing to a log file), through generic code
that knows neither.

Both plugins get the same app: a page with two inputs, ``target`` and ``note``, a button
``go`` that runs the query ``q`` (a toast on success) and Texts bound to ``q``. Each case
says how its plugin's fields read the inputs, which field is required, how to see what
really happened, and what a run's ``data`` is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from builder.models import App, Page, Query, Widget
from builder.publishing import publish
from datasources.models import Datasource
from datasources.plugins import get_plugin
from datasources.plugins.base import ActionSpec, Plugin
from editor.queries import shown_fields
from queries.context import binding_context
from queries.execution import create_run
from queries.models import ApiToken, QueryRun
from queries.tasks import sweep
from tests.support import recorder_plugin
from tests.support.apps import mailer
from tests.support.recorder_plugin import records

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}
PAGE = "/apps/parity/home"
QUERY = "q"


@dataclass
class PluginCase:
    """One plugin, set up for the shared tests."""

    kind: str
    plugin: Plugin
    app: App
    query: Query
    action: str
    #: The query's field templates, bound to the inputs ``target`` and ``note``.
    fields: dict[str, str]
    #: A required field, and a bindable field to try an unknown name in.
    required: str
    bindable: str
    #: A valid value for ``target`` (an address, a channel).
    target: str
    #: What really happened, oldest first, as {"target": ..., "note": ...} per run.
    happened: Callable[[], list[dict[str, str]]]
    #: The run's data for a target and a note.
    data: Callable[[str, str], Any]
    #: The plugin's own columns of a run in << q.runs >>, for a target and a note.
    summary: Callable[[str, str], dict[str, Any]]

    @property
    def spec(self) -> ActionSpec:
        return self.plugin.action_spec(self.action)

    def label(self, name: str) -> str:
        return self.spec.label_of(name)

    def inputs(self, target: str | None = None, note: str = "hello") -> dict:
        return {
            "target": {"value": self.target if target is None else target},
            "note": {"value": note},
        }


def _page(workspace, datasource, action, fields) -> tuple[App, Query]:
    app = App.objects.create(workspace=workspace, name="Parity", slug="parity")
    page = Page.objects.create(app=app, name="Home", slug="home")
    Widget.objects.create(page=page, name="target", type="input", properties={"label": "To"})
    Widget.objects.create(page=page, name="note", type="input", properties={"label": "Note"}, y=1)
    Widget.objects.create(
        page=page,
        name="go",
        type="button",
        properties={"label": "Go"},
        events={
            "click": [
                {
                    "action": "run_query",
                    "query": QUERY,
                    "on_success": [
                        {
                            "action": "show_toast",
                            "kind": "success",
                            "message": "Done: << q.status >>",
                        }
                    ],
                }
            ]
        },
        y=2,
    )
    Widget.objects.create(
        page=page, name="state", type="text", properties={"text": "State: << q.status >>"}, y=3
    )
    Widget.objects.create(
        page=page, name="result", type="text", properties={"text": "<< q.data >>"}, y=4
    )
    query = Query.objects.create(
        app=app, name=QUERY, datasource=datasource, action=action, fields=dict(fields)
    )
    return app, query


def _smtp_case(team, request) -> PluginCase:
    server = request.getfixturevalue("smtp_server")
    datasource = mailer(team.workspace, server.port)
    fields = {
        "from": "Kiln <app@kiln.test>",
        "to": "<< target.value >>",
        "subject": "Note: << note.value >>",
        "body": "<< note.value >>",
    }
    app, query = _page(team.workspace, datasource, "send_email", fields)

    def happened() -> list[dict[str, str]]:
        return [
            {
                "target": ", ".join(received.rcpt_tos),
                "note": received.message.get_body(("plain",)).get_content().strip(),
            }
            for received in server.received
        ]

    return PluginCase(
        kind="smtp",
        plugin=get_plugin("smtp"),
        app=app,
        query=query,
        action="send_email",
        fields=fields,
        required="to",
        bindable="subject",
        target="ann@example.com",
        happened=happened,
        data=lambda target, note: {"success": True, "message": "Email sent successfully"},
        summary=lambda target, note: {"to": target, "subject": f"Note: {note}"},
    )


def _recorder_case(team, request) -> PluginCase:
    settings = request.getfixturevalue("settings")
    settings.KILN_EXTRA_PLUGINS = {recorder_plugin.KIND: recorder_plugin.PATH}
    log_path = request.getfixturevalue("tmp_path") / "records.jsonl"
    datasource = Datasource.objects.create(
        workspace=team.workspace,
        name="Notes",
        kind=recorder_plugin.KIND,
        config={"label": "notes", "log_path": str(log_path)},
    )
    fields = {"channel": "<< target.value >>", "message": "<< note.value >>"}
    app, query = _page(team.workspace, datasource, "record", fields)

    def happened() -> list[dict[str, str]]:
        return [
            {"target": record["channel"], "note": record["message"]} for record in records(log_path)
        ]

    return PluginCase(
        kind=recorder_plugin.KIND,
        plugin=get_plugin(recorder_plugin.KIND),
        app=app,
        query=query,
        action="record",
        fields=fields,
        required="channel",
        bindable="message",
        target="#general",
        happened=happened,
        data=lambda target, note: {
            "recorded": {"channel": target, "message": note},
            "by": "notes",
        },
        summary=lambda target, note: {"channel": target, "said": note},
    )


@pytest.fixture(params=["smtp", "recorder"])
def plugin_case(request, team) -> PluginCase:
    make = {"smtp": _smtp_case, "recorder": _recorder_case}[request.param]
    return make(team, request)


def url(name: str, case: PluginCase, *args) -> str:
    return reverse(f"editor:{name}", args=[case.app.slug, *args])


def form_data(case: PluginCase, test_values: dict | None = None, **overrides) -> dict:
    """The query editor's whole form for the case's query as stored, with ``overrides``
    (built from the action's declared fields, as the editor builds its form)."""
    query = case.query
    data: dict[str, str] = {
        "name": query.name,
        "datasource": str(query.datasource_id),
        "timeout_seconds": str(query.timeout_seconds),
        "test_values": json.dumps(test_values if test_values is not None else case.inputs()),
    }
    for spec in shown_fields(case.spec):
        stored = query.fields.get(spec.name, spec.default)
        if spec.kind == "toggle":
            if stored:
                data[spec.name] = "on"
        elif spec.kind == "choice":
            data[spec.name] = spec.choice_of(stored)
        else:
            data[spec.name] = "" if stored is None else str(stored)
    data.update(overrides)
    return data


def messages_of(html: str, field: str) -> str:
    found = re.search(rf'id="msgs-{field}" hx-swap-oob="true">(.*?)</div>', html, re.S)
    assert found, f"no messages for {field}"
    return found.group(1)


# ---------------------------------------------------------------------- query editor


def test_the_editor_shows_every_declared_field_with_its_label_and_required_marker(
    client, team, plugin_case
):
    client.force_login(team.teammate)
    response = client.get(url("query", plugin_case, QUERY))
    assert response.status_code == 200
    text = response.text
    marker = '<span class="qe-required" title="Required">*</span>'
    shown = shown_fields(plugin_case.spec)
    assert shown
    positions = []
    for spec in shown:
        assert f'name="{spec.name}"' in text, spec.name
        # A choice shown beside another field is labelled in that field's label row.
        shown_as = rf'aria-label="{re.escape(spec.label)}"()' if spec.beside else None
        label = re.search(shown_as or rf">{re.escape(spec.label)}( {re.escape(marker)})?<", text)
        assert label, spec.label
        assert bool(label.group(1)) == spec.required, spec.name
        positions.append(label.start())
    assert positions == sorted(positions)
    assert f"{plugin_case.plugin.label} · {plugin_case.spec.label}" in text


def test_saving_keeps_the_typed_fields(client, team, plugin_case):
    client.force_login(team.teammate)
    typed = {name: f"{value} again" for name, value in plugin_case.fields.items()}
    response = client.post(
        url("query_save", plugin_case, QUERY), form_data(plugin_case, **typed), headers=HTMX
    )
    assert response.status_code == 200
    assert "Saved" in response.text
    plugin_case.query.refresh_from_db()
    assert {name: plugin_case.query.fields.get(name) for name in typed} == typed
    assert plugin_case.query.action == plugin_case.action
    assert not QueryRun.objects.exists() and plugin_case.happened() == []


def test_a_binding_to_an_unknown_name_warns_under_that_field(client, team, plugin_case):
    client.force_login(team.teammate)
    field = plugin_case.bindable
    response = client.post(
        url("query_save", plugin_case, QUERY),
        form_data(plugin_case, **{field: "<< nobody.value >>"}),
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "unknown name &#x27;nobody&#x27;" in messages_of(response.text, field)
    assert not messages_of(response.text, plugin_case.required).strip()
    assert Query.objects.get(pk=plugin_case.query.pk).fields[field] == "<< nobody.value >>"


def test_a_blank_required_field_fails_the_run_naming_that_field(client, team, plugin_case):
    client.force_login(team.teammate)
    field = plugin_case.required
    response = client.post(
        url("query_run", plugin_case, QUERY),
        form_data(plugin_case, **{field: ""}),
        headers=HTMX,
    )
    assert response.status_code == 422
    label = plugin_case.label(field)
    assert f'<p class="qe-error-field">{label}</p>' in response.text
    assert f"{label} is required." in response.text
    assert f"{label} is required." in messages_of(response.text, field)
    assert not QueryRun.objects.exists() and plugin_case.happened() == []


def test_run_really_runs_and_shows_the_runs_data(client, team, plugin_case):
    client.force_login(team.teammate)
    response = client.post(
        url("query_run", plugin_case, QUERY), form_data(plugin_case), headers=HTMX
    )
    assert response.status_code == 200
    run = QueryRun.objects.get()
    assert (run.status, run.created_by) == ("sent", team.teammate)
    assert run.data == plugin_case.data(plugin_case.target, "hello")
    assert "qe-badge-sent" in response.text
    shown = json.dumps(run.data, indent=2).replace('"', "&quot;")
    assert shown in response.text
    assert plugin_case.happened() == [{"target": plugin_case.target, "note": "hello"}]


def test_the_test_values_drive_the_run(client, team, plugin_case):
    client.force_login(team.teammate)
    values = plugin_case.inputs(note="from the test values")
    response = client.post(
        url("query_run", plugin_case, QUERY), form_data(plugin_case, values), headers=HTMX
    )
    assert response.status_code == 200
    assert QueryRun.objects.get().data == plugin_case.data(
        plugin_case.target, "from the test values"
    )
    assert plugin_case.happened() == [
        {"target": plugin_case.target, "note": "from the test values"}
    ]


def test_preview_previews_or_says_the_plugin_has_none_and_runs_nothing(client, team, plugin_case):
    client.force_login(team.teammate)
    values = plugin_case.inputs(note="only a preview")
    response = client.post(
        url("query_preview", plugin_case, QUERY), form_data(plugin_case, values), headers=HTMX
    )
    if plugin_case.plugin.has_preview:
        assert response.status_code == 200
        assert "only a preview" in response.text
    else:
        assert response.status_code == 422
        assert f"{plugin_case.plugin.label} queries have no preview." in response.text
    assert not QueryRun.objects.exists() and plugin_case.happened() == []


# ---------------------------------------------------------------------- viewer


def click(client, case: PluginCase, note: str = "from the page", target: str | None = None):
    return client.post(
        f"{PAGE}/events",
        {
            "widget": "go",
            "event": "click",
            "target": case.target if target is None else target,
            "note": note,
        },
    )


def poll(client, case: PluginCase, run: QueryRun, note: str = "from the page"):
    return client.post(
        f"{PAGE}/runs/{run.pk}/poll",
        {"target": case.target, "note": note, "path": "click-0", "trigger": "go"},
    )


def test_a_click_in_the_published_app_runs_and_the_poll_shows_toast_and_data(
    client, team, plugin_case
):
    publish(plugin_case.app, team.owner)
    client.force_login(team.viewer)
    page = client.get(f"{PAGE}/")
    assert page.status_code == 200 and "State: " in page.text
    event = click(client, plugin_case)
    # The run ended inside the click's request: the answer carries the toast already.
    assert event.status_code == 200 and "kiln-poller" not in event.text
    assert "kiln-toast-success" in event.text and "Done: sent" in event.text
    run = QueryRun.objects.get()
    assert (run.status, run.created_by) == ("sent", team.viewer)
    assert plugin_case.happened() == [{"target": plugin_case.target, "note": "from the page"}]

    response = poll(client, plugin_case, run)
    assert response.status_code == 200
    assert "kiln-toast-success" in response.text and "Done: sent" in response.text
    state = re.search(r'id="w-state".*?</div>', response.text, re.S)
    assert state and "State: sent" in state.group(0)
    result = re.search(r'id="w-result".*?</div>', response.text, re.S)
    assert result
    for value in _leaves(plugin_case.data(plugin_case.target, "from the page")):
        assert value in result.group(0)


def _leaves(data: Any) -> list[str]:
    """The text values of ``data`` (as HTML shows them), to find in a rendered Text."""
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in _leaves(value)]
    return [data] if isinstance(data, str) else []


def test_a_failing_binding_in_the_query_shows_an_error_toast(client, team, plugin_case):
    plugin_case.query.fields = {**plugin_case.fields, plugin_case.bindable: "<< nope.x >>"}
    plugin_case.query.save()
    publish(plugin_case.app, team.owner)
    client.force_login(team.viewer)
    response = click(client, plugin_case)
    assert response.status_code == 200
    assert "kiln-toast-error" in response.text and "nope" in response.text
    assert not QueryRun.objects.exists() and plugin_case.happened() == []


def test_the_published_version_keeps_running_after_the_draft_changes(client, team, plugin_case):
    publish(plugin_case.app, team.owner)
    plugin_case.query.fields = {**plugin_case.fields, plugin_case.bindable: "<< nope.x >>"}
    plugin_case.query.save()
    Widget.objects.get(page__app=plugin_case.app, name="go").delete()
    client.force_login(team.viewer)
    assert click(client, plugin_case).status_code == 200
    run = QueryRun.objects.get()
    assert run.status == "sent"
    assert plugin_case.happened() == [{"target": plugin_case.target, "note": "from the page"}]
    assert "Done: sent" in poll(client, plugin_case, run).text


# ---------------------------------------------------------------------- run API


def post_run(client, token: str | None, inputs: dict):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        f"/api/v1/apps/parity/queries/{QUERY}/runs",
        json.dumps({"inputs": inputs}),
        content_type="application/json",
        headers=headers,
    )


def test_the_run_api_needs_a_token(client, team, plugin_case):
    assert post_run(client, None, plugin_case.inputs()).status_code == 401
    response = post_run(client, "kiln_not-a-real-token", plugin_case.inputs())
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not QueryRun.objects.exists() and plugin_case.happened() == []


def test_the_run_api_accepts_a_run_and_waiting_returns_its_data(client, team, plugin_case):
    token = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, token, plugin_case.inputs(note="via the API"))
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == f"/api/v1/runs/{body['id']}"
    fetched = client.get(
        f"{response['Location']}?wait=5", headers={"Authorization": f"Bearer {token}"}
    )
    assert fetched.status_code == 200
    assert fetched.json()["status"] == "sent"
    assert fetched.json()["data"] == plugin_case.data(plugin_case.target, "via the API")
    assert plugin_case.happened() == [{"target": plugin_case.target, "note": "via the API"}]


def test_the_run_api_names_a_missing_required_field(client, team, plugin_case):
    token = ApiToken.issue(team.teammate, "tests")[1]
    response = post_run(client, token, plugin_case.inputs(target=""))
    assert response.status_code == 400
    label = plugin_case.label(plugin_case.required)
    assert response.json() == {
        "error": f"{label} is required.",
        "field": plugin_case.required,
    }
    assert not QueryRun.objects.exists() and plugin_case.happened() == []


def test_the_run_api_is_404_for_an_outsider(client, team, plugin_case):
    outsider = ApiToken.issue(team.outsider)[1]
    assert post_run(client, outsider, plugin_case.inputs()).status_code == 404
    own = ApiToken.issue(team.teammate)[1]
    run_id = post_run(client, own, plugin_case.inputs()).json()["id"]
    response = client.get(f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {outsider}"})
    assert response.status_code == 404
    assert QueryRun.objects.count() == 1 and len(plugin_case.happened()) == 1


# ---------------------------------------------------------------------- << q.runs >>


def test_runs_rows_carry_the_plugins_own_summary_columns(team, plugin_case):
    run = create_run(plugin_case.query, team.teammate, plugin_case.inputs(note="one"))
    (row,) = binding_context(plugin_case.app, team.teammate, {})[QUERY]["runs"]
    assert row["id"] == run.pk and row["status"] == "sent"
    summary = plugin_case.summary(plugin_case.target, "one")
    assert {key: row[key] for key in summary} == summary
    others = {"smtp": ("channel", "said"), "recorder": ("to", "subject")}[plugin_case.kind]
    assert not set(others) & set(row)


# ---------------------------------------------------------------------- generic words


def test_a_query_made_without_an_action_gets_its_plugins_first_action(plugin_case):
    query = Query.objects.create(
        app=plugin_case.app, name="other", datasource=plugin_case.query.datasource
    )
    assert query.action == plugin_case.plugin.first_action == plugin_case.action


def test_a_query_created_in_the_editor_gets_its_plugins_first_action(client, team, plugin_case):
    client.force_login(team.teammate)
    response = client.post(
        url("queries", plugin_case),
        {"name": "another", "datasource": str(plugin_case.query.datasource_id)},
    )
    assert response.status_code == 302
    created = Query.objects.get(app=plugin_case.app, name="another")
    assert (created.action, created.fields) == (plugin_case.action, {})
    page = client.get(url("query", plugin_case, "another"))
    assert f"{plugin_case.plugin.label} · {plugin_case.spec.label}" in page.text


def test_the_queries_list_names_the_plugins_action_and_no_plugin_of_its_own(
    client, team, plugin_case
):
    client.force_login(team.teammate)
    response = client.get(url("queries", plugin_case))
    assert response.status_code == 200
    datasource = plugin_case.query.datasource
    assert f"{datasource.name} · {plugin_case.spec.label}" in response.text
    assert "SMTP" not in response.text and "sends an email" not in response.text


def test_a_run_stuck_in_running_is_unknown_in_words_for_any_plugin(team, plugin_case, settings):
    settings.KILN_RUN_STUCK_SECONDS = 60
    with transaction.atomic():
        run = QueryRun.objects.create(
            workspace=team.workspace, query=plugin_case.query, action=plugin_case.action
        )
    QueryRun.objects.filter(pk=run.pk).update(
        status="sending", started_at=timezone.now() - timedelta(minutes=5)
    )
    assert sweep()["unknown"] == 1
    run.refresh_from_db()
    assert run.status == "unknown" and "worker stopped" in run.error
    assert "email" not in run.error and "sent" not in run.error
