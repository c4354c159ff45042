"""Video spot-checks (视频点验): start, ring, answer, challenge, snapshot, result.

The record is the database's (:mod:`alerts.spotcheck_models`); the call is the media core's,
reached through the :class:`CallRooms` port the composition root hands in (``alerts`` never
imports ``media``). Rules the officers rely on:

* **Scope as everywhere**: a subject (and an alarm) outside the officer's subtree is 404.
* **No answer is decided once.** The ring timeout is a durable timer (``spotcheck.ring``,
  one per attempt): the row moves with ``UPDATE … WHERE version``, and the
  ``spotcheck_missed`` alarm's dedup key is the spot-check's id, so a restart in the middle
  of the ring, or two instances, end it ``unreachable`` with exactly one alarm. A decline
  takes the same path at once. Before that alarm, the retry ladder (``spotcheck_retry_s``)
  rings again after each pause (``waiting`` in between), each attempt on the record.
* **A person decides the result.** ``failed`` needs a reason; it may raise one alarm
  (``face_mismatch`` or another kind) in the same step, and that alarm runs through the duty
  workflow, where an officer confirms or excuses it. Nothing here sanctions anybody.
* **Evidence lands on the alarm** the spot-check was launched from: the start, every
  challenge, snapshot (as alarm evidence, with its SHA-256), recording and the result are on
  its timeline and in the audit chain.

Bus events (``spotchecks`` topic) go out after each commit: ``spotcheck.state`` (the
summary) and ``spotcheck.challenge`` (the challenge the subject's page shows).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.alarm_log import dumps, record_alarm_event
from alerts.directory import SubjectInfo
from alerts.evidence import EvidenceStore
from alerts.raising import AlarmRaiser, Fire
from alerts.spotcheck_liveness import VERDICT_ACTOR, automatic_check, undecided
from alerts.spotcheck_models import (
    FINAL_STATES,
    OPEN_STATES,
    FailReason,
    ItemType,
    SpotCheck,
    SpotCheckItem,
    SpotCheckState,
)
from alerts.spotcheck_ports import (
    CallRooms,
    SpotCheckPolicy,
    SubjectLogin,
)
from alerts.spotcheck_view import (
    SpotCheckOut,
    SpotCheckPage,
    bus_data,
    distance_m,
    for_subject,
    item_data,
    spotcheck_out,
)
from alerts.workflow import Workflow
from alerts.workflow_schema import EvidenceKind
from center import audit
from center.alarm_vocab import AlarmKind
from center.authz import Action, Principal, authorize
from center.bus import Bus
from center.clock import Clock
from center.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from center.jurisdictions import JurisdictionTree
from center.models import Role, Subject, User
from center.scope import ScopeColumns, visible_or_404, within
from center.timers import AfterCommit, FiredTimer, TimerService
from center.topics import Topic

_LOGGER = logging.getLogger(__name__)

RING: Final = "spotcheck.ring"
RETRY: Final = "spotcheck.retry"
EVENT_STATE: Final = "spotcheck.state"
EVENT_CHALLENGE: Final = "spotcheck.challenge"
SYSTEM_ACTOR: Final = "system:spotcheck"
_SCOPE = ScopeColumns(district=SpotCheck.district_id, street=SpotCheck.street_id)
RESULT_ALARM_KINDS: Final = frozenset(
    {AlarmKind.FACE_MISMATCH, AlarmKind.OUT_OF_BOUNDS, AlarmKind.SEPARATION}
)


Hook = Callable[[AsyncSession, SpotCheck], Awaitable[None]]
FaceCheckHook = Callable[..., Awaitable[dict[str, Any]]]
LivenessProbe = Callable[..., Awaitable[dict[str, Any]]]
"""``probe(room_id, login, challenge, spotcheck_id=, item_id=)`` samples the subject's video
for the challenge window and returns ``{"challenge", "verdict", "evidence"}``."""
Spawn = Callable[[str, Coroutine[Any, Any, Any]], Any]


def _invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {problem}", details={"field": field, "fields": {field: problem}}
    )


class SpotCheckService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        clock: Clock,
        timers: TimerService,
        tree: JurisdictionTree,
        workflow: Workflow,
        raiser: AlarmRaiser,
        evidence: EvidenceStore,
        rooms: CallRooms,
        policy: SpotCheckPolicy,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._clock = clock
        self._timers = timers
        self._tree = tree
        self._workflow = workflow
        self._raiser = raiser
        self._evidence = evidence
        self.rooms = rooms
        self.policy = policy
        self.on_ringing: list[Hook] = []
        """Called in the transaction that (re)starts a ring (the webhook schedules here)."""
        self.face_check: FaceCheckHook | None = None
        """Compares each snapshot with the subject's face baseline (set by faces_ctx)."""
        self.liveness_probe: LivenessProbe | None = None
        self.spawn: Spawn | None = None
        """Judges head-turn and blink challenges from the live video (set by faces_ctx)."""
        timers.register(RING, self._on_ring_due)
        timers.register(RETRY, self._on_retry_due)
        self.missed = 0

    def __repr__(self) -> str:
        return f"<SpotCheckService ring={self.policy.ring_s}s retries={len(self.policy.retry_s)}>"

    # -- reading --------------------------------------------------------------------------

    async def _subject(self, session: AsyncSession, subject_id: str) -> Subject | None:
        return await session.get(Subject, subject_id)

    async def _out(
        self, session: AsyncSession, sc: SpotCheck, *, full: bool = True
    ) -> SpotCheckOut:
        subject = await self._subject(session, sc.subject_id)
        items = None
        if full:
            items = list(
                await session.scalars(
                    select(SpotCheckItem)
                    .where(SpotCheckItem.spotcheck_id == sc.id)
                    .order_by(SpotCheckItem.id)
                )
            )
        return spotcheck_out(
            sc,
            subject_name=subject.name if subject else "",
            home=(subject.home_lat, subject.home_lon) if subject else (None, None),
            items=items,
            now=self._clock.now(),
        )

    def _visible(self, principal: Principal, sc: SpotCheck, action: Action) -> bool:
        if principal.role == Role.SUBJECT:
            return authorize(principal, action, grant=f"subject:{sc.subject_id}")
        return sc.street_id in self._tree and authorize(
            principal, action, self._tree.path(sc.street_id)
        )

    async def _load(
        self, session: AsyncSession, principal: Principal, spotcheck_id: int, action: Action
    ) -> SpotCheck:
        sc = await session.get(SpotCheck, spotcheck_id)
        if sc is None or not self._visible(principal, sc, action):
            raise NotFound("no such spot-check in your jurisdiction")
        return sc

    async def get(self, principal: Principal, spotcheck_id: int) -> SpotCheckOut:
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_READ)
            out = await self._out(session, sc)
        return for_subject(out) if principal.role == Role.SUBJECT else out

    async def find(
        self,
        principal: Principal,
        *,
        state: SpotCheckState | None = None,
        subject_id: str | None = None,
        day: date | None = None,
        alarm_id: int | None = None,
        limit: int = 100,
    ) -> SpotCheckPage:
        conds: list[Any] = []
        if principal.role == Role.SUBJECT:
            own = [g.removeprefix("subject:") for g in principal.grants if g.startswith("subject:")]
            conds.append(SpotCheck.subject_id.in_(own))
        else:
            conds.extend(within(principal, self._tree, Action.SPOTCHECKS_READ, _SCOPE))
        if state is not None:
            conds.append(SpotCheck.state == str(state))
        if subject_id is not None:
            conds.append(SpotCheck.subject_id == subject_id)
        if alarm_id is not None:
            conds.append(SpotCheck.alarm_id == alarm_id)
        if day is not None:
            start = datetime(day.year, day.month, day.day, tzinfo=self.policy.tz)
            conds += [
                SpotCheck.created_at >= start,
                SpotCheck.created_at < start + timedelta(days=1),
            ]
        async with self._sessionmaker() as session:
            total = await session.scalar(select(func.count()).select_from(SpotCheck).where(*conds))
            rows = list(
                await session.scalars(
                    select(SpotCheck).where(*conds).order_by(SpotCheck.id.desc()).limit(limit)
                )
            )
            outs = [await self._out(session, sc, full=False) for sc in rows]
        if principal.role == Role.SUBJECT:
            outs = [for_subject(o) for o in outs]
        return SpotCheckPage(items=outs, total=int(total or 0))

    # -- writing helpers ------------------------------------------------------------------

    async def _item(
        self,
        session: AsyncSession,
        sc: SpotCheck,
        type_: ItemType,
        actor: str,
        data: dict[str, Any],
        *,
        at: datetime,
        timeline: str | None = None,
    ) -> SpotCheckItem:
        """Record an item, its audit entry and (launched from an alarm) its timeline event."""
        item = SpotCheckItem(
            spotcheck_id=sc.id, at=at, type=str(type_), actor=actor, data=dumps(data)
        )
        session.add(item)
        await session.flush()
        public = {k: v for k, v in data.items() if k != "path"}
        details = {"spotcheck_id": sc.id, "item": item.id, "type": str(type_), **public}
        if sc.alarm_id is not None and timeline is not None:
            await record_alarm_event(
                session,
                alarm_id=sc.alarm_id,
                at=at,
                type=timeline,
                actor=actor,
                data=details,
                audit_action=f"spotcheck.{type_}",
                audit_details=details,
            )
        else:
            await audit.record(
                session,
                actor=actor,
                action=f"spotcheck.{type_}",
                target_type="spotcheck",
                target_id=str(sc.id),
                details=details,
                at=at,
            )
        return item

    async def _move(
        self, session: AsyncSession, sc: SpotCheck, state: SpotCheckState, **values: Any
    ) -> None:
        """Versioned update; a concurrent change (a timeout racing an answer) is 409."""
        now = self._clock.now()
        if state in FINAL_STATES:
            values["open_key"] = None
        result = await session.execute(
            update(SpotCheck)
            .where(SpotCheck.id == sc.id, SpotCheck.version == sc.version)
            .values(state=str(state), version=sc.version + 1, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            raise Conflict("the spot-check changed meanwhile; reload it")
        await session.refresh(sc)

    def _publisher(self, out: SpotCheckOut, *extra: tuple[str, dict[str, Any]]) -> AfterCommit:
        async def publish() -> None:
            await self._bus.notify(Topic.SPOTCHECKS, EVENT_STATE, bus_data(out))
            for type_, data in extra:
                await self._bus.notify(Topic.SPOTCHECKS, type_, data)

        return publish

    async def _subject_login(self, session: AsyncSession, subject_id: str) -> SubjectLogin | None:
        user = await session.scalar(
            select(User).where(User.subject_id == subject_id, User.active.is_(True))
        )
        return SubjectLogin(f"user:{user.id}", user.username) if user is not None else None

    async def _ring(self, session: AsyncSession, sc: SpotCheck, now: datetime) -> None:
        """Start attempt ``sc.attempt``: its timeout timer, its item, the ringing hooks."""
        due = now + timedelta(seconds=self.policy.ring_s)
        await self._move(session, sc, SpotCheckState.RINGING, ring_due_at=due)
        await self._timers.schedule(
            session,
            kind=RING,
            key=f"spotcheck:{sc.id}:ring:{sc.attempt}",
            due_at=due,
            ref=f"spotcheck:{sc.id}",
            payload={"spotcheck_id": sc.id, "attempt": sc.attempt},
        )
        await self._item(
            session,
            sc,
            ItemType.ATTEMPT,
            SYSTEM_ACTOR,
            {"attempt": sc.attempt, "ring_until": due.isoformat()},
            at=now,
            timeline="spotcheck_ringing",
        )
        for hook in self.on_ringing:
            await hook(session, sc)

    # -- starting -------------------------------------------------------------------------

    async def start(
        self, principal: Principal, subject_id: str, alarm_id: int | None = None
    ) -> SpotCheckOut:
        now = self._clock.now()
        async with self._sessionmaker() as session:
            subject = await self._subject(session, subject_id)
            if subject is None or not subject.active:
                raise NotFound("no such subject in your jurisdiction")
            visible_or_404(
                principal, self._tree, Action.SPOTCHECKS_RUN, subject.street_id, "subject"
            )
            if alarm_id is not None:
                row = await self._workflow.row(session, alarm_id)
                if row is None or not self._workflow.visible(principal, row, Action.ALARMS_ACT):
                    raise NotFound("no such alarm in your jurisdiction")
                if row["subject_id"] != subject.id:
                    raise _invalid("alarm_id", "the alarm is about another subject")
            busy = await session.scalar(
                select(SpotCheck.id).where(
                    SpotCheck.subject_id == subject.id,
                    SpotCheck.state.in_([str(s) for s in OPEN_STATES]),
                )
            )
            if busy is not None:
                raise Conflict(
                    f"spot-check {busy} of this subject is still open", details={"id": busy}
                )
            login = await self._subject_login(session, subject.id)
        room_id = await self.rooms.open(principal, login)
        try:
            out = await self._insert(principal, subject, alarm_id, room_id, login, now)
        except BaseException:
            await self.rooms.close(room_id, principal.actor)
            raise
        _LOGGER.info("spot-check %s of %s started by %s", out.id, subject.id, principal.actor)
        await self._publisher(out)()
        return out

    async def _insert(
        self,
        principal: Principal,
        subject: Subject,
        alarm_id: int | None,
        room_id: str,
        login: SubjectLogin | None,
        now: datetime,
    ) -> SpotCheckOut:
        async with self._sessionmaker() as session:
            sc = SpotCheck(
                subject_id=subject.id,
                level=subject.level,
                street_id=subject.street_id,
                district_id=subject.district_id,
                alarm_id=alarm_id,
                room_id=room_id,
                state=str(SpotCheckState.RINGING),
                version=1,
                attempt=1,
                started_by=principal.actor,
                officer_name=principal.display_name or principal.name,
                created_at=now,
                updated_at=now,
                note="",
                open_key=subject.id,
            )
            session.add(sc)
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict("another spot-check of this subject has just started") from None
            await audit.record(
                session,
                actor=principal.actor,
                action="spotcheck.started",
                target_type="spotcheck",
                target_id=str(sc.id),
                details={"subject_id": subject.id, "alarm_id": alarm_id, "room_id": room_id},
                at=now,
            )
            if alarm_id is not None:
                await record_alarm_event(
                    session,
                    alarm_id=alarm_id,
                    at=now,
                    type="spotcheck_started",
                    actor=principal.actor,
                    data={"spotcheck_id": sc.id, "room_id": room_id},
                    audit_action="alarm.spotcheck",
                    audit_details={"spotcheck_id": sc.id},
                )
            await self._ring(session, sc, now)
            out = await self._out(session, sc)
            await session.commit()
        return out

    # -- the subject's side ---------------------------------------------------------------

    async def answer(
        self,
        principal: Principal,
        spotcheck_id: int,
        *,
        lat: float | None,
        lon: float | None,
        accuracy_m: float | None,
        location_error: str,
    ) -> SpotCheckOut:
        now = self._clock.now()
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_ANSWER)
            if sc.state != SpotCheckState.RINGING:
                raise InvalidTransition(
                    f"spot-check {sc.id} is {sc.state}, not ringing", details={"state": sc.state}
                )
            subject = await self._subject(session, sc.subject_id)
            values: dict[str, Any] = {"answered_at": now, "ring_due_at": None}
            location: dict[str, Any] = {}
            if lat is not None and lon is not None:
                values.update(answer_lat=lat, answer_lon=lon, answer_accuracy_m=accuracy_m)
                location = {"lat": lat, "lon": lon, "accuracy_m": accuracy_m}
                if (
                    subject is not None
                    and subject.home_lat is not None
                    and subject.home_lon is not None
                ):
                    d = round(distance_m(lat, lon, subject.home_lat, subject.home_lon), 1)
                    values["distance_m"] = d
                    location["distance_m"] = d
            else:
                location = {"error": location_error or "not shared"}
            await self._move(session, sc, SpotCheckState.LIVE, **values)
            await self._timers.cancel(session, ref=f"spotcheck:{sc.id}")
            await self._item(
                session,
                sc,
                ItemType.ANSWERED,
                principal.actor,
                {"attempt": sc.attempt},
                at=now,
                timeline="spotcheck_answered",
            )
            await self._item(
                session,
                sc,
                ItemType.LOCATION,
                principal.actor,
                location,
                at=now,
                timeline="spotcheck_location",
            )
            out = await self._out(session, sc)
            await session.commit()
        await self._publisher(out)()
        return for_subject(out)

    async def decline(self, principal: Principal, spotcheck_id: int) -> SpotCheckOut:
        """The subject refused the call: the same as no answer, at once."""
        now = self._clock.now()
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_ANSWER)
            if sc.state != SpotCheckState.RINGING:
                raise InvalidTransition(
                    f"spot-check {sc.id} is {sc.state}, not ringing", details={"state": sc.state}
                )
            await self._timers.cancel(session, ref=f"spotcheck:{sc.id}", kind=RING)
            after = await self._not_answered(session, sc, now, ItemType.DECLINED, principal.actor)
            out = await self._out(session, sc)
            await session.commit()
        await after()
        return for_subject(out)

    async def _not_answered(
        self, session: AsyncSession, sc: SpotCheck, now: datetime, why: ItemType, actor: str
    ) -> AfterCommit:
        """Declined or rang out: the next rung of the ladder, or ``unreachable`` + one alarm."""
        await self._item(
            session,
            sc,
            why,
            actor,
            {"attempt": sc.attempt},
            at=now,
            timeline=f"spotcheck_{why}",
        )
        if sc.attempt <= len(self.policy.retry_s):
            pause = self.policy.retry_s[sc.attempt - 1]
            due = now + timedelta(seconds=pause)
            await self._move(session, sc, SpotCheckState.WAITING, ring_due_at=None)
            await self._timers.schedule(
                session,
                kind=RETRY,
                key=f"spotcheck:{sc.id}:retry:{sc.attempt}",
                due_at=due,
                ref=f"spotcheck:{sc.id}",
                payload={"spotcheck_id": sc.id, "attempt": sc.attempt},
            )
            out = await self._out(session, sc)
            return self._publisher(out)
        await self._move(session, sc, SpotCheckState.UNREACHABLE, ring_due_at=None, ended_at=now)
        subject = await self._subject(session, sc.subject_id)
        alarm_rows = await self._raise(
            session,
            sc,
            AlarmKind.SPOTCHECK_MISSED,
            f"spotcheck_missed:{sc.id}",
            subject,
            now,
            {"spotcheck_id": sc.id, "attempts": sc.attempt, "last": str(why)},
        )
        if alarm_rows:
            await self._move(
                session, sc, SpotCheckState.UNREACHABLE, missed_alarm_id=alarm_rows[0]["id"]
            )
        self.missed += 1
        out = await self._out(session, sc)
        publish = self._publisher(out)

        async def after() -> None:
            await publish()
            await self._raiser.publish([("alarm.raised", r) for r in alarm_rows])
            await self._close_room(sc.id, out.room_id, SYSTEM_ACTOR)

        return after

    async def _raise(
        self,
        session: AsyncSession,
        sc: SpotCheck,
        kind: AlarmKind,
        dedup_key: str,
        subject: Subject | None,
        now: datetime,
        details: dict[str, Any],
    ) -> list[dict[str, Any]]:
        info = SubjectInfo(
            index=-1,
            id=sc.subject_id,
            name=subject.name if subject else "",
            level=sc.level,
            street_id=sc.street_id,
            district_id=sc.district_id,
        )
        row = self._raiser.build(Fire(str(kind), info, now, details, dedup_key=dedup_key), now)
        inserted = await self._raiser.insert_once(session, [row])
        for r in inserted:
            await self._item(
                session,
                sc,
                ItemType.ALARM,
                SYSTEM_ACTOR,
                {"alarm_id": r["id"], "kind": str(kind)},
                at=now,
            )
        return inserted

    # -- timers ---------------------------------------------------------------------------

    async def _timer_row(self, session: AsyncSession, timer: FiredTimer) -> SpotCheck | None:
        sc = await session.get(SpotCheck, int(timer.payload["spotcheck_id"]))
        if sc is None or sc.attempt != int(timer.payload["attempt"]):
            return None
        return sc

    async def _on_ring_due(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        sc = await self._timer_row(session, timer)
        if sc is None or sc.state != SpotCheckState.RINGING:
            return None
        _LOGGER.info("spot-check %s: no answer to attempt %s", sc.id, sc.attempt)
        return await self._not_answered(
            session, sc, timer.fired_at, ItemType.NO_ANSWER, SYSTEM_ACTOR
        )

    async def _on_retry_due(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        sc = await self._timer_row(session, timer)
        if sc is None or sc.state != SpotCheckState.WAITING:
            return None
        await session.execute(
            update(SpotCheck)
            .where(SpotCheck.id == sc.id, SpotCheck.version == sc.version)
            .values(attempt=sc.attempt + 1)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(sc)
        await self._ring(session, sc, timer.fired_at)
        return self._publisher(await self._out(session, sc))

    # -- the officer's side ---------------------------------------------------------------

    def _live(self, sc: SpotCheck, what: str) -> None:
        if sc.state != SpotCheckState.LIVE:
            raise InvalidTransition(
                f"{what} needs a live call; spot-check {sc.id} is {sc.state}",
                details={"state": sc.state},
            )

    def draw(self, kind: str | None) -> dict[str, Any]:
        """A challenge the subject cannot have prepared: four random digits, or a gesture."""
        if kind is None:
            kind = "digits" if secrets.randbelow(2) or not self.policy.gestures else "gesture"
        if kind == "digits":
            digits = "".join(str(secrets.randbelow(10)) for _ in range(4))
            return {
                "kind": "digits",
                "digits": digits,
                "prompt": f"请大声读出数字：{' '.join(digits)}",
            }
        if not self.policy.gestures:
            raise _invalid("kind", "no gestures are configured (spotcheck_gestures)")
        return {"kind": "gesture", "prompt": secrets.choice(self.policy.gestures)}

    async def challenge(
        self, principal: Principal, spotcheck_id: int, kind: str | None
    ) -> SpotCheckOut:
        now = self._clock.now()
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_RUN)
            self._live(sc, "a challenge")
            drawn = self.draw(kind)
            expires = now + timedelta(seconds=self.policy.challenge_s)
            data = {**drawn, "shown_at": now.isoformat(), "expires_at": expires.isoformat()}
            item = await self._item(
                session,
                sc,
                ItemType.CHALLENGE,
                principal.actor,
                data,
                at=now,
                timeline="spotcheck_challenge",
            )
            check, reason = automatic_check(drawn)
            probe, spawn = self.liveness_probe, self.spawn
            if check is None or probe is None or spawn is None:
                challenge = check or str(drawn["kind"])
                why = reason or "no automatic liveness check is configured"
                await self._liveness_item(session, sc, item.id, undecided(challenge, why), now)
            await self._move(session, sc, SpotCheckState.LIVE)
            out = await self._out(session, sc)
            await session.commit()
        if check is not None and probe is not None and spawn is not None:
            spawn(
                f"liveness-{sc.id}-{item.id}",
                self._judge_window(probe, sc.id, sc.room_id, item.id, check),
            )
        event = {
            "id": sc.id,
            "subject_id": sc.subject_id,
            "street_id": sc.street_id,
            "district_id": sc.district_id,
            "state": sc.state,
            "challenge": {"item": item.id, **data},
        }
        await self._publisher(out, (EVENT_CHALLENGE, event))()
        return out

    async def _liveness_item(
        self,
        session: AsyncSession,
        sc: SpotCheck,
        challenge_item: int,
        liveness: dict[str, Any],
        at: datetime,
    ) -> SpotCheckItem:
        data = {"challenge_item": challenge_item, "liveness": liveness}
        return await self._item(
            session,
            sc,
            ItemType.LIVENESS,
            VERDICT_ACTOR,
            data,
            at=at,
            timeline="spotcheck_liveness",
        )

    async def _judge_window(
        self, probe: LivenessProbe, spotcheck_id: int, room_id: str, item_id: int, check: str
    ) -> None:
        """Sample and judge one challenge window (a supervised task), then record the
        verdict; a failure of the media or the workers is recorded as ``undecided``."""
        async with self._sessionmaker() as session:
            sc = await session.get(SpotCheck, spotcheck_id)
            login = await self._subject_login(session, sc.subject_id) if sc else None
        try:
            if login is None:
                raise RuntimeError("the subject has no login that could be in the call")
            liveness = await probe(
                room_id, login, check, spotcheck_id=spotcheck_id, item_id=item_id
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _LOGGER.warning("liveness of spot-check %s failed: %r", spotcheck_id, exc)
            liveness = undecided(check, f"no video to judge: {exc}")
        async with self._sessionmaker() as session:
            sc = await session.get(SpotCheck, spotcheck_id)
            if sc is None:
                return
            await self._liveness_item(session, sc, item_id, liveness, self._clock.now())
            out = await self._out(session, sc)
            await session.commit()
        _LOGGER.info(
            "liveness of spot-check %s challenge %s: %s", spotcheck_id, item_id, liveness["verdict"]
        )
        await self._publisher(out)()

    async def snapshot(self, principal: Principal, spotcheck_id: int) -> SpotCheckOut:
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_RUN)
            self._live(sc, "a snapshot")
            login = await self._subject_login(session, sc.subject_id)
            items = list(
                await session.scalars(
                    select(SpotCheckItem)
                    .where(
                        SpotCheckItem.spotcheck_id == sc.id,
                        SpotCheckItem.type == ItemType.CHALLENGE,
                    )
                    .order_by(SpotCheckItem.id.desc())
                    .limit(1)
                )
            )
        if login is None:
            raise InvalidTransition("the subject has no login that could be in the call")
        shot = await self.rooms.snapshot(sc.room_id, login, principal.actor)
        now = self._clock.now()
        during: int | None = None
        if items:
            data = item_data(items[0])
            expires = data.get("expires_at")
            if isinstance(expires, str) and datetime.fromisoformat(expires) >= shot.taken_at:
                during = items[0].id
        evidence_id: int | None = None
        if sc.alarm_id is not None:
            stored = await self._evidence.store(_file_chunks(shot.path))
            ev = await self._evidence.record(
                principal.actor,
                sc.alarm_id,
                stored,
                f"spotcheck-{sc.id}-{shot.id}.jpg",
                f"视频点验 #{sc.id} 截图" + (f"（挑战 #{during}）" if during else ""),
                EvidenceKind.SNAPSHOT,
            )
            evidence_id = int(ev["id"])
        face = await self._face(sc, shot.id, shot.path)
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_RUN)
            data = {
                "face": face,
                "snapshot_id": shot.id,
                "sha256": shot.sha256,
                "width": shot.width,
                "height": shot.height,
                "taken_at": shot.taken_at.isoformat(),
                "challenge_item": during,
                "evidence_id": evidence_id,
                "path": str(shot.path),
            }
            item = await self._item(session, sc, ItemType.SNAPSHOT, principal.actor, data, at=now)
            item.data = dumps({**data, "url": f"/api/v1/spotchecks/{sc.id}/snapshots/{item.id}"})
            await self._move(session, sc, SpotCheckState.LIVE)
            out = await self._out(session, sc)
            await session.commit()
        await self._publisher(out)()
        return out

    async def _face(self, sc: SpotCheck, snapshot_id: str, path: Path) -> dict[str, Any] | None:
        """The snapshot's face outcome, or None (no face check configured, or it failed:
        the officer still sees the snapshot and judges it)."""
        if self.face_check is None:
            return None
        try:
            data = await asyncio.to_thread(path.read_bytes)
            return await self.face_check(
                sc.subject_id, data, path, spotcheck_id=sc.id, snapshot_id=snapshot_id
            )
        except Exception:
            _LOGGER.exception("face check of snapshot %s failed", snapshot_id)
            return None

    async def snapshot_file(
        self, principal: Principal, spotcheck_id: int, item_id: int
    ) -> tuple[Path, str]:
        """The JPEG of one snapshot item and its recorded SHA-256 (the caller re-checks)."""
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_READ)
            if principal.role == Role.SUBJECT:
                raise NotFound("no such snapshot")
            item = await session.get(SpotCheckItem, item_id)
        if item is None or item.spotcheck_id != sc.id or item.type != ItemType.SNAPSHOT:
            raise NotFound("no such snapshot")
        data = json.loads(item.data)
        return Path(data["path"]), str(data["sha256"])

    async def result(
        self,
        principal: Principal,
        spotcheck_id: int,
        *,
        result: SpotCheckState,
        reason: FailReason | None,
        note: str,
        alarm_kind: AlarmKind | None,
    ) -> SpotCheckOut:
        if result not in (SpotCheckState.PASSED, SpotCheckState.FAILED):
            raise _invalid("result", "passed or failed")
        if result is SpotCheckState.FAILED and reason is None:
            raise _invalid("reason", f"required for failed; one of: {', '.join(FailReason)}")
        if result is SpotCheckState.PASSED and (reason is not None or alarm_kind is not None):
            raise _invalid("reason", "a passed spot-check takes no reason and raises no alarm")
        if alarm_kind is not None and alarm_kind not in RESULT_ALARM_KINDS:
            raise _invalid("alarm_kind", f"one of: {', '.join(sorted(RESULT_ALARM_KINDS))}")
        now = self._clock.now()
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_RUN)
            self._live(sc, "a result")
            await self._move(
                session,
                sc,
                result,
                ended_at=now,
                reason=str(reason) if reason else None,
                note=note,
            )
            data: dict[str, Any] = {"result": str(result), "reason": reason, "note": note}
            rows: list[dict[str, Any]] = []
            if alarm_kind is not None:
                subject = await self._subject(session, sc.subject_id)
                rows = await self._raise(
                    session,
                    sc,
                    alarm_kind,
                    f"spotcheck_failed:{sc.id}",
                    subject,
                    now,
                    {"spotcheck_id": sc.id, "reason": str(reason), "note": note},
                )
                if rows:
                    data["alarm_id"] = rows[0]["id"]
                    await self._move(session, sc, result, raised_alarm_id=rows[0]["id"])
            await self._item(
                session,
                sc,
                ItemType.RESULT,
                principal.actor,
                data,
                at=now,
                timeline="spotcheck_result",
            )
            await session.commit()
        await self._raiser.publish([("alarm.raised", r) for r in rows])
        await self._close_room(sc.id, sc.room_id, principal.actor)
        return await self._final(principal, sc.id)

    async def cancel(self, principal: Principal, spotcheck_id: int, note: str) -> SpotCheckOut:
        now = self._clock.now()
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_RUN)
            if sc.state in FINAL_STATES:
                raise InvalidTransition(
                    f"spot-check {sc.id} is already {sc.state}", details={"state": sc.state}
                )
            await self._move(
                session, sc, SpotCheckState.CANCELLED, ended_at=now, ring_due_at=None, note=note
            )
            await self._timers.cancel(session, ref=f"spotcheck:{sc.id}")
            await self._item(
                session,
                sc,
                ItemType.CANCELLED,
                principal.actor,
                {"note": note},
                at=now,
                timeline="spotcheck_cancelled",
            )
            await session.commit()
        await self._close_room(sc.id, sc.room_id, principal.actor)
        return await self._final(principal, sc.id)

    async def _final(self, principal: Principal, spotcheck_id: int) -> SpotCheckOut:
        async with self._sessionmaker() as session:
            sc = await self._load(session, principal, spotcheck_id, Action.SPOTCHECKS_READ)
            out = await self._out(session, sc)
        await self._publisher(out)()
        return out

    async def _close_room(self, spotcheck_id: int, room_id: str, actor: str) -> None:
        """End the call and put its recordings on the record (and the alarm's timeline)."""
        try:
            recordings = await self.rooms.close(room_id, actor)
        except Exception:
            _LOGGER.exception("spot-check %s: closing room %s failed", spotcheck_id, room_id)
            return
        if not recordings:
            return
        now = self._clock.now()
        async with self._sessionmaker() as session:
            sc = await session.get(SpotCheck, spotcheck_id)
            if sc is None:
                return
            for r in recordings:
                await self._item(
                    session,
                    sc,
                    ItemType.RECORDING,
                    actor,
                    {
                        "recording_id": r.id,
                        "state": r.state,
                        "sha256": r.sha256,
                        "size_bytes": r.size_bytes,
                        "duration_s": r.duration_s,
                    },
                    at=now,
                    timeline="spotcheck_recording",
                )
            await session.commit()

    async def open_views(self, limit: int = 2000) -> list[SpotCheckOut]:
        """Every open spot-check (the websocket topic's snapshot; there are few at a time)."""
        async with self._sessionmaker() as session:
            rows = list(
                await session.scalars(
                    select(SpotCheck)
                    .where(SpotCheck.state.in_([str(s) for s in OPEN_STATES]))
                    .order_by(SpotCheck.id.desc())
                    .limit(limit)
                )
            )
            return [await self._out(session, sc) for sc in rows]


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    data = path.read_bytes()
    for i in range(0, len(data), 65536):
        yield data[i : i + 65536]
