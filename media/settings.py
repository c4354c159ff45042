"""Settings of the media core; the app fills them from its own configuration."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class ForwardingPreference(StrEnum):
    """``auto`` forwards encoded frames when the start-up self-test passes; ``relay`` forces
    the decode/re-encode fallback (an escape hatch if an aiortc upgrade breaks the adapter)."""

    AUTO = "auto"
    RELAY = "relay"


@dataclass(frozen=True, slots=True)
class IceServerConfig:
    """One ICE server as configured.

    A ``turn:``/``turns:`` server without a username gets time-limited REST credentials
    derived from :attr:`MediaSettings.turn_secret` (coturn ``use-auth-secret``).
    """

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class MediaSettings:
    recordings_dir: Path
    snapshots_dir: Path
    ice_servers: tuple[IceServerConfig, ...] = ()
    turn_secret: str | None = None
    turn_ttl_s: int = 6 * 3600
    retention_days: int = 180
    record_calls: bool = True
    max_parties: int = 8
    forwarding: ForwardingPreference = ForwardingPreference.AUTO
    # Upstream keyframe requests closer together than this are merged: a publisher asked
    # for a keyframe on every subscriber PLI would spend its bitrate on keyframes.
    pli_min_interval_s: float = 0.5
    # Frames queued for one subscriber before the server drops and re-gates it on a
    # keyframe (a stalled sender must not grow memory without bound).
    subscriber_queue_frames: int = 90
    # A packet missing from a publisher's video is waited for this long (a NACK and its
    # retransmission) before the server gives up on the frame, re-gates the subscribers and
    # asks for a keyframe; aiortc alone would wait until 128 packets had queued behind it.
    hole_timeout_s: float = 0.3
    # A recording cluster is closed (and reaches the disk) at least this often, so a killed
    # process loses at most about this much media.
    recording_cluster_ms: int = 500
    # A call participant whose connection drops keeps its slot (and its recording) this
    # long and may take it back with its rejoin token; 0 removes it at once.
    rejoin_grace_s: float = 20.0
    # The most video bitrate (kbit/s) a room asks its publishers for (REMB); 0: no cap but
    # the weakest subscriber's estimate. A room may set its own (create_room).
    max_video_kbps: int = 0
    # Call quality (media/quality.py): one sample per participant and direction this
    # often, and at most this many samples kept per room (oldest dropped).
    quality_sample_s: float = 2.0
    quality_timeline_max: int = 3600
    snapshot_timeout_s: float = 5.0
    self_test_timeout_s: float = 10.0
