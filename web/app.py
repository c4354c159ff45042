"""The app factory: ``create_app(settings) -> web.Application``.

One cleanup context per resource — database, bus, background tasks — so teardown runs in
reverse order and only for what was set up. ``on_shutdown`` closes websockets with
GOING_AWAY before the resources go away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from aiohttp import WSCloseCode, web

from center.backup import BackupSchedule
from center.bus import Bus
from center.clock import Clock, RealClock
from center.datalock import DataDirLock
from center.db import create_engine, create_sessionmaker
from center.jurisdictions import JurisdictionTree
from center.metrics import Metrics
from center.migrate import migrate
from center.tasks import TaskSupervisor
from center.throttle import LoginThrottle
from config.settings import Settings
from web import keys
from web.admin_alarm_settings import alarm_settings_ctx
from web.admin_plans import plans_ctx
from web.admin_subjects import subjects_ctx
from web.components import (
    alerts_ctx,
    dashboard_ctx,
    faces_ctx,
    media_ctx,
    media_shutdown,
    spotcheck_ctx,
    visits_ctx,
    workflow_ctx,
)
from web.middleware import middlewares
from web.revocations import revocation_ctx
from web.routes import setup_routes

_LOGGER = logging.getLogger(__name__)


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Holds the data directory's shared lock for the app's life: ``run.py restore`` refuses
    while it is held, and the app refuses to start while a restore holds it."""
    settings = app[keys.SETTINGS]
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(settings.data_dir).acquire(exclusive=False)
    engine = create_engine(settings.database_url_resolved)
    try:
        await migrate(engine)
        app[keys.ENGINE] = engine
        app[keys.SESSIONMAKER] = create_sessionmaker(engine)
        if settings.demo:
            from center.seed import seed_demo

            app[keys.DEMO] = await seed_demo(
                app[keys.SESSIONMAKER], settings, app[keys.CLOCK].now()
            )
        async with app[keys.SESSIONMAKER]() as session:
            app[keys.TREE] = await JurisdictionTree.load(session)
        yield
    finally:
        await engine.dispose()
        lock.release()
        _log_leftover_tasks()


def _log_leftover_tasks() -> None:
    """The last teardown step: say whether anything we started is still running."""
    current = asyncio.current_task()
    left = sorted(t.get_name() for t in asyncio.all_tasks() if t is not current and not t.done())
    if left:
        _LOGGER.warning("shutdown: %d task(s) still running: %s", len(left), ", ".join(left))
    else:
        _LOGGER.info("shutdown complete: no background task left running")


async def _bus_ctx(app: web.Application) -> AsyncIterator[None]:
    from center.bus_local import LocalBus

    settings = app[keys.SETTINGS]
    bus: Bus
    if settings.redis_url:
        from center.bus_redis import RedisBus

        bus = RedisBus(settings.redis_url, key_prefix=settings.redis_key_prefix)
    else:
        bus = LocalBus()
    await bus.start()
    app[keys.BUS] = bus
    metrics = app[keys.METRICS]
    metrics.gauge_fn(
        "center_bus_published_total",
        "Events published on the bus.",
        lambda: float(bus.published),
        kind="counter",
    )
    metrics.gauge_fn(
        "center_bus_delivered_total",
        "Events delivered to subscribers.",
        lambda: float(bus.delivered),
        kind="counter",
    )
    try:
        yield
    finally:
        await bus.close()


async def _throttle_ctx(app: web.Application) -> AsyncIterator[None]:
    """With Redis, the login throttle counts in Redis, so every instance sees every failure
    (a guesser cannot spread attempts across instances behind a load balancer)."""
    settings = app[keys.SETTINGS]
    if not settings.redis_url:
        yield
        return
    from center.throttle_redis import RedisThrottleStore

    store = RedisThrottleStore(
        settings.redis_url,
        key_prefix=settings.redis_key_prefix,
        keep_s=max(settings.login_window_s, settings.login_lockout_max_s),
    )
    app[keys.THROTTLE].share(store)
    try:
        yield
    finally:
        app[keys.THROTTLE].share(None)
        await store.close()


async def _tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns background tasks; comes after the resources, so it is torn down before them."""
    clock = app[keys.CLOCK]
    sessionmaker = app[keys.SESSIONMAKER]

    async def purge_sessions() -> None:
        from center.identity import purge_expired_sessions

        while True:
            async with sessionmaker() as session:
                n = await purge_expired_sessions(session, clock.now())
                await session.commit()
            if n:
                _LOGGER.info("purged %s expired sessions", n)
            await clock.sleep(3600)

    app[keys.TASKS].spawn("purge-sessions", purge_sessions())
    _schedule_backups(app)
    try:
        yield
    finally:
        await app[keys.TASKS].close()


def _schedule_backups(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    if settings.backup_interval_h <= 0:
        return
    if not settings.database_url_resolved.startswith("sqlite"):
        _LOGGER.warning(
            "backup_interval_h is set but the database is PostgreSQL: schedule pg_dump instead"
        )
        return
    schedule = BackupSchedule(settings, app[keys.CLOCK])
    app[keys.BACKUPS] = schedule
    app[keys.METRICS].gauge_fn(
        "center_backup_last_success_timestamp_seconds",
        "Unix time of the last scheduled backup that succeeded (0: none yet).",
        lambda: schedule.last_success.timestamp() if schedule.last_success else 0.0,
    )
    app[keys.METRICS].gauge_fn(
        "center_backup_failures_total",
        "Scheduled backups that failed.",
        lambda: float(schedule.failed),
        kind="counter",
    )
    app[keys.TASKS].spawn("scheduled-backups", schedule.run())


async def _close_websockets(app: web.Application) -> None:
    for ws in app[keys.WEBSOCKETS].snapshot():
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=middlewares())
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock or RealClock()
    app[keys.METRICS] = Metrics()
    app[keys.TASKS] = TaskSupervisor()
    app[keys.WEBSOCKETS] = keys.OpenSockets()
    app[keys.THROTTLE] = LoginThrottle(
        app[keys.CLOCK],
        max_failures=settings.login_max_failures,
        window_s=settings.login_window_s,
        lockout_s=settings.login_lockout_s,
        max_lockout_s=settings.login_lockout_max_s,
        address_max_failures=settings.login_address_max_failures,
    )
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_bus_ctx)
    app.cleanup_ctx.append(_throttle_ctx)
    app.cleanup_ctx.append(alerts_ctx)
    app.cleanup_ctx.append(_tasks_ctx)
    app.cleanup_ctx.append(revocation_ctx)
    app.cleanup_ctx.append(plans_ctx)
    app.cleanup_ctx.append(subjects_ctx)
    app.cleanup_ctx.append(workflow_ctx)
    app.cleanup_ctx.append(alarm_settings_ctx)
    app.cleanup_ctx.append(media_ctx)
    app.cleanup_ctx.append(spotcheck_ctx)
    app.cleanup_ctx.append(visits_ctx)
    app.cleanup_ctx.append(faces_ctx)
    app.cleanup_ctx.append(dashboard_ctx)
    app.on_shutdown.append(media_shutdown)
    app.on_shutdown.append(_close_websockets)
    setup_routes(app)
    return app


def session_ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.session_ttl_hours)
