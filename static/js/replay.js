/* A what-if replay beside the move it re-ran: the per-pass chart overlaid.
 * Data from the #replay-data json_script; while a worker runs the replay the
 * page asks the API for it and reloads once it is done. */
"use strict";
(function () {
  const root = document.getElementById("replay-page");
  const data = JSON.parse(document.getElementById("replay-data").textContent);
  const chart = document.getElementById("chart-overlay");
  const COLORS = ["#1f6feb", "#bc4c00"];

  if (data.state === "queued") {
    const poll = async function () {
      try {
        const response = await fetch(data.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        const body = await response.json();
        if (body.state !== "queued") { window.location.reload(); return; }
      } catch (err) { /* try again */ }
      setTimeout(poll, 500);
    };
    setTimeout(poll, 300);
    return;
  }

  const traces = [];
  data.sides.forEach(function (side, i) {
    const passes = side.passes || [];
    traces.push({ type: "bar", name: side.label + ": pages sent", x: passes.map((p) => p.pass_no),
      y: passes.map((p) => p.pages_sent), marker: { color: COLORS[i], opacity: 0.75 } });
    traces.push({ type: "scatter", mode: "lines+markers", name: side.label + ": re-dirtied",
      x: passes.map((p) => p.pass_no), y: passes.map((p) => p.pages_dirtied),
      line: { color: COLORS[i], dash: "dot" } });
    if (passes.some((p) => p.throttle_pct > 0)) {
      traces.push({ type: "scatter", mode: "lines+markers", name: side.label + ": throttle %", yaxis: "y2",
        x: passes.map((p) => p.pass_no), y: passes.map((p) => p.throttle_pct), line: { color: COLORS[i], shape: "hv", width: 1 } });
    }
  });
  const layout = {
    margin: { l: 56, r: 48, t: 8, b: 40 }, legend: { orientation: "h", y: -0.3 }, barmode: "group",
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", font: { size: 11 },
    xaxis: { title: { text: "pass" }, dtick: 1 }, yaxis: { title: { text: "pages" } },
    yaxis2: { title: { text: "throttle %" }, overlaying: "y", side: "right", range: [0, 100], dtick: 25, showgrid: false },
  };
  Plotly.newPlot(chart, traces, layout, { displayModeBar: false, responsive: true });
  chart.dataset.traces = traces.length;
  root.dataset.drawn = "true";
})();
