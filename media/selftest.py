"""Start-up self-test of the forwarding adapter, end to end on loopback.

A publisher sends a small synthetic VP8 track to a tapped server receiver, whose encoded
frames go through a :class:`~media.slot.SlotTrack` to a second connection and are decoded
by a subscriber. It passes when the subscriber decodes pictures of the right size, the
server saw a keyframe, and a PLI could be sent upstream. Anything else (an aiortc upgrade
that moved an internal, a codec that no longer packetizes) fails it and the manager falls
back to decoding and re-encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

from media import aiortc_adapter, codecs
from media.forwarder import ForwardingMode, TrackForwarder
from media.metrics import MediaCounters
from media.slot import SlotTrack

_LOGGER = logging.getLogger(__name__)

_WIDTH, _HEIGHT = 160, 120
_FRAMES = 5


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    ok: bool
    reason: str = ""


class _Pattern(VideoStreamTrack):
    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(
            np.full((_HEIGHT, _WIDTH, 3), pts % 255, dtype=np.uint8), format="rgb24"
        )
        frame.pts, frame.time_base = pts, time_base
        return frame


async def _connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def _exercise(counters: MediaCounters) -> None:
    config = RTCConfiguration(iceServers=[])
    publisher, hub_in = RTCPeerConnection(config), RTCPeerConnection(config)
    hub_out, subscriber = RTCPeerConnection(config), RTCPeerConnection(config)
    forwarder: TrackForwarder | None = None
    slot = SlotTrack("video", counters=counters, max_queue=30)
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    consumer: asyncio.Future[asyncio.Task[int]] = asyncio.get_running_loop().create_future()
    try:
        codecs.prefer(publisher.addTransceiver(_Pattern(), direction="sendonly"))

        @hub_in.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            transceiver = next(t for t in hub_in.getTransceivers() if t.receiver.track is track)
            aiortc_adapter.tap_receiver(transceiver.receiver)
            received.set_result(track)

        await _connect(publisher, hub_in)
        source = await received
        transceiver: RTCRtpTransceiver = hub_in.getTransceivers()[0]
        forwarder = TrackForwarder(
            track=source,
            receiver=transceiver.receiver,
            publisher_id="selftest",
            codec=aiortc_adapter.negotiated_codec(transceiver),
            mode=ForwardingMode.FORWARD,
            counters=counters,
            pli_min_interval_s=0.2,
        )
        out = hub_out.addTransceiver(slot, direction="sendonly")
        codecs.prefer(out)
        aiortc_adapter.bridge_keyframe_requests(out.sender, slot.on_keyframe_request)
        slot.bind(forwarder)
        forwarder.start()

        @subscriber.on("track")
        def _on_sub_track(track: MediaStreamTrack) -> None:
            consumer.set_result(asyncio.create_task(_decode(track)))

        await _connect(hub_out, subscriber)
        slot.send_mime = aiortc_adapter.negotiated_codec(out)
        decoded = await (await consumer)
        if decoded < _FRAMES:
            raise aiortc_adapter.AdapterError(f"subscriber decoded {decoded} frames")
        if counters.keyframes_in < 1:
            raise aiortc_adapter.AdapterError("no keyframe seen on the tapped receiver")
        if not await aiortc_adapter.request_keyframe(transceiver.receiver):
            raise aiortc_adapter.AdapterError("could not send a PLI upstream")
    finally:
        if consumer.done():
            task = consumer.result()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pc in (subscriber, hub_out, hub_in, publisher):
            await pc.close()
        if forwarder is not None:
            await forwarder.close()
        slot.stop()


async def _decode(track: MediaStreamTrack) -> int:
    good = 0
    while good < _FRAMES:
        try:
            frame = await track.recv()
        except MediaStreamError:
            break
        if isinstance(frame, av.VideoFrame) and (frame.width, frame.height) == (
            _WIDTH,
            _HEIGHT,
        ):
            good += 1
    return good


async def run_self_test(*, timeout_s: float, inject_failure: bool = False) -> SelfTestResult:
    """Never raises: a failure is a result, and the caller falls back."""
    try:
        aiortc_adapter.check()
        if inject_failure:
            raise aiortc_adapter.AdapterError("failure injected")
        await asyncio.wait_for(_exercise(MediaCounters()), timeout_s)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        return SelfTestResult(False, f"timed out after {timeout_s} s")
    except Exception as exc:
        return SelfTestResult(False, f"{type(exc).__name__}: {exc}")
    return SelfTestResult(True)
