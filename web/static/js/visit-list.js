/*
 * Visit staff's list and booking form (/visits): the visits of their prisons for a day
 * (center time) and state, approve / refuse / cancel in the row, and a booking form whose
 * refusals say what to change (the API's message). An approval shows each relative's code
 * and link once: staff pass them on.
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);

  async function call(method, path, body) {
    const resp = await fetch(path, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf_token },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw (data && data.error) || { code: "server" };
    return data;
  }

  function say(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  /** A center-local "YYYY-MM-DDTHH:MM" as an aware ISO instant (the center's time zone). */
  function centerInstant(value) {
    const asUtc = new Date(`${value}:00Z`);
    const shown = new Date(`${window.fmtDateTime(asUtc).replace(" ", "T")}:00Z`);
    return new Date(asUtc.getTime() - (shown.getTime() - asUtc.getTime())).toISOString();
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "vs-btn";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  async function act(v, path, body) {
    say("");
    try {
      const out = await call("POST", `/api/v1/visits/${v.id}/${path}`, body || {});
      if (out.join_codes) {
        $("book-result").textContent = out.join_codes
          .map((c) => t("visits.list.code", { relative: c.relative_id, code: c.join_code, url: location.origin + c.join_url }))
          .join("\n");
      }
      load();
    } catch (err) {
      say(err.message || err.code);
    }
  }

  async function load() {
    const q = new URLSearchParams();
    if ($("f-date").value) q.set("date", $("f-date").value);
    if ($("f-state").value) q.set("state", $("f-state").value);
    let page;
    try {
      page = await call("GET", `/api/v1/visits?${q}`);
    } catch (err) {
      return say(err.message || err.code);
    }
    const rows = $("rows");
    rows.textContent = "";
    for (const v of page.items) {
      const tr = document.createElement("tr");
      tr.dataset.id = v.id;
      for (const text of [v.id, `${window.fmtDateTime(v.starts_at)}–${window.fmtTime(v.ends_at)}`, v.inmate_name,
        t("visits.vstate." + (v.state)) + (v.outcome ? ` (${t("visits.outcome." + (v.outcome))})` : "")]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      const td = document.createElement("td");
      if (v.state === "requested") {
        td.appendChild(button(t("visits.list.approve"), () => act(v, "approve")));
        td.appendChild(button(t("visits.list.refuse"), () => {
          const reason = prompt(t("visits.list.refuse_reason"));
          if (reason && reason.trim()) act(v, "refuse", { reason: reason.trim() });
        }));
      }
      if (["requested", "approved", "waiting"].includes(v.state)) {
        td.appendChild(button(t("visits.list.cancel"), () => act(v, "cancel", {})));
      }
      tr.appendChild(td);
      rows.appendChild(tr);
    }
  }

  // from /visits/records: "book for the ticked relatives" fills the form in
  const asked = new URLSearchParams(location.search);
  if (asked.get("inmate")) $("b-inmate").value = asked.get("inmate");
  if (asked.get("relatives")) $("b-relatives").value = asked.get("relatives");
  $("f-date").value = window.centerToday();
  $("filter").addEventListener("change", load);
  $("book").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {
      inmate_id: $("b-inmate").value.trim(),
      relative_ids: $("b-relatives").value.split(/[ ,，]+/).filter(Boolean).map(Number),
      starts_at: centerInstant($("b-starts").value),
      privileged: $("b-privileged").checked,
      emergency: $("b-emergency").checked,
    };
    if ($("b-point").value.trim()) body.visit_point_id = $("b-point").value.trim();
    try {
      const v = await call("POST", "/api/v1/visits", body);
      $("book-result").textContent = t("visits.book.done", { id: v.id });
      load();
    } catch (err) {
      $("book-result").textContent = err.message || err.code;
    }
  });
  load();
})();
