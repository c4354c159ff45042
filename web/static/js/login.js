"use strict";
(function () {
  const form = document.getElementById("login-form");
  const err = document.getElementById("login-error");
  const t = window.t;
  function show(msg) { err.textContent = msg; err.hidden = false; }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
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
        show(t("login.invalid"));
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
