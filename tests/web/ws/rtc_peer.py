"""A real aiortc client that speaks the websocket signaling protocol (rtc.join/rtc.offer/
rtc.answer), publishes a counter video (tests/media/peers.py) and decodes what it gets.

It handles messages in order like a browser should: its own offer/answer exchange finishes
before a server ``offer`` event is applied, and that is answered before it offers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from media import codecs
from tests.media.peers import CounterTrack, Received, ToneTrack, read_counter

TIMEOUT = 30.0


class WsSignal:
    """The protocol over one aiohttp websocket: results by id, events by subscription id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 1
        self.messages: list[dict[str, Any]] = []
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self.closed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                self.messages.append(data)
                if data["type"] == "result":
                    fut = self._waiters.pop(data["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(data)
                elif data["type"] == "event":
                    self._events.setdefault(data["id"], asyncio.Queue()).put_nowait(data["event"])
        finally:
            self.closed.set()
            for fut in self._waiters.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("websocket closed"))

    async def send(self, type: str, **fields: Any) -> int:
        msg_id = self.next_id
        self.next_id += 1
        self._waiters[msg_id] = asyncio.get_running_loop().create_future()
        await self.ws.send_json({"id": msg_id, "type": type, **fields})
        return msg_id

    async def result(self, msg_id: int) -> dict[str, Any]:
        return await asyncio.wait_for(self._waiters[msg_id], TIMEOUT)

    async def call(self, type: str, **fields: Any) -> dict[str, Any]:
        return await self.result(await self.send(type, **fields))

    def events(self, sub_id: int) -> asyncio.Queue[dict[str, Any]]:
        return self._events.setdefault(sub_id, asyncio.Queue())

    def event_log(self, sub_id: int) -> list[dict[str, Any]]:
        return [m["event"] for m in self.messages if m["type"] == "event" and m["id"] == sub_id]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


class WsPeer:
    """One participant through the websocket: join, publish, receive, count frames."""

    def __init__(self, signal: WsSignal, room: str, *, base: int = 0, role: str = "party") -> None:
        self.signal = signal
        self.room = room
        self.role = role
        self.video = CounterTrack(base) if role == "party" else None
        self.audio = ToneTrack() if role == "party" else None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.join_id = 0
        self.participant = ""
        self.join_result: dict[str, Any] = {}
        self.received: dict[str, Received] = {}
        self.carried: dict[str | None, str | None] = {}
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    async def join(self) -> dict[str, Any]:
        self.join_id = await self.signal.send("rtc.join", room=self.room, role=self.role)
        return await self._joined()

    async def rejoin(self, participant: str, token: str) -> dict[str, Any]:
        """Take a dropped participant's slot back (rtc.rejoin) on this fresh peer."""
        self.join_id = await self.signal.send(
            "rtc.rejoin", room=self.room, participant=participant, token=token
        )
        return await self._joined()

    async def _joined(self) -> dict[str, Any]:
        reply = await self.signal.result(self.join_id)
        if reply["success"]:
            self.join_result = reply["result"]
            self.participant = reply["result"]["participant"]
            self._tasks.append(asyncio.create_task(self._handle_events()))
        return reply

    async def connect(self) -> None:
        direction = "sendrecv" if self.video else "recvonly"
        for kind, track in (("video", self.video), ("audio", self.audio)):
            codecs.prefer(self.pc.addTransceiver(track or kind, direction=direction))
        if self.role == "monitor":
            for kind in ("video", "audio"):
                codecs.prefer(self.pc.addTransceiver(kind, direction="recvonly"))
        async with self._lock:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            reply = await self.signal.call(
                "rtc.offer", room=self.room, sdp=self.pc.localDescription.sdp
            )
            assert reply["success"], reply
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=reply["result"]["sdp"], type="answer")
            )

    async def _handle_events(self) -> None:
        queue = self.signal.events(self.join_id)
        while True:
            event = await queue.get()
            data = event["data"]
            if event["type"] in ("tracks", "offer"):
                self.carried = {t["mid"]: t["participant_id"] for t in data["tracks"]}
            if event["type"] == "offer":
                async with self._lock:
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=data["sdp"], type="offer")
                    )
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    reply = await self.signal.call(
                        "rtc.answer", room=self.room, sdp=self.pc.localDescription.sdp
                    )
                    assert reply["success"], reply

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        entry = Received(track.kind, transceiver.mid)
        self.received[transceiver.mid or ""] = entry
        self._tasks.append(asyncio.create_task(self._consume(track, entry)))

    async def _consume(self, track: MediaStreamTrack, entry: Received) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            entry.frames += 1
            if track.kind == "video":
                entry.counters.append(read_counter(frame))  # type: ignore[arg-type]

    def video_from(self, participant: str) -> Received | None:
        for mid, who in self.carried.items():
            entry = self.received.get(mid or "")
            if who == participant and entry is not None and entry.kind == "video":
                return entry
        return None

    def audio_frames(self) -> int:
        return sum(e.frames for e in self.received.values() if e.kind == "audio")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.pc.close()


async def wait_for(predicate: Any, limit_s: float = 45.0, step: float = 0.05) -> None:
    """Poll media progress (real time); the limit only turns a hang into a failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {limit_s} s")
        await asyncio.sleep(step)
