/*
 * Visit staff's monitor (/visits/monitor): a grid of the visits waiting or live in their
 * prisons (visits topic).
 * Opening one joins its room as a `monitor` — receive-only, never published to the parties,
 * so they neither see nor hear it and it is absent from their getStats() — and shows both
 * sides, each with a quality badge (its latest uplink grade in the room's timeline); then
 * admit, send a warning text, mute a side, or terminate with a reason. Every card of the
 * grid carries a badge per side (relatives, inmate) from GET /api/v1/visits/{id}/quality.
 * State for tests: window.monitorPage = {visits, grades, open, frames: {participant: frames}, rtc}.
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);
  const page = { visits: new Map(), grades: new Map(), open: null, frames: {}, rtc: null };
  window.monitorPage = page;
  let rtc = null;
  const MUTE_LABELS = {
    inmate: ["visits.monitor.mute_inmate", "visits.monitor.unmute_inmate"],
    relatives: ["visits.monitor.mute_relatives", "visits.monitor.unmute_relatives"],
  };

  async function post(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf_token },
      body: JSON.stringify(body || {}),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw (data && data.error) || { code: "server" };
    return data;
  }

  function say(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  function renderGrid() {
    const grid = $("grid");
    grid.textContent = "";
    const list = [...page.visits.values()].sort((a, b) => a.starts_at.localeCompare(b.starts_at));
    for (const v of list) {
      const card = document.createElement("button");
      card.type = "button";
      card.className = "vs-card";
      card.dataset.id = v.id;
      card.dataset.state = v.state;
      card.textContent = t("visits.monitor.card", {
        id: v.id, from: window.fmtTime(v.starts_at), to: window.fmtTime(v.ends_at), state: t("visits.vstate." + (v.state)),
      });
      const badges = document.createElement("div");
      badges.className = "vs-card-badges";
      for (const side of ["relatives", "inmate"]) {
        const badge = document.createElement("span");
        badge.className = "vs-badge";
        badge.dataset.side = side;
        const grade = (page.grades.get(v.id) || {})[side];
        if (grade) badge.dataset.grade = grade;
        badge.textContent = `${t("visits.side." + side)} ${grade ? t("visits.grade." + grade) : "–"}`;
        badges.appendChild(badge);
      }
      card.appendChild(badges);
      if (v.privileged) card.disabled = true;
      card.addEventListener("click", () => openVisit(v.id));
      grid.appendChild(card);
    }
    $("none").hidden = list.length > 0;
  }

  function showOpen(v) {
    page.open = v;
    $("open").hidden = false;
    $("open-title").textContent = t("visits.monitor.open", { id: v.id, inmate: v.inmate_name || "" });
    $("open-state").dataset.state = v.state;
    $("open-state").textContent = t("visits.vstate." + (v.state));
    $("admit").disabled = v.state !== "waiting";
    showPhotos(v);
  }

  /* The photos on file beside the live video: staff compare the faces before admitting. */
  function showPhotos(v) {
    const box = $("photos");
    box.textContent = "";
    for (const r of v.relatives) {
      const fig = document.createElement("figure");
      fig.className = "vs-photo";
      fig.dataset.relative = r.relative_id;
      if (r.photo_url) {
        const img = document.createElement("img");
        img.src = r.photo_url;
        img.alt = r.name;
        fig.appendChild(img);
      }
      const cap = document.createElement("figcaption");
      cap.textContent = `${r.name}（${r.relationship}）` + (r.photo_url ? "" : " · " + t("visits.monitor.no_photo"))
        + (r.joined_at ? "" : " · " + t("visits.monitor.not_joined"));
      fig.appendChild(cap);
      box.appendChild(fig);
    }
  }

  async function openVisit(id) {
    say("");
    closeVisit();
    const resp = await fetch(`/api/v1/visits/${id}`);
    if (!resp.ok) return say(t("visits.monitor.gone"));
    const v = await resp.json();
    showOpen(v);
    rtc = new RtcClient({
      onTracks: (streams) => {
        const box = $("sides");
        for (const [pid, stream] of streams) {
          let el = box.querySelector(`video[data-pid="${pid}"]`);
          if (!el) {
            const side = document.createElement("div");
            side.className = "vs-side";
            el = document.createElement("video");
            el.autoplay = true;
            el.playsInline = true;
            el.dataset.pid = pid;
            const badge = document.createElement("span");
            badge.className = "vs-badge";
            badge.dataset.pid = pid;
            side.append(el, badge);
            box.appendChild(side);
          }
          if (el.srcObject !== stream) el.srcObject = stream;
        }
      },
      onEvent: (type) => { if (type === "bye") closeVisit(); },
    });
    page.rtc = rtc;
    try {
      await rtc.connect();
      await rtc.join(v.room_id, { role: "monitor" });
      rtc.addReceivers(v.relatives.length + 1);
      await rtc.negotiate();
    } catch (err) {
      say(t("visits.monitor.join_failed", { code: (err && err.code) || "" }));
    }
  }

  function closeVisit() {
    if (rtc) {
      const r = rtc;
      r.leave().catch(() => {}).finally(() => r.close());
    }
    rtc = null;
    page.rtc = null;
    page.frames = {};
    $("sides").textContent = "";
  }

  async function act(path, body) {
    if (!page.open) return;
    say("");
    try {
      showOpen(await post(`/api/v1/visits/${page.open.id}/${path}`, body));
    } catch (err) {
      say(t("visits.monitor.refused", { message: err.message || err.code || "" }));
    }
  }

  $("admit").addEventListener("click", () => act("admit"));
  $("warn-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("warn-text").value.trim();
    if (text) act("warn", { text }).then(() => { $("warn-text").value = ""; });
  });
  for (const side of ["inmate", "relatives"]) {
    $(`mute-${side}`).addEventListener("click", (ev) => {
      const muted = ev.target.dataset.muted !== "1";
      act("mute", { side, muted }).then(() => {
        ev.target.dataset.muted = muted ? "1" : "";
        ev.target.textContent = t(MUTE_LABELS[side][muted ? 1 : 0]);
      });
    });
  }
  $("terminate-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!confirm(t("visits.monitor.terminate_confirm"))) return;
    act("terminate", {
      reason: $("terminate-reason").value,
      note: $("terminate-note").value.trim(),
      ban_months: Number($("terminate-ban").value),
    });
  });

  const socket = new CenterSocket({
    onState: (state) => { if (state === "auth_failed") location.href = "/login?next=/visits/monitor"; },
  });
  socket.subscribe("visits", {
    onSnapshot(snap) {
      page.visits = new Map(((snap && snap.visits) || []).map((v) => [v.id, v]));
      renderGrid();
    },
    onEvent(event) {
      const d = event.data || {};
      if (event.type !== "visit.state") return;
      if (d.state === "waiting" || d.state === "live") page.visits.set(d.id, d);
      else page.visits.delete(d.id);
      renderGrid();
      if (page.open && page.open.id === d.id) {
        showOpen(Object.assign({}, page.open, d));
        if (d.state === "ended") closeVisit();
      }
    },
  });
  socket.start();
  /* Each side's latest uplink grade (what it sends us) from the room's quality timeline. */
  async function quality() {
    if (!page.open || !page.rtc) return;
    const resp = await fetch(`/api/v1/rooms/${page.open.room_id}/quality`);
    if (!resp.ok) return;
    const latest = new Map();
    for (const q of (await resp.json()).samples) {
      if (q.direction === "uplink" && q.role !== "monitor") latest.set(q.participant, q.grade);
    }
    for (const badge of $("sides").querySelectorAll(".vs-badge")) {
      const grade = latest.get(badge.dataset.pid);
      if (!grade) continue;
      badge.dataset.grade = grade;
      badge.textContent = t("visits.grade." + grade);
    }
  }
  setInterval(() => { quality().catch(() => {}); }, 3000);

  /* Every card's two badges: each side's latest uplink grade (GET /api/v1/visits/{id}/quality). */
  async function gridQuality() {
    let changed = false;
    for (const v of [...page.visits.values()]) {
      if (!v.room_id) continue;
      const resp = await fetch(`/api/v1/visits/${v.id}/quality`);
      if (!resp.ok) continue;
      const q = await resp.json();
      const old = page.grades.get(v.id) || {};
      if (old.relatives !== q.relatives || old.inmate !== q.inmate) changed = true;
      page.grades.set(v.id, { relatives: q.relatives, inmate: q.inmate });
    }
    for (const id of [...page.grades.keys()]) if (!page.visits.has(id)) page.grades.delete(id);
    if (changed) renderGrid();
  }
  setInterval(() => { gridQuality().catch(() => {}); }, 5000);

  setInterval(() => {
    for (const el of $("sides").querySelectorAll("video")) {
      page.frames[el.dataset.pid] = el.getVideoPlaybackQuality ? el.getVideoPlaybackQuality().totalVideoFrames : 0;
    }
  }, 500);
})();
