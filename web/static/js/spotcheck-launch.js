/*
 * Console hook for spot-checks: a button ("spot.launch") in the alarm detail panel that starts a
 * spot-check of the alarm's subject, attached to the alarm, and opens the officer's view.
 * Self-contained: it watches the panel's title ("#<alarm id> …") and reads the alarm itself.
 */
(function () {
  "use strict";

  const t = window.t;
  const title = document.getElementById("d-title");
  const summary = document.getElementById("d-summary");
  if (!title || !summary) return;
  const box = document.createElement("div");
  box.id = "d-spotcheck";
  box.className = "d-actions";
  const button = document.createElement("button");
  button.type = "button";
  button.id = "d-spotcheck-btn";
  button.textContent = t("spot.launch");
  box.appendChild(button);
  summary.after(box);

  const alarmId = () => {
    const m = /^#(\d+)/.exec(title.textContent || "");
    return m ? Number(m[1]) : 0;
  };

  button.addEventListener("click", async () => {
    const id = alarmId();
    if (!id) return;
    button.disabled = true;
    try {
      const me = await (await fetch("/api/v1/me")).json();
      const wf = await (await fetch(`/api/v1/alarms/${id}/workflow`)).json();
      const resp = await fetch("/api/v1/spotchecks", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token || "" },
        body: JSON.stringify({ subject_id: wf.subject_id, alarm_id: id }),
      });
      const body = await resp.json();
      const sc = resp.ok ? body : body.error && body.error.details && body.error.details.id ? { id: body.error.details.id } : null;
      if (sc) window.open(`/spotcheck?id=${sc.id}`, "_blank");
      else alert(t("spot.error", { message: (body.error && body.error.message) || resp.status }));
    } finally {
      button.disabled = false;
    }
  });
})();
