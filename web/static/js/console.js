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
  const fmt = window.fmtDateTime, fmtTime = window.fmtTime;  // center time (see i18n.js)
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const names = {};
  BOOT.districts.forEach((d) => (names[d.id] = d.name));
  BOOT.streets.forEach((s) => (names[s.id] = s.name));

  const state = {
    csrf: "", alarms: new Map(), rows: [], selected: null, checked: new Set(),
    muted: localStorage.getItem("console.muted") === "1", signedOn: false,
    filters: { state: "", kind: "", district: "", street: "", level: "" }, detail: null,
    // The open action form belongs to one alarm and one action: {alarmId, action, label}.
    form: null, pressed: false, resortPending: false,
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
    if (!resp.ok) { const err = new Error((body.error && body.error.message) || resp.statusText); err.status = resp.status; err.code = body.error && body.error.code; err.details = body.error && body.error.details; throw err; }
    return body;
  }

  // A short confirmation goes by itself; a message with content (a handover note) stays until
  // the officer closes it.
  function toast(msg, sticky) {
    const el = $("toast");
    $("toast-text").textContent = msg; el.hidden = false;
    el.classList.toggle("sticky", !!sticky);
    $("toast-close").hidden = !sticky;
    clearTimeout(toast._t);
    if (!sticky) toast._t = setTimeout(() => (el.hidden = true), 4000);
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

  // While a click or a text selection is held in the queue the order stays put (rows update
  // in place); the deferred resort runs when it is released.
  function held() {
    if (state.pressed) return true;
    const sel = window.getSelection && window.getSelection();
    return !!(sel && !sel.isCollapsed && sel.anchorNode && $("queue").contains(sel.anchorNode));
  }

  function resort() {
    if (held()) { state.resortPending = true; render(); return; }
    state.resortPending = false;
    state.rows = Array.from(state.alarms.values()).filter(matches).sort((x, y) =>
      (SEV_RANK[x.severity] ?? 9) - (SEV_RANK[y.severity] ?? 9) ||
      String(x.created_at).localeCompare(String(y.created_at)) || x.id - y.id);
    $("q-spacer").style.height = state.rows.length * ROW_H + "px";
    // A resolved alarm is disposed (not open, as on the dashboard): listed, awaiting close.
    $("count").textContent = t("console.open_count", {
      n: state.rows.filter((a) => a.state !== "resolved").length,
    });
    $("select-matching").textContent = t("console.select_matching", { n: state.rows.length });
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
    // One format for every time limit, hours:minutes:seconds ("0:04:29", "23:59:12").
    const sec = Math.floor(ms / 1000), h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60;
    return [`${h}:${String(m).padStart(2, "0")}:${String(sec % 60).padStart(2, "0")}`, false];
  }

  // Only the rows in view exist in the DOM: 6,000 alarms stay 20-odd elements. Rows are keyed
  // by alarm id and updated in place (text, classes, the checkbox's state): a row under the
  // pointer is never replaced, so a click that began on it still lands on it.
  const rowEls = new Map();
  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
  function setHtml(el, html) { if (el._html !== html) { el._html = html; el.innerHTML = html; } }
  function makeRow(id) {
    const el = document.createElement("div");
    el.className = "q-row"; el.setAttribute("role", "option"); el.dataset.id = String(id);
    el.innerHTML = `<input type="checkbox" class="chk" aria-label="${esc(t("console.select_row"))}"><span class="sev"></span>` +
      `<span class="kind"></span><span class="subj"></span><span class="state"></span><span class="sla"></span><span class="raised"></span>`;
    return el;
  }
  function updateRow(el, a, i) {
    const top = i * ROW_H + "px";
    if (el.style.top !== top) el.style.top = top;
    el.classList.toggle("sel", a.id === state.selected);
    el.classList.toggle("mine", dispatchedToMe(a));
    const [chk, sev, kind, subj, st, slaEl, raised] = el.children;
    const want = state.checked.has(a.id);
    if (chk.checked !== want) chk.checked = want;
    const sevClass = "sev sev-" + a.severity;
    if (sev.className !== sevClass) sev.className = sevClass;
    setText(sev, t("severity." + a.severity));
    setText(kind, t("kind." + a.kind));
    setHtml(subj, `${esc(a.subject_name || a.subject_id)} <span class="where">${esc(names[a.street_id] || "")}</span>` +
      (a.escalations ? ` <span class="esc">${esc(t("console.escalated_to", { level: t("level." + a.owner_level) }))}</span>` : "") +
      (a.loop_breached ? ` <span class="breach">${esc(t("console.breached"))}</span>` : ""));
    subj.title = subj.textContent;
    if (st.dataset.state !== a.state) st.dataset.state = a.state;
    setText(st, t("state." + a.state));
    const [sla, over] = slaText(a);
    setText(slaEl, sla);
    slaEl.classList.toggle("over", over);
    setText(raised, fmtTime(a.created_at));
  }
  /** Dispatched down to my level: what a street (or district) officer must do first. */
  function dispatchedToMe(a) {
    return a.state === "dispatched" && ME.jurisdiction.level !== "city" && a.owner_level === ME.jurisdiction.level;
  }
  function render() {
    const vp = $("queue"), spacer = $("q-spacer");
    const first = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - 5);
    const last = Math.min(state.rows.length, Math.ceil((vp.scrollTop + vp.clientHeight) / ROW_H) + 5);
    const keep = new Set();
    for (let i = first; i < last; i++) {
      const a = state.rows[i];
      keep.add(a.id);
      let el = rowEls.get(a.id);
      if (!el) { el = makeRow(a.id); rowEls.set(a.id, el); spacer.appendChild(el); }
      updateRow(el, a, i);
    }
    for (const [id, el] of rowEls) if (!keep.has(id)) { el.remove(); rowEls.delete(id); }
    const nChecked = state.checked.size;
    $("bulk-ack").disabled = $("bulk-dispatch").disabled = nChecked === 0;
    $("checked-count").textContent = nChecked ? t("console.checked_count", { n: nChecked }) : "";
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
  let ws = null, wsId = 0, alarmsSub = null, since = null, retry = 500, leaving = false;
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
        if (!msg.success) {
          if (what === "auth") { location.href = "/login?next=/console"; return; }
          console.warn("ws", what, msg.error); return;
        }
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
        else if (e.type === "duty.staffing") { if (ME.jurisdiction.level === "city") showStaffing(e.data); }
      }
    };
    ws.onclose = (ev) => {
      // 4001: this login was revoked (disabled user, reset password, logout elsewhere)
      // (not while this page logs out itself: its own logout ends the session too)
      if (leaving) return;
      if (ev.code === 4001) { location.href = "/login?next=/console"; return; }
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
    state.signedOn = (s.officers || []).includes(ME.user.username) || state.signedOn && ME.jurisdiction.level !== "city";
    if (ME.jurisdiction.level === "city") {
      el.classList.toggle("warn", !!s.warning);
      el.textContent = s.warning ? t("console.staffing_warning", { on: s.on_duty, min: s.minimum }) : t("console.staffing_ok", { on: s.on_duty });
    } else {
      // A street or district officer sees their own duty state, not the city's staffing.
      el.classList.toggle("warn", !state.signedOn);
      el.textContent = t(state.signedOn ? "console.me_on_duty" : "console.me_off_duty");
    }
    $("sign-toggle").textContent = state.signedOn ? t("console.sign_off") : t("console.sign_on");
  }

  async function loadOwnDuty() {
    try {
      const r = await api("/api/v1/duty/on-duty");
      state.signedOn = (r.items || []).some((x) => x.username === ME.user.username && !x.signed_off_at);
      showStaffing(r.staffing || {});
    } catch (err) { /* the staffing badge stays as the websocket reports it */ }
  }

  /** The sign-off dialog: a required handover note; resolves to "signoff", "stay" or "". */
  function askSignOff(loggingOut) {
    return new Promise((resolve) => {
      const dlg = $("signoff");
      $("signoff-title").textContent = t(loggingOut ? "console.logout_signoff_q" : "console.sign_off");
      $("signoff-ok").textContent = t(loggingOut ? "console.signoff_and_logout" : "console.sign_off");
      $("signoff-stay").hidden = !loggingOut;
      $("signoff-error").hidden = true;
      $("signoff-note").value = "";
      dlg.returnValue = "";
      dlg.onclose = () => resolve(dlg.returnValue);
      dlg.showModal();
      $("signoff-note").focus();
    });
  }

  async function signOff(note) {
    await api("/api/v1/duty/sign-off", { method: "POST", json: { handover_note: note } });
    state.signedOn = false;
  }

  async function toggleSign() {
    try {
      if (state.signedOn) {
        if ((await askSignOff(false)) !== "signoff") return;
        await signOff($("signoff-note").value.trim());
      } else {
        const r = await api("/api/v1/duty/sign-on", { method: "POST", json: {} });
        state.signedOn = true;
        if (r.handovers && r.handovers.length) toast(t("console.handover_from", { who: r.handovers[0].username, note: r.handovers[0].handover_note }), true);
      }
      $("sign-toggle").textContent = state.signedOn ? t("console.sign_off") : t("console.sign_on");
      if (ME.jurisdiction.level === "city") showStaffing(await api("/api/v1/duty/staffing"));
      else showStaffing({});
    } catch (err) { toast(t("console.error", { msg: reason(err) })); }
  }

  // Wall pairing (duty officers, administrators): the unpaired wall sends people here.
  async function createPairingCode() {
    try {
      const name = $("pair-name").value.trim() || t("console.pair_default_name");
      const r = await api("/api/v1/wall/pairing-codes", { method: "POST", json: { name } });
      $("pair-result").hidden = false;
      $("pair-result").innerHTML = `${esc(t("console.pair_code"))} <b id="pair-code">${esc(r.code)}</b><br>` +
        esc(t("console.pair_how", { url: location.origin + "/wall?code=" + r.code, time: fmt(r.expires_at) }));
    } catch (err) { $("pair-result").hidden = false; $("pair-result").textContent = t("console.error", { msg: reason(err) }); }
  }

  async function logout() {
    if (state.signedOn) {
      const choice = await askSignOff(true);
      if (!choice) return;
      if (choice === "signoff") {
        try { await signOff($("signoff-note").value.trim()); } catch (err) { toast(t("console.error", { msg: reason(err) })); return; }
      }
    }
    leaving = true;
    await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
    location.href = "/login?signed_out=1";
  }

  // ---- detail -------------------------------------------------------------------------
  async function select(id, open) {
    if (state.form && state.form.alarmId !== id) closeForm();
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
    if (state.form && (state.form.alarmId !== wf.id || !wf.actions.includes(state.form.action))) closeForm();
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
    const sent = [...wf.timeline].reverse().find((e) => e.type === "dispatched");
    $("d-instruction").hidden = !(dispatchedToMe(wf) && sent);
    if (sent) $("d-instruction").textContent = t("console.instruction", { who: actorName(sent.actor, sent.actor_name), time: fmt(sent.at), note: sent.note || "—" });
    $("d-why").textContent = whyNoActions(wf);
    $("d-why").hidden = !$("d-why").textContent;
    renderTimeline(wf.timeline);
    $("d-evidence").innerHTML = (wf.evidence || []).map((e) =>
      `<li><a href="${esc(e.url)}" target="_blank">${esc(e.filename)}</a> ${esc(e.content_type)} · ${esc(e.size)} B · SHA-256 ${esc(e.sha256.slice(0, 16))}… · ${esc(e.uploaded_by)}</li>`).join("");
    $("d-checkins").innerHTML = (full.checkins || []).map((c) =>
      `<li class="${c.late ? "late" : ""}">${esc(fmt(c.at))} ${esc(t("source." + c.source))}${c.late ? " " + esc(t("console.late")) : ""}</li>`).join("") || `<li class="none">${esc(t("console.no_checkins"))}</li>`;
    loadProfile(wf.subject_id);
    drawMap(full.locations || []);
  }


  /** "system:escalation" is the system, "user:duty1" the officer (by name when the server gives actor_name). */
  function actorName(actor, name) {
    const [kind, who] = String(actor || "").split(/:(.*)/s);
    if (kind === "system") return t("console.actor_system");
    if (kind === "user") return name || who;
    if (kind === "api_key" || kind === "device") return t("console.actor_integration");
    return name || actor;
  }

  function renderTimeline(items) {
    $("d-timeline").innerHTML = items.map((e) => {
      let extra = "";
      if (e.data && e.data.disposition) extra += " · " + t("disposition." + e.data.disposition);
      if (e.type === "escalated" && e.data) extra += " → " + t("level." + e.data.to_level);
      if (e.type === "evidence" && e.data) extra += " · " + (e.data.filename || "") + " " + String(e.data.sha256 || "").slice(0, 12);
      return `<li data-type="${esc(e.type)}"><b>${esc(t("event." + e.type))}</b>${esc(extra)} <span class="who">${esc(fmt(e.at))} ${esc(actorName(e.actor, e.actor_name))}</span>${e.note ? "<div>" + esc(e.note) + "</div>" : ""}</li>`;
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
      if (dds[3]) dds[3].innerHTML = s.phone ? `<a href="tel:${esc(String(s.phone).replace(/[^\d+]/g, ""))}">${esc(s.phone)}</a>` : "";
      const btn = $("d-reveal");
      if (btn) btn.replaceWith(Object.assign(document.createElement("span"), { id: "d-id-number", textContent: s.id_number }));
    } catch (err) { console.warn("reveal", err); }
  }

  let chart = null, mapReady = null;
  function drawMap(points) {
    $("d-map-empty").hidden = points.length > 0;
    $("d-map-empty").textContent = t("console.no_fix");
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
  function alarmLabel(a) { return `#${a.id} ${t("kind." + a.kind)} · ${a.subject_name || a.subject_id}`; }

  /** Why the officer sees few or no buttons: who owns the alarm now, or a read-only role. */
  function whyNoActions(wf) {
    if (!["duty", "district", "street"].includes(ME.role)) return t("console.read_only_role");
    const acting = wf.actions.filter((a) => a !== "note");
    if (acting.length) return "";
    if (wf.state === "resolved" || !OPEN.includes(wf.state)) return "";
    const mine = ME.jurisdiction.level;
    const parts = [t("console.owned_by", { level: t("level." + wf.owner_level) })];
    if (wf.owner_level !== mine) parts.push(t("console.not_your_level", { level: t("level." + mine) }));
    const due = dueOf(wf);
    if (due && wf.owner_level !== "city") parts.push(t("console.escalates_at", { time: fmt(due) }));
    return parts.join(" ");
  }

  function closeForm() {
    state.form = null;
    $("d-form").hidden = true;
    $("d-note").value = "";
    $("d-form-error").hidden = true;
    $("d-disposition").value = "";
  }

  function beginAction(action) {
    const wf = state.detail;
    if (!wf) return;
    if (!wf.actions.includes(action)) {
      toast(t("console.action_not_available", { action: t("action." + action), state: t("state." + wf.state) }));
      return;
    }
    const needsNote = ["report", "resolve", "reopen", "note"].includes(action);
    if (!needsNote && action !== "dispatch") { closeForm(); return doAction(wf.id, action, ""); }
    state.form = { alarmId: wf.id, action, label: alarmLabel(wf) };
    $("d-form").hidden = false;
    $("d-form-error").hidden = true;
    $("d-form-title").textContent = t("console.form_for", { action: t("action." + action), alarm: state.form.label });
    $("d-disposition").hidden = action !== "resolve";
    $("d-disposition").required = action === "resolve";
    $("t-disposition").hidden = action !== "resolve";
    $("d-note").required = needsNote;
    $("t-note").textContent = t(needsNote ? "console.note_required" : "console.note_optional");
    $("d-submit").textContent = t("console.confirm_action", { action: t("action." + action), id: wf.id });
    $("d-note").focus();
  }

  function formError(msg) { $("d-form-error").textContent = msg; $("d-form-error").hidden = false; }

  /** A dialog (not confirm()) that resolves to true when the officer confirms. */
  function ask(text, okLabel) {
    return new Promise((resolve) => {
      const dlg = $("confirm");
      $("confirm-text").textContent = text;
      $("confirm-ok").textContent = okLabel;
      $("confirm-cancel").textContent = t("console.cancel");
      dlg.onclose = () => resolve(dlg.returnValue === "ok");
      dlg.returnValue = "";
      dlg.showModal();
    });
  }

  async function submitForm() {
    const form = state.form, wf = state.detail;
    if (!form) return;
    const note = $("d-note").value.trim();
    const disp = form.action === "resolve" ? $("d-disposition").value : undefined;
    if (form.action === "resolve" && !disp) { formError(t("console.need_disposition")); $("d-disposition").focus(); return; }
    if ($("d-note").required && !note) { formError(t("console.need_note")); $("d-note").focus(); return; }
    // A form opened for another alarm than the one shown acts only after a confirmation.
    if (!wf || wf.id !== form.alarmId) {
      const ok = await ask(t("console.confirm_other", { action: t("action." + form.action), alarm: form.label }), t("action." + form.action));
      if (!ok) return;
    }
    doAction(form.alarmId, form.action, note, disp);
  }

  /** The server's error in the page's language: its code (and details) mapped to a sentence. */
  function reason(err) {
    const code = err && err.code, d = (err && err.details) || {};
    if (code === "conflict") return t("console.why.conflict");
    if (code === "invalid_transition") return t("console.why.state", { state: t("state." + (d.state || "")) });
    if (code === "forbidden" && d.owner_level) return t("console.why.owner", { level: t("level." + d.owner_level) });
    if (code === "forbidden") return t("console.why.forbidden");
    if (code === "not_found") return t("console.why.not_found");
    if (code === "validation_failed" && d.field === "disposition") return t("console.need_disposition");
    if (code === "validation_failed" && d.field === "note") return t("console.need_note");
    return t("console.why.other");
  }

  async function doAction(alarmId, action, note, disposition) {
    const cur = state.detail && state.detail.id === alarmId ? state.detail : state.alarms.get(alarmId);
    if (!cur) return;
    const body = { action, version: cur.version };
    if (note) body.note = note;
    if (disposition) body.disposition = disposition;
    try {
      const updated = await api(`/api/v1/alarms/${alarmId}/actions`, { method: "POST", json: body });
      upsert(updated); scheduleResort();
      closeForm();
      toast(t("console.done_on", { action: t("action." + action), alarm: alarmLabel(updated) }));
      if (state.selected === alarmId) await loadDetail(alarmId);
    } catch (err) {
      if (err.code === "conflict") { closeForm(); toast(t("console.conflict")); if (state.selected === alarmId) await loadDetail(alarmId); }
      else if (state.form) formError(t("console.error", { msg: reason(err) }));
      else toast(t("console.error", { msg: reason(err) }));
    }
  }

  // One result line per failed alarm, with its reason; the failed ones stay selected.
  async function bulk(action) {
    const items = Array.from(state.checked).map((id) => state.alarms.get(id)).filter(Boolean).map((a) => ({ id: a.id, version: a.version }));
    if (!items.length) return;
    try {
      const r = await api("/api/v1/alarms/actions", { method: "POST", json: { action, items } });
      const failed = [];
      r.results.forEach((x) => {
        if (x.ok) { upsert(x.alarm); state.checked.delete(x.alarm.id); return; }
        const a = state.alarms.get(x.id);
        failed.push({ id: x.id, label: a ? alarmLabel(a) : "#" + x.id, why: reason(x.error || {}) });
      });
      showBulkResult(action, r.ok, items.length, failed);
      $("check-all").checked = false;
      scheduleResort();
    } catch (err) { toast(t("console.error", { msg: reason(err) })); }
  }

  function showBulkResult(action, ok, total, failed) {
    const box = $("bulk-result");
    box.hidden = false;
    $("bulk-summary").textContent = t("console.bulk_summary", { action: t("action." + action), ok, total, failed: failed.length });
    $("bulk-failures").innerHTML = failed.map((f) => `<li data-id="${esc(f.id)}">${esc(f.label)}：${esc(f.why)}</li>`).join("");
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
    const head = { "c-sev": "console.severity", "c-kind": "console.kind", "c-subj": "console.subject", "c-state": "console.state", "c-sla": "console.sla", "c-raised": "console.raised" };
    for (const cls in head) document.querySelector(".q-head ." + cls).textContent = t(head[cls]);
    $("select-matching").title = t("console.select_matching_hint");
    $("select-none").textContent = t("console.select_none");
    $("bulk-result-close").textContent = t("console.close");
    $("d-cancel").textContent = t("console.cancel");
    $("t-disposition").textContent = t("console.disposition_required");
    $("help-ok").textContent = t("console.ok");
    $("toast-close").textContent = t("console.close");
    $("pair-wall").hidden = !["duty", "admin"].includes(ME.role);
    $("pair-wall").textContent = t("console.pair_wall");
    $("pair-title").textContent = t("console.pair_wall");
    $("pair-label").textContent = t("console.pair_name");
    $("pair-create").textContent = t("console.pair_create");
    $("pair-close").textContent = t("console.close");
    $("signoff-label").textContent = t("console.handover_label");
    $("signoff-stay").textContent = t("console.logout_stay");
    $("signoff-cancel").textContent = t("console.cancel");
    $("d-close").setAttribute("aria-label", t("console.close"));
    fillSelect($("f-state"), t("console.state"), OPEN.map((s) => [s, t("state." + s)]));
    fillSelect($("f-kind"), t("console.kind"), BOOT.kinds.map((k) => [k, t("kind." + k)]));
    const lvl = ME.jurisdiction.level;
    const myPath = ME.jurisdiction.path || [];
    const districts = BOOT.districts.filter((d) => lvl === "city" || myPath.includes(d.id));
    fillSelect($("f-district"), t("console.district"), districts.map((d) => [d.id, d.name]));
    const streets = BOOT.streets.filter((s) => lvl === "city" || myPath.includes(s.district_id) || myPath.includes(s.id));
    fillSelect($("f-street"), t("console.street"), streets.map((s) => [s.id, s.name]));
    fillSelect($("f-level"), t("console.level"), ["street", "district", "city"].map((l) => [l, t("level." + l)]));
    $("d-disposition").innerHTML = `<option value="">${esc(t("console.choose_disposition"))}</option>` +
      BOOT.dispositions.map((d) => `<option value="${esc(d)}">${esc(t("disposition." + d))}</option>`).join("");
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
    $("select-matching").addEventListener("click", () => { state.rows.forEach((a) => state.checked.add(a.id)); render(); });
    $("select-none").addEventListener("click", () => { state.checked.clear(); $("check-all").checked = false; render(); });
    $("bulk-result-close").addEventListener("click", () => ($("bulk-result").hidden = true));
    // A press in the queue holds its order until released (see held()).
    $("queue").addEventListener("pointerdown", () => { state.pressed = true; });
    const release = () => { if (!state.pressed) return; state.pressed = false; if (state.resortPending) setTimeout(scheduleResort, 0); };
    window.addEventListener("pointerup", release);
    window.addEventListener("pointercancel", release);
    document.addEventListener("selectionchange", () => { if (state.resortPending && !held()) scheduleResort(); });
    $("bulk-ack").addEventListener("click", () => bulk("acknowledge"));
    $("bulk-dispatch").addEventListener("click", () => bulk("dispatch"));
    $("d-actions").addEventListener("click", (ev) => { const a = ev.target.dataset.action; if (a) beginAction(a); });
    $("d-form").addEventListener("submit", (ev) => { ev.preventDefault(); submitForm(); });
    $("d-cancel").addEventListener("click", closeForm);
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
    $("logout").addEventListener("click", logout);
    $("pair-wall").addEventListener("click", () => { $("pair-result").hidden = true; $("pair").showModal(); $("pair-name").focus(); });
    $("pair-create").addEventListener("click", createPairingCode);
    $("toast-close").addEventListener("click", () => ($("toast").hidden = true));
    $("signoff-form").addEventListener("submit", (ev) => {
      // Only the sign-off button needs the note; "stay on duty" and cancel close as they are.
      if (ev.submitter && ev.submitter.value === "signoff" && !$("signoff-note").value.trim()) {
        ev.preventDefault();
        $("signoff-error").textContent = t("console.need_handover"); $("signoff-error").hidden = false;
        $("signoff-note").focus();
      }
    });
    document.addEventListener("keydown", onKey);
    setInterval(() => { render(); if (state.detail) { const el = $("d-summary").querySelector(".sla"); if (el) { const [s, o] = slaText(state.detail); el.textContent = s; el.classList.toggle("over", o); } } }, 1000);
  }

  function closeDetail() {
    closeForm();
    state.detail = null; state.selected = null;
    $("detail").hidden = true; $("empty").hidden = false; render();
  }

  function onKey(ev) {
    if (document.querySelector("dialog[open]")) return;  // Esc closes the dialog, keys pause behind it
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
      case "Escape": if (state.form) closeForm(); else closeDetail(); break;
      default: return;
    }
    ev.preventDefault();
  }

  async function main() {
    setupStatic();
    setupEvents();
    const me = await api("/api/v1/me");
    state.csrf = me.csrf_token || "";
    if (ME.jurisdiction.level === "city") api("/api/v1/duty/staffing").then(showStaffing).catch(() => {});
    loadOwnDuty();
    await loadQueue();
    connect();
    document.body.dataset.ready = "1";
  }
  main().catch((err) => { console.error(err); toast(t("console.error", { msg: err.message })); });
})();
