"""Creating runs: evaluate a query's fields in the binding context, let the plugin
check them, store the QueryRun (the outbox row) with its files, and enqueue it once the
transaction commits. Executing them is queries.outbox; the Celery tasks queries.tasks."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from bindings import BindingError, evaluate
from builder.models import Query
from datasources.errors import PluginError
from queries.context import binding_context, check_inputs
from queries.errors import RunRequestError
from queries.models import QueryRun, RunAttachment
from queries.tasks import enqueue

log = logging.getLogger(__name__)


def evaluate_query_fields(query: Query, context: dict, fields: dict | None = None) -> dict:
    """Every field of ``query`` (or ``fields``, a published copy of them) evaluated;
    HTML fields (per the plugin) escape the values bound into them."""
    plugin = query.datasource.plugin
    fields = query.fields if fields is None else fields
    try:
        late = plugin.late_fields(query.action)
    except PluginError as exc:
        raise RunRequestError(exc.field or "fields", exc.message) from None
    try:
        evaluated = {
            name: evaluate(name, template, context)
            for name, template in fields.items()
            if name not in late
        }
        html = plugin.html_fields(query.action, evaluated)
        for name in late & fields.keys():
            evaluated[name] = evaluate(name, fields[name], context, html=name in html)
    except BindingError as exc:
        raise RunRequestError(exc.field, str(exc)) from None
    return evaluated


def create_run(
    query: Query,
    user,
    inputs: dict | None = None,
    *,
    url: dict | None = None,
    page=None,
    fields: dict | None = None,
) -> QueryRun:
    """Evaluate and check the query's fields (or ``fields``, as published), store the
    run, and enqueue it once the transaction commits. Raises ``RunRequestError``
    (nothing stored) for bad input."""
    inputs = check_inputs(inputs)
    context = binding_context(query.app, user, inputs, url=url, page=page)
    evaluated = evaluate_query_fields(query, context, fields)
    plugin = query.datasource.plugin
    try:
        prepared = plugin.prepare_run(
            query.action, evaluated, SimpleNamespace(workspace=query.app.workspace)
        )
    except PluginError as exc:
        raise RunRequestError(exc.field or "fields", exc.message) from None
    with transaction.atomic():
        run = QueryRun.objects.create(
            workspace=query.app.workspace,
            query=query,
            created_by=user if getattr(user, "pk", None) else None,
            fields=prepared.fields,
            max_attempts=settings.KILN_RUN_MAX_ATTEMPTS,
        )
        for position, file in enumerate(prepared.files):
            RunAttachment.objects.create(
                run=run,
                position=position,
                name=file.name,
                content_type=file.content_type,
                size=file.size,
                file=ContentFile(file.data, name=f"{position}-{file.name}"),
            )
        transaction.on_commit(lambda: enqueue(run.pk))
    log.info("run %s of query %s created (queued)", run.pk, query.pk)
    return run
