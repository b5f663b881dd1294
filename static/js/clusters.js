/* The clusters overview and the cluster page, kept live.
 *
 * Each [data-cluster-board] listens to /ws/clusters/<id>/: the snapshot gives
 * hosts (with the memory their VMs hold and moves coming reserve), VMs and
 * moves in flight. Then come ticks, a few a second: the frames of the
 * cluster's moves since the last tick (hvweb.moves.frames), each move's
 * progress folded into its latest; and every few seconds a heartbeat from the
 * database (moves in flight with their latest sequence number, every host's
 * memory), which corrects whatever a lost frame left wrong: a move that ended
 * leaves the board even if its last frame never came. A reconnect brings a
 * fresh snapshot, which replaces the board's state.
 *
 * Drawing touches only what changed: a host card is redrawn when its memory
 * or its VMs changed, the list of moves when a move came, went or moved on;
 * a frame that changes nothing on screen costs no drawing at all.
 */
"use strict";
(function () {
  const { urls, stages, active_states: ACTIVE, power_state_labels: POWER } = hvweb.constants;
  const STAGE_LABEL = Object.fromEntries(stages.map((s) => [s.stage, s.label]));
  const el = hvweb.el;
  //: A move missing from a heartbeat leaves only if no frame of it came this recently.
  const HEARTBEAT_GRACE_MS = 2000;

  function Board(root) {
    this.root = root;
    this.id = root.dataset.clusterBoard;
    this.hosts = new Map();
    this.vms = new Map();
    this.moves = new Map();
    this.dirtyHosts = new Set();
    this.dirtyMoves = false;
    this.pending = false;
    this.renders = 0; // host cards and move lists drawn, for the tests
    const board = this;
    this.conn = hvweb.live("/ws/clusters/" + this.id + "/", {
      snapshot(msg) { board.load(msg); },
      event(frame) { board.apply(frame); board.schedule(); },
      tick(msg) { for (const f of msg.frames) board.apply(f); board.schedule(); },
      heartbeat(msg) { board.reconcile(msg); board.schedule(); },
    }, root.querySelector("[data-connection]"));
  }

  Board.prototype.load = function (snap) {
    this.hosts = new Map(snap.hosts.map((h) => [h.id, h]));
    this.vms = new Map(snap.vms.map((v) => [v.id, v]));
    // The snapshot gives each move in brief ({id, name} references); frames
    // give ids: keep ids.
    this.moves = new Map(snap.migrations.map((m) => [m.id, {
      id: m.id, vm: m.vm.id, source: m.source.id, destination: m.destination.id,
      state: m.state, stage: m.stage, seq: 0, seenAt: Date.now(),
    }]));
    for (const id of this.hosts.keys()) this.dirtyHosts.add(id);
    this.dirtyMoves = true;
    this.render();
  };

  Board.prototype.vmHostDirty = function (vmId) {
    const vm = this.vms.get(vmId);
    if (vm) this.dirtyHosts.add(vm.host);
  };

  Board.prototype.setHostLoad = function (load) {
    const host = this.hosts.get(load.id);
    if (host && (host.used_mib !== load.used_mib || host.reserved_mib !== load.reserved_mib)) {
      host.used_mib = load.used_mib;
      host.reserved_mib = load.reserved_mib;
      this.dirtyHosts.add(host.id);
    }
  };

  Board.prototype.apply = function (f) {
    let m = this.moves.get(f.migration);
    if (m && f.seq && m.seq && f.seq <= m.seq) return; // older than what is shown
    if (!m) {
      if (!ACTIVE.includes(f.state)) return; // ended before we knew of it
      m = { id: f.migration, vm: f.vm, source: f.source, destination: f.destination, seq: 0 };
      this.moves.set(f.migration, m);
      this.dirtyMoves = true;
      this.vmHostDirty(f.vm); // its VM is drawn as moving
    }
    m.seenAt = Date.now();
    m.seq = f.seq || m.seq;
    if (m.state !== f.state || m.stage !== f.stage) this.dirtyMoves = true;
    m.state = f.state;
    m.stage = f.stage;
    if (f.kind === "progress") {
      const sent = Math.max(m.bytes_sent || 0, f.data.bytes_sent);
      if (sent !== m.bytes_sent) { m.bytes_sent = sent; this.dirtyMoves = true; }
    }
    if (f.switched_over) {
      const vm = this.vms.get(f.vm);
      if (vm && vm.host !== f.destination) {
        this.dirtyHosts.add(vm.host);
        vm.host = f.destination;
        this.dirtyHosts.add(vm.host);
      }
    }
    for (const load of f.hosts || []) this.setHostLoad(load);
    if (!ACTIVE.includes(f.state)) this.drop(f.migration);
  };

  Board.prototype.drop = function (id) {
    const m = this.moves.get(id);
    if (!m) return;
    this.moves.delete(id);
    this.dirtyMoves = true;
    this.vmHostDirty(m.vm);
  };

  Board.prototype.reconcile = function (beat) {
    const listed = new Set();
    for (const b of beat.moves) {
      listed.add(b.id);
      let m = this.moves.get(b.id);
      if (!m) {
        m = { id: b.id, vm: b.vm, source: b.source, destination: b.destination, seq: 0 };
        this.moves.set(b.id, m);
        this.dirtyMoves = true;
        this.vmHostDirty(b.vm);
      }
      if (b.last_seq > m.seq) {
        if (m.state !== b.state || m.stage !== b.stage) this.dirtyMoves = true;
        Object.assign(m, { state: b.state, stage: b.stage, seq: b.last_seq });
      }
    }
    const now = Date.now();
    for (const m of [...this.moves.values()]) {
      if (!listed.has(m.id) && now - (m.seenAt || 0) > HEARTBEAT_GRACE_MS) this.drop(m.id);
    }
    for (const load of beat.hosts) this.setHostLoad(load);
  };

  Board.prototype.schedule = function () {
    // Ticks come a few a second: draw at most every 150 ms, and only if needed.
    if (this.pending || !(this.dirtyHosts.size || this.dirtyMoves)) return;
    this.pending = true;
    setTimeout(() => { this.pending = false; this.render(); }, 150);
  };

  Board.prototype.renderHost = function (article, host, moving) {
    const vms = [...this.vms.values()]
      .filter((v) => v.host === host.id)
      .sort((a, b) => a.name.localeCompare(b.name));
    article.querySelector("[data-memory]").textContent =
      host.used_mib + " of " + host.memory_mib + " MiB";
    article.querySelector("[data-reserved]").textContent =
      host.reserved_mib ? "+ " + host.reserved_mib + " MiB reserved" : "";
    hvweb.meter(article.querySelector("[data-meter]"), host.used_mib, host.reserved_mib,
      host.memory_mib);
    const list = article.querySelector("[data-vms]");
    list.replaceChildren(...(vms.length ? vms.map((v) => el("li",
      { "data-vm": v.id, class: "vm power-" + v.power_state + (moving.has(v.id) ? " moving" : "") },
      el("a", { href: hvweb.urlFor(urls.vm, v.id) }, v.name), " ",
      el("span", { class: "muted" }, v.memory_mib + " MiB" +
        (v.power_state !== "running" ? " · " + hvweb.label(POWER, v.power_state).toLowerCase() : ""))))
      : [el("li", { class: "muted" }, "No VMs.")]));
    this.renders += 1;
  };

  Board.prototype.renderMoves = function () {
    const box = this.root.querySelector("[data-moves]");
    box.querySelector("[data-move-count]").textContent = this.moves.size;
    const items = [...this.moves.values()].sort((a, b) => a.id - b.id).map((m) => {
      const vm = this.vms.get(m.vm);
      const name = (id) => (this.hosts.get(id) || { name: "host " + id }).name;
      return el("li", { "data-move": m.id },
        el("a", { href: hvweb.urlFor(urls.migration, m.id) }, "#" + m.id + " " + (vm ? vm.name : "VM " + m.vm)),
        " " + name(m.source) + " → " + name(m.destination) + " · ",
        el("span", { class: "tag move-" + m.state }, hvweb.label(hvweb.constants.state_labels, m.state)),
        m.stage ? " " + (STAGE_LABEL[m.stage] || m.stage) : "",
        m.bytes_sent ? " · " + hvweb.bytes(m.bytes_sent) + " sent" : "");
    });
    box.querySelector("ul").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "None.")]));
    this.renders += 1;
  };

  Board.prototype.render = function () {
    if (this.dirtyHosts.size) {
      const moving = new Set([...this.moves.values()].map((m) => m.vm));
      for (const article of this.root.querySelectorAll("[data-host]")) {
        const id = Number(article.dataset.host);
        const host = this.hosts.get(id);
        if (host && this.dirtyHosts.has(id)) this.renderHost(article, host, moving);
      }
      this.dirtyHosts.clear();
    }
    if (this.dirtyMoves) {
      this.dirtyMoves = false;
      this.renderMoves();
    }
  };

  window.hvwebBoards = [...document.querySelectorAll("[data-cluster-board]")].map((r) => new Board(r));
})();
