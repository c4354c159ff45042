"""Wiring of the duty workflow into the app: one cleanup context, typed keys.

The timer loop and the arming worker run under the app's TaskSupervisor (never fire and
forget); the bus subscription is dropped on teardown before the tasks are cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from alerts.escalation import Escalator
from alerts.evidence import EvidenceStore
from alerts.workflow import SlaPolicy, Workflow
from center import keys
from center.shifts import ShiftService
from center.timers import TimerService

TIMERS = web.AppKey("timers", TimerService)
SHIFTS = web.AppKey("shifts", ShiftService)
WORKFLOW = web.AppKey("workflow", Workflow)
ESCALATOR = web.AppKey("escalator", Escalator)
EVIDENCE = web.AppKey("evidence", EvidenceStore)


async def workflow_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    sessionmaker, bus, clock = app[keys.SESSIONMAKER], app[keys.BUS], app[keys.CLOCK]
    tree = app[keys.TREE]
    timers = TimerService(sessionmaker, clock, poll_s=settings.timer_poll_s)
    sla = SlaPolicy.parse(settings.ack_sla_minutes, settings.report_sla_hours, settings.loop_hours)
    workflow = Workflow(sessionmaker, bus, clock, timers, tree, sla)
    escalator = Escalator(sessionmaker, bus, clock, timers, workflow)
    roots = tree.roots()
    shifts = ShiftService(
        sessionmaker,
        bus,
        clock,
        timers,
        staffed_id=roots[0].id if roots else "",
        # Shared with the live dashboard's staffing tile (one setting, one minimum).
        minimum=int(getattr(settings, "dashboard_min_on_duty", 2)),
        grace=timedelta(minutes=settings.shift_grace_minutes),
    )
    app[EVIDENCE] = EvidenceStore(
        sessionmaker, clock, settings.data_dir, max_bytes=settings.evidence_max_bytes
    )
    app[TIMERS], app[WORKFLOW], app[ESCALATOR], app[SHIFTS] = timers, workflow, escalator, shifts
    metrics = app[keys.METRICS]
    for name, help_, fn in (
        (
            "center_timers_fired_total",
            "Durable timers fired by this instance.",
            lambda: timers.fired,
        ),
        (
            "center_alarm_escalations_total",
            "Alarms escalated to the level above.",
            lambda: escalator.escalated,
        ),
        (
            "center_alarm_loop_breaches_total",
            "Alarms flagged for missing the closed loop.",
            lambda: escalator.breaches,
        ),
        (
            "center_alarm_actions_total",
            "Officer actions applied to alarms.",
            lambda: workflow.actions,
        ),
        (
            "center_alarm_conflicts_total",
            "Officer actions refused for a stale version.",
            lambda: workflow.conflicts,
        ),
    ):
        metrics.gauge_fn(name, help_, lambda fn=fn: float(fn()), kind="counter")  # type: ignore[misc]
    escalator.listen()
    tasks = app[keys.TASKS]
    tasks.spawn("timers", timers.run())
    tasks.spawn("alarm-arming", escalator.run_arming(max(settings.timer_poll_s, 1.0)))
    await shifts.publish_staffing()
    try:
        yield
    finally:
        escalator.close()
