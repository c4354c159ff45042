"""Reports: ``GET /api/v1/reports/daily`` (JSON, ``.csv``), ``/api/v1/reports/range`` and the
printable page ``/reports``. Scoped like everything else: a district officer gets their
district, a street officer their street, 404 for anything outside."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from alerts.reports import Scope, build_report, report_csv
from center.authz import authorize
from center.errors import NotFound, ValidationFailed
from web import keys
from web.jsonio import json_response
from web.policy import SESSION, policy, principal_of
from web.templating import render

MAX_RANGE_DAYS = 366


def _date(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            f"query parameter {name!r} must be a date like 2026-11-25", details={name: raw}
        ) from None


def _scope(request: web.Request) -> Scope:
    principal = principal_of(request)
    tree = request.app[keys.TREE]
    node_id = (
        request.query.get("street")
        or request.query.get("district")
        or (principal.jurisdiction[-1] if principal.jurisdiction else "")
    )
    node = tree.get(node_id)
    if node is None or not authorize(principal, "reports.read", tree.path(node_id)):
        raise NotFound("no such jurisdiction in your scope")
    return Scope(node.id, node.name, node.level)


def _range(request: web.Request, daily: bool) -> tuple[date, date]:
    settings = request.app[keys.SETTINGS]
    today = request.app[keys.CLOCK].now().astimezone(settings.tz).date()
    if daily:
        day = _date(request, "date", today - timedelta(days=1))
        return day, day
    first = _date(request, "from", today - timedelta(days=7))
    last = _date(request, "to", today)
    if last < first:
        raise ValidationFailed("'to' must not be before 'from'")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(f"a report covers at most {MAX_RANGE_DAYS} days")
    return first, last


async def _report(request: web.Request, daily: bool) -> dict[str, object]:
    settings = request.app[keys.SETTINGS]
    scope = _scope(request)
    first, last = _range(request, daily)
    async with request.app[keys.SESSIONMAKER]() as session:
        return await build_report(
            session,
            request.app[keys.TREE],
            scope,
            first,
            last,
            settings.tz,
            timedelta(hours=settings.loop_hours),
        )


def _csv(report: dict[str, object]) -> web.Response:
    scope = report["scope"]
    assert isinstance(scope, dict)
    name = f"report-{scope['id']}-{report['from']}-{report['to']}.csv"
    return web.Response(
        text=report_csv(report),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@policy("reports.read", auth=(SESSION,))
async def daily(request: web.Request) -> web.Response:
    """``GET /api/v1/reports/daily?date=YYYY-MM-DD&district=&street=`` (default: yesterday)."""
    return json_response(await _report(request, daily=True))


@policy("reports.read", auth=(SESSION,))
async def daily_csv(request: web.Request) -> web.Response:
    return _csv(await _report(request, daily=True))


@policy("reports.read", auth=(SESSION,))
async def date_range(request: web.Request) -> web.Response:
    """``GET /api/v1/reports/range?from=&to=&district=&street=`` (inclusive dates)."""
    return json_response(await _report(request, daily=False))


@policy("reports.read", auth=(SESSION,))
async def date_range_csv(request: web.Request) -> web.Response:
    return _csv(await _report(request, daily=False))


@policy("reports.read", auth=(SESSION,), page=True)
async def report_page(request: web.Request) -> web.Response:
    """``GET /reports?date=`` or ``?from=&to=``: the printable page."""
    daily_ = "from" not in request.query and "to" not in request.query
    report = await _report(request, daily=daily_)
    totals = report["totals"]
    assert isinstance(totals, dict)
    return render(
        request,
        "report.html",
        report=report,
        kinds=list(totals["by_kind"]),
        request_query=request.query_string,
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/reports/daily", daily)
    r.add_get("/api/v1/reports/daily.csv", daily_csv)
    r.add_get("/api/v1/reports/range", date_range)
    r.add_get("/api/v1/reports/range.csv", date_range_csv)
    r.add_get("/reports", report_page)
