"""A subject's track: ``GET /api/v1/subjects/{id}/track?hours=`` — location fixes, check-ins
with coordinates and spot-check answer locations of the last hours, oldest first.

One read for the map of a subject's detail panel (and the officer's spot-check view): the
fixes drawn as a line, check-ins and answers marked. Fixes are kept
``location_retention_h`` hours and check-ins ``checkin_retention_days`` days, so a longer
window shows what is still kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy import select

from alerts.models import Checkin, LocationFix
from alerts.spotcheck_models import SpotCheck
from center.authz import Action
from center.models import Subject
from center.scope import visible_or_404
from web import keys
from web.api_directory import SubjectPath
from web.contract import contract
from web.policy import SESSION, policy, principal_of

_MAX_POINTS = 5000


class TrackQuery(msgspec.Struct):
    hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 31)] = 72


class FixOut(msgspec.Struct):
    at: datetime
    lat: float
    lon: float
    accuracy_m: float | None
    device: str


class MarkOut(msgspec.Struct):
    at: datetime
    lat: float
    lon: float
    kind: str
    """``checkin`` (with its source) or ``spotcheck`` (with the spot-check's id and state)."""
    ref: str


class TrackOut(msgspec.Struct):
    subject_id: str
    since: datetime
    home: list[float] | None
    fixes: list[FixOut]
    marks: list[MarkOut]
    truncated: bool


@policy(Action.SUBJECTS_READ, auth=(SESSION,))
@contract(
    "A subject's recent track",
    path=SubjectPath,
    query=TrackQuery,
    response=TrackOut,
    errors=(404,),
    description=f"Location fixes (at most {_MAX_POINTS}, the newest), check-ins with "
    "coordinates and spot-check answer locations since `hours` ago, oldest first.",
)
async def track(request: web.Request, *, path: SubjectPath, query: TrackQuery) -> TrackOut:
    since = request.app[keys.CLOCK].now() - timedelta(hours=query.hours)
    async with request.app[keys.SESSIONMAKER]() as session:
        subject = await session.get(Subject, path.subject_id)
        visible_or_404(
            principal_of(request),
            request.app[keys.TREE],
            Action.SUBJECTS_READ,
            subject.street_id if subject else None,
            "subject",
        )
        assert subject is not None
        fixes = list(
            await session.scalars(
                select(LocationFix)
                .where(LocationFix.subject_id == subject.id, LocationFix.at >= since)
                .order_by(LocationFix.at.desc())
                .limit(_MAX_POINTS + 1)
            )
        )
        checkins = list(
            await session.scalars(
                select(Checkin).where(
                    Checkin.subject_id == subject.id,
                    Checkin.at >= since,
                    Checkin.lat.is_not(None),
                    Checkin.lon.is_not(None),
                )
            )
        )
        answers = list(
            await session.scalars(
                select(SpotCheck).where(
                    SpotCheck.subject_id == subject.id,
                    SpotCheck.created_at >= since,
                    SpotCheck.answer_lat.is_not(None),
                )
            )
        )
    marks = [
        MarkOut(c.at, float(c.lat or 0), float(c.lon or 0), "checkin", c.source) for c in checkins
    ] + [
        MarkOut(
            s.answered_at or s.created_at,
            float(s.answer_lat or 0),
            float(s.answer_lon or 0),
            "spotcheck",
            f"{s.id}:{s.state}",
        )
        for s in answers
    ]
    marks.sort(key=lambda m: m.at)
    kept = fixes[:_MAX_POINTS]
    return TrackOut(
        subject_id=subject.id,
        since=since,
        home=[subject.home_lat, subject.home_lon]
        if subject.home_lat is not None and subject.home_lon is not None
        else None,
        fixes=[FixOut(f.at, f.lat, f.lon, f.accuracy_m, f.device) for f in reversed(kept)],
        marks=marks,
        truncated=len(fixes) > _MAX_POINTS,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/subjects/{subject_id}/track", track)
