"""The only module that touches aiortc internals (aiortc is pinned to exactly 1.16.0).

aiortc has no public API for encoded frames. Forwarding needs four things from inside it:

* the receiver's decoder queue (``RTCRtpReceiver.__decoder_queue``): ``_handle_rtp_packet``
  puts each reassembled frame on it, on the event loop thread; we swap it for a queue that
  turns frames into :class:`~media.bitstream.EncodedFrame` on the remote track's own queue,
  so ``track.recv()`` yields encoded frames and the decoder thread idles;
* ``RTCRtpReceiver._send_rtcp_pli`` to ask the publisher for a keyframe;
* ``RTCRtpSender._send_keyframe``, which a subscriber's PLI/FIR calls: on the packet path
  aiortc only sets a flag nobody reads, so we bridge it to the publisher;
* ``RTCRtpTransceiver._codecs``/``_headerExtensions``, to prefer VP8 in answers and to keep
  what was negotiated when the server re-offers (``createOffer`` resets both to aiortc's
  defaults, which breaks a browser whose payload types or extension ids differ);
* the receiver's jitter buffer (``RTCRtpReceiver.__jitter_buffer``): aiortc's only knows a
  video frame is complete when the next frame's first packet arrives (+1 frame interval, 33 ms
  at 30 fps) and holds 4 audio frames (+80 ms). A forwarding hop must not add that, so a
  tapped receiver gets one that completes a frame on its RTP marker bit (video) or at once
  (audio: one Opus frame per packet). aiortc's also waits for a missing packet until its
  ring of 128 packets is full (seconds of video at a low bitrate); ours gives up on a hole
  once retransmission had its chance (``hole_timeout_s``) and flags the next frame as a
  ``discontinuity`` so the forwarder re-gates its subscribers and asks for a keyframe.

The sender side needs no internals: ``RTCRtpSender`` packetizes any ``av.Packet`` a track
returns (``MediaPlayer(decode=False)`` uses the same path). :func:`check` verifies every hook
exists; the start-up self-test exercises them end to end.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiortc
from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcpeerconnection import filter_preferred_codecs
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

from media.bitstream import EncodedFrame, is_keyframe

_LOGGER = logging.getLogger(__name__)

AIORTC_VERSION: Final = "1.16.0"
_DECODER_QUEUE: Final = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD: Final = "_RTCRtpReceiver__decoder_thread"
_RTX_SSRC: Final = "_RTCRtpReceiver__rtx_ssrc"
_JITTER_BUFFER: Final = "_RTCRtpReceiver__jitter_buffer"
_REMOTE_STREAMS: Final = "_RTCRtpReceiver__remote_streams"
_SENDER_STATS: Final = "_RTCRtpSender__stats"
_RTCP_SSRC: Final = "_RTCRtpReceiver__rtcp_ssrc"
_RAW_SEND_RTCP: Final = "_center_raw_send_rtcp"
_DTLS_RX: Final = "_RTCDtlsTransport__rx_bytes"
_DTLS_TX: Final = "_RTCDtlsTransport__tx_bytes"
_DYNAMIC_PT = range(96, 128)
_EXTENSION_IDS = range(1, 15)
_AUDIO_HOLE_S = 0.06


class AdapterError(RuntimeError):
    """aiortc's internals are not what this adapter was written against."""


def check() -> None:
    """Fail fast if the pinned aiortc changed under us."""
    if aiortc.__version__ != AIORTC_VERSION:
        raise AdapterError(f"aiortc {aiortc.__version__} installed, adapter needs {AIORTC_VERSION}")
    for cls, name in (
        (RTCRtpReceiver, "_handle_rtp_packet"),
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (RTCRtpSender, "_send_keyframe"),
    ):
        if not callable(getattr(cls, name, None)):
            raise AdapterError(f"{cls.__name__}.{name} is missing")


class _FrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue.

    ``put`` is called by ``_handle_rtp_packet`` on the event loop thread, so putting on the
    track's ``asyncio.Queue`` directly is safe. ``None`` (the stop signal) still goes to the
    real queue so the idle decoder thread exits and ends the track as usual.
    """

    def __init__(self, track_queue: asyncio.Queue[Any]) -> None:
        super().__init__()
        self._out = track_queue

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)
            return
        codec, jitter_frame = item
        mime = codec.mimeType.lower()
        data = bytes(jitter_frame.data)
        self._out.put_nowait(
            EncodedFrame(
                mime=mime,
                data=data,
                timestamp=int(jitter_frame.timestamp),
                clock_rate=int(codec.clockRate),
                keyframe=is_keyframe(mime, data),
                arrival=time.monotonic(),
                discontinuity=bool(getattr(jitter_frame, "discontinuity", False)),
            )
        )


class _Frame(JitterFrame):
    """A released frame that knows whether packets before it were given up on."""

    def __init__(self, data: bytes, timestamp: int, discontinuity: bool) -> None:
        super().__init__(data, timestamp)
        self.discontinuity = discontinuity


def _starts_frame(packet: Any) -> bool:
    """Whether an RTP packet is a frame's first (VP8: S bit set on partition 0; others:
    unknown, so ``True`` only if the timestamp test in the caller agrees)."""
    payload = getattr(packet, "payload", b"")
    if not payload:
        return False
    first = payload[0]
    return bool(first & 0x10) and (first & 0x07) == 0


class _PromptJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, but a frame is released as soon as it is known complete:
    on its marker bit (video), or at once (audio). Reordering and the capacity limit are
    aiortc's; a hole at the origin is given up after ``hole_timeout_s`` (time enough for a
    NACK and its retransmission) instead of only when the ring overflows, and the frame
    released after packets were given up on is flagged ``discontinuity``."""

    def __init__(
        self,
        capacity: int,
        prefetch: int = 0,
        is_video: bool = False,
        *,
        hole_timeout_s: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(capacity, prefetch, is_video)
        # Audio is never retransmitted (no NACK for Opus) and Opus conceals a lost frame, so
        # an audio hole only waits for a reordered packet.
        self._hole_timeout = hole_timeout_s if is_video else min(hole_timeout_s, _AUDIO_HOLE_S)
        self._clock = clock
        self._hole_since: float | None = None
        self._next_seq: int | None = None
        self.holes_skipped = 0

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        # Give up on missing packets: skip to the next frame start behind them.
        if frame is None and self._stalled() and self._skip_hole():
            self.holes_skipped += 1
            frame = self._remove_frame(packet.sequence_number)
        return pli_flag, frame

    def _stalled(self) -> bool:
        """A packet is missing at the origin while later ones wait: since when?"""
        if self._origin is None or self._packets[self._origin % self._capacity] is not None:
            self._hole_since = None
            return False
        now = self._clock()
        if self._hole_since is None:
            self._hole_since = now
            return False
        return now - self._hole_since >= self._hole_timeout

    def _skip_hole(self) -> bool:
        assert self._origin is not None
        first_ts: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                continue
            if first_ts is None:
                first_ts = packet.timestamp
            starts = _starts_frame(packet) if self._is_video else True
            if starts or packet.timestamp != first_ts:
                self.remove(count)
                self._hole_since = None
                return True
        return False

    def _release(self, packets: list[Any], timestamp: int) -> JitterFrame:
        first = packets[0].sequence_number
        gap = self._next_seq is not None and first != self._next_seq
        self._next_seq = (packets[-1].sequence_number + 1) & 0xFFFF
        return _Frame(b"".join(p._data for p in packets), timestamp, gap)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        packets: list[Any] = []
        timestamp: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # The previous frame ended without a marker: release it as aiortc would.
                self.remove(count)
                self._hole_since = None
                return self._release(packets, timestamp)
            packets.append(packet)
            if packet.marker or not self._is_video:
                self.remove(count + 1)
                self._hole_since = None
                return self._release(packets, timestamp)
        return None


def tap_receiver(receiver: RTCRtpReceiver, *, hole_timeout_s: float = 0.3) -> None:
    """Make ``receiver.track.recv()`` return :class:`EncodedFrame` instead of decoded frames.

    Must run before the receiver starts (in the ``track`` event), because ``receive()`` hands
    the queue to the decoder thread.
    """
    track_queue = getattr(receiver.track, "_queue", None)
    if not isinstance(track_queue, asyncio.Queue):
        raise AdapterError("receiver has no remote track queue")
    if not hasattr(receiver, _DECODER_QUEUE) or not hasattr(receiver, _DECODER_THREAD):
        raise AdapterError("RTCRtpReceiver decoder queue not found")
    if getattr(receiver, _DECODER_THREAD) is not None:
        raise AdapterError("receiver already started; tap it in the track event")
    old = getattr(receiver, _JITTER_BUFFER, None)
    if not isinstance(old, JitterBuffer):
        raise AdapterError("RTCRtpReceiver jitter buffer not found")
    setattr(
        receiver,
        _JITTER_BUFFER,
        _PromptJitterBuffer(old.capacity, is_video=old._is_video, hole_timeout_s=hole_timeout_s),
    )
    setattr(receiver, _DECODER_QUEUE, _FrameTap(track_queue))


def _media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    rtx = set(getattr(receiver, _RTX_SSRC, {}).keys())
    for source in receiver.getSynchronizationSources():
        if source.source not in rtx:
            return int(source.source)
    return None


@dataclass(frozen=True, slots=True)
class ReceiveStream:
    """One media (not RTX) SSRC a receiver gets, as its RTCP statistics count it."""

    kind: str
    received: int
    lost: int
    jitter_ms: float


@dataclass(frozen=True, slots=True)
class SendReport:
    """What the remote end last reported about a sender (RTCP receiver report)."""

    kind: str
    fraction_lost: float
    jitter_ms: float
    rtt_ms: float | None


def receive_streams(receiver: RTCRtpReceiver) -> list[ReceiveStream]:
    """Cumulative counters of a receiver's media streams (read, never reset: aiortc's own
    ``fraction_lost`` property resets its interval and belongs to the RTCP loop)."""
    rtx = set(getattr(receiver, _RTX_SSRC, {}).keys())
    streams: dict[int, Any] = getattr(receiver, _REMOTE_STREAMS, {})
    kind = receiver.track.kind if receiver.track is not None else "unknown"
    out = []
    for ssrc, stats in streams.items():
        if ssrc in rtx:
            continue
        clock = int(getattr(stats, "_clockrate", 90000)) or 90000
        out.append(
            ReceiveStream(
                kind=kind,
                received=int(stats.packets_received),
                lost=int(stats.packets_lost),
                jitter_ms=stats.jitter * 1000 / clock,
            )
        )
    return out


def send_report(sender: RTCRtpSender) -> SendReport | None:
    """The latest ``remote-inbound-rtp`` of ``sender`` (``None`` before the first report)."""
    stats: dict[str, Any] = getattr(sender, _SENDER_STATS, {}) or {}
    for item in stats.values():
        if getattr(item, "type", None) != "remote-inbound-rtp":
            continue
        clock = 90000 if item.kind == "video" else 48000
        rtt = item.roundTripTime
        return SendReport(
            kind=item.kind,
            fraction_lost=float(item.fractionLost) / 256,
            jitter_ms=float(item.jitter) * 1000 / clock,
            rtt_ms=None if rtt is None else float(rtt) * 1000,
        )
    return None


def transport_bytes(pc: RTCPeerConnection) -> tuple[int, int]:
    """(bytes received, bytes sent) over every DTLS transport of ``pc``."""
    seen: list[Any] = []
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None and transport not in seen:
            seen.append(transport)
    rx = sum(int(getattr(t, _DTLS_RX, 0)) for t in seen)
    tx = sum(int(getattr(t, _DTLS_TX, 0)) for t in seen)
    return rx, tx


def retransmissions_received(receiver: RTCRtpReceiver) -> int:
    """Packets this receiver got on its RTX stream(s): NACKed packets sent again."""
    rtx = set(getattr(receiver, _RTX_SSRC, {}).keys())
    streams: dict[int, Any] = getattr(receiver, _REMOTE_STREAMS, {})
    return sum(int(stats.packets_received) for ssrc, stats in streams.items() if ssrc in rtx)


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Send a PLI for the receiver's media SSRC; ``False`` when nothing was received yet."""
    ssrc = _media_ssrc(receiver)
    if ssrc is None:
        return False
    await receiver._send_rtcp_pli(ssrc)
    return True


def bridge_keyframe_requests(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Route a subscriber's PLI/FIR on ``sender`` to ``callback`` (sync, on the loop)."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def _remb_bitrate(packet: Any) -> tuple[int, list[int]] | None:
    if not isinstance(packet, RtcpPsfbPacket) or packet.fmt != RTCP_PSFB_APP:
        return None
    try:
        return unpack_remb_fci(packet.fci)
    except ValueError:
        return None


def bridge_bitrate_estimates(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Route a subscriber's REMB (receiver estimated maximum bitrate, bit/s) on ``sender``
    to ``callback``. aiortc applies a REMB only to an encoder of its own; a forwarding
    sender has none, so without this the estimate would be dropped."""
    handle = sender._handle_rtcp_packet

    async def handle_rtcp(packet: Any) -> None:
        remb = _remb_bitrate(packet)
        if remb is not None:
            callback(remb[0])
        await handle(packet)

    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


def cap_bitrate_estimates(
    receiver: RTCRtpReceiver, cap: Callable[[], int | None], seen: Callable[[int], None]
) -> None:
    """Lower the REMBs aiortc's own estimator sends the publisher to ``cap()`` (when set),
    and tell ``seen`` the server's own estimate first (the publisher→server leg)."""
    send = receiver._send_rtcp
    setattr(receiver, _RAW_SEND_RTCP, send)

    async def send_rtcp(packet: Any) -> None:
        remb = _remb_bitrate(packet)
        if remb is not None:
            bitrate, ssrcs = remb
            seen(bitrate)
            limit = cap()
            if limit is not None and limit < bitrate:
                packet = RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP,
                    ssrc=packet.ssrc,
                    media_ssrc=packet.media_ssrc,
                    fci=pack_remb_fci(limit, ssrcs),
                )
        await send(packet)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]


async def send_bitrate_estimate(receiver: RTCRtpReceiver, bitrate: int) -> bool:
    """Send the publisher a REMB of ``bitrate`` bit/s for the receiver's media SSRC;
    ``False`` when nothing was received yet."""
    ssrc = _media_ssrc(receiver)
    rtcp_ssrc = getattr(receiver, _RTCP_SSRC, None)
    if ssrc is None or rtcp_ssrc is None:
        return False
    send = getattr(receiver, _RAW_SEND_RTCP, receiver._send_rtcp)
    await send(
        RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, [ssrc])
        )
    )
    return True


def negotiated_codec(transceiver: RTCRtpTransceiver) -> str | None:
    """MIME type (lower case) the transceiver's sender packetizes with: the first codec."""
    codecs: list[RTCRtpCodecParameters] = getattr(transceiver, "_codecs", [])
    for codec in codecs:
        if codec.mimeType.lower() != "video/rtx":
            return codec.mimeType.lower()
    return None


def apply_codec_preferences(transceiver: RTCRtpTransceiver) -> None:
    """Re-order a transceiver's codecs, just negotiated from a remote offer, by its
    preferences (``setCodecPreferences`` only applies to codecs negotiated later)."""
    preferred = transceiver._preferred_codecs
    if preferred:
        reordered = filter_preferred_codecs(transceiver._codecs, preferred)
        if reordered:
            transceiver._codecs = reordered


def _codec_key(codec: RTCRtpCodecParameters) -> tuple[Any, ...]:
    params = {k: v for k, v in codec.parameters.items() if k != "apt"}
    return (codec.mimeType.lower(), codec.clockRate, codec.channels, tuple(sorted(params.items())))


def _remap_codecs(
    codecs: list[RTCRtpCodecParameters], used: dict[int, tuple[Any, ...]]
) -> list[RTCRtpCodecParameters]:
    """Give new codecs the payload types the session already uses for them, and free ones
    otherwise: one payload type must mean one codec across a BUNDLE group."""
    by_key = {key: pt for pt, key in used.items()}
    mapping: dict[int, int] = {}
    out: list[RTCRtpCodecParameters] = []
    for codec in codecs:
        codec = copy.deepcopy(codec)
        key = _codec_key(codec)
        if codec.mimeType.lower().endswith("/rtx"):
            apt = codec.parameters.get("apt")
            if isinstance(apt, int) and apt in mapping:
                codec.parameters["apt"] = mapping[apt]
            key = (*key, codec.parameters.get("apt"))
        old_pt = int(codec.payloadType or 0)
        if key in by_key:
            new_pt = by_key[key]
        elif old_pt not in used:
            new_pt = old_pt
        else:
            new_pt = next(pt for pt in _DYNAMIC_PT if pt not in used)
        mapping[old_pt] = new_pt
        codec.payloadType = new_pt
        used[new_pt] = key
        by_key[key] = new_pt
        out.append(codec)
    return out


def _remap_extensions(
    extensions: list[RTCRtpHeaderExtensionParameters], used: dict[str, int]
) -> list[RTCRtpHeaderExtensionParameters]:
    out = []
    for ext in extensions:
        if ext.uri in used:
            ext_id = used[ext.uri]
        elif ext.id not in used.values():
            ext_id = ext.id
        else:
            ext_id = next(i for i in _EXTENSION_IDS if i not in used.values())
        used[ext.uri] = ext_id
        out.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=ext.uri))
    return out


async def create_offer(pc: RTCPeerConnection) -> RTCSessionDescription:
    """A server-initiated (re-)offer that keeps every negotiated m-line as negotiated.

    ``createOffer`` resets each transceiver's codecs and header extensions to aiortc's
    defaults; a browser whose payload types differ would then see them change (or collide
    within the BUNDLE group) while aiortc's already started receivers keep the old mapping.
    """
    transceivers = pc.getTransceivers()
    pinned = {
        t: (list(t._codecs), list(t._headerExtensions))
        for t in transceivers
        if t.mid is not None and t.currentDirection is not None and t._codecs
    }
    offer = await pc.createOffer()
    description = aiortc_sdp.SessionDescription.parse(offer.sdp)
    used_pt: dict[int, tuple[Any, ...]] = {}
    used_ext: dict[str, int] = {}
    for t, (codecs, extensions) in pinned.items():
        t._codecs, t._headerExtensions = codecs, extensions
        rtx_keys: list[RTCRtpCodecParameters] = []
        for codec in codecs:
            if codec.mimeType.lower().endswith("/rtx"):
                rtx_keys.append(codec)
            else:
                used_pt[int(codec.payloadType or 0)] = _codec_key(codec)
        for codec in rtx_keys:
            key = (*_codec_key(codec), codec.parameters.get("apt"))
            used_pt[int(codec.payloadType or 0)] = key
        for ext in extensions:
            used_ext[ext.uri] = ext.id
    # New transceivers get their mid only in setLocalDescription; createOffer has already
    # given every transceiver its m-line index.
    by_index = {t._get_mline_index(): t for t in transceivers}
    for index, media in enumerate(description.media):
        found = by_index.get(index)
        if found is None or media.kind not in ("audio", "video"):
            continue
        if found not in pinned:
            found._codecs = _remap_codecs(found._codecs, used_pt)
            found._headerExtensions = _remap_extensions(found._headerExtensions, used_ext)
        media.rtp.codecs = list(found._codecs)
        media.fmt = [c.payloadType for c in found._codecs]
        media.rtp.headerExtensions = list(found._headerExtensions)
    return RTCSessionDescription(sdp=str(description), type="offer")


def remote_receives(transceiver: RTCRtpTransceiver) -> bool:
    """Whether the remote's last offer lets the server send on this m-line."""
    return getattr(transceiver, "_offerDirection", None) in ("sendonly", "sendrecv")
