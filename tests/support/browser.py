"""Browser test helpers."""

from __future__ import annotations

# htmx attaches its handlers to swapped-in content in the settle step, a few ms after
# the content appears: a test faster than a person must wait for it before using it.
_IDLE = """() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"""


def htmx_idle(page) -> None:
    page.wait_for_function(_IDLE)
    page.wait_for_timeout(50)
