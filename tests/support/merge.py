"""A mail-merge app for tests: a Table's rows, or an uploaded CSV, one email each."""

from __future__ import annotations

from builder.models import App, Page, Query, Widget
from tests.support.apps import mailer

#: One email per row of table1's data, personalised by row and index.
MERGE_FIELDS = {
    "from": "Kiln <app@kiln.test>",
    "to": "<< row.email >>",
    "subject": "Hello << row.name >> (row << index + 1 >> of << table1.data|length >>)",
    "body": "Dear << row.name >>, this is message << index >>.",
    "body_type": "text",
}
#: The same from an uploaded CSV (email and name columns).
CSV_FIELDS = {
    "from": "Kiln <app@kiln.test>",
    "to": "<< row.email >>",
    "subject": "Hello << row.name >>",
    "body": "Dear << row.name >>, row << index >>.",
    "body_type": "text",
}


def make_merge_app(workspace, smtp_port: int, *, fields: dict | None = None, name: str = "Merge"):
    """An app with a table (table1), a file picker (files1) and a merge query
    (send_each): over table1's data, or over the CSV in files1 with CSV_FIELDS."""
    datasource = mailer(workspace, smtp_port, name=f"Mailer {smtp_port} {name}")
    app = App.objects.create(workspace=workspace, name=name)
    page = Page.objects.create(app=app, name="Home")
    Widget.objects.create(page=page, name="table1", type="table")
    Widget.objects.create(page=page, name="files1", type="filepicker")
    csv = fields is CSV_FIELDS
    query = Query.objects.create(
        app=app,
        name="send_each",
        datasource=datasource,
        fields=dict(fields or MERGE_FIELDS),
        for_each="<< files1.files[0] >>" if csv else "<< table1.data >>",
    )
    return app, query


def people(count: int, domain: str = "example.com") -> list[dict]:
    return [{"name": f"Person {i}", "email": f"person{i}@{domain}"} for i in range(count)]
