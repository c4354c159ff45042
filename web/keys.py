"""Typed application keys for everything the app shares (set only in create_app/cleanup_ctx)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from alerts.engine import AlertEngine
from alerts.escalation import Escalator
from alerts.evidence import EvidenceStore
from alerts.face_baseline import FaceBaselines
from alerts.face_checks import FaceVerifier
from alerts.spotcheck import SpotCheckService
from alerts.spotcheck_campaign import SpotCheckCampaign
from alerts.spotcheck_webhook import SpotCheckWebhook
from alerts.workflow import Workflow
from center.backup import BackupSchedule
from center.bus import Bus
from center.clock import Clock
from center.dashboard.projection import DashboardProjection
from center.jurisdictions import JurisdictionTree
from center.metrics import Metrics
from center.shifts import ShiftService
from center.tasks import TaskSupervisor
from center.throttle import LoginThrottle
from center.timers import TimerService
from center.visits.live import VisitLive
from center.visits.records import VisitRecords
from center.visits.service import VisitService
from config.settings import Settings
from media.component import MediaService
from web.visit_notify import VisitNotifier

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[Any])
BUS = web.AppKey("bus", Bus)
BACKUPS = web.AppKey("backups", BackupSchedule)
TREE = web.AppKey("jurisdiction_tree", JurisdictionTree)
METRICS = web.AppKey("metrics", Metrics)
TASKS = web.AppKey("tasks", TaskSupervisor)
THROTTLE = web.AppKey("login_throttle", LoginThrottle)


class OpenSockets:
    """Open websocket responses: a handler adds itself and removes itself on close, and
    shutdown closes whatever is left with GOING_AWAY."""

    def __init__(self) -> None:
        self._items: set[Any] = set()

    def add(self, ws: Any) -> None:
        self._items.add(ws)

    def discard(self, ws: Any) -> None:
        self._items.discard(ws)

    def snapshot(self) -> list[Any]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


WEBSOCKETS = web.AppKey("websockets", OpenSockets)
DEMO = web.AppKey("demo_credentials", dict[str, Any])
ALERTS = web.AppKey("alerts_engine", AlertEngine)
TIMERS = web.AppKey("timers", TimerService)
SHIFTS = web.AppKey("shifts", ShiftService)
WORKFLOW = web.AppKey("workflow", Workflow)
ESCALATOR = web.AppKey("escalator", Escalator)
EVIDENCE = web.AppKey("evidence", EvidenceStore)
MEDIA = web.AppKey("media", MediaService)
DASHBOARD = web.AppKey("dashboard", DashboardProjection)
SPOTCHECKS = web.AppKey("spotchecks", SpotCheckService)
SPOTCHECK_WEBHOOK = web.AppKey("spotcheck_webhook", SpotCheckWebhook)
SPOTCHECK_CAMPAIGN = web.AppKey("spotcheck_campaign", SpotCheckCampaign)
VISITS = web.AppKey("visits", VisitService)
VISITS_LIVE = web.AppKey("visits_live", VisitLive)
VISIT_RECORDS = web.AppKey("visit_records", VisitRecords)
VISIT_NOTIFIER = web.AppKey("visit_notifier", VisitNotifier)
FACE_BASELINES = web.AppKey("face_baselines", FaceBaselines)
FACE_VERIFIER = web.AppKey("face_verifier", FaceVerifier)
