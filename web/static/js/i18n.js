/*
 * The page's UI strings: the server embeds this language's catalogue (web/locales/<lang>.json)
 * in <script id="i18n" type="application/json">; every page script translates with
 * t("key", { name: value }) and keeps no copy of any text. A missing key shows as itself.
 *
 * Times: every date and time a page shows is in the center's time zone (the `timezone`
 * setting, given as <html data-tz>), never the browser's — an officer whose laptop runs on
 * UTC must see the same 03:48 as the wall. One format for both languages: 2026-12-02 03:48.
 */
(function () {
  "use strict";
  const el = document.getElementById("i18n");
  const strings = el ? JSON.parse(el.textContent) : {};
  const has = Object.prototype.hasOwnProperty;
  window.I18N = strings;
  window.t = function t(key, vars) {
    const text = has.call(strings, key) ? strings[key] : key;
    if (!vars) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (has.call(vars, name) ? String(vars[name]) : whole));
  };

  const TZ = document.documentElement.dataset.tz || "Asia/Shanghai";
  window.CENTER_TZ = TZ;
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  /** {y, mo, d, h, mi, s} of an instant in the center's time zone. */
  function local(value) {
    const date = value instanceof Date ? value : new Date(value);
    const out = {};
    for (const p of parts.formatToParts(date)) out[p.type] = p.value;
    return { y: out.year, mo: out.month, d: out.day, h: out.hour, mi: out.minute, s: out.second };
  }
  /** Today's date (YYYY-MM-DD) in the center's time zone. */
  window.centerToday = function centerToday(now) {
    const p = local(now || new Date());
    return `${p.y}-${p.mo}-${p.d}`;
  };
  /** "2026-12-02 03:48" in the center's time zone ("" for no value). */
  window.fmtDateTime = function fmtDateTime(iso) {
    if (!iso) return "";
    const p = local(iso);
    return `${p.y}-${p.mo}-${p.d} ${p.h}:${p.mi}`;
  };
  /** "03:48" for today (center time), "12-01 23:10" for another day. */
  window.fmtTime = function fmtTime(iso) {
    if (!iso) return "";
    const p = local(iso), today = window.centerToday();
    return `${p.y}-${p.mo}-${p.d}` === today ? `${p.h}:${p.mi}` : `${p.mo}-${p.d} ${p.h}:${p.mi}`;
  };
})();
