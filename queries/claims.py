"""Claiming a run: one conditional UPDATE moves it from queued (or scheduled) to
sending, so that of two deliveries of its task exactly one goes on.

On PostgreSQL the claim also reads the run and its datasource in the same statement
(an UPDATE ... RETURNING inside a WITH, joined to the datasource): a worker then needs
two round trips to the database per run (this one, and recording the result) instead
of three. Elsewhere (SQLite, where a statement costs no round trip) the claim is the
UPDATE alone and the run is read after it.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import F, Field, Model
from django.utils import timezone

from datasources.models import Datasource
from queries.models import WAITING, QueryRun, RunStatus

#: Columns of a run that sending does not read.
NOT_READ = ("data", "details", "error", "error_field", "visitor", "task_id", "enqueued_at")


def claim(run_id: int) -> bool:
    """Move a due run from queued to sending; exactly one caller can win."""
    now = timezone.now()
    claimed = QueryRun.objects.filter(
        pk=run_id, status__in=WAITING, next_attempt_at__lte=now
    ).update(status=RunStatus.SENDING, started_at=now, attempts=F("attempts") + 1)
    return claimed == 1


def claim_and_read(run_id: int) -> QueryRun | None:
    """The run claimed, with its datasource (None if deleted) loaded; None when it was
    not claimed (taken by another delivery, or not due)."""
    if connection.vendor != "postgresql":
        if not claim(run_id):
            return None
        return QueryRun.objects.select_related("datasource").defer(*NOT_READ).get(pk=run_id)
    run_fields = _fields(QueryRun, exclude=NOT_READ)
    source_fields = _fields(Datasource)
    run_table, source_table = QueryRun._meta.db_table, Datasource._meta.db_table
    returning = ", ".join(_quoted(f) for f in run_fields)
    selected = ", ".join(
        [f"claimed.{_quoted(f)}" for f in run_fields] + [f"ds.{_quoted(f)}" for f in source_fields]
    )
    now = timezone.now()
    sql = (
        f"WITH claimed AS (UPDATE {_name(run_table)} SET status = %s, started_at = %s, "
        "attempts = attempts + 1 WHERE id = %s AND status = ANY(%s) AND next_attempt_at <= %s "
        f"RETURNING {returning}) SELECT {selected} FROM claimed "
        f"LEFT JOIN {_name(source_table)} ds ON ds.id = claimed.datasource_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [RunStatus.SENDING, now, run_id, list(WAITING), now])
        row = cursor.fetchone()
    if row is None:
        return None
    run = _instance(QueryRun, run_fields, row[: len(run_fields)])
    source_row = row[len(run_fields) :]
    run.datasource = _instance(Datasource, source_fields, source_row) if source_row[0] else None
    return run


def _fields(model: type[Model], exclude: tuple[str, ...] = ()) -> list[Field]:
    # In the model's order: Model.from_db takes the values of a partial row so.
    return [f for f in model._meta.concrete_fields if f.name not in exclude]


def _quoted(field: Field) -> str:
    return connection.ops.quote_name(field.column)


def _name(table: str) -> str:
    return connection.ops.quote_name(table)


def _instance(model: type[Model], fields: list[Field], values) -> Model:
    """A model instance from raw column values, converted as a query would convert
    them (JSON decoded, secrets decrypted)."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
