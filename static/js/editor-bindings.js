/* Help while typing a << binding >>, in the page editor's property pane and in the query
 * editor alike:
 *
 * - a list of the names in scope after "<<" (from a JSON script, #cv-names or #qe-names:
 *   widgets, name.key paths, queries, the context's names); arrows and Enter pick one;
 * - the field's evaluated value under it (as Appsmith shows it), asked of the server
 *   500 ms after the last key and when the field gains the focus: POST to the
 *   data-evaluate-url of an ancestor, with the page's test values when there are some.
 *
 * A field takes part with data-bindable; data-value-box names the element of its value.
 */
(() => {
  "use strict";
  if (!window.htmx) return;

  // Names -----------------------------------------------------------------------------
  let names = [];
  function loadNames() {
    const el = document.getElementById("cv-names") || document.getElementById("qe-names");
    try {
      names = el ? JSON.parse(el.textContent) : [];
    } catch (_) {
      names = [];
    }
  }
  loadNames();
  document.body.addEventListener("htmx:afterSettle", loadNames);

  const box = document.createElement("ul");
  box.className = "cv-suggest";
  box.setAttribute("role", "listbox");
  box.hidden = true;
  document.body.appendChild(box);
  let suggestFor = null;
  let choices = [];
  let active = 0;
  let tokenStart = 0;

  function hideSuggestions() {
    box.hidden = true;
    suggestFor = null;
  }
  function suggest(el) {
    const caret = el.selectionStart;
    const before = el.value.slice(0, caret);
    const open = before.lastIndexOf("<<");
    if (open < 0 || before.lastIndexOf(">>") > open) return hideSuggestions();
    const token = (before.slice(open + 2).match(/[A-Za-z_][\w.]*$/) || [""])[0];
    const dotted = token.includes(".");
    choices = names
      .filter((n) => n.startsWith(token) && n !== token && (dotted || !n.includes(".")) &&
        n.split(".").length <= token.split(".").length + (dotted ? 0 : 1))
      .slice(0, 12);
    if (!choices.length) return hideSuggestions();
    suggestFor = el;
    tokenStart = caret - token.length;
    active = 0;
    render();
    const r = el.getBoundingClientRect();
    box.style.left = r.left + window.scrollX + "px";
    box.style.top = r.bottom + window.scrollY + 2 + "px";
    box.style.minWidth = Math.min(r.width, 280) + "px";
    box.hidden = false;
  }
  function render() {
    box.replaceChildren(
      ...choices.map((choice, i) => {
        const li = document.createElement("li");
        li.textContent = choice;
        li.setAttribute("role", "option");
        li.className = i === active ? "is-active" : "";
        li.addEventListener("pointerdown", (e) => {
          e.preventDefault();
          accept(i);
        });
        return li;
      }),
    );
  }
  function accept(i) {
    const el = suggestFor;
    if (!el) return;
    const caret = el.selectionStart;
    const choice = choices[i];
    el.value = el.value.slice(0, tokenStart) + choice + el.value.slice(caret);
    const at = tokenStart + choice.length;
    el.setSelectionRange(at, at);
    hideSuggestions();
    el.dispatchEvent(new Event("change", { bubbles: true }));
    evaluateSoon(el);
  }
  document.addEventListener("input", (e) => {
    if (!e.target.matches || !e.target.matches("[data-bindable]")) return;
    suggest(e.target);
    evaluateSoon(e.target);
  });
  document.addEventListener("keydown", (e) => {
    if (box.hidden || e.target !== suggestFor) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      active = (active + (e.key === "ArrowDown" ? 1 : choices.length - 1)) % choices.length;
      render();
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      e.stopPropagation();
      accept(active);
    } else if (e.key === "Escape") {
      hideSuggestions();
    }
  }, true);
  document.addEventListener("focusout", (e) => {
    if (e.target === suggestFor) setTimeout(hideSuggestions, 100);
  });
  document.addEventListener("scroll", hideSuggestions, true);
  // Hidden when the field itself is swapped away (not when its value box is).
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    if (suggestFor && e.detail.target && e.detail.target.contains(suggestFor)) hideSuggestions();
  });

  // The evaluated value -----------------------------------------------------------------
  const timers = new WeakMap();
  function evaluateSoon(el) {
    clearTimeout(timers.get(el));
    timers.set(el, setTimeout(() => evaluateNow(el), 500));
  }
  function evaluateNow(el) {
    const holder = el.closest("[data-evaluate-url]");
    const target = el.dataset.valueBox && document.getElementById(el.dataset.valueBox);
    if (!holder || !target || !document.contains(el)) return;
    const values = { binding_text: el.value, binding_field: el.dataset.field || el.name };
    if (holder.dataset.page) values.binding_page = holder.dataset.page;
    const testValues = document.getElementById("id_test_values");
    if (testValues) values.binding_test_values = testValues.value;
    // From the body: nothing of the form around the field (its values, its indicator)
    // goes with it, only the CSRF header.
    htmx.ajax("POST", holder.dataset.evaluateUrl, {
      source: document.body,
      target: target,
      swap: "innerHTML",
      values: values,
    });
  }
  document.addEventListener("focusin", (e) => {
    if (e.target.matches && e.target.matches("[data-bindable]")) evaluateNow(e.target);
  });

  // A date-and-time picker beside a bindable text (send_at) ------------------------------
  // The picker's time is the browser's local time: written with the browser's offset
  // (2026-12-24T09:00+01:00), so the server reads the moment the person meant. The text
  // stays the value stored (it may hold a binding instead); "input" and "change" go to
  // it as if typed, so the autosave and the evaluated value follow.
  function withOffset(local) {
    const moment = new Date(local);
    if (Number.isNaN(moment.getTime())) return "";
    const minutes = -moment.getTimezoneOffset();
    const sign = minutes >= 0 ? "+" : "-";
    const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
    return `${local.slice(0, 16)}${sign}${pad(minutes / 60)}:${pad(minutes % 60)}`;
  }
  document.addEventListener("change", (e) => {
    const picker = e.target;
    if (!picker.matches || !picker.matches("input[data-picker-for]")) return;
    const row = picker.closest("[data-picker-row]");
    const text = row && row.querySelector("[data-bindable]");
    if (!text || !picker.value) return;
    text.value = withOffset(picker.value);
    text.dispatchEvent(new Event("input", { bubbles: true }));
    text.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();
