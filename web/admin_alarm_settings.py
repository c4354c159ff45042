"""Live alarm settings: severities, SLA minutes and the closed-loop hours from the admin page.

``PUT /api/v1/admin/alarm-settings`` checks each value as the start-up setting of the same
name would be checked (``alarm_severity``, ``ack_sla_minutes``, ``report_sla_hours``,
``loop_hours``), stores it in ``live_settings`` (which from then on replaces the start-up
setting, also after a restart), audits ``settings.update`` with before and after, applies it
here at once and announces ``alarm_settings.changed`` on the bus: every other instance
re-reads the table and applies it too (:func:`alarm_settings_ctx`). Alarms raised from then on
get the new severity and acknowledgement/report deadlines; alarms already open keep the
deadlines they were given; reports judge the closed loop with the new hours.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy import select

from alerts.models import LiveSetting
from alerts.severity import SeverityTable
from alerts.workflow import SlaPolicy
from center import audit
from center.authz import Action
from center.bus import BusMessage
from center.errors import ValidationFailed
from center.topics import Event, Topic
from web import keys
from web.admin_plans import _city_wide
from web.components import ALERTS
from web.contract import contract
from web.fields import PLAIN
from web.policy import SESSION, policy, principal_of

_LOGGER = logging.getLogger(__name__)
NAMES = ("alarm_severity", "ack_sla_minutes", "report_sla_hours", "loop_hours")
LOOP_MAX_H = 24 * 90

Spec = Annotated[str, PLAIN, msgspec.Meta(max_length=2000)]


class AlarmSettings(msgspec.Struct):
    alarm_severity: str
    ack_sla_minutes: str
    report_sla_hours: str
    loop_hours: float


class AlarmSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    alarm_severity: Spec | None = None
    ack_sla_minutes: Spec | None = None
    report_sla_hours: Spec | None = None
    loop_hours: Annotated[float, msgspec.Meta(gt=0, le=LOOP_MAX_H)] | None = None


_VALUES = web.AppKey("alarm_settings_values", dict[str, str])


def _current(app: web.Application) -> dict[str, str]:
    values: dict[str, str] | None = app.get(_VALUES)
    return dict(values or {})


def _effective(app: web.Application, stored: dict[str, str]) -> dict[str, str]:
    settings = app[keys.SETTINGS]
    return {name: stored.get(name, str(getattr(settings, name))) for name in NAMES}


def _parse(values: dict[str, str]) -> tuple[SeverityTable, SlaPolicy]:
    """Both objects, or ValueError naming the setting."""
    severity = SeverityTable(values["alarm_severity"])
    try:
        loop = float(values["loop_hours"])
    except ValueError:
        raise ValueError("loop_hours must be a number") from None
    if not 0 < loop <= LOOP_MAX_H:
        raise ValueError(f"loop_hours must be between 0 and {LOOP_MAX_H}")
    sla = SlaPolicy.parse(values["ack_sla_minutes"], values["report_sla_hours"], loop)
    return severity, sla


def _apply(app: web.Application, values: dict[str, str]) -> None:
    _, sla = _parse(values)  # all checked before anything changes
    app[ALERTS].severity.load(values["alarm_severity"])  # in place: the raiser holds it
    app[keys.WORKFLOW].sla = sla
    # One dict, made before the app starts, changed in place: a started app's state is not
    # replaced (aiohttp deprecates that).
    held = app[_VALUES]
    held.clear()
    held.update(values)


def _out(values: dict[str, str]) -> AlarmSettings:
    return AlarmSettings(
        values["alarm_severity"],
        values["ack_sla_minutes"],
        values["report_sla_hours"],
        float(values["loop_hours"]),
    )


async def _reload(app: web.Application) -> None:
    async with app[keys.SESSIONMAKER]() as session:
        rows = await session.execute(select(LiveSetting.name, LiveSetting.value))
        stored = {str(n): str(v) for n, v in rows if n in NAMES}
    values = _effective(app, stored)
    try:
        _apply(app, values)
    except ValueError as exc:  # a value the start-up check would refuse: keep what we have
        _LOGGER.warning("live alarm settings not applied: %s", exc)


def loop_hours(app: web.Application) -> float:
    """The closed-loop hours in force (live value or the start-up setting)."""
    values = _current(app)
    return float(values["loop_hours"]) if values else app[keys.SETTINGS].loop_hours


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract("Alarm severities, SLA minutes and loop hours in force", response=AlarmSettings,
          errors=(404,))  # fmt: skip
async def get_settings(request: web.Request) -> AlarmSettings:
    _city_wide(request)
    return _out(_effective(request.app, _current(request.app)))


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Change alarm severities, SLA minutes or loop hours",
    body=AlarmSettingsIn,
    response=AlarmSettings,
    errors=(404, 422),
    description="Same syntax as the settings of the same names; omitted fields keep their "
    "value. Takes effect at once on every instance for alarms raised from then on; audited "
    "`settings.update` with before and after.",
)
async def put_settings(request: web.Request, *, body: AlarmSettingsIn) -> AlarmSettings:
    _city_wide(request)
    app = request.app
    before = _effective(app, _current(app))
    change = {
        name: str(getattr(body, name)).strip() for name in NAMES if getattr(body, name) is not None
    }
    after = {**before, **change}
    try:
        _parse(after)
    except ValueError as exc:
        field = next((n for n in NAMES if n in str(exc)), "body")
        raise ValidationFailed.of({field: str(exc)}) from None
    changed = {n: v for n, v in change.items() if v != before[n]}
    if not changed:
        return _out(before)
    now = app[keys.CLOCK].now()
    actor = principal_of(request).actor
    async with app[keys.SESSIONMAKER]() as session:
        for name, value in changed.items():
            row = await session.get(LiveSetting, name)
            if row is None:
                session.add(LiveSetting(name=name, value=value, updated_by=actor, updated_at=now))
            else:
                row.value, row.updated_by, row.updated_at = value, actor, now
        await audit.record(
            session,
            actor=actor,
            action="settings.update",
            target_type="settings",
            target_id="alarms",
            details={
                "before": {n: before[n] for n in changed},
                "after": changed,
            },
            at=now,
        )
        await session.commit()
    await _reload(app)
    try:
        await app[keys.BUS].publish(
            Topic.SETTINGS, Event.ALARM_SETTINGS_CHANGED, {"names": sorted(changed)}
        )
    except Exception as exc:  # the others read it at their next restart
        _LOGGER.warning("alarm settings change not announced on the bus: %s", exc)
    return _out(_effective(app, _current(app)))


async def alarm_settings_ctx(app: web.Application) -> AsyncIterator[None]:
    """At start the stored values replace the start-up settings; later changes arrive on the
    bus (after the alarm engine and the workflow exist)."""
    await _reload(app)

    def on_bus(msg: BusMessage) -> None:
        if msg.type != Event.ALARM_SETTINGS_CHANGED:
            return
        with contextlib.suppress(RuntimeError):  # shutting down
            app[keys.TASKS].spawn("reload-alarm-settings", _reload(app))

    unsubscribe = app[keys.BUS].subscribe(Topic.SETTINGS, on_bus)
    try:
        yield
    finally:
        unsubscribe()


def add_routes(app: web.Application) -> None:
    app[_VALUES] = {}
    app.router.add_get("/api/v1/admin/alarm-settings", get_settings)
    app.router.add_put("/api/v1/admin/alarm-settings", put_settings)
