/*
 * The relative's booking page (/visits/book, public): the ID number and phone on their
 * record find the inmates they may visit and the free times; they pick one, may bring the
 * inmate's other relatives, and send the request (staff approve it, the code comes by
 * SMS). A refusal says what to change, in plain words; their own requests can be
 * cancelled here. Big buttons, few words: an elderly relative's phone.
 * State for tests: window.bookPage = {booking, last}.
 */
(function () {
  "use strict";

  const t = window.t;
  const $ = (id) => document.getElementById(id);
  const page = { booking: null, last: null };
  window.bookPage = page;
  let who = null;

  function say(id, text) {
    $(id).hidden = !text;
    $(id).textContent = text || "";
  }

  function when(iso) {
    return window.fmtDateTime ? window.fmtDateTime(iso) : iso;
  }

  function problem(status, err) {
    if (status === 429) return t("visits.book_page.too_many");
    if (status === 401 || status === 422) return t("visits.book_page.wrong");
    const e = err || {};
    if (e.code === "booking_refused") {
      const rule = (e.details && e.details.rule) || "";
      const text = t("visits.book_page.rule." + rule, { earliest: (e.details && e.details.earliest) || "", month: (e.details && e.details.month) || "" });
      return text === "visits.book_page.rule." + rule ? e.message : text;
    }
    if (status === 404) return t("visits.book_page.not_yours");
    if (status === 409) return t("visits.book_page.not_now");
    return t("visits.book_page.failed");
  }

  async function call(method, url, body) {
    const resp = await fetch(url, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw { status: resp.status, err: (data && data.error) || {} };
    return data;
  }

  async function look(ev) {
    if (ev) ev.preventDefault();
    who = { id_number: $("id-number").value.trim(), phone: $("phone").value.trim() };
    say("who-problem", "");
    try {
      const q = new URLSearchParams(who);
      page.booking = await call("GET", "/api/v1/visits/booking?" + q.toString());
      $("step-who").hidden = true;
      $("step-book").hidden = false;
      show();
    } catch (e) {
      say("who-problem", problem(e.status, e.err));
    }
  }

  function show() {
    const b = page.booking;
    const sel = $("inmate");
    const keep = sel.value;
    sel.innerHTML = "";
    for (const i of b.inmates) {
      const o = document.createElement("option");
      o.value = i.id;
      o.textContent = `${i.name}（${i.prison_name}）`;
      sel.appendChild(o);
    }
    if (keep) sel.value = keep;
    inmate();
    const ul = $("mine");
    ul.innerHTML = "";
    for (const r of b.requests) {
      const li = document.createElement("li");
      li.dataset.visit = r.id;
      const state = r.outcome ? t("visits.outcome." + r.outcome) : t("visits.book_page.state." + r.state);
      li.textContent = `${when(r.starts_at)} ${r.inmate_name} — ${state} `;
      if (r.cancellable) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.className = "vs-btn";
        btn.textContent = t("visits.book_page.cancel");
        btn.addEventListener("click", () => cancel(r.id));
        li.appendChild(btn);
      }
      ul.appendChild(li);
    }
  }

  function inmate() {
    const i = page.booking.inmates.find((x) => x.id === $("inmate").value);
    if (!i) return;
    const status = i.me.status === "pending" ? t("visits.book_page.pending")
      : (i.me.banned_until && new Date(i.me.banned_until) > new Date()) ? t("visits.book_page.banned", { until: when(i.me.banned_until) }) : "";
    say("me-status", status);
    const slot = $("slot");
    slot.innerHTML = "";
    for (const s of i.slots) {
      const o = document.createElement("option");
      o.value = s.starts_at;
      o.textContent = when(s.starts_at);
      slot.appendChild(o);
    }
    if (!i.slots.length) {
      const o = document.createElement("option");
      o.value = "";
      o.textContent = t("visits.book_page.no_slots");
      slot.appendChild(o);
    }
    const box = $("others");
    box.querySelectorAll("label").forEach((n) => n.remove());
    for (const r of i.others) {
      const l = document.createElement("label");
      const c = document.createElement("input");
      c.type = "checkbox";
      c.value = r.id;
      l.appendChild(c);
      l.appendChild(document.createTextNode(` ${r.name}（${r.relationship}）`));
      box.appendChild(l);
    }
  }

  async function book(ev) {
    ev.preventDefault();
    say("book-problem", "");
    say("book-done", "");
    if (!$("slot").value) return say("book-problem", t("visits.book_page.no_slots"));
    const relative_ids = [...$("others").querySelectorAll("input:checked")].map((c) => Number(c.value));
    $("book-go").disabled = true;
    try {
      page.last = await call("POST", "/api/v1/visits/requests", {
        ...who, inmate_id: $("inmate").value, starts_at: $("slot").value, relative_ids,
      });
      say("book-done", t("visits.book_page.done", { when: when(page.last.starts_at) }));
      await refresh();
    } catch (e) {
      say("book-problem", problem(e.status, e.err));
    } finally {
      $("book-go").disabled = false;
    }
  }

  async function cancel(id) {
    if (!confirm(t("visits.book_page.cancel_sure"))) return;
    try {
      await call("POST", `/api/v1/visits/requests/${id}/cancel`, who);
      say("book-done", t("visits.book_page.cancelled"));
      await refresh();
    } catch (e) {
      say("book-problem", problem(e.status, e.err));
    }
  }

  async function refresh() {
    page.booking = await call("GET", "/api/v1/visits/booking?" + new URLSearchParams(who).toString());
    show();
  }

  $("who-form").addEventListener("submit", look);
  $("book-form").addEventListener("submit", book);
  $("inmate").addEventListener("change", inmate);
})();
