"""The one serialised form of a visit, used by the API and (later) the ``visits`` topic."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from center.visits.models import (
    Inmate,
    ItemType,
    Relative,
    Visit,
    VisitItem,
    VisitNotice,
    VisitParty,
)


class ItemOut(msgspec.Struct):
    id: int
    at: datetime
    type: str
    actor: str
    data: dict[str, Any]


class PartyOut(msgspec.Struct):
    relative_id: int
    name: str
    relationship: str
    joined_at: datetime | None
    photo_url: str | None = None
    """The photo on file (visit staff only), to compare with the live face before admitting."""


class NoticeOut(msgspec.Struct):
    """One notice to a relative through the gateway and how its delivery went."""

    id: int
    kind: str
    """``approved``, ``refused``, ``cancelled`` or ``reminder``."""
    relative_id: int
    state: str
    """``pending``, ``sent``, ``failed``, ``skipped`` (no gateway) or ``cancelled``."""
    delivery: str
    """The ``X-Center-Delivery`` id, the same on every try."""
    due_at: datetime
    attempts: int
    last_status: int | None
    last_error: str
    sent_at: datetime | None


class JoinCodeOut(msgspec.Struct):
    """Shown once, in the answer to the approval that made it (only its hash is kept)."""

    relative_id: int
    join_code: str
    join_url: str


class SideQuality(msgspec.Struct):
    """Each side's median quality grade over the call (``excellent``, ``good``, ``poor``,
    ``lost``; center/visits/quality.py); null until the visit ended with a graded call."""

    relatives: str | None = None
    inmate: str | None = None


class VisitOut(msgspec.Struct):
    id: int
    state: str
    outcome: str | None
    prison_id: str
    inmate_id: str
    inmate_name: str
    visit_point_id: str | None
    terminal_id: str
    starts_at: datetime
    ends_at: datetime
    minutes: int
    """Its length, its prison's rule when booked: once live it ends at ``live_at`` + this."""
    privileged: bool
    emergency: bool
    booked_by: str
    approved_by: str
    second_approved_by: str
    approvals_needed: int
    """Approvals still missing before the visit is ``approved`` (an emergency needs two)."""
    reason: str
    room_id: str
    live_at: datetime | None
    ended_at: datetime | None
    version: int
    relatives: list[PartyOut]
    items: list[ItemOut]
    """What happened, in order: waiting, admitted, warnings, texts, mutes, the end, recordings,
    each side's quality."""
    join_codes: list[JoinCodeOut] | None = None
    quality: SideQuality = msgspec.field(default_factory=SideQuality)
    notices: list[NoticeOut] = msgspec.field(default_factory=list)
    """The notices to the relatives (approved, refused, cancelled, reminder) and their delivery."""


class VisitQualityOut(msgspec.Struct):
    """Each side's grade for the monitor's grid: while the call runs, the latest uplink
    grade (the worst across a side's participants); after it, the record's medians."""

    visit_id: int
    state: str
    final: bool
    """True: the record's medians of the ended call; False: the latest grades now."""
    relatives: str | None
    inmate: str | None


class VisitPage(msgspec.Struct):
    items: list[VisitOut]
    total: int


class JoinOut(msgspec.Struct):
    """The guest session a join code buys: for this one visit, until it ends."""

    visit_id: int
    relative_id: int
    guest_token: str
    state: str
    starts_at: datetime
    ends_at: datetime
    room_id: str


def booked_minutes(visit: Visit) -> int:
    """The length the visit was booked for (the slot), whatever the rules are now."""
    return max(1, round((visit.ends_at - visit.starts_at).total_seconds() / 60))


def approvals_needed(visit: Visit) -> int:
    if visit.state != "requested":
        return 0
    needed = 2 if visit.emergency else 1
    return needed - (1 if visit.approved_by else 0)


def visit_out(
    visit: Visit,
    inmate: Inmate | None,
    parties: list[tuple[VisitParty, Relative]],
    items: list[VisitItem],
    join_codes: list[JoinCodeOut] | None = None,
    notices: list[VisitNotice] | None = None,
) -> VisitOut:
    shown = [
        ItemOut(id=i.id, at=i.at, type=i.type, actor=i.actor, data=json.loads(i.data))
        for i in items
    ]
    graded = [i.data for i in shown if i.type == ItemType.QUALITY]
    quality = (
        SideQuality(relatives=graded[-1].get("relatives"), inmate=graded[-1].get("inmate"))
        if graded
        else SideQuality()
    )
    return VisitOut(
        id=visit.id,
        state=visit.state,
        outcome=visit.outcome,
        prison_id=visit.prison_id,
        inmate_id=visit.inmate_id,
        inmate_name=inmate.name if inmate else "",
        visit_point_id=visit.visit_point_id,
        terminal_id=visit.terminal_id,
        starts_at=visit.starts_at,
        ends_at=visit.ends_at,
        minutes=booked_minutes(visit),
        privileged=visit.privileged,
        emergency=visit.emergency,
        booked_by=visit.booked_by,
        approved_by=visit.approved_by,
        second_approved_by=visit.second_approved_by,
        approvals_needed=approvals_needed(visit),
        reason=visit.reason,
        room_id=visit.room_id,
        live_at=visit.live_at,
        ended_at=visit.ended_at,
        version=visit.version,
        relatives=[
            PartyOut(
                relative_id=rel.id,
                name=rel.name,
                relationship=rel.relationship,
                joined_at=party.used_at,
                photo_url=f"/api/v1/visits/relatives/{rel.id}/photo" if rel.photo_path else None,
            )
            for party, rel in parties
        ],
        items=shown,
        join_codes=join_codes,
        quality=quality,
        notices=[notice_out(n) for n in notices or ()],
    )


def notice_out(n: VisitNotice) -> NoticeOut:
    return NoticeOut(
        id=n.id,
        kind=n.kind,
        relative_id=n.relative_id,
        state=n.state,
        delivery=f"visit-{n.visit_id}-{n.kind}-{n.relative_id}",
        due_at=n.due_at,
        attempts=n.attempts,
        last_status=n.last_status,
        last_error=n.last_error,
        sent_at=n.sent_at,
    )


def bus_data(out: VisitOut) -> dict[str, Any]:
    """The ``visit.state`` event: the summary without names (walls listen too)."""
    return {
        "id": out.id,
        "state": out.state,
        "outcome": out.outcome,
        "prison_id": out.prison_id,
        "visit_point_id": out.visit_point_id,
        "starts_at": out.starts_at.isoformat(),
        "ends_at": out.ends_at.isoformat(),
        "privileged": out.privileged,
        "room_id": out.room_id,
        "live_at": out.live_at.isoformat() if out.live_at else None,
    }
