"""The deadline watcher: raises ``no_checkin`` when a window closes unsatisfied.

Subjects share plans, so the heap holds one entry per plan — ``(deadline, plan)`` for the
plan's next closing window — and the subjects of a plan are found by scanning the compact
plan-index array of :class:`~alerts.directory.SubjectDirectory`. That is the per-subject
deadline heap with the duplicates folded: 100,000 subjects on three plans cost three heap
entries and one array scan per closing minute, not 100,000 heap operations.

Per subject, ingestion records in memory the start of the last window it satisfied. At a
deadline the subjects whose flag is older than the window are only *candidates*: one query
per closing batch re-checks them against the ``checkins`` table, because another instance
may have taken their check-in. Alarms for one deadline are inserted in one transaction with
``ON CONFLICT (dedup_key) DO NOTHING RETURNING``; only rows this instance inserted are
published, so two watchers on one database raise each alarm once.

On start the heap is rebuilt from the plans and the shared ``watcher_marks`` row: windows
that closed after the mark (at most ``alarm_catchup_h`` back) are due at once, which
evaluates every window that closed while the server was down. Their in-memory flags are
unknown, so every subject of the plan is a candidate and the database decides.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.directory import SubjectDirectory
from alerts.models import AlarmKind, Checkin, WatcherMark
from alerts.plans import PlanBook, Window
from alerts.raising import AlarmRaiser, alarm_row, dialect_insert
from center.clock import Clock
from center.topics import Event

_LOGGER = logging.getLogger(__name__)
MARK_NAME = "no_checkin"
_IN_CHUNK = 1000
_RANGE_SCAN_MIN = 25_000  # more candidates than this: one range scan beats IN lists
_RETRY_S = 5.0
_IDLE_S = 3600.0


def no_checkin_key(subject_id: str, window_start: float) -> str:
    return f"no_checkin:{subject_id}:{datetime.fromtimestamp(window_start, UTC).isoformat()}"


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class DeadlineWatcher:
    def __init__(
        self,
        *,
        clock: Clock,
        sessionmaker: async_sessionmaker[AsyncSession],
        directory: SubjectDirectory,
        plans: PlanBook,
        raiser: AlarmRaiser,
        catchup_s: float,
    ) -> None:
        self._clock = clock
        self._sessionmaker = sessionmaker
        self._directory = directory
        self._plans = plans
        self._raiser = raiser
        self._catchup_s = catchup_s
        self._heap: list[tuple[float, int, float, float]] = []
        self._tracking_since = 0.0
        self._idle_until = 0.0  # while asleep: nothing is due before this
        self._progress = asyncio.Condition()
        self.processed_until: datetime | None = None
        self.last_batch_alarms = 0
        self.batches = 0
        self._replanned = asyncio.Event()

    def __repr__(self) -> str:
        return f"<DeadlineWatcher {len(self._heap)} plans, processed {self.processed_until}>"

    # -- state --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the heap from the shared mark (first start ever: from now)."""
        now = self._clock.now().timestamp()
        async with self._sessionmaker() as session:
            mark = await session.get(WatcherMark, MARK_NAME)
            if mark is None:
                await self._save_mark(session, now)
                await session.commit()
        start_from = now if mark is None else mark.processed_until.timestamp()
        start_from = max(start_from, now - self._catchup_s)
        self._tracking_since = now
        self._heap = []
        for idx, plan in enumerate(self._plans.plans):
            w = plan.next_window_closing_after(start_from)
            heapq.heappush(self._heap, (w.deadline, idx, w.start, w.end))
        if self._heap and self._heap[0][0] <= now:
            _LOGGER.info(
                "deadline watcher: catching up on windows closed since %s", _dt(start_from)
            )

    def note_checkin(self, subject_index: int, window_start: float) -> None:
        """Ingestion: this subject's window starting at ``window_start`` is satisfied."""
        sat = self._directory.satisfied
        if sat[subject_index] < window_start:
            sat[subject_index] = window_start

    def replan(self, plan_indexes: set[int]) -> None:
        """These plans' windows changed (a live plan edit): drop their pending deadlines and
        track each from its next window closing after now — the window open now, under the
        new plan, included — then wake the loop so an earlier deadline is not slept past."""
        if not plan_indexes:
            return
        now = self._clock.now().timestamp()
        self._heap = [e for e in self._heap if e[1] not in plan_indexes]
        known = {e[1] for e in self._heap}
        for idx in sorted(plan_indexes | (set(range(len(self._plans.plans))) - known)):
            w = self._plans.plans[idx].next_window_closing_after(now)
            self._heap.append((w.deadline, idx, w.start, w.end))
        heapq.heapify(self._heap)
        self._replanned.set()

    def next_deadline_of(self, plan_idx: int) -> datetime | None:
        found = [e[0] for e in self._heap if e[1] == plan_idx]
        return _dt(min(found)) if found else None

    def next_deadline(self) -> datetime | None:
        return _dt(self._heap[0][0]) if self._heap else None

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            now = self._clock.now()
            now_ts = now.timestamp()
            while self._heap and self._heap[0][0] <= now_ts:
                deadline = self._heap[0][0]
                batch = []
                while self._heap and self._heap[0][0] == deadline:
                    batch.append(heapq.heappop(self._heap))
                try:
                    await self.process(deadline, batch)
                except Exception:
                    _LOGGER.exception(
                        "deadline watcher: evaluating the deadline %s failed; retrying in %s s",
                        _dt(deadline),
                        _RETRY_S,
                    )
                    for entry in batch:
                        heapq.heappush(self._heap, entry)
                    await self._clock.sleep(_RETRY_S)
                    break
                for _, plan_idx, _, _ in batch:
                    w = self._plans.plans[plan_idx].next_window_closing_after(deadline)
                    heapq.heappush(self._heap, (w.deadline, plan_idx, w.start, w.end))
            else:
                wake = min(self._heap[0][0] if self._heap else now_ts + _IDLE_S, now_ts + _IDLE_S)
                async with self._progress:
                    self.processed_until = now
                    self._idle_until = wake
                    self._progress.notify_all()
                try:
                    await self._sleep_until(wake)
                finally:
                    self._idle_until = 0.0

    async def _sleep_until(self, wake: float) -> None:
        """Until ``wake`` or a :meth:`replan`, whichever comes first."""
        self._replanned.clear()
        sleeper = asyncio.ensure_future(self._clock.sleep_until(_dt(wake)))
        woken = asyncio.ensure_future(self._replanned.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (sleeper, woken):
                f.cancel()
            await asyncio.gather(sleeper, woken, return_exceptions=True)

    async def wait_processed(self, when: datetime) -> None:
        """Wait until every deadline up to ``when`` has been evaluated (tests, benchmarks):
        either the loop has run at or after ``when``, or it sleeps until a later deadline."""
        async with self._progress:
            await self._progress.wait_for(
                lambda: (
                    (self.processed_until is not None and self.processed_until >= when)
                    or when.timestamp() < self._idle_until
                )
            )

    # -- one closing batch ----------------------------------------------------------------------

    def _candidates(self, batch: Sequence[tuple[float, int, float, float]]) -> list[int]:
        d = self._directory
        starts: dict[int, float] = {}
        untracked: set[int] = set()
        for _, plan_idx, start, _ in batch:
            starts[plan_idx] = start
            if start < self._tracking_since:
                untracked.add(plan_idx)
        plan, sat, active = d.plan, d.satisfied, d.active
        if len(starts) == 1:
            ((p, ws),) = starts.items()
            if p in untracked:
                return [i for i in range(len(d)) if plan[i] == p and active[i]]
            return [i for i in range(len(d)) if plan[i] == p and sat[i] < ws and active[i]]
        out = []
        for i in range(len(d)):
            p = plan[i]
            opened = starts.get(p)
            if opened is None or not active[i]:
                continue
            if p in untracked or sat[i] < opened:
                out.append(i)
        return out

    async def _found_checkins(
        self, session: AsyncSession, ids: Sequence[str], start: float, until: float
    ) -> dict[str, tuple[str, float]]:
        """Earliest check-in per subject in ``[start, until)``: ``id -> (event_id, at)``."""
        found: dict[str, tuple[str, float]] = {}

        def take(rows: Iterable[Any]) -> None:
            for sid, event_id, at in rows:
                ts = at.timestamp()
                prev = found.get(sid)
                if prev is None or ts < prev[1]:
                    found[sid] = (event_id, ts)

        cols = (Checkin.subject_id, Checkin.event_id, Checkin.at)
        window = (Checkin.at >= _dt(start), Checkin.at < _dt(until))
        if len(ids) >= _RANGE_SCAN_MIN:
            wanted = set(ids)
            rows = (await session.execute(select(*cols).where(*window))).all()
            take(r for r in rows if r[0] in wanted)
            return found
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            take(
                (
                    await session.execute(
                        select(*cols).where(Checkin.subject_id.in_(chunk), *window)
                    )
                ).all()
            )
        return found

    async def process(
        self, deadline: float, batch: Sequence[tuple[float, int, float, float]]
    ) -> int:
        """Evaluate every window in ``batch`` (all closing at ``deadline``); returns the number of
        alarms this instance inserted."""
        d = self._directory
        lateness = self._plans.lateness_s
        now = self._clock.now()
        candidates = self._candidates(batch)
        plan_window = {p: Window(s, e, deadline) for _, p, s, e in batch}
        rows: list[dict[str, Any]] = []
        async with self._sessionmaker() as session:
            by_plan: dict[int, list[str]] = {}
            for i in candidates:
                by_plan.setdefault(d.plan[i], []).append(d.ids[i])
            found: dict[str, tuple[str, float]] = {}
            for p, ids in by_plan.items():
                w = plan_window[p]
                found.update(await self._found_checkins(session, ids, w.start, deadline + lateness))
            sev = self._raiser.severity
            sup = self._raiser.suppressions
            for i in candidates:
                sid = d.ids[i]
                w = plan_window[d.plan[i]]
                hit = found.get(sid)
                if hit is not None and hit[1] < deadline:
                    self.note_checkin(i, w.start)
                    continue
                kind = AlarmKind.NO_CHECKIN if hit is None else AlarmKind.LATE_CHECKIN
                info = d.info(i)
                rows.append(
                    alarm_row(
                        kind=str(kind),
                        subject=info,
                        at=_dt(deadline),
                        severity=sev.severity(kind, info.level),
                        suppressed=sup.active_for(sid, AlarmKind.NO_CHECKIN, deadline) is not None,
                        dedup_key=no_checkin_key(sid, w.start),
                        open_key=None,
                        details={
                            "plan": self._plans.plans[d.plan[i]].id,
                            "deadline": _dt(deadline).isoformat(),
                            **({"checkin_at": _dt(hit[1]).isoformat()} if hit else {}),
                        },
                        window_start=_dt(w.start),
                        window_end=_dt(w.end),
                        checkin_event_id=hit[0] if hit else None,
                        now=now,
                    )
                )
            inserted = await self._raiser.insert_once(session, rows)
            await self._save_mark(session, deadline)
            await session.commit()
        await self._raiser.publish([(Event.ALARM_RAISED, r) for r in inserted])
        self.last_batch_alarms = len(inserted)
        self.batches += 1
        if inserted:
            _LOGGER.info(
                "deadline %s: %s of %s candidates missed their window; %s alarms raised here",
                _dt(deadline),
                len(rows),
                len(candidates),
                len(inserted),
            )
        await self._sweep_late(inserted, deadline, lateness)
        return len(inserted)

    async def _sweep_late(
        self, inserted: Sequence[dict[str, Any]], deadline: float, lateness: float
    ) -> None:
        """Attach check-ins that committed while the batch was being written.

        Ingestion marks an alarm late only if the alarm exists when it looks; a check-in that
        committed between our re-check and our commit is picked up here instead.
        """
        pending = [r for r in inserted if r["kind"] == AlarmKind.NO_CHECKIN]
        if not pending:
            return
        by_start: dict[float, list[str]] = {}
        for r in pending:
            by_start.setdefault(r["window_start"].timestamp(), []).append(r["subject_id"])
        levels = {r["subject_id"]: r["level"] for r in pending}
        marks = []
        async with self._sessionmaker() as session:
            for start, ids in by_start.items():
                found = await self._found_checkins(session, ids, start, deadline + lateness)
                for sid, (event_id, at) in found.items():
                    marks.append((no_checkin_key(sid, start), event_id, levels[sid], _dt(at)))
            if not marks:
                return
            changed = await self._raiser.mark_late(session, marks, self._clock.now())
            await session.commit()
        await self._raiser.publish([(Event.ALARM_UPDATED, r) for r in changed])

    async def _save_mark(self, session: AsyncSession, ts: float) -> None:
        ins = dialect_insert(session, WatcherMark.__table__)  # type: ignore[arg-type]
        await session.execute(
            ins.values(name=MARK_NAME, processed_until=_dt(ts)).on_conflict_do_update(
                index_elements=["name"],
                set_={"processed_until": ins.excluded.processed_until},
                where=WatcherMark.__table__.c.processed_until < ins.excluded.processed_until,
            )
        )
