/* The clusters overview and the cluster page, kept live.
 *
 * Each [data-cluster-board] listens to /ws/clusters/<id>/: the snapshot gives
 * hosts, VMs and moves in flight; every move's frames follow. A VM changes host
 * when its move's "online" stage starts, as in the database. A reconnect brings
 * a fresh snapshot, which replaces the board's state.
 */
"use strict";
(function () {
  const urls = JSON.parse(document.getElementById("board-urls").textContent);
  const stageLabels = JSON.parse(document.getElementById("stage-labels").textContent);
  const HOLDING = ["running", "paused"]; // power states that hold memory
  const ACTIVE = ["queued", "running"];
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
    this.moves = new Map(snap.migrations.map((m) => [m.id, m]));
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
    if (f.kind === "stage_started" && f.data.stage === "online") {
      const vm = this.vms.get(f.vm);
      if (vm) vm.host = f.destination;
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
      const used = vms.filter((v) => HOLDING.includes(v.power_state))
        .reduce((sum, v) => sum + v.memory_mib, 0);
      let reserved = 0;
      for (const m of this.moves.values()) {
        const vm = this.vms.get(m.vm);
        if (m.destination === host.id && vm && vm.host !== host.id) reserved += vm.memory_mib;
      }
      const pct = (x) => Math.min(100, Math.round((100 * x) / host.memory_mib));
      article.querySelector("[data-memory]").textContent =
        used + " of " + host.memory_mib + " MiB";
      article.querySelector("[data-reserved]").textContent =
        reserved ? "+ " + reserved + " MiB reserved" : "";
      const meter = article.querySelector("[data-meter]");
      meter.setAttribute("aria-label", pct(used) + " % of memory in use");
      meter.children[0].style.width = pct(used) + "%";
      meter.children[1].style.width = Math.min(100 - pct(used), pct(reserved)) + "%";
      const list = article.querySelector("[data-vms]");
      list.replaceChildren(...(vms.length ? vms.map((v) => el("li",
        { "data-vm": v.id, class: "vm power-" + v.power_state + (moving.has(v.id) ? " moving" : "") },
        el("a", { href: hvweb.urlFor(urls.vm, v.id) }, v.name), " ",
        el("span", { class: "muted" }, v.memory_mib + " MiB" +
          (v.power_state !== "running" ? " · " + v.power_state : ""))))
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
        el("span", { class: "tag move-" + m.state }, m.state),
        m.stage ? " " + (stageLabels[m.stage] || m.stage) : "",
        m.bytes_sent ? " · " + hvweb.bytes(m.bytes_sent) + " sent" : "");
    });
    box.querySelector("ul").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "None.")]));
  };

  window.hvwebBoards = [...document.querySelectorAll("[data-cluster-board]")].map((r) => new Board(r));
})();
