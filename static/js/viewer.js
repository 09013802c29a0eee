// The published app's page behaviour, kept out of the markup so that the page runs under
// a Content-Security-Policy without 'unsafe-inline' (no inline scripts, styles or hx-on).
(function () {
  "use strict";

  // Rows of the grid: the stylesheet has classes for the usual rows; a cell further down
  // (or taller) is placed from its data attributes.
  function placeCells(root) {
    root.querySelectorAll(".kiln-cell[data-y]").forEach(function (cell) {
      const y = parseInt(cell.dataset.y, 10), h = parseInt(cell.dataset.h, 10);
      if (y >= 0 && h >= 1) cell.style.gridRow = (y + 1) + " / span " + h;
      // On a narrow screen the cells stack in reading order: row, then column (viewer.css).
      const x = /(?:^|\s)kiln-x-(\d+)/.exec(cell.className);
      if (y >= 0) cell.style.setProperty("--kiln-order", String(y * 12 + (x ? +x[1] : 0)));
    });
  }

  // While a run is polled, the widget whose event started it is busy: its buttons take
  // no clicks and show a spinner.
  function markBusy() {
    const busy = new Set();
    document.querySelectorAll("#kiln-pollers .kiln-poller[data-trigger]").forEach(function (p) {
      if (p.dataset.trigger) busy.add("w-" + p.dataset.trigger);
    });
    document.querySelectorAll(".kiln-cell.kiln-busy").forEach(function (cell) {
      if (!busy.has(cell.id)) cell.classList.remove("kiln-busy");
    });
    busy.forEach(function (id) {
      const cell = document.getElementById(id);
      if (cell) cell.classList.add("kiln-busy");
    });
  }

  // A form's fields back to their defaults, in the browser only (a reset with no event).
  function resetForm(button) {
    const root = button.closest(".kiln-form") || button.form;
    if (!root) return;
    root.querySelectorAll("[data-default]").forEach(function (el) {
      if (el.type === "checkbox") el.checked = el.dataset.default === "true";
      else el.value = el.dataset.default;
    });
    root.querySelectorAll(".kiln-field-errors").forEach(function (el) { el.replaceChildren(); });
  }

  // A button of type "submit" inside a form clicks the form's own submit button.
  function submitForm(button) {
    const form = button.closest(".kiln-form");
    const submit = form && form.querySelector(":scope > .kiln-form-actions .kiln-form-submit");
    if (submit) submit.click();
  }

  // The file picker's limits, checked before anything is sent.
  function checkFiles(input) {
    const d = input.dataset, files = Array.from(input.files);
    const out = document.getElementById(input.name + "-errors");
    const allowed = d.allowed ? d.allowed.split(",").map(function (a) { return a.trim(); }).filter(Boolean) : [];
    function fits(f) {
      const type = f.type.toLowerCase();
      return !allowed.length || allowed.some(function (a) {
        if (a.startsWith(".")) return f.name.toLowerCase().endsWith(a);
        if (a.endsWith("/*")) return type.startsWith(a.slice(0, -1));
        return type === a;
      });
    }
    let msg = "";
    if (+d.maxFiles && files.length > +d.maxFiles) {
      msg = d.label + ": at most " + d.maxFiles + (d.maxFiles === "1" ? " file." : " files.");
    }
    for (const f of files) {
      if (msg) break;
      if (+d.maxBytes && f.size > +d.maxBytes) {
        const mb = (Math.ceil(f.size * 10 / 1048576) / 10).toFixed(1);
        msg = d.label + ": \u201c" + f.name + "\u201d is " + mb + " MB, over the " + d.maxMb + " MB limit.";
      } else if (!fits(f)) {
        msg = d.label + ": \u201c" + f.name + "\u201d is not an allowed file type (" + d.allowed + ").";
      }
    }
    if (out) out.textContent = msg;
    if (msg) input.value = "";
  }

  document.addEventListener("click", function (event) {
    const target = event.target;
    const close = target.closest(".kiln-toast-close");
    if (close) { close.closest(".kiln-toast").remove(); return; }
    const mergeClose = target.closest(".kiln-merge-close");
    if (mergeClose) { mergeClose.closest(".kiln-merge").remove(); return; }
    const modalClose = target.closest(".kiln-modal-close");
    if (modalClose) { modalClose.closest("dialog").close(); return; }
    // A click on a modal's backdrop lands on the dialog itself.
    if (target.matches("dialog.kiln-modal")) { target.close(); return; }
    const button = target.closest("[data-kiln-click]");
    if (button && !button.disabled) {
      if (button.dataset.kilnClick === "reset") resetForm(button);
      else if (button.dataset.kilnClick === "submit") submitForm(button);
      return;
    }
    const row = target.closest("tr[data-kiln-select]");
    if (row && target.tagName !== "INPUT") {
      const radio = row.querySelector("input[type=radio]");
      if (radio && !radio.checked) radio.click();
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("input.kiln-file")) checkFiles(event.target);
  });

  document.addEventListener("keydown", function (event) {
    // Enter in a table's search box must not submit anything: the search runs as one types.
    if (event.key === "Enter" && event.target.matches(".kiln-table-search")) event.preventDefault();
  });

  document.addEventListener("submit", function (event) {
    if (event.target.id === "kiln-page") event.preventDefault();
  });

  // A query that asks first: the page's own dialog shows the builder's message (never the
  // browser's confirm()); the request goes only when OK closes it. Cancel, Escape or
  // anything else sends nothing.
  let pendingConfirm = null;
  function ask(dialog, detail, message) {
    pendingConfirm = detail;
    dialog.querySelector(".kiln-confirm-message").textContent = message;
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector(".kiln-confirm-cancel").focus();
  }

  // A merge asks with the number of emails it would send now ("Send 200 emails?"): the
  // page's state is posted to data-merge-count first. When the count cannot be had, the
  // dialog still asks (data-confirm); when the merge would not start (the answer's
  // error), the click goes on and its answer says why, sending nothing.
  function csrfHeaders() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}"); }
    catch (_) { return {}; }
  }
  function askMergeCount(dialog, detail, elt) {
    const body = new FormData(document.getElementById("kiln-page") || undefined);
    let vals = {};
    try { vals = JSON.parse(elt.getAttribute("hx-vals") || "{}"); } catch (_) { vals = {}; }
    Object.keys(vals).forEach(function (key) { body.set(key, vals[key]); });
    fetch(elt.dataset.mergeCount, {
      method: "POST", body: body, headers: csrfHeaders(), credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    }).then(function (answer) {
      if (answer.error) detail.issueRequest(true);
      else ask(dialog, detail, answer.message);
    }).catch(function () { ask(dialog, detail, elt.dataset.confirm); });
  }

  document.addEventListener("htmx:confirm", function (event) {
    const elt = event.detail.elt;
    const dialog = document.getElementById("kiln-confirm");
    if (!elt || !elt.dataset || !elt.dataset.confirm || !dialog) return;
    event.preventDefault();
    if (elt.dataset.mergeCount) askMergeCount(dialog, event.detail, elt);
    else ask(dialog, event.detail, elt.dataset.confirm);
  });
  document.addEventListener("close", function (event) {
    if (event.target.id !== "kiln-confirm") return;
    const detail = pendingConfirm;
    pendingConfirm = null;
    if (detail && event.target.returnValue === "ok") detail.issueRequest(true);
  }, true);

  // The open_modal / close_modal actions (an HX-Trigger event from the server).
  document.addEventListener("kiln-modal", function (event) {
    const modal = document.getElementById("modal-" + event.detail.name);
    if (!modal) return;
    if (event.detail.open) { if (!modal.open) modal.showModal(); } else modal.close();
  });

  function start() {
    placeCells(document);
    markBusy();
    new MutationObserver(function (records) {
      records.forEach(function (record) {
        record.addedNodes.forEach(function (node) {
          if (node.nodeType === 1) placeCells(node.parentNode || node);
        });
      });
      markBusy();
    }).observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
