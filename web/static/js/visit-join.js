/*
 * The relative's page (/join, /join/<token>): the 6-digit code (or the link's token) buys
 * a guest session (kept in sessionStorage: a code works once, a reload must not lose it),
 * then the camera and microphone preview with plain words when the browser refuses and the
 * echo-room network check (advice: what to fix; the relative may go on), then the waiting
 * room and the call (visit-call.js). Big buttons, few words: a grandmother's phone.
 * State for tests: window.joinPage = {step, join, net}.
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);
  const page = { step: "code", join: null };
  window.joinPage = page;
  let camera = null;
  const NET_LIMIT_MS = 15000;

  function step(name) {
    page.step = name;
    for (const id of ["step-code", "step-devices", "step-visit"]) $(id).hidden = id !== `step-${name}`;
    document.body.dataset.step = name;
  }

  function problem(id, text) {
    $(id).hidden = !text;
    $(id).textContent = text || "";
  }

  function codeProblem(status, err) {
    if (status === 429) return t("visits.join.too_many", { s: (err.details && err.details.retry_after_s) || 60 });
    const code = (err && err.code) || "";
    if (code === "code_used") return t("visits.join.used");
    if (code === "code_not_valid_now") {
      const d = err.details || {};
      if (d.state === "ended" || d.state === "cancelled") return t("visits.join.over");
      return t("visits.join.not_now", { from: d.valid_from ? window.fmtDateTime(d.valid_from) : "" });
    }
    if (status === 401 || status === 422) return t("visits.join.wrong");
    return t("visits.join.failed");
  }

  async function redeem(body) {
    const resp = await fetch("/api/v1/visits/join", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw { status: resp.status, err: (data && data.error) || {} };
    return data;
  }

  async function submitCode(ev) {
    if (ev) ev.preventDefault();
    const code = $("code").value.replace(/\D/g, "");
    if (code.length !== 6) return problem("code-problem", t("visits.join.six"));
    problem("code-problem", "");
    $("code-go").disabled = true;
    try {
      joined(await redeem({ code }));
    } catch (e) {
      problem("code-problem", codeProblem(e.status, e.err));
    } finally {
      $("code-go").disabled = false;
    }
  }

  function joined(join) {
    page.join = join;
    sessionStorage.setItem("center.visitJoin", JSON.stringify(join));
    step("devices");
    preview();
  }

  function mediaProblem(err) {
    const name = (err && err.name) || "";
    if (name === "NotAllowedError" || name === "SecurityError") return t("visits.devices.refused");
    if (name === "NotFoundError" || name === "OverconstrainedError") return t("visits.devices.none");
    if (name === "NotReadableError") return t("visits.devices.busy");
    return t("visits.devices.other");
  }

  async function preview() {
    problem("devices-problem", "");
    $("devices-go").disabled = true;
    try {
      camera = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: true });
    } catch (err) {
      problem("devices-problem", mediaProblem(err));
      $("devices-retry").hidden = false;
      return;
    }
    $("devices-retry").hidden = true;
    $("preview").srcObject = camera;
    $("devices-ok").hidden = false;
    $("devices-go").disabled = false;
    page.devicesOk = true;
    networkCheck().catch(() => net("failed", t("visits.net.failed")));
  }

  function net(state, text) {
    page.net = state;
    $("net").hidden = false;
    $("net").dataset.state = state;
    $("net").textContent = text;
  }

  /*
   * The echo-room check (as /check): the server sends our own media back, so decoded echo
   * frames and sound prove the whole path works. Advice only: the relative may go on.
   */
  async function networkCheck() {
    net("running", t("visits.net.running"));
    const resp = await fetch("/api/v1/rooms", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${page.join.guest_token}` },
      body: JSON.stringify({ kind: "echo" }),
    });
    if (!resp.ok) return net("failed", t("visits.net.failed"));
    const room = await resp.json();
    const rtc = new RtcClient({ token: page.join.guest_token, rejoin: false, statsIntervalMs: 0 });
    let frames = 0;
    let audio = 0;
    let rtt = null;
    try {
      await rtc.connect();
      await rtc.join(room.id);
      rtc.addStream(camera);
      await rtc.negotiate();
      const deadline = Date.now() + NET_LIMIT_MS;
      while (Date.now() < deadline && !(frames >= 15 && audio >= 10 && rtt !== null)) {
        await new Promise((r) => setTimeout(r, 250));
        (await rtc.pc.getStats()).forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded || 0;
          if (s.type === "inbound-rtp" && s.kind === "audio") audio = s.packetsReceived || 0;
          if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
            rtt = Math.round(s.currentRoundTripTime * 1000);
          }
        });
      }
    } finally {
      rtc.leave().catch(() => {}).finally(() => rtc.close());
    }
    page.netFrames = frames;
    if (frames < 15) return net("failed", t(audio ? "visits.net.no_video" : "visits.net.failed"));
    if (audio < 10) return net("failed", t("visits.net.no_audio"));
    if (rtt !== null && rtt > 400) return net("slow", t("visits.net.slow"));
    return net("ok", t("visits.net.ok"));
  }

  function enter() {
    step("visit");
    const j = page.join;
    VisitCall.start({
      token: j.guest_token,
      visit: { id: j.visit_id, state: j.state, starts_at: j.starts_at, ends_at: j.ends_at, room_id: j.room_id },
      camera,
      visitMinutes: boot.visit_minutes,
      side: "relatives",
      onEnd: () => sessionStorage.removeItem("center.visitJoin"),
    });
  }

  $("code-form").addEventListener("submit", submitCode);
  $("devices-retry").addEventListener("click", preview);
  $("devices-go").addEventListener("click", enter);

  const kept = sessionStorage.getItem("center.visitJoin");
  if (kept) {
    joined(JSON.parse(kept));
  } else if (boot.link_token) {
    redeem({ token: boot.link_token }).then(joined, (e) => {
      step("code");
      problem("code-problem", codeProblem(e.status, e.err));
    });
  } else {
    step("code");
    $("code").focus();
  }
})();
