/*
 * RtcClient: a browser WebRTC participant over the center's websocket (docs/websocket.md,
 * "RTC signaling"). Used by the device check; spot-checks and visits reuse it.
 *
 *   const rtc = new RtcClient({
 *     onTracks: (streams) => { ... },      // Map participantId -> MediaStream (stable objects)
 *     onEvent: (type, data) => { ... },    // state, bye, participant_joined/left, tracks, offer
 *   });
 *   await rtc.connect();                   // websocket + auth (session cookie, or {token})
 *   const joined = await rtc.join(roomId, { role: "party" });   // or "monitor"
 *   rtc.addStream(cameraStream);           // sendrecv: the other party comes back on these
 *   rtc.addReceivers(1);                   // extra recvonly video+audio pairs (monitors)
 *   await rtc.negotiate();                 // offer -> rtc.offer -> answer
 *   ...
 *   await rtc.leave(); rtc.close();
 *
 * Rules the server relies on: messages are handled in order — our own offer/answer exchange
 * completes before a server `offer` event is applied, and that is answered (rtc.answer)
 * before we offer again — so every negotiation step runs on one promise chain. The server is
 * not trickle: we wait for ICE gathering to complete and send the final SDP, and its answers
 * carry all of its candidates. A `tracks` event says which participant each receiving m-line
 * (mid) carries; the same m-line can switch participants without renegotiation, so
 * `streamFor(participantId)` regroups received tracks on every such event.
 * No reconnect: if the socket drops, the server has already left the room for us
 * (`onEvent("bye", {reason: "disconnected"})`); join again to continue.
 */
(function (global) {
  "use strict";

  const GATHER_LIMIT_MS = 8000;

  function waitForGathering(pc, limitMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState !== "complete") return;
        pc.removeEventListener("icegatheringstatechange", done);
        clearTimeout(timer);
        resolve();
      };
      // Past the limit, send what was gathered: host candidates come first and are
      // what a LAN needs; a slow STUN/TURN server must not block the call.
      const timer = setTimeout(() => {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }, limitMs);
      pc.addEventListener("icegatheringstatechange", done);
    });
  }

  class RtcClient {
    constructor(options) {
      const o = options || {};
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      this.url = o.url || `${proto}//${location.host}/ws`;
      this.token = o.token || null;
      this.onTracks = o.onTracks || (() => {});
      this.onEvent = o.onEvent || (() => {});
      this.iceServersOverride = o.iceServers || null;
      this.ws = null;
      this.pc = null;
      this.room = null;
      this.participant = null;
      this.joinId = null;
      this.carried = new Map(); // mid -> participant id (null: idle)
      this.participants = new Map(); // participant id -> role (those we may see)
      this._streams = new Map(); // participant id -> MediaStream
      this._nextId = 1;
      this._pending = new Map();
      this._chain = Promise.resolve();
      this._closed = false;
    }

    /* Open the websocket and authenticate; resolves with the auth result. */
    connect() {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(this.url);
        this.ws = ws;
        ws.onopen = () => {
          this._call("auth", this.token ? { token: this.token } : {}).then(resolve, reject);
        };
        ws.onmessage = (ev) => this._onMessage(ev);
        ws.onerror = () => reject({ code: "unreachable", message: "websocket error" });
        ws.onclose = (ev) => this._onClose(ev);
      });
    }

    _call(type, fields) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        return Promise.reject({ code: "not_connected", message: "not connected" });
      }
      const id = this._nextId++;
      return new Promise((resolve, reject) => {
        this._pending.set(id, { resolve, reject });
        this.ws.send(JSON.stringify(Object.assign({}, fields, { id, type })));
      });
    }

    _serial(step) {
      const run = this._chain.then(step);
      this._chain = run.catch(() => {});
      return run;
    }

    /* Join a room; creates the peer connection with the ICE servers the server hands out. */
    async join(room, opts) {
      const role = (opts && opts.role) || "party";
      this.joinId = this._nextId; // _call takes this id: events carry it
      const result = await this._call("rtc.join", { room, role });
      this.room = room;
      this.participant = result.participant;
      this.pc = new RTCPeerConnection({
        iceServers: this.iceServersOverride || result.ice_servers || [],
      });
      this.pc.addEventListener("track", () => this._regroup());
      this.pc.addEventListener("connectionstatechange", () =>
        this._emit("connection", { state: this.pc.connectionState }),
      );
      return result;
    }

    addStream(stream) {
      for (const track of stream.getTracks()) {
        this.pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
      }
    }

    addReceivers(pairs) {
      for (let i = 0; i < pairs; i++) {
        this.pc.addTransceiver("video", { direction: "recvonly" });
        this.pc.addTransceiver("audio", { direction: "recvonly" });
      }
    }

    /* Our offer (all candidates) -> rtc.offer -> the server's answer. */
    negotiate() {
      return this._serial(async () => {
        await this.pc.setLocalDescription(await this.pc.createOffer());
        await waitForGathering(this.pc, GATHER_LIMIT_MS);
        const result = await this._call("rtc.offer", {
          room: this.room,
          sdp: this.pc.localDescription.sdp,
        });
        await this.pc.setRemoteDescription({ type: "answer", sdp: result.sdp });
        this._regroup();
      });
    }

    _onServerOffer(data) {
      return this._serial(async () => {
        this._setCarried(data.tracks);
        await this.pc.setRemoteDescription({ type: "offer", sdp: data.sdp });
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        await waitForGathering(this.pc, GATHER_LIMIT_MS);
        await this._call("rtc.answer", { room: this.room, sdp: this.pc.localDescription.sdp });
        this._regroup();
      });
    }

    _setCarried(tracks) {
      this.carried = new Map((tracks || []).map((t) => [t.mid, t.participant_id]));
    }

    /* Received tracks grouped by the participant they carry now. */
    _regroup() {
      if (!this.pc) return;
      const want = new Map();
      for (const t of this.pc.getTransceivers()) {
        const who = this.carried.get(t.mid);
        const track = t.receiver && t.receiver.track;
        if (!who || !track || t.currentDirection === "sendonly" || t.currentDirection === "inactive") {
          continue;
        }
        if (!want.has(who)) want.set(who, []);
        want.get(who).push(track);
      }
      for (const [who, stream] of this._streams) {
        const keep = want.get(who) || [];
        for (const track of stream.getTracks()) {
          if (!keep.includes(track)) stream.removeTrack(track);
        }
        if (!want.has(who)) this._streams.delete(who);
      }
      for (const [who, tracks] of want) {
        let stream = this._streams.get(who);
        if (!stream) {
          stream = new MediaStream();
          this._streams.set(who, stream);
        }
        for (const track of tracks) {
          if (!stream.getTracks().includes(track)) stream.addTrack(track);
        }
      }
      try {
        this.onTracks(this._streams);
      } catch (err) {
        console.error("onTracks failed", err);
      }
    }

    streamFor(participantId) {
      return this._streams.get(participantId) || null;
    }

    _emit(type, data) {
      try {
        this.onEvent(type, data);
      } catch (err) {
        console.error("onEvent failed", err);
      }
    }

    _onRoomEvent(event) {
      const data = event.data || {};
      switch (event.type) {
        case "offer":
          this._onServerOffer(data).catch((err) => this._emit("error", err));
          break;
        case "tracks":
          // Applied in order with negotiation, so a mid exists before it is mapped.
          this._serial(async () => {
            this._setCarried(data.tracks);
            this._regroup();
          });
          break;
        case "participant_joined":
          this.participants.set(data.participant_id, data.role);
          break;
        case "participant_left":
          this.participants.delete(data.participant_id);
          break;
        case "bye":
          this._teardownPeer();
          break;
        default:
          break;
      }
      this._emit(event.type, data);
    }

    _onMessage(ev) {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (err) {
        return;
      }
      if (msg.type === "result") {
        const waiter = this._pending.get(msg.id);
        if (!waiter) return;
        this._pending.delete(msg.id);
        if (msg.success) waiter.resolve(msg.result);
        else waiter.reject(msg.error || { code: "unknown", message: "failed" });
      } else if (msg.type === "event" && msg.id === this.joinId) {
        this._onRoomEvent(msg.event);
      }
    }

    _onClose(ev) {
      for (const waiter of this._pending.values()) {
        waiter.reject({ code: "disconnected", message: `closed (${ev.code})` });
      }
      this._pending.clear();
      if (this.pc && !this._closed) this._emit("bye", { reason: "disconnected" });
      this._teardownPeer();
    }

    _teardownPeer() {
      if (this.pc) {
        this.pc.close();
      }
      this.joinId = null;
    }

    async stats() {
      return this.pc ? this.pc.getStats() : new Map();
    }

    async leave() {
      if (this.room && this.joinId !== null) {
        const room = this.room;
        this.joinId = null;
        await this._call("rtc.leave", { room }).catch(() => {});
      }
      this._teardownPeer();
    }

    close() {
      this._closed = true;
      this._teardownPeer();
      if (this.ws) this.ws.close(1000, "done");
    }
  }

  RtcClient.waitForGathering = waitForGathering;
  global.RtcClient = RtcClient;
})(window);
