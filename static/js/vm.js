/* The VM page's "Live migrate" form: refresh the prediction as options change.
 * Needs common.js (hvweb.fmt). "As fast as the machine can" is a choice of
 * its own (pace=unpaced); the speed box then rests. */
"use strict";
(function () {
  const form = document.getElementById("migrate-form");
  if (!form) return;
  const box = document.getElementById("prediction");
  const field = (name) => box.querySelector('[data-p="' + name + '"]');
  const fmt = hvweb.fmt;
  const speed = form.elements.speed;
  let timer = null;
  let asked = 0;

  function pace() {
    const chosen = form.querySelector("input[name=pace]:checked");
    return chosen ? chosen.value : "paced";
  }

  function syncPace() {
    speed.disabled = pace() === "unpaced";
  }

  async function refresh() {
    if (!field("passes")) return; // no move can happen: nothing to predict
    const params = new URLSearchParams();
    for (const name of ["performance_option", "policy", "downtime_limit_ms", "speed"]) {
      params.set(name, form.elements[name].value);
    }
    params.set("pace", pace());
    const mine = ++asked;
    box.setAttribute("aria-busy", "true");
    let body;
    try {
      const response = await fetch(form.dataset.predictionUrl + "?" + params, {
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
    field("total").textContent = fmt.duration(body.total_time_s) + " simulated" +
      (body.wall_time_s !== null ? ", about " + fmt.duration(body.wall_time_s) + " here" : ", unpaced");
    field("downtime").textContent = fmt.duration(body.downtime_s);
    field("bytes").textContent = fmt.size(body.bytes_sent);
    field("reason").textContent = body.reason;
    field("reason").classList.toggle("bad", !body.converges);
  }

  form.addEventListener("input", function (e) {
    if (e.target.name === "destination") return;
    if (e.target.name === "pace") syncPace();
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  form.addEventListener("change", function (e) {
    if (e.target.name === "pace") syncPace();
  });
  syncPace();
})();
