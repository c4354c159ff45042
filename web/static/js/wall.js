/*
 * The wall screen: subscribes to the `dashboard` topic with CenterSocket and renders it.
 * Read-only, no input. Everything shown comes from the server already masked; text goes
 * into the DOM with textContent only.
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.body.dataset.config || "{}");
  const TOKEN_KEY = "center.wall.token";
  const STALE_S = 45;
  const $ = (id) => document.getElementById(id);

  const t = window.t;

  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);

  const state = {};
  let socket = null;
  let charts = null;
  let geoNames = null;

  function showOverlay(text) {
    const overlay = $("overlay");
    overlay.textContent = text;
    overlay.classList.remove("hidden");
  }

  function hideOverlay() {
    $("overlay").classList.add("hidden");
  }

  /* --- the token: ?token= (then hidden from the URL), ?code= (exchanged once), storage --- */

  async function resolveToken() {
    if (cfg.error) {
      showOverlay(t("wall.unpaired"));
      return null;
    }
    if (cfg.token) {
      localStorage.setItem(TOKEN_KEY, cfg.token);
      history.replaceState(null, "", "/wall");
      return cfg.token;
    }
    if (cfg.code) {
      showOverlay(t("wall.pairing"));
      const resp = await fetch("/api/v1/wall/pair", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: cfg.code }),
      });
      history.replaceState(null, "", "/wall");
      if (!resp.ok) {
        showOverlay(t("wall.unpaired"));
        return null;
      }
      const body = await resp.json();
      localStorage.setItem(TOKEN_KEY, body.token);
      hideOverlay();
      return body.token;
    }
    const stored = localStorage.getItem(TOKEN_KEY);
    if (!stored) showOverlay(t("wall.unpaired"));
    return stored;
  }

  /* --- title bar: clock, connection state, freshness --- */

  // The same date format as every other page, in both languages: 2026-12-02 03:48:05.
  const clockParts = new Intl.DateTimeFormat("en-CA", {
    timeZone: cfg.timezone || "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  const clockFormat = {
    format(date) {
      const p = {};
      for (const part of clockParts.formatToParts(date)) p[part.type] = part.value;
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
    },
  };
  const hourFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: cfg.timezone || "Asia/Shanghai",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });

  function tick() {
    const now = socket ? socket.serverNow() : Date.now();
    $("clock").textContent = clockFormat.format(new Date(now));
    const fresh = $("fresh");
    if (!socket || !socket.lastContact) {
      fresh.textContent = "";
      return;
    }
    const age = Math.max(0, Math.round((Date.now() - socket.lastContact) / 1000));
    const stale = age >= STALE_S || socket.state !== "open";
    fresh.classList.toggle("stale", stale);
    fresh.dataset.ageS = String(age);
    // One state on screen: when stale the dot turns, "live" goes, the numbers dim.
    document.body.classList.toggle("stale", stale);
    $("conn").classList.toggle("stale", stale);
    $("conn-text").textContent = stale && socket.state === "open" ? "" : t("wall.conn." + socket.state);
    if (stale) fresh.textContent = t("wall.fresh.stale", { s: age });
    else if (age <= 2) fresh.textContent = t("wall.fresh.now");
    else fresh.textContent = t("wall.fresh.ago", { s: age });
  }

  function onState(s) {
    const conn = $("conn");
    conn.dataset.state = s;
    $("conn-text").textContent = t("wall.conn." + s);
    if (s === "auth_failed") {
      localStorage.removeItem(TOKEN_KEY);
      showOverlay(t("wall.unpaired"));
    }
    tick();
  }

  /* --- rendering --- */

  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("zh-CN"));
  const pct = (r) => (r === null || r === undefined ? "–" : `${(r * 100).toFixed(1)}%`);

  function setKpi(id, text, cls) {
    const el = $(id);
    el.textContent = text;
    if (cls !== undefined) el.classList.toggle("zero", cls);
  }

  function renderKpis() {
    if (state.subjects) setKpi("kpi-subjects", fmt(state.subjects.total));
    if (state.checkins) {
      const c = state.checkins.total;
      // Completion of the windows due so far (as the report counts), not of the whole day.
      const el = $("kpi-checkins");
      el.textContent = c.completion === null || c.completion === undefined ? "–" : pct(c.completion);
      const small = document.createElement("small");
      small.textContent = t("wall.checkins.of_due", { done: fmt(c.done), due: fmt(c.due) });
      el.appendChild(small);
      setKpi("kpi-missed", fmt(c.missed), c.missed === 0);
    }
    if (state.alarms) {
      setKpi("kpi-open", fmt(state.alarms.open), state.alarms.open === 0);
      setKpi("kpi-overdue", fmt(state.alarms.overdue), state.alarms.overdue === 0);
    }
    if (state.closed_loop) setKpi("kpi-closed-loop", pct(state.closed_loop.rate));
    if (state.staffing) {
      const s = state.staffing;
      setKpi("kpi-on-duty", s.roster ? `${s.on_duty} / ${s.minimum}` : "–");
      $("kpi-on-duty").classList.toggle("alarm", !!s.warning);
      const banner = $("staffing-banner");
      banner.classList.toggle("hidden", !!(s.roster && !s.warning));
      banner.classList.toggle("info", !s.roster);
      banner.textContent = s.warning
        ? t("wall.staffing.warning", { n: s.on_duty, m: s.minimum })
        : t("wall.staffing.unknown");
    }
    if (state.media) {
      const m = state.media;
      setKpi("kpi-media", `${fmt(m.visits.live)} / ${fmt(m.spotchecks.live)}`);
      // Counts only, never names: visits held today and how many staff terminated.
      const small = document.createElement("small");
      small.id = "kpi-visits-today";
      small.dataset.today = m.visits.today;
      small.dataset.terminated = m.visits.terminated || 0;
      small.textContent = t("wall.media.visits_today", {
        today: fmt(m.visits.today), terminated: fmt(m.visits.terminated || 0),
      });
      $("kpi-media").appendChild(small);
    }
  }

  function renderMeta() {
    const meta = state.meta;
    if (!meta) return;
    $("scope").textContent = meta.scope.level === "city" ? "" : meta.scope.name;
  }

  function slaClass(item) {
    if (item.overdue) return "sla-overdue";
    if (item.ack_due_at && !item.acknowledged_at) {
      const left = Date.parse(item.ack_due_at) - (socket ? socket.serverNow() : Date.now());
      if (left < 5 * 60 * 1000) return "sla-soon";
    }
    return "sla-ok";
  }

  function span(cls, text) {
    const el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  function renderTicker() {
    const list = $("ticker");
    const items = state.ticker || [];
    const rows = [];
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = t("wall.ticker.empty");
      rows.push(li);
    }
    for (const item of items) {
      const li = document.createElement("li");
      li.className = `sev-${item.severity} ${slaClass(item)}`;
      li.dataset.alarmId = String(item.id);
      const seen = item.last_seen || item.first_seen;
      li.append(
        span("time", seen ? hourFormat.format(new Date(seen)) : ""),
        span("kind", t("kind." + item.kind)),
        span("name", item.subject_name || ""),
        span("where", [item.district_name, item.street_name].filter(Boolean).join(" · ")),
        span("state", item.overdue ? t("wall.overdue") : t("state." + item.state)),
      );
      rows.push(li);
    }
    list.replaceChildren(...rows);
    // Only whole rows: one that does not fit entirely is left out, and the count says so.
    const bottom = list.getBoundingClientRect().bottom;
    let cut = 0;
    for (const li of rows) {
      if (li.getBoundingClientRect().bottom > bottom + 0.5) { li.hidden = true; cut++; }
    }
    list.dataset.cut = String(cut);
    if (cut) {
      const last = rows.filter((li) => !li.hidden).pop();
      if (last) last.hidden = true;
      const more = document.createElement("li");
      more.className = "more";
      more.textContent = t("wall.ticker.more", { n: cut + (last ? 1 : 0) });
      list.appendChild(more);
      list.dataset.cut = String(cut + (last ? 1 : 0));
    }
  }

  /* --- charts (vendored ECharts; no network beyond this server) --- */

  function initCharts() {
    if (charts || !window.echarts) return;
    charts = {
      map: echarts.init($("map"), null, { renderer: "canvas" }),
      trend: echarts.init($("trend")),
      checkins: echarts.init($("checkins")),
    };
    window.addEventListener("resize", () => { Object.values(charts).forEach((c) => c.resize()); renderTicker(); });
    fetch(cfg.geojson)
      .then((r) => r.json())
      .then((geo) => {
        echarts.registerMap("city", geo);
        geoNames = new Map(geo.features.map((f) => [f.properties.name, f.properties.cp]));
        renderMap();
      })
      .catch((err) => console.error("cannot load the district shapes", err));
  }

  const rem = () => parseFloat(getComputedStyle(document.documentElement).fontSize);

  function shortName(name) {
    return name.replace(/新区$/, "").replace(/区$/, "");
  }

  function renderMap() {
    if (!charts || !geoNames || !state.meta || !state.alarms) return;
    const counts = state.alarms.by_district || {};
    const districts = state.meta.districts;
    const shaped = districts.filter((d) => geoNames.has(d.name));
    const unshaped = districts.filter((d) => !geoNames.has(d.name));
    const values = districts.map((d) => counts[d.id] || 0);
    const max = Math.max(5, ...values);
    const r = rem();
    charts.map.setOption({
      backgroundColor: "transparent",
      visualMap: {
        seriesIndex: 0,
        min: 0,
        max,
        left: r,
        bottom: r,
        calculable: false,
        textStyle: { color: "#8ea3c2", fontSize: r * 0.9 },
        inRange: { color: ["#12335c", "#f5a623", "#ff4d4f"] },
      },
      geo: {
        map: "city",
        roam: false,
        top: "3%",
        bottom: "3%",
        left: "8%",
        right: "3%",
        itemStyle: { areaColor: "#12335c", borderColor: "#3fa9ff", borderWidth: 1 },
        label: { show: false },
        emphasis: { disabled: true },
      },
      series: [
        {
          type: "map",
          geoIndex: 0,
          data: shaped.map((d) => ({ name: d.name, value: counts[d.id] || 0 })),
        },
        {
          // Every shaped district's name and count, on its label point.
          type: "scatter",
          coordinateSystem: "geo",
          symbolSize: 0,
          silent: true,
          label: {
            show: true,
            formatter: (p) => `${p.data.short}\n${p.data.count}`,
            color: "#fff",
            fontSize: r * 0.95,
            fontWeight: 700,
            lineHeight: r * 1.15,
            textBorderColor: "#07101f",
            textBorderWidth: 3,
          },
          data: shaped.map((d) => ({
            value: geoNames.get(d.name) || [d.lon, d.lat],
            short: shortName(d.name),
            count: counts[d.id] || 0,
          })),
        },
        {
          // Districts without a shape of their own: a labelled marker, never a silent gap.
          type: "effectScatter",
          coordinateSystem: "geo",
          symbol: "pin",
          symbolSize: r * 2.6,
          rippleEffect: { scale: 2.5, brushType: "stroke" },
          itemStyle: { color: "#f5a623" },
          label: {
            show: true,
            position: "right",
            formatter: (p) => `${p.data.name}  ${p.data.count}`,
            color: "#fff",
            fontSize: r * 1.05,
            fontWeight: 700,
            backgroundColor: "rgba(7,16,31,0.75)",
            padding: [r * 0.2, r * 0.4],
            borderRadius: r * 0.2,
          },
          data: unshaped
            .filter((d) => d.lon !== null && d.lat !== null)
            .map((d) => ({ name: d.name, value: [d.lon, d.lat], count: counts[d.id] || 0 })),
        },
      ],
    }, { replaceMerge: ["series"] });
    const markers = $("map");
    markers.dataset.unshaped = unshaped.map((d) => `${d.name}:${counts[d.id] || 0}`).join(",");
  }

  function renderTrend() {
    if (!charts || !state.trend) return;
    const start = state.trend.start * 1000;
    const labels = state.trend.counts.map((_, i) => hourFormat.format(new Date(start + i * 3600e3)));
    const r = rem();
    charts.trend.setOption({
      grid: { left: r * 0.5, right: r, top: r, bottom: r * 0.3, containLabel: true },
      xAxis: { type: "category", data: labels, axisLabel: { color: "#8ea3c2", fontSize: r * 1.0, interval: 3 } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#8ea3c2", fontSize: r * 1.0 }, splitLine: { lineStyle: { color: "#1d3355" } } },
      series: [{ type: "bar", data: state.trend.counts, itemStyle: { color: "#3fa9ff" } }],
    });
  }

  function renderCheckins() {
    if (!charts || !state.checkins || !state.meta) return;
    const rows = state.checkins.by_district || {};
    const districts = state.meta.districts;
    const names = districts.map((d) => shortName(d.name));
    const done = districts.map((d) => (rows[d.id] ? rows[d.id].done : 0));
    const missed = districts.map((d) => (rows[d.id] ? rows[d.id].missed : 0));
    const r = rem();
    charts.checkins.setOption({
      legend: { top: 0, right: 0, itemWidth: r * 1.2, itemHeight: r * 0.8, textStyle: { color: "#e8eef8", fontSize: r * 1.0 } },
      grid: { left: r * 0.5, right: r * 3.5, top: r * 1.9, bottom: r * 0.3, containLabel: true },
      xAxis: { type: "value", axisLabel: { color: "#8ea3c2", fontSize: r * 0.95 }, splitLine: { lineStyle: { color: "#1d3355" } } },
      yAxis: { type: "category", data: names, inverse: true, axisLabel: { color: "#e8eef8", fontSize: r * 1.0, interval: 0 } },
      series: [
        { name: t("wall.checkins.done"), type: "bar", stack: "c", data: done, itemStyle: { color: "#2ecc71" } },
        { name: t("wall.checkins.missed"), type: "bar", stack: "c", data: missed, itemStyle: { color: "#ff4d4f" },
          label: { show: true, position: "right", color: "#e8eef8", fontSize: r * 1.0,
            formatter: (p) => { const d = done[p.dataIndex], due = d + missed[p.dataIndex]; return due ? pct(d / due) : ""; } } },
      ],
    });
  }

  function render(sections) {
    const all = !sections;
    const has = (s) => all || sections.includes(s);
    if (has("meta")) renderMeta();
    renderKpis();
    if (has("ticker")) renderTicker();
    initCharts();
    if (has("alarms") || has("meta")) renderMap();
    if (has("trend")) renderTrend();
    if (has("checkins") || has("meta")) renderCheckins();
    document.body.dataset.seq = String(socket && socket._subs.size ? [...socket._subs][0].position?.seq ?? "" : "");
  }

  async function main() {
    onState("connecting");
    setInterval(tick, 1000);
    setInterval(renderTicker, 15000); // SLA colours move with time, not only with events
    const token = await resolveToken();
    if (!token) return;
    socket = new CenterSocket({ token: () => localStorage.getItem(TOKEN_KEY) || token, onState });
    socket.subscribe("dashboard", {
      onSnapshot(snapshot) {
        for (const key of Object.keys(state)) delete state[key];
        Object.assign(state, snapshot);
        render(null);
      },
      onEvent(event) {
        if (event.type !== "dashboard.delta") return;
        Object.assign(state, event.data);
        render(Object.keys(event.data));
      },
    });
    socket.start();
  }

  main();
})();
