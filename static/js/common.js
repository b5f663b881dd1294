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

hvweb.bytes = function (n) {
  if (n === null || n === undefined) return "—";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + " " + units[i];
};

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
