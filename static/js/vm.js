/* The VM page's "Live migrate" form: refresh the prediction as options change.
 * Needs common.js (hvweb.bytes). */
"use strict";
(function () {
  const form = document.getElementById("migrate-form");
  if (!form) return;
  const box = document.getElementById("prediction");
  const field = (name) => box.querySelector('[data-p="' + name + '"]');
  let timer = null;
  let asked = 0;

  async function refresh() {
    const params = new URLSearchParams();
    for (const name of ["performance_option", "policy", "downtime_limit_ms", "speed"]) {
      params.set(name, form.elements[name].value);
    }
    const mine = ++asked;
    box.setAttribute("aria-busy", "true");
    let response, body;
    try {
      response = await fetch(form.dataset.predictionUrl + "?" + params, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      body = await response.json();
    } catch (err) {
      body = { errors: { prediction: ["the server did not answer; try again"] } };
    }
    if (mine !== asked) return; // a newer request is on its way
    box.removeAttribute("aria-busy");
    const errors = field("errors");
    if (body.errors) {
      errors.textContent = Object.entries(body.errors)
        .map(([name, msgs]) => name + ": " + msgs.join(" ")).join(" ");
      errors.hidden = false;
      return;
    }
    errors.hidden = true;
    field("passes").textContent = body.passes;
    field("total").textContent = body.total_time_s.toFixed(2) + " s simulated" +
      (body.wall_time_s !== null ? ", about " + body.wall_time_s.toFixed(1) + " s here" : ", unpaced");
    field("downtime").textContent = body.downtime_s.toFixed(3) + " s";
    field("bytes").textContent = hvweb.bytes(body.bytes_sent);
    field("reason").textContent = body.reason;
    field("reason").classList.toggle("bad", !body.converges);
  }

  form.addEventListener("input", function (e) {
    if (e.target.name === "destination") return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
})();
