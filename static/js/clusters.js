/* The clusters overview and the cluster page, kept live.
 *
 * Each [data-cluster-board] listens to /ws/clusters/<id>/: the snapshot gives
 * hosts (with the memory their VMs hold and moves coming reserve), VMs and
 * moves in flight; every move's frames follow (hvweb.moves.frames). The board
 * shows what the server says: a frame carries where its move stands (state,
 * whether the VM runs on the destination yet) and, when it can change them,
 * the memory of the move's two hosts. A reconnect brings a fresh snapshot,
 * which replaces the board's state.
 */
"use strict";
(function () {
  const { urls, stages, active_states: ACTIVE, power_state_labels: POWER } = hvweb.constants;
  const STAGE_LABEL = Object.fromEntries(stages.map((s) => [s.stage, s.label]));
  const el = hvweb.el;

  function Board(root) {
    this.root = root;
    this.id = root.dataset.clusterBoard;
    this.hosts = new Map();
    this.vms = new Map();
    this.moves = new Map();
    this.pending = false;
    const board = this;
    this.conn = hvweb.live("/ws/clusters/" + this.id + "/", {
      snapshot(msg) { board.load(msg); },
      event(frame) { board.apply(frame); },
    }, root.querySelector("[data-connection]"));
  }

  Board.prototype.load = function (snap) {
    this.hosts = new Map(snap.hosts.map((h) => [h.id, h]));
    this.vms = new Map(snap.vms.map((v) => [v.id, v]));
    // The snapshot gives each move in brief ({id, name} references); frames
    // give ids: keep ids.
    this.moves = new Map(snap.migrations.map((m) => [m.id, {
      id: m.id, vm: m.vm.id, source: m.source.id, destination: m.destination.id,
      state: m.state, stage: m.stage,
    }]));
    this.render();
  };

  Board.prototype.apply = function (f) {
    let m = this.moves.get(f.migration);
    if (!m) {
      m = { id: f.migration, vm: f.vm, source: f.source, destination: f.destination };
      this.moves.set(f.migration, m);
    }
    m.state = f.state;
    m.stage = f.stage;
    if (f.kind === "progress") m.bytes_sent = Math.max(m.bytes_sent || 0, f.data.bytes_sent);
    if (f.switched_over) {
      const vm = this.vms.get(f.vm);
      if (vm) vm.host = f.destination;
    }
    for (const load of f.hosts || []) {
      const host = this.hosts.get(load.id);
      if (host) Object.assign(host, { used_mib: load.used_mib, reserved_mib: load.reserved_mib });
    }
    if (!ACTIVE.includes(f.state)) this.moves.delete(f.migration);
    this.schedule();
  };

  Board.prototype.schedule = function () {
    // Progress frames come many a second: draw at most every 150 ms.
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => { this.pending = false; this.render(); }, 150);
  };

  Board.prototype.render = function () {
    const moving = new Set([...this.moves.values()].map((m) => m.vm));
    for (const article of this.root.querySelectorAll("[data-host]")) {
      const host = this.hosts.get(Number(article.dataset.host));
      if (!host) continue;
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
    }
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
  };

  window.hvwebBoards = [...document.querySelectorAll("[data-cluster-board]")].map((r) => new Board(r));
})();
