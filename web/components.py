"""Wiring of the domain components into the app: one cleanup context each.

The composition root (:mod:`web.app`) appends these in order: the alarm engine after the
database and the bus and before the task supervisor's context (so on shutdown the
supervisor cancels the watcher loops before the bus and the engine go away); the workflow
(its timer loop and arming worker run under the supervisor; its bus subscription is dropped
before the tasks are cancelled); the media core (every room closed, recordings stored,
before the database goes away); the live dashboard (built from the database, handed the
alarm engine's loader here, so ``center`` never reaches up to ``alerts``), before the
websocket hub's topics that read it. The components themselves know nothing of aiohttp's
app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Final

from aiohttp import web

from alerts.dashboard_source import load as load_dashboard_alarms
from alerts.engine import AlertEngine
from alerts.escalation import Escalator
from alerts.evidence import EvidenceStore
from alerts.workflow import SlaPolicy, Workflow
from center.dashboard.projection import DashboardProjection
from center.dashboard.source import DashboardSource
from center.errors import Unavailable
from center.shifts import ShiftService
from center.timers import TimerService
from media.component import MediaService, media_settings
from media.manager import RoomManager
from media.store import SqlRecordingStore
from web import keys
from web.keys import ALERTS, DASHBOARD, ESCALATOR, EVIDENCE, MEDIA, SHIFTS, TIMERS, WORKFLOW

_LOGGER = logging.getLogger(__name__)


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
    key = app[keys.DEMO].get("integration_key") if settings.demo else None
    if settings.demo and settings.simulator and not key:
        _LOGGER.warning("demo simulator off: this instance does not know the demo integration key")
    elif settings.demo and settings.simulator:
        from alerts.simulator import Simulator

        tasks.spawn(
            "alerts-demo-simulator",
            Simulator(settings, engine, str(key)).run(),
        )
    _LOGGER.info("alarm engine started: %r", engine)
    yield


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
        tree=tree,
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


# Manager counters that are levels, not running totals.
_GAUGES: Final = frozenset({"forwarding_fallback", "rooms", "participants"})
_HELP: Final = {
    "forwarding_fallback": "1 when encoded forwarding failed its start-up self-test (or is "
    "disabled) and media is decoded and re-encoded per subscriber.",
    "rooms": "Open media rooms on this instance.",
    "participants": "Participants in the open media rooms.",
}


def media_of(app: web.Application) -> MediaService:
    try:
        return app[MEDIA]
    except KeyError:
        raise Unavailable("media is not running") from None


def _register_metrics(app: web.Application, manager: RoomManager) -> None:
    metrics = app[keys.METRICS]
    for name in manager.metrics():
        gauge = name in _GAUGES
        metrics.gauge_fn(
            f"center_media_{name}" if gauge else f"center_media_{name}_total",
            _HELP.get(name, f"Media core counter {name.replace('_', ' ')}."),
            lambda name=name: float(manager.metrics().get(name, 0)),  # type: ignore[misc]
            kind="gauge" if gauge else "counter",
        )


async def media_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the database and the task supervisor: start the manager, then the kept tasks."""
    settings = app[keys.SETTINGS]
    clock = app[keys.CLOCK]
    manager = RoomManager(
        media_settings(settings),
        store=SqlRecordingStore(app[keys.SESSIONMAKER]),
        now=clock.now,
    )
    await manager.start()
    _LOGGER.info(
        "media: %s forwarding (%s); %d ICE server(s) configured",
        manager.mode,
        manager.self_test_reason,
        len(manager.settings.ice_servers),
    )
    service = MediaService(
        manager,
        sessionmaker=app[keys.SESSIONMAKER],
        clock=clock,
        sweep_every_s=settings.retention_sweep_s,
    )
    app[MEDIA] = service
    _register_metrics(app, manager)
    tasks = app[keys.TASKS]
    kept = [
        tasks.spawn("media-leaves", service.run_leaves()),
        tasks.spawn("media-retention", service.run_retention()),
        tasks.spawn("media-rejoin-deadlines", service.run_rejoin_deadlines()),
    ]
    cluster = None
    if settings.redis_url:
        # Several instances may share this Redis: rooms are recorded there with an owner
        # lease and rtc.* for another instance's room is forwarded to it (media/cluster.py).
        from media.cluster import LEASE_LOST, RoomCluster
        from media.owner import owner_operations

        cluster = RoomCluster(
            app[keys.BUS],
            settings.redis_url,
            key_prefix=settings.redis_key_prefix,
            clock=clock,
            spawn=tasks.spawn,
            lease_s=settings.media_room_lease_s,
        )
        cluster.operations = owner_operations(service)
        cluster.still_open = lambda room_id: (
            room_id in service.rooms and any(r.id == room_id for r in manager.rooms())
        )

        async def lease_lost(room_id: str) -> None:
            service.rooms.pop(room_id, None)
            with contextlib.suppress(Exception):
                await manager.close_room(room_id, LEASE_LOST)

        cluster.on_lease_lost = lease_lost
        cluster.start()
        service.cluster = cluster
        kept += [
            tasks.spawn("media-cluster-leases", cluster.run()),
            tasks.spawn("media-cluster-outbox", cluster.run_outbox()),
        ]
    try:
        yield
    finally:
        await manager.close_all()
        if cluster is not None:
            # let the closing rooms' bye events reach relayed sockets on other instances
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cluster.drain(), 2.0)
        for task in kept:
            task.cancel()
        await asyncio.gather(*kept, return_exceptions=True)
        if cluster is not None:
            await cluster.close()


async def visits_ctx(app: web.Application) -> AsyncIterator[None]:
    """The visit record and its booking rules (prison family visits, issue 14)."""
    from center.visits.live import VisitLive
    from center.visits.records import VisitRecords
    from center.visits.rules import VisitRules
    from center.visits.service import VisitService
    from web.visit_notify import VisitNotifier
    from web.visit_rooms import MediaVisitRooms
    from web.visit_sockets import VisitSocketCloser

    settings = app[keys.SETTINGS]
    service = VisitService(
        app[keys.SESSIONMAKER],
        app[keys.CLOCK],
        VisitRules(
            minutes=settings.visit_minutes,
            max_relatives=settings.visit_max_relatives,
            monthly_quota=settings.visit_monthly_quota,
            lead_working_days=settings.visit_lead_working_days,
            no_show_minutes=settings.visit_no_show_minutes,
            rejoin_grace_s=settings.visit_rejoin_grace_s,
            require_monitor=settings.visit_require_monitor,
            join_early_minutes=settings.visit_join_early_minutes,
            tz=settings.tz,
            holidays=settings.visit_holiday_days,
            working_weekends=settings.visit_working_weekend_days,
        ),
        app[TIMERS],
        app[keys.BUS],
        MediaVisitRooms(app[MEDIA], app[keys.TREE]),
    )
    notifier = VisitNotifier(
        app[keys.SESSIONMAKER],
        app[keys.CLOCK],
        app[TIMERS],
        tz=settings.tz,
        url=settings.visit_notify_url,
        secret=settings.visit_notify_secret,
        attempts=settings.visit_notify_attempts,
        base_url=settings.visit_notify_base_url,
        minutes=settings.visit_minutes,
        join_early_minutes=settings.visit_join_early_minutes,
        center_name=settings.center_name,
    )
    await notifier.start()
    service.notices = notifier
    app[keys.VISITS] = service
    app[keys.VISITS_LIVE] = VisitLive(service)
    app[keys.VISIT_RECORDS] = VisitRecords(
        app[keys.SESSIONMAKER], app[keys.CLOCK], service, app[EVIDENCE]
    )
    app[keys.VISIT_NOTIFIER] = notifier
    app[TIMERS].poke()  # notices that fell due while no instance ran
    # a relative's websockets close (4002) when its visit ends, on every instance
    closer = VisitSocketCloser(app)
    closer.start()
    closing = app[keys.TASKS].spawn("visit-sockets", closer.run())
    try:
        yield
    finally:
        closer.stop()
        closing.cancel()
        await asyncio.gather(closing, return_exceptions=True)
        await notifier.close()


async def spotcheck_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the workflow and the media core: spot-checks ride on both (timers, alarms,
    evidence; rooms and snapshots), and the webhook on the timers."""
    from alerts.spotcheck import SpotCheckService
    from alerts.spotcheck_ports import SpotCheckPolicy
    from alerts.spotcheck_webhook import SpotCheckWebhook
    from web.spotcheck_rooms import MediaCallRooms

    settings = app[keys.SETTINGS]
    timers = app[TIMERS]
    service = SpotCheckService(
        app[keys.SESSIONMAKER],
        app[keys.BUS],
        app[keys.CLOCK],
        timers,
        app[keys.TREE],
        app[WORKFLOW],
        app[ALERTS].raiser,
        app[EVIDENCE],
        MediaCallRooms(app[MEDIA]),
        SpotCheckPolicy(
            ring_s=settings.spotcheck_ring_s,
            retry_s=SpotCheckPolicy.parse_retry(settings.spotcheck_retry_s),
            challenge_s=settings.spotcheck_challenge_s,
            gestures=tuple(g.strip() for g in settings.spotcheck_gestures.split(",") if g.strip()),
            tz=settings.tz,
        ),
    )
    if settings.spotcheck_webhook_url:
        webhook = SpotCheckWebhook(
            app[keys.SESSIONMAKER],
            app[keys.CLOCK],
            timers,
            url=settings.spotcheck_webhook_url,
            secret=settings.spotcheck_webhook_secret,
            attempts=settings.spotcheck_webhook_attempts,
        )
        service.on_ringing.append(webhook.schedule)
        app[keys.SPOTCHECK_WEBHOOK] = webhook
    app[keys.SPOTCHECKS] = service
    from alerts.spotcheck_campaign import CampaignPolicy, SpotCheckCampaign

    campaign = SpotCheckCampaign(
        app[keys.SESSIONMAKER],
        app[keys.CLOCK],
        timers,
        app[keys.TREE],
        CampaignPolicy.parse(
            share=settings.spotcheck_campaign_share,
            weights=settings.spotcheck_campaign_weights,
            alarm_weight=settings.spotcheck_campaign_alarm_weight,
            alarm_days=settings.spotcheck_campaign_alarm_days,
            periods=settings.spotcheck_campaign_periods,
            seed=settings.spotcheck_campaign_seed,
        ),
        settings.tz,
    )
    await campaign.start()
    app[keys.SPOTCHECK_CAMPAIGN] = campaign
    app[keys.METRICS].gauge_fn(
        "center_spotchecks_missed_total",
        "Spot-checks this instance ended unreachable.",
        lambda: float(service.missed),
        kind="counter",
    )
    # Timers of these kinds that fell due while no instance ran wait for the next poll
    # otherwise: the loop may have looked before the kinds were registered.
    timers.poke()
    yield


async def media_shutdown(app: web.Application) -> None:
    """``on_shutdown``: end every room (``bye`` with ``server_shutdown``) while the
    websockets can still carry it; the cleanup context repeats this idempotently."""
    service = app.get(MEDIA)
    if service is not None:
        await service.manager.close_all()


async def faces_ctx(app: web.Application) -> AsyncIterator[None]:
    """The face worker pool (its processes start with the first photo) and the services
    that use it; the pool closes before the database goes."""
    from pathlib import Path

    from alerts.face_baseline import FaceBaselines
    from alerts.face_checks import FaceVerifier
    from alerts.face_pool import FacePool

    settings = app[keys.SETTINGS]
    pool = FacePool(workers=settings.face_workers, capacity=settings.face_queue_max)
    directory = Path(settings.faces_dir or Path(settings.data_dir) / "faces")
    baselines = FaceBaselines(
        app[keys.SESSIONMAKER], app[keys.CLOCK], app[keys.TREE], pool, directory
    )
    app[keys.FACE_BASELINES] = baselines
    verifier = FaceVerifier(
        app[keys.SESSIONMAKER],
        app[keys.CLOCK],
        baselines,
        app[ALERTS].raiser,
        settings.face_match_threshold,
    )
    app[keys.FACE_VERIFIER] = verifier
    app[WORKFLOW].on_resolved.append(verifier.on_resolved)
    if keys.SPOTCHECKS in app:
        app[keys.SPOTCHECKS].face_check = verifier.check_now
        media_service = app.get(MEDIA)
        if media_service is not None:
            from web.spotcheck_liveness import LivenessProbe

            app[keys.SPOTCHECKS].liveness_probe = LivenessProbe(
                media_service,
                pool,
                directory / "liveness",
                window_s=settings.liveness_window_s,
                fps=settings.liveness_fps,
                max_frames=settings.liveness_max_frames,
                timeout_s=10.0,
            )
            app[keys.SPOTCHECKS].spawn = app[keys.TASKS].spawn
    app[keys.METRICS].gauge_fn(
        "center_face_queue", "Photos waiting for the face workers.", lambda: float(pool.queued)
    )
    await verifier.resume()
    consumers = [
        app[keys.TASKS].spawn(f"face-checks-{n}", verifier.run())
        for n in range(settings.face_workers)
    ]
    try:
        yield
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await pool.close()


async def dashboard_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live dashboard: rebuilt from the database (subjects here, alarms and check-ins
    through the alarm engine's loader), then kept from bus events until shutdown."""
    settings = app[keys.SETTINGS]
    tree = app[keys.TREE]
    source = DashboardSource(app[keys.SESSIONMAKER], tree, settings.tz, load_dashboard_alarms)
    projection = DashboardProjection(
        bus=app[keys.BUS],
        clock=app[keys.CLOCK],
        tree=tree,
        tz=settings.tz,
        source=source,
        min_on_duty=settings.dashboard_min_on_duty,
        updates_per_s=settings.dashboard_updates_per_s,
        rebuild_s=settings.dashboard_rebuild_s,
    )
    await projection.start()
    app[DASHBOARD] = projection
    app[keys.METRICS].gauge_fn(
        "center_dashboard_deltas_total",
        "Dashboard deltas emitted (after coalescing).",
        lambda: float(projection.emitted),
        kind="counter",
    )
    _operations_gauges(app, projection)
    try:
        yield
    finally:
        await projection.close()


def _operations_gauges(app: web.Application, projection: DashboardProjection) -> None:
    """What an operator is paged on (deploy/prometheus-rules.yml), read from the projection."""
    metrics = app[keys.METRICS]
    metrics.gauge_fn(
        "center_alarms_open",
        "Open (not yet disposed) alarms in the live dashboard.",
        lambda: float(len(projection.state.alarms.open)),
    )
    metrics.gauge_fn(
        "center_duty_on_duty",
        "Duty officers signed on at the city center (-1 while the roster is unknown).",
        lambda: float(
            projection.state.staffing.on_duty if projection.state.staffing.roster else -1
        ),
    )
    metrics.gauge_fn(
        "center_duty_on_duty_minimum",
        "Duty officers that must be signed on (dashboard_min_on_duty).",
        lambda: float(projection.state.staffing.minimum),
    )
