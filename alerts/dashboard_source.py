"""The live dashboard's view of the alarm tables, for rebuilding it from the database.

``center.dashboard`` may not import ``alerts``; the web layer hands :func:`load` to it as an
``AlarmLoader``. The alarm JSON is the one serializer's (:func:`alerts.serialize.alarm_json`,
what the bus carries), so a rebuilt record and a live ``alarm.updated`` for the same version
are the same record.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.models import ALARMS, OPEN_STATES, Checkin
from alerts.serialize import alarm_json
from alerts.spotcheck_models import SpotCheck
from alerts.stats import checkin_stats_today
from center.dashboard.books import CheckinBook
from center.dashboard.source import AlarmBaseline
from center.jurisdictions import JurisdictionTree
from center.models import Subject

_LOGGER = logging.getLogger(__name__)


def local_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


async def load(
    session: AsyncSession, tree: JurisdictionTree, tz: ZoneInfo, now: datetime
) -> AlarmBaseline:
    midnight = local_midnight(now, tz)
    since = min(midnight, now - timedelta(hours=24))
    subjects = Subject.__table__
    rows = await session.execute(
        select(ALARMS, subjects.c.name.label("subject_name"))
        .select_from(ALARMS.outerjoin(subjects, subjects.c.id == ALARMS.c.subject_id))
        .where(or_(ALARMS.c.state.in_(list(OPEN_STATES)), ALARMS.c.first_seen >= since))
    )
    alarms = [alarm_json(found) for found in rows.mappings()]
    done_rows = await session.execute(
        select(Checkin.subject_id, Checkin.window_start, subjects.c.street_id)
        .select_from(Checkin.__table__.join(subjects, subjects.c.id == Checkin.subject_id))
        .where(
            and_(
                Checkin.at >= midnight,
                Checkin.window_start.is_not(None),
                Checkin.late.is_(False),
            )
        )
    )
    done = []
    for subject_id, window_start, street_id in done_rows.all():
        key = CheckinBook.key(subject_id, window_start)
        if key is not None:
            done.append((str(street_id), key))
    sc_rows = await session.execute(
        select(SpotCheck.id, SpotCheck.state, SpotCheck.street_id, SpotCheck.district_id).where(
            or_(SpotCheck.open_key.is_not(None), SpotCheck.created_at >= midnight)
        )
    )
    spotchecks = [
        {"id": i, "state": state, "street_id": street, "district_id": district}
        for i, state, street, district in sc_rows.all()
    ]
    return AlarmBaseline(
        alarms=alarms,
        expected=await _expected(session, tree, tz, now),
        done=done,
        spotchecks=spotchecks,
    )


async def _expected(
    session: AsyncSession, tree: JurisdictionTree, tz: ZoneInfo, now: datetime
) -> dict[str, dict[str, int]] | None:
    """Check-in windows due today per district, from the alarm engine's statistics."""
    stats: dict[str, dict[str, int]] = await checkin_stats_today(session, tree, tz, now)
    return {d: {"expected": int(row.get("expected", 0))} for d, row in stats.items()}
