"""Check-in plans (签到计划) and their windows (签到时段).

A plan is a set of windows that repeat every *period* (a day, a week, or — for the demo — a
few seconds), written in local time: ``"daily 08:00-10:00; daily 18:00-20:00"``,
``"mon 08:00-20:00"``, ``"every 90s open 60s"``. A window is satisfied by a check-in from its
start up to its *deadline* (end + grace); a check-in up to ``lateness`` after the deadline is
*late*. Windows are computed in local wall time and converted to UTC, so a plan means the same
local hours all year.

Hot paths (ingestion and the watcher) work on POSIX seconds: each plan caches the windows of
the cycles it has computed, so finding the window of a check-in costs one time-zone
conversion and a dict lookup.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from config.settings import Settings

DAY = 86_400
WEEK = 7 * DAY
# Local-time origin of every cycle: a Monday at midnight, so weekly plans start on Mondays.
_ANCHOR = datetime(2024, 1, 1)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_EVERY = re.compile(r"^every\s+(\d+)s\s+open\s+(\d+)s$")
_CACHE_CYCLES = 64


class PlanError(ValueError):
    """A plan specification cannot be parsed or its windows overlap."""


@dataclass(frozen=True, slots=True)
class Window:
    """One occurrence of a window, in POSIX seconds (UTC)."""

    start: float
    end: float
    deadline: float

    @property
    def start_dt(self) -> datetime:
        return datetime.fromtimestamp(self.start, UTC)

    @property
    def end_dt(self) -> datetime:
        return datetime.fromtimestamp(self.end, UTC)

    @property
    def deadline_dt(self) -> datetime:
        return datetime.fromtimestamp(self.deadline, UTC)


def _minutes(h: str, m: str, spec: str) -> int:
    hh, mm = int(h), int(m)
    if mm > 59 or hh > 24 or (hh == 24 and mm):
        raise PlanError(f"bad time {h}:{m} in plan {spec!r}")
    return hh * 60 + mm


def parse_spec(spec: str) -> tuple[int, tuple[tuple[int, int], ...]]:
    """``(period_s, ((start_offset_s, end_offset_s), ...))`` sorted by start."""
    parts = [p.strip().lower() for p in spec.split(";") if p.strip()]
    if not parts:
        raise PlanError("a check-in plan needs at least one window")
    every = [_EVERY.match(p) for p in parts]
    if any(every):
        if len(parts) != 1 or every[0] is None:
            raise PlanError(f"'every' cannot be combined with other windows in {spec!r}")
        period, open_s = int(every[0].group(1)), int(every[0].group(2))
        if not 0 < open_s <= period:
            raise PlanError(f"'open' must be between 1 and the period in {spec!r}")
        return period, ((0, open_s),)
    daily_only = all(p.split(None, 1)[0] == "daily" for p in parts)
    period = DAY if daily_only else WEEK
    windows: list[tuple[int, int]] = []
    for part in parts:
        try:
            days_text, range_text = part.split(None, 1)
        except ValueError:
            raise PlanError(f"window {part!r} must look like 'daily 08:00-10:00'") from None
        m = _RANGE.match(range_text.strip())
        if m is None:
            raise PlanError(f"window {part!r} must look like 'mon 08:00-20:00'")
        start = _minutes(m.group(1), m.group(2), spec) * 60
        end = _minutes(m.group(3), m.group(4), spec) * 60
        if end <= start:
            raise PlanError(f"window {part!r} ends before it starts")
        if days_text == "daily":
            days = list(range(1 if period == DAY else 7))
        else:
            try:
                days = [_WEEKDAYS.index(d.strip()) for d in days_text.split(",")]
            except ValueError:
                raise PlanError(
                    f"unknown day in {part!r}; use daily or mon,tue,wed,thu,fri,sat,sun"
                ) from None
        windows.extend((d * DAY + start, d * DAY + end) for d in days)
    windows.sort()
    return period, tuple(windows)


class Plan:
    """A parsed plan with its grace period, bound to a time zone."""

    __slots__ = ("_cycles", "grace_s", "id", "period", "spec", "tz", "windows")

    def __init__(self, plan_id: str, spec: str, grace_s: int, tz: ZoneInfo) -> None:
        self.id = plan_id
        self.spec = spec
        self.grace_s = grace_s
        self.tz = tz
        self.period, self.windows = parse_spec(spec)
        for i, (_start, end) in enumerate(self.windows):
            nxt = (
                self.windows[i + 1][0]
                if i + 1 < len(self.windows)
                else self.windows[0][0] + self.period
            )
            if end + grace_s > nxt:
                raise PlanError(
                    f"plan {plan_id!r}: a window plus its grace ({grace_s} s) runs into the "
                    f"next window; shorten the window or the grace period"
                )
        self._cycles: dict[int, tuple[Window, ...]] = {}

    def __repr__(self) -> str:
        return f"<Plan {self.id} {self.spec!r} grace={self.grace_s}s>"

    # -- time conversion -------------------------------------------------------------------

    def _local_offset(self, ts: float) -> float:
        """Seconds since the local anchor for the instant ``ts``."""
        local = datetime.fromtimestamp(ts, self.tz).replace(tzinfo=None)
        return (local - _ANCHOR).total_seconds()

    def _to_ts(self, local_offset: float) -> float:
        return (_ANCHOR + timedelta(seconds=local_offset)).replace(tzinfo=self.tz).timestamp()

    def _cycle(self, n: int) -> tuple[Window, ...]:
        cached = self._cycles.get(n)
        if cached is not None:
            return cached
        base = n * self.period
        out = []
        for start, end in self.windows:
            s = self._to_ts(base + start)
            e = self._to_ts(base + end)
            out.append(Window(s, e, e + self.grace_s))
        result = tuple(out)
        if len(self._cycles) >= _CACHE_CYCLES:
            self._cycles.clear()
        self._cycles[n] = result
        return result

    def _cycle_of(self, ts: float) -> int:
        return math.floor(self._local_offset(ts) / self.period)

    # -- queries ----------------------------------------------------------------------------

    def windows_closing(self, after: float, until: float) -> Iterator[Window]:
        """Windows whose deadline is in ``(after, until]``, oldest first."""
        n = self._cycle_of(after) - 1
        while True:
            cycle = self._cycle(n)
            for w in cycle:
                if after < w.deadline <= until:
                    yield w
            if cycle[0].start > until:
                return
            n += 1

    def next_window_closing_after(self, ts: float) -> Window:
        n = self._cycle_of(ts) - 1
        while True:
            for w in self._cycle(n):
                if w.deadline > ts:
                    return w
            n += 1

    def window_for(self, at: float, lateness_s: float) -> tuple[Window | None, bool]:
        """The window a check-in at ``at`` counts for, and whether it is late.

        On time (start ≤ at < deadline) wins; otherwise the latest window whose deadline
        passed less than ``lateness_s`` before ``at``.
        """
        n = self._cycle_of(at)
        late: Window | None = None
        for k in (n - 1, n, n + 1):
            for w in self._cycle(k):
                if w.start <= at < w.deadline:
                    return w, False
                if w.deadline <= at < w.deadline + lateness_s:
                    late = w
        return late, late is not None

    def current_window(self, ts: float) -> Window | None:
        """The window open at ``ts`` (start ≤ ts < deadline), if any."""
        w, late = self.window_for(ts, 0)
        return None if late else w

    def windows_starting(self, start: float, end: float) -> list[Window]:
        """Windows whose start is in ``[start, end)`` (for the daily statistics)."""
        out: list[Window] = []
        n = self._cycle_of(start) - 1
        while True:
            cycle = self._cycle(n)
            out.extend(w for w in cycle if start <= w.start < end)
            if cycle[0].start >= end:
                return out
            n += 1


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """What :class:`PlanBook` needs from the settings."""

    level_specs: Mapping[str, str]
    grace_s: int
    lateness_s: int
    tz: ZoneInfo


class PlanBook:
    """Every plan in use, by integer index (compact per-subject arrays store the index).

    Level defaults come from settings; a ``checkin_plans`` row named after a level replaces
    it, and ``subject_plans`` rows assign individual subjects to named plans.
    """

    def __init__(self, cfg: PlanSettings) -> None:
        self.cfg = cfg
        self.lateness_s = cfg.lateness_s
        self.plans: list[Plan] = []
        self._by_id: dict[str, int] = {}
        self.overrides: dict[str, int] = {}
        for level, spec in cfg.level_specs.items():
            self.add(Plan(level, spec, cfg.grace_s, cfg.tz))

    def add(self, plan: Plan) -> int:
        idx = self._by_id.get(plan.id)
        if idx is not None:
            self.plans[idx] = plan
            return idx
        self.plans.append(plan)
        self._by_id[plan.id] = len(self.plans) - 1
        return len(self.plans) - 1

    def index(self, plan_id: str) -> int | None:
        return self._by_id.get(plan_id)

    def plan_index(self, subject_id: str, level: str) -> int:
        idx = self.overrides.get(subject_id)
        if idx is not None:
            return idx
        found = self._by_id.get(level)
        if found is None:
            found = self._by_id.get("normal", 0)
        return found

    def set_overrides(self, assignments: Iterable[tuple[str, str]]) -> set[str]:
        """Replace every per-subject override with these ``subject_plans`` rows (a live
        edit re-reads them all); returns the subjects whose plan changed."""
        before = self.overrides
        self.overrides = {}
        for subject_id, plan_id in assignments:
            idx = self._by_id.get(plan_id)
            if idx is not None:
                self.overrides[subject_id] = idx
        return {
            sid
            for sid in before.keys() | self.overrides.keys()
            if before.get(sid) != self.overrides.get(sid)
        }

    def load_rows(
        self,
        plans: Iterable[tuple[str, str, int | None]],
        assignments: Iterable[tuple[str, str]],
    ) -> None:
        """Apply ``checkin_plans`` rows ``(id, spec, grace_s)`` and ``subject_plans`` rows."""
        for plan_id, spec, grace in plans:
            self.add(Plan(plan_id, spec, self.cfg.grace_s if grace is None else grace, self.cfg.tz))
        for subject_id, plan_id in assignments:
            idx = self._by_id.get(plan_id)
            if idx is not None:
                self.overrides[subject_id] = idx


def override_plan_id(subject_id: str) -> str:
    """The ``checkin_plans`` id of one subject's own plan (``subject:<id>``): one per subject,
    so setting it again reuses the same plan index; ids too long for the 64-character column
    are hashed."""
    plan_id = f"subject:{subject_id}"
    if len(plan_id) <= 64:
        return plan_id
    return "subject:#" + hashlib.sha256(subject_id.encode()).hexdigest()[:40]


def plan_settings(settings: Settings) -> PlanSettings:
    """Level plans from settings; with the demo simulator, short windows for everyone."""
    grace, lateness = settings.checkin_grace_s, settings.checkin_lateness_s
    specs = {
        "strict": settings.checkin_plan_strict,
        "normal": settings.checkin_plan_normal,
        "lenient": settings.checkin_plan_lenient,
    }
    if settings.demo and settings.simulator and settings.demo_window_s > 0:
        period = settings.demo_window_s
        open_s = max(1, period * 2 // 3)
        grace = min(grace, (period - open_s) // 2)
        lateness = min(lateness, period - open_s - grace)
        specs = dict.fromkeys(specs, f"every {period}s open {open_s}s")
    return PlanSettings(specs, grace, lateness, settings.tz)
