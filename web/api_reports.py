"""Reports: ``GET /api/v1/reports/daily`` (JSON, ``.csv``), ``/api/v1/reports/range`` and the
printable page ``/reports``. Scoped like everything else (:func:`alerts.reports.report_scope`):
a district officer gets their district, a street officer their street, 404 for anything
outside. The figures are :func:`alerts.reports.build_report`'s; the handlers decode the
query, call it and return JSON, CSV or the page."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Final, Literal

import msgspec
from aiohttp import web

from alerts.models import AlarmKind
from alerts.reports import CSV_COLUMNS, Scope, build_report, report_csv, report_scope
from center.authz import Action
from center.errors import ValidationFailed
from web import keys
from web.admin_alarm_settings import loop_hours
from web.contract import contract
from web.fields import PLAIN
from web.i18n import translator
from web.policy import SESSION, policy, principal_of
from web.templating import render, request_language

MAX_RANGE_DAYS: Final = 366
JurisdictionId = Annotated[str, PLAIN, msgspec.Meta(max_length=32)]
Report = dict[str, Any]


class DailyQuery(msgspec.Struct, frozen=True):
    """Default: yesterday (local time); ``district``/``street`` narrow the scope."""

    date: date | None = None
    district: JurisdictionId | None = None
    street: JurisdictionId | None = None


class RangeQuery(msgspec.Struct, frozen=True):
    """Inclusive dates, at most :data:`MAX_RANGE_DAYS` (default: the last 7 days)."""

    from_: date | None = msgspec.field(name="from", default=None)
    to: date | None = None
    district: JurisdictionId | None = None
    street: JurisdictionId | None = None


CsvHeader = Literal["machine", "labels"]


class DailyCsvQuery(DailyQuery, frozen=True):
    """``header=labels``: the column names in the page's language (for people opening the file
    in a spreadsheet); the default ``machine`` row stays stable for scripts."""

    header: CsvHeader = "machine"


class RangeCsvQuery(RangeQuery, frozen=True):
    """As :class:`DailyCsvQuery`, for a date range."""

    header: CsvHeader = "machine"


# The label of each CSV column (:data:`alerts.reports.CSV_COLUMNS`), as catalogue keys.
_CSV_LABELS: Final = {
    "from": "report.col_from",
    "to": "report.col_to",
    "scope_id": "report.col_scope_id",
    "scope_name": "report.jurisdiction",
    "alarms": "report.alarms",
    "ack_count": "report.col_ack_count",
    "ack_median_min": "report.ack_median",
    "ack_p90_min": "report.ack_p90",
    "disposal_count": "report.col_disposal_count",
    "disposal_median_min": "report.disposal_median",
    "disposal_p90_min": "report.disposal_p90",
    "closed_within_loop": "report.col_closed_within_loop",
    "closed_loop_rate": "report.closed_loop",
    "loop_breached": "report.loop_breached",
    "checkins_due": "report.col_checkins_due",
    "checkins_done": "report.col_checkins_done",
    "checkin_rate": "report.checkin_rate",
}


def _csv_header(request: web.Request, header: CsvHeader) -> list[str] | None:
    if header == "machine":
        return None
    t = translator(request_language(request))
    kinds = {f"kind_{k}": t(f"kind.{k}") for k in map(str, AlarmKind)}
    return [kinds.get(col) or t(_CSV_LABELS[col]) for col in CSV_COLUMNS]


class PageQuery(RangeQuery, frozen=True):
    """``/reports``: ``date`` for one day, or ``from``/``to`` for a range; with neither, today
    in the center's time zone (an officer opening the page at 03:40 wants the alarms that are
    open now, not yesterday's figures)."""

    date: date | None = None


def _scope(request: web.Request, query: DailyQuery | RangeQuery) -> Scope:
    return report_scope(principal_of(request), request.app[keys.TREE], query.district, query.street)


def _today(request: web.Request) -> date:
    settings = request.app[keys.SETTINGS]
    return request.app[keys.CLOCK].now().astimezone(settings.tz).date()


def _days(request: web.Request, query: DailyQuery | RangeQuery) -> tuple[date, date]:
    today = _today(request)
    if isinstance(query, DailyQuery):
        day = query.date or today - timedelta(days=1)
        return day, day
    first = query.from_ or today - timedelta(days=7)
    last = query.to or today
    if last < first:
        raise ValidationFailed(
            "'to' must not be before 'from'", details={"field": "to", "fields": {"to": "< from"}}
        )
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(
            f"a report covers at most {MAX_RANGE_DAYS} days",
            details={"field": "to", "fields": {"to": f"more than {MAX_RANGE_DAYS} days"}},
        )
    return first, last


async def _report(request: web.Request, query: DailyQuery | RangeQuery) -> Report:
    settings = request.app[keys.SETTINGS]
    scope = _scope(request, query)
    first, last = _days(request, query)
    async with request.app[keys.SESSIONMAKER]() as session:
        return await build_report(
            session,
            request.app[keys.TREE],
            scope,
            first,
            last,
            settings.tz,
            timedelta(hours=loop_hours(request.app)),
        )


def _csv(report: Report, header: list[str] | None = None) -> web.Response:
    scope = report["scope"]
    name = f"report-{scope['id']}-{report['from']}-{report['to']}.csv"
    return web.Response(
        text=report_csv(report, header),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@policy(Action.REPORTS_READ, auth=(SESSION,))
@contract("Daily report", query=DailyQuery, response=Report, errors=(404,))
async def daily(request: web.Request, *, query: DailyQuery) -> Report:
    return await _report(request, query)


@policy(Action.REPORTS_READ, auth=(SESSION,))
@contract("Daily report (CSV)", query=DailyCsvQuery, media_type="text/csv", errors=(404,))
async def daily_csv(request: web.Request, *, query: DailyCsvQuery) -> web.Response:
    return _csv(await _report(request, query), _csv_header(request, query.header))


@policy(Action.REPORTS_READ, auth=(SESSION,))
@contract("Date-range report", query=RangeQuery, response=Report, errors=(404,))
async def date_range(request: web.Request, *, query: RangeQuery) -> Report:
    return await _report(request, query)


@policy(Action.REPORTS_READ, auth=(SESSION,))
@contract("Date-range report (CSV)", query=RangeCsvQuery, media_type="text/csv", errors=(404,))
async def date_range_csv(request: web.Request, *, query: RangeCsvQuery) -> web.Response:
    return _csv(await _report(request, query), _csv_header(request, query.header))


@policy(Action.REPORTS_READ, auth=(SESSION,), page=True)
@contract("The printable report page", query=PageQuery, media_type="text/html", errors=(404,))
async def report_page(request: web.Request, *, query: PageQuery) -> web.Response:
    """``?date=`` (one day, default today in the center's time zone) or ``?from=&to=``."""
    chosen: DailyQuery | RangeQuery = query
    today = _today(request)
    if query.from_ is None and query.to is None:
        chosen = DailyQuery(date=query.date or today, district=query.district, street=query.street)
    report = await _report(request, chosen)
    one_day = report["from"] == report["to"]
    shown = date.fromisoformat(str(report["from"])) if one_day else today
    return render(
        request,
        "report.html",
        report=report,
        kinds=list(report["totals"]["by_kind"]),
        request_query=request.query_string,
        today=today.isoformat(),
        picked=shown.isoformat(),
        prev_day=(shown - timedelta(days=1)).isoformat(),
        next_day=(shown + timedelta(days=1)).isoformat(),
        district=query.district or "",
        street=query.street or "",
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/reports/daily", daily)
    r.add_get("/api/v1/reports/daily.csv", daily_csv)
    r.add_get("/api/v1/reports/range", date_range)
    r.add_get("/api/v1/reports/range.csv", date_range_csv)
    r.add_get("/reports", report_page)
