/* The editor's session, shared by the canvas and the query editor: is an answer the sign-in
 * page (the session expired), and the link that signs in again and comes back here. */
(() => {
  "use strict";

  const frame = () => document.getElementById("editor-frame");
  const loginUrl = () => (frame() && frame().dataset.loginUrl) || "/accounts/login/";

  window.kilnSession = {
    // Django's login_required answers a redirect, which the browser follows: the answer is
    // then the sign-in page (or a 401). It is never swapped into the editor.
    expired(xhr) {
      if (!xhr) return false;
      if (xhr.status === 401) return true;
      return Boolean(xhr.responseURL) && new URL(xhr.responseURL).pathname === loginUrl();
    },
    // A 403 is also what a signed-out browser gets (its CSRF cookie went with the
    // session): asking for this page again tells, since it sends a signed-out visitor to
    // sign in.
    signedOut() {
      return fetch(location.href, { credentials: "same-origin" })
        .then((r) => new URL(r.url).pathname === loginUrl())
        .catch(() => false);
    },
    signInLink() {
      const a = document.createElement("a");
      a.href = loginUrl() + "?next=" + encodeURIComponent(location.pathname + location.search);
      a.textContent = "sign in again";
      return a;
    },
  };
})();
