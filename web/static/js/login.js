"use strict";
(function () {
  const form = document.getElementById("login-form");
  const err = document.getElementById("login-error");
  const t = window.t;
  function show(msg) { err.textContent = msg; err.hidden = false; }
  if (new URLSearchParams(location.search).has("signed_out")) document.getElementById("login-info").hidden = false;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    document.getElementById("login-info").hidden = true;
    // Say which field is empty before asking the server.
    for (const [id, key] of [["username", "login.need_username"], ["password", "login.need_password"]]) {
      const input = document.getElementById(id);
      input.setAttribute("aria-invalid", String(!input.value.trim()));
      if (!input.value.trim()) { show(t(key)); input.focus(); return; }
    }
    const button = document.getElementById("login-submit");
    button.disabled = true;
    try {
      const res = await fetch("/api/v1/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          username: document.getElementById("username").value,
          password: document.getElementById("password").value,
        }),
      });
      if (res.ok) {
        const body = await res.json();
        const next = window.LOGIN_NEXT && window.LOGIN_NEXT.startsWith("/") && !window.LOGIN_NEXT.startsWith("//")
          ? window.LOGIN_NEXT : body.home || "/";
        window.location.assign(next);
        return;
      }
      if (res.status === 429) {
        show(t("login.locked", { s: res.headers.get("Retry-After") || "60" }));
      } else if (res.status === 401) {
        const body = await res.json().catch(() => ({}));
        const left = body.error && body.error.details ? body.error.details.attempts_left : undefined;
        show(left === 1 ? t("login.invalid_last", { n: left }) : t("login.invalid"));
      } else {
        show(t("login.error"));
      }
    } catch (e) {
      show(t("login.error"));
    } finally {
      button.disabled = false;
    }
  });
})();
