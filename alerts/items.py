"""The ingested items — check-ins, device events, location fixes — as declared models.

Each is a msgspec ``Struct``: the HTTP layer decodes and validates an item in one C pass
(``web.contract.Batch``), and the OpenAPI document is generated from the same class, so the
rules below are written once. Unknown fields are ignored: integrations send more than we
read today. What depends on the clock (not in the future, not older than the retention
period) cannot be a static rule; :func:`time_problem` checks it in the ingestor.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

import msgspec

from alerts.models import CheckinSource, DeviceEventKind, DeviceType

MAX_ID_LEN: Final = 128
MAX_SUBJECT_LEN: Final = 64
MAX_DEVICE_LEN: Final = 64
MAX_ACCURACY_M: Final = 1_000_000.0
FUTURE_SKEW: Final = timedelta(minutes=5)
MAX_PHOTO_B64: Final = 4 * 1024 * 1024 * 4 // 3 + 4

# Printable text with at least one non-space character: no control characters (NUL, line
# breaks), no C1 controls, no Unicode line separators.
_CTRL = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029"
TEXT_PATTERN: Final = f"^[^{_CTRL}]*[^\\s{_CTRL}][^{_CTRL}]*$"

EventId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_ID_LEN,
        pattern=TEXT_PATTERN,
        description="Idempotency key, unique per item; a repeat is answered `duplicate`.",
    ),
]
SubjectId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_SUBJECT_LEN, pattern=TEXT_PATTERN)
]
DeviceId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_DEVICE_LEN, pattern=TEXT_PATTERN)
]
At = Annotated[
    datetime,
    msgspec.Meta(tz=True, description="When it happened: RFC 3339 with a UTC offset."),
]
Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Accuracy = Annotated[float, msgspec.Meta(ge=0, le=MAX_ACCURACY_M, description="Metres.")]
BatteryPct = Annotated[float, msgspec.Meta(ge=0, le=100)]


def _utc(at: datetime) -> datetime:
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError("'at' is out of range") from None


class CheckinIn(msgspec.Struct):
    """One check-in; ``lat`` and ``lon`` go together."""

    event_id: EventId
    subject_id: SubjectId
    at: At
    source: CheckinSource
    lat: Lat | None = None
    lon: Lon | None = None
    accuracy_m: Accuracy | None = None
    face_verified: bool | None = None
    photo_jpeg_b64: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=MAX_PHOTO_B64,
                pattern="^[A-Za-z0-9+/]*={0,2}$",
                description="The check-in photo, a base64 JPEG: compared with the subject's "
                "baseline (the result's `face`).",
            ),
        ]
        | None
    ) = None

    def photo(self) -> bytes | None:
        """The decoded photo (checked in ``__post_init__``)."""
        return base64.b64decode(self.photo_jpeg_b64) if self.photo_jpeg_b64 else None

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lon is None):
            missing = "lon" if self.lon is None else "lat"
            raise ValueError(f"'{missing}' is required with {'lat' if missing == 'lon' else 'lon'}")
        self.at = _utc(self.at)
        if self.photo_jpeg_b64 is not None:
            try:
                base64.b64decode(self.photo_jpeg_b64, validate=True)
            except ValueError:
                raise ValueError("'photo_jpeg_b64' is not base64") from None


class DeviceEventIn(msgspec.Struct):
    """Tamper, low battery, SOS, offline or back online, from a phone or a bracelet."""

    event_id: EventId
    subject_id: SubjectId
    device_id: DeviceId
    kind: DeviceEventKind
    at: At
    battery_pct: BatteryPct | None = None

    def __post_init__(self) -> None:
        self.at = _utc(self.at)


class LocationFixIn(msgspec.Struct):
    """A phone or bracelet fix; ``device_id`` defaults to the device type."""

    event_id: EventId
    subject_id: SubjectId
    device: DeviceType
    at: At
    lat: Lat
    lon: Lon
    accuracy_m: Accuracy
    device_id: DeviceId = ""

    def __post_init__(self) -> None:
        self.at = _utc(self.at)
        if not self.device_id:
            self.device_id = str(self.device)


def time_problem(at: datetime, now: datetime, oldest: datetime) -> str | None:
    """What is wrong with ``at`` given the clock, or ``None``."""
    if at > now + FUTURE_SKEW:
        return "is in the future"
    if at < oldest:
        return "is older than the retention period"
    return None
