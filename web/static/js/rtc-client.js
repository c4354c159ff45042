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
 * Self-rejoin (calls): aiortc has no ICE restart, so when the peer connection goes
 * `failed`, or stays `disconnected` for `disconnectedMs` (1.5 s; Chromium says
 * `disconnected` about 2.5 s into a dead link, `failed` only after 30 s), when the server
 * says `bye {reason: "failed"}`, or when the websocket drops, the client opens a fresh peer
 * connection and takes its slot back with `rtc.rejoin` and the join's rejoin token
 * (reconnecting the websocket first if needed), re-adding the same local tracks and
 * receivers. It emits `reconnecting` then `rejoined` (or `bye` with the refusal's code,
 * e.g. `rejoin_expired`). Every `statsIntervalMs` (2 s) it reports its own getStats()
 * figures with `rtc.stats` into the room's quality timeline.
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
      this.rejoinToken = null;
      this.rejoins = 0;
      this.autoRejoin = o.rejoin !== false;
      this.disconnectedMs = o.disconnectedMs || 1500;
      this.statsIntervalMs = o.statsIntervalMs === undefined ? 2000 : o.statsIntervalMs;
      this._local = []; // streams given to addStream, re-added on a rejoin
      this._receiverPairs = 0;
      this._rejoining = null;
      this._disconnectedTimer = null;
      this._statsTimer = null;
      this._lastStats = null;
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
      this.kind = result.kind; // only a call holds a dropped slot for a rejoin
      this._newPeer(result);
      this._startStats();
      return result;
    }

    _newPeer(result) {
      this.rejoinToken = (result.kind || this.kind) === "call" ? result.rejoin_token : null;
      const pc = new RTCPeerConnection({
        iceServers: this.iceServersOverride || result.ice_servers || [],
      });
      this.pc = pc;
      this._lastStats = null;
      pc.addEventListener("track", () => this._regroup());
      pc.addEventListener("connectionstatechange", () => {
        if (pc !== this.pc) return; // a connection we already gave up
        this._emit("connection", { state: pc.connectionState });
        this._watchConnection(pc);
      });
    }

    /* A dead link: `failed` at once, `disconnected` that does not heal within disconnectedMs. */
    _watchConnection(pc) {
      const state = pc.connectionState;
      clearTimeout(this._disconnectedTimer);
      this._disconnectedTimer = null;
      if (state === "failed") {
        this._rejoinSoon("failed");
      } else if (state === "disconnected") {
        this._disconnectedTimer = setTimeout(() => {
          if (pc === this.pc && ["disconnected", "failed"].includes(pc.connectionState)) {
            this._rejoinSoon("disconnected");
          }
        }, this.disconnectedMs);
      }
    }

    _rejoinSoon(why) {
      if (!this.autoRejoin || this._closed || !this.rejoinToken || !this.room) return;
      if (this._rejoining) return;
      this._rejoining = this._rejoin(why).finally(() => {
        this._rejoining = null;
      });
    }

    /* A fresh peer connection in the same slot (rtc.rejoin), same local tracks. */
    async _rejoin(why) {
      this._emit("reconnecting", { reason: why });
      const old = this.pc;
      this.pc = null;
      if (old) old.close();
      this.joinId = null;
      this._chain = Promise.resolve(); // steps of the dead connection never finish
      for (let attempt = 0; ; attempt++) {
        try {
          if (!this.ws || this.ws.readyState !== WebSocket.OPEN) await this.connect();
          this.joinId = this._nextId;
          const result = await this._call("rtc.rejoin", {
            room: this.room,
            participant: this.participant,
            token: this.rejoinToken,
          });
          this._newPeer(result);
          for (const stream of this._local) this._addTracks(stream);
          this._addPairs(this._receiverPairs);
          await this.negotiate();
          this.rejoins += 1;
          this._emit("rejoined", { participant: this.participant });
          return;
        } catch (err) {
          const code = (err && err.code) || "unknown";
          if (code !== "disconnected" && code !== "not_connected" && code !== "unreachable") {
            this.joinId = null;
            this.rejoinToken = null;
            this._teardownPeer();
            this._emit("bye", { reason: code });
            return;
          }
          if (this._closed || attempt >= 10) return;
          await new Promise((r) => setTimeout(r, Math.min(500 * (attempt + 1), 3000)));
        }
      }
    }

    addStream(stream) {
      this._local.push(stream);
      this._addTracks(stream);
    }

    _addTracks(stream) {
      for (const track of stream.getTracks()) {
        this.pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
      }
    }

    addReceivers(pairs) {
      this._receiverPairs += pairs;
      this._addPairs(pairs);
    }

    _addPairs(pairs) {
      for (let i = 0; i < pairs; i++) {
        this.pc.addTransceiver("video", { direction: "recvonly" });
        this.pc.addTransceiver("audio", { direction: "recvonly" });
      }
    }

    _startStats() {
      clearInterval(this._statsTimer);
      if (!this.statsIntervalMs) return;
      this._statsTimer = setInterval(() => {
        this._reportStats().catch(() => {});
      }, this.statsIntervalMs);
    }

    /* Our own getStats() over the last interval: downlink from inbound-rtp, uplink from
       the server's receiver reports (remote-inbound-rtp), rtt from the candidate pair. */
    async _reportStats() {
      const pc = this.pc;
      if (!pc || pc.connectionState !== "connected" || this.joinId === null) return;
      const report = await pc.getStats();
      const now = {
        at: performance.now(), rxPackets: 0, rxLost: 0, rxBytes: 0, frames: 0, txBytes: 0,
        encoded: 0,
      };
      let downJitter = null;
      let upLoss = null;
      let upJitter = null;
      let rtt = null;
      report.forEach((s) => {
        if (s.type === "inbound-rtp") {
          now.rxPackets += s.packetsReceived || 0;
          now.rxLost += Math.max(s.packetsLost || 0, 0);
          now.rxBytes += s.bytesReceived || 0;
          if (s.kind === "video") {
            now.frames += s.framesDecoded || 0;
            if (s.jitter !== undefined) downJitter = Math.max(downJitter || 0, s.jitter * 1000);
          }
        } else if (s.type === "outbound-rtp") {
          now.txBytes += s.bytesSent || 0;
          if (s.kind === "video") now.encoded += s.framesEncoded || 0;
        } else if (s.type === "remote-inbound-rtp") {
          if (s.fractionLost !== undefined) upLoss = Math.max(upLoss || 0, s.fractionLost);
          if (s.kind === "video" && s.jitter !== undefined) {
            upJitter = Math.max(upJitter || 0, s.jitter * 1000);
          }
        } else if (s.type === "transport" && s.selectedCandidatePairId) {
          const pair = report.get(s.selectedCandidatePairId);
          if (pair && pair.currentRoundTripTime !== undefined) {
            rtt = pair.currentRoundTripTime * 1000;
          }
        }
      });
      const last = this._lastStats;
      this._lastStats = now;
      if (!last) return;
      const dt = Math.max((now.at - last.at) / 1000, 0.001);
      const got = now.rxPackets - last.rxPackets;
      const lost = Math.max(now.rxLost - last.rxLost, 0);
      const clamp = (v, hi) => (v === null ? null : Math.min(Math.max(v, 0), hi));
      const round = (v) => (v === null ? null : Math.round(v * 10) / 10);
      const kbps = (a, b) => clamp(round(((a - b) * 8) / dt / 1000), 1e7);
      const samples = [
        {
          direction: "downlink",
          loss: got + lost > 0 ? clamp(lost / (got + lost), 1) : null,
          jitter_ms: clamp(round(downJitter), 1e7),
          rtt_ms: clamp(round(rtt), 1e7),
          bitrate_kbps: kbps(now.rxBytes, last.rxBytes),
          fps: clamp(round((now.frames - last.frames) / dt), 1e7),
        },
        {
          direction: "uplink",
          loss: clamp(upLoss, 1),
          jitter_ms: clamp(round(upJitter), 1e7),
          rtt_ms: clamp(round(rtt), 1e7),
          bitrate_kbps: kbps(now.txBytes, last.txBytes),
          fps: clamp(round((now.encoded - last.encoded) / dt), 1e7),
        },
      ];
      await this._call("rtc.stats", { room: this.room, samples });
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
          if (data.reason === "failed" && this.autoRejoin && this.rejoinToken && !this._closed) {
            // The server saw our connection die first and holds the slot: take it back.
            this._rejoinSoon("failed");
            return;
          }
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
      if (this._closed || !this.pc) return;
      if (ev.code === 4002) {
        // The visit ended: the server will not take us back; no rejoin.
        this.rejoinToken = null;
        this._emit("bye", { reason: "visit_ended" });
        this._teardownPeer();
        return;
      }
      if (this.autoRejoin && this.rejoinToken && this.room) {
        // The server holds our slot for the grace period: reconnect and take it back.
        this._rejoinSoon("socket");
        return;
      }
      this._emit("bye", { reason: "disconnected" });
      this._teardownPeer();
    }

    _teardownPeer() {
      clearTimeout(this._disconnectedTimer);
      if (this.pc) {
        this.pc.close();
      }
      this.joinId = null;
    }

    async stats() {
      return this.pc ? this.pc.getStats() : new Map();
    }

    async leave() {
      this.rejoinToken = null;
      clearInterval(this._statsTimer);
      if (this.room && this.joinId !== null) {
        const room = this.room;
        this.joinId = null;
        await this._call("rtc.leave", { room }).catch(() => {});
      }
      this._teardownPeer();
    }

    close() {
      this._closed = true;
      clearInterval(this._statsTimer);
      this._teardownPeer();
      if (this.ws) this.ws.close(1000, "done");
    }
  }

  RtcClient.waitForGathering = waitForGathering;
  global.RtcClient = RtcClient;
})(window);
