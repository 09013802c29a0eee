/* The SMTP datasource form: choosing OAuth2 with Google or Microsoft fills in the provider's
 * SMTP server (smtp.gmail.com / smtp.office365.com, port 587, STARTTLS) while the host is
 * empty, or still holds the other provider's host that this script put there. A host
 * typed by hand is never replaced. */
(() => {
  "use strict";

  const block = document.getElementById("oauth2-settings");
  const form = block && block.closest("form");
  if (!form) return;
  const hosts = JSON.parse(block.dataset.hosts || "{}");
  const known = new Set(Object.values(hosts));
  const field = (name) => form.elements.namedItem(name);

  const checked = (name) => {
    const input = form.querySelector(`input[name="${name}"]:checked`);
    return input ? input.value : "";
  };

  const fill = () => {
    const host = field("host");
    const wanted = hosts[checked("oauth_provider")];
    if (checked("auth") !== "oauth2" || !host || !wanted) return;
    const current = host.value.trim();
    if (current && !known.has(current)) return;
    host.value = wanted;
    const port = field("port");
    if (port) port.value = "587";
    const security = field("security");
    if (security) security.value = "starttls";
    host.dispatchEvent(new Event("change", { bubbles: true }));
  };

  form.addEventListener("change", (event) => {
    const name = event.target && event.target.name;
    if (name === "auth" || name === "oauth_provider") fill();
  });
})();
