// The query editor: a 422 answer carries the fields' errors, and htmx swaps 4xx answers
// only when told to.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 422 && event.target.closest(".qe")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
