"""Creating runs: evaluate a query's fields in the binding context, let the plugin
check them, store the QueryRun (the outbox row) with its files, and enqueue it once the
transaction commits. Executing them is queries.outbox; the Celery tasks queries.tasks."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from bindings import BindingError, evaluate, referenced_names
from builder.models import Query
from builder.schema import QueryDocument
from datasources.errors import PluginError
from datasources.models import Datasource
from datasources.plugins import Plugin, get_plugin
from datasources.plugins.base import Prepared
from queries.context import binding_context, check_inputs
from queries.errors import RunLimitError, RunRequestError
from queries.models import QueryRun, RunAttachment, RunStatus, outbox_summary, runs_of
from queries.schedule import FIELD as SEND_AT
from queries.schedule import parse_send_at
from queries.tasks import enqueue_new
from workspaces import audit
from workspaces.audit import Action

log = logging.getLogger(__name__)


def evaluate_query_fields(query: Query, context: dict, fields: dict | None = None) -> dict:
    """Every field of ``query`` (or ``fields``, a published copy of them) evaluated;
    HTML fields (per the plugin) escape the values bound into them."""
    fields = query.fields if fields is None else fields
    return evaluate_action_fields(query.datasource.plugin, query.action, fields, context)


def evaluate_action_fields(plugin: Plugin, action: str, fields: dict, context: dict) -> dict:
    try:
        late = plugin.late_fields(action)
        specs = plugin.action_spec(action).fields
    except PluginError as exc:
        raise RunRequestError(exc.field or "fields", exc.message) from None
    # Fields that are always HTML (FieldSpec.html=True) are known before any is evaluated.
    always_html = plugin.html_fields(action, {})

    def one(name: str, html: bool) -> Any:
        """A field evaluated as its spec says: escaped as HTML or JSON, files passed on
        up to the files' cap; a field the action does not declare as plain text."""
        spec = specs.get(name)
        return evaluate(
            name,
            fields[name],
            context,
            html=html,
            json_text=bool(spec and spec.json),
            max_passed=spec.max_passed if spec else 0,
        )

    try:
        evaluated = {name: one(name, name in always_html) for name in fields if name not in late}
        html = plugin.html_fields(action, evaluated)
        for name in late & fields.keys():
            evaluated[name] = one(name, name in html)
    except BindingError as exc:
        raise RunRequestError(exc.field, str(exc)) from None
    return evaluated


def published_datasource(query: Query, published: QueryDocument) -> Datasource:
    """The datasource a published query names, in the app's workspace, able to run its
    action; ``RunRequestError`` naming the datasource when there is none."""
    name = published.datasource
    datasource = query.app.workspace.datasources.filter(name=name).first()
    if datasource is None:
        raise RunRequestError(
            "datasource",
            f"The datasource “{name}” that the published {query.name} uses does not exist "
            "any more (deleted or renamed). Publish the app again to use another one.",
        )
    try:
        actions = get_plugin(datasource.kind).actions
    except LookupError:
        actions = {}
    if published.action not in actions:
        raise RunRequestError(
            "action",
            f"The datasource “{name}” ({datasource.kind}) has no action "
            f"“{published.action}”, which the published {query.name} runs.",
        )
    return datasource


def check_run_limits(query: Query, user, visitor: str = "", *, rows: int = 1) -> None:
    """Raises RunLimitError when the person (user or anonymous visitor) or the app has
    run as many times as allowed. Counted in the database, so every web process and
    every way in (page, editor, API) counts together; two requests at the same instant
    may both pass, which a limit meant against floods can live with.

    A mail merge of ``rows`` rows is one run for the person's limit (its rows are not
    counted there) and ``rows`` runs for the app's hourly cap, which counts messages."""
    now = timezone.now()
    per_person = settings.KILN_RUNS_PER_USER_PER_MINUTE
    recent = QueryRun.objects.filter(
        runs_of(user, visitor), parent__isnull=True, created_at__gte=now - timedelta(minutes=1)
    )
    if per_person > 0 and recent.count() >= per_person:
        raise RunLimitError(
            "",
            f"Too many runs: at most {per_person} a minute for each user "
            "(limit KILN_RUNS_PER_USER_PER_MINUTE). Try again in a minute.",
        )
    per_app = settings.KILN_RUNS_PER_APP_PER_HOUR
    if per_app <= 0:
        return
    # A merge's parent sends nothing: its rows are counted instead.
    sent = QueryRun.objects.filter(
        query__app_id=query.app_id,
        merge_total__isnull=True,
        created_at__gte=now - timedelta(hours=1),
    ).count()
    if rows == 1 and sent >= per_app:
        raise RunLimitError(
            "",
            f"Too many runs of this app: at most {per_app} an hour "
            "(limit KILN_RUNS_PER_APP_PER_HOUR). Try again later.",
        )
    if rows > 1 and sent + rows > per_app:
        raise RunLimitError(
            "",
            f"This merge has {rows} rows, and the app may send at most {per_app} "
            f"an hour (limit KILN_RUNS_PER_APP_PER_HOUR), {sent} of them in the last hour. "
            "Try again later, or send fewer rows.",
        )


def run_target(query: Query, published: QueryDocument | None) -> tuple[QueryDocument, Datasource]:
    """What a run goes through: the published query and its datasource (by name) for a
    run of the published app, the query as edited otherwise."""
    if published is None:
        return query.to_document(), query.datasource
    return published, published_datasource(query, published)


def prepare(
    plugin: Plugin, action: str, evaluated: dict, query: Query, datasource: Datasource
) -> Prepared:
    """The plugin's checks and build of evaluated fields (``prepare_run``), its error as
    a RunRequestError naming the field. The datasource's settings (not its secret) go
    with them: a sandboxed one records where the run goes instead of its recipients."""
    where = SimpleNamespace(workspace=query.app.workspace, config=datasource.config)
    try:
        return plugin.prepare_run(action, evaluated, where)
    except PluginError as exc:
        raise RunRequestError(exc.field or "fields", exc.message) from None


def run_values(
    query: Query, target: QueryDocument, datasource: Datasource, user, visitor: str
) -> dict:
    """The columns every run of ``query`` started by this person has."""
    signed_in = bool(getattr(user, "pk", None))
    return {
        "workspace": query.app.workspace,
        "app": query.app,
        "query": query,
        "query_name": query.name,
        "datasource": datasource,
        "action": target.action,
        "timeout_seconds": target.timeout_seconds,
        "created_by": user if signed_in else None,
        "visitor": "" if signed_in else visitor,
        "max_attempts": settings.KILN_RUN_MAX_ATTEMPTS,
    }


def prepared_values(prepared: Prepared) -> dict:
    """The columns a run takes from what its plugin prepared."""
    return {
        "fields": prepared.fields,
        "payload": prepared.payload,
        "payload_meta": prepared.payload_meta,
        "file_count": len(prepared.files),
        # What the outbox lists: bulk_create (a merge's rows) skips QueryRun.save().
        **outbox_summary(prepared.fields),
    }


def store_files(run: QueryRun, files: list) -> None:
    """The run's files, copied into the database (a worker reads them from there)."""
    RunAttachment.objects.bulk_create(
        RunAttachment(
            run=run,
            position=position,
            name=file.name,
            content_type=file.content_type,
            size=file.size,
            content=file.data,
        )
        for position, file in enumerate(files)
    )


def record_ran(query: Query, user, request: HttpRequest | None, detail: dict) -> None:
    audit.record(
        query.app.workspace,
        Action.RAN,
        "query",
        f"{query.app.name} / {query.name}",
        request=request,
        actor=user if getattr(user, "pk", None) else None,
        detail=detail,
    )


def create_run(
    query: Query,
    user,
    inputs: dict | None = None,
    *,
    url: dict | None = None,
    page=None,
    published: QueryDocument | None = None,
    request: HttpRequest | None = None,
    visitor: str = "",
    send_at: str = "",
) -> QueryRun:
    """Evaluate and check the query's fields, store the run, and enqueue it once the
    transaction commits. Raises ``RunRequestError`` (nothing stored) for bad input, and
    ``RunLimitError`` when a run limit is reached. ``visitor``: the session id of an
    anonymous visitor of a public app (``user`` is then anonymous).

    With ``published`` (the query as a published version has it), the run goes through
    the published datasource (by name), action, fields and timeout, not the query's row:
    a published version is frozen. Without it, the query as edited runs. ``request``
    says where the run came from, for the audit log. ``send_at`` (text with bindings,
    from a run_query action's option) overrides the query's own send_at; a run with a
    send_at in the future is stored ``scheduled`` and sent at that time.

    A query with ``for_each`` starts a mail merge instead (queries.merge): the run
    returned is the merge's parent, and every way in (page, editor, API) starts one."""
    target = query.to_document() if published is None else published
    if target.for_each.strip():
        # Imported here: queries.merge builds its rows with this module's helpers.
        from queries.merge import start_merge

        return start_merge(
            query,
            user,
            inputs,
            url=url,
            page=page,
            published=published,
            request=request,
            visitor=visitor,
            send_at=send_at,
        )
    inputs = check_inputs(inputs)
    check_run_limits(query, user, visitor)
    target, datasource = run_target(query, published)
    when = send_at or target.send_at
    # Only the queries the fields (and the send time) read are loaded, with their runs.
    reads = referenced_names([target.fields, when], skip_errors=True)
    context = binding_context(
        query.app, user, inputs, url=url, page=page, visitor=visitor, reads=reads
    )
    plugin = datasource.plugin
    evaluated = evaluate_action_fields(plugin, target.action, target.fields, context)
    due = send_time(when, context)
    prepared = prepare(plugin, target.action, evaluated, query, datasource)
    scheduled = {"status": RunStatus.SCHEDULED, "next_attempt_at": due} if due else {}
    with transaction.atomic():
        run = QueryRun.objects.create(
            **run_values(query, target, datasource, user, visitor),
            **prepared_values(prepared),
            send_at=due,
            **scheduled,
        )
        store_files(run, prepared.files)
        record_ran(query, user, request, {"run": run.pk})
        transaction.on_commit(lambda: enqueue_new(run.pk, due))
    log.info("run %s of query %s created (%s)", run.pk, query.pk, run.status)
    return run


def send_time(template: str, context: dict):
    """When the run is due: None for now, else the moment ``template`` (with its
    bindings evaluated) names; ``RunRequestError`` naming send_at when it names none."""
    if not template or not str(template).strip():
        return None
    try:
        value = evaluate(SEND_AT, template, context)
    except BindingError as exc:
        raise RunRequestError(exc.field, str(exc)) from None
    return parse_send_at(value)
