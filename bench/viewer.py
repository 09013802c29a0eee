"""Server time to render a published page through Kiln's viewer, against a plain Django
template rendering what a person sees of the same page, in the same run.

    .venv/bin/python bench/viewer.py [N] [--profile]

The page: one Table of 1,000 literal rows (5 columns, 10 rows a page, searchable) and 49
simple widgets (inputs, texts, some bound to << url.x >>, buttons, checkboxes) on the
12-column grid. Both sides go through django.test.Client.get with a logged-in member, so
both include the whole request cycle (middleware, session and user look-up, base.html):
  kiln   GET /apps/<slug>/?x=7 -> viewer.views.page: loads the published version, evaluates
         every property (the table's data included), reads the widgets' states, renders
         each widget's template;
  plain  GET /plain/<slug>/?x=7 -> a view in this script: the same rows from a Python list, the
         first 10 and "1–10 of 1000" computed from all of them, one inline template
         extending base.html with the same grid, labels, inputs, texts, table and pager.
On a throwaway SQLite database; N renders each (default 200), interleaved, after warm-up.
With --profile: no timing, but a cProfile of N Kiln renders (what limits the ratio).
"""

from __future__ import annotations

import re
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS = 1000
PAGE_SIZE = 10
COLUMNS = ("id", "name", "email", "status", "amount")
STATUSES = ("active", "invited", "suspended", "closed")
WARMUP = 20
#: Kiln's page may take at most this many times the plain template's time.
TARGET = 3

PLAIN_TEMPLATE = """{% extends "base.html" %}{% load static %}
{% block title %}{{ page_name }} · {{ app.name }}{% endblock %}
{% block head %}
<link rel="stylesheet" href="{% static 'css/widgets.css' %}">
<link rel="stylesheet" href="{% static 'css/viewer.css' %}">
{% endblock %}
{% block nav %}<span class="app-name">{{ app.name }}</span>{% endblock %}
{% block content %}
<div class="kiln-app">
  <form id="kiln-page" class="kiln-page" onsubmit="return false" novalidate>
  <div class="kiln-grid">
    <div class="kiln-cell" style="grid-column: {{ table.col }} / span {{ table.w }}; \
grid-row: {{ table.row }} / span {{ table.h }}">
      <div class="kiln-widget kiln-table">
        <input class="kiln-control" type="search" name="{{ table.name }}.__search" \
placeholder="Search" aria-label="Search {{ table.name }}">
        <table class="kiln-table-grid">
          <thead><tr><th scope="col"><span class="kiln-sr-only">Selected</span></th>
          {% for column in columns %}<th scope="col"><button type="button" \
class="kiln-sort">{{ column }}<span aria-hidden="true">↕</span></button></th>{% endfor %}
          </tr></thead>
          <tbody>
          {% for row in rows %}<tr>
            <td><input type="radio" name="{{ table.name }}.__selected" \
value="{{ forloop.counter0 }}" aria-label="Select row {{ forloop.counter }}"></td>
            <td>{{ row.id }}</td><td>{{ row.name }}</td><td>{{ row.email }}</td>\
<td>{{ row.status }}</td><td>{{ row.amount }}</td>
          </tr>{% endfor %}
          </tbody>
        </table>
        <div class="kiln-table-footer">
          <span class="kiln-table-range">{{ first }}–{{ last }} of {{ total }}</span>
          <button type="button" disabled>‹ Prev</button>
          <span class="kiln-table-page">Page {{ page }} of {{ pages }}</span>
          <button type="button">Next ›</button>
        </div>
      </div>
    </div>
    {% for w in widgets %}<div class="kiln-cell" style="grid-column: {{ w.col }} / span \
{{ w.w }}; grid-row: {{ w.row }} / span {{ w.h }}"><div class="kiln-widget kiln-{{ w.type }}">
    {% if w.type == "input" %}<label class="kiln-label" for="{{ w.name }}-input">\
{{ w.props.label }}</label><input class="kiln-control" type="text" name="{{ w.name }}" \
id="{{ w.name }}-input" value="" placeholder="{{ w.props.placeholder }}">
    {% elif w.type == "checkbox" %}<input type="checkbox" name="{{ w.name }}" \
id="{{ w.name }}-input"><label class="kiln-label" for="{{ w.name }}-input">\
{{ w.props.label }}</label>
    {% elif w.type == "button" %}<button type="button" class="kiln-btn kiln-btn-secondary">\
{{ w.props.text }}</button>
    {% elif w.bound %}<p class="kiln-text-content kiln-text-body">Row {{ url_x }}</p>
    {% else %}<p class="kiln-text-content kiln-text-body">{{ w.props.text }}</p>{% endif %}
    </div></div>
    {% endfor %}
  </div>
  </form>
</div>
{% endblock %}
"""


def make_rows() -> list[dict]:
    rows = []
    for i in range(ROWS):
        cents = (i * 7919 % 99_999) * 100 + i % 99 + 1  # never a whole number of units
        rows.append(
            {
                "id": i + 1,
                "name": f"Person {i:04d}",
                "email": f"person{i}@example.com",
                "status": STATUSES[i % len(STATUSES)],
                "amount": cents / 100,
            }
        )
    return rows


def simple_widgets() -> list[dict]:
    """The 49 widgets beside the table: (type, name, props, layout), three to a row."""
    kinds = (
        "bound",
        "input",
        "text",
        "input",
        "bound",
        "input",
        "text",
        "button",
        "input",
        "checkbox",
    )
    widgets = []
    for i in range(49):
        kind = kinds[i % len(kinds)]
        layout = {"x": (i % 3) * 4, "y": 8 + i // 3, "w": 4, "h": 1}
        if kind == "bound":
            type_, props = "text", {"text": "Row << url.x or 'n' >>"}
        elif kind == "text":
            type_, props = "text", {"text": f"Plain note number {i}."}
        elif kind == "input":
            type_, props = "input", {"label": f"Field {i}", "placeholder": f"Value {i}"}
        elif kind == "button":
            type_, props = "button", {"text": f"Action {i}", "style": "secondary"}
        else:
            type_, props = "checkbox", {"label": f"Option {i}"}
        widgets.append(
            {
                "type": type_,
                "name": f"{type_}_{i}",
                "props": props,
                "bound": kind == "bound",
                **layout,
            }
        )
    return widgets


def cells(html: str) -> list[str]:
    """The table's plain cells (not the selection radios), in order."""
    return re.findall(r"<td>([^<]*)</td>", html)


def show_profile(render, count: int) -> None:
    """Where a Kiln render's time goes: cProfile over ``count`` renders after warm-up,
    the functions with the most time of their own and the most time under them."""
    import cProfile
    import pstats

    for _ in range(WARMUP):
        render()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        render()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)


def main(count: int, profile: bool = False) -> None:
    from django_env import start_django

    start_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.decorators import login_required
    from django.db import connection
    from django.shortcuts import get_object_or_404
    from django.template import engines
    from django.template.response import TemplateResponse
    from django.test import Client
    from django.urls import include, path

    from builder.models import App, Page, Widget
    from builder.publishing import publish
    from workspaces.models import Role, Workspace

    # The app, built and published as the editor would.
    rows = make_rows()
    widgets = simple_widgets()
    editor = get_user_model().objects.create_user("editor", "editor@kiln.test", "bench-pass-1")
    viewer = get_user_model().objects.create_user("viewer", "viewer@kiln.test", "bench-pass-1")
    workspace = Workspace.objects.create(name="Bench")
    workspace.add_member(editor, Role.EDITOR)
    workspace.add_member(viewer, Role.VIEWER)
    app = App.objects.create(workspace=workspace, name="Customers", slug="customers")
    page = Page.objects.create(app=app, name="Overview", slug="overview")
    table = {"name": "customers_table", "x": 0, "y": 0, "w": 12, "h": 8}
    Widget.objects.create(
        page=page,
        name=table["name"],
        type="table",
        properties={"data": rows, "page_size": PAGE_SIZE, "searchable": True},
        x=table["x"],
        y=table["y"],
        w=table["w"],
        h=table["h"],
    )
    for w in widgets:
        Widget.objects.create(
            page=page,
            name=w["name"],
            type=w["type"],
            properties=w["props"],
            x=w["x"],
            y=w["y"],
            w=w["w"],
            h=w["h"],
        )
    publish(app, editor)
    assert Widget.objects.filter(page=page).count() == 50

    # The plain side: a hand-written view and template showing the same page.
    plain_template = engines["django"].from_string(PLAIN_TEMPLATE)
    grid = [{**w, "col": w["x"] + 1, "row": w["y"] + 1} for w in widgets]
    table_cell = {**table, "col": table["x"] + 1, "row": table["y"] + 1}

    @login_required
    def plain_page(request, app):
        found = get_object_or_404(App, slug=app, workspace__memberships__user_id=request.user.pk)
        total = len(rows)  # Kiln's default sort is none: the rows in their own order
        pages = max(1, -(-total // PAGE_SIZE))
        shown = rows[:PAGE_SIZE]
        context = {
            "app": found,
            "page_name": "Overview",
            "table": table_cell,
            "columns": COLUMNS,
            "rows": shown,
            "first": 1,
            "last": len(shown),
            "total": total,
            "page": 1,
            "pages": pages,
            "widgets": grid,
            "url_x": request.GET.get("x") or "n",
        }
        return TemplateResponse(request, plain_template, context)

    urls = types.ModuleType("bench_viewer_urls")
    urls.urlpatterns = [path("plain/<slug:app>/", plain_page), path("", include("kiln.urls"))]
    sys.modules[urls.__name__] = urls
    settings.ROOT_URLCONF = urls.__name__

    client = Client(HTTP_HOST="localhost")
    client.force_login(viewer)
    # ?x=7: Kiln's bindings are strict, so << url.x or 'n' >> is an error (shown on the
    # page) when the URL has no x; with it, both sides show "Row 7".
    kiln_url, plain_url = f"/apps/{app.slug}/?x=7", f"/plain/{app.slug}/?x=7"

    # Both pages are real and show the same thing.
    kiln_response, plain_response = client.get(kiln_url), client.get(plain_url)
    assert kiln_response.status_code == 200, kiln_response.status_code
    assert plain_response.status_code == 200, plain_response.status_code
    kiln_html, plain_html = kiln_response.content.decode(), plain_response.content.decode()
    range_text = f"1–{PAGE_SIZE} of {ROWS}"  # as widgets/table.html prints it
    for html in (kiln_html, plain_html):
        assert range_text in html, "table range missing"
        assert "kiln-binding-error" not in html
        assert f"Page 1 of {ROWS // PAGE_SIZE}" in html
        assert html.count("Row 7<") == sum(w["bound"] for w in widgets)
        for w in widgets:
            if w["type"] in ("input", "checkbox"):
                assert f'name="{w["name"]}"' in html, w["name"]
            for key in ("label", "placeholder", "text"):
                if key in w["props"] and not w["bound"]:
                    assert w["props"][key] in html, (w["name"], key)
    expected = [str(v) for row in rows[:PAGE_SIZE] for v in row.values()]
    assert cells(kiln_html) == expected, cells(kiln_html)[:10]
    assert cells(plain_html) == expected, cells(plain_html)[:10]

    def queries(url: str) -> int:
        # Counted by a wrapper: request_started empties connection.queries_log.
        seen = []
        with connection.execute_wrapper(
            lambda execute, sql, *a: seen.append(sql) or execute(sql, *a)
        ):
            client.get(url)
        return len(seen)

    kiln_queries, plain_queries = queries(kiln_url), queries(plain_url)
    if profile:
        show_profile(lambda: client.get(kiln_url), count)
        return

    def timed(url: str) -> float:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        return elapsed * 1000

    for _ in range(WARMUP):
        timed(kiln_url)
        timed(plain_url)
    kiln_ms, plain_ms = [], []
    for _ in range(count):  # interleaved, so drift hits both sides alike
        kiln_ms.append(timed(kiln_url))
        plain_ms.append(timed(plain_url))

    kiln_med, plain_med = statistics.median(kiln_ms), statistics.median(plain_ms)
    kiln_mean, plain_mean = statistics.fmean(kiln_ms), statistics.fmean(plain_ms)
    print(
        f"Rendering one page (1 table of {ROWS:,} rows, {PAGE_SIZE} shown, + 49 simple "
        f"widgets): Kiln's viewer vs a plain Django template, both via test Client GET"
    )
    print(f"renders: {count} each, interleaved, after {WARMUP} warm-up renders each")
    print(
        f"html: kiln {len(kiln_html):,} bytes, {kiln_queries} SQL queries; "
        f"plain {len(plain_html):,} bytes, {plain_queries} SQL queries"
    )
    print(f"kiln   median {kiln_med:8.2f} ms   mean {kiln_mean:8.2f} ms per render")
    print(f"plain  median {plain_med:8.2f} ms   mean {plain_mean:8.2f} ms per render")
    print(
        f"ratio kiln/plain: median {kiln_med / plain_med:.1f}x, mean {kiln_mean / plain_mean:.1f}x"
        f"  (target: at most {TARGET:g}x)"
    )


if __name__ == "__main__":
    numbers = [int(arg) for arg in sys.argv[1:] if arg.isdigit()]
    main(numbers[0] if numbers else 200, profile="--profile" in sys.argv)
