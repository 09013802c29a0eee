/* “Connect with Google / Microsoft” on an SMTP datasource page: the button submits a form of
 * its own, which the start view answers with the saved settings. Changes typed on the page
 * and not saved (or refused by a save) would not be used: Connect stops and says to save
 * them first. */
(() => {
  "use strict";

  const button = document.getElementById("oauth2-connect-button");
  const settings = button && button.closest("form");
  if (!settings) return;
  const values = () => new URLSearchParams(new FormData(settings)).toString();
  // Shown again after a save that failed: the page holds changes nothing saved.
  const saved = button.hasAttribute("data-unsaved") ? null : values();

  button.addEventListener("click", (event) => {
    const unsaved = values() !== saved;
    document.getElementById("oauth2-unsaved").hidden = !unsaved;
    if (unsaved) event.preventDefault();
  });
})();
