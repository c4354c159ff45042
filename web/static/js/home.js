"use strict";
document.getElementById("logout").addEventListener("click", async (ev) => {
  await fetch("/api/v1/auth/logout", {
    method: "POST",
    headers: { "X-CSRF-Token": ev.target.dataset.csrf },
  });
  window.location.assign("/login");
});
