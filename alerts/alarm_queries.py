"""The alarm read queries: the list, the detail and the console queue, scoped once.

Handlers in ``web.api_alarms`` / ``web.api_workflow`` decode a query model declared here,
call one function and return its model. Jurisdiction is :func:`center.scope.within` (a
district/street filter outside the caller's subtree is 404 ``not_found``, like one that
names no place) and :func:`center.scope.visible_or_404` for one alarm. Items are
:class:`alerts.serialize.AlarmOut`, the bus's shape, so a console merges live events into
what it fetched.

Suppressed alarms are on record, not in the queue: the list shows them only when asked for
(``state=suppressed`` or ``suppressed=true``); the queue never does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Final

import msgspec
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.evidence import EvidenceStore
from alerts.models import ALARMS, Alarm, AlarmEvent, AlarmKind, AlarmState, Checkin, LocationFix
from alerts.models import Severity as Severity
from alerts.serialize import AlarmOut, IsoTime, TimelineEntry, alarm_out, columns, timeline_entry
from alerts.transitions import Level
from alerts.workflow import Workflow, with_actor_names
from center.alarm_vocab import AWAITING_CLOSE, OPEN_STATES, QUEUE_STATES, SEVERITY_RANK
from center.authz import Action, Principal
from center.jurisdictions import JurisdictionTree
from center.models import Subject
from center.scope import ScopeColumns, visible_or_404, within
from center.text import PLAIN

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500
MAX_QUEUE_PAGE: Final = 2000
MAX_OFFSET: Final = 10_000_000
DETAIL_CHECKIN_DAYS: Final = 14
DETAIL_CHECKINS: Final = 100
DETAIL_FIXES: Final = 200
DETAIL_FIX_HOURS: Final = 24

JurisdictionId = Annotated[str, PLAIN, msgspec.Meta(max_length=32)]
SubjectId = Annotated[str, PLAIN, msgspec.Meta(max_length=64)]
_SCOPE = ScopeColumns(district=ALARMS.c.district_id, street=ALARMS.c.street_id)


# -- the list ---------------------------------------------------------------------------------


class AlarmListQuery(msgspec.Struct, kw_only=True):
    """``GET /api/v1/alarms``; enumerated filters take comma-separated values."""

    state: list[AlarmState] = []
    kind: list[AlarmKind] = []
    severity: list[Severity] = []
    district: JurisdictionId | None = None
    street: JurisdictionId | None = None
    subject: SubjectId | None = None
    suppressed: bool | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE


class AlarmPage(msgspec.Struct):
    items: list[AlarmOut]
    total: int
    page: int
    page_size: int


async def list_alarms(
    session: AsyncSession, tree: JurisdictionTree, principal: Principal, q: AlarmListQuery
) -> AlarmPage:
    """The caller's alarms, newest first."""
    c = ALARMS.c
    conds = within(
        principal, tree, Action.ALARMS_READ, _SCOPE, district=q.district, street=q.street
    )
    if q.state:
        conds.append(c.state.in_([str(s) for s in q.state]))
    if q.kind:
        conds.append(c.kind.in_([str(k) for k in q.kind]))
    if q.severity:
        conds.append(c.severity.in_([str(s) for s in q.severity]))
    if q.subject:
        conds.append(c.subject_id == q.subject)
    suppressed = q.suppressed
    if suppressed is None and AlarmState.SUPPRESSED not in q.state:
        suppressed = False
    if suppressed is not None:
        conds.append(c.suppressed.is_(suppressed))
    total = await session.scalar(select(func.count()).select_from(ALARMS).where(*conds))
    rows = await session.execute(
        _with_names()
        .where(*conds)
        .order_by(c.id.desc())
        .offset((q.page - 1) * q.page_size)
        .limit(q.page_size)
    )
    return AlarmPage(
        items=[alarm_out(r) for r in rows.mappings()],
        total=total or 0,
        page=q.page,
        page_size=q.page_size,
    )


def _with_names() -> Any:
    subjects = Subject.__table__
    return select(ALARMS, subjects.c.name.label("subject_name")).select_from(
        ALARMS.outerjoin(subjects, subjects.c.id == ALARMS.c.subject_id)
    )


# -- the detail -------------------------------------------------------------------------------


class CheckinOut(msgspec.Struct, kw_only=True):
    event_id: str
    at: IsoTime
    source: str
    lat: float | None
    lon: float | None
    late: bool
    on_leave: bool
    window_start: IsoTime | None


class LocationOut(msgspec.Struct, kw_only=True):
    at: IsoTime
    device: str
    lat: float
    lon: float
    accuracy_m: float
    in_city: bool


class AlarmDetail(AlarmOut, kw_only=True):
    """``GET /api/v1/alarms/{id}``: the alarm, its timeline (``events``, also as
    ``timeline``), check-ins of the last 14 days and fixes of the last 24 hours."""

    events: list[TimelineEntry] = msgspec.field(default_factory=list)
    timeline: list[TimelineEntry] = msgspec.field(default_factory=list)
    checkins: list[CheckinOut] = msgspec.field(default_factory=list)
    locations: list[LocationOut] = msgspec.field(default_factory=list)


async def alarm_detail(
    session: AsyncSession,
    tree: JurisdictionTree,
    principal: Principal,
    alarm_id: int,
    now: datetime,
) -> AlarmDetail:
    found = (
        await session.execute(
            select(Alarm, Subject.name)
            .outerjoin(Subject, Subject.id == Alarm.subject_id)
            .where(Alarm.id == alarm_id)
        )
    ).one_or_none()
    visible_or_404(
        principal, tree, Action.ALARMS_READ, found[0].street_id if found else None, "alarm"
    )
    assert found is not None
    alarm, name = found
    events = await session.scalars(
        select(AlarmEvent).where(AlarmEvent.alarm_id == alarm_id).order_by(AlarmEvent.id)
    )
    checkins = await session.scalars(
        select(Checkin)
        .where(
            Checkin.subject_id == alarm.subject_id,
            Checkin.at >= now - timedelta(days=DETAIL_CHECKIN_DAYS),
        )
        .order_by(Checkin.at.desc())
        .limit(DETAIL_CHECKINS)
    )
    fixes = await session.scalars(
        select(LocationFix)
        .where(
            LocationFix.subject_id == alarm.subject_id,
            LocationFix.at >= now - timedelta(hours=DETAIL_FIX_HOURS),
        )
        .order_by(LocationFix.at.desc())
        .limit(DETAIL_FIXES)
    )
    timeline = await with_actor_names(session, [timeline_entry(e) for e in events])
    base = alarm_out(columns(alarm), name or "")
    return AlarmDetail(
        **msgspec.structs.asdict(base),
        events=timeline,
        timeline=timeline,
        checkins=[
            CheckinOut(
                event_id=ck.event_id,
                at=ck.at.isoformat(),
                source=ck.source,
                lat=ck.lat,
                lon=ck.lon,
                late=ck.late,
                on_leave=ck.on_leave,
                window_start=ck.window_start.isoformat() if ck.window_start else None,
            )
            for ck in checkins
        ],
        locations=[
            LocationOut(
                at=f.at.isoformat(),
                device=f.device,
                lat=f.lat,
                lon=f.lon,
                accuracy_m=f.accuracy_m,
                in_city=f.in_city,
            )
            for f in fixes
        ],
    )


# -- the console queue ------------------------------------------------------------------------


class QueueQuery(msgspec.Struct, kw_only=True):
    """``GET /api/v1/alarms/queue``; ``state`` defaults to :data:`QUEUE_STATES` (the open
    ones and those awaiting close)."""

    state: list[AlarmState] = []
    kind: list[AlarmKind] = []
    level: list[Level] = []
    district: JurisdictionId | None = None
    street: JurisdictionId | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUEUE_PAGE)] = 500


class QueuePage(msgspec.Struct, kw_only=True):
    """``total`` counts what matched; ``open`` and ``awaiting_close`` split it the way the
    dashboard and the daily report do (a ``resolved`` alarm is disposed, not open)."""

    items: list[AlarmOut]
    total: int
    offset: int
    limit: int
    open: int = 0
    awaiting_close: int = 0


async def queue(
    session: AsyncSession, tree: JurisdictionTree, principal: Principal, q: QueueQuery
) -> QueuePage:
    """Alarms of the caller's scope that want work, most severe first, then oldest."""
    c = ALARMS.c
    states = [str(s) for s in (q.state or sorted(QUEUE_STATES))]
    conds = within(
        principal, tree, Action.ALARMS_READ, _SCOPE, district=q.district, street=q.street
    )
    conds += [c.state.in_(states), c.suppressed.is_(False)]
    if q.level:
        conds.append(c.owner_level.in_([str(x) for x in q.level]))
    if q.kind:
        conds.append(c.kind.in_([str(k) for k in q.kind]))
    counted = await session.execute(
        select(c.state, func.count()).select_from(ALARMS).where(*conds).group_by(c.state)
    )
    by_state: dict[str, int] = {str(s): int(n) for s, n in counted.tuples()}
    rank = case(SEVERITY_RANK, value=c.severity, else_=len(SEVERITY_RANK))
    rows = await session.execute(
        _with_names()
        .where(*conds)
        .order_by(rank, c.created_at, c.id)
        .offset(q.offset)
        .limit(q.limit)
    )
    return QueuePage(
        items=[alarm_out(r) for r in rows.mappings()],
        total=sum(by_state.values()),
        offset=q.offset,
        limit=q.limit,
        open=sum(n for s, n in by_state.items() if s in OPEN_STATES),
        awaiting_close=sum(n for s, n in by_state.items() if s in AWAITING_CLOSE),
    )


# -- the detail panel -------------------------------------------------------------------------


class AlarmWorkflowView(AlarmOut, kw_only=True):
    """``GET /api/v1/alarms/{id}/workflow``: the alarm with the caller's ``actions``, its
    timeline and its evidence (the console's detail panel in one request)."""

    timeline: list[TimelineEntry] = msgspec.field(default_factory=list)
    evidence: list[dict[str, Any]] = msgspec.field(default_factory=list)


async def workflow_view(
    workflow: Workflow, evidence: EvidenceStore, principal: Principal, alarm_id: int
) -> AlarmWorkflowView:
    alarm, timeline = await workflow.get(principal, alarm_id)
    return AlarmWorkflowView(
        **msgspec.structs.asdict(alarm), timeline=timeline, evidence=await evidence.list(alarm_id)
    )
