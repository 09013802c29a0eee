"""The sandbox: Jinja's ImmutableSandboxedEnvironment with every growing operation,
filter and method bounded (bindings.limits), a per-evaluation budget of work and time,
and the filters and globals that reach too far removed."""

from __future__ import annotations

import functools
import inspect
import re
import time
import types
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, StrictUndefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import (
    SecurityError,
)
from jinja2.filters import make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bindings.errors import Refused
from bindings.limits import MAX_EXPONENT, MAX_INT_BITS, MAX_OUTPUT, MAX_RANGE, MAX_WORK, TIME_LIMIT

# Filters and globals that are gone from the sandbox: ``attr`` reaches any attribute by a
# computed name; ``lipsum`` makes text of any size; the others hold state, which an
# expression has no use for.
REMOVED_FILTERS = frozenset({"attr"})
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner", "namespace")
# Names Jinja's compiler gives a meaning of their own (``self`` is the template).
JINJA_RESERVED = frozenset({"self", "loop", "caller", "varargs", "kwargs"})
# str.format reaches attributes through its format string (CVE-2016-10745, CVE-2019-10906,
# CVE-2024-56326); translate can grow a string without bound.
_REFUSED_STR_METHODS = frozenset({"format", "format_map", "translate", "maketrans"})


# --------------------------------------------------------------------------- accounting


@dataclass
class Budget:
    """The budget of one evaluate() call."""

    deadline: float
    work: int = 0
    missing: list[Undefined] = field(default_factory=list)


RUN: ContextVar[Budget | None] = ContextVar("kiln_binding_run", default=None)
_CONTAINERS = (list, tuple, dict, set, frozenset)


def _tick() -> None:
    run = RUN.get()
    if run is not None and time.monotonic() > run.deadline:
        raise Refused(f"took too long (limit {TIME_LIMIT:g} s)")


def charge(value: Any) -> None:
    """Counts what a step built against the field's work budget, and checks the time.

    A container counts as its size as text, every reference included: a list holding the
    same long string 10,000 times is cheap to build but not to sort, compare or print.
    """
    run = RUN.get()
    if run is None:
        return
    if isinstance(value, (str, bytes)):
        _spend(len(value))
    elif isinstance(value, _CONTAINERS):
        _spend(_text_size(value, MAX_WORK - run.work + 1))
    else:
        _tick()


def _spend(amount: int) -> None:
    run = RUN.get()
    if run is None:
        return
    run.work += amount
    if run.work > MAX_WORK:
        raise Refused(
            f"too much work: the expression built more than {MAX_WORK:,} characters or items"
        )
    if time.monotonic() > run.deadline:
        raise Refused(f"took too long (limit {TIME_LIMIT:g} s)")


def _check_size(size: int, what: str = "result") -> None:
    if size > MAX_OUTPUT:
        raise Refused(f"{what} too large: {size:,} characters or items (limit {MAX_OUTPUT:,})")


def _check_int(value: Any, what: str, limit: int = MAX_OUTPUT) -> None:
    if isinstance(value, int) and value > limit:
        raise Refused(f"{what} too large: {value:,} (limit {limit:,})")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?.?", re.S)


def _check_percent_format(fmt: str) -> None:
    """Refuses printf-style widths and precisions that would build a huge string."""
    size = len(fmt)
    for match in _PERCENT_SPEC.finditer(fmt):
        for number in match.groups():
            if number == "*":
                raise Refused("a '*' width or precision in % formatting is not allowed")
            if number:
                if len(number) > 6:
                    raise Refused(f"% format width too large: {number[:10]}…")
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
        raise Refused(f"range too large: more than {MAX_RANGE:,} items")
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


def check_text_size(value: Any, limit: int = MAX_OUTPUT) -> None:
    """Refuses turning a container into a string that would be over ``limit`` characters."""
    if isinstance(value, _CONTAINERS) and _text_size(value, limit) > limit:
        kind = type(value).__name__
        raise Refused(f"result too large: this {kind} as text is over {limit:,} characters")


def _joined_size(separator: Any, items: list) -> int:
    size = len(str(separator)) * max(len(items) - 1, 0)
    for item in items:
        if isinstance(item, (str, bytes)):
            size += len(item)
        else:
            check_text_size(item)
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
        getter = make_attrgetter(ENV, a["attribute"])
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
    check_text_size([a.get("args", ()), a.get("kwargs", {})])


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
        check_text_size(a[key])


def _pre_items(a: dict) -> None:
    """Filters that compare, sort or lowercase every item: the items count as work."""
    key = _value_key(a)
    if key is None:
        return
    value = a[key]
    if isinstance(value, Iterator):
        value = a[key] = list(value)
    charge(value)


# Filters that call str() (or json/pprint) on their value.
_TEXT_FILTERS = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "indent",
        "lower",
        "pprint",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "tojson",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
        "xmlattr",
    }
)


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
        raise Refused("|sum only adds numbers (start must be a number)")


def _pre_urlize(a: dict) -> None:
    for name in ("target", "rel"):
        value = a.get(name)
        if value is not None and len(str(value)) > 200:
            raise Refused(f"urlize {name} too long (limit 200 characters)")


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
        charge(result)
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
        for name in REMOVED_FILTERS:
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
        charge(result)
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
            check_text_size(right)
        result = self.binop_table[operator](left, right)
        if isinstance(result, str | list | tuple):
            _check_size(len(result))
        charge(result)
        return result

    def concat_values(self, values: tuple[Any, ...]) -> str:
        """``a ~ b``: every operand as a string, joined, within the size limit."""
        parts = []
        size = 0
        for value in values:
            check_text_size(value)
            text = str(value)  # an undefined raises here, as it should
            size += len(text)
            _check_size(size)
            parts.append(text)
        result = "".join(parts)
        charge(result)
        return result


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)) or abs(base) <= 1:
        return
    if exponent > MAX_EXPONENT:
        raise Refused(f"exponent too large: {exponent:,} (limit {MAX_EXPONENT})")
    if exponent > 0 and base.bit_length() * exponent > MAX_INT_BITS:
        raise Refused(f"number too large: about {base.bit_length() * exponent:,} bits")


def _check_multiply(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise Refused(
                f"number too large: about {left.bit_length() + right.bit_length():,} bits"
            )
        return
    seq, times = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(times, int) and isinstance(seq, (str, bytes, list, tuple)):
        _check_size(len(seq) * times)


def _note_missing(value: Undefined) -> None:
    run = RUN.get()
    if run is not None and len(run.missing) < 100:
        run.missing.append(value)


ENV = _KilnEnvironment()
GLOBAL_NAMES = frozenset(ENV.globals)
