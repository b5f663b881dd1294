/* The migration page: one move, live from /ws/migrations/<id>/.
 *
 * The first snapshot sets the page's state; frames are then applied strictly in
 * sequence order (a frame that arrives early waits for the ones before it).
 * After a dropped connection the page reconnects to
 * /ws/migrations/<id>/?resume_from=<last seq applied>: the server then sends
 * every later frame once, in order, and the page skips that snapshot. A gap
 * that does not fill within two seconds is treated as a dropped connection.
 * Frames only change the state; drawing happens at most every 100 ms, so a
 * burst of progress frames costs one redraw. The move's record is the API's
 * (pass_count, cancellable, ...); a frame says where the move stands after
 * its event (hvweb.moves.frames), so the page asks the server, not a rule of
 * its own, whether the move may still be cancelled.
 */
"use strict";
(function () {
  const root = document.getElementById("migration");
  const STAGE = Object.fromEntries(hvweb.constants.stages.map((s) => [s.stage, s]));
  const ACTIVE = hvweb.constants.active_states;
  const LOG_MAX = 500;
  const el = hvweb.el;
  const $ = (sel) => root.querySelector(sel);
  const MiB = 1024 * 1024;
  const PLOT = { displayModeBar: false, responsive: true };
  const LAYOUT = {
    margin: { l: 56, r: 12, t: 8, b: 40 }, legend: { orientation: "h", y: -0.25 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", font: { size: 11 },
  };

  const state = {
    m: null, stages: {}, passes: [], predicted: null,
    lastSeq: 0, early: new Map(), bytes: 0, remaining: null, rates: null, passNo: null,
    lastY: -1, newX: [], newY: [], points: 0,
    dirty: new Set(), timer: null, gapTimer: null,
    applied: 0, maxLagMs: 0, lastLagMs: 0, lags: [], renders: 0, lastAt: null,
  };
  let conn = null;

  // --- Receiving ----------------------------------------------------------------

  function load(snap) {
    const m = snap.migration;
    state.m = m;
    state.predicted = m.predicted && Object.keys(m.predicted).length ? m.predicted : null;
    state.stages = Object.fromEntries(snap.stages.map((s) => [s.stage, s]));
    state.passes = snap.passes.slice();
    state.lastSeq = snap.last_seq;
    state.early.clear();
    const p = m.progress || {};
    const series = snap.series;
    state.bytes = Math.max(m.bytes_sent || 0, p.bytes_sent || 0,
      series.length ? series[series.length - 1].bytes_sent : 0);
    state.remaining = m.final_dirty_pages ?? p.remaining_dirty_pages ?? null;
    state.rates = p.link_rate ? { dirty: p.dirty_rate, link: p.link_rate } : null;
    state.passNo = p.pass_no ?? null;
    const xs = [], ys = [];
    for (const point of series) {
      if (point.bytes_sent >= state.lastY) {
        xs.push(point.t); ys.push(point.bytes_sent / MiB); state.lastY = point.bytes_sent;
      }
    }
    if (m.state === "succeeded" && m.total_time_s !== null) {
      xs.push(m.total_time_s); ys.push(m.bytes_sent / MiB); state.lastY = m.bytes_sent;
    }
    state.points = xs.length;
    Plotly.newPlot("chart-bytes", [{
      x: xs, y: ys, type: "scatter", mode: "lines", name: "Bytes sent", line: { color: "#1f6feb" },
    }], { ...LAYOUT, showlegend: false, xaxis: { title: { text: "simulated s" } },
      yaxis: { title: { text: "MiB" }, rangemode: "tozero" } }, PLOT);
    const log = $("#log");
    const shown = snap.log.filter(logged);
    log.replaceChildren(...shown.slice(-LOG_MAX).map(logItem));
    if (!shown.length) log.append(el("li", { class: "muted empty" }, "No event yet."));
    for (const part of ["all"]) state.dirty.add(part);
    draw();
  }

  function receive(frame) {
    if (frame.seq <= state.lastSeq || state.m === null) return; // seen already
    state.early.set(frame.seq, frame);
    while (state.early.has(state.lastSeq + 1)) {
      const next = state.early.get(state.lastSeq + 1);
      state.early.delete(next.seq);
      apply(next);
      state.lastSeq = next.seq;
    }
    if (state.early.size && !state.gapTimer) {
      // A frame is missing: reconnect, resuming after the last one applied.
      state.gapTimer = setTimeout(function () {
        state.gapTimer = null;
        if (state.early.size && conn.socket()) conn.socket().close();
      }, 2000);
    }
    schedule();
  }

  function apply(f) {
    const m = state.m;
    const d = f.data || {};
    m.state = f.state;
    m.stage = f.stage;
    if (f.cancellable !== undefined) m.cancellable = f.cancellable;
    if (f.cancel_requested !== undefined) m.cancel_requested = f.cancel_requested;
    state.applied += 1;
    state.lastAt = f.at;
    state.lastLagMs = Date.now() - Date.parse(f.at);
    state.maxLagMs = Math.max(state.maxLagMs, state.lastLagMs);
    state.lags.push(state.lastLagMs); // for benchmarks/pages.py
    if (state.lags.length > 5000) state.lags.splice(0, 1000);
    switch (f.kind) {
      case "started":
        state.predicted = m.predicted = d.predicted;
        state.dirty.add("charts");
        break;
      case "stage_started":
        state.stages[d.stage] = { stage: d.stage, outcome: "running", started_t: d.t, duration_s: null };
        break;
      case "stage_finished": {
        const s = state.stages[d.stage] || (state.stages[d.stage] = { stage: d.stage });
        s.outcome = "finished";
        s.duration_s = d.duration_s;
        break;
      }
      case "pass_finished":
        if (!state.passes.some((p) => p.pass_no === d.pass_no)) state.passes.push(d);
        state.remaining = d.remaining_dirty_pages;
        state.dirty.add("charts");
        break;
      case "progress":
        state.passNo = d.pass_no;
        state.remaining = d.remaining_dirty_pages;
        state.rates = { dirty: d.dirty_rate, link: d.link_rate };
        addPoint(d.t, d.bytes_sent);
        break;
      case "completed": {
        const r = d.result;
        Object.assign(m, { pass_count: r.passes, bytes_sent: r.bytes_sent, total_time_s: r.total_time_s,
          downtime_s: r.downtime_s, verified: r.verified, stop_reason: r.stop_reason });
        addPoint(r.total_time_s, r.bytes_sent);
        state.remaining = r.final_dirty_pages;
        state.dirty.add("charts");
        break;
      }
      case "failed":
      case "cancelled": {
        if (d.stage && state.stages[d.stage]) state.stages[d.stage].outcome = f.kind;
        m.error_code = d.code || "CANCELLED";
        m.error_message = d.reason;
        break;
      }
    }
    if (f.kind !== "progress") addLog(f);
  }

  function addPoint(t, bytes) {
    state.bytes = Math.max(state.bytes, bytes); // shown progress never runs backwards
    if (bytes < state.lastY) return;
    state.lastY = bytes;
    state.newX.push(t);
    state.newY.push(bytes / MiB);
  }

  // --- Drawing ------------------------------------------------------------------

  function schedule() {
    if (state.timer) return;
    state.timer = setTimeout(function () { state.timer = null; draw(); }, 100);
  }

  function fmtS(x, digits) { return x === null || x === undefined ? "—" : x.toFixed(digits) + " s"; }

  function eta(m) {
    if (m.state === "succeeded") return "done";
    if (!ACTIVE.includes(m.state)) return "—";
    if (m.state === "queued") return "waiting for a free slot";
    if (m.stage && STAGE[m.stage].number > 3) return "switching over";
    if (!state.rates || state.remaining === null) return "estimating…";
    const { dirty, link } = state.rates;
    if (dirty >= link) return "not converging: the guest dirties pages as fast as the link sends them";
    const sim = state.remaining / (link - dirty) + (state.predicted ? state.predicted.downtime_s : 0);
    if (m.speed > 0) return "≈ " + (sim / m.speed).toFixed(1) + " s (" + sim.toFixed(2) + " s simulated)";
    return "≈ " + sim.toFixed(2) + " s simulated (unpaced)";
  }

  function draw() {
    const m = state.m;
    if (!m) return;
    state.renders += 1;
    root.dataset.state = m.state;
    root.dataset.lastSeq = state.lastSeq;
    const tag = $("#state");
    tag.className = "tag move-" + m.state;
    tag.textContent = hvweb.label(hvweb.constants.state_labels, m.state) +
      (m.stage ? " — " + STAGE[m.stage].label : "");
    $("#cancel-note").textContent = m.cancel_requested && ACTIVE.includes(m.state) ? "cancel requested" : "";
    const form = document.getElementById("cancel-form");
    if (form) form.hidden = !(m.cancellable && !m.cancel_requested);
    $("#error").textContent = m.error_code ? m.error_code + ": " + m.error_message : "";
    $("#error").hidden = $("#error-label").hidden = !m.error_code;

    const total = Object.values(state.stages).reduce((s, x) => s + (x.duration_s || 0), 0);
    for (const li of root.querySelectorAll("#timeline li")) {
      const s = state.stages[li.dataset.stage];
      li.className = s ? s.outcome : "pending";
      li.querySelector("[data-duration]").textContent = !s ? "—"
        : s.duration_s !== null && s.duration_s !== undefined ? s.duration_s.toFixed(3) + " s" : s.outcome;
      li.style.setProperty("--share", total && s && s.duration_s ? (s.duration_s / total).toFixed(3) : 0);
    }

    const stat = (name) => $('[data-stat="' + name + '"]');
    stat("bytes").textContent = hvweb.bytes(state.bytes);
    stat("remaining").textContent = state.remaining === null ? "—" : state.remaining.toLocaleString("en");
    stat("pass").textContent = m.pass_count || state.passNo || "—";
    if (state.rates) {
      const { dirty, link } = state.rates;
      stat("rates").textContent = Math.round(dirty).toLocaleString("en") + " / " +
        Math.round(link).toLocaleString("en") + " pages/s";
      stat("rate-meter").style.width = Math.min(100, (100 * dirty) / link).toFixed(1) + "%";
    }
    stat("eta").textContent = eta(m);
    const expected = state.predicted ? state.predicted.bytes_sent : m.reserved_memory_mib * MiB;
    let pct = m.state === "succeeded" ? 100 : Math.min(99, Math.floor((100 * state.bytes) / expected));
    const bar = $("#progressbar");
    pct = Math.max(pct, Number(bar.getAttribute("aria-valuenow")));
    bar.setAttribute("aria-valuenow", pct);
    bar.firstElementChild.style.width = pct + "%";

    if (state.newX.length) {
      Plotly.extendTraces("chart-bytes", { x: [state.newX], y: [state.newY] }, [0]);
      state.points += state.newX.length;
      state.newX = []; state.newY = [];
    }
    $("#chart-bytes").dataset.points = state.points;
    if (state.dirty.has("charts") || state.dirty.has("all")) {
      drawPasses(); drawBlackout(); drawVersus(); drawPassTable();
    }
    state.dirty.clear();
  }

  function drawPasses() {
    const passes = state.passes;
    const traces = [
      { type: "bar", name: "Pages sent", x: passes.map((p) => p.pass_no),
        y: passes.map((p) => p.pages_sent), marker: { color: "#1f6feb" } },
      { type: "bar", name: "Pages re-dirtied", x: passes.map((p) => p.pass_no),
        y: passes.map((p) => p.pages_dirtied), marker: { color: "#cf222e" } },
    ];
    if (state.predicted) {
      const pp = state.predicted.pages_per_pass;
      traces.push({ type: "scatter", mode: "markers", name: "Predicted pages sent",
        x: pp.map((_, i) => i + 1), y: pp, marker: { symbol: "diamond", size: 9, color: "#9a6700" } });
    }
    Plotly.react("chart-passes", traces, { ...LAYOUT, barmode: "group",
      xaxis: { title: { text: "pass" }, dtick: 1 }, yaxis: { title: { text: "pages" } } }, PLOT);
    $("#chart-passes").dataset.passes = passes.length;
  }

  function drawBlackout() {
    const m = state.m;
    const x = state.passes.map((p) => "after pass " + p.pass_no);
    const y = state.passes.map((p) => p.expected_downtime_s * 1000);
    const colors = x.map(() => "#8c959f");
    if (state.predicted) { x.push("predicted"); y.push(state.predicted.downtime_s * 1000); colors.push("#9a6700"); }
    if (m.downtime_s !== null && m.downtime_s !== undefined) {
      x.push("actual"); y.push(m.downtime_s * 1000);
      colors.push(m.downtime_limit_ms && m.downtime_s * 1000 > m.downtime_limit_ms ? "#cf222e" : "#1a7f37");
    }
    // On a log axis a shape takes the value itself, an annotation its log10.
    const limit = Math.log10(m.downtime_limit_ms);
    const shapes = m.downtime_limit_ms ? [{ type: "line", xref: "paper", x0: 0, x1: 1,
      y0: m.downtime_limit_ms, y1: m.downtime_limit_ms, line: { color: "#cf222e", dash: "dash" } }] : [];
    const annotations = m.downtime_limit_ms ? [{ xref: "paper", x: 1, y: limit,
      text: "limit " + m.downtime_limit_ms + " ms", showarrow: false, yanchor: "bottom", xanchor: "right",
      font: { color: "#cf222e" } }] : [];
    Plotly.react("chart-blackout", [{ type: "bar", x, y, marker: { color: colors }, name: "blackout" }],
      // Log scale: the first pass's figure is often 1000× the final blackout.
      { ...LAYOUT, showlegend: false, shapes, annotations, yaxis: { title: { text: "ms (log)" }, type: "log", dtick: 1 } },
      PLOT);
  }

  function drawVersus() {
    const m = state.m, p = state.predicted;
    const cells = {
      passes: [p && p.passes, m.pass_count],
      bytes: [p && hvweb.bytes(p.bytes_sent), m.bytes_sent ? hvweb.bytes(m.bytes_sent) : null],
      total: [p && fmtS(p.total_time_s, 3), m.total_time_s !== null ? fmtS(m.total_time_s, 3) : null],
      downtime: [p && fmtS(p.downtime_s, 4), m.downtime_s !== null ? fmtS(m.downtime_s, 4) : null],
    };
    for (const [row, [pred, act]] of Object.entries(cells)) {
      const tds = root.querySelectorAll('#versus [data-row="' + row + '"] td');
      tds[0].textContent = pred ?? "—";
      tds[1].textContent = act ?? "—";
    }
  }

  function drawPassTable() {
    const body = $("#passes tbody");
    if (!state.passes.length) return;
    body.replaceChildren(...state.passes.map((p) => el("tr", {},
      el("td", {}, p.pass_no), el("td", {}, p.pages_sent), el("td", {}, p.pages_dirtied),
      el("td", {}, p.zero_pages), el("td", {}, hvweb.bytes(p.bytes)), el("td", {}, fmtS(p.duration_s, 3)),
      el("td", {}, Math.round(p.dirty_rate) + " pages/s"), el("td", {}, fmtS(p.expected_downtime_s, 4)))));
  }

  function describe(f) {
    const d = f.data || {};
    switch (f.kind) {
      case "stage_started": return STAGE[d.stage] ? STAGE[d.stage].number + ". " + STAGE[d.stage].label : d.stage;
      case "stage_finished": return (STAGE[d.stage] ? STAGE[d.stage].label : d.stage) + " in " + fmtS(d.duration_s, 3);
      case "pass_finished": return "pass " + d.pass_no + ": " + d.pages_sent + " pages sent, " +
        d.pages_dirtied + " re-dirtied, blackout if stopped " + fmtS(d.expected_downtime_s, 4);
      case "started": return d.predicted ? "predicted " + d.predicted.passes + " passes, " + fmtS(d.predicted.downtime_s, 4) + " downtime" : "";
      case "queued": return d.reason || "";
      case "cancel_requested": return "by " + d.by;
      case "completed": return d.result.passes + " passes, downtime " + fmtS(d.result.downtime_s, 4) +
        (d.result.verified ? ", memory verified" : "");
      case "failed": case "cancelled": return (d.code ? d.code + ": " : "") + (d.reason || "");
      default: return "";
    }
  }

  // The page's filter by Hyper-V event ID (?event_id=), applied to live frames too.
  const onlyEventId = Number(root.dataset.eventId) || null;

  function logged(f) {
    return !onlyEventId || f.event_id === onlyEventId;
  }

  function logItem(f) {
    const attrs = { "data-seq": f.seq, class: "kind-" + f.kind };
    if (f.event_id) attrs["data-event-id"] = f.event_id;
    return el("li", attrs,
      el("span", { class: "seq" }, "#" + f.seq), " ",
      el("time", { datetime: f.at }, (f.at || "").slice(11, 23)), " ",
      el("strong", {}, f.kind),
      ...(f.event_id ? [" ", el("span", { class: "event-id tag" }, "Event " + f.event_id)] : []),
      " ", el("span", { class: "detail" }, describe(f)));
  }

  function addLog(f) {
    if (!logged(f)) return;
    const log = $("#log");
    const empty = log.querySelector(".empty");
    if (empty) empty.remove();
    log.append(logItem(f));
    while (log.children.length > LOG_MAX) log.firstElementChild.remove();
  }

  // --- Connecting ---------------------------------------------------------------

  const path = "/ws/migrations/" + root.dataset.migration + "/";
  conn = hvweb.live(() => (state.m ? path + "?resume_from=" + state.lastSeq : path), {
    snapshot(snap, again) {
      // After a reconnect the frames after lastSeq follow this snapshot.
      if (!(again && state.m)) load(snap);
    },
    event: receive,
    error(msg) { console.warn("hvweb:", msg.error); },
  }, document.getElementById("connection"));

  window.hvwebMigration = { state, conn };
})();
