"""Wiring of the alarm engine into the app: one cleanup context and its typed key.

Comes after the database and the bus and before the task supervisor's context, so on
shutdown the supervisor cancels the watcher loops before the bus and the engine go away.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from alerts.engine import AlertEngine
from center import keys

_LOGGER = logging.getLogger(__name__)

ALERTS = web.AppKey("alerts_engine", AlertEngine)


async def alerts_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    engine = AlertEngine(
        settings,
        clock=app[keys.CLOCK],
        sessionmaker=app[keys.SESSIONMAKER],
        bus=app[keys.BUS],
        tree=app[keys.TREE],
    )
    await engine.start()
    app[ALERTS] = engine
    metrics = app[keys.METRICS]
    metrics.gauge_fn(
        "center_alarms_raised_total",
        "Alarms this instance raised (published alarm.raised).",
        lambda: float(engine.raiser.raised),
        kind="counter",
    )
    metrics.gauge_fn(
        "center_checkins_accepted_total",
        "Check-ins accepted by this instance.",
        lambda: float(engine.ingestor.accepted["checkins"]),
        kind="counter",
    )
    metrics.gauge_fn(
        "center_watcher_subjects",
        "Subjects the deadline watcher follows.",
        lambda: float(len(engine.directory)),
    )
    tasks = app[keys.TASKS]
    engine.spawn(tasks)
    if settings.demo and settings.simulator:
        from alerts.simulator import Simulator

        tasks.spawn("alerts-demo-simulator", Simulator(app, engine).run())
    _LOGGER.info("alarm engine started: %r", engine)
    yield
