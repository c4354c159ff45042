/*
 * Device check (/check): camera preview, an echo room through the server, and a verdict in
 * plain words. The server sends our own media back (the real forwarding path), so video and
 * sound counted as decoded here have made the full round trip.
 *
 * Measured: video passes at VIDEO_FRAMES decoded echo frames, sound at AUDIO_PACKETS received
 * echo audio packets with samples decoded; the round-trip time is getStats()
 * currentRoundTripTime of the selected ICE candidate pair (network RTT to the server), and
 * "first frame" is join -> first decoded echo frame. The result is also on window.deviceCheck
 * for tests and kiosks.
 */
(function () {
  "use strict";

  const VIDEO_FRAMES = 15;
  const AUDIO_PACKETS = 10;
  const LIMIT_MS = 20000;
  const POLL_MS = 250;
  const SLOW_RTT_MS = 400;

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);
  $("back").href = boot.home || "/";

  const result = { state: "idle" };
  let current = null;
  window.deviceCheck = result;

  function step(name, state, text) {
    const li = $(`step-${name}`);
    li.dataset.state = state;
    li.querySelector(".ck-value").textContent = text || t("check.state." + state);
  }

  function verdict(state, text) {
    const el = $("verdict");
    el.dataset.state = state;
    el.textContent = text;
    result.state = state;
    result.message = text;
  }

  function fail(reason, stepName) {
    if (stepName) step(stepName, "failed");
    result.failure = reason;
    verdict("failed", t("check.fail." + reason));
  }

  async function openRoom() {
    const resp = await fetch("/api/v1/rooms", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf_token },
      body: JSON.stringify({ kind: "echo" }),
    });
    if (resp.status === 401) throw { code: "auth" };
    if (!resp.ok) throw { code: "server" };
    return resp.json();
  }

  function readStats(report) {
    const out = { frames: 0, audioPackets: 0, audioSamples: 0, rttMs: null };
    let pairId = null;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") out.frames = s.framesDecoded || 0;
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        out.audioPackets = s.packetsReceived || 0;
        out.audioSamples = s.totalSamplesReceived || 0;
      }
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    report.forEach((s) => {
      const selected = pairId ? s.id === pairId : s.nominated && s.state === "succeeded";
      if (s.type === "candidate-pair" && selected && s.currentRoundTripTime !== undefined) {
        out.rttMs = Math.round(s.currentRoundTripTime * 1000);
      }
    });
    return out;
  }

  /** The returned picture stays on screen after the room closes: its last frame as poster. */
  function keepLastFrame(video) {
    if (!video.videoWidth) return;
    try {
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth; canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      video.poster = canvas.toDataURL("image/jpeg", 0.85);
      video.srcObject = null;
    } catch (err) { console.warn("keep last frame", err); }
  }

  async function run() {
    $("start").disabled = true;
    Object.assign(result, { state: "running", failure: null, video: false, audio: false });
    for (const name of ["devices", "server", "video", "audio", "rtt"]) step(name, "waiting");
    verdict("running", t("check.verdict.running"));

    step("devices", "running");
    if (current) current.getTracks().forEach((t) => t.stop());
    let camera;
    try {
      camera = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } },
        audio: true,
      });
    } catch (err) {
      // Denied or busy: say how to allow the camera again, and offer the check once more.
      $("camera-help").hidden = false;
      $("start").disabled = false;
      $("start").textContent = t("check.retry");
      return fail("devices", "devices");
    }
    $("camera-help").hidden = true;
    current = camera; // the preview stays on after the check; stopped on the next run
    $("local").srcObject = camera;
    step("devices", "ok");

    step("server", "running");
    const rtc = new RtcClient({
      onTracks: () => {
        const echo = rtc.participant && rtc.streamFor(rtc.participant);
        if (echo && $("echo").srcObject !== echo) $("echo").srcObject = echo;
      },
    });
    const started = performance.now();
    try {
      const room = await openRoom();
      await rtc.connect();
      await rtc.join(room.id);
      rtc.addStream(camera);
      await rtc.negotiate();
    } catch (err) {
      rtc.close();
      camera.getTracks().forEach((t) => t.stop());
      return fail(err && err.code === "auth" ? "auth" : "server", "server");
    }
    step("server", "ok");
    step("video", "running");
    step("audio", "running");
    step("rtt", "running");

    let last = readStats(new Map());
    const deadline = performance.now() + LIMIT_MS;
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      last = readStats(await rtc.stats());
      if (last.frames > 0 && result.firstFrameMs === undefined) {
        result.firstFrameMs = Math.round(performance.now() - started);
      }
      if (!result.video && last.frames >= VIDEO_FRAMES) {
        result.video = true;
        step("video", "ok", t("check.first_frame", { ms: result.firstFrameMs }));
      }
      if (!result.audio && last.audioPackets >= AUDIO_PACKETS && last.audioSamples > 0) {
        result.audio = true;
        step("audio", "ok");
      }
      if (last.rttMs !== null) {
        result.rttMs = last.rttMs;
        step("rtt", "ok", t("check.rtt.value", { ms: last.rttMs }));
      }
      if (result.video && result.audio && result.rttMs !== undefined) break;
    }
    result.framesDecoded = last.frames;
    const connected = rtc.pc ? rtc.pc.connectionState : "new";
    keepLastFrame($("echo"));
    await rtc.leave();
    rtc.close();
    $("start").disabled = false;
    $("start").textContent = t("check.retry");

    if (!result.video && !result.audio && last.frames === 0 && last.audioPackets === 0) {
      step("video", "failed");
      step("audio", "failed");
      if (result.rttMs === undefined) step("rtt", "failed");
      return fail(connected === "failed" || result.rttMs === undefined ? "connect" : "video");
    }
    if (!result.video) return fail("video", "video");
    if (!result.audio) return fail("audio", "audio");
    const ms = result.rttMs === undefined ? "?" : result.rttMs;
    if (result.rttMs === undefined) step("rtt", "failed");
    verdict("passed", t(result.rttMs > SLOW_RTT_MS ? "check.verdict.slow" : "check.verdict.ok", { ms }));
    // The spot-check page (/s) asks for a device check before the first call.
    try { localStorage.setItem("center.deviceCheck", new Date().toISOString()); } catch (e) { /* private mode */ }
  }

  $("start").addEventListener("click", () => {
    run().catch((err) => {
      console.error(err);
      $("start").disabled = false;
      fail("server");
    });
  });
})();
