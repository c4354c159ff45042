"""What a spot-check needs from outside ``alerts``: the call rooms port and its values, and
the policy parsed from the settings.

The media core implements :class:`CallRooms` in ``web/spotcheck_rooms.py`` (``alerts``
never imports ``media``); the composition root hands it to the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from center.authz import Principal


@dataclass(frozen=True, slots=True)
class SubjectLogin:
    """The subject's own login, which the call room admits as its other party."""

    principal_key: str
    username: str


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    id: str
    path: Path
    sha256: str
    width: int
    height: int
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class RecordingFile:
    id: str
    state: str
    sha256: str | None
    size_bytes: int | None
    duration_s: float | None


class CallRooms(Protocol):
    """What a spot-check needs of the media core (implemented in ``web``)."""

    async def open(self, officer: Principal, subject: SubjectLogin | None) -> str: ...

    async def snapshot(self, room_id: str, subject: SubjectLogin, actor: str) -> SnapshotFile: ...

    async def close(self, room_id: str, actor: str) -> list[RecordingFile]: ...


@dataclass(frozen=True, slots=True)
class SpotCheckPolicy:
    ring_s: int
    retry_s: tuple[int, ...]
    challenge_s: int
    gestures: tuple[str, ...]
    tz: ZoneInfo

    @staticmethod
    def parse_retry(spec: str) -> tuple[int, ...]:
        out = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            value = int(part)
            if value < 1:
                raise ValueError("spotcheck_retry_s: each pause must be at least 1 second")
            out.append(value)
        return tuple(out)
