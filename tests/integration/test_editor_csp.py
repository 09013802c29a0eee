"""The builder's own pages run under a strict Content-Security-Policy too: no inline
scripts, styles or event handlers, in whole pages and in the fragments htmx swaps in."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from builder.publishing import publish
from tests.support.apps import make_app

pytestmark = pytest.mark.django_db

# A <script type="application/json"> is data, never run: CSP does not apply to it.
INLINE = re.compile(
    r"hx-on|\sstyle=|<style|<script(?![^>]*\s(?:src=|type=\"application/json\"))|\son[a-z]+=",
    re.I,
)


@pytest.fixture
def contact(team, smtp_server):
    app, query = make_app(team.workspace, smtp_server.port)
    publish(app, team.owner)
    return app, query


def inline_in(html: str) -> list[str]:
    return [html[max(m.start() - 60, 0) : m.end() + 60] for m in INLINE.finditer(html)]


def test_the_sign_in_page_has_no_inline_script_or_style(client):
    assert inline_in(client.get(reverse("login")).text) == []


def test_builder_pages_have_no_inline_script_or_style(client, team, contact):
    app, query = contact
    page = app.pages.get()
    datasource = query.datasource
    slug = team.workspace.slug
    client.force_login(team.owner)
    urls = [
        reverse("home"),
        reverse("editor:apps", args=[slug]),
        reverse("editor:canvas", args=[app.slug, page.slug]),
        reverse("editor:canvas_widget", args=[app.slug, page.slug, "form1"]),
        reverse("editor:queries", args=[app.slug]),
        reverse("editor:query", args=[app.slug, query.name]),
        reverse("editor:app_delete", args=[app.slug]),
        reverse("datasources:list", args=[slug]),
        reverse("datasources:create", args=[slug, "smtp"]),
        reverse("datasources:edit", args=[slug, datasource.pk]),
        reverse("datasources:delete", args=[slug, datasource.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert inline_in(response.text) == [], url


def test_editor_fragments_have_no_inline_script_or_style(client, team, contact):
    app, query = contact
    page = app.pages.get()
    client.force_login(team.owner)
    added = client.post(
        reverse("editor:canvas_add", args=[app.slug, page.slug]),
        {"type": "text", "x": "0", "y": "20"},
        HTTP_HX_REQUEST="true",
    )
    assert added.status_code == 200
    assert inline_in(added.text) == []
    preview = client.post(
        reverse("editor:query_preview", args=[app.slug, query.name]),
        {
            "name": query.name,
            "datasource": query.datasource_id,
            "timeout_seconds": "60",
            "from": "desk@kiln.test",
            "to": "ann@example.com",
            "test_values": "{}",
        },
        HTTP_HX_REQUEST="true",
    )
    assert preview.status_code in (200, 422)
    assert inline_in(preview.text) == []
