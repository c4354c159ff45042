/*
 * CenterSocket: a browser client of the center's websocket protocol (docs/websocket.md).
 *
 *   const socket = new CenterSocket({
 *     token: () => localStorage.getItem("wall.token"),  // or null: use the session cookie
 *     onState: (state, detail) => { ... },  // connecting | authenticating | open |
 *                                           // reconnecting | auth_failed | closed
 *   });
 *   const sub = socket.subscribe("dashboard", {
 *     params: { jurisdiction: "440304" },   // optional
 *     onSnapshot(snapshot, info) { ... },   // a fresh state (first time, or could not resume)
 *     onEvent(event, info) { ... },         // {type, seq, data, epoch?, at?}, in order
 *   });
 *   socket.start();
 *   socket.call("ping").then(result => ...);   // rejects with {code, message, details}
 *   sub.unsubscribe(); socket.close();
 *
 * It reconnects by itself with exponential backoff and jitter, re-authenticates, and
 * re-subscribes every subscription with `since: {epoch, seq}` so missed events are replayed
 * (or a snapshot is sent when they cannot be). It pings every `pingMs` and treats a missing
 * answer as a dead connection, because a browser can take minutes to notice a cut network.
 * `lastContact` is when the server was last heard from (for "data as of" displays).
 */
(function (global) {
  "use strict";

  const FATAL_AUTH = new Set(["unauthorized", "forbidden", "invalid_credentials"]);
  // Close codes after which reconnecting is pointless: 4002, the relative's visit ended
  // (its guest session is refused from now on). The state goes to "closed" with the code.
  const FINAL_CLOSE = new Set([4002]);

  class CenterSocket {
    constructor(options) {
      const o = options || {};
      this.url = o.url || CenterSocket.defaultUrl();
      this.token = typeof o.token === "function" ? o.token : () => o.token || null;
      this.onState = o.onState || (() => {});
      this.onAuth = o.onAuth || (() => {});
      this.pingMs = o.pingMs || 15000;
      this.pongTimeoutMs = o.pongTimeoutMs || 10000;
      this.backoffMs = o.backoffMs || 500;
      this.backoffMaxMs = o.backoffMaxMs || 15000;
      this.state = "closed";
      this.lastContact = 0;
      this.serverOffsetMs = 0;
      this.authResult = null;
      this._ws = null;
      this._nextId = 1;
      this._pending = new Map();
      this._subs = new Set();
      this._attempt = 0;
      this._timer = null;
      this._pingTimer = null;
      this._stopped = true;
    }

    static defaultUrl() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      return `${proto}//${location.host}/ws`;
    }

    start() {
      this._stopped = false;
      this._connect();
      return this;
    }

    close() {
      this._stopped = true;
      clearTimeout(this._timer);
      clearInterval(this._pingTimer);
      if (this._ws) this._ws.close(1000, "client closed");
      this._setState("closed");
    }

    subscribe(topic, handlers) {
      const sub = new Subscription(this, topic, handlers || {});
      this._subs.add(sub);
      if (this.state === "open") sub._send();
      return sub;
    }

    /* One command; resolves with its result, rejects with its error. */
    call(type, fields) {
      if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
        return Promise.reject({ code: "not_connected", message: "not connected" });
      }
      const id = this._nextId++;
      const msg = Object.assign({}, fields || {}, { id, type });
      return new Promise((resolve, reject) => {
        this._pending.set(id, { resolve, reject });
        this._ws.send(JSON.stringify(msg));
      });
    }

    serverNow() {
      return Date.now() + this.serverOffsetMs;
    }

    _setState(state, detail) {
      if (state === this.state) return;
      this.state = state;
      try {
        this.onState(state, detail);
      } catch (err) {
        console.error("onState failed", err);
      }
    }

    _connect() {
      clearTimeout(this._timer);
      this._setState(this._attempt ? "reconnecting" : "connecting");
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (err) {
        this._scheduleReconnect();
        return;
      }
      this._ws = ws;
      this._nextId = 1;
      ws.onopen = () => this._authenticate(ws);
      ws.onmessage = (ev) => this._onMessage(ws, ev);
      ws.onclose = (ev) => this._onClose(ws, ev);
      ws.onerror = () => {};
    }

    _authenticate(ws) {
      this._setState("authenticating");
      this.lastContact = Date.now();
      const token = this.token();
      const fields = token ? { token } : {};
      this.call("auth", fields).then(
        (result) => {
          if (ws !== this._ws) return;
          this.authResult = result;
          this._noteServerTime(result.at);
          this._attempt = 0;
          this._setState("open", result);
          this.onAuth(result);
          for (const sub of this._subs) sub._send();
          this._startPings(ws);
        },
        (error) => {
          if (FATAL_AUTH.has(error.code)) {
            this._stopped = true;
            this._setState("auth_failed", error);
          }
        },
      );
    }

    _startPings(ws) {
      clearInterval(this._pingTimer);
      this._pingTimer = setInterval(() => {
        if (ws !== this._ws || ws.readyState !== WebSocket.OPEN) return;
        const deadline = setTimeout(() => {
          if (ws === this._ws) ws.close(4000, "ping timeout");
        }, this.pongTimeoutMs);
        this.call("ping").then(
          (result) => {
            clearTimeout(deadline);
            this._noteServerTime(result.at);
          },
          () => clearTimeout(deadline),
        );
      }, this.pingMs);
    }

    _noteServerTime(at) {
      if (typeof at === "number") this.serverOffsetMs = at * 1000 - Date.now();
    }

    _onMessage(ws, ev) {
      if (ws !== this._ws) return;
      this.lastContact = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (err) {
        console.error("bad message from server", err);
        return;
      }
      if (msg.type === "result") {
        const waiter = this._pending.get(msg.id);
        if (waiter) {
          this._pending.delete(msg.id);
          if (msg.success) waiter.resolve(msg.result);
          else waiter.reject(msg.error || { code: "unknown", message: "failed" });
        } else if (!msg.success) {
          console.warn("server error", msg.error);
        }
        return;
      }
      if (msg.type === "event") {
        for (const sub of this._subs) {
          if (sub._id === msg.id) {
            sub._onEvent(msg.event);
            break;
          }
        }
      }
    }

    _onClose(ws, ev) {
      if (ws !== this._ws) return;
      clearInterval(this._pingTimer);
      this._ws = null;
      for (const waiter of this._pending.values()) {
        waiter.reject({ code: "disconnected", message: `closed (${ev.code})` });
      }
      this._pending.clear();
      for (const sub of this._subs) sub._id = null;
      if (FINAL_CLOSE.has(ev.code)) this._stopped = true;
      if (this._stopped) {
        if (this.state !== "auth_failed") this._setState("closed", { code: ev.code });
        return;
      }
      this._scheduleReconnect(ev.code);
    }

    _scheduleReconnect(code) {
      this._attempt += 1;
      const base = Math.min(this.backoffMaxMs, this.backoffMs * 2 ** (this._attempt - 1));
      const delay = base / 2 + Math.random() * (base / 2);
      this._setState("reconnecting", { code, delayMs: delay, attempt: this._attempt });
      this._timer = setTimeout(() => this._connect(), delay);
    }
  }

  class Subscription {
    constructor(socket, topic, handlers) {
      this.socket = socket;
      this.topic = topic;
      this.handlers = handlers;
      this.position = null; // {epoch, seq} of the last state or event applied
      this._id = null;
      this.active = true;
    }

    _send() {
      if (!this.active) return;
      const fields = Object.assign({ topic: this.topic }, this.handlers.params || {});
      if (this.position) fields.since = this.position;
      const id = this.socket._nextId; // call() takes this id
      this._id = id;
      this.socket.call("subscribe", fields).then(
        (result) => {
          if (this._id !== id) return;
          this.position = { epoch: result.epoch, seq: result.seq };
          const info = { epoch: result.epoch, seq: result.seq, recovered: result.recovered };
          if (result.recovered) {
            for (const event of result.events) this._deliver(event, info);
          } else if (this.handlers.onSnapshot) {
            this.handlers.onSnapshot(result.snapshot, info);
          }
        },
        (error) => {
          if (this._id === id) this._id = null;
          if (this.handlers.onError) this.handlers.onError(error);
          else console.warn(`subscribe ${this.topic} failed`, error);
        },
      );
    }

    _onEvent(event) {
      if (event.type === "resync") {
        // The server lost track (a bus gap or a new epoch): ask again from where we are.
        this._id = null;
        this._send();
        return;
      }
      this._deliver(event, { epoch: event.epoch, seq: event.seq, recovered: true });
    }

    _deliver(event, info) {
      if (this.position && event.epoch && event.epoch === this.position.epoch) {
        if (event.seq <= this.position.seq) return;
      }
      this.position = {
        epoch: event.epoch || (this.position && this.position.epoch) || "",
        seq: event.seq,
      };
      if (this.handlers.onEvent) this.handlers.onEvent(event, info);
    }

    unsubscribe() {
      this.active = false;
      this.socket._subs.delete(this);
      if (this._id !== null && this.socket.state === "open") {
        this.socket.call("unsubscribe", { subscription: this._id }).catch(() => {});
      }
      this._id = null;
    }
  }

  global.CenterSocket = CenterSocket;
})(window);
