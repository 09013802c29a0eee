"""The ``<< expr >>`` binding engine.

A field is text in which each ``<< expr >>`` holds ONE Jinja expression, evaluated in an
``ImmutableSandboxedEnvironment`` against the binding context (widgets, queries, ``user``,
``url``, ``app``, ``page``). A field that is exactly one binding yields the native value; a
field mixing text and bindings yields a string. ``{{ }}``, ``{% %}`` and ``{# #}`` are plain
text: the literal text of a field never goes through Jinja, and values are never rendered
a second time.

What is bounded, per call of :func:`evaluate` (one field, including its list/dict items):

- size, checked *before* the work is done: ``*``, ``+``, ``%``, ``~``, the growing filters
  (``center``, ``indent``, ``join``, ``replace``, ``format``, ``batch``, ``slice``,
  ``tojson``, ``wordwrap``, ``urlize``) and ``str`` methods (``center``, ``ljust``,
  ``rjust``, ``zfill``, ``expandtabs``, ``join``, ``replace``) refuse a result over
  ``MAX_OUTPUT`` characters/items; turning a list or dict into text (``~``, ``|string``,
  ``|tojson``, ``%``, the final string) is refused when its text would be over
  ``MAX_OUTPUT``; ``**`` refuses exponents over ``MAX_EXPONENT`` and results over
  ``MAX_INT_BITS`` bits, ``*`` the latter too; ``range`` is capped at ``MAX_RANGE`` items;
  ``str.format``/``format_map``/``translate`` are refused outright;
- the result: a string over ``MAX_OUTPUT`` characters, or a list/dict over ``MAX_VALUE``
  characters as text, is an error;
- total work: every filter, call and intercepted operator adds the size of what it built
  (a container as its size as text, every reference counted) to a budget of ``MAX_WORK``;
  the sorting and comparing filters count their input too;
- time: the same hooks check a deadline of ``TIME_LIMIT`` seconds, and the elapsed time is
  checked once more at the end. Nothing interrupts a single step between two hooks; such a
  step is short because its input and output are bounded by the checks above;
- the expression itself: at most ``MAX_EXPRESSION`` characters and ``MAX_NESTING`` levels
  of nesting (Jinja's compiler is slow on deep trees and recurses on them).

This module must not import Django: the bench and the unit tests run without settings.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
import types
from collections.abc import Callable, Collection, Iterator, Mapping, MappingView
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, StrictUndefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import (
    SecurityError,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.filters import make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

__all__ = [
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_VALUE",
    "MAX_WORK",
    "TIME_LIMIT",
    "BindingError",
    "check_names",
    "evaluate",
    "evaluate_fields",
    "has_bindings",
    "referenced_names",
]

#: Longest string a field (or one step of an expression) may produce; also items in a list.
MAX_OUTPUT = 100_000
#: Most items ``range()`` may produce.
MAX_RANGE = 10_000
#: Characters all the steps of one field's evaluation may build in total (containers count
#: as their size as text).
MAX_WORK = 2_000_000
#: Largest list or dict a single-binding field may yield, as its size as text.
MAX_VALUE = 1_000_000
#: Largest exponent ``**`` accepts, and the largest integer (in bits) it and ``*`` may build.
MAX_EXPONENT = 100
MAX_INT_BITS = 10_000
#: Longest expression between ``<< >>``, and its deepest nesting.
MAX_EXPRESSION = 10_000
MAX_NESTING = 32
#: Seconds one field may take.
TIME_LIMIT = 1.0

# Filters and globals that are gone from the sandbox: ``attr`` reaches any attribute by a
# computed name; ``lipsum`` makes text of any size; the others hold state, which an
# expression has no use for.
_REMOVED_FILTERS = frozenset({"attr"})
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner", "namespace")
# Names Jinja's compiler gives a meaning of their own (``self`` is the template).
_RESERVED_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs"})
# str.format reaches attributes through its format string (CVE-2016-10745, CVE-2019-10906,
# CVE-2024-56326); translate can grow a string without bound.
_REFUSED_STR_METHODS = frozenset({"format", "format_map", "translate", "maketrans"})


class BindingError(ValueError):
    """A binding that cannot be evaluated; ``str()`` names the field and the expression."""

    def __init__(self, field: str, expression: str, message: str) -> None:
        self.field = field
        self.expression = expression
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        if self.expression:
            text += f" in << {self.expression} >>"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles exceptions; the default would call __init__ with one argument.
        return (type(self), (self.field, self.expression, self.message))


class _Refused(Exception):
    """Raised by the sandbox's hooks; turned into a BindingError naming the field."""


# --------------------------------------------------------------------------- accounting


@dataclass
class _Run:
    """The budget of one evaluate() call."""

    deadline: float
    work: int = 0
    missing: list[Undefined] = field(default_factory=list)


_RUN: ContextVar[_Run | None] = ContextVar("kiln_binding_run", default=None)
_CONTAINERS = (list, tuple, dict, set, frozenset)


def _tick() -> None:
    run = _RUN.get()
    if run is not None and time.monotonic() > run.deadline:
        raise _Refused(f"took too long (limit {TIME_LIMIT:g} s)")


def _charge(value: Any) -> None:
    """Counts what a step built against the field's work budget, and checks the time.

    A container counts as its size as text, every reference included: a list holding the
    same long string 10,000 times is cheap to build but not to sort, compare or print.
    """
    run = _RUN.get()
    if run is None:
        return
    if isinstance(value, (str, bytes)):
        _spend(len(value))
    elif isinstance(value, _CONTAINERS):
        _spend(_text_size(value, MAX_WORK - run.work + 1))
    else:
        _tick()


def _spend(amount: int) -> None:
    run = _RUN.get()
    if run is None:
        return
    run.work += amount
    if run.work > MAX_WORK:
        raise _Refused(
            f"too much work: the expression built more than {MAX_WORK:,} characters or items"
        )
    if time.monotonic() > run.deadline:
        raise _Refused(f"took too long (limit {TIME_LIMIT:g} s)")


def _check_size(size: int, what: str = "result") -> None:
    if size > MAX_OUTPUT:
        raise _Refused(f"{what} too large: {size:,} characters or items (limit {MAX_OUTPUT:,})")


def _check_int(value: Any, what: str, limit: int = MAX_OUTPUT) -> None:
    if isinstance(value, int) and value > limit:
        raise _Refused(f"{what} too large: {value:,} (limit {limit:,})")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?.?", re.S)


def _check_percent_format(fmt: str) -> None:
    """Refuses printf-style widths and precisions that would build a huge string."""
    size = len(fmt)
    for match in _PERCENT_SPEC.finditer(fmt):
        for number in match.groups():
            if number == "*":
                raise _Refused("a '*' width or precision in % formatting is not allowed")
            if number:
                if len(number) > 6:
                    raise _Refused(f"% format width too large: {number[:10]}…")
                size += int(number)
    _check_size(size, "formatted string")


# ---------------------------------------------------------------------- the environment


def _capped_range(*args: int) -> range:
    _tick()
    rng = range(*args)
    try:
        size = len(rng)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        raise _Refused(f"range too large: more than {MAX_RANGE:,} items")
    _spend(size)
    return rng


def _text_size(value: Any, limit: int) -> int:
    """About how long ``str(value)`` is; stops counting once past ``limit``.

    A list may hold the same long string many times (``[text] * 1000``, ``dict.fromkeys``,
    ``map(default=text)``): cheap to build, huge once turned into text. Every reference is
    counted, so this is checked wherever a container becomes text.
    """
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 4
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 4
        elif isinstance(item, dict):
            total += 2
            for pair in item.items():
                stack.extend(pair)
        elif isinstance(item, _CONTAINERS):
            total += 2
            stack.extend(item)
        else:
            total += 30
    return total


def _check_text_size(value: Any, limit: int = MAX_OUTPUT) -> None:
    """Refuses turning a container into a string that would be over ``limit`` characters."""
    if isinstance(value, _CONTAINERS) and _text_size(value, limit) > limit:
        kind = type(value).__name__
        raise _Refused(f"result too large: this {kind} as text is over {limit:,} characters")


def _joined_size(separator: Any, items: list) -> int:
    size = len(str(separator)) * max(len(items) - 1, 0)
    for item in items:
        if isinstance(item, (str, bytes)):
            size += len(item)
        else:
            _check_text_size(item)
            size += _text_size(item, MAX_OUTPUT)
        if size > MAX_OUTPUT:
            break
    return size


def _precheck_str_method(method: Any, args: tuple, kwargs: dict) -> tuple:
    """Size checks before a growing str/bytes method runs; may return new ``args``."""
    name = method.__name__
    text = method.__self__
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_int(args[0], f"{name}() width")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            _check_size(len(text) + text.count("\t" if isinstance(text, str) else b"\t") * tabsize)
    elif name == "join" and args:
        items = list(args[0])
        _check_size(_joined_size(text, items))
        return (items, *args[1:])
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1], args[2] if len(args) > 2 else -1)
    return args


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    kind = type(text) if isinstance(text, (str, bytes)) else None
    if kind is None or not (isinstance(old, kind) and isinstance(new, kind)):
        return  # the method raises TypeError itself
    occurrences = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    _check_size(len(text) + occurrences * (len(new) - len(old)))


# Checks run before a filter, on its bound arguments by name (see jinja2/filters.py).
def _pre_center(a: dict) -> None:
    _check_int(a.get("width"), "center width")


def _pre_indent(a: dict) -> None:
    text, width = str(a.get("s", "")), a.get("width", 4)
    per_line = len(width) if isinstance(width, str) else width
    if isinstance(per_line, int):
        _check_size(len(text) + (text.count("\n") + 1) * per_line)


def _pre_join(a: dict) -> None:
    items = list(a["value"])
    if a.get("attribute") is not None:
        getter = make_attrgetter(_ENV, a["attribute"])
        items = [getter(item) for item in items]
        a["attribute"] = None
    a["value"] = items
    _check_size(_joined_size(a.get("d", ""), items))


def _pre_replace(a: dict) -> None:
    count = a.get("count")
    _check_replace(
        str(a.get("s", "")), str(a.get("old")), str(a.get("new")), -1 if count is None else count
    )


def _pre_format(a: dict) -> None:
    _check_percent_format(str(a.get("value", "")))
    _check_text_size([a.get("args", ()), a.get("kwargs", {})])


def _value_key(a: dict) -> str | None:
    """The name of the filtered value: the first argument that is not the context Jinja
    passes (pass_eval_context, pass_environment, …)."""
    for key, value in a.items():
        if not isinstance(value, (EvalContext, Context, Environment)):
            return key
    return None


def _pre_text(a: dict) -> None:
    """Filters that turn their value into text: a container must not be huge as text."""
    key = _value_key(a)
    if key is not None:
        _check_text_size(a[key])


def _pre_items(a: dict) -> None:
    """Filters that compare, sort or lowercase every item: the items count as work."""
    key = _value_key(a)
    if key is None:
        return
    value = a[key]
    if isinstance(value, Iterator):
        value = a[key] = list(value)
    _charge(value)


# Filters that call str() (or json/pprint) on their value.
_TEXT_FILTERS = frozenset(
    {
        "capitalize", "center", "e", "escape", "forceescape", "indent", "lower", "pprint",
        "replace", "safe", "string", "striptags", "title", "tojson", "trim", "truncate",
        "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    }
)  # fmt: skip


def _pre_batch(a: dict) -> None:
    if a.get("fill_with") is not None:
        _check_int(a.get("linecount"), "batch size")


def _pre_slice(a: dict) -> None:
    _check_int(a.get("slices"), "slice count", MAX_RANGE)


def _pre_tojson(a: dict) -> None:
    indent = a.get("indent")
    if isinstance(indent, str):
        indent = len(indent)
    _check_int(indent, "tojson indent", 16)


def _pre_wordwrap(a: dict) -> None:
    text = str(a.get("s", ""))
    wrapstring = str(a.get("wrapstring") or "\n")
    width = a.get("width", 79)
    # With a one-character wrapstring the text at most doubles; longer ones multiply it.
    if len(wrapstring) > 1 and isinstance(width, int) and width > 0:
        lines = len(text.split()) + len(text) // width + text.count("\n") + 1
        _check_size(len(text) + lines * len(wrapstring))


def _pre_sum(a: dict) -> None:
    start = a.get("start", 0)
    if not isinstance(start, (int, float)):
        raise _Refused("|sum only adds numbers (start must be a number)")


def _pre_urlize(a: dict) -> None:
    for name in ("target", "rel"):
        value = a.get(name)
        if value is not None and len(str(value)) > 200:
            raise _Refused(f"urlize {name} too long (limit 200 characters)")


_FILTER_PRECHECKS: dict[str, Callable[[dict], None]] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "join": _pre_join,
    "replace": _pre_replace,
    "format": _pre_format,
    "batch": _pre_batch,
    "slice": _pre_slice,
    "tojson": _pre_tojson,
    "wordwrap": _pre_wordwrap,
    "sum": _pre_sum,
    "urlize": _pre_urlize,
    **dict.fromkeys(("sort", "unique", "groupby", "dictsort", "min", "max"), _pre_items),
}


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    own_check = _FILTER_PRECHECKS.get(name)
    precheck: Callable[[dict], None] | None = own_check
    if name in _TEXT_FILTERS:

        def precheck(a: dict) -> None:
            _pre_text(a)
            if own_check is not None:
                own_check(a)

    inner = inspect.unwrap(func)
    signature = inspect.signature(inner)
    # Jinja's async-aware filters take an extra leading eval context their plain version
    # does not declare; it is not one of the arguments the checks look at.
    extra = int(
        getattr(func, "jinja_pass_arg", None) is not None
        and getattr(inner, "jinja_pass_arg", None) is None
    )

    @functools.wraps(func)  # keeps jinja_pass_arg (pass_context, pass_environment, …)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if precheck is not None:
            bound = signature.bind(*args[extra:], **kwargs)
            bound.apply_defaults()
            precheck(bound.arguments)
            args, kwargs = (*args[:extra], *bound.args), bound.kwargs
        result = func(*args, **kwargs)
        _charge(result)
        return result

    return guarded


class _CodeGenerator(CodeGenerator):
    # ``a ~ b ~ c`` would otherwise be a plain join no hook sees; route it through the
    # environment so its size is checked like ``+``.
    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.concat_values((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _KilnEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        # No optimizer: it would run filters and operators on constants at compile time,
        # outside the limits.
        super().__init__(undefined=StrictUndefined, autoescape=False, optimized=False)
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["range"] = _capped_range
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}

    # -- attributes

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, (str, bytes)) and attr in _REFUSED_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        # The sandbox would hand out a "safe" str.format; we refuse it altogether
        # (is_safe_attribute), which closes the whole family of format-string escapes.
        return None

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # The sandbox returns an undefined that only fails when used; `is defined` or
        # `|default` would then hide the attempt. Refuse at once instead.
        kind = type(obj).__name__
        if isinstance(obj, (str, bytes)) and attribute in _REFUSED_STR_METHODS:
            raise SecurityError(f"{kind}.{attribute}() is not allowed (unsafe)")
        if attribute.startswith("_"):
            raise SecurityError(
                f"access to {attribute!r} is not allowed: names starting with '_' are "
                f"private (unsafe attribute of a {kind!r} value)"
            )
        raise SecurityError(
            f"access to {attribute!r} of a {kind!r} value is not allowed (unsafe, or it "
            "would modify the value)"
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        value = super().getattr(obj, attribute)
        if isinstance(value, Undefined):
            _note_missing(value)
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        if isinstance(value, Undefined):
            _note_missing(value)
        return value

    # -- calls and operators

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        # Bound methods of str, bytes and Markup (whose methods are Python wrappers).
        if isinstance(obj, (types.BuiltinMethodType, types.MethodType)) and isinstance(
            getattr(obj, "__self__", None), (str, bytes)
        ):
            args = _precheck_str_method(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        _charge(result)
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_multiply(left, right)
        elif operator == "+":
            if hasattr(left, "__len__") and hasattr(right, "__len__"):
                _check_size(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
            _check_text_size(right)
        result = self.binop_table[operator](left, right)
        if isinstance(result, str | list | tuple):
            _check_size(len(result))
        _charge(result)
        return result

    def concat_values(self, values: tuple[Any, ...]) -> str:
        """``a ~ b``: every operand as a string, joined, within the size limit."""
        parts = []
        size = 0
        for value in values:
            _check_text_size(value)
            text = str(value)  # an undefined raises here, as it should
            size += len(text)
            _check_size(size)
            parts.append(text)
        result = "".join(parts)
        _charge(result)
        return result


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)) or abs(base) <= 1:
        return
    if exponent > MAX_EXPONENT:
        raise _Refused(f"exponent too large: {exponent:,} (limit {MAX_EXPONENT})")
    if exponent > 0 and base.bit_length() * exponent > MAX_INT_BITS:
        raise _Refused(f"number too large: about {base.bit_length() * exponent:,} bits")


def _check_multiply(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _Refused(
                f"number too large: about {left.bit_length() + right.bit_length():,} bits"
            )
        return
    seq, times = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(times, int) and isinstance(seq, (str, bytes, list, tuple)):
        _check_size(len(seq) * times)


def _note_missing(value: Undefined) -> None:
    run = _RUN.get()
    if run is not None and len(run.missing) < 100:
        run.missing.append(value)


_ENV = _KilnEnvironment()
_GLOBAL_NAMES = frozenset(_ENV.globals)


# ----------------------------------------------------------------------- templates


@dataclass(frozen=True)
class _Binding:
    expression: str  # stripped


_Part = str | _Binding


class _TemplateProblem(Exception):
    pass


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


def _split(template: str) -> tuple[_Part, ...]:
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
            raise _TemplateProblem(f"unclosed << in field (at character {j + 1}, no >> after it)")
        if literal and "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(_Binding(template[j + 2 : end].strip()))
        i = end + 2
    if "".join(literal):
        parts.append("".join(literal))
    return tuple(parts)


@dataclass(frozen=True)
class _Compiled:
    function: Any = None
    tree: nodes.Expr | None = None
    names: frozenset[str] = frozenset()
    error: str | None = None


def _parse(expression: str) -> nodes.Expr:
    parser = Parser(_ENV, expression, state="variable")
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
            if node.name in _REMOVED_FILTERS:
                return f"filter {node.name!r} is not allowed"
            if node.name not in _ENV.filters:
                return f"unknown filter {node.name!r}"
        if isinstance(node, nodes.Pow) and isinstance(node.left, nodes.Pow):
            return (
                "chained ** is not allowed: Jinja computes a**b**c as (a**b)**c; "
                "write a single ** such as a**(b*c)"
            )
        if isinstance(node, nodes.Name) and node.name in _RESERVED_NAMES:
            return f"name {node.name!r} is reserved"
        if isinstance(node, nodes.Test) and node.name not in _ENV.tests:
            return f"unknown test {node.name!r}"
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return None


@functools.lru_cache(maxsize=4096)
def _compile(expression: str) -> _Compiled:
    """The compiled expression, or why it cannot be compiled (errors are cached too)."""
    if not expression:
        return _Compiled(error="syntax error: empty binding")
    if len(expression) > MAX_EXPRESSION:
        return _Compiled(error=f"expression too long (limit {MAX_EXPRESSION:,} characters)")
    try:
        tree = _parse(expression)
    except TemplateSyntaxError as exc:
        return _Compiled(error=f"syntax error: {exc.message}")
    except RecursionError:
        return _Compiled(error=f"expression nested too deeply (limit {MAX_NESTING} levels)")
    problem = _static_problem(tree)
    if problem:
        return _Compiled(error=problem)
    try:
        function = _ENV.compile_expression(expression, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        return _Compiled(error=f"syntax error: {exc.message}")
    except (RecursionError, MemoryError):
        return _Compiled(error=f"expression nested too deeply (limit {MAX_NESTING} levels)")
    names = frozenset(
        node.name
        for node in tree.find_all(nodes.Name)
        if node.ctx == "load" and node.name not in _GLOBAL_NAMES
    )
    return _Compiled(function=function, tree=tree, names=names)


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


def evaluate(
    field: str, template: object, context: Mapping[str, Any], *, html: bool = False
) -> Any:
    """The value of one field: native for a single binding, else a string.

    Lists and dicts are evaluated item by item (keys are not), under the field's one time
    and work budget. ``html=True`` escapes interpolated values unless they are ``Markup``
    (``|safe``). Raises :class:`BindingError` for every problem, never anything else.
    """
    run = _Run(deadline=time.monotonic() + TIME_LIMIT)
    token = _RUN.set(run)
    try:
        return _evaluate_value(field, template, context, html, run)
    finally:
        _RUN.reset(token)


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


def _evaluate_value(field: str, template: Any, context: Mapping, html: bool, run: _Run) -> Any:
    if isinstance(template, str):
        return _evaluate_str(field, template, context, html, run)
    if isinstance(template, list):
        return [_evaluate_value(field, item, context, html, run) for item in template]
    if isinstance(template, dict):
        return {
            key: _evaluate_value(field, item, context, html, run) for key, item in template.items()
        }
    return template


def _evaluate_str(field: str, template: str, context: Mapping, html: bool, run: _Run) -> Any:
    try:
        parts = _split(template)
    except _TemplateProblem as exc:
        raise BindingError(field, "", str(exc)) from None
    bindings = [part for part in parts if isinstance(part, _Binding)]
    if not bindings:
        return "".join(parts)  # type: ignore[arg-type]

    if len(bindings) == 1 and all(isinstance(part, _Binding) or not part.strip() for part in parts):
        expression = bindings[0].expression
        value = _run_expression(field, expression, context, run)
        # A list or dict goes on to be stored and sent: bound it too, more loosely than text.
        _refuse_big(field, expression, value, MAX_VALUE)
        if html and isinstance(value, str) and not isinstance(value, Markup):
            value = str(escape(value))
        if isinstance(value, str):
            _check_output(field, expression, len(value))
        _check_time(field, expression, run)
        return value

    pieces: list[str] = []
    size = 0
    for part in parts:
        if isinstance(part, _Binding):
            value = _run_expression(field, part.expression, context, run)
            _refuse_big(field, part.expression, value, MAX_OUTPUT)
            text = _as_text(value, html)
        else:
            text = part
        size += len(text)
        _check_output(field, "", size)
        pieces.append(text)
    _check_time(field, "", run)
    return "".join(pieces)


def _as_text(value: Any, html: bool) -> str:
    if value is None:
        return ""
    if html:
        return str(value) if isinstance(value, Markup) else str(escape(str(value)))
    return str(value)


def _refuse_big(field: str, expression: str, value: Any, limit: int) -> None:
    try:
        _check_text_size(value, limit)
    except _Refused as exc:
        raise BindingError(field, expression, str(exc)) from None


def _check_output(field: str, expression: str, size: int) -> None:
    if size > MAX_OUTPUT:
        raise BindingError(
            field, expression, f"output too long: more than {MAX_OUTPUT:,} characters"
        )


def _check_time(field: str, expression: str, run: _Run) -> None:
    if time.monotonic() > run.deadline:
        raise BindingError(field, expression, f"took too long (limit {TIME_LIMIT:g} s)")


def _run_expression(field: str, expression: str, context: Mapping, run: _Run) -> Any:
    compiled = _compile(expression)
    if compiled.error:
        raise BindingError(field, expression, compiled.error)
    run.missing.clear()
    try:
        value = compiled.function(context)
        return _settle(value, run, 0)
    except _Refused as exc:
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


def _settle(value: Any, run: _Run, depth: int) -> Any:
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
        for item in value:
            items.append(item)
            if len(items) > MAX_OUTPUT:
                raise _Refused(f"result too large: more than {MAX_OUTPUT:,} items")
        _charge(items)
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


_UNKNOWN_NAME = re.compile(r"'(.+)' is undefined")


def _describe_undefined(
    exc: UndefinedError, compiled: _Compiled, context: Mapping, run: _Run
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


def _describe_missing(obj: Any, name: Any, compiled: _Compiled, context: Mapping) -> str | None:
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
        return _ENV.getattr(_resolve(node.node, context), node.attr)
    assert isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)
    return _ENV.getitem(_resolve(node.node, context), node.arg.value)


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
            parts = _split(text)
        except _TemplateProblem as exc:
            raise BindingError("", "", str(exc)) from None
        for part in parts:
            if isinstance(part, _Binding):
                compiled = _compile(part.expression)
                if compiled.error:
                    raise BindingError("", part.expression, compiled.error)
                names |= compiled.names
    return names


def check_names(field: str, template: object, known: Collection[str]) -> list[str]:
    """Warnings for the editor: syntax errors and names not in ``known``. Never raises."""
    warnings: list[str] = []
    known = set(known)
    try:
        for text in _strings(template):
            try:
                parts = _split(text)
            except _TemplateProblem as exc:
                warnings.append(str(BindingError(field, "", str(exc))))
                continue
            for part in parts:
                if not isinstance(part, _Binding):
                    continue
                compiled = _compile(part.expression)
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
