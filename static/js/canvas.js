/* Kiln's page editor: what htmx cannot do on its own.
 *
 * - drag a palette tile onto the grid (or into a container) -> POST add
 * - drag a widget's frame -> POST layout x, y (or parent); drag its corner -> POST layout w, h
 * - click a frame -> GET its property pane
 * - keys: Delete/Backspace, Ctrl/Cmd+C, Ctrl/Cmd+V, Ctrl/Cmd+Z, Ctrl/Cmd+Shift+Z, Ctrl+Y,
 *   arrows (move one cell; with Shift, resize), Escape (deselect)
 * - the save status in the toolbar (name suggestions and the evaluated value of a binding:
 *   editor-bindings.js).
 *
 * Every change is a request whose answer is the canvas re-rendered by the server (htmx swaps
 * #cv-grid), so what is shown is what is stored. No libraries, no build step.
 */
(() => {
  "use strict";

  const layout = document.getElementById("cv-layout");
  if (!layout || !window.htmx) return;
  const COLUMNS = 12;
  const DRAG_THRESHOLD = 4; // pixels before a press becomes a drag
  const statusEl = document.getElementById("cv-status");
  const grid = () => document.getElementById("cv-grid");
  const selected = () => (grid() && grid().dataset.selected) || "";
  const frameOf = (name) => document.getElementById("cv-w-" + name);

  // Placement: the server gives each top-level frame its cell as data-x/y/w/h and the grid
  // its number of rows as data-rows; they are applied here, not in style attributes, so
  // that a strict Content-Security-Policy holds.
  function place(root) {
    const scope = root && root.querySelectorAll ? root : document;
    const frames = [...scope.querySelectorAll(".cv-frame.is-top[data-x]")];
    if (scope.matches && scope.matches(".cv-frame.is-top[data-x]")) frames.push(scope);
    frames.forEach((f) => {
      const d = f.dataset;
      f.style.gridColumn = Number(d.x) + 1 + " / span " + Number(d.w);
      f.style.gridRow = Number(d.y) + 1 + " / span " + Number(d.h);
    });
    const g = grid();
    if (g && g.dataset.rows) {
      g.style.gridTemplateRows = "repeat(" + Number(g.dataset.rows) + ", minmax(44px, auto))";
    }
  }
  place(document);
  htmx.onLoad(place);
  // Also as soon as an answer is swapped in, before the save is reported as done: the
  // page is never seen (nor measured) with a frame not yet placed.
  document.body.addEventListener("htmx:afterSwap", () => place(document));

  // The events form saves itself as it changes (htmx); Enter in it must not submit it.
  document.addEventListener("submit", (e) => {
    if (e.target.matches && e.target.matches(".ev-form")) e.preventDefault();
  });

  // Requests ------------------------------------------------------------------------------
  const urls = layout.dataset;
  const widgetUrl = (name, suffix) =>
    urls.urlWidget.replace("__name__", encodeURIComponent(name)) + (suffix || "");

  // A page-wide edit (undo, redo, paste, delete, a drop) waits for the property saves
  // under way: a click on Undo first blurs the field being typed in, whose "change"
  // saves it, and Undo must come after that save, not race it on the server.
  function post(url, values, target, swap) {
    return afterSaves().then(() => htmx.ajax("POST", url, {
      source: layout,
      target: target || "#cv-grid",
      swap: swap || "outerHTML",
      values: Object.assign({ selected: selected() }, values || {}),
    }));
  }

  function select(name) {
    const g = grid();
    if (!g || name === selected() && name) return;
    g.dataset.selected = name;
    g.querySelectorAll(".cv-frame.is-selected").forEach((f) => f.classList.remove("is-selected"));
    if (name && frameOf(name)) {
      frameOf(name).classList.add("is-selected");
      htmx.ajax("GET", widgetUrl(name), { source: layout, target: "#cv-pane", swap: "outerHTML" });
    } else {
      const empty = document.getElementById("cv-pane-empty");
      const pane = document.getElementById("cv-pane");
      if (empty && pane) pane.replaceWith(empty.content.cloneNode(true));
    }
  }

  const actions = {
    undo: () => post(urls.urlUndo),
    redo: () => post(urls.urlRedo),
    paste: () => post(urls.urlPaste),
    delete: () => selected() && post(widgetUrl(selected(), "delete")),
    copy: () => {
      const name = selected();
      if (!name) return;
      post(widgetUrl(name, "copy"), {}, "#cv-grid", "none").then(() => {
        setStatus("saved", "Copied " + name + " — Ctrl+V pastes it");
      });
    },
  };

  // The save status -----------------------------------------------------------------------
  let pending = 0;
  let edits = 0; // keys typed in the pane since the page loaded
  let sentEdits = 0;
  let savedEdits = 0;
  function setStatus(state, text, link) {
    if (!statusEl) return;
    statusEl.dataset.state = state;
    statusEl.textContent = text;
    if (link) statusEl.append(link);
  }
  const { expired, signedOut, signInLink } = window.kilnSession;
  document.addEventListener("input", (e) => {
    if (e.target.closest && e.target.closest("#cv-pane")) edits += 1;
  });
  // A change typed but not saved yet, a save under way or a refused one: leaving the page
  // would lose it.
  window.addEventListener("beforeunload", (e) => {
    const state = statusEl && statusEl.dataset.state;
    if (pending || state === "error" || edits > savedEdits) {
      e.preventDefault();
      e.returnValue = "";
    }
  });
  const isSave = (detail) => {
    const config = detail && detail.requestConfig;
    return config && config.verb !== "get" && !/\/(copy|evaluate)$/.test(config.path || "");
  };
  function reason(xhr) {
    if (!xhr || !xhr.status) return "the server could not be reached.";
    const told = xhr.getResponseHeader("X-Kiln-Error");
    if (told) return decodeURIComponent(told);
    if (xhr.status === 403) return "you may not edit this app.";
    if (xhr.status === 404) return "it was not found (deleted in another tab?).";
    return "the server answered " + xhr.status + " " + xhr.statusText + ".";
  }
  // A save ends when its request does, read from the request itself: htmx:afterRequest
  // is fired on the element that sent it, and a field swapped out meanwhile (Undo, a
  // rename) no longer passes it on, which left the status at "Saving…".
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (!isSave(e.detail)) return;
    const xhr = e.detail.xhr;
    let aborted = false;
    pending += 1;
    sentEdits = edits;
    setStatus("saving", "Saving…");
    xhr.addEventListener("abort", () => { aborted = true; });
    xhr.addEventListener("loadend", () => saveEnded(xhr, aborted));
  });
  let idle = [];
  function afterSaves() {
    return pending ? new Promise((resolve) => idle.push(resolve)) : Promise.resolve();
  }
  function saveEnded(xhr, aborted) {
    pending = Math.max(0, pending - 1);
    if (!pending) {
      const waiting = idle;
      idle = [];
      waiting.forEach((resolve) => resolve());
    }
    if (aborted) return; // replaced by a newer save of the same field, which tells
    if (expired(xhr)) {
      setStatus("error", "Your session expired: ", signInLink());
    } else if (!xhr.status || xhr.status >= 400) {
      setStatus("error", "Not saved: " + reason(xhr));
      if (xhr.status === 403) {
        signedOut().then((out) => {
          if (out) setStatus("error", "Your session expired: ", signInLink());
        });
      }
    } else {
      savedEdits = Math.max(savedEdits, sentEdits);
      if (!pending && statusEl && statusEl.dataset.state !== "error") {
        setStatus("saved", "All changes saved");
      }
    }
  }
  document.body.addEventListener("htmx:sendError", (e) => {
    if (isSave(e.detail)) setStatus("error", "Not saved: " + reason(null));
  });
  // Undo steps: the saves made while one field keeps the focus are one step; the first
  // save after it gains the focus asks for a new one (editor/canvas_history.py).
  document.addEventListener("focusin", (e) => {
    if (e.target.closest && e.target.closest("#cv-pane .pf")) delete e.target.dataset.stepOpen;
  });
  document.body.addEventListener("htmx:configRequest", (e) => {
    const el = e.detail.elt;
    if (!el || !el.closest || !el.closest("#cv-pane .pf") || el.name !== "value") return;
    if (!el.dataset.stepOpen) e.detail.parameters.fresh = "1";
    el.dataset.stepOpen = "1";
  });

  // A refused property (422) still shows why, under its field.
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    if (expired(e.detail.xhr)) {
      e.detail.shouldSwap = false;
    } else if (e.detail.xhr && e.detail.xhr.status === 422) {
      e.detail.shouldSwap = true;
    }
  });

  // Grid geometry -------------------------------------------------------------------------
  function tracks(list, start, gap) {
    const starts = [];
    let at = start;
    for (const size of list) {
      starts.push([at, size]);
      at += size + gap;
    }
    return starts;
  }
  function metrics() {
    const g = grid();
    const box = g.getBoundingClientRect();
    const style = getComputedStyle(g);
    const sizes = (text) => text.split(" ").map(parseFloat).filter((n) => !isNaN(n));
    const colGap = parseFloat(style.columnGap) || 16;
    const rowGap = parseFloat(style.rowGap) || 16;
    return {
      box,
      cols: tracks(sizes(style.gridTemplateColumns), box.left, colGap),
      rows: tracks(sizes(style.gridTemplateRows), box.top, rowGap),
      rowStep: 44 + rowGap,
    };
  }
  // The track under a coordinate: the last one starting at or before it.
  function trackAt(starts, at, step) {
    if (!starts.length) return 0;
    if (at < starts[0][0]) return 0;
    for (let i = starts.length - 1; i >= 0; i -= 1) {
      if (at >= starts[i][0]) {
        const [start, size] = starts[i];
        // Below the last row: rows of the default height go on.
        if (step && i === starts.length - 1 && at > start + size) {
          return i + 1 + Math.floor((at - start - size) / step);
        }
        return i;
      }
    }
    return 0;
  }
  function cellAt(m, x, y) {
    return {
      col: Math.min(trackAt(m.cols, x), COLUMNS - 1),
      row: trackAt(m.rows, y, m.rowStep),
    };
  }
  const inside = (r, x, y) => x >= r.left && x <= r.right && y >= r.top && y <= r.bottom;

  // The innermost container frame under the pointer (not the dragged frame, nor inside it).
  function containerAt(x, y, dragged) {
    let found = null;
    grid().querySelectorAll(".cv-frame[data-container]").forEach((el) => {
      if (dragged && (el === dragged || dragged.contains(el))) return;
      if (inside(el.getBoundingClientRect(), x, y)) found = el;
    });
    return found;
  }

  // Dragging ------------------------------------------------------------------------------
  let drag = null;
  let suppressClick = false;

  function ghostAt(x, y, w, h) {
    let ghost = grid().querySelector(".cv-ghost");
    if (!ghost) {
      ghost = document.createElement("div");
      ghost.className = "cv-ghost";
      grid().appendChild(ghost);
    }
    ghost.hidden = false;
    ghost.style.gridColumn = x + 1 + " / span " + w;
    ghost.style.gridRow = y + 1 + " / span " + h;
  }
  function hideGhost() {
    const ghost = grid() && grid().querySelector(".cv-ghost");
    if (ghost) ghost.hidden = true;
  }
  function markTarget(el) {
    document.querySelectorAll(".cv-frame.is-drop-target").forEach((f) => {
      if (f !== el) f.classList.remove("is-drop-target");
    });
    if (el) el.classList.add("is-drop-target");
  }
  function cleanUp() {
    hideGhost();
    markTarget(null);
    document.body.classList.remove("cv-dragging");
    if (drag && drag.chip) drag.chip.remove();
    if (drag && drag.frame) {
      drag.frame.classList.remove("is-moving");
      drag.frame.style.transform = "";
    }
  }
  const num = (el, key) => parseInt(el.dataset[key] || "0", 10);

  layout.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || drag) return;
    const tile = e.target.closest(".cv-tile");
    const handle = e.target.closest(".cv-handle");
    const frame = e.target.closest(".cv-frame");
    const onGrid = e.target.closest("#cv-grid");
    if (tile) {
      drag = { kind: "add", tile, w: num(tile, "w"), h: num(tile, "h") };
    } else if (handle && frame) {
      drag = { kind: "resize", frame };
    } else if (frame && onGrid) {
      drag = { kind: "move", frame };
      const m = metrics();
      const cell = cellAt(m, e.clientX, e.clientY);
      drag.grab = { col: cell.col - num(frame, "x"), row: cell.row - num(frame, "y") };
    } else if (onGrid) {
      drag = { kind: "blank" };
    } else {
      return;
    }
    drag.startX = e.clientX;
    drag.startY = e.clientY;
    drag.started = false;
    if (drag.kind !== "blank") e.preventDefault(); // no text selection while dragging
  });

  document.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.startX;
    const dy = e.clientY - drag.startY;
    if (!drag.started) {
      if (Math.hypot(dx, dy) < DRAG_THRESHOLD || drag.kind === "blank") return;
      drag.started = true;
      document.body.classList.add("cv-dragging");
      if (drag.kind === "add") {
        drag.chip = drag.tile.cloneNode(true);
        drag.chip.classList.add("cv-chip");
        document.body.appendChild(drag.chip);
      }
      if (drag.kind === "move") {
        if (selected() !== drag.frame.dataset.name) select(drag.frame.dataset.name);
        drag.frame.classList.add("is-moving");
      }
    }
    const m = metrics();
    const overGrid = inside(m.box, e.clientX, e.clientY) || drag.kind === "resize";
    drag.target = null;
    if (drag.kind === "add") {
      drag.chip.style.left = e.clientX + 8 + "px";
      drag.chip.style.top = e.clientY + 8 + "px";
    }
    if (drag.kind === "move") drag.frame.style.transform = `translate(${dx}px, ${dy}px)`;
    if (!overGrid) {
      hideGhost();
      markTarget(null);
      return;
    }
    if (drag.kind === "resize") {
      const f = drag.frame;
      const x = num(f, "x");
      const y = num(f, "y");
      const cell = cellAt(m, e.clientX, e.clientY);
      const w = Math.max(1, Math.min(cell.col - x + 1, COLUMNS - x));
      const h = Math.max(1, cell.row - y + 1);
      drag.target = { w, h };
      ghostAt(x, y, w, h);
      return;
    }
    const into = containerAt(e.clientX, e.clientY, drag.frame);
    markTarget(into);
    if (into) {
      hideGhost();
      drag.target = { parent: into.dataset.name };
      return;
    }
    const w = drag.kind === "add" ? drag.w : num(drag.frame, "w") || 4;
    const h = drag.kind === "add" ? drag.h : num(drag.frame, "h") || 1;
    const grab = drag.kind === "move" && drag.frame.classList.contains("is-top") ? drag.grab : { col: 0, row: 0 };
    const cell = cellAt(m, e.clientX, e.clientY);
    const x = Math.max(0, Math.min(cell.col - grab.col, COLUMNS - w));
    const y = Math.max(0, cell.row - grab.row);
    drag.target = { x, y };
    ghostAt(x, y, w, h);
  });

  document.addEventListener("pointerup", (e) => {
    if (!drag) return;
    const done = drag;
    cleanUp();
    drag = null;
    if (!done.started) {
      if (done.kind === "move" || done.kind === "resize") select(done.frame.dataset.name);
      if (done.kind === "blank") select("");
      return;
    }
    suppressClick = true;
    setTimeout(() => (suppressClick = false), 0);
    const target = done.target;
    if (!target) return;
    if (done.kind === "add") {
      post(urls.urlAdd, Object.assign({ type: done.tile.dataset.type }, target));
      return;
    }
    const f = done.frame;
    const name = f.dataset.name;
    const values = Object.assign({}, target);
    if (done.kind === "move" && !f.classList.contains("is-top") && !("parent" in values)) {
      values.parent = ""; // out of its container, onto the page
    }
    if (done.kind === "move" && "parent" in values && values.parent === parentOf(f)) return;
    if (done.kind === "move" && "x" in values && f.classList.contains("is-top") &&
        values.x === num(f, "x") && values.y === num(f, "y")) return;
    if (done.kind === "resize" && values.w === num(f, "w") && values.h === num(f, "h")) return;
    // Where it was dropped until the server's canvas arrives.
    if ("x" in values && f.classList.contains("is-top")) {
      f.style.gridColumn = values.x + 1 + " / span " + num(f, "w");
      f.style.gridRow = values.y + 1 + " / span " + num(f, "h");
    } else if ("w" in values) {
      f.style.gridColumn = num(f, "x") + 1 + " / span " + values.w;
      f.style.gridRow = num(f, "y") + 1 + " / span " + values.h;
    }
    post(widgetUrl(name, "layout"), values);
  });

  document.addEventListener("pointercancel", () => {
    cleanUp();
    drag = null;
  });

  function parentOf(frame) {
    const outer = frame.parentElement && frame.parentElement.closest(".cv-frame");
    return outer ? outer.dataset.name : "";
  }

  // Clicks: palette tiles (keyboard or a click without a drag) and the action buttons.
  layout.addEventListener("click", (e) => {
    if (suppressClick) return;
    const tile = e.target.closest(".cv-tile");
    if (tile) post(urls.urlAdd, { type: tile.dataset.type });
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest("[data-cv-action]");
    if (button && !button.disabled && actions[button.dataset.cvAction]) {
      actions[button.dataset.cvAction]();
    }
  });

  // Keys ----------------------------------------------------------------------------------
  function typing(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName !== "INPUT") return false;
    return !["button", "checkbox", "radio", "submit", "reset", "range", "color", "file"].includes(el.type);
  }
  document.addEventListener("keydown", (e) => {
    if (typing(e.target) || drag) return;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const name = selected();
    if ((key === "Delete" || key === "Backspace") && name && !mod) {
      e.preventDefault();
      actions.delete();
    } else if (mod && key === "c" && name && !String(window.getSelection() || "")) {
      e.preventDefault();
      actions.copy();
    } else if (mod && key === "v") {
      e.preventDefault();
      actions.paste();
    } else if (mod && ((key === "z" && e.shiftKey) || (key === "y" && !e.shiftKey))) {
      e.preventDefault();
      actions.redo();
    } else if (mod && key === "z") {
      e.preventDefault();
      actions.undo();
    } else if ((key === "Enter" || key === " ") && e.target.classList && e.target.classList.contains("cv-frame")) {
      e.preventDefault();
      select(e.target.dataset.name);
    } else if (key === "Escape" && name) {
      select("");
    } else if (name && !mod && key.startsWith("Arrow") && frameOf(name)?.classList.contains("is-top")) {
      e.preventDefault();
      const f = frameOf(name);
      const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[key];
      const values = e.shiftKey
        ? { w: Math.max(1, num(f, "w") + step[0]), h: Math.max(1, num(f, "h") + step[1]) }
        : { x: Math.max(0, num(f, "x") + step[0]), y: Math.max(0, num(f, "y") + step[1]) };
      post(widgetUrl(name, "layout"), values);
    }
  });
})();
