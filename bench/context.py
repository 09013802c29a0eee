"""What building the binding context costs in an app of 1 query against one of 200, in
the same run: it should not grow with the number of queries in the app.

    .venv/bin/python bench/context.py [N]

Each app has one page (an input, a text reading << q0.status >>, a button) and its
queries each have 3 runs of the user. Measured, N times each, interleaved, after warm-up:
  reads  binding_context(app, user, inputs, reads=...) for a run's fields reading
         << name_in.value >> and << q0.status >>: what queries.execution.create_run
         builds now, loading only the queries the fields read;
  every  binding_context(app, user, inputs): every query of the app and its runs, as a
         run's context was built before (the editor's test values still are);
and the SQL statements of each, and of a GET of the published page (its bindings read
q0 only). The ratio 200/1 is the growth; near 1 means none.
On a throwaway SQLite database; N defaults to 300.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (1, 200)
RUNS_EACH = 3
WARMUP = 30
FIELDS = {"to": "<< name_in.value >>", "subject": "Re: << q0.status >>", "body": "Hello"}
INPUTS = {"name_in": {"value": "ann@example.com"}}


def main(count: int) -> None:
    from django_env import start_django

    start_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from bindings import referenced_names
    from builder.models import App, Page, Query, Widget
    from builder.publishing import publish
    from queries.context import binding_context
    from queries.models import QueryRun
    from tests.support.apps import mailer
    from workspaces.models import Role, Workspace

    user = get_user_model().objects.create_user("viewer", "viewer@kiln.test", "bench-pass-1")
    workspace = Workspace.objects.create(name="Bench")
    workspace.add_member(user, Role.EDITOR)
    datasource = mailer(workspace, 2525)

    apps = {}
    for size in SIZES:
        app = App.objects.create(workspace=workspace, name=f"Size {size}", slug=f"size-{size}")
        page = Page.objects.create(app=app, name="Home", slug="home")
        Widget.objects.create(page=page, name="name_in", type="input", properties={"label": "To"})
        Widget.objects.create(
            page=page, name="status_text", type="text", properties={"text": "<< q0.status >>"}
        )
        for i in range(size):
            query = Query.objects.create(
                app=app, name=f"q{i}", datasource=datasource, fields=dict(FIELDS)
            )
            QueryRun.objects.bulk_create(
                QueryRun(
                    workspace=workspace,
                    query=query,
                    created_by=user,
                    status="sent",
                    fields={"subject": f"Q{i}"},
                    finished_at=timezone.now(),
                )
                for _ in range(RUNS_EACH)
            )
        publish(app, user)
        apps[size] = app

    reads = referenced_names(FIELDS, skip_errors=True)

    def build(app, every: bool):
        if every:
            return binding_context(app, user, INPUTS)
        return binding_context(app, user, INPUTS, reads=reads)

    def statements(action) -> int:
        seen: list[str] = []
        with connection.execute_wrapper(
            lambda execute, sql, *a: seen.append(sql) or execute(sql, *a)
        ):
            action()
        return len(seen)

    # Both build what the fields read, the same way.
    for app in apps.values():
        lean, full = build(app, False), build(app, True)
        assert lean["q0"] == full["q0"] and len(lean["q0"]["runs"]) == RUNS_EACH
        assert lean["name_in"] == INPUTS["name_in"]

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    page_sql = {}
    for size, app in apps.items():
        response = client.get(f"/apps/{app.slug}/")
        assert response.status_code == 200 and ">sent<" in response.text, response.status_code
        page_sql[size] = statements(lambda app=app: client.get(f"/apps/{app.slug}/"))

    timings: dict[tuple[int, bool], list[float]] = {
        (size, every): [] for size in SIZES for every in (False, True)
    }
    order = list(timings)
    for round_ in range(WARMUP + count):  # interleaved, so drift hits every case alike
        random.shuffle(order)
        for key in order:
            started = time.perf_counter()
            build(apps[key[0]], key[1])
            elapsed = (time.perf_counter() - started) * 1e6
            if round_ >= WARMUP:
                timings[key].append(elapsed)

    small, large = SIZES
    print(
        f"Binding context for a run's fields ({', '.join(sorted(reads))} read), in an app of "
        f"{small} query and of {large} queries ({RUNS_EACH} runs each)"
    )
    print(f"builds: {count} each, interleaved, after {WARMUP} warm-up builds each")
    for every, label in ((False, "reads"), (True, "every")):
        cost = {size: statistics.median(timings[(size, every)]) for size in SIZES}
        sql = {
            size: statements(lambda size=size, every=every: build(apps[size], every))
            for size in SIZES
        }
        print(
            f"{label}  {small} query: {cost[small]:8.1f} µs, {sql[small]} SQL   "
            f"{large} queries: {cost[large]:8.1f} µs, {sql[large]} SQL   "
            f"ratio {large}/{small}: {cost[large] / cost[small]:.2f}x"
        )
    print(
        f"page GET (binds << q0.status >>): {page_sql[small]} SQL with {small} query, "
        f"{page_sql[large]} SQL with {large} queries"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
