/* A websocket that says whether it is live and reconnects when it drops.
 * Needs common.js.
 *
 * hvweb.live(path, {snapshot(msg, again), event(frame), error(msg), ...}, badge)
 * opens ws(s)://<this host><path>; `path` may be a function, asked again at
 * every reconnect (a page puts ?resume_from=<last seq applied> in it). Every
 * (re)connection starts with the server's snapshot: `again` is false the first
 * time and true after a reconnect. A message of another type goes to the
 * handler of that name, if any (the cluster stream's "tick" and "heartbeat").
 * The badge element shows the connection state (data-state and its text).
 */
"use strict";

hvweb.live = function (path, handlers, badge) {
  let socket = null;
  let attempts = 0;
  let connectedOnce = false;
  let stopped = false;

  function show(state, text) {
    if (!badge) return;
    badge.dataset.state = state;
    badge.textContent = text;
  }

  function open() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    show("connecting", connectedOnce ? "Reconnecting…" : "Connecting…");
    const ws = new WebSocket(scheme + location.host + (typeof path === "function" ? path() : path));
    socket = ws;
    ws.onmessage = function (e) {
      let msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg.type === "snapshot") {
        const again = connectedOnce;
        connectedOnce = true;
        attempts = 0;
        show("live", "Live");
        handlers.snapshot(msg, again);
      } else if (msg.type === "event") {
        handlers.event(msg);
      } else if (msg.type === "error" && handlers.error) {
        handlers.error(msg);
      } else if (msg.type !== "snapshot" && typeof handlers[msg.type] === "function") {
        handlers[msg.type](msg); // a stream's own kinds: the cluster's tick, heartbeat
      }
    };
    ws.onclose = function () {
      if (socket !== ws || stopped) return;
      attempts += 1;
      const delay = Math.min(5000, 250 * 2 ** Math.min(attempts, 5));
      show("offline", "Disconnected: reconnecting in " + (delay / 1000).toFixed(1) + " s");
      setTimeout(open, delay);
    };
  }

  open();
  return {
    send(obj) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(obj));
    },
    socket() { return socket; },
    stop() { stopped = true; if (socket) socket.close(); show("offline", "Not live"); },
  };
};
