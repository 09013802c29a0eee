"""The worker's statements: claiming a run (one conditional UPDATE moves it from
queued or scheduled to sending, so that of two deliveries of its task exactly one goes
on) and recording what became of it (one UPDATE, only while it is still sending).

On PostgreSQL the claim also reads the run and its datasource in the same statement
(an UPDATE ... RETURNING inside a WITH, joined to the datasource): a worker then needs
two round trips to the database per run (this one, and recording the result) instead
of three. Elsewhere (SQLite, where a statement costs no round trip) the claim is the
UPDATE alone and the run is read after it. The statements are written once per process
(raw SQL, values converted by the fields themselves): the ORM's work to build them was
a fair share of a worker's time per run.
"""

from __future__ import annotations

from functools import cache

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
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), [RunStatus.SENDING, now, run_id, list(WAITING), now])
        row = cursor.fetchone()
    if row is None:
        return None
    run_fields, source_fields = _read_fields()
    run = _instance(QueryRun, run_fields, row[: len(run_fields)])
    source_row = row[len(run_fields) :]
    run.datasource = _instance(Datasource, source_fields, source_row) if source_row[0] else None
    return run


def record(run_id: int, **values) -> int:
    """Write ``values`` (field name: value) on the run if it is still sending, in one
    UPDATE; the number of rows changed (0 or 1)."""
    fields = [QueryRun._meta.get_field(name) for name in values]
    params = [
        f.get_db_prep_save(v, connection) for f, v in zip(fields, values.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_record_sql(tuple(values)), [*params, run_id, RunStatus.SENDING])
        return cursor.rowcount


@cache
def _read_fields() -> tuple[list[Field], list[Field]]:
    # In the models' order: Model.from_db takes the values of a partial row so.
    run_fields = [f for f in QueryRun._meta.concrete_fields if f.name not in NOT_READ]
    return run_fields, list(Datasource._meta.concrete_fields)


@cache
def _claim_sql() -> str:
    run_fields, source_fields = _read_fields()
    returning = ", ".join(_quoted(f) for f in run_fields)
    selected = ", ".join(
        [f"claimed.{_quoted(f)}" for f in run_fields] + [f"ds.{_quoted(f)}" for f in source_fields]
    )
    return (
        f"WITH claimed AS (UPDATE {_name(QueryRun)} SET status = %s, started_at = %s, "
        "attempts = attempts + 1 WHERE id = %s AND status = ANY(%s) AND next_attempt_at <= %s "
        f"RETURNING {returning}) SELECT {selected} FROM claimed "
        f"LEFT JOIN {_name(Datasource)} ds ON ds.id = claimed.datasource_id"
    )


@cache
def _record_sql(names: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{_quoted(QueryRun._meta.get_field(n))} = %s" for n in names)
    return f"UPDATE {_name(QueryRun)} SET {assignments} WHERE id = %s AND status = %s"


def _quoted(field: Field) -> str:
    return connection.ops.quote_name(field.column)


def _name(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@cache
def _converters(model: type[Model]) -> dict[str, tuple]:
    """Per field: its column and the functions a query applies to its raw value."""
    table = model._meta.db_table
    converters = {}
    for field in model._meta.concrete_fields:
        column = field.get_col(table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        converters[field.attname] = (column, tuple(found))
    return converters


def _instance(model: type[Model], fields: list[Field], values) -> Model:
    """A model instance from raw column values, converted as a query would convert
    them (JSON decoded, secrets decrypted)."""
    converters = _converters(model)
    converted = []
    for field, value in zip(fields, values, strict=True):
        column, functions = converters[field.attname]
        for convert in functions:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
