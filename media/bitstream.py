"""Encoded media frames and the little bitstream parsing forwarding needs.

The forwarder never decodes, but it must know where keyframes are (to gate new
subscribers and start recordings) and how big a VP8 picture is (to declare the recording's
video stream). Both are readable from the first bytes of a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

VP8: str = "video/vp8"
H264: str = "video/h264"
OPUS: str = "audio/opus"

_VP8_START_CODE = b"\x9d\x01\x2a"
_H264_IDR = 5
_H264_SPS = 7
_H264_PPS = 8


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One reassembled frame as received from a publisher.

    ``timestamp`` is the RTP timestamp re-based to the track's first frame, in units of
    ``clock_rate``; ``arrival`` is ``time.monotonic()`` when the frame was completed.
    ``discontinuity`` is set on the first frame after packets the server never got (lost and
    not repaired by retransmission): a video inter frame after it references a picture the
    subscribers never saw, so they must wait for a keyframe rather than decode garbage.
    """

    mime: str
    data: bytes
    timestamp: int
    clock_rate: int
    keyframe: bool
    arrival: float
    discontinuity: bool = False

    @property
    def kind(self) -> str:
        return self.mime.split("/", 1)[0]

    def __repr__(self) -> str:
        return (
            f"EncodedFrame({self.mime}, ts={self.timestamp}, {len(self.data)} B"
            f"{', key' if self.keyframe else ''})"
        )


def vp8_is_keyframe(data: bytes) -> bool:
    """RFC 6386 §9.1: the P bit of the frame tag is 0 and the start code follows."""
    return len(data) >= 10 and (data[0] & 0x01) == 0 and data[3:6] == _VP8_START_CODE


def vp8_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header, ``None`` for an inter frame."""
    if not vp8_is_keyframe(data):
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def h264_nal_units(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream (what aiortc's depacketizer produces) into NAL units."""
    units: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        start = i + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt == -1 else nxt
        if nxt != -1 and data[nxt - 1] == 0:
            end = nxt - 1
        if end > start:
            units.append(data[start:end])
        i = nxt
    return units


def h264_is_keyframe(data: bytes) -> bool:
    return any((nal[0] & 0x1F) == _H264_IDR for nal in h264_nal_units(data))


def h264_parameter_sets(data: bytes) -> bytes:
    """SPS and PPS of a keyframe as Annex B (the recording's codec private data)."""
    return b"".join(
        b"\x00\x00\x00\x01" + nal
        for nal in h264_nal_units(data)
        if (nal[0] & 0x1F) in (_H264_SPS, _H264_PPS)
    )


def is_keyframe(mime: str, data: bytes) -> bool:
    """Audio frames are all independently decodable; video depends on the codec."""
    mime = mime.lower()
    if mime == VP8:
        return vp8_is_keyframe(data)
    if mime == H264:
        return h264_is_keyframe(data)
    return not mime.startswith("video/")
