// Admin console: users, API keys and device tokens, wall screens, plans, suppressions and
// leaves, the audit log (web/admin*.py).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const BOOT = JSON.parse($("admin-boot").textContent);
  const CSRF = $("logout").dataset.csrf;
  const places = new Map(BOOT.jurisdictions.map((j) => [j.id, j.name]));

  async function api(path, opts) {
    opts = opts || {};
    const headers = {};
    if (opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = CSRF;
    let body;
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.json); }
    const resp = await fetch(path, { method: opts.method || "GET", headers, body, credentials: "same-origin" });
    if (resp.status === 401) { location.href = "/login?next=/admin"; throw new Error("unauthorized"); }
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error((data.error && data.error.message) || resp.statusText);
    return data;
  }

  function toast(text) {
    const el = $("toast");
    el.textContent = text; el.hidden = false;
    clearTimeout(toast.timer); toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
  }
  const fail = (err) => toast(t("admin.error", { msg: err.message }));

  function showSecret(label, value) {
    $("secret-label").textContent = label;
    $("secret-value").textContent = value;
    $("secret").hidden = false;
  }
  $("secret-close").addEventListener("click", () => { $("secret").hidden = true; $("secret-value").textContent = ""; });

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function button(td, label, cls, onClick) {
    const b = document.createElement("button");
    b.type = "button"; b.className = cls; b.textContent = label;
    b.addEventListener("click", onClick);
    td.appendChild(b);
    return b;
  }
  function options(select, items) {
    select.replaceChildren(...items.map(([value, label]) => new Option(label, value)));
  }
  const when = (v) => (v ? window.fmtDateTime(v) : t("admin.never"));

  // A table reloads under the user's hands (a tab click, a save, a search, in any order
  // on a slow link): only the newest answer paints, and what the user has typed or picked
  // but not saved survives the repaint instead of being replaced by the server's value.
  function newest() {
    let n = 0;
    return () => { const mine = ++n; return () => mine === n; };
  }
  function painted(el, value) { el.value = value; el.dataset.painted = value; return el; }
  function repaint(tbody, rows) {
    const kept = new Map();
    for (const tr of tbody.rows) for (const el of tr.querySelectorAll("[data-painted]")) {
      if (el.value !== el.dataset.painted) kept.set(tr.dataset.key + "|" + el.className, el.value);
    }
    tbody.replaceChildren(...rows);
    for (const tr of tbody.rows) for (const el of tr.querySelectorAll("[data-painted]")) {
      const v = kept.get(tr.dataset.key + "|" + el.className);
      if (v !== undefined) el.value = v;
    }
  }

  // ---- tabs ---------------------------------------------------------------------------
  document.querySelectorAll(".a-tabs button").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll(".a-tabs button").forEach((x) => x.classList.toggle("on", x === b));
    document.querySelectorAll(".a-tab").forEach((s) => { s.hidden = s.id !== "tab-" + b.dataset.tab; });
    if (b.dataset.tab === "keys") loadKeys().catch(fail);
    if (b.dataset.tab === "audit") loadAudit(false).catch(fail);
    if (b.dataset.tab === "supervision") loadSupervision().catch(fail);
    if (b.dataset.tab === "plans") { loadPlans().catch(fail); loadAlarmSettings().catch(fail); }
    if (b.dataset.tab === "walls") loadWalls().catch(fail);
    if (b.dataset.tab === "subjects") loadSubjects().catch(fail);
  }));

  const placeItems = BOOT.jurisdictions.map((j) => [j.id, j.name]);
  const roleItems = BOOT.roles.map((r) => [r, t("role." + r)]);
  options($("nu-role"), roleItems);
  options($("nu-jurisdiction"), placeItems);
  options($("nk-jurisdiction"), placeItems);
  options($("nw-jurisdiction"), placeItems);

  // ---- users --------------------------------------------------------------------------
  async function loadUsers() {
    const data = await api("/api/v1/admin/users");
    const body = $("users").tBodies[0];
    body.replaceChildren(...data.items.map(userRow));
  }
  function userRow(u) {
    const tr = document.createElement("tr");
    tr.dataset.username = u.username;
    if (!u.active) tr.className = "inactive";
    cell(tr, u.username); cell(tr, u.display_name);
    const roleTd = cell(tr, "");
    const role = document.createElement("select");
    role.className = "role"; options(role, roleItems); role.value = u.role; role.disabled = !u.active;
    roleTd.appendChild(role);
    const jurTd = cell(tr, "");
    const jur = document.createElement("select");
    jur.className = "jurisdiction"; options(jur, placeItems); jur.value = u.jurisdiction; jur.disabled = !u.active;
    if (!places.has(u.jurisdiction)) jur.appendChild(new Option(u.jurisdiction, u.jurisdiction, true, true));
    jurTd.appendChild(jur);
    cell(tr, when(u.last_login_at));
    cell(tr, u.active ? t("admin.status.active") : t("admin.status.disabled"), "status");
    const actions = cell(tr, "");
    if (u.active) {
      button(actions, t("admin.save"), "save", () => changeUser(u, role.value, jur.value).catch(fail));
      button(actions, t("admin.user.reset"), "reset", () => resetPassword(u).catch(fail));
      button(actions, t("admin.user.disable"), "disable", () => disableUser(u).catch(fail));
    }
    return tr;
  }
  async function changeUser(u, role, jurisdiction) {
    const change = {};
    if (role !== u.role) change.role = role;
    if (jurisdiction !== u.jurisdiction) change.jurisdiction = jurisdiction;
    if (!Object.keys(change).length) return;
    await api(`/api/v1/admin/users/${u.id}`, { method: "PATCH", json: change });
    toast(t("admin.user.saved", { name: u.username }));
    await loadUsers();
  }
  async function resetPassword(u) {
    if (!window.confirm(t("admin.user.reset_confirm", { name: u.username }))) return;
    const data = await api(`/api/v1/admin/users/${u.id}/password`, { method: "POST" });
    showSecret(t("admin.user.password_for", { name: u.username }), data.password);
    await loadUsers();
  }
  async function disableUser(u) {
    if (!window.confirm(t("admin.user.disable_confirm", { name: u.username }))) return;
    await api(`/api/v1/users/${u.id}/disable`, { method: "POST" });
    toast(t("admin.user.disabled", { name: u.username }));
    await loadUsers();
  }
  $("new-user").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const json = { username: $("nu-username").value.trim(), role: $("nu-role").value, jurisdiction: $("nu-jurisdiction").value };
    const display = $("nu-display").value.trim();
    if (display) json.display_name = display;
    api("/api/v1/admin/users", { method: "POST", json }).then((data) => {
      showSecret(t("admin.user.password_for", { name: data.user.username }), data.password);
      ev.target.reset();
      return loadUsers();
    }).catch(fail);
  });

  // ---- keys ---------------------------------------------------------------------------
  async function loadKeys() {
    const data = await api("/api/v1/keys");
    $("keys").tBodies[0].replaceChildren(...data.items.slice().reverse().map(keyRow));
  }
  function keyRow(k) {
    const tr = document.createElement("tr");
    tr.dataset.name = k.name; tr.dataset.id = k.id;
    if (k.revoked_at) tr.className = "inactive";
    cell(tr, k.name); cell(tr, t("admin.key.kind." + k.kind));
    cell(tr, places.get(k.jurisdiction) || k.jurisdiction);
    cell(tr, when(k.created_at)); cell(tr, when(k.last_used_at));
    cell(tr, k.revoked_at ? t("admin.status.revoked") : t("admin.status.active"), "status");
    const actions = cell(tr, "");
    if (!k.revoked_at) button(actions, t("admin.key.revoke"), "revoke", () => revokeKey(k).catch(fail));
    return tr;
  }
  async function revokeKey(k) {
    if (!window.confirm(t("admin.key.revoke_confirm", { name: k.name }))) return;
    await api(`/api/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
    toast(t("admin.key.revoked", { name: k.name }));
    await loadKeys();
  }
  $("new-key").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const json = { name: $("nk-name").value.trim(), kind: $("nk-kind").value, jurisdiction: $("nk-jurisdiction").value };
    api("/api/v1/keys", { method: "POST", json }).then((data) => {
      showSecret(t("admin.key.secret_for", { name: data.key.name }), data.secret);
      ev.target.reset();
      return loadKeys();
    }).catch(fail);
  });

  // ---- subjects: search, page, edit level and street, CSV import and export -----------
  const streetItems = BOOT.jurisdictions.filter((j) => j.level === "street").map((j) => [j.id, j.name]);
  const levelItems = BOOT.levels.map((l) => [l, t("supervision." + l)]);
  options($("sf-level"), [["", t("admin.subj.all_levels")], ...levelItems]);
  const subj = { page: 1, size: 50 };
  function subjectParams() {
    const p = new URLSearchParams();
    const q = $("sf-q").value.trim();
    if (q) p.set("q", q);
    if ($("sf-level").value) p.set("level", $("sf-level").value);
    return p;
  }
  const subjectsTurn = newest();
  async function loadSubjects() {
    const fresh = subjectsTurn();
    const p = subjectParams();
    $("sf-csv").href = "/api/v1/admin/subjects.csv?" + p.toString();
    p.set("page", String(subj.page)); p.set("page_size", String(subj.size));
    const data = await api("/api/v1/admin/subjects?" + p.toString());
    if (!fresh()) return;
    const pages = Math.max(1, Math.ceil(data.total / data.page_size));
    $("subj-total").textContent = t("admin.subj.total", { n: data.total, page: data.page, pages });
    $("subj-prev").disabled = data.page <= 1;
    $("subj-next").disabled = data.page >= pages;
    repaint($("subjects").tBodies[0], data.items.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.id = s.id; tr.dataset.key = s.id;
      if (!s.active) tr.className = "inactive";
      cell(tr, s.id); cell(tr, s.name);
      const level = document.createElement("select");
      level.className = "level"; options(level, levelItems); painted(level, s.level);
      cell(tr, "").appendChild(level);
      const street = document.createElement("select");
      street.className = "street"; options(street, streetItems);
      if (!places.has(s.street_id)) street.appendChild(new Option(s.street_id, s.street_id));
      painted(street, s.street_id);
      cell(tr, "").appendChild(street);
      button(cell(tr, ""), t("admin.save"), "save", () => {
        const change = {};
        if (level.value !== s.level) change.level = level.value;
        if (street.value !== s.street_id) change.street_id = street.value;
        if (!Object.keys(change).length) return;
        api(`/api/v1/admin/subjects/${encodeURIComponent(s.id)}`, { method: "PATCH", json: change })
          .then(() => {
            level.dataset.painted = level.value; street.dataset.painted = street.value;
            toast(t("admin.subj.saved", { name: s.name })); return loadSubjects();
          }).catch(fail);
      });
      // its plan (its own, or its level's) and the window the watcher checks next
      const plan = document.createElement("input");
      painted(plan, s.plan || "");
      plan.className = "plan"; plan.size = 28; plan.maxLength = 512;
      const planCell = cell(tr, "", s.plan_override ? "override" : "");
      planCell.appendChild(plan);
      if (s.plan_override) {
        const tag = document.createElement("small");
        tag.className = "own"; tag.textContent = " " + t("admin.subj.own_plan");
        planCell.appendChild(tag);
      }
      const w = s.next_window;
      cell(tr, w ? when(w.start) + " – " + when(w.end) : "", "next");
      const acts = cell(tr, "");
      const planUrl = `/api/v1/admin/subjects/${encodeURIComponent(s.id)}/plan`;
      const planDone = () => {
        plan.dataset.painted = plan.value; toast(t("admin.subj.plan_saved", { name: s.name })); return loadSubjects();
      };
      button(acts, t("admin.subj.set_plan"), "plan-save", () => {
        api(planUrl, { method: "PUT", json: { spec: plan.value.trim() } }).then(planDone).catch(fail);
      });
      if (s.plan_override) button(acts, t("admin.subj.clear_plan"), "plan-clear", () => {
        api(planUrl, { method: "DELETE" }).then(planDone).catch(fail);
      });
      return tr;
    }));
  }
  $("subj-filter").addEventListener("submit", (ev) => { ev.preventDefault(); subj.page = 1; loadSubjects().catch(fail); });
  $("sf-csv").addEventListener("click", () => { $("sf-csv").href = "/api/v1/admin/subjects.csv?" + subjectParams().toString(); });
  $("subj-prev").addEventListener("click", () => { subj.page -= 1; loadSubjects().catch(fail); });
  $("subj-next").addEventListener("click", () => { subj.page += 1; loadSubjects().catch(fail); });
  $("subj-import").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = $("si-file").files[0];
    if (!file) return;
    try {
      const report = await api("/api/v1/admin/subjects/import", { method: "POST", json: { csv: await file.text() } });
      $("si-summary").textContent = t("admin.subj.report", report);
      const table = $("import-report");
      table.tBodies[0].replaceChildren(...report.rows.map((r) => {
        const tr = document.createElement("tr");
        tr.dataset.line = r.line; tr.className = "row-" + r.status;
        cell(tr, r.line); cell(tr, r.id); cell(tr, t("admin.subj.status." + r.status), "status"); cell(tr, r.error, "error");
        return tr;
      }));
      table.hidden = false;
      await loadSubjects();
    } catch (err) { fail(err); }
  });

  // ---- wall screens: pairing codes, paired screens, unpair (web/admin_walls.py) ---------
  async function loadWalls() {
    const data = await api("/api/v1/admin/walls");
    $("walls").tBodies[0].replaceChildren(...data.items.map((w) => {
      const tr = document.createElement("tr");
      tr.dataset.id = w.id; tr.dataset.name = w.name;
      if (w.revoked_at) tr.className = "inactive";
      cell(tr, w.name); cell(tr, places.get(w.jurisdiction) || w.jurisdiction);
      cell(tr, when(w.paired_at)); cell(tr, w.paired_by); cell(tr, when(w.last_seen_at), "seen");
      cell(tr, w.revoked_at ? t("admin.status.revoked") : (w.online ? t("admin.wall.online") : t("admin.status.active")), "status");
      const actions = cell(tr, "");
      if (!w.revoked_at) button(actions, t("admin.wall.unpair"), "unpair", () => {
        if (!window.confirm(t("admin.wall.unpair_confirm", { name: w.name }))) return;
        api(`/api/v1/admin/walls/${encodeURIComponent(w.id)}`, { method: "DELETE" })
          .then(() => { toast(t("admin.wall.unpaired", { name: w.name })); return loadWalls(); }).catch(fail);
      });
      return tr;
    }));
    $("wall-codes").tBodies[0].replaceChildren(...data.pending.map((c) => {
      const tr = document.createElement("tr");
      cell(tr, c.name); cell(tr, places.get(c.jurisdiction) || c.jurisdiction);
      cell(tr, c.created_by); cell(tr, when(c.expires_at));
      return tr;
    }));
  }
  $("new-wall").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const json = { name: $("nw-name").value.trim(), jurisdiction: $("nw-jurisdiction").value };
    api("/api/v1/wall/pairing-codes", { method: "POST", json }).then((data) => {
      showSecret(t("admin.wall.code_for", { name: json.name, until: when(data.expires_at) }), data.code);
      ev.target.reset();
      return loadWalls();
    }).catch(fail);
  });

  // ---- check-in plans (live: no restart) --------------------------------------------
  const plansTurn = newest();
  async function loadPlans() {
    const fresh = plansTurn();
    const data = await api("/api/v1/admin/plans");
    if (!fresh()) return;
    repaint($("plans").tBodies[0], data.items.map((p) => {
      const tr = document.createElement("tr");
      tr.dataset.level = p.level; tr.dataset.key = p.level;
      cell(tr, t("supervision." + p.level));
      const input = painted(document.createElement("input"), p.spec);
      input.className = "spec"; input.size = 40; input.maxLength = 512;
      cell(tr, "").appendChild(input);
      cell(tr, when(p.next_deadline), "next");
      button(cell(tr, ""), t("admin.save"), "save", () => {
        api(`/api/v1/admin/plans/${p.level}`, { method: "PUT", json: { spec: input.value.trim() } })
          .then(() => { input.dataset.painted = input.value; toast(t("admin.plan.saved")); return loadPlans(); }).catch(fail);
      });
      return tr;
    }));
  }

  // ---- alarm severities, SLA minutes, loop hours (live: web/admin_alarm_settings.py) ---
  const alarmFields = { "ac-severity": "alarm_severity", "ac-ack": "ack_sla_minutes", "ac-report": "report_sla_hours", "ac-loop": "loop_hours" };
  async function loadAlarmSettings() {
    const data = await api("/api/v1/admin/alarm-settings");
    for (const [id, name] of Object.entries(alarmFields)) $(id).value = data[name];
  }
  $("alarm-settings").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const json = {};
    for (const [id, name] of Object.entries(alarmFields)) json[name] = name === "loop_hours" ? Number($(id).value) : $(id).value.trim();
    api("/api/v1/admin/alarm-settings", { method: "PUT", json })
      .then(() => { toast(t("admin.alarmcfg.saved")); return loadAlarmSettings(); }).catch(fail);
  });

  // ---- suppressions and leaves -------------------------------------------------------
  async function loadSupervision() {
    const [sups, leaves] = await Promise.all([api("/api/v1/admin/suppressions"), api("/api/v1/admin/leaves")]);
    const now = Date.now();
    $("suppressions").tBodies[0].replaceChildren(...sups.items.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.id = s.id;
      const ended = s.revoked_at || Date.parse(s.until) <= now;
      if (ended) tr.className = "inactive";
      cell(tr, s.subject_id);
      cell(tr, s.kinds.length ? s.kinds.map((k) => t("kind." + k)).join("、") : t("admin.sup.all_kinds"));
      cell(tr, s.reason); cell(tr, when(s.starts_at)); cell(tr, when(s.until));
      cell(tr, s.revoked_at ? t("admin.status.revoked") : (ended ? t("admin.status.ended") : t("admin.status.active")), "status");
      const actions = cell(tr, "");
      if (!ended) button(actions, t("admin.key.revoke"), "revoke", () => {
        if (!window.confirm(t("admin.sup.revoke_confirm", { name: s.subject_id }))) return;
        api(`/api/v1/admin/suppressions/${s.id}`, { method: "DELETE" }).then(loadSupervision).catch(fail);
      });
      return tr;
    }));
    $("leaves").tBodies[0].replaceChildren(...leaves.items.map((l) => {
      const tr = document.createElement("tr");
      tr.dataset.id = l.id;
      const open = l.state === "active" || l.state === "overdue";
      if (!open) tr.className = "inactive";
      cell(tr, l.subject_id); cell(tr, l.destination); cell(tr, when(l.starts_at)); cell(tr, when(l.ends_at));
      cell(tr, t("admin.leave.state." + l.state), "status");
      const actions = cell(tr, "");
      if (open) button(actions, t("admin.leave.cancel"), "cancel", () => {
        if (!window.confirm(t("admin.leave.cancel_confirm", { name: l.subject_id }))) return;
        api(`/api/v1/admin/leaves/${l.id}/cancel`, { method: "POST" }).then(loadSupervision).catch(fail);
      });
      return tr;
    }));
  }

  // ---- audit --------------------------------------------------------------------------
  let before = null;
  function auditParams() {
    const p = new URLSearchParams();
    for (const name of ["actor", "action", "object"]) {
      const v = $("af-" + name).value.trim();
      if (v) p.set(name, v);
    }
    for (const name of ["since", "until"]) {
      const v = $("af-" + name).value;
      if (v) p.set(name, new Date(v).toISOString());
    }
    return p;
  }
  async function loadAudit(more) {
    const p = auditParams();
    $("af-csv").href = "/api/v1/audit.csv?" + p.toString();
    if (more && before) p.set("before", String(before));
    const data = await api("/api/v1/audit?" + p.toString());
    const rows = data.items.map((e) => {
      const tr = document.createElement("tr");
      tr.dataset.id = e.id;
      cell(tr, e.id); cell(tr, window.fmtDateTime(e.at)); cell(tr, e.actor); cell(tr, e.action);
      cell(tr, e.target_type ? `${e.target_type}:${e.target_id}` : e.target_id);
      cell(tr, e.details === "{}" ? "" : e.details, "details");
      cell(tr, e.hash.slice(0, 12), "hash").title = e.hash;
      return tr;
    });
    const body = $("audit").tBodies[0];
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    before = data.next_before;
    $("audit-more").hidden = !before;
  }
  $("audit-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadAudit(false).catch(fail); });
  $("af-csv").addEventListener("click", () => { $("af-csv").href = "/api/v1/audit.csv?" + auditParams().toString(); });
  $("audit-more").addEventListener("click", () => loadAudit(true).catch(fail));
  $("af-verify").addEventListener("click", () => {
    const out = $("verify-result");
    out.textContent = t("admin.audit.verifying"); out.className = "";
    api("/api/v1/audit/verify").then((r) => {
      out.className = r.ok ? "ok" : "broken";
      out.textContent = r.ok
        ? t("admin.audit.ok", { n: r.checked })
        : t("admin.audit.broken", { id: r.broken_id, reason: r.reason, n: r.checked });
    }).catch(fail);
  });

  $("logout").addEventListener("click", async () => {
    await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
    location.href = "/login?signed_out=1";
  });

  loadUsers().catch(fail);
})();
