"""The one JSON form of a spot-check, for the API, the bus and the subject's page.

Staff get the whole record: attempts, challenges, snapshots (SHA-256 and a download URL),
recordings, the answer location with its distance from home, the result and every item of
its log. The subject gets what its phone needs to ring and answer — who is calling, the
room, the current challenge — and nothing an officer wrote.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import msgspec

from alerts.spotcheck_models import FINAL_STATES, ItemType, SpotCheck, SpotCheckItem

_EARTH_M = 6_371_008.8
_PRIVATE = frozenset({"path"})


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres; ample for 'how far from home'."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(a)))


class Point(msgspec.Struct):
    lat: float
    lon: float
    accuracy_m: float | None = None


class ItemOut(msgspec.Struct):
    id: int
    at: datetime
    type: str
    actor: str
    data: dict[str, Any]


class SpotCheckOut(msgspec.Struct, kw_only=True):
    id: int
    state: str
    subject_id: str
    subject_name: str
    level: str
    street_id: str
    district_id: str
    alarm_id: int | None
    room_id: str
    attempt: int
    officer: str
    started_by: str
    created_at: datetime
    updated_at: datetime
    ring_due_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    result: str | None
    reason: str | None
    note: str
    answer_location: Point | None
    home: Point | None
    distance_m: float | None
    missed_alarm_id: int | None
    raised_alarm_id: int | None
    version: int
    challenge: dict[str, Any] | None = None
    """The challenge on the subject's screen now (until its time limit), if any."""
    liveness: dict[str, Any] | None = None
    """The latest challenge's automatic verdict ``{"challenge_item", "liveness": {"challenge",
    "verdict", "evidence"}}``, if any (the officer still decides)."""
    attempts: list[ItemOut] = []
    challenges: list[ItemOut] = []
    snapshots: list[ItemOut] = []
    recordings: list[ItemOut] = []
    items: list[ItemOut] = []


class SpotCheckPage(msgspec.Struct):
    items: list[SpotCheckOut]
    total: int


def item_data(item: SpotCheckItem) -> dict[str, Any]:
    try:
        data = json.loads(item.data or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k not in _PRIVATE}


def item_out(item: SpotCheckItem) -> ItemOut:
    return ItemOut(item.id, item.at, item.type, item.actor, item_data(item))


def current_challenge(items: list[SpotCheckItem], now: datetime) -> dict[str, Any] | None:
    for item in reversed(items):
        if item.type == ItemType.CHALLENGE:
            data = item_data(item)
            expires = data.get("expires_at")
            if isinstance(expires, str) and datetime.fromisoformat(expires) > now:
                return data
            return None
    return None


def spotcheck_out(
    sc: SpotCheck,
    *,
    subject_name: str,
    home: tuple[float | None, float | None],
    items: list[SpotCheckItem] | None = None,
    now: datetime | None = None,
) -> SpotCheckOut:
    answer = (
        Point(sc.answer_lat, sc.answer_lon, sc.answer_accuracy_m)
        if sc.answer_lat is not None and sc.answer_lon is not None
        else None
    )
    home_lat, home_lon = home
    out = SpotCheckOut(
        id=sc.id,
        state=sc.state,
        subject_id=sc.subject_id,
        subject_name=subject_name,
        level=sc.level,
        street_id=sc.street_id,
        district_id=sc.district_id,
        alarm_id=sc.alarm_id,
        room_id=sc.room_id,
        attempt=sc.attempt,
        officer=sc.officer_name,
        started_by=sc.started_by,
        created_at=sc.created_at,
        updated_at=sc.updated_at,
        ring_due_at=sc.ring_due_at,
        answered_at=sc.answered_at,
        ended_at=sc.ended_at,
        result=sc.state if sc.state in FINAL_STATES else None,
        reason=sc.reason,
        note=sc.note,
        answer_location=answer,
        home=Point(home_lat, home_lon) if home_lat is not None and home_lon is not None else None,
        distance_m=sc.distance_m,
        missed_alarm_id=sc.missed_alarm_id,
        raised_alarm_id=sc.raised_alarm_id,
        version=sc.version,
    )
    if items is not None:
        outs = [item_out(i) for i in items]
        out.items = outs
        out.attempts = [o for o in outs if o.type == ItemType.ATTEMPT]
        out.challenges = [o for o in outs if o.type == ItemType.CHALLENGE]
        out.snapshots = [o for o in outs if o.type == ItemType.SNAPSHOT]
        out.recordings = [o for o in outs if o.type == ItemType.RECORDING]
        verdicts = [o for o in outs if o.type == ItemType.LIVENESS]
        out.liveness = verdicts[-1].data if verdicts else None
        if now is not None and sc.state not in FINAL_STATES:
            out.challenge = current_challenge(items, now)
    return out


def for_subject(out: SpotCheckOut) -> SpotCheckOut:
    """What the supervised person's own page sees of a spot-check."""
    return msgspec.structs.replace(
        out,
        note="",
        reason=None,
        liveness=None,
        started_by="",
        home=None,
        distance_m=None,
        attempts=[],
        challenges=[],
        snapshots=[],
        recordings=[],
        items=[],
    )


def bus_data(out: SpotCheckOut) -> dict[str, Any]:
    """The ``spotchecks`` bus event: the summary (no item lists), JSON-ready."""
    data: dict[str, Any] = msgspec.to_builtins(
        msgspec.structs.replace(
            out, attempts=[], challenges=[], snapshots=[], recordings=[], items=[]
        )
    )
    for key in ("attempts", "challenges", "snapshots", "recordings", "items"):
        data.pop(key, None)
    liveness = data.get("liveness")
    if isinstance(liveness, dict) and isinstance(liveness.get("liveness"), dict):
        # the verdict only: the evidence (series, files) is read from the record
        verdict = liveness["liveness"]
        data["liveness"] = {
            "challenge_item": liveness.get("challenge_item"),
            "liveness": {"challenge": verdict.get("challenge"), "verdict": verdict.get("verdict")},
        }
    return data
