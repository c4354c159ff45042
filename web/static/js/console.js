// Duty console: queue (virtualized), detail panel, actions, live updates over /ws.
"use strict";
(function () {
  const BOOT = window.CONSOLE;
  const ME = BOOT.me;
  const ROW_H = 44;
  const OPEN = ["new", "acknowledged", "dispatched", "verifying", "reopened", "resolved"];
  const SEV_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
  const t = window.t;
  const $ = (id) => document.getElementById(id);
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const names = {};
  BOOT.districts.forEach((d) => (names[d.id] = d.name));
  BOOT.streets.forEach((s) => (names[s.id] = s.name));

  const state = {
    csrf: "", alarms: new Map(), rows: [], selected: null, checked: new Set(),
    muted: localStorage.getItem("console.muted") === "1", signedOn: false,
    filters: { state: "", kind: "", district: "", street: "", level: "" }, detail: null, pending: null,
  };

  // ---- HTTP -------------------------------------------------------------------------
  async function api(path, opts) {
    opts = opts || {};
    const headers = Object.assign({}, opts.headers || {});
    if (opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = state.csrf;
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
    const resp = await fetch(path, { method: opts.method || "GET", headers, body: opts.body, credentials: "same-origin" });
    if (resp.status === 401) { location.href = "/login?next=/console"; throw new Error("unauthorized"); }
    const ctype = resp.headers.get("Content-Type") || "";
    const body = ctype.includes("json") ? await resp.json() : await resp.text();
    if (!resp.ok) { const err = new Error((body.error && body.error.message) || resp.statusText); err.status = resp.status; err.code = body.error && body.error.code; throw err; }
    return body;
  }

  function toast(msg) {
    const el = $("toast");
    el.textContent = msg; el.hidden = false;
    clearTimeout(toast._t); toast._t = setTimeout(() => (el.hidden = true), 4000);
  }

  // ---- the queue ----------------------------------------------------------------------
  function upsert(a) {
    const cur = state.alarms.get(a.id);
    if (cur && cur.version > a.version) return false;
    if (!OPEN.includes(a.state)) { state.alarms.delete(a.id); state.checked.delete(a.id); return true; }
    state.alarms.set(a.id, Object.assign(cur || {}, a));
    return true;
  }

  function matches(a) {
    const f = state.filters;
    return (!f.state || a.state === f.state) && (!f.kind || a.kind === f.kind) &&
      (!f.district || a.district_id === f.district) && (!f.street || a.street_id === f.street) &&
      (!f.level || a.owner_level === f.level);
  }

  function resort() {
    state.rows = Array.from(state.alarms.values()).filter(matches).sort((x, y) =>
      (SEV_RANK[x.severity] ?? 9) - (SEV_RANK[y.severity] ?? 9) ||
      String(x.created_at).localeCompare(String(y.created_at)) || x.id - y.id);
    $("q-spacer").style.height = state.rows.length * ROW_H + "px";
    // A resolved alarm is disposed (not open, as on the dashboard): listed, awaiting close.
    $("count").textContent = t("console.open_count", {
      n: state.rows.filter((a) => a.state !== "resolved").length,
    });
    render();
  }

  let renderQueued = false;
  function scheduleResort() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; resort(); });
  }

  function dueOf(a) {
    if (a.state === "new" || a.state === "reopened") return a.ack_due_at;
    if (a.state === "dispatched") return a.report_due_at;
    if (a.state === "resolved") return null;
    return a.loop_due_at;
  }

  function slaText(a) {
    const due = dueOf(a);
    if (!due) return ["", false];
    const ms = Date.parse(due) - Date.now();
    if (ms <= 0) return [t("console.overdue"), true];
    const m = Math.floor(ms / 60000), h = Math.floor(m / 60);
    return [h ? `${h}h${String(m % 60).padStart(2, "0")}m` : `${m}:${String(Math.floor(ms / 1000) % 60).padStart(2, "0")}`, false];
  }

  // Only the rows in view exist in the DOM: 6,000 alarms stay 20-odd elements.
  function render() {
    const vp = $("queue"), spacer = $("q-spacer");
    const first = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - 5);
    const last = Math.min(state.rows.length, Math.ceil((vp.scrollTop + vp.clientHeight) / ROW_H) + 5);
    const html = [];
    for (let i = first; i < last; i++) {
      const a = state.rows[i];
      const [sla, over] = slaText(a);
      html.push(`<div class="q-row${a.id === state.selected ? " sel" : ""}" role="option" data-id="${a.id}" style="top:${i * ROW_H}px">` +
        `<input type="checkbox" class="chk" ${state.checked.has(a.id) ? "checked" : ""} aria-label="select">` +
        `<span class="sev sev-${esc(a.severity)}">${esc(t("severity." + a.severity))}</span>` +
        `<span class="kind">${esc(t("kind." + a.kind))}</span>` +
        `<span class="subj">${esc(a.subject_name || a.subject_id)} <span class="where">${esc(names[a.street_id] || "")}</span>` +
        (a.escalations ? ` <span class="esc">${esc(t("console.escalated_to", { level: t("level." + a.owner_level) }))}</span>` : "") +
        (a.loop_breached ? ` <span class="breach">${esc(t("console.breached"))}</span>` : "") + `</span>` +
        `<span class="state" data-state="${esc(a.state)}">${esc(t("state." + a.state))}</span>` +
        `<span class="sla${over ? " over" : ""}">${esc(sla)}</span></div>`);
    }
    spacer.innerHTML = html.join("");
    const nChecked = state.checked.size;
    $("bulk-ack").disabled = $("bulk-dispatch").disabled = nChecked === 0;
  }

  async function loadQueue() {
    state.alarms.clear();
    for (let offset = 0; ; offset += 1000) {
      const page = await api(`/api/v1/alarms/queue?state=${OPEN.join(",")}&offset=${offset}&limit=1000`);
      page.items.forEach(upsert);
      if (offset === 0) resort();
      if (page.items.length < 1000) break;
    }
    resort();
  }

  // ---- live -------------------------------------------------------------------------
  let ws = null, wsId = 0, alarmsSub = null, since = null, retry = 500;
  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    ws = new WebSocket(url);
    const pending = new Map();
    const send = (msg) => { msg.id = ++wsId; ws.send(JSON.stringify(msg)); return msg.id; };
    ws.onopen = () => { pending.set(send({ type: "auth" }), "auth"); };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "result") {
        const what = pending.get(msg.id); pending.delete(msg.id);
        if (!msg.success) { console.warn("ws", what, msg.error); return; }
        if (what === "auth") {
          retry = 500;
          $("live").classList.remove("off");
          const sub = { type: "subscribe", topic: "alarms" };
          if (since) sub.since = since;
          alarmsSub = send(sub); pending.set(alarmsSub, "alarms");
          pending.set(send({ type: "subscribe", topic: "duty" }), "duty");
        } else if (what === "alarms") {
          since = { epoch: msg.result.epoch, seq: msg.result.seq };
          if (msg.result.recovered) (msg.result.events || []).forEach((e) => onAlarmEvent(e));
          else loadQueue().catch((e) => console.error(e));
        }
        return;
      }
      if (msg.type === "event") {
        const e = msg.event;
        if (msg.id === alarmsSub) { if (e.seq) since = { epoch: e.epoch || (since && since.epoch), seq: e.seq }; onAlarmEvent(e); }
        else if (e.type === "duty.staffing") showStaffing(e.data);
      }
    };
    ws.onclose = () => {
      $("live").classList.add("off");
      setTimeout(connect, retry); retry = Math.min(retry * 2, 10000);
    };
  }

  function onAlarmEvent(e) {
    const a = e.data;
    if (!a || a.id === undefined) return;
    if (e.type === "alarm.raised" && a.severity === "critical") beep();
    if (upsert(a)) scheduleResort();
    if (state.detail && state.detail.id === a.id && a.version > state.detail.version) loadDetail(a.id);
  }

  // ---- audible cue (WebAudio, no files) --------------------------------------------
  let audio = null;
  function beep() {
    if (state.muted) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const now = audio.currentTime;
      [0, 0.25].forEach((d) => {
        const osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = 880; gain.gain.setValueAtTime(0.2, now + d); gain.gain.exponentialRampToValueAtTime(0.001, now + d + 0.2);
        osc.connect(gain).connect(audio.destination); osc.start(now + d); osc.stop(now + d + 0.2);
      });
    } catch (err) { console.warn("audio", err); }
    toast(t("console.new_critical"));
  }
  function setMuted(m) {
    state.muted = m; localStorage.setItem("console.muted", m ? "1" : "0");
    $("mute").textContent = m ? t("console.unmute") : t("console.mute"); $("mute").setAttribute("aria-pressed", String(m));
  }

  // ---- staffing / shifts --------------------------------------------------------------
  function showStaffing(s) {
    const el = $("staffing");
    el.hidden = false;
    el.classList.toggle("warn", !!s.warning);
    el.textContent = s.warning ? t("console.staffing_warning", { on: s.on_duty, min: s.minimum }) : t("console.staffing_ok", { on: s.on_duty });
    state.signedOn = (s.officers || []).includes(ME.user.username) || state.signedOn && ME.jurisdiction.level !== "city";
    $("sign-toggle").textContent = state.signedOn ? t("console.sign_off") : t("console.sign_on");
  }
  async function toggleSign() {
    try {
      if (state.signedOn) {
        const note = prompt(t("console.handover_prompt"));
        if (!note) return;
        await api("/api/v1/duty/sign-off", { method: "POST", json: { handover_note: note } });
        state.signedOn = false;
      } else {
        const r = await api("/api/v1/duty/sign-on", { method: "POST", json: {} });
        state.signedOn = true;
        if (r.handovers && r.handovers.length) toast(r.handovers[0].username + "：" + r.handovers[0].handover_note);
      }
      $("sign-toggle").textContent = state.signedOn ? t("console.sign_off") : t("console.sign_on");
      showStaffing(await api("/api/v1/duty/staffing"));
    } catch (err) { toast(t("console.error", { msg: err.message })); }
  }

  // ---- detail -------------------------------------------------------------------------
  async function select(id, open) {
    state.selected = id;
    render();
    const idx = state.rows.findIndex((a) => a.id === id);
    const vp = $("queue");
    if (idx >= 0) {
      const top = idx * ROW_H;
      if (top < vp.scrollTop) vp.scrollTop = top;
      else if (top + ROW_H > vp.scrollTop + vp.clientHeight) vp.scrollTop = top + ROW_H - vp.clientHeight;
    }
    if (open !== false) await loadDetail(id);
  }

  async function loadDetail(id) {
    let wf, full;
    try {
      [wf, full] = await Promise.all([api(`/api/v1/alarms/${id}/workflow`), api(`/api/v1/alarms/${id}`).catch(() => ({}))]);
    } catch (err) { toast(t("console.error", { msg: err.message })); return; }
    if (state.selected !== id) return;
    state.detail = wf;
    upsert(wf); scheduleResort();
    $("detail").hidden = false; $("empty").hidden = true;
    $("d-title").textContent = `#${wf.id} ${t("kind." + wf.kind)} · ${wf.subject_name || wf.subject_id}`;
    const [sla, over] = slaText(wf);
    $("d-summary").innerHTML = `<span class="sev sev-${esc(wf.severity)}">${esc(t("severity." + wf.severity))}</span> ` +
      `<b id="d-state" data-state="${esc(wf.state)}">${esc(t("state." + wf.state))}</b> · ${esc(t("console.level"))}: ${esc(t("level." + wf.owner_level))}` +
      ` · ${esc(names[wf.district_id] || "")} ${esc(names[wf.street_id] || "")}` +
      (sla ? ` · ${esc(t("console.sla"))}: <span class="sla${over ? " over" : ""}">${esc(sla)}</span>` : "") +
      (wf.disposition ? ` · ${esc(t("console.disposition"))}: ${esc(t("disposition." + wf.disposition))}` : "") +
      (wf.loop_breached ? ` · <span class="breach">${esc(t("console.breached"))}</span>` : "");
    $("d-actions").innerHTML = wf.actions.map((a) => `<button type="button" data-action="${a}" id="act-${a}">${esc(t("action." + a))}</button>`).join("");
    $("d-form").hidden = true;
    renderTimeline(wf.timeline);
    $("d-evidence").innerHTML = (wf.evidence || []).map((e) =>
      `<li><a href="${esc(e.url)}" target="_blank">${esc(e.filename)}</a> ${esc(e.content_type)} · ${esc(e.size)} B · SHA-256 ${esc(e.sha256.slice(0, 16))}… · ${esc(e.uploaded_by)}</li>`).join("");
    $("d-checkins").innerHTML = (full.checkins || []).map((c) =>
      `<li class="${c.late ? "late" : ""}">${esc(fmt(c.at))} ${esc(c.source)}${c.late ? " ⚠" : ""}</li>`).join("") || "<li>—</li>";
    loadProfile(wf.subject_id);
    drawMap(full.locations || []);
  }

  function fmt(iso) { return iso ? new Date(iso).toLocaleString(document.documentElement.lang) : ""; }

  function renderTimeline(items) {
    $("d-timeline").innerHTML = items.map((e) => {
      let extra = "";
      if (e.data && e.data.disposition) extra += " · " + t("disposition." + e.data.disposition);
      if (e.type === "escalated" && e.data) extra += " → " + t("level." + e.data.to_level);
      if (e.type === "evidence" && e.data) extra += " · " + (e.data.filename || "") + " " + String(e.data.sha256 || "").slice(0, 12);
      return `<li data-type="${esc(e.type)}"><b>${esc(t("event." + e.type))}</b>${esc(extra)} <span class="who">${esc(fmt(e.at))} ${esc(e.actor)}</span>${e.note ? "<div>" + esc(e.note) + "</div>" : ""}</li>`;
    }).join("");
  }

  async function loadProfile(subjectId) {
    try {
      const s = await api(`/api/v1/subjects/${encodeURIComponent(subjectId)}`);
      $("d-profile").innerHTML = [["console.subject", s.name], ["console.supervision", t("supervision." + s.level)], ["console.street", names[s.street_id] || s.street_id], ["", s.phone]]
        .map(([k, v]) => `<dt>${esc(k ? t(k) : "☎")}</dt><dd>${esc(v)}</dd>`).join("")
        + `<dt></dt><dd><button type="button" id="d-reveal" title="${esc(t("console.reveal_hint"))}">${esc(t("console.reveal"))}</button></dd>`;
      $("d-reveal").onclick = () => revealProfile(subjectId);
    } catch (err) { $("d-profile").innerHTML = ""; }
  }

  // Numbers come masked; showing them in full is an audited request (who looked, at whom).
  async function revealProfile(subjectId) {
    try {
      const s = await api(`/api/v1/subjects/${encodeURIComponent(subjectId)}?reveal=phone,id_number`);
      const dds = $("d-profile").querySelectorAll("dd");
      if (dds[3]) dds[3].textContent = s.phone;
      const btn = $("d-reveal");
      if (btn) btn.replaceWith(Object.assign(document.createElement("span"), { id: "d-id-number", textContent: s.id_number }));
    } catch (err) { console.warn("reveal", err); }
  }

  let chart = null, mapReady = null;
  function drawMap(points) {
    if (!window.echarts) return;
    mapReady = mapReady || fetch("/static/vendor/shenzhen-geojson/shenzhen.geojson").then((r) => r.json()).then((g) => echarts.registerMap("shenzhen", g));
    mapReady.then(() => {
      chart = chart || echarts.init($("d-map"));
      chart.setOption({
        geo: { map: "shenzhen", roam: true, itemStyle: { areaColor: "#1e293b", borderColor: "#475569" }, label: { show: false } },
        series: [{ type: "scatter", coordinateSystem: "geo", symbolSize: 6, itemStyle: { color: "#f59e0b" },
          data: points.map((p) => ({ value: [p.lon, p.lat], name: p.at })) }],
      }, true);
    }).catch((err) => console.warn("map", err));
  }

  // ---- actions ------------------------------------------------------------------------
  function beginAction(action) {
    const wf = state.detail;
    if (!wf || !wf.actions.includes(action)) return;
    const needsNote = ["report", "resolve", "reopen", "note"].includes(action);
    if (!needsNote && action !== "dispatch") return doAction(action, "");
    state.pending = action;
    $("d-form").hidden = false;
    $("d-disposition").hidden = action !== "resolve";
    $("d-note").placeholder = t("console.note");
    $("d-submit").textContent = t("action." + action);
    $("d-note").focus();
  }

  async function doAction(action, note, disposition) {
    const wf = state.detail;
    const body = { action, version: wf.version };
    if (note) body.note = note;
    if (disposition) body.disposition = disposition;
    try {
      const updated = await api(`/api/v1/alarms/${wf.id}/actions`, { method: "POST", json: body });
      upsert(updated); scheduleResort();
      $("d-note").value = ""; $("d-form").hidden = true;
      toast(t("console.done"));
      await loadDetail(wf.id);
    } catch (err) {
      if (err.code === "conflict") { toast(t("console.conflict")); await loadDetail(wf.id); }
      else toast(t("console.error", { msg: err.message }));
    }
  }

  async function bulk(action) {
    const items = Array.from(state.checked).map((id) => state.alarms.get(id)).filter(Boolean).map((a) => ({ id: a.id, version: a.version }));
    if (!items.length) return;
    try {
      const r = await api("/api/v1/alarms/actions", { method: "POST", json: { action, items } });
      r.results.forEach((x) => { if (x.ok) upsert(x.alarm); });
      state.checked.clear(); $("check-all").checked = false;
      toast(`${t("action." + action)}: ${r.ok}/${items.length}`);
      scheduleResort();
    } catch (err) { toast(t("console.error", { msg: err.message })); }
  }

  // ---- wiring -------------------------------------------------------------------------
  function fillSelect(el, label, options) {
    el.innerHTML = `<option value="">${esc(label)}: ${esc(t("console.all"))}</option>` + options.map(([v, n]) => `<option value="${esc(v)}">${esc(n)}</option>`).join("");
  }

  function setupStatic() {
    document.title = t("console.title");
    const texts = { logout: "console.logout", "reports-link": "console.reports", "bulk-ack": "console.bulk_ack", "bulk-dispatch": "console.bulk_dispatch",
      "t-select-all": "console.select_all", "t-profile": "console.profile", "t-checkins": "console.checkins", "t-locations": "console.locations",
      "t-evidence": "console.evidence", "t-timeline": "console.timeline", "d-cancel": "console.cancel", "d-upload-btn": "console.upload", empty: "console.no_selection" };
    for (const id in texts) $(id).textContent = t(texts[id]);
    $("help-text").textContent = t("console.keys_help");
    $("scope-name").textContent = ME.jurisdiction.name;
    $("sign-toggle").textContent = t("console.sign_on");
    setMuted(state.muted);
    const head = document.querySelector(".q-head").children;
    ["", "console.severity", "console.kind", "console.subject", "console.state", "console.sla"].forEach((k, i) => { if (head[i - 1] && k) head[i - 1].textContent = t(k); });
    fillSelect($("f-state"), t("console.state"), OPEN.map((s) => [s, t("state." + s)]));
    fillSelect($("f-kind"), t("console.kind"), BOOT.kinds.map((k) => [k, t("kind." + k)]));
    const lvl = ME.jurisdiction.level;
    const myPath = ME.jurisdiction.path || [];
    const districts = BOOT.districts.filter((d) => lvl === "city" || myPath.includes(d.id));
    fillSelect($("f-district"), t("console.district"), districts.map((d) => [d.id, d.name]));
    const streets = BOOT.streets.filter((s) => lvl === "city" || myPath.includes(s.district_id) || myPath.includes(s.id));
    fillSelect($("f-street"), t("console.street"), streets.map((s) => [s.id, s.name]));
    fillSelect($("f-level"), t("console.level"), ["street", "district", "city"].map((l) => [l, t("level." + l)]));
    fillSelect($("d-disposition"), t("console.disposition"), BOOT.dispositions.map((d) => [d, t("disposition." + d)]));
    $("d-disposition").firstElementChild.value = "";
    if (lvl === "street") { $("f-district").hidden = true; $("f-street").hidden = true; }
  }

  function setupEvents() {
    $("filters").addEventListener("change", (ev) => { state.filters[ev.target.name] = ev.target.value; resort(); });
    $("queue").addEventListener("scroll", () => render());
    window.addEventListener("resize", () => render());
    $("queue").addEventListener("click", (ev) => {
      const row = ev.target.closest(".q-row");
      if (!row) return;
      const id = Number(row.dataset.id);
      if (ev.target.classList.contains("chk")) { ev.target.checked ? state.checked.add(id) : state.checked.delete(id); render(); return; }
      select(id);
    });
    $("check-all").addEventListener("change", (ev) => {
      const vp = $("queue");
      const first = Math.floor(vp.scrollTop / ROW_H), last = Math.ceil((vp.scrollTop + vp.clientHeight) / ROW_H);
      state.rows.slice(first, last).forEach((a) => (ev.target.checked ? state.checked.add(a.id) : state.checked.delete(a.id)));
      render();
    });
    $("bulk-ack").addEventListener("click", () => bulk("acknowledge"));
    $("bulk-dispatch").addEventListener("click", () => bulk("dispatch"));
    $("d-actions").addEventListener("click", (ev) => { const a = ev.target.dataset.action; if (a) beginAction(a); });
    $("d-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const disp = state.pending === "resolve" ? $("d-disposition").value : undefined;
      doAction(state.pending, $("d-note").value.trim(), disp);
    });
    $("d-cancel").addEventListener("click", () => ($("d-form").hidden = true));
    $("d-close").addEventListener("click", closeDetail);
    $("d-upload").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = $("d-file").files[0];
      if (!f || !state.detail) return;
      const form = new FormData(); form.append("file", f);
      try { await api(`/api/v1/alarms/${state.detail.id}/evidence`, { method: "POST", body: form }); $("d-file").value = ""; await loadDetail(state.detail.id); }
      catch (err) { toast(t("console.error", { msg: err.message })); }
    });
    $("mute").addEventListener("click", () => setMuted(!state.muted));
    $("help-btn").addEventListener("click", () => $("help").showModal());
    $("sign-toggle").addEventListener("click", toggleSign);
    $("logout").addEventListener("click", async () => { await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {}); location.href = "/login"; });
    document.addEventListener("keydown", onKey);
    setInterval(() => { render(); if (state.detail) { const el = $("d-summary").querySelector(".sla"); if (el) { const [s, o] = slaText(state.detail); el.textContent = s; el.classList.toggle("over", o); } } }, 1000);
  }

  function closeDetail() {
    state.detail = null; state.selected = null;
    $("detail").hidden = true; $("empty").hidden = false; render();
  }

  function onKey(ev) {
    const tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "input" || tag === "select") { if (ev.key === "Escape") ev.target.blur(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const idx = state.rows.findIndex((a) => a.id === state.selected);
    switch (ev.key) {
      case "j": if (state.rows.length) select(state.rows[Math.min(state.rows.length - 1, idx + 1)].id); break;
      case "k": if (state.rows.length) select(state.rows[Math.max(0, idx - 1)].id); break;
      case "a": beginAction("acknowledge"); break;
      case "d": beginAction("dispatch"); break;
      case "n": beginAction("note"); break;
      case "x": if (state.selected != null) { state.checked.has(state.selected) ? state.checked.delete(state.selected) : state.checked.add(state.selected); render(); } break;
      case "m": setMuted(!state.muted); break;
      case "/": $("f-state").focus(); break;
      case "?": $("help").showModal(); break;
      case "Escape": closeDetail(); break;
      default: return;
    }
    ev.preventDefault();
  }

  async function main() {
    setupStatic();
    setupEvents();
    const me = await api("/api/v1/me");
    state.csrf = me.csrf_token || "";
    api("/api/v1/duty/staffing").then(showStaffing).catch(() => {});
    await loadQueue();
    connect();
    document.body.dataset.ready = "1";
  }
  main().catch((err) => { console.error(err); toast(t("console.error", { msg: err.message })); });
})();
