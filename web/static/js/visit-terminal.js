/*
 * The prison terminal's kiosk (/terminal?token=<device token>): the day's visits of its
 * prison, refreshed every 10 s and on every visit.state; once a visit's room is open (a
 * relative is in: state waiting) the terminal joins it with the camera and runs the call
 * (visit-call.js) until it ends, then shows the schedule again. The token stays in
 * localStorage so the kiosk restarts without it in the URL.
 * State for tests: window.terminalPage = {visits, current}.
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) localStorage.setItem("terminal.token", fromUrl);
  const token = fromUrl || localStorage.getItem("terminal.token");
  const page = { visits: [], current: null };
  window.terminalPage = page;
  let camera = null;

  async function get(path) {
    const resp = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    if (resp.status === 401 || resp.status === 403) throw { code: "token" };
    if (!resp.ok) throw { code: "server" };
    return resp.json();
  }

  function render() {
    const ul = $("schedule");
    ul.textContent = "";
    for (const v of page.visits) {
      const li = document.createElement("li");
      li.dataset.id = v.id;
      li.dataset.state = v.state;
      li.textContent = t("visits.terminal.row", {
        from: window.fmtTime(v.starts_at), to: window.fmtTime(v.ends_at), inmate: v.inmate_name,
        state: t("visits.vstate." + (v.state)),
      });
      ul.appendChild(li);
    }
    $("empty").hidden = page.visits.length > 0;
  }

  async function refresh() {
    if (!token) {
      $("problem").hidden = false;
      $("problem").textContent = t("visits.terminal.no_token");
      return;
    }
    try {
      const data = await get(`/api/v1/visits?date=${window.centerToday()}`);
      page.visits = data.items.slice().sort((a, b) => a.starts_at.localeCompare(b.starts_at));
      $("problem").hidden = true;
    } catch (err) {
      $("problem").hidden = false;
      $("problem").textContent = t(err.code === "token" ? "visits.terminal.bad_token" : "visits.terminal.offline");
      return;
    }
    render();
    const due = page.visits.find((v) => (v.state === "waiting" || v.state === "live") && v.room_id);
    if (due && !page.current) await begin(due);
  }

  async function begin(v) {
    page.current = v;
    try {
      camera = camera || await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: true });
    } catch (err) {
      page.current = null;
      $("problem").hidden = false;
      $("problem").textContent = t("visits.devices.refused");
      return;
    }
    $("schedule-box").hidden = true;
    $("step-visit").hidden = false;
    $("outcome").hidden = true;
    $("notices").textContent = "";
    VisitCall.start({
      token,
      visit: v,
      camera,
      visitMinutes: boot.visit_minutes,
      side: "inmate",
      onEnd: () => {
        camera = null;
        setTimeout(() => {
          page.current = null;
          $("step-visit").hidden = true;
          $("schedule-box").hidden = false;
          refresh();
        }, 15000);
      },
    });
  }

  refresh();
  setInterval(() => { if (!page.current) refresh(); }, 10000);
})();
