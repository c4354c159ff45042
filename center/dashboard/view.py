"""Rendering the live books as dashboard sections for one view (a scope and a privacy level).

A view is what a class of recipients may see: the jurisdiction subtree they are scoped to,
and whether personal data must be masked (wall screens and other device principals). The
hub renders each section once per view, not once per client.

Masking is an allowlist: a ticker entry carries only the fields named in
:data:`TICKER_FIELDS`, so a field the alarm engine adds later (an address, an ID number)
cannot leak onto a wall by default.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from center.authz import JurisdictionPath, within
from center.dashboard.alarms import AlarmBook
from center.dashboard.books import CheckinBook, SessionBook, Staffing
from center.jurisdictions import JurisdictionTree
from config.privacy import mask_name

SECTIONS: Final = (
    "meta",
    "subjects",
    "checkins",
    "alarms",
    "closed_loop",
    "staffing",
    "media",
    "trend",
    "ticker",
)
TICKER_FIELDS: Final = (
    "id",
    "kind",
    "severity",
    "state",
    "level",
    "district_id",
    "street_id",
    "first_seen",
    "last_seen",
    "ack_due_at",
    "count",
    "suppressed",
)


def _completion(done: int, missed: int) -> dict[str, Any]:
    """Windows due so far (satisfied or missed) and the share satisfied; None with none due."""
    due = done + missed
    return {"due": due, "completion": round(done / due, 4) if due else None}


@dataclass(frozen=True, slots=True)
class DashboardView:
    scope: JurisdictionPath
    masked: bool

    def __repr__(self) -> str:
        return f"<DashboardView {'/'.join(self.scope)} {'masked' if self.masked else 'full'}>"


@dataclass(slots=True)
class DashboardState:
    """Every live book; replaced as a whole by a rebuild."""

    alarms: AlarmBook
    checkins: CheckinBook
    subjects: Counter[str]
    staffing: Staffing
    visits: SessionBook
    spotchecks: SessionBook
    alarms_loaded: bool = False


class DashboardRenderer:
    def __init__(self, tree: JurisdictionTree, ticker_size: int = 20) -> None:
        self._tree = tree
        self._ticker_size = ticker_size
        self._district_of: dict[str, str] = {}
        roots = tree.roots()
        self._root: JurisdictionPath = (roots[0].id,) if roots else ()

    def district_of(self, node: str) -> str:
        found = self._district_of.get(node)
        if found is None:
            found = self._tree.district_of(node) or node
            self._district_of[node] = found
        return found

    def in_scope(self, view: DashboardView, node: str) -> bool:
        if view.scope == self._root:
            return True
        return within(view.scope, self._tree.path(node))

    def _sum(self, view: DashboardView, counter: Counter[str]) -> int:
        return sum(n for node, n in counter.items() if self.in_scope(view, node))

    def _by_district(self, view: DashboardView, counter: Counter[str]) -> dict[str, int]:
        out: Counter[str] = Counter()
        for node, n in counter.items():
            if n and self.in_scope(view, node):
                out[self.district_of(node)] += n
        return dict(out)

    def render(
        self,
        state: DashboardState,
        view: DashboardView,
        sections: Iterable[str],
        now: datetime,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for section in sections:
            out[section] = getattr(self, f"_render_{section}")(state, view, now)
        return out

    # -- sections -----------------------------------------------------------------------

    def _render_meta(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        leaf = view.scope[-1] if view.scope else ""
        node = self._tree.get(leaf)
        if node is not None and node.level == "street":
            district_ids = [self.district_of(leaf)]
        elif node is not None and node.level == "district":
            district_ids = [leaf]
        else:
            district_ids = [n.id for n in self._tree.children(leaf)]
        districts = []
        for did in district_ids:
            d = self._tree.get(did)
            if d is not None:
                districts.append({"id": d.id, "name": d.name, "lat": d.lat, "lon": d.lon})
        return {
            "scope": {
                "id": leaf,
                "name": node.name if node else "",
                "level": node.level if node else "",
            },
            "districts": districts,
            "day": state.alarms.day.isoformat() if state.alarms.day else None,
            "alarms_source": state.alarms_loaded,
        }

    def _render_subjects(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        return {
            "total": self._sum(view, state.subjects),
            "by_district": self._by_district(view, state.subjects),
        }

    def _render_checkins(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        """``expected`` is None when the database cannot say (no plans source): the wall
        shows a dash rather than a made-up zero. ``expected`` counts the whole day's windows;
        ``due`` only those that have closed or are already satisfied (done + missed), and
        ``completion`` = done / due — the figure that reads right at 03:40, as the report's
        completion rate does, where ``rate`` (done / expected) still looks like failure."""
        known = state.checkins.expected_known
        expected = self._by_district(view, state.checkins.expected)
        done = self._by_district(view, state.checkins.done)
        missed = self._by_district(view, state.alarms.missed_today)
        rows = {
            d: {
                "expected": expected.get(d, 0) if known else None,
                "done": done.get(d, 0),
                "missed": missed.get(d, 0),
                **_completion(done.get(d, 0), missed.get(d, 0)),
            }
            for d in sorted(set(expected) | set(done) | set(missed))
        }
        total_expected = sum(expected.values()) if known else None
        total_done = sum(done.values())
        total_missed = sum(missed.values())
        return {
            "total": {
                "expected": total_expected,
                "done": total_done,
                "missed": total_missed,
                "rate": round(total_done / total_expected, 4) if total_expected else None,
                **_completion(total_done, total_missed),
            },
            "by_district": rows,
        }

    def _render_alarms(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        book = state.alarms
        by_severity: Counter[str] = Counter()
        for (node, severity), n in book.by_severity.items():
            if self.in_scope(view, node):
                by_severity[severity] += n
        by_kind: Counter[str] = Counter()
        for (node, kind), n in book.by_kind.items():
            if self.in_scope(view, node):
                by_kind[kind] += n
        return {
            "open": self._sum(view, book.open_by_node),
            "overdue": self._sum(view, book.overdue_by_node),
            "by_severity": dict(by_severity),
            "by_kind": dict(by_kind),
            "by_district": self._by_district(view, book.open_by_node),
            "overdue_by_district": self._by_district(view, book.overdue_by_node),
        }

    def _render_closed_loop(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        raised = self._sum(view, state.alarms.raised_today)
        closed = self._sum(view, state.alarms.closed_today)
        return {
            "raised_today": raised,
            "closed_today": closed,
            "rate": round(closed / raised, 4) if raised else None,
        }

    def _render_staffing(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        return state.staffing.as_json()

    def _render_media(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        return {
            "visits": {
                "live": self._sum(view, state.visits.live),
                "today": self._sum(view, state.visits.today),
                "terminated": self._sum(view, state.visits.terminated),
            },
            "spotchecks": {
                "live": self._sum(view, state.spotchecks.live),
                "today": self._sum(view, state.spotchecks.today),
            },
        }

    def _render_trend(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        last = int(now.timestamp() // 3600)
        first = last - 23
        counts = [0] * 24
        for (node, hour), n in state.alarms.trend.items():
            if first <= hour <= last and self.in_scope(view, node):
                counts[hour - first] += n
        return {"start": first * 3600, "counts": counts}

    def _render_ticker(self, state: DashboardState, view: DashboardView, now: datetime) -> Any:
        items: list[dict[str, Any]] = []
        for entry in state.alarms.recent_open():
            if not self.in_scope(view, entry.node):
                continue
            items.append(
                self.ticker_item(entry.data, view.masked, state.alarms.is_overdue(entry.id))
            )
            if len(items) >= self._ticker_size:
                break
        return items

    def ticker_item(self, data: dict[str, Any], masked: bool, overdue: bool) -> dict[str, Any]:
        item: dict[str, Any] = {k: data[k] for k in TICKER_FIELDS if k in data}
        name = str(data.get("subject_name") or "")
        item["subject_name"] = mask_name(name) if masked else name
        street = self._tree.get(str(data.get("street_id") or ""))
        district = self._tree.get(str(data.get("district_id") or ""))
        item["street_name"] = street.name if street else ""
        item["district_name"] = district.name if district else ""
        item["overdue"] = overdue
        return item
