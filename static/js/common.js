/* What every page's script shares: the server's constants and small helpers
 * (URLs, sizes, elements, memory bars). base.html loads it on every page;
 * live.js (the websocket) builds on it.
 *
 * hvweb.constants is the one json_script block base.html carries
 * (#hvweb-constants, from hvweb.moves.templatetags.page_constants): URL
 * templates, the stages, the states in which a move is active, labels. The
 * scripts read these instead of typing Hyper-V's rules again.
 */
"use strict";
window.hvweb = window.hvweb || {};

hvweb.constants = JSON.parse(document.getElementById("hvweb-constants").textContent);

hvweb.urlFor = function (template, id) {
  // Django reversed the URL with id 0 (".../0/"); put the real id in its place.
  return template.replace(/\/0\/$/, "/" + id + "/");
};

/* Sizes, rates, durations and times as every page shows them: the rules of
 * migrator/units.py (the template filters of hvweb/core/templatetags/units.py),
 * which a browser test holds these to. Sizes are binary (KiB, MiB, GiB),
 * link rates decimal (Mbit/s, Gbit/s), durations keep three significant
 * digits in a unit that fits, times name their zone. */
hvweb.fmt = (function () {
  const NONE = "—";
  const none = (x) => x === null || x === undefined || Number.isNaN(x);
  function three(v) {
    const a = Math.abs(v);
    return a >= 99.95 ? v.toFixed(0) : a >= 9.995 ? v.toFixed(1) : v.toFixed(2);
  }
  const trim = (s) => (s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);
  function size(n) {
    if (none(n)) return NONE;
    for (const [unit, scale] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20]]) {
      if (Math.abs(n) >= scale * 0.9995) return three(n / scale) + " " + unit;
    }
    if (Math.abs(n) >= 1024) return three(n / 1024) + " KiB";
    return n.toFixed(0) + " B";
  }
  function rate(bps) {
    if (none(bps)) return NONE;
    for (const [unit, scale] of [["Tbit/s", 1e12], ["Gbit/s", 1e9], ["Mbit/s", 1e6], ["kbit/s", 1e3]]) {
      if (bps >= scale) return trim(three(bps / scale)) + " " + unit;
    }
    return bps.toFixed(0) + " bit/s";
  }
  function duration(s) {
    if (none(s)) return NONE;
    if (s === 0) return "0 s";
    if (s < 0.9995) return three(s * 1e3) + " ms";
    if (s < 59.95) return three(s) + " s";
    const whole = Math.round(s);
    if (whole < 3600) return Math.floor(whole / 60) + " min " + (whole % 60) + " s";
    return Math.floor(whole / 3600) + " h " + Math.floor((whole % 3600) / 60) + " min";
  }
  function count(n) { return none(n) ? NONE : Math.round(n).toLocaleString("en"); }
  // The console shows times in UTC (settings.TIME_ZONE), and says so.
  function time(iso, withDate) {
    if (!iso) return NONE;
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return NONE;
    const text = d.toISOString();
    return (withDate ? text.slice(0, 10) + " " + text.slice(11, 19) : text.slice(11, 23)) + " UTC";
  }
  return { size, rate, duration, count, time };
})();

// Older name of hvweb.fmt.size, kept for scripts that still call it.
hvweb.bytes = hvweb.fmt.size;

hvweb.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
};

hvweb.label = function (labels, value) {
  // The server's label of a stored value (a state, a power state), else the value.
  return (labels && labels[value]) || value;
};

hvweb.meter = function (meter, used, reserved, total) {
  // A memory bar: in use, then reserved by moves coming (hatched), of total.
  const pct = (x) => (total ? Math.min(100, Math.round((100 * x) / total)) : 0);
  const [usedBar, reservedBar] = meter.children;
  usedBar.style.width = pct(used) + "%";
  reservedBar.style.width = Math.min(100 - pct(used), pct(reserved)) + "%";
  meter.setAttribute("aria-label", pct(used) + " % of memory in use" +
    (reserved ? ", " + pct(reserved) + " % reserved by moves coming" : ""));
};

// Bars drawn by the server carry their figures; draw them now.
for (const meter of document.querySelectorAll("[data-meter][data-total]")) {
  hvweb.meter(meter, Number(meter.dataset.used), Number(meter.dataset.reserved),
    Number(meter.dataset.total));
}
