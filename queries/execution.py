"""Creating runs: evaluate a query's fields in the binding context, let the plugin
check them, store the QueryRun (the outbox row) with its files, and enqueue it once the
transaction commits. Executing them is queries.outbox; the Celery tasks queries.tasks."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

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
from queries.context import binding_context, check_inputs
from queries.errors import RunLimitError, RunRequestError
from queries.models import QueryRun, RunAttachment, RunStatus, runs_of
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
    return _evaluate(query.datasource.plugin, query.action, fields, context)


def _evaluate(plugin: Plugin, action: str, fields: dict, context: dict) -> dict:
    try:
        late = plugin.late_fields(action)
    except PluginError as exc:
        raise RunRequestError(exc.field or "fields", exc.message) from None
    try:
        evaluated = {
            name: evaluate(name, template, context)
            for name, template in fields.items()
            if name not in late
        }
        html = plugin.html_fields(action, evaluated)
        for name in late & fields.keys():
            evaluated[name] = evaluate(name, fields[name], context, html=name in html)
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


def check_run_limits(query: Query, user, visitor: str = "") -> None:
    """Raises RunLimitError when the person (user or anonymous visitor) or the app has
    run as many times as allowed. Counted in the database, so every web process and
    every way in (page, editor, API) counts together; two requests at the same instant
    may both pass, which a limit meant against floods can live with."""
    now = timezone.now()
    per_person = settings.KILN_RUNS_PER_USER_PER_MINUTE
    recent = QueryRun.objects.filter(
        runs_of(user, visitor), created_at__gte=now - timedelta(minutes=1)
    )
    if per_person > 0 and recent.count() >= per_person:
        raise RunLimitError(
            "",
            f"Too many runs: at most {per_person} a minute for each user "
            "(limit KILN_RUNS_PER_USER_PER_MINUTE). Try again in a minute.",
        )
    per_app = settings.KILN_RUNS_PER_APP_PER_HOUR
    app_runs = QueryRun.objects.filter(
        query__app_id=query.app_id, created_at__gte=now - timedelta(hours=1)
    )
    if per_app > 0 and app_runs.count() >= per_app:
        raise RunLimitError(
            "",
            f"Too many runs of this app: at most {per_app} an hour "
            "(limit KILN_RUNS_PER_APP_PER_HOUR). Try again later.",
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
    send_at in the future is stored ``scheduled`` and sent at that time."""
    inputs = check_inputs(inputs)
    check_run_limits(query, user, visitor)
    if published is None:
        published = query.to_document()
        datasource = query.datasource
    else:
        datasource = published_datasource(query, published)
    when = send_at or published.send_at
    # Only the queries the fields (and the send time) read are loaded, with their runs.
    reads = referenced_names([published.fields, when], skip_errors=True)
    context = binding_context(
        query.app, user, inputs, url=url, page=page, visitor=visitor, reads=reads
    )
    plugin = datasource.plugin
    evaluated = _evaluate(plugin, published.action, published.fields, context)
    due = _send_at(when, context)
    try:
        # The datasource's settings (not its secret): a sandboxed one records where
        # the run goes instead of its recipients.
        where = SimpleNamespace(workspace=query.app.workspace, config=datasource.config)
        prepared = plugin.prepare_run(published.action, evaluated, where)
    except PluginError as exc:
        raise RunRequestError(exc.field or "fields", exc.message) from None
    with transaction.atomic():
        run = QueryRun.objects.create(
            workspace=query.app.workspace,
            query=query,
            datasource=datasource,
            action=published.action,
            timeout_seconds=published.timeout_seconds,
            created_by=user if getattr(user, "pk", None) else None,
            visitor="" if getattr(user, "pk", None) else visitor,
            fields=prepared.fields,
            payload=prepared.payload,
            payload_meta=prepared.payload_meta,
            file_count=len(prepared.files),
            max_attempts=settings.KILN_RUN_MAX_ATTEMPTS,
            send_at=due,
            **({"status": RunStatus.SCHEDULED, "next_attempt_at": due} if due else {}),
        )
        for position, file in enumerate(prepared.files):
            RunAttachment.objects.create(
                run=run,
                position=position,
                name=file.name,
                content_type=file.content_type,
                size=file.size,
                content=file.data,
            )
        audit.record(
            query.app.workspace,
            Action.RAN,
            "query",
            f"{query.app.name} / {query.name}",
            request=request,
            actor=user if getattr(user, "pk", None) else None,
            detail={"run": run.pk},
        )
        transaction.on_commit(lambda: enqueue_new(run.pk, due))
    log.info("run %s of query %s created (%s)", run.pk, query.pk, run.status)
    return run


def _send_at(template: str, context: dict):
    """When the run is due: None for now, else the moment ``template`` (with its
    bindings evaluated) names; ``RunRequestError`` naming send_at when it names none."""
    if not template or not str(template).strip():
        return None
    try:
        value = evaluate(SEND_AT, template, context)
    except BindingError as exc:
        raise RunRequestError(exc.field, str(exc)) from None
    return parse_send_at(value)
