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
 *
 * The ETA, the outlook line and "blackout if stopped now" are the engine's own
 * model continued from where the move is (migrator.predict.outlook, which the
 * worker attaches to every progress and pass_finished frame as
 * data.outlook): the page computes no estimate of its own. Once the move ends
 * the tiles show its final figures. Sizes, durations and times are
 * hvweb.fmt's (common.js).
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
  const PAGE = 4096; // bytes: the console's guests have 4 KiB pages (runner.build_spec)
  const fmt = hvweb.fmt;
  // The page's filter by Hyper-V event ID (?event_id=), applied to live frames too.
  const onlyEventId = Number(root.dataset.eventId) || null;
  const PLOT = { displayModeBar: false, responsive: true };
  const LAYOUT = {
    margin: { l: 56, r: 12, t: 8, b: 48 }, legend: { orientation: "h", y: -0.32 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", font: { size: 11 },
  };

  const state = {
    m: null, stages: {}, passes: [], predicted: null, outlook: null, running: null,
    lastSeq: 0, early: new Map(), bytes: 0, remaining: null, rates: null, passNo: null,
    logSeq: 0, shownAt: null,
    lastY: -1, newX: [], newY: [], points: 0, plotted: false, chartsStale: false,
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
    state.outlook = ACTIVE.includes(m.state) ? p.outlook || null : null;
    state.running = ACTIVE.includes(m.state) && p.pass_no ? runningPass(p) : null;
    // The bytes chart starts where the move did: nothing sent at 0 s.
    const xs = [0], ys = [0];
    state.lastY = 0;
    for (const point of series) {
      if (point.bytes_sent >= state.lastY) {
        xs.push(point.t); ys.push(point.bytes_sent / MiB); state.lastY = point.bytes_sent;
      }
    }
    if (m.state === "succeeded" && m.total_time_s !== null) {
      xs.push(m.total_time_s); ys.push(m.bytes_sent / MiB); state.lastY = m.bytes_sent;
    }
    // Plotted by draw() once Plotly.js is there (it loads deferred: the page
    // is read and used before its 4.8 MB are compiled).
    state.newX = xs; state.newY = ys; state.points = 0; state.plotted = false;
    const log = $("#log");
    const shown = snap.log.filter(logged);
    log.replaceChildren();
    state.logSeq = 0;
    for (const f of shown.slice(-LOG_MAX)) addLog(f);
    if (!shown.length) log.append(el("li", { class: "muted empty" }, "No event yet."));
    for (const part of ["all"]) state.dirty.add(part);
    draw();
    requestAnimationFrame(function () {
      // The move is on screen with this frame (benchmarks/first_page.py reads it).
      if (state.shownAt === null) state.shownAt = performance.now();
      setTimeout(loadPlotly, 0); // once this frame is painted
    });
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
    if (f.switched_over !== undefined) m.switched_over = f.switched_over;
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
        state.running = null;
        if (d.outlook) state.outlook = d.outlook;
        state.dirty.add("charts");
        break;
      case "progress":
        state.passNo = d.pass_no;
        state.remaining = d.remaining_dirty_pages;
        state.rates = { dirty: d.dirty_rate, link: d.link_rate };
        if (d.outlook) state.outlook = d.outlook;
        state.running = runningPass(d);
        state.dirty.add("running");
        addPoint(d.t, d.bytes_sent);
        break;
      case "completed": {
        const r = d.result;
        Object.assign(m, { pass_count: r.passes, bytes_sent: r.bytes_sent, total_time_s: r.total_time_s,
          downtime_s: r.downtime_s, verified: r.verified, stop_reason: r.stop_reason,
          final_dirty_pages: r.final_dirty_pages });
        addPoint(r.total_time_s, r.bytes_sent);
        state.remaining = r.final_dirty_pages;
        state.running = null;
        state.outlook = null;
        state.dirty.add("charts");
        break;
      }
      case "failed":
      case "cancelled": {
        if (d.stage && state.stages[d.stage]) state.stages[d.stage].outcome = f.kind;
        m.error_code = d.code || "CANCELLED";
        m.error_message = d.reason;
        m.failed_stage = d.stage || "";
        state.running = null;
        state.outlook = null;
        state.dirty.add("charts");
        if (d.code === hvweb.constants.not_converging) {
          // Pre-copy ran its course and gave up: its passes are the move's.
          m.pass_count = state.passes.length;
          state.dirty.add("charts");
        }
        break;
      }
    }
    if (f.kind !== "progress") addLog(f);
  }

  function runningPass(d) {
    // The pass under way, from a progress frame: what it has sent so far and
    // what the guest wrote again after it was sent. Pass 1 goes through every
    // page; a later pass through those its predecessor left dirty.
    const before = state.passes.find((p) => p.pass_no === d.pass_no - 1);
    const start = d.pass_no === 1 ? (state.m.reserved_memory_mib * MiB) / PAGE
      : before ? before.remaining_dirty_pages : null;
    if (start === null || d.unsent_pages === undefined) return null;
    const unsent = d.unsent_pages || 0;
    return { pass_no: d.pass_no, sent: Math.max(0, start - unsent),
      redirtied: Math.max(0, d.remaining_dirty_pages - unsent) };
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

  function fmtS(x) { return fmt.duration(x); }

  function eta(m) {
    // The model's estimate (data.outlook.eta_s, simulated seconds) in wall time.
    if (m.state === "queued") return "waiting for a free slot";
    if (m.stage && STAGE[m.stage].number > 3) return "switching over";
    const o = state.outlook;
    if (!o) return "estimating…";
    if (m.speed > 0) return "≈ " + fmt.duration(o.eta_s / m.speed) + " (" + fmt.duration(o.eta_s) + " simulated)";
    return "≈ " + fmt.duration(o.eta_s) + " simulated (unpaced)";
  }

  function stageText(m) {
    const name = m.failed_stage || m.stage;
    if (!name) return "—";
    const s = STAGE[name];
    const where = m.state === "succeeded" ? " (the last)" : ACTIVE.includes(m.state) ? "" : " (where it ended)";
    return s.number + " of 7, " + s.label + where;
  }

  function tiles(m) {
    // [label, value] per tile: live figures while the move runs, its final
    // figures once it has ended.
    const ended = !ACTIVE.includes(m.state);
    const last = state.passes.length ? state.passes[state.passes.length - 1] : null;
    const link = state.rates ? state.rates.link : m.predicted && m.predicted.link_rate;
    const ratesText = (dirty) => fmt.count(dirty) + " / " + fmt.count(link) + " pages/s";
    if (!ended) {
      const o = state.outlook;
      return {
        bytes: ["Bytes sent", fmt.size(state.bytes)],
        remaining: ["Remaining dirty pages", state.remaining === null ? "—" : fmt.count(state.remaining)],
        pass: ["Pass", state.passNo ? String(state.passNo) + (m.predicted ? " of about " + m.predicted.passes : "") : "—"],
        rates: ["Dirty rate / link rate", state.rates ? ratesText(state.rates.dirty) : "—", state.rates && state.rates.dirty],
        blackout: ["Blackout if stopped now", o ? fmt.duration(o.blackout_if_stopped_s) : "—"],
        eta: ["ETA", eta(m)],
      };
    }
    const succeeded = m.state === "succeeded";
    const finished = state.passes.length;
    return {
      bytes: ["Bytes sent", fmt.size(state.bytes)],
      remaining: succeeded ? ["Pages sent in the blackout", fmt.count(m.final_dirty_pages ?? state.remaining)]
        : ["Pages sent in a blackout", "none: the VM kept running on its source"],
      pass: succeeded ? ["Pre-copy passes", String(m.pass_count ?? finished)]
        : ["Pre-copy passes finished", String(finished)],
      rates: ["Last pass's dirty rate / link rate", last ? ratesText(last.dirty_rate) : "—", last && last.dirty_rate],
      blackout: succeeded ? ["Blackout (downtime)", fmt.duration(m.downtime_s)] : ["Blackout (downtime)", "none"],
      eta: [succeeded ? "Finished" : "Ended", succeeded ? "done" : hvweb.label(hvweb.constants.state_labels, m.state).toLowerCase()],
    };
  }

  function draw() {
    const m = state.m;
    if (!m) return;
    state.renders += 1;
    root.dataset.state = m.state;
    root.dataset.lastSeq = state.lastSeq;
    const tag = $("#state");
    tag.className = "tag move-" + m.state;
    // A move its policy gave up on reads as aborted, not as a fault.
    tag.textContent = m.error_code === hvweb.constants.not_converging
      ? "Aborted: pre-copy did not converge"
      : hvweb.label(hvweb.constants.state_labels, m.state);
    $("#stage").textContent = stageText(m);
    const where = $("#vm-location");
    if (where) {
      where.textContent = m.switched_over ? where.dataset.destination + " (the destination)"
        : where.dataset.source + " (the source)";
    }
    $("#cancel-note").textContent = m.cancel_requested && ACTIVE.includes(m.state) ? "cancel requested" : "";
    const form = document.getElementById("cancel-form");
    if (form) form.hidden = !(m.cancellable && !m.cancel_requested);
    // A failure is an error; an operator's cancel is not: it reads as what happened.
    const failed = m.state === "failed", cancelled = m.state === "cancelled";
    $("#error").textContent = failed ? m.error_code + ": " + m.error_message : "";
    $("#error").hidden = $("#error-label").hidden = !failed;
    $("#outcome").textContent = cancelled ? m.error_message || "" : "";
    $("#outcome").hidden = $("#outcome-label").hidden = !cancelled;

    const total = Object.values(state.stages).reduce((s, x) => s + (x.duration_s || 0), 0);
    for (const li of root.querySelectorAll("#timeline li")) {
      const s = state.stages[li.dataset.stage];
      li.className = s ? s.outcome : "pending";
      li.querySelector("[data-duration]").textContent = !s ? "—"
        : s.duration_s !== null && s.duration_s !== undefined ? fmt.duration(s.duration_s) : s.outcome;
      li.style.setProperty("--share", total && s && s.duration_s ? (s.duration_s / total).toFixed(3) : 0);
    }

    const stat = (name) => $('[data-stat="' + name + '"]');
    for (const [name, [label, value, dirty]] of Object.entries(tiles(m))) {
      $('[data-k="' + name + '"]').textContent = label;
      stat(name).textContent = value;
      if (name === "rates") {
        const link = state.rates ? state.rates.link : m.predicted && m.predicted.link_rate;
        stat("rate-meter").style.width = dirty && link ? Math.min(100, (100 * dirty) / link).toFixed(1) + "%" : "0";
      }
    }
    stat("outlook").textContent = ACTIVE.includes(m.state)
      ? (state.outlook ? state.outlook.text : state.predicted ? state.predicted.reason : "—")
      : outcomeLine(m);
    const expected = state.predicted ? state.predicted.bytes_sent : m.reserved_memory_mib * MiB;
    let pct = m.state === "succeeded" ? 100 : Math.min(99, Math.floor((100 * state.bytes) / expected));
    const bar = $("#progressbar");
    pct = Math.max(pct, Number(bar.getAttribute("aria-valuenow")));
    bar.setAttribute("aria-valuenow", pct);
    bar.firstElementChild.style.width = pct + "%";

    const tables = state.dirty.has("charts") || state.dirty.has("all");
    if (tables || state.dirty.has("running")) state.chartsStale = true;
    if (tables) { drawVersus(); drawPassTable(); }
    if (window.Plotly) drawCharts();
    state.dirty.clear();
  }

  function drawCharts() {
    if (!state.plotted) {
      Plotly.newPlot("chart-bytes", [{
        x: state.newX, y: state.newY, type: "scatter", mode: "lines", name: "Bytes sent",
        line: { color: "#1f6feb" },
      }], { ...LAYOUT, showlegend: false,
        xaxis: { title: { text: "simulated time (s)" }, rangemode: "tozero" },
        yaxis: { title: { text: "data sent (MiB)" }, rangemode: "tozero" } }, PLOT);
      state.plotted = true;
      state.points = state.newX.length;
      state.newX = []; state.newY = [];
    } else if (state.newX.length) {
      Plotly.extendTraces("chart-bytes", { x: [state.newX], y: [state.newY] }, [0]);
      state.points += state.newX.length;
      state.newX = []; state.newY = [];
    }
    $("#chart-bytes").dataset.points = state.points;
    if (state.chartsStale) { drawPasses(); drawBlackout(); state.chartsStale = false; }
  }

  function outcomeLine(m) {
    if (m.state === "succeeded") {
      return "moved in " + (m.pass_count ?? state.passes.length) + " pre-copy pass" +
        ((m.pass_count ?? state.passes.length) === 1 ? "" : "es") + "; downtime " + fmt.duration(m.downtime_s) +
        (m.downtime_limit_ms ? (m.downtime_s * 1000 <= m.downtime_limit_ms ? ", within" : ", over") +
          " the " + m.downtime_limit_ms + " ms limit" : "") + "; " + fmt.size(m.bytes_sent) + " sent in " +
        fmt.duration(m.total_time_s) + " (simulated)";
    }
    // What it means for the VM; the why is said once, beside the state.
    const host = m.switched_over ? root.dataset.destinationName : root.dataset.sourceName;
    return "the VM runs on " + host + (m.switched_over ? ", its destination" : ", as before the move");
  }

  function drawPasses() {
    const passes = state.passes.slice();
    const run = state.running;
    const faded = passes.map(() => 1);
    if (run && !passes.some((p) => p.pass_no === run.pass_no)) {
      // The pass under way, growing with each progress frame.
      passes.push({ pass_no: run.pass_no, pages_sent: run.sent, pages_dirtied: run.redirtied });
      faded.push(0.55);
    }
    const traces = [
      { type: "bar", name: "Pages sent", x: passes.map((p) => p.pass_no),
        y: passes.map((p) => p.pages_sent), marker: { color: "#1f6feb", opacity: faded } },
      { type: "bar", name: "Pages re-dirtied", x: passes.map((p) => p.pass_no),
        y: passes.map((p) => p.pages_dirtied), marker: { color: "#cf222e", opacity: faded } },
    ];
    if (state.predicted) {
      const pp = state.predicted.pages_per_pass;
      traces.push({ type: "scatter", mode: "markers", name: "Predicted pages sent",
        x: pp.map((_, i) => i + 1), y: pp, marker: { symbol: "diamond", size: 9, color: "#9a6700" } });
    }
    // The guest's throttle during each pass (the policy's), on its own axis.
    const throttle = passes.map((p) => p.throttle_pct || 0);
    const throttled = throttle.some((t) => t > 0) ||
      (state.predicted && (state.predicted.throttle_pct_per_pass || []).some((t) => t > 0));
    const layout = { ...LAYOUT, barmode: "group",
      xaxis: { title: { text: "pre-copy pass" + (run ? " (pass " + run.pass_no + " running)" : "") }, dtick: 1 },
      yaxis: { title: { text: "pages (4 KiB)" }, rangemode: "tozero" } };
    if (throttled) {
      traces.push({ type: "scatter", mode: "lines+markers", name: "Guest throttle %", yaxis: "y2",
        x: passes.map((p) => p.pass_no), y: throttle, line: { color: "#bc4c00", shape: "hv" } });
      const pt = state.predicted ? state.predicted.throttle_pct_per_pass || [] : [];
      if (pt.length) {
        traces.push({ type: "scatter", mode: "markers", name: "Predicted throttle %", yaxis: "y2",
          x: pt.map((_, i) => i + 1), y: pt, marker: { symbol: "circle-open", size: 8, color: "#bc4c00" } });
      }
      layout.yaxis2 = { title: { text: "throttle %" }, overlaying: "y", side: "right", range: [0, 100], dtick: 25, showgrid: false };
      layout.margin = { ...LAYOUT.margin, r: 48 };
    }
    Plotly.react("chart-passes", traces, layout, PLOT);
    $("#chart-passes").dataset.passes = state.passes.length;
    $("#chart-passes").dataset.running = run ? run.pass_no + ":" + run.sent : "";
    $("#chart-passes").dataset.throttle = Math.max(0, ...throttle);
  }

  function drawBlackout() {
    const m = state.m;
    const x = state.passes.map((p) => "pass " + p.pass_no);
    const y = state.passes.map((p) => p.expected_downtime_s * 1000);
    const colors = x.map(() => "#8c959f");
    if (state.outlook && ACTIVE.includes(m.state)) {
      x.push(state.running ? "now (pass " + state.running.pass_no + ")" : "now");
      y.push(state.outlook.blackout_if_stopped_s * 1000); colors.push("#1f6feb");
    }
    if (state.predicted) { x.push("predicted"); y.push(state.predicted.downtime_s * 1000); colors.push("#9a6700"); }
    const aborted = m.error_code === hvweb.constants.not_converging; // no blackout at all
    if (m.downtime_s !== null && m.downtime_s !== undefined && !aborted) {
      x.push("actual"); y.push(m.downtime_s * 1000);
      colors.push(m.downtime_limit_ms && m.downtime_s * 1000 > m.downtime_limit_ms ? "#cf222e" : "#1a7f37");
    }
    const limitMs = m.downtime_limit_ms;
    // Log scale: the first pass's figure is often 1000× the final blackout. The
    // range reaches a decade below the smallest bar, so even an idle VM's
    // half-millisecond bars stand up from the axis, and each bar says its value.
    const values = y.filter((v) => v > 0).concat(limitMs ? [limitMs] : []);
    const lo = values.length ? Math.floor(Math.log10(Math.min(...values))) - 1 : -1;
    const hi = values.length ? Math.ceil(Math.log10(Math.max(...values)) + 0.3) : 3;
    const shapes = limitMs ? [{ type: "line", xref: "paper", x0: 0, x1: 1,
      y0: limitMs, y1: limitMs, line: { color: "#cf222e", dash: "dash" } }] : [];
    // On a log axis a shape takes the value itself, an annotation its log10.
    const annotations = limitMs ? [{ xref: "paper", x: 1, y: Math.log10(limitMs),
      text: "limit " + limitMs + " ms", showarrow: false, yanchor: "bottom", xanchor: "right",
      font: { color: "#cf222e" }, bgcolor: "rgba(255,255,255,0.85)" }] : [];
    const traces = [{ type: "bar", x, y, marker: { color: colors }, name: "blackout",
      text: y.map((v) => fmt.duration(v / 1000)), textposition: "outside", cliponaxis: false,
      hovertemplate: "%{x}: %{text}<extra></extra>" }];
    // The limit the policy decided against after each pass (escalating policies
    // raise it step by step); drawn only where it left the move's own limit.
    const limits = state.passes.filter((p) => p.downtime_limit_ms !== null && p.downtime_limit_ms !== undefined);
    const raised = limits.some((p) => p.downtime_limit_ms !== m.downtime_limit_ms);
    if (raised) {
      traces.push({ type: "scatter", mode: "lines+markers", name: "limit in force",
        x: limits.map((p) => "after pass " + p.pass_no), y: limits.map((p) => p.downtime_limit_ms),
        line: { color: "#8250df", shape: "hv" } });
    }
    $("#chart-blackout").dataset.limits = raised ? limits.length : 0;
    Plotly.react("chart-blackout", traces,
      { ...LAYOUT, showlegend: raised, shapes, annotations,
        xaxis: { title: { text: "if pre-copy stopped after a pass, or now" },
          type: "category", automargin: true },
        yaxis: { title: { text: "blackout (ms, log scale)" }, type: "log", range: [lo, hi], dtick: 1 } },
      PLOT);
    $("#chart-blackout").dataset.bars = x.join("|");
  }

  function drawVersus() {
    const m = state.m, p = state.predicted;
    const cells = {
      passes: [p && p.passes, m.pass_count],
      bytes: [p && fmt.size(p.bytes_sent), m.bytes_sent ? fmt.size(m.bytes_sent) : null],
      total: [p && fmtS(p.total_time_s), m.total_time_s !== null ? fmtS(m.total_time_s) : null],
      downtime: [p && fmtS(p.downtime_s), m.downtime_s !== null ? fmtS(m.downtime_s) : null],
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
      el("td", {}, p.pass_no), el("td", {}, fmt.count(p.pages_sent)), el("td", {}, fmt.count(p.pages_dirtied)),
      el("td", {}, fmt.count(p.zero_pages)), el("td", {}, fmt.size(p.bytes)), el("td", {}, fmtS(p.duration_s)),
      el("td", {}, fmt.count(p.dirty_rate) + " pages/s"), el("td", {}, fmtS(p.expected_downtime_s)),
      el("td", {}, Math.round(p.throttle_pct || 0) + " %"),
      el("td", {}, p.downtime_limit_ms === null || p.downtime_limit_ms === undefined ? "—"
        : Math.round(p.downtime_limit_ms) + " ms"))));
  }

  function describe(f) {
    const d = f.data || {};
    switch (f.kind) {
      case "stage_started": return STAGE[d.stage] ? STAGE[d.stage].number + ". " + STAGE[d.stage].label : d.stage;
      case "stage_finished": return (STAGE[d.stage] ? STAGE[d.stage].label : d.stage) + " in " + fmtS(d.duration_s);
      case "pass_finished": return "pass " + d.pass_no + ": " + fmt.count(d.pages_sent) + " pages sent, " +
        fmt.count(d.pages_dirtied) + " re-dirtied, blackout if stopped " + fmtS(d.expected_downtime_s) +
        (d.throttle_pct ? ", guest throttled " + Math.round(d.throttle_pct) + " %" : "");
      case "started": return d.predicted ? "predicted " + d.predicted.passes + " passes, " + fmtS(d.predicted.downtime_s) + " downtime" : "";
      case "queued": return d.reason || "";
      case "cancel_requested": return "by " + d.by;
      case "completed": return d.result.passes + " passes, downtime " + fmtS(d.result.downtime_s) +
        (d.result.verified ? ", memory verified" : "");
      case "failed": return (d.code ? d.code + ": " : "") + (d.reason || "");
      case "cancelled": return d.reason || "";
      default: return "";
    }
  }


  function logged(f) {
    return !onlyEventId || f.event_id === onlyEventId;
  }

  function logItem(f) {
    const attrs = { "data-seq": f.seq, class: "kind-" + f.kind };
    if (f.event_id) attrs["data-event-id"] = f.event_id;
    return el("li", attrs,
      el("span", { class: "seq" }, "#" + f.seq), " ",
      el("time", { datetime: f.at }, fmt.time(f.at)), " ",
      el("strong", {}, f.kind),
      ...(f.event_id ? [" ", el("span", { class: "event-id tag" }, "Event " + f.event_id)] : []),
      " ", el("span", { class: "detail" }, describe(f)));
  }

  function addLog(f) {
    if (!logged(f)) return;
    const log = $("#log");
    const empty = log.querySelector(".empty");
    if (empty) empty.remove();
    // Progress frames are charted, not listed: say how many fell in between,
    // so a jump in the numbers does not read as lost events.
    // (Not under a filter by event ID: then other events fall between too.)
    const skipped = onlyEventId ? 0 : f.seq - state.logSeq - 1;
    if (skipped > 0) {
      log.append(el("li", { class: "gap muted" }, skipped + " progress update" + (skipped === 1 ? "" : "s")));
    }
    state.logSeq = f.seq;
    log.append(logItem(f));
    while (log.children.length > LOG_MAX) log.firstElementChild.remove();
  }

  // --- Cancelling ---------------------------------------------------------------

  // The cancel goes to the API (its 409 says why it is refused), so the page
  // keeps its stream and charts instead of reloading; the stream then brings
  // the cancel_requested and cancelled frames. Without scripts the form posts
  // to the page's own view (moves.views.migration_cancel), which reloads.
  const cancelForm = document.getElementById("cancel-form");
  // Why the cancel was refused, beside the button, as _control_messages.html
  // says it after a reload; "" takes the last one away.
  function refused(text) {
    for (const old of document.querySelectorAll('.control-message[data-for="cancel"]')) old.remove();
    if (text) cancelForm.after(el("p", { class: "control-message error", role: "alert", "data-for": "cancel" }, text));
  }
  async function cancel(event) {
    event.preventDefault();
    const button = cancelForm.querySelector("button");
    button.disabled = true;
    refused("");
    try {
      const response = await fetch(cancelForm.dataset.api, {
        method: "POST", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": cancelForm.elements.csrfmiddlewaretoken.value },
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        // At once, before the stream's frame: the form goes, the note comes.
        if (state.m) state.m.cancel_requested = true;
        draw();
      } else if (body.code) {
        refused(body.code + ": " + body.detail);
      } else {
        refused("The cancel was not accepted (HTTP " + response.status + "): " + (body.detail || "try again."));
      }
    } catch (err) {
      refused("The cancel did not reach the console (" + err.message + "): try again.");
    } finally {
      button.disabled = false;
    }
  }
  if (cancelForm) cancelForm.addEventListener("submit", cancel);

  // --- Connecting ---------------------------------------------------------------

  function loadPlotly() {
    // Plotly.js (4.8 MB) downloads from the start (a preload link in the
    // head) but runs only once the move is on screen: compiling it takes
    // the better part of a second here, which the page need not wait for.
    if (window.Plotly || document.getElementById("plotly-js")) return;
    const script = el("script", { id: "plotly-js", src: root.dataset.plotly });
    script.addEventListener("load", function () { state.chartsStale = true; draw(); });
    document.head.append(script);
  }
  setTimeout(loadPlotly, 3000); // no snapshot yet (server away): the charts anyway

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
