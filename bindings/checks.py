"""What the editor asks of a field without evaluating it: the names its bindings read,
and warnings for syntax errors and unknown names."""

from __future__ import annotations

from collections.abc import Collection, Iterator

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


def referenced_names(template: object) -> set[str]:
    """Top-level names the bindings of ``template`` read (``range``/``dict`` excluded).

    ``"<< form1.data.email >> and << user.name|upper >>"`` -> ``{"form1", "user"}``.
    Raises BindingError (with an empty field) on a syntax error or an unclosed ``<<``.
    """
    names: set[str] = set()
    for text in _strings(template):
        try:
            parts = split_template(text)
        except TemplateProblem as exc:
            raise BindingError("", "", str(exc)) from None
        for part in parts:
            if isinstance(part, Binding):
                compiled = compile_binding(part.expression)
                if compiled.error:
                    raise BindingError("", part.expression, compiled.error)
                names |= compiled.names
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


def check_names(
    field: str, template: object, known: Collection[str], *, skip_unclosed: bool = False
) -> list[str]:
    """Warnings for the editor: syntax errors and names not in ``known``. Never raises.

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
    except Exception as exc:  # an editor hint must never break the editor
        warnings.append(f"{field}: could not check bindings: {type(exc).__name__}: {exc}")
    return warnings
