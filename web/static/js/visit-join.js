/*
 * The relative's page (/join, /join/<token>): the 6-digit code (or the link's token) buys
 * a guest session (kept in sessionStorage: a code works once, a reload must not lose it),
 * then the camera and microphone preview with plain words when the browser refuses, then
 * the waiting room and the call (visit-call.js). Big buttons, few words: a grandmother's
 * phone. State for tests: window.joinPage = {step, join}.
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);
  const page = { step: "code", join: null };
  window.joinPage = page;
  let camera = null;

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
    if (status === 429) return t("visit.join.too_many", { s: (err.details && err.details.retry_after_s) || 60 });
    const code = (err && err.code) || "";
    if (code === "code_used") return t("visit.join.used");
    if (code === "code_not_valid_now") {
      const d = err.details || {};
      if (d.state === "ended" || d.state === "cancelled") return t("visit.join.over");
      return t("visit.join.not_now", { from: d.valid_from ? window.fmtDateTime(d.valid_from) : "" });
    }
    if (status === 401 || status === 422) return t("visit.join.wrong");
    return t("visit.join.failed");
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
    if (code.length !== 6) return problem("code-problem", t("visit.join.six"));
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
    sessionStorage.setItem("visit.join", JSON.stringify(join));
    step("devices");
    preview();
  }

  function mediaProblem(err) {
    const name = (err && err.name) || "";
    if (name === "NotAllowedError" || name === "SecurityError") return t("visit.devices.refused");
    if (name === "NotFoundError" || name === "OverconstrainedError") return t("visit.devices.none");
    if (name === "NotReadableError") return t("visit.devices.busy");
    return t("visit.devices.other");
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
      onEnd: () => sessionStorage.removeItem("visit.join"),
    });
  }

  $("code-form").addEventListener("submit", submitCode);
  $("devices-retry").addEventListener("click", preview);
  $("devices-go").addEventListener("click", enter);

  const kept = sessionStorage.getItem("visit.join");
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
