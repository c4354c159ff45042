"""Validation of ingested items in plain Python (thousands per second; no schema library).

Each validator returns a frozen dataclass or raises :class:`ItemError`, which names the field
so the batch answer can say exactly what is wrong with one item while the others proceed.
Unknown fields are ignored, so integrations can send more than we read today.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from alerts.models import CheckinSource, DeviceEventKind, DeviceType
from center.errors import VALIDATION_FAILED

MAX_ID_LEN: Final = 128
MAX_SUBJECT_LEN: Final = 64
FUTURE_SKEW: Final = timedelta(minutes=5)
_SOURCES: Final = frozenset(str(s) for s in CheckinSource)
_EVENT_KINDS: Final = frozenset(str(k) for k in DeviceEventKind)
_DEVICES: Final = frozenset(str(d) for d in DeviceType)


class ItemError(Exception):
    def __init__(self, message: str, *, field: str | None = None, code: str = VALIDATION_FAILED):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["details"] = {"field": self.field}
        return out


@dataclass(frozen=True, slots=True)
class CheckinIn:
    event_id: str
    subject_id: str
    at: datetime
    source: str
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    face_verified: bool | None


@dataclass(frozen=True, slots=True)
class DeviceEventIn:
    event_id: str
    subject_id: str
    device_id: str
    kind: str
    at: datetime
    battery_pct: float | None


@dataclass(frozen=True, slots=True)
class LocationFixIn:
    event_id: str
    subject_id: str
    device: str
    device_id: str
    at: datetime
    lat: float
    lon: float
    accuracy_m: float


def _obj(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ItemError("each item must be a JSON object")
    return item


def _str(item: dict[str, Any], name: str, max_len: int, *, required: bool = True) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ItemError(f"'{name}' must be a non-empty string", field=name)
    if len(value) > max_len or not value.isprintable():
        raise ItemError(f"'{name}' must be at most {max_len} printable characters", field=name)
    return value


def _num(item: dict[str, Any], name: str, lo: float, hi: float, *, required: bool) -> float | None:
    value = item.get(name)
    if value is None:
        if required:
            raise ItemError(f"'{name}' is required", field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ItemError(f"'{name}' must be a number", field=name)
    if not lo <= value <= hi:
        raise ItemError(f"'{name}' must be between {lo:g} and {hi:g}", field=name)
    return float(value)


def _time(item: dict[str, Any], name: str, now: datetime, oldest: datetime) -> datetime:
    value = item.get(name)
    if not isinstance(value, str):
        raise ItemError(f"'{name}' must be an ISO 8601 time with an offset", field=name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ItemError(
            f"'{name}' must be an ISO 8601 time with an offset, e.g. 2026-11-25T09:00:00+08:00",
            field=name,
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ItemError(f"'{name}' needs a UTC offset (e.g. +08:00 or Z)", field=name)
    try:
        if parsed > now + FUTURE_SKEW:
            raise ItemError(f"'{name}' is in the future", field=name)
        if parsed < oldest:
            raise ItemError(f"'{name}' is older than the retention period", field=name)
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ItemError(f"'{name}' is out of range", field=name) from None


def _lat_lon(item: dict[str, Any], *, required: bool) -> tuple[float | None, float | None]:
    lat = _num(item, "lat", -90, 90, required=required)
    lon = _num(item, "lon", -180, 180, required=required)
    if (lat is None) != (lon is None):
        raise ItemError("'lat' and 'lon' go together", field="lat" if lat is None else "lon")
    return lat, lon


def checkin(item: Any, now: datetime, oldest: datetime) -> CheckinIn:
    obj = _obj(item)
    event_id = _str(obj, "event_id", MAX_ID_LEN)
    subject_id = _str(obj, "subject_id", MAX_SUBJECT_LEN)
    at = _time(obj, "at", now, oldest)
    source = obj.get("source")
    if source not in _SOURCES:
        raise ItemError(f"'source' must be one of {', '.join(sorted(_SOURCES))}", field="source")
    lat, lon = _lat_lon(obj, required=False)
    accuracy = _num(obj, "accuracy_m", 0, 1_000_000, required=False)
    face = obj.get("face_verified")
    if face is not None and not isinstance(face, bool):
        raise ItemError("'face_verified' must be true or false", field="face_verified")
    return CheckinIn(event_id, subject_id, at, str(source), lat, lon, accuracy, face)


def device_event(item: Any, now: datetime, oldest: datetime) -> DeviceEventIn:
    obj = _obj(item)
    event_id = _str(obj, "event_id", MAX_ID_LEN)
    subject_id = _str(obj, "subject_id", MAX_SUBJECT_LEN)
    device_id = _str(obj, "device_id", 64)
    kind = obj.get("kind")
    if kind not in _EVENT_KINDS:
        raise ItemError(f"'kind' must be one of {', '.join(sorted(_EVENT_KINDS))}", field="kind")
    at = _time(obj, "at", now, oldest)
    battery = _num(obj, "battery_pct", 0, 100, required=False)
    return DeviceEventIn(event_id, subject_id, device_id, str(kind), at, battery)


def location_fix(item: Any, now: datetime, oldest: datetime) -> LocationFixIn:
    obj = _obj(item)
    event_id = _str(obj, "event_id", MAX_ID_LEN)
    subject_id = _str(obj, "subject_id", MAX_SUBJECT_LEN)
    device = obj.get("device")
    if device not in _DEVICES:
        raise ItemError(f"'device' must be one of {', '.join(sorted(_DEVICES))}", field="device")
    device_id = _str(obj, "device_id", 64, required=False) or str(device)
    at = _time(obj, "at", now, oldest)
    lat, lon = _lat_lon(obj, required=True)
    accuracy = _num(obj, "accuracy_m", 0, 1_000_000, required=True)
    assert lat is not None and lon is not None and accuracy is not None
    return LocationFixIn(event_id, subject_id, str(device), device_id, at, lat, lon, accuracy)
