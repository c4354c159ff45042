"""Codec preferences for every leg.

VP8 and Opus first: cheap to forward and they mux into WebM without transcoding. The
publisher's and the subscribers' codecs must agree because aiortc packetizes with the first
negotiated codec whatever the payload is; when they cannot (a browser that only does H.264
on one leg), that one leg decodes and re-encodes (see :mod:`media.slot`).
"""

from __future__ import annotations

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from media.bitstream import OPUS, VP8

_RTX = "video/rtx"


def preferences(kind: str, first: str | None = None) -> list[RTCRtpCodecCapability]:
    """Every codec aiortc has for ``kind``, ``first`` (or VP8/Opus) at the front, RTX kept."""
    lead = (first or (VP8 if kind == "video" else OPUS)).lower()
    caps = list(RTCRtpSender.getCapabilities(kind).codecs)
    front = [c for c in caps if c.mimeType.lower() == lead]
    rest = [c for c in caps if c.mimeType.lower() not in (lead, _RTX)]
    rtx = [c for c in caps if c.mimeType.lower() == _RTX]
    return front + rest + rtx


def prefer(transceiver: RTCRtpTransceiver, first: str | None = None) -> None:
    transceiver.setCodecPreferences(preferences(transceiver.kind, first))
