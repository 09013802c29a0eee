"""Fields as text: where each ``<< expr >>`` starts and ends, and each expression parsed,
checked and compiled once (cached)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import (
    TemplateSyntaxError,
)
from jinja2.parser import Parser

from bindings.limits import MAX_EXPRESSION, MAX_NESTING
from bindings.sandbox import ENV, GLOBAL_NAMES, JINJA_RESERVED, REMOVED_FILTERS

# ----------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Binding:
    expression: str  # stripped


_Part = str | Binding


class TemplateProblem(Exception):
    pass


class Unclosed(TemplateProblem):
    """A ``<<`` with no ``>>`` after it: often a binding still being typed."""


def _find_close(text: str, start: int) -> int:
    """Index of the ``>>`` closing a binding that starts at ``start``; -1 if none.

    A ``>>`` inside a quoted string literal does not close the binding. If the quotes do
    not balance, the first ``>>`` closes it (and Jinja reports the syntax error).
    """
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                return text.find(">>", start)
            i = j + 1
        elif text.startswith(">>", i):
            return i
        else:
            i += 1
    return -1


def split_template(template: str) -> tuple[_Part, ...]:
    # Long fields (an HTML body) are split afresh each time rather than held in the cache.
    return _split_cached(template) if len(template) <= 4096 else _split_text(template)


@functools.lru_cache(maxsize=4096)
def _split_cached(template: str) -> tuple[_Part, ...]:
    return _split_text(template)


def _split_text(template: str) -> tuple[_Part, ...]:
    """The literal text and bindings of a field, in order; ``\\<<`` becomes ``<<``."""
    parts: list[_Part] = []
    literal: list[str] = []
    i = 0
    while True:
        j = template.find("<<", i)
        if j < 0:
            literal.append(template[i:])
            break
        if j > 0 and template[j - 1] == "\\":
            literal.append(template[i : j - 1] + "<<")
            i = j + 2
            continue
        literal.append(template[i:j])
        end = _find_close(template, j + 2)
        if end < 0:
            raise Unclosed(f"unclosed << in field (at character {j + 1}, no >> after it)")
        if literal and "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(Binding(template[j + 2 : end].strip()))
        i = end + 2
    if "".join(literal):
        parts.append("".join(literal))
    return tuple(parts)


@dataclass(frozen=True)
class Compiled:
    function: Any = None
    tree: nodes.Expr | None = None
    names: frozenset[str] = frozenset()
    error: str | None = None


def _parse(expression: str) -> nodes.Expr:
    parser = Parser(ENV, expression, state="variable")
    tree = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
    return tree


def _static_problem(tree: nodes.Node) -> str | None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"expression nested too deeply (limit {MAX_NESTING} levels)"
        if isinstance(node, nodes.Filter):
            if node.name in REMOVED_FILTERS:
                return f"filter {node.name!r} is not allowed"
            if node.name not in ENV.filters:
                return f"unknown filter {node.name!r}"
        if isinstance(node, nodes.Pow) and isinstance(node.left, nodes.Pow):
            return (
                "chained ** is not allowed: Jinja computes a**b**c as (a**b)**c; "
                "write a single ** such as a**(b*c)"
            )
        if isinstance(node, nodes.Name) and node.name in JINJA_RESERVED:
            return f"name {node.name!r} is reserved"
        if isinstance(node, nodes.Test) and node.name not in ENV.tests:
            return f"unknown test {node.name!r}"
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return None


@functools.lru_cache(maxsize=4096)
def compile_binding(expression: str) -> Compiled:
    """The compiled expression, or why it cannot be compiled (errors are cached too)."""
    if not expression:
        return Compiled(error="syntax error: empty binding")
    if len(expression) > MAX_EXPRESSION:
        return Compiled(error=f"expression too long (limit {MAX_EXPRESSION:,} characters)")
    try:
        tree = _parse(expression)
    except TemplateSyntaxError as exc:
        return Compiled(error=f"syntax error: {exc.message}")
    except RecursionError:
        return Compiled(error=f"expression nested too deeply (limit {MAX_NESTING} levels)")
    problem = _static_problem(tree)
    if problem:
        return Compiled(error=problem)
    try:
        function = ENV.compile_expression(expression, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        return Compiled(error=f"syntax error: {exc.message}")
    except (RecursionError, MemoryError):
        return Compiled(error=f"expression nested too deeply (limit {MAX_NESTING} levels)")
    # find_all leaves out the root: << form1 >> alone is a Name too.
    found = [tree] if isinstance(tree, nodes.Name) else list(tree.find_all(nodes.Name))
    names = frozenset(
        node.name for node in found if node.ctx == "load" and node.name not in GLOBAL_NAMES
    )
    return Compiled(function=function, tree=tree, names=names)
