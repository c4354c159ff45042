"""Counters the app shows in /metrics (one instance per :class:`~media.manager.RoomManager`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class MediaCounters:
    # 1 when the adapter self-test failed (or forwarding was disabled) and media is
    # decoded and re-encoded per subscriber instead of forwarded.
    forwarding_fallback: int = 0
    self_test_failures: int = 0
    frames_in: int = 0
    keyframes_in: int = 0
    upstream_keyframe_requests: int = 0
    subscriber_keyframe_requests: int = 0
    # Video frames released after packets that were lost and not retransmitted in time.
    upstream_losses: int = 0
    frames_dropped: int = 0
    # Video withheld from a new subscriber until its first keyframe.
    frames_gated: int = 0
    frames_transcoded: int = 0
    # Audio frames of a muted publisher not sent to a subscriber (still recorded).
    frames_muted: int = 0
    peers_failed: int = 0
    # Dropped participants that took their slot back within the grace period.
    rejoins: int = 0
    recordings_finished: int = 0
    snapshots_taken: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
