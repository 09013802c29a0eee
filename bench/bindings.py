"""What the binding engine's safety costs per evaluation.

Run: .venv/bin/python bench/bindings.py [iterations]

Compares, in one run and with warm caches:
  kiln   evaluate("f", "<< form1.data.email|lower >> and << user.name >>", ctx): two sandboxed
         expressions with size/time accounting, the field split, and the final string;
  plain  Environment().compile_expression("form1.data.email|lower") called directly: one
         unsandboxed expression, no limits, compiled once.
The ratio kiln/plain is the overhead of the whole field against one bare expression, so it
overstates the per-expression cost about twofold. Needs no Django settings.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from jinja2 import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bindings import evaluate  # noqa: E402

TEMPLATE = "<< form1.data.email|lower >> and << user.name >>"
EXPRESSION = "form1.data.email|lower"
CONTEXT = {
    "form1": {"data": {"email": "Ann@Example.com", "name": "Ann"}},
    "user": {"email": "builder@example.com", "name": "Bea"},
    "url": {},
    "app": {"name": "CRM"},
    "page": {"name": "Home"},
}


def per_call_us(func, iterations: int) -> float:
    for _ in range(min(iterations, 1000)):  # warm caches and the interpreter
        func()
    start = time.perf_counter()
    for _ in range(iterations):
        func()
    return (time.perf_counter() - start) / iterations * 1e6


def main(iterations: int = 20_000) -> None:
    plain_expression = Environment().compile_expression(EXPRESSION)
    assert evaluate("f", TEMPLATE, CONTEXT) == "ann@example.com and Bea"
    assert plain_expression(CONTEXT) == "ann@example.com"

    kiln = per_call_us(lambda: evaluate("f", TEMPLATE, CONTEXT), iterations)
    plain = per_call_us(lambda: plain_expression(CONTEXT), iterations)

    title, _run, comparison = __doc__.strip().split("\n\n", 2)
    print(f"{title}\n\n{comparison}\n")
    print(f"kiln   {kiln:8.2f} µs per call")
    print(f"plain  {plain:8.2f} µs per call")
    print(f"ratio kiln/plain: {kiln / plain:.1f}x  ({iterations:,} iterations each)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
