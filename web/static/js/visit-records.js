/*
 * Visit staff's records (/visits/records): the inmates of their prisons with each relative's
 * status (pending, approved, banned until a date), the photo and the proof of relationship on
 * file; register a relative, attach the files, verify (only a verified relative can be
 * booked), lift a ban early, and book the ticked relatives (the booking form on /visits,
 * filled in).
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  const t = window.t;
  const $ = (id) => document.getElementById(id);

  async function call(method, path, body, form) {
    const headers = { "X-CSRF-Token": boot.csrf_token };
    if (!form) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, {
      method,
      headers,
      body: form || (body === undefined ? undefined : JSON.stringify(body)),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw (data && data.error) || { code: "server" };
    return data;
  }

  function say(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  function done(text) {
    $("done").textContent = text || "";
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function button(label, onClick, cls) {
    const b = el("button", label, "vs-btn" + (cls ? " " + cls : ""));
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  function statusText(r) {
    if (r.status === "banned" && r.banned_until) {
      return t("visits.records.banned_until", { day: window.fmtDateTime(r.banned_until).slice(0, 10) });
    }
    return t("visits.relstatus." + r.status);
  }

  async function attempt(fn, okText) {
    say("");
    done("");
    try {
      await fn();
      done(okText);
      await load();
    } catch (err) {
      say(err.message || err.code);
    }
  }

  function fileButton(label, accept, rel, kind) {
    const wrap = el("label", null, "vs-btn vs-file");
    wrap.appendChild(document.createTextNode(label));
    const input = document.createElement("input");
    input.type = "file";
    input.accept = accept;
    input.hidden = true;
    input.dataset.kind = kind;
    input.addEventListener("change", () => {
      if (!input.files || !input.files[0]) return;
      const form = new FormData();
      form.append("file", input.files[0]);
      attempt(
        () => call("PUT", `/api/v1/visits/relatives/${rel.id}/${kind}`, undefined, form),
        t("visits.records.saved", { name: rel.name })
      );
    });
    wrap.appendChild(input);
    return wrap;
  }

  function relativeRow(r) {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.dataset.status = r.status;
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.className = "pick";
    pick.disabled = !r.bookable;
    pick.value = r.id;
    const who = el("td");
    who.appendChild(pick);
    who.appendChild(document.createTextNode(" " + r.name));
    tr.appendChild(who);
    tr.appendChild(el("td", r.relationship));
    tr.appendChild(el("td", "…" + r.id_last4));
    tr.appendChild(el("td", r.phone || "—"));
    tr.appendChild(el("td", statusText(r), "status"));
    const photo = el("td");
    if (r.photo_url) {
      const img = document.createElement("img");
      img.src = r.photo_url;
      img.alt = t("visits.records.photo");
      img.className = "vs-thumb";
      photo.appendChild(img);
    }
    photo.appendChild(fileButton(r.has_photo ? t("visits.records.replace") : t("visits.records.upload"), "image/jpeg,image/png", r, "photo"));
    tr.appendChild(photo);
    const proof = el("td");
    if (r.proof_url) {
      const a = el("a", t("visits.records.open"));
      a.href = r.proof_url;
      a.target = "_blank";
      a.rel = "noopener";
      proof.appendChild(a);
      proof.appendChild(document.createTextNode(" "));
    }
    proof.appendChild(fileButton(r.has_proof ? t("visits.records.replace") : t("visits.records.upload"), "image/jpeg,image/png,application/pdf", r, "proof"));
    tr.appendChild(proof);
    const actions = el("td");
    if (r.status === "pending") {
      const b = button(t("visits.records.verify"), () =>
        attempt(() => call("POST", `/api/v1/visits/relatives/${r.id}/verify`, {}), t("visits.records.verified", { name: r.name })), "vs-ok verify");
      if (!r.has_photo || !r.has_proof) b.title = t("visits.records.verify_needs");
      actions.appendChild(b);
    }
    if (r.status === "banned") {
      actions.appendChild(button(t("visits.records.unban"), () => {
        const reason = prompt(t("visits.records.unban_reason"));
        if (reason && reason.trim()) {
          attempt(() => call("POST", `/api/v1/visits/relatives/${r.id}/unban`, { reason: reason.trim() }), t("visits.records.unbanned", { name: r.name }));
        }
      }, "unban"));
    }
    tr.appendChild(actions);
    return tr;
  }

  function inmateCard(inmate) {
    const node = $("inmate-tpl").content.firstElementChild.cloneNode(true);
    node.dataset.id = inmate.id;
    node.querySelector(".name").textContent = inmate.name;
    node.querySelector(".meta").textContent = `${inmate.id} · ${inmate.prison_name}`;
    const body = node.querySelector("tbody");
    for (const r of inmate.relatives) body.appendChild(relativeRow(r));
    node.querySelector(".book").addEventListener("click", () => {
      const ids = [...node.querySelectorAll("input.pick:checked")].map((c) => c.value);
      if (!ids.length) return say(t("visits.records.pick_first"));
      location.href = `/visits?inmate=${encodeURIComponent(inmate.id)}&relatives=${ids.join(",")}`;
    });
    const form = node.querySelector("form.register");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const data = new FormData(form);
      const body = {
        name: String(data.get("name")).trim(),
        relationship: String(data.get("relationship")).trim(),
        id_number: String(data.get("id_number")).trim(),
      };
      const phone = String(data.get("phone") || "").trim();
      if (phone) body.phone = phone;
      attempt(
        () => call("POST", `/api/v1/visits/inmates/${encodeURIComponent(inmate.id)}/relatives`, body),
        t("visits.records.registered", { name: body.name })
      );
    });
    return node;
  }

  async function load() {
    const q = new URLSearchParams();
    if ($("q").value.trim()) q.set("q", $("q").value.trim());
    let page;
    try {
      page = await call("GET", `/api/v1/visits/inmates?${q}`);
    } catch (err) {
      return say(err.message || err.code);
    }
    const box = $("inmates");
    box.textContent = "";
    if (!page.inmates.length) box.appendChild(el("p", t("visits.records.none")));
    for (const inmate of page.inmates) box.appendChild(inmateCard(inmate));
  }

  $("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  load();
})();
