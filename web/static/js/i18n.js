/*
 * The page's UI strings: the server embeds this language's catalogue (web/locales/<lang>.json)
 * in <script id="i18n" type="application/json">; every page script translates with
 * t("key", { name: value }) and keeps no copy of any text. A missing key shows as itself.
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
})();
