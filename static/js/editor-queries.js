// Typing saves (after a pause), except in the name field, which saves on change: a
// trigger filter in the markup would need eval, which the Content-Security-Policy refuses.
document.addEventListener("keyup", (event) => {
  const form = event.target.closest && event.target.closest("#query-form");
  if (form && event.target.name !== "name") form.dispatchEvent(new CustomEvent("kiln-typed"));
});

// The query editor: a 422 answer carries the fields' errors, and htmx swaps 4xx answers
// only when told to.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 422 && event.target.closest(".qe")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
