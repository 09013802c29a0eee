"""Evaluating fields: one binding yields its native value, text with bindings a string;
values bound into HTML are escaped as HTML, into JSON text as the inside of a JSON
string; errors name the field and the expression."""

from __future__ import annotations

import json
import re
import time
import types
from collections.abc import Collection, Iterator, Mapping, MappingView
from dataclasses import dataclass, replace
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import (
    SecurityError,
    TemplateError,
    UndefinedError,
)
from jinja2.runtime import Undefined
from markupsafe import Markup, escape

from bindings.errors import BindingError, Refused
from bindings.limits import MAX_NESTING, MAX_OUTPUT, MAX_VALUE, TIME_LIMIT
from bindings.sandbox import ENV, RUN, Budget, charge, check_text_size
from bindings.templates import Binding, Compiled, TemplateProblem, compile_binding, split_template

# ---------------------------------------------------------------------- evaluation


def has_bindings(template: object) -> bool:
    """True if ``template`` is a str with an unescaped ``<<`` followed by a ``>>``.

    For display only: a field without bindings may still hold ``\\<<`` (which evaluate()
    turns into ``<<``) or an unclosed ``<<`` (which evaluate() reports), so evaluate every
    field rather than only those with bindings.
    """
    if not isinstance(template, str):
        return False
    i = 0
    while (j := template.find("<<", i)) >= 0:
        if j == 0 or template[j - 1] != "\\":
            return template.find(">>", j + 2) >= 0
        i = j + 2
    return False


def is_literal(template: object) -> bool:
    """True when no text in ``template`` (its lists and dicts walked, as evaluate() walks
    them) holds ``<<``: evaluate() would give back a value equal to ``template``, so a
    caller may use ``template`` itself and skip the walk (a 1,000-row table's data).
    A text with ``\\<<`` or an unclosed ``<<`` is not literal: evaluate() changes or
    reports it."""
    stack = [template]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "<<" in item:
                return False
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return True


@dataclass(frozen=True)
class _Options:
    """How one field is evaluated: how values bound into its text are escaped, and the
    cap on a value a binding that only reads passes on (0: the usual caps)."""

    html: bool = False
    json: bool = False
    max_passed: int = 0


def evaluate(
    field: str,
    template: object,
    context: Mapping[str, Any],
    *,
    html: bool = False,
    json_text: bool = False,
    max_passed: int = 0,
) -> Any:
    """The value of one field: native for a single binding, else a string.

    Lists and dicts are evaluated item by item (keys are not), under the field's one time
    and work budget. ``html=True`` escapes interpolated values unless they are ``Markup``
    (``|safe``). ``json_text=True`` is for a field whose text is JSON: a value bound into
    the text is written as the inside of a JSON string (quotes, backslashes and control
    characters escaped), so that it can never close the string and add keys; a field that
    is one binding yields its value as it is (it is the whole field, not a piece of
    JSON). ``max_passed`` lets a field that is only a path into the context pass its value
    on up to that size (a files field's files as data URLs); without it the usual caps
    apply. Raises :class:`BindingError` for every problem, never anything else.
    """
    if html and json_text:
        raise ValueError("A field is HTML or JSON text, not both.")
    options = _Options(html=html, json=json_text, max_passed=max_passed)
    run = Budget(deadline=time.monotonic() + TIME_LIMIT)
    token = RUN.set(run)
    try:
        return _evaluate_value(field, template, context, options, run)
    finally:
        RUN.reset(token)


def evaluate_fields(
    fields: Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    html_fields: Collection[str] = (),
) -> dict[str, Any]:
    """Every field evaluated; the first error is raised (it names its field)."""
    return {
        name: evaluate(name, template, context, html=name in html_fields)
        for name, template in fields.items()
    }


def _evaluate_value(
    field: str, template: Any, context: Mapping, options: _Options, run: Budget
) -> Any:
    if isinstance(template, str):
        return _evaluate_str(field, template, context, options, run)
    # The items of a stored list or dict are values, not JSON text: nothing to escape.
    options = replace(options, json=False)
    if isinstance(template, list):
        return [_evaluate_value(field, item, context, options, run) for item in template]
    if isinstance(template, dict):
        return {
            key: _evaluate_value(field, item, context, options, run)
            for key, item in template.items()
        }
    return template


def _evaluate_str(
    field: str, template: str, context: Mapping, options: _Options, run: Budget
) -> Any:
    try:
        parts = split_template(template)
    except TemplateProblem as exc:
        raise BindingError(field, "", str(exc)) from None
    bindings = [part for part in parts if isinstance(part, Binding)]
    if not bindings:
        return "".join(parts)  # type: ignore[arg-type]

    if len(bindings) == 1 and all(isinstance(part, Binding) or not part.strip() for part in parts):
        expression = bindings[0].expression
        value = _run_expression(field, expression, context, run)
        passed = bool(options.max_passed) and not options.html and _only_reads(expression)
        # A list or dict goes on to be stored and sent: bound it too, more loosely than text.
        _refuse_big(field, expression, value, options.max_passed if passed else MAX_VALUE)
        if options.html and isinstance(value, str) and not isinstance(value, Markup):
            value = str(escape(value))
        if isinstance(value, str):
            limit = options.max_passed if passed else MAX_OUTPUT
            _check_output(field, expression, len(value), limit)
        _check_time(field, expression, run)
        return value

    pieces: list[str] = []
    size = 0
    for part in parts:
        if isinstance(part, Binding):
            value = _run_expression(field, part.expression, context, run)
            _refuse_big(field, part.expression, value, MAX_OUTPUT)
            text = _as_text(value, options)
        else:
            text = part
        size += len(text)
        _check_output(field, "", size)
        pieces.append(text)
    _check_time(field, "", run)
    return "".join(pieces)


def _as_text(value: Any, options: _Options) -> str:
    if value is None:
        return ""
    if options.html:
        return str(value) if isinstance(value, Markup) else str(escape(str(value)))
    if options.json:
        # Even |safe text: JSON has no markup to trust, only a string to stay inside.
        return json.dumps(str(value), ensure_ascii=False)[1:-1]
    return str(value)


def _refuse_big(field: str, expression: str, value: Any, limit: int) -> None:
    try:
        check_text_size(value, limit)
    except Refused as exc:
        raise BindingError(field, expression, str(exc)) from None


def _check_output(field: str, expression: str, size: int, limit: int = MAX_OUTPUT) -> None:
    if size > limit:
        raise BindingError(field, expression, f"output too long: more than {limit:,} characters")


def _only_reads(expression: str) -> bool:
    """Whether the expression is only a path into the context (``files1.files``,
    ``form1.data['file']``): its value is data the caller gave, passed on unchanged, which
    the caller's own limits bound (a request's size, the attachment limit). An
    expression that calls, filters or operates builds its value, and stays under the
    sandbox's caps. An HTML field escapes, so builds, and is never only a read."""
    tree = compile_binding(expression).tree
    return tree is not None and _path_text(tree) is not None


def _check_time(field: str, expression: str, run: Budget) -> None:
    if time.monotonic() > run.deadline:
        raise BindingError(field, expression, f"took too long (limit {TIME_LIMIT:g} s)")


def _run_expression(field: str, expression: str, context: Mapping, run: Budget) -> Any:
    compiled = compile_binding(expression)
    if compiled.error:
        raise BindingError(field, expression, compiled.error)
    run.missing.clear()
    try:
        value = _settle(compiled.function(context), run, 0)
        kind = _not_data(value, 0)
        if kind:
            # Never the value's Python text: it shows memory addresses and internals.
            raise Refused(f"the result is {kind}, not data (a function is called with ())")
        return value
    except Refused as exc:
        raise BindingError(field, expression, str(exc)) from None
    except SecurityError as exc:
        raise BindingError(field, expression, exc.message or "not allowed (unsafe)") from None
    except UndefinedError as exc:
        message = _describe_undefined(exc, compiled, context, run)
        raise BindingError(field, expression, message) from None
    except TemplateError as exc:
        raise BindingError(field, expression, f"failed: {exc.message}") from None
    except Exception as exc:  # the expression's own errors: ZeroDivisionError, TypeError, …
        raise BindingError(field, expression, f"failed: {type(exc).__name__}: {exc}") from None


def _settle(value: Any, run: Budget, depth: int) -> Any:
    """The value as the caller gets it: lazy sequences made lists, no undefined inside."""
    if isinstance(value, (str, int, float, type(None))):
        return value
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if depth > MAX_NESTING + 2:
        # Deeper than any literal the expression could write: this is context data, which
        # holds no undefined or lazy values.
        return value
    if isinstance(value, (Iterator, range, MappingView)):
        items = []
        for item in value:  # type: ignore[union-attr]
            items.append(item)
            if len(items) > MAX_OUTPUT:
                raise Refused(f"result too large: more than {MAX_OUTPUT:,} items")
        charge(items)
        value = items
    if isinstance(value, (list, tuple)):
        settled = [_settle(item, run, depth + 1) for item in value]
        if any(new is not old for new, old in zip(settled, value, strict=True)):
            return settled if isinstance(value, list) else tuple(settled)
        return value
    if isinstance(value, dict):
        settled_dict = {key: _settle(item, run, depth + 1) for key, item in value.items()}
        if any(settled_dict[key] is not item for key, item in value.items()):
            return settled_dict
        return value
    return value


_GENERATORS = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)


def _not_data(value: Any, depth: int) -> str | None:
    """What ``value``, or something in the lists and dicts it holds, is when it is not
    data (text, a number, a list, a dict, a file...); None when all of it is data."""
    if isinstance(value, (str, int, float, type(None))):
        return None
    if isinstance(value, type):
        return "a class"
    if isinstance(value, types.ModuleType):
        return "a module"
    if isinstance(value, _GENERATORS):
        return "a generator"
    if isinstance(value, (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType)):
        return "a method"
    if callable(value):
        return "a function"
    if depth > MAX_NESTING + 2:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        items: Any = value
    elif isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    else:
        return None
    for item in items:
        kind = _not_data(item, depth + 1)
        if kind:
            return kind
    return None


_UNKNOWN_NAME = re.compile(r"'(.+)' is undefined")


def _describe_undefined(
    exc: UndefinedError, compiled: Compiled, context: Mapping, run: Budget
) -> str:
    message = exc.message or "undefined value"
    match = _UNKNOWN_NAME.fullmatch(message)
    if match:
        return f"unknown name {match.group(1)!r}"
    for undefined in run.missing:
        if undefined._undefined_message == message:
            described = _describe_missing(
                undefined._undefined_obj, undefined._undefined_name, compiled, context
            )
            if described:
                return described
    return message


def _describe_missing(obj: Any, name: Any, compiled: Compiled, context: Mapping) -> str | None:
    """``'form1.data' has no attribute 'x'``: the path in the expression that led to obj."""
    if compiled.tree is None:
        return None
    tree = compiled.tree
    for node in [tree, *tree.find_all((nodes.Getattr, nodes.Getitem))]:
        if isinstance(node, nodes.Getattr):
            key, kind = node.attr, "attribute"
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key, kind = node.arg.value, "item"
        else:
            continue
        if key != name:
            continue
        path = _path_text(node.node)
        if path is None:
            continue
        try:
            target = _resolve(node.node, context)
        except Exception:
            continue
        if target is obj:
            return f"'{path}' has no {kind} {name!r}"
    return None


def _path_text(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        inner = _path_text(node.node)
        return None if inner is None else f"{inner}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _path_text(node.node)
        return None if inner is None else f"{inner}[{node.arg.value!r}]"
    return None


def _resolve(node: nodes.Node, context: Mapping) -> Any:
    if isinstance(node, nodes.Name):
        return context[node.name]
    if isinstance(node, nodes.Getattr):
        return ENV.getattr(_resolve(node.node, context), node.attr)
    assert isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)
    return ENV.getitem(_resolve(node.node, context), node.arg.value)
