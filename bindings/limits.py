"""Every limit of the binding engine, by name: what one evaluation may produce, spend
and take. The sandbox (bindings.sandbox) enforces them.

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
  characters as text, is an error; except that a field that takes files (its caller
  passes ``max_passed``: a plugin's ``files`` fields pass ``MAX_PASSED``) and is only a
  path into the context (``<< files1.files >>``, ``<< form1.data['file'] >>``) passes the
  value on as it was given, built by nothing in the expression, up to that size;
- total work: every filter, call and intercepted operator adds the size of what it built
  (a container as its size as text, every reference counted) to a budget of ``MAX_WORK``;
  the sorting and comparing filters count their input too;
- time: the same hooks check a deadline of ``TIME_LIMIT`` seconds, and the elapsed time is
  checked once more at the end. Nothing interrupts a single step between two hooks; such a
  step is short because its input and output are bounded by the checks above;
- the expression itself: at most ``MAX_EXPRESSION`` characters and ``MAX_NESTING`` levels
  of nesting (Jinja's compiler is slow on deep trees and recurses on them).
"""

from __future__ import annotations

#: Longest string a field (or one step of an expression) may produce; also items in a list.
MAX_OUTPUT = 100_000
#: Most items ``range()`` may produce.
MAX_RANGE = 10_000
#: Characters all the steps of one field's evaluation may build in total (containers count
#: as their size as text).
MAX_WORK = 2_000_000
#: Largest list or dict a single-binding field may yield, as its size as text.
MAX_VALUE = 1_000_000
#: Largest value, as its size as text, a files field that is only a path into the
#: context passes on unchanged (no other field: a subject or body stays under the caps):
#: a file picker's files as data URLs, up to 25 MB of files as
#: base64 (33.4 million characters) with their names. The expression reads; it builds
#: nothing, so the caps on what an expression builds do not apply.
MAX_PASSED = 40_000_000
#: Largest exponent ``**`` accepts, and the largest integer (in bits) it and ``*`` may build.
MAX_EXPONENT = 100
MAX_INT_BITS = 10_000
#: Longest expression between ``<< >>``, and its deepest nesting.
MAX_EXPRESSION = 10_000
MAX_NESTING = 32
#: Seconds one field may take.
TIME_LIMIT = 1.0
