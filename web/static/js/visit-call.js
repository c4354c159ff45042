/*
 * One side of a family visit (the relative's /join and the prison's /terminal): joins the
 * visit's call room as a party with a bearer token (guest vg_… or device token), shows the
 * other side, the slot and a countdown (to the slot while waiting, to the limit while live:
 * live_at + visit_minutes), the 5- and 1-minute warnings and staff texts (visits topic),
 * a server mute (also stops sending our microphone), and the end.
 *
 *   const call = VisitCall.start({ token, visit, camera, visitMinutes, side: "relatives" });
 *
 * State for tests: window.visitCall = {state, visit, notices, remoteFrames, rtc}.
 */
(function (global) {
  "use strict";

  const t = global.t;
  const $ = (id) => document.getElementById(id);

  function mmss(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  }

  function start(opts) {
    const call = { state: "waiting", visit: opts.visit, notices: [], remoteFrames: 0, rtc: null };
    global.visitCall = call;
    let rtc = null;
    let ended = false;
    let joining = false;

    function setState(state) {
      call.state = state;
      $("status").dataset.state = state;
      $("status").textContent = t("visits.state." + (state));
    }

    function notice(kind, text) {
      call.notices.push({ kind, text });
      const p = document.createElement("p");
      p.className = `vs-notice vs-${kind}`;
      p.dataset.kind = kind;
      p.textContent = text;
      $("notices").prepend(p);
      $("notices").hidden = false;
    }

    function tick() {
      const v = call.visit;
      $("slot").textContent = t("visits.slot", { from: global.fmtDateTime(v.starts_at), to: global.fmtTime(v.ends_at) });
      if (call.state === "live" && v.live_at) {
        const end = new Date(v.live_at).getTime() + (v.minutes || opts.visitMinutes) * 60000;
        $("countdown").textContent = t("visits.left", { t: mmss(end - Date.now()) });
      } else if (call.state === "waiting") {
        const left = new Date(v.starts_at).getTime() - Date.now();
        $("countdown").textContent = left > 0 ? t("visits.starts_in", { t: mmss(left) }) : t("visits.admit_soon");
      } else {
        $("countdown").textContent = "";
      }
      const el = $("remote");
      call.remoteFrames = el && el.getVideoPlaybackQuality ? el.getVideoPlaybackQuality().totalVideoFrames : 0;
    }

    async function joinRoom() {
      if (rtc || joining || ended || !call.visit.room_id) return;
      joining = true;
      try {
        rtc = new RtcClient({
          token: opts.token,
          onTracks: (streams) => {
            for (const [pid, stream] of streams) {
              if (pid !== rtc.participant && $("remote").srcObject !== stream) $("remote").srcObject = stream;
            }
          },
          onEvent: (type, data) => {
            if (type === "bye" && data && data.reason !== "failed") hangUp();
          },
        });
        call.rtc = rtc;
        await rtc.connect();
        await rtc.join(call.visit.room_id);
        rtc.addStream(opts.camera);
        await rtc.negotiate();
        $("local").srcObject = opts.camera;
        $("call").hidden = false;
      } catch (err) {
        if (rtc) rtc.close();
        rtc = null;
        call.rtc = null;
        $("problem").hidden = false;
        $("problem").textContent = t("visits.problem.call", { code: (err && err.code) || "" });
      } finally {
        joining = false;
      }
    }

    function hangUp() {
      if (rtc) {
        const r = rtc;
        r.leave().catch(() => {}).finally(() => r.close());
      }
      rtc = null;
      $("call").hidden = true;
    }

    function show(v) {
      if (v.id !== call.visit.id || ended) return;
      call.visit = Object.assign({}, call.visit, v);
      if (v.state === "ended") {
        ended = true;
        setState("ended");
        hangUp();
        $("outcome").hidden = false;
        $("outcome").textContent = t("visits.outcome." + (v.outcome || "completed"));
        if (opts.camera) opts.camera.getTracks().forEach((tr) => tr.stop());
        if (opts.onEnd) opts.onEnd(call.visit);
        setTimeout(() => { clearInterval(timer); socket.close(); }, 0);
      } else {
        setState(v.state === "live" ? "live" : "waiting");
        joinRoom();
      }
      tick();
    }

    const socket = new CenterSocket({
      token: opts.token,
      onState(state, detail) {
        // 4002: the server closed our socket because the visit ended (normally right
        // after its last visit.state, which already showed the end).
        if (state === "closed" && detail && detail.code === 4002 && !ended) {
          show(Object.assign({}, call.visit, { state: "ended" }));
        }
      },
    });
    socket.subscribe("visits", {
      onSnapshot(snap) {
        for (const v of (snap && snap.visits) || []) show(v);
      },
      onEvent(event) {
        const d = event.data || {};
        if (d.visit_id !== undefined && d.visit_id !== call.visit.id) return;
        if (event.type === "visit.state") show(d);
        else if (event.type === "visit.warning") notice("warning", t("visits.warning", { n: d.minutes_left }));
        else if (event.type === "visit.text") notice("text", t("visits.text", { text: d.text }));
        else if (event.type === "visit.mute" && d.side === opts.side) {
          if (opts.camera) opts.camera.getAudioTracks().forEach((tr) => { tr.enabled = !d.muted; });
          notice("mute", t(d.muted ? "visits.muted" : "visits.unmuted"));
        }
      },
    });
    socket.start();
    call.socket = socket;
    setState(call.visit.state === "live" ? "live" : "waiting");
    joinRoom();
    tick();
    const timer = setInterval(tick, 500);
    return call;
  }

  global.VisitCall = { start };
})(window);
