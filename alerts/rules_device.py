"""Device rules: tamper, low battery, SOS, offline — reported or inferred from silence.

A device is known by ``(subject, device_id)``; location fixes without a ``device_id`` count
for the device named by their ``device`` field. The last time each device was heard from is
rebuilt from the retained device events and fixes on start, so a restart does not forget a
device that has gone silent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.items import DeviceEventIn
from alerts.models import AlarmKind, DeviceEvent, DeviceEventKind, LocationFix
from alerts.rules_location import Transition

_EVENT_ALARM = {
    DeviceEventKind.TAMPER: AlarmKind.TAMPER,
    DeviceEventKind.LOW_BATTERY: AlarmKind.LOW_BATTERY,
    DeviceEventKind.SOS: AlarmKind.SOS,
    DeviceEventKind.OFFLINE: AlarmKind.DEVICE_OFFLINE,
}

DeviceKey = tuple[str, str]


class DeviceRules:
    def __init__(self, *, offline_after_s: float) -> None:
        self._offline_after = offline_after_s
        self._last_seen: dict[DeviceKey, float] = {}
        self._offline: set[DeviceKey] = set()

    def __len__(self) -> int:
        return len(self._last_seen)

    def heard(self, subject_id: str, device_id: str, ts: float) -> Transition | None:
        """A fix or an event arrived from the device; clears an inferred/reported offline."""
        key = (subject_id, device_id)
        if ts > self._last_seen.get(key, 0.0):
            self._last_seen[key] = ts
        if key in self._offline:
            self._offline.discard(key)
            return Transition(AlarmKind.DEVICE_OFFLINE, False, ts, {"device_id": device_id})
        return None

    def observe(self, ev: DeviceEventIn) -> list[Transition]:
        ts = ev.at.timestamp()
        key = (ev.subject_id, ev.device_id)
        out: list[Transition] = []
        if ev.kind == DeviceEventKind.ONLINE:
            cleared = self.heard(ev.subject_id, ev.device_id, ts)
            if cleared is not None:
                out.append(cleared)
            return out
        if ev.kind == DeviceEventKind.OFFLINE:
            self._last_seen[key] = max(self._last_seen.get(key, 0.0), ts)
            if key in self._offline:
                return out
            self._offline.add(key)
        else:
            cleared = self.heard(ev.subject_id, ev.device_id, ts)
            if cleared is not None:
                out.append(cleared)
        details: dict[str, object] = {"device_id": ev.device_id, "event_id": ev.event_id}
        if ev.battery_pct is not None:
            details["battery_pct"] = ev.battery_pct
        out.append(Transition(_EVENT_ALARM[DeviceEventKind(ev.kind)], True, ts, details))
        return out

    def silent(self, now_ts: float) -> list[tuple[str, str, float]]:
        """Devices newly silent for longer than the limit: ``(subject, device, last_seen)``."""
        limit = now_ts - self._offline_after
        out = []
        for key, seen in self._last_seen.items():
            if seen < limit and key not in self._offline:
                self._offline.add(key)
                out.append((key[0], key[1], seen))
        return out

    async def load(self, session: AsyncSession, since: datetime) -> None:
        """Rebuild last-heard times from the retained events and fixes."""
        for stmt in (
            select(DeviceEvent.subject_id, DeviceEvent.device_id, func.max(DeviceEvent.at))
            .where(DeviceEvent.at >= since)
            .group_by(DeviceEvent.subject_id, DeviceEvent.device_id),
            select(LocationFix.subject_id, LocationFix.device_id, func.max(LocationFix.at))
            .where(LocationFix.at >= since)
            .group_by(LocationFix.subject_id, LocationFix.device_id),
        ):
            for subject_id, device_id, at in (await session.execute(stmt)).all():
                if at is None:
                    continue
                ts = at.timestamp() if isinstance(at, datetime) else _parse(at)
                key = (subject_id, device_id)
                self._last_seen[key] = max(self._last_seen.get(key, 0.0), ts)


def _parse(raw: object) -> float:
    """SQLite returns ``max()`` of a timestamp column as text, bypassing the column type."""
    from datetime import UTC

    value = datetime.fromisoformat(str(raw))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
