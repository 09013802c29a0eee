"""A JSON column that keeps an object's keys in the order they were written.

PostgreSQL's ``jsonb`` (what Django's JSONField uses there) stores objects with their
keys sorted, shortest first, and drops duplicates; SQLite keeps the text as written. So
on PostgreSQL a table typed as ``[{"email": …, "name": …}]`` showed its columns swapped,
the property pane gave the builder their JSON back reordered, and a run's result read
``{"message": …, "success": …}``. PostgreSQL's plain ``json`` type keeps the text as
written. Kiln never looks inside these columns in SQL (no key lookups, containment or
indexes, which need ``jsonb``), so nothing is lost.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from django.db import models
from psycopg.types.json import Json


class OrderedJSONField(models.JSONField):
    """JSONField stored as ``json`` (not ``jsonb``) on PostgreSQL; the same elsewhere."""

    def db_type(self, connection) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value: Any, connection, prepared: bool = False) -> Any:
        if connection.vendor != "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        if not prepared:
            value = self.get_prep_value(value)
        # Sent typed as json: a jsonb parameter would be sorted before it reached the column.
        return Json(value, dumps=partial(json.dumps, cls=self.encoder))

    def from_db_value(self, value: Any, expression, connection) -> Any:
        if connection.vendor == "postgresql":
            # psycopg parses json columns itself (json.loads keeps the keys' order); Django
            # reads only jsonb as text.
            return value
        return super().from_db_value(value, expression, connection)
