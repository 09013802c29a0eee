"""Browser test helpers."""

from __future__ import annotations

from playwright.sync_api import expect

# htmx attaches its handlers to swapped-in content in the settle step, a few ms after
# the content appears: a test faster than a person must wait for it before using it.
_IDLE = """() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"""

# The centre of a cell of the canvas grid, from the grid's computed tracks; null until
# the grid has them (before the stylesheet applies, a loaded machine's first frames have
# no tracks, and the centre would be NaN).
_GRID_CELL = """([col, row]) => {
  const g = document.getElementById("cv-grid");
  const s = getComputedStyle(g), r = g.getBoundingClientRect();
  const cols = s.gridTemplateColumns.split(" ").map(parseFloat);
  const rows = s.gridTemplateRows.split(" ").map(parseFloat);
  const gap = parseFloat(s.columnGap), rowGap = parseFloat(s.rowGap);
  let x = r.left, y = r.top;
  for (let i = 0; i < col; i++) x += cols[i] + gap;
  for (let i = 0; i < row; i++) y += rows[i] + rowGap;
  const point = [x + cols[col] / 2, y + rows[row] / 2];
  return point.every(Number.isFinite) ? point : null;
}"""


def htmx_idle(page) -> None:
    page.wait_for_function(_IDLE)
    page.wait_for_timeout(50)


def grid_cell(page, col: int, row: int) -> tuple[float, float]:
    x, y = page.wait_for_function(_GRID_CELL, arg=[col, row]).json_value()
    return x, y


def inside_bottom(page, container: str) -> tuple[float, float]:
    """A point near the bottom of a container widget on the canvas, where a dropped
    field goes in after the container's other fields."""
    box = page.locator(f"#cv-w-{container}").bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] - 60


def drag(page, source, target: tuple[float, float]) -> None:
    """Drags with the mouse, in steps, as a person does (the canvas reads pointer moves)."""
    box = source.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(*target, steps=12)
    page.mouse.up()


def saved(page) -> None:
    expect(page.locator("#cv-status")).to_have_text("All changes saved")
    htmx_idle(page)
