/*
 * The supervised person's page (/s), standing in for the supervision app: it hears a
 * spot-check ring on /ws (topic "spotchecks", its own only), rings (sound + vibration),
 * answers or declines, shares its location once on answer, joins the call
 * (rtc.join on the room) and shows the officer's challenges. Device check: /check, before
 * the first call (its pass is remembered in localStorage by check.js).
 * State for tests: window.subjectPage = {state, spotcheck, challenge, remoteFrames}.
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);
  const page = { state: "idle", spotcheck: null, challenge: null };
  window.subjectPage = page;
  let ringing = null; // {ctx, timer}
  let rtc = null;
  let camera = null;
  let challengeTimer = null;

  const checked = localStorage.getItem("center.deviceCheck");
  $("devcheck-text").textContent = checked ? t("subj.devcheck.done") : t("subj.devcheck.todo");
  $("devcheck").dataset.done = checked ? "1" : "";

  function status(state, text) {
    page.state = state;
    $("status").dataset.state = state;
    $("status").textContent = text;
  }

  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  async function api(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf_token },
      body: JSON.stringify(body || {}),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw (data && data.error) || { code: "server" };
    return data;
  }

  function startRinging() {
    if (ringing) return;
    let ctx = null;
    try { ctx = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { ctx = null; }
    const beep = () => {
      if (navigator.vibrate) navigator.vibrate([400, 200, 400]);
      if (!ctx) return;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.4);
    };
    beep();
    ringing = { ctx, timer: setInterval(beep, 1500) };
  }

  function stopRinging() {
    if (!ringing) return;
    clearInterval(ringing.timer);
    if (navigator.vibrate) navigator.vibrate(0);
    if (ringing.ctx) ringing.ctx.close().catch(() => {});
    ringing = null;
  }

  function show(sc) {
    page.spotcheck = sc;
    if (sc.state === "ringing" && !rtc) {
      $("caller").textContent = t("subj.ring.caller", { officer: sc.officer || "" });
      $("ring").hidden = false;
      status("ringing", t("subj.ringing"));
      startRinging();
    } else if (sc.state === "waiting") {
      $("ring").hidden = true;
      stopRinging();
      status("waiting", t("subj.waiting"));
    } else if (["passed", "failed", "unreachable", "cancelled"].includes(sc.state)) {
      $("ring").hidden = true;
      stopRinging();
      hangUp();
      status("ended", t("subj.ended"));
    }
    if (sc.challenge) showChallenge(sc.challenge);
  }

  function showChallenge(ch) {
    page.challenge = ch;
    $("challenge").hidden = false;
    $("challenge-text").textContent = ch.prompt;
    clearInterval(challengeTimer);
    const tick = () => {
      const left = Math.round((new Date(ch.expires_at) - Date.now()) / 1000);
      if (left <= 0) {
        $("challenge").hidden = true;
        clearInterval(challengeTimer);
        return;
      }
      $("challenge-left").textContent = t("subj.challenge.left", { s: left });
    };
    tick();
    challengeTimer = setInterval(tick, 500);
  }

  function locate() {
    return new Promise((resolve) => {
      if (!navigator.geolocation) return resolve({ location_error: "unsupported" });
      navigator.geolocation.getCurrentPosition(
        (pos) => resolve({ lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy_m: pos.coords.accuracy }),
        (err) => resolve({ location_error: String((err && err.message) || "refused").slice(0, 200) }),
        { enableHighAccuracy: true, timeout: 10000, maximumAge: 0 },
      );
    });
  }

  function mediaProblem(err) {
    const name = (err && err.name) || "";
    if (name === "NotAllowedError" || name === "SecurityError") return t("subj.problem.refused");
    if (name === "NotFoundError" || name === "OverconstrainedError") return t("subj.problem.nodevice");
    if (name === "NotReadableError") return t("subj.problem.busy");
    return t("subj.problem.other");
  }

  async function answer() {
    const sc = page.spotcheck;
    if (!sc) return;
    stopRinging();
    $("ring").hidden = true;
    problem("");
    try {
      camera = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: true });
    } catch (err) {
      problem(mediaProblem(err));
      status("ringing", t("subj.ringing"));
      $("ring").hidden = false;
      return;
    }
    $("local").srcObject = camera;
    status("connecting", t("subj.connecting"));
    const where = await locate();
    if (where.location_error) problem(t("subj.problem.location"));
    try {
      const live = await api(`/api/v1/spotchecks/${sc.id}/answer`, where);
      page.spotcheck = live;
      rtc = new RtcClient({
        onTracks: (streams) => {
          for (const [pid, stream] of streams) {
            if (pid !== rtc.participant && $("remote").srcObject !== stream) $("remote").srcObject = stream;
          }
        },
        onEvent: (type) => { if (type === "bye") hangUp(); },
      });
      await rtc.connect();
      await rtc.join(live.room_id);
      rtc.addStream(camera);
      await rtc.negotiate();
      $("call").hidden = false;
      status("live", t("subj.live"));
    } catch (err) {
      problem(t("subj.problem.call", { code: (err && err.code) || "" }));
    }
  }

  function hangUp() {
    if (rtc) { rtc.leave().catch(() => {}).finally(() => rtc && rtc.close()); }
    rtc = null;
    if (camera) camera.getTracks().forEach((tr) => tr.stop());
    camera = null;
    $("call").hidden = true;
    $("challenge").hidden = true;
  }

  $("answer").addEventListener("click", answer);
  $("decline").addEventListener("click", async () => {
    stopRinging();
    $("ring").hidden = true;
    if (page.spotcheck) await api(`/api/v1/spotchecks/${page.spotcheck.id}/decline`).catch(() => {});
  });

  const socket = new CenterSocket({
    onState: (state) => { if (state === "auth_failed") location.href = "/login"; },
  });
  socket.subscribe("spotchecks", {
    onSnapshot(snap) {
      const open = (snap && snap.spotchecks) || [];
      if (open.length) show(open[0]);
    },
    onEvent(event) {
      const d = event.data || {};
      if (event.type === "spotcheck.challenge" && d.challenge) showChallenge(d.challenge);
      else if (event.type === "spotcheck.state") show(d);
    },
  });
  socket.start();
  setInterval(() => {
    const v = $("remote");
    page.remoteFrames = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  }, 500);
})();
