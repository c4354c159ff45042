"""Call quality per participant and direction, sampled from the server's own RTP/RTCP.

Every ``quality_sample_s`` a room samples each participant twice:

* ``uplink`` — participant to server: what the server's receivers counted (packets lost by
  sequence number, before any retransmission repaired them; interarrival jitter), the
  bytes received and the frames the publication's forwarders got;
* ``downlink`` — server to participant: what the participant's receiver reports back in
  RTCP receiver reports (fraction lost, jitter, round-trip time) and the bytes sent.

Each sample gets a grade in the way LiveKit and Jitsi grade a connection, from loss, jitter
and round-trip time (thresholds below): ``excellent``, ``good``, ``poor``, or ``lost`` when
the connection is down or nothing arrived during the interval. A publisher whose media has
not started yet is given :data:`START_ALLOWANCE_S` after the connection comes up (the first
key frame of a software encoder on a busy machine takes a moment) before silence counts as
lost, so every call does not open with a false "lost" span; a camera that never sends is
still named lost after that. The room keeps the samples
as a bounded timeline; :func:`degraded_spans` turns it into "which side, which direction,
from when to when", so staff can tell an uplink problem of the relative from one of the
prison terminal (both uplinks fine, one downlink bad: the server's side of that leg).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from media import aiortc_adapter


class Grade(StrEnum):
    EXCELLENT = "excellent"
    GOOD = "good"
    POOR = "poor"
    LOST = "lost"


# (loss fraction, jitter ms, rtt ms) at or above which a sample is no better than the grade.
_POOR = (0.10, 60.0, 400.0)
_GOOD = (0.02, 30.0, 200.0)
# Seconds after a participant's connection comes up before no media at all counts as lost.
START_ALLOWANCE_S = 3.0

_RANK = {Grade.EXCELLENT: 0, Grade.GOOD: 1, Grade.POOR: 2, Grade.LOST: 3}


def grade(loss: float | None, jitter_ms: float | None, rtt_ms: float | None) -> Grade:
    values = (loss or 0.0, jitter_ms or 0.0, rtt_ms or 0.0)
    if any(v >= limit for v, limit in zip(values, _POOR, strict=True)):
        return Grade.POOR
    if any(v >= limit for v, limit in zip(values, _GOOD, strict=True)):
        return Grade.GOOD
    return Grade.EXCELLENT


@dataclass(frozen=True, slots=True)
class QualitySample:
    at: datetime
    participant_id: str
    role: str
    direction: str  # "uplink" | "downlink"
    state: str
    grade: Grade
    loss: float | None  # fraction of packets lost in the interval
    jitter_ms: float | None
    rtt_ms: float | None
    bitrate_kbps: float | None
    fps: float | None
    # "server": measured from the server's RTP/RTCP; "browser": the participant's own
    # getStats() as its page reported it (rtc.stats), the other end of the same leg.
    source: str = "server"

    @classmethod
    def lost(cls, at: datetime, participant_id: str, role: str, direction: str) -> QualitySample:
        """A held (dropped, may rejoin) participant: nothing flows either way."""
        return cls(
            at, participant_id, role, direction, "reconnecting", Grade.LOST,
            None, None, None, None, None,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "participant_id": self.participant_id,
            "role": self.role,
            "direction": self.direction,
            "state": self.state,
            "grade": str(self.grade),
            "loss": self.loss,
            "jitter_ms": self.jitter_ms,
            "rtt_ms": self.rtt_ms,
            "bitrate_kbps": self.bitrate_kbps,
            "fps": self.fps,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class DegradedSpan:
    participant_id: str
    role: str
    direction: str
    worst: Grade
    start: datetime
    end: datetime
    source: str = "server"


def degraded_spans(samples: list[QualitySample]) -> list[DegradedSpan]:
    """Runs of ``poor``/``lost`` samples per participant, direction and source, in time
    order (the server's and the browser's views of a leg are kept apart)."""
    open_: dict[tuple[str, str, str], DegradedSpan] = {}
    done: list[DegradedSpan] = []
    for sample in samples:
        key = (sample.participant_id, sample.direction, sample.source)
        bad = sample.grade in (Grade.POOR, Grade.LOST)
        span = open_.get(key)
        if bad:
            if span is None:
                open_[key] = DegradedSpan(
                    sample.participant_id,
                    sample.role,
                    sample.direction,
                    sample.grade,
                    sample.at,
                    sample.at,
                    sample.source,
                )
            else:
                worst = max(span.worst, sample.grade, key=_RANK.__getitem__)
                open_[key] = DegradedSpan(
                    span.participant_id,
                    span.role,
                    span.direction,
                    worst,
                    span.start,
                    sample.at,
                    span.source,
                )
        elif span is not None:
            done.append(span)
            del open_[key]
    done.extend(open_.values())
    return sorted(done, key=lambda s: s.start)


@dataclass(slots=True)
class _Counts:
    received: int = 0
    lost: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    frames: int = 0
    at: float | None = None


class QualityMeter:
    """Turns one participant's cumulative counters into per-interval samples."""

    def __init__(self) -> None:
        self._last = _Counts()
        self._connected_at: float | None = None

    async def sample(
        self, participant: Any, at: datetime, monotonic: float
    ) -> tuple[QualitySample, QualitySample]:
        pc = participant.pc
        now = _Counts(at=monotonic)
        jitters: list[float] = []
        for transceiver in pc.getTransceivers():
            receiver = transceiver.receiver
            if receiver.track is None:
                continue
            for stream in aiortc_adapter.receive_streams(receiver):
                now.received += stream.received
                now.lost += max(stream.lost, 0)
                if stream.kind == "video":
                    jitters.append(stream.jitter_ms)
        rtts: list[float] = []
        down_loss: list[float] = []
        down_jitter: list[float] = []
        for transceiver in pc.getTransceivers():
            report = aiortc_adapter.send_report(transceiver.sender)
            if report is None:
                continue
            if report.rtt_ms is not None:
                rtts.append(report.rtt_ms)
            down_loss.append(report.fraction_lost)
            if report.kind == "video":
                down_jitter.append(report.jitter_ms)
        transport = aiortc_adapter.transport_bytes(pc)
        now.rx_bytes, now.tx_bytes = transport
        now.frames = sum(f.frames for f in participant.publications if f.kind == "video")
        last, self._last = self._last, now
        dt = None if last.at is None else max(monotonic - last.at, 1e-3)
        state = str(participant.state)
        connected = state == "connected"
        if connected and self._connected_at is None:
            self._connected_at = monotonic
        starting = (
            now.received == 0
            and self._connected_at is not None
            and monotonic - self._connected_at < START_ALLOWANCE_S
        )
        rtt = max(rtts) if rtts else None

        def rate(new: int, old: int) -> float | None:
            return None if dt is None else round((new - old) * 8 / dt / 1000, 1)

        got = now.received - last.received
        lost = now.lost - last.lost
        up_loss = (lost / (got + lost)) if dt is not None and got + lost > 0 else None
        up_jitter = round(max(jitters), 1) if jitters else None
        publishes = bool(participant.publications)
        up_grade = grade(up_loss, up_jitter, rtt)
        if not connected or (publishes and dt is not None and got <= 0 and not starting):
            up_grade = Grade.LOST
        fps = None if dt is None else round((now.frames - last.frames) / dt, 1)
        uplink = QualitySample(
            at, participant.id, str(participant.role), "uplink", state, up_grade,
            None if up_loss is None else round(up_loss, 4), up_jitter,
            None if rtt is None else round(rtt, 1), rate(now.rx_bytes, last.rx_bytes),
            fps if publishes else None,
        )  # fmt: skip
        d_loss = max(down_loss) if down_loss else None
        d_jitter = round(max(down_jitter), 1) if down_jitter else None
        down_grade = grade(d_loss, d_jitter, rtt) if connected else Grade.LOST
        downlink = QualitySample(
            at, participant.id, str(participant.role), "downlink", state, down_grade,
            None if d_loss is None else round(d_loss, 4), d_jitter,
            None if rtt is None else round(rtt, 1), rate(now.tx_bytes, last.tx_bytes), None,
        )  # fmt: skip
        return uplink, downlink
