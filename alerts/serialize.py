"""The alarm's API JSON: one function for ``GET /api/v1/alarms``, its detail and the bus.

The live layer receives exactly what the read API returns, so a console can merge bus events
into a list it fetched without translating between shapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from alerts.models import Alarm

ALARM_COLUMNS: tuple[str, ...] = tuple(c.name for c in Alarm.__table__.columns)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def alarm_json(row: Mapping[str, Any], subject_name: str) -> dict[str, Any]:
    """``row`` maps column names to values (an ORM object via :func:`columns`)."""
    details = row.get("details") or "{}"
    try:
        parsed = json.loads(details) if isinstance(details, str) else dict(details)
    except ValueError:
        parsed = {}
    return {
        "id": row["id"],
        "kind": row["kind"],
        "severity": row["severity"],
        "state": row["state"],
        "suppressed": bool(row["suppressed"]),
        "subject_id": row["subject_id"],
        "subject_name": subject_name,
        "level": row["level"],
        "street_id": row["street_id"],
        "district_id": row["district_id"],
        "version": row["version"],
        "count": row["count"],
        "first_seen": _iso(row["first_seen"]),
        "last_seen": _iso(row["last_seen"]),
        "window_start": _iso(row.get("window_start")),
        "window_end": _iso(row.get("window_end")),
        "checkin_event_id": row.get("checkin_event_id"),
        "details": parsed,
        "created_at": _iso(row.get("created_at")),
        "updated_at": _iso(row.get("updated_at")),
        "closed_at": _iso(row.get("closed_at")),
    }


def columns(alarm: Alarm) -> dict[str, Any]:
    return {name: getattr(alarm, name) for name in ALARM_COLUMNS}
