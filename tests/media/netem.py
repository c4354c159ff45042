"""An impaired network for real aiortc peers, in user space (this kernel has no ``netem``).

:class:`ImpairedLink` hooks the UDP sockets of one test peer's ICE transport: every
datagram the peer sends (uplink) and receives (downlink) — STUN, DTLS and SRTP alike, as a
router would see them — goes through a :class:`Pipe` that drops, delays, jitters, reorders
and caps the bandwidth, from a seeded random source so a failing run can be replayed. The
link can also be cut for N seconds (everything dropped both ways, ICE consent included).

The hook sits on aioice's ``StunProtocol`` objects (its socket wrappers): wrapping
``transport.sendto`` catches every outgoing datagram and ``datagram_received`` every
incoming one, below ICE, DTLS and RTP, so nothing above can tell it from a bad network.
Used by ``tests/media/test_network.py`` and ``bench/network.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection


@dataclass
class Impairment:
    """One direction of a link. ``delay_s`` is one way (RTT = both directions' delays)."""

    loss: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    # Share of datagrams held back by an extra ``reorder_s`` (they arrive after later ones).
    reorder: float = 0.0
    reorder_s: float = 0.02
    # Bandwidth cap in bit/s (``None``: unlimited) and the most queueing it may add before
    # datagrams are tail-dropped, like a router's buffer.
    rate_bps: float | None = None
    queue_s: float = 0.25


@dataclass
class PipeStats:
    sent: int = 0
    dropped: int = 0
    cut: int = 0
    queued_drop: int = 0
    bytes: int = 0


@dataclass
class Pipe:
    """Delivers datagrams after the impairment; callbacks are timer handles, kept so
    :meth:`close` can cancel whatever is still in flight."""

    impairment: Impairment
    rng: random.Random
    is_cut: Callable[[], bool]
    stats: PipeStats = field(default_factory=PipeStats)
    _busy_until: float = 0.0
    _handles: set[asyncio.TimerHandle] = field(default_factory=set)

    def send(self, size: int, deliver: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        imp = self.impairment
        if self.is_cut():
            self.stats.cut += 1
            return
        if imp.loss and self.rng.random() < imp.loss:
            self.stats.dropped += 1
            return
        delay = imp.delay_s
        if imp.rate_bps:
            start = max(now, self._busy_until)
            if start - now > imp.queue_s:
                self.stats.queued_drop += 1
                return
            self._busy_until = start + size * 8 / imp.rate_bps
            delay += self._busy_until - now
        if imp.jitter_s:
            delay += self.rng.uniform(0, imp.jitter_s)
        if imp.reorder and self.rng.random() < imp.reorder:
            delay += imp.reorder_s
        self.stats.sent += 1
        self.stats.bytes += size
        if delay <= 0:
            deliver()
            return
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            assert handle is not None
            self._handles.discard(handle)
            deliver()

        handle = loop.call_later(delay, fire)
        self._handles.add(handle)

    def close(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


class ImpairedLink:
    """The network between one aiortc peer and everything it talks to."""

    def __init__(
        self,
        uplink: Impairment | None = None,
        downlink: Impairment | None = None,
        *,
        seed: int = 1,
    ) -> None:
        rng = random.Random(seed)
        self.uplink = Pipe(uplink or Impairment(), random.Random(rng.random()), self._cut)
        self.downlink = Pipe(downlink or Impairment(), random.Random(rng.random()), self._cut)
        self._cut_until = float("-inf")
        self._attached: list[Any] = []

    @classmethod
    def symmetric(cls, impairment: Impairment, *, seed: int = 1) -> ImpairedLink:
        return cls(impairment, Impairment(**vars(impairment)), seed=seed)

    def set(self, uplink: Impairment | None = None, downlink: Impairment | None = None) -> None:
        """Change the impairment of a running link."""
        if uplink is not None:
            self.uplink.impairment = uplink
        if downlink is not None:
            self.downlink.impairment = downlink

    def _cut(self) -> bool:
        return asyncio.get_running_loop().time() < self._cut_until

    def cut(self, seconds: float) -> None:
        """Drop everything both ways for ``seconds`` from now."""
        self._cut_until = asyncio.get_running_loop().time() + seconds

    @property
    def cut_active(self) -> bool:
        return self._cut()

    def attach(self, pc: RTCPeerConnection) -> None:
        """Hook every gathered socket of ``pc`` (call after ``setLocalDescription``)."""
        for protocol in _protocols(pc):
            if protocol in self._attached:
                continue
            self._hook(protocol)
            self._attached.append(protocol)

    def _hook(self, protocol: Any) -> None:
        transport = protocol.transport
        raw_sendto = transport.sendto
        raw_received = protocol.datagram_received

        def sendto(data: bytes, addr: Any = None) -> None:
            self.uplink.send(len(data), lambda: _ignore_closed(raw_sendto, data, addr))

        def datagram_received(data: bytes, addr: Any) -> None:
            self.downlink.send(len(data), lambda: raw_received(data, addr))

        transport.sendto = sendto
        protocol.datagram_received = datagram_received

    def close(self) -> None:
        self.uplink.close()
        self.downlink.close()


def _ignore_closed(sendto: Callable[..., None], data: bytes, addr: Any) -> None:
    # The socket may have closed while the datagram was "in flight".
    with contextlib.suppress(OSError, AttributeError):
        sendto(data, addr)


def _protocols(pc: RTCPeerConnection) -> list[Any]:
    """aioice's socket wrappers of every ICE transport of ``pc`` (BUNDLE: usually one)."""
    found: list[Any] = []
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        for protocol in getattr(ice._connection, "_protocols", []):
            if protocol not in found:
                found.append(protocol)
    return found
