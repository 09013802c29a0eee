"""What the editor asks of a field without evaluating it: the names its bindings read,
and warnings for syntax errors and unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from jinja2 import nodes

from bindings.errors import BindingError
from bindings.templates import (
    Binding,
    TemplateProblem,
    Unclosed,
    compile_binding,
    split_template,
)

# ---------------------------------------------------------------------- the editor


def _strings(template: object) -> Iterator[str]:
    if isinstance(template, str):
        yield template
    elif isinstance(template, list):
        for item in template:
            yield from _strings(item)
    elif isinstance(template, dict):
        for item in template.values():
            yield from _strings(item)


def referenced_names(template: object, *, skip_errors: bool = False) -> set[str]:
    """Top-level names the bindings of ``template`` read (``range``/``dict`` excluded).

    ``"<< form1.data.email >> and << user.name|upper >>"`` -> ``{"form1", "user"}``.
    Raises BindingError (with an empty field) on a syntax error or an unclosed ``<<``;
    with ``skip_errors``, a text that has one adds no names instead (evaluating it
    reports the error, naming its field: what a caller loading the names' data wants).
    """
    names: set[str] = set()
    for text in _strings(template):
        if "<<" not in text:
            continue  # no binding: the common case, and the cheap one
        try:
            parts = split_template(text)
        except TemplateProblem as exc:
            if skip_errors:
                continue
            raise BindingError("", "", str(exc)) from None
        found: set[str] = set()
        for part in parts:
            if isinstance(part, Binding):
                compiled = compile_binding(part.expression)
                if compiled.error:
                    if skip_errors:
                        found = set()
                        break
                    raise BindingError("", part.expression, compiled.error)
                found |= compiled.names
        names |= found
    return names


def is_incomplete(template: object) -> bool:
    """Whether a text of ``template`` has a ``<<`` not closed yet (being typed)."""
    for text in _strings(template):
        try:
            split_template(text)
        except Unclosed:
            return True
        except TemplateProblem:
            continue
    return False


@dataclass(frozen=True)
class Attributes:
    """What ``<< name.key >>`` can read of one name: ``kind`` says what the name is, with
    its article ("an Input", "a query"); ``keys`` its attributes."""

    kind: str
    keys: tuple[str, ...]


def _attribute_reads(tree: nodes.Node) -> Iterator[tuple[str, str]]:
    """``(name, key)`` for every ``name.key`` and ``name["key"]`` the expression reads (not
    a method called on it, such as ``name.get(...)``)."""
    every = [tree, *tree.find_all(nodes.Node)]  # find_all leaves out the root
    called = {id(node.node) for node in every if isinstance(node, nodes.Call)}
    for node in every:
        if not isinstance(node, nodes.Getattr | nodes.Getitem):
            continue
        if id(node) in called or not isinstance(node.node, nodes.Name):
            continue
        if isinstance(node, nodes.Getattr):
            yield node.node.name, node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield node.node.name, node.arg.value


def _unknown_attribute(name: str, key: str, attributes: Attributes) -> str:
    what = f"`{key}` is not a property of {name} ({attributes.kind})"
    if not attributes.keys:
        return f"{what}: it has none to read"
    close = difflib.get_close_matches(key, attributes.keys, n=1, cutoff=0.6)
    if close:
        return f"{what}: did you mean `{close[0]}`?"
    return f"{what}: it has {', '.join(f'`{k}`' for k in attributes.keys)}"


def check_names(
    field: str,
    template: object,
    known: Collection[str],
    *,
    skip_unclosed: bool = False,
    attributes: Mapping[str, Attributes] | None = None,
) -> list[str]:
    """Warnings for the editor: syntax errors, names not in ``known`` and, for the names
    in ``attributes``, keys they do not have (with the closest one). Never raises.

    With ``skip_unclosed``, a text with an unclosed ``<<`` gets no warning (the editor
    says it is incomplete instead: see :func:`is_incomplete`)."""
    warnings: list[str] = []
    known = set(known)
    try:
        for text in _strings(template):
            try:
                parts = split_template(text)
            except Unclosed as exc:
                if not skip_unclosed:
                    warnings.append(str(BindingError(field, "", str(exc))))
                continue
            except TemplateProblem as exc:
                warnings.append(str(BindingError(field, "", str(exc))))
                continue
            for part in parts:
                if not isinstance(part, Binding):
                    continue
                compiled = compile_binding(part.expression)
                if compiled.error:
                    warnings.append(str(BindingError(field, part.expression, compiled.error)))
                    continue
                for name in sorted(compiled.names - known):
                    warnings.append(
                        str(BindingError(field, part.expression, f"unknown name {name!r}"))
                    )
                if attributes and compiled.tree is not None:
                    seen: set[tuple[str, str]] = set()
                    for name, key in _attribute_reads(compiled.tree):
                        found = attributes.get(name)
                        if found is None or key in found.keys or (name, key) in seen:
                            continue
                        seen.add((name, key))
                        problem = _unknown_attribute(name, key, found)
                        warnings.append(str(BindingError(field, part.expression, problem)))
    except Exception as exc:  # an editor hint must never break the editor
        warnings.append(f"{field}: could not check bindings: {type(exc).__name__}: {exc}")
    return warnings
