"""The ``<< expr >>`` binding engine, free of Django.

A field is text in which each ``<< expr >>`` holds ONE Jinja expression, evaluated in an
``ImmutableSandboxedEnvironment`` against the binding context (widgets, queries, ``user``,
``url``, ``app``, ``page``). A field that is exactly one binding yields the native value; a
field mixing text and bindings yields a string. ``{{ }}``, ``{% %}`` and ``{# #}`` are plain
text: the literal text of a field never goes through Jinja, and values are never rendered
a second time.

One module per concern: ``limits`` (every bound, by name), ``errors``, ``sandbox`` (the
environment and its guards), ``templates`` (finding and compiling bindings), ``evaluate``,
``checks`` (what the editor asks without evaluating) and ``namespace`` (the names in
scope). docs/bindings.md is the user's guide.
"""

from bindings.checks import Attributes, check_names, is_incomplete, referenced_names
from bindings.errors import BindingError
from bindings.evaluation import evaluate, evaluate_fields, has_bindings, is_literal
from bindings.limits import MAX_OUTPUT, MAX_PASSED, MAX_RANGE, MAX_VALUE, MAX_WORK, TIME_LIMIT

__all__ = [
    "Attributes",
    "MAX_OUTPUT",
    "MAX_PASSED",
    "MAX_RANGE",
    "MAX_VALUE",
    "MAX_WORK",
    "TIME_LIMIT",
    "BindingError",
    "check_names",
    "evaluate",
    "evaluate_fields",
    "has_bindings",
    "is_literal",
    "is_incomplete",
    "referenced_names",
]
