/*
 * The officer's view of a spot-check (/spotcheck?id=N, or ?subject=ID[&alarm=ID] to start
 * one): the subject's live video, snapshot and challenge buttons, the answer location with
 * its distance from home, the result form and the record. Works on a laptop and a phone.
 * State for tests: window.spotPage = {spotcheck, remoteFrames}.
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const page = { spotcheck: null, remoteFrames: 0 };
  window.spotPage = page;
  const REASONS = ["face_mismatch", "challenge_failed", "not_at_home", "location_refused", "video_refused", "other"];
  const FINAL = ["passed", "failed", "unreachable", "cancelled"];
  let rtc = null;
  let camera = null;
  let socket = null;

  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const fmt = (iso) => (iso ? new Date(iso).toLocaleString(document.documentElement.lang) : "");

  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  async function api(path, opts) {
    const o = opts || {};
    const resp = await fetch(path, {
      method: o.method || "GET",
      headers: o.body ? { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf_token } : {},
      body: o.body ? JSON.stringify(o.body) : undefined,
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw (data && data.error) || { code: "server", message: String(resp.status) };
    return data;
  }

  const act = (action, body) =>
    api(`/api/v1/spotchecks/${page.spotcheck.id}/${action}`, { method: "POST", body: body || {} })
      .then(render)
      .catch((err) => problem(t("spot.error", { message: err.message || err.code })));

  function render(sc) {
    page.spotcheck = sc;
    $("sc-id").textContent = `#${sc.id} · ${sc.subject_name || sc.subject_id}`;
    const status = $("status");
    status.dataset.state = sc.state;
    status.textContent = t("spot.state." + sc.state) + (sc.attempt > 1 ? " · " + t("spot.attempt", { n: sc.attempt }) : "");
    const live = sc.state === "live";
    $("tools").hidden = FINAL.includes(sc.state);
    for (const id of ["snap", "chal-digits", "chal-gesture"]) $(id).disabled = !live;
    $("result-form").hidden = !live;
    $("chal-now").textContent = sc.challenge ? t("spot.challenge.now", { prompt: sc.challenge.prompt }) : "";
    renderLiveness(sc.liveness);
    renderWhere(sc);
    $("snapshots").innerHTML = (sc.snapshots || []).map((s) =>
      `<li data-sha256="${esc(s.data.sha256)}"><a href="${esc(s.data.url)}" target="_blank"><img src="${esc(s.data.url)}" alt=""></a>` +
      `<code>SHA-256 ${esc(s.data.sha256)}</code>${s.data.challenge_item ? " · " + esc(t("spot.during_challenge")) : ""}${faceLine(s.data.face)}</li>`).join("");
    $("log").innerHTML = (sc.items || []).map((i) =>
      `<li data-type="${esc(i.type)}">${esc(fmt(i.at))} <b>${esc(t("spot.item." + i.type))}</b> ${esc(i.data.prompt || i.data.result || i.data.sha256 || "")} <span class="who">${esc(i.actor)}</span></li>`).join("");
    if (FINAL.includes(sc.state)) hangUp();
  }

  /* The server's automatic verdict of the latest head-turn or blink challenge, beside the
     video; the officer still decides (the hint says so). */
  function renderLiveness(entry) {
    const box = $("liveness");
    const v = entry && entry.liveness;
    box.hidden = !v;
    box.dataset.verdict = v ? v.verdict : "";
    if (!v) return;
    const kind = ["turn_left", "turn_right", "blink", "digits", "gesture"].includes(v.challenge) ? v.challenge : "gesture";
    const reason = (v.evidence && v.evidence.reason) || "";
    box.title = reason;
    box.textContent = t("spot.liveness", {
      challenge: t("spot.liveness.challenge." + kind),
      verdict: t("spot.liveness.verdict." + v.verdict),
    }) + " · " + t("spot.liveness.hint");
  }

  /* The server's face check of a snapshot: the outcome and its distance, beside the photo. */
  function faceLine(face) {
    if (!face) return "";
    const distance = face.distance != null ? " · " + t("spot.face.distance", { d: face.distance.toFixed(2) }) : "";
    return ` <span class="face" data-outcome="${esc(face.outcome)}" data-distance="${esc(face.distance ?? "")}">` +
      `${esc(t("spot.face", { outcome: t("spot.face." + face.outcome) }) + distance)}</span>`;
  }

  function renderWhere(sc) {
    const rows = [];
    const a = sc.answer_location;
    if (a) rows.push([t("spot.where.answer"), `${a.lat.toFixed(5)}, ${a.lon.toFixed(5)}` + (a.accuracy_m != null ? ` ±${Math.round(a.accuracy_m)} m` : "")]);
    if (sc.distance_m != null) rows.push([t("spot.where.distance"), t("spot.where.metres", { m: Math.round(sc.distance_m) })]);
    if (sc.answered_at && !a) rows.push([t("spot.where.answer"), t("spot.where.none")]);
    $("where").innerHTML = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
    if (sc.home && (a || (track && track.fixes.length))) drawMap(sc.home, a, track);
  }

  /* The subject's recent track (location fixes, check-ins, earlier answers), loaded once. */
  let track = null;
  function loadTrack(sc) {
    api(`/api/v1/subjects/${encodeURIComponent(sc.subject_id)}/track?hours=72`)
      .then((got) => { track = got; renderWhere(page.spotcheck || sc); })
      .catch(() => {});
  }

  /* The answer location and home on the offline city map (the console's and wall's). */
  let chart = null, mapReady = null;
  function drawMap(home, answer, trk) {
    const box = $("map");
    if (!window.echarts) return;
    box.hidden = false;
    mapReady = mapReady || fetch("/static/vendor/shenzhen-geojson/shenzhen.geojson")
      .then((r) => r.json()).then((g) => echarts.registerMap("shenzhen", g));
    mapReady.then(() => {
      chart = chart || echarts.init(box);
      const focus = answer || home;
      const fixes = ((trk && trk.fixes) || []).map((f) => [f.lon, f.lat]);
      const marks = ((trk && trk.marks) || []).map((m) => ({ value: [m.lon, m.lat], name: t("spot.track." + m.kind) }));
      const seen = answer ? [{ value: [answer.lon, answer.lat], name: t("spot.where.answer") }] : [];
      chart.setOption({
        geo: { map: "shenzhen", roam: true, center: [focus.lon, focus.lat], zoom: 4,
          itemStyle: { areaColor: "#1e293b", borderColor: "#475569" }, label: { show: false } },
        series: [
          { type: "scatter", coordinateSystem: "geo", symbolSize: 10, itemStyle: { color: "#60a5fa" },
            data: [{ value: [home.lon, home.lat], name: t("spot.where.home") }],
            label: { show: true, formatter: "{b}", position: "right", color: "#93c5fd" } },
          { type: "lines", coordinateSystem: "geo", polyline: true, lineStyle: { color: "#a78bfa", width: 2, opacity: 0.8 },
            data: fixes.length > 1 ? [{ coords: fixes }] : [] },
          { type: "scatter", coordinateSystem: "geo", symbolSize: 7, symbol: "diamond", itemStyle: { color: "#34d399" }, data: marks },
          { type: "scatter", coordinateSystem: "geo", symbolSize: 12, itemStyle: { color: "#f87171" }, data: seen,
            label: { show: true, formatter: "{b}", position: "right", color: "#fca5a5" } },
          { type: "lines", coordinateSystem: "geo", lineStyle: { color: "#fbbf24", type: "dashed", width: 1 },
            data: answer ? [{ coords: [[home.lon, home.lat], [answer.lon, answer.lat]] }] : [] },
        ],
      }, true);
    }).catch(() => { box.hidden = true; });
  }

  async function joinCall(sc) {
    try {
      camera = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: true });
      $("local").srcObject = camera;
    } catch (err) {
      problem(t("spot.problem.camera"));
      camera = null;
    }
    rtc = new RtcClient({
      onTracks: (streams) => {
        for (const [pid, stream] of streams) {
          if (pid !== rtc.participant && $("remote").srcObject !== stream) $("remote").srcObject = stream;
        }
      },
    });
    await rtc.connect();
    await rtc.join(sc.room_id);
    if (camera) rtc.addStream(camera);
    else rtc.addReceivers(1);
    await rtc.negotiate();
    $("call").hidden = false;
  }

  function hangUp() {
    if (rtc) { const r = rtc; rtc = null; r.leave().catch(() => {}).finally(() => r.close()); }
    if (camera) camera.getTracks().forEach((tr) => tr.stop());
    camera = null;
  }

  function follow(id) {
    socket = new CenterSocket({});
    socket.subscribe("spotchecks", {
      onSnapshot() { api(`/api/v1/spotchecks/${id}`).then(render).catch(() => {}); },
      onEvent(event) {
        if (event.data && event.data.id === id) api(`/api/v1/spotchecks/${id}`).then(render).catch(() => {});
      },
    });
    socket.start();
  }

  async function open(id) {
    const sc = await api(`/api/v1/spotchecks/${id}`);
    render(sc);
    loadTrack(sc);
    follow(id);
    if (!FINAL.includes(sc.state)) await joinCall(sc).catch((err) => problem(t("spot.error", { message: err.message || err.code })));
  }

  $("reason").innerHTML = REASONS.map((r) => `<option value="${r}">${esc(t("spot.reason." + r))}</option>`).join("");
  $("snap").addEventListener("click", () => act("snapshot"));
  $("chal-digits").addEventListener("click", () => act("challenge", { kind: "digits" }));
  $("chal-gesture").addEventListener("click", () => act("challenge", { kind: "gesture" }));
  $("cancel").addEventListener("click", () => act("cancel"));
  $("result-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const result = document.querySelector("input[name=result]:checked").value;
    const body = { result, note: $("note").value };
    if (result === "failed") {
      body.reason = $("reason").value;
      if ($("raise").checked) body.alarm_kind = "face_mismatch";
    }
    act("result", body);
  });
  $("start-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { subject_id: $("start-subject").value.trim() };
    if ($("start-alarm").value) body.alarm_id = Number($("start-alarm").value);
    try {
      const sc = await api("/api/v1/spotchecks", { method: "POST", body });
      history.replaceState(null, "", `/spotcheck?id=${sc.id}`);
      $("start-form").hidden = true;
      $("due").hidden = true;
      await open(sc.id);
    } catch (err) {
      problem(t("spot.error", { message: err.message || err.code }));
    }
  });
  setInterval(() => {
    const v = $("remote");
    page.remoteFrames = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  }, 500);

  /* The random campaign's list for today: who is due when, which are done. */
  async function showDue() {
    let day;
    try { day = await api("/api/v1/spotchecks/campaign"); } catch (err) { return; }
    if (!day.due) return;
    $("due").hidden = false;
    $("due-progress").textContent = t("spot.campaign.progress", { done: day.done, due: day.due });
    $("due-list").innerHTML = day.offices.map((o) => o.items.map((i) =>
      `<li data-done="${i.done ? 1 : 0}"><span>${esc(new Date(i.due_at).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" }))}</span> ` +
      `${esc(i.subject_name)} <small>${esc(o.street_name)} · ${esc(t("supervision." + i.level))}</small> ` +
      (i.spotcheck_id ? `<a href="/spotcheck?id=${i.spotcheck_id}">${esc(t("spot.state." + i.state))}</a>`
        : `<button type="button" class="sp-btn" data-subject="${esc(i.subject_id)}">${esc(t("spot.start"))}</button>`) +
      "</li>").join("")).join("");
  }
  $("due-list").addEventListener("click", (ev) => {
    const subject = ev.target && ev.target.dataset && ev.target.dataset.subject;
    if (!subject) return;
    $("start-subject").value = subject;
    $("start-alarm").value = "";
    $("start-form").requestSubmit();
  });
  $("print").addEventListener("click", () => window.print());

  const id = Number(params.get("id"));
  if (id > 0) open(id).catch((err) => problem(t("spot.error", { message: err.message || err.code })));
  else {
    $("start-form").hidden = false;
    $("start-subject").value = params.get("subject") || "";
    $("start-alarm").value = params.get("alarm") || "";
    showDue();
  }
})();
