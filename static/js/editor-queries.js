/* The query editor: what htmx cannot do on its own.
 *
 * - a Copy button (data-copy) puts its text on the clipboard: the preview's cid: of
 *   each inline image, to paste into the HTML body;
 * - typing saves after a pause (kiln-typed), except in the name field, which saves on
 *   change: a trigger filter in the markup would need eval, which the CSP refuses;
 * - the save status (Saving… / Saved / Not saved: why), an expired session told as such,
 *   and a warning before leaving the page while a change is not saved.
 */
(() => {
  "use strict";

  const form = () => document.getElementById("query-form");
  const statusEl = () => document.getElementById("qe-save-status");

  let edits = 0; // changes typed or chosen since the page loaded
  let savedEdits = 0; // how many of them the last good save included
  let sentEdits = 0;
  let pending = 0;
  let failed = false;

  document.addEventListener("keyup", (event) => {
    const f = event.target.closest && event.target.closest("#query-form");
    if (f && event.target.name !== "name") f.dispatchEvent(new CustomEvent("kiln-typed"));
  });
  document.addEventListener("input", (event) => {
    if (event.target.closest && event.target.closest("#query-form") &&
        !event.target.closest("[data-no-save]")) edits += 1;
  });

  const { expired, signedOut, signInLink } = window.kilnSession;

  function showStatus(kind, text, link) {
    const el = statusEl();
    if (!el) return;
    const span = document.createElement("span");
    span.className = kind === "saved" ? "qe-saved" : "qe-not-saved";
    span.append(text);
    if (link) span.append(link);
    el.replaceChildren(span);
  }
  const isSave = (detail) => detail && detail.elt === form();

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (!isSave(event.detail)) return;
    pending += 1;
    sentEdits = edits;
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (!isSave(event.detail)) return;
    pending = Math.max(0, pending - 1);
    const xhr = event.detail.xhr;
    if (expired(xhr)) {
      failed = true;
      showStatus("error", "Your session expired: ", signInLink());
    } else if (!xhr || !xhr.status) {
      failed = true;
      showStatus("error", "Not saved: the server could not be reached.");
    } else if (xhr.status >= 400) {
      failed = true;
      if (xhr.status !== 422) {
        showStatus("error", xhr.status === 403 ? "Not saved: you may not edit this app."
          : "Not saved: the server answered " + xhr.status + ".");
      }
      if (xhr.status === 403) {
        signedOut().then((out) => {
          if (out) showStatus("error", "Your session expired: ", signInLink());
        });
      }
    } else {
      failed = false;
      savedEdits = Math.max(savedEdits, sentEdits);
    }
  });

  // htmx swaps 4xx answers only when told: a 422 carries the fields' errors. The sign-in
  // page is never swapped into the editor.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const xhr = event.detail.xhr;
    if (expired(xhr)) {
      event.detail.shouldSwap = false;
      event.detail.isError = false;
    } else if (xhr.status === 422 && event.target.closest(".qe")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Test files: a file chosen for a file picker is read here and put in the test values as
  // the page would send it ({"name", "type", "data": "data:…;base64,…"}); nothing is
  // uploaded apart from the test values themselves.
  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve({
        name: file.name,
        type: file.type || "application/octet-stream",
        data: reader.result,
      });
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-test-files]")) return;
    event.stopPropagation(); // not a change of the query: no save of its own
    const picker = input.dataset.testFiles;
    const message = document.getElementById(input.id + "-msg");
    const say = (text) => {
      if (!message) return;
      message.textContent = text;
      message.hidden = !text;
    };
    Promise.all([...input.files].map(readFile)).then((files) => {
      const area = document.getElementById("id_test_values");
      if (!area) return;
      let values;
      try {
        values = JSON.parse(area.value.trim() || "{}");
      } catch (_) {
        say("Test values are not valid JSON: fix them first, then choose the file again.");
        return;
      }
      if (!values || typeof values !== "object" || Array.isArray(values)) values = {};
      values[picker] = Object.assign({}, values[picker], { files: files });
      area.value = JSON.stringify(values, null, 2);
      say("");
      area.dispatchEvent(new Event("change", { bubbles: true }));
    }, () => say("The file could not be read."));
  }, true);

  // A save that sends the editor elsewhere (a renamed query) has saved everything.
  let leaving = false;
  document.addEventListener("htmx:beforeOnLoad", (event) => {
    const xhr = event.detail.xhr;
    if (xhr && xhr.status < 400 && xhr.getResponseHeader("HX-Redirect")) leaving = true;
  });

  window.addEventListener("beforeunload", (event) => {
    if (!form() || leaving) return;
    if (pending || failed || edits > savedEdits) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  // Leaving through the plain Save (a full post) is not leaving unsaved changes.
  document.addEventListener("submit", (event) => {
    if (event.target === form() && !event.defaultPrevented) savedEdits = edits;
  });

  // The preview's Copy buttons: the clipboard API needs a secure context (https or
  // localhost) and a permission a browser may refuse; otherwise the text is selected
  // and copied the older way, and if even that fails it stays selected for Ctrl+C.
  // The button reads "Copied" for a moment, then its own label again.
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    const text = button.dataset.copy;
    const done = () => {
      if (!button.dataset.label) button.dataset.label = button.textContent;
      button.classList.add("is-copied");
      button.textContent = "Copied";
      window.clearTimeout(Number(button.dataset.copiedTimer || 0));
      button.dataset.copiedTimer = String(
        window.setTimeout(() => {
          button.classList.remove("is-copied");
          button.textContent = button.dataset.label;
        }, 1500),
      );
    };
    const select = () => {
      const code = button.parentElement && button.parentElement.querySelector("code");
      if (!code) return;
      window.getSelection().selectAllChildren(code);
      let copied = false;
      try {
        copied = document.execCommand("copy");
      } catch (error) {
        copied = false;
      }
      if (copied) done();
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, select);
    } else {
      select();
    }
  });
})();
