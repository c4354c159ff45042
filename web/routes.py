"""Route table. Each handler declares its access policy beside itself (web/policy.py)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from web import api_auth, api_directory, ops, pages, revocations
from web.principals import setup_principal_cache
from web.templating import setup_templates
from web.ws import setup_ws

STATIC = Path(__file__).parent / "static"


def setup_routes(app: web.Application) -> None:
    setup_templates(app)
    setup_principal_cache(app)
    r = app.router
    r.add_get("/", pages.home)
    r.add_get("/login", pages.login_page)
    r.add_post("/api/v1/auth/login", api_auth.login)
    r.add_post("/api/v1/auth/logout", api_auth.logout)
    r.add_get("/api/v1/me", api_auth.me)
    r.add_get("/api/v1/jurisdictions", api_directory.jurisdictions)
    r.add_get("/api/v1/subjects", api_directory.subjects)
    r.add_get("/api/v1/subjects/{subject_id}", api_directory.subject_detail)
    r.add_get("/healthz", ops.healthz)
    r.add_get("/readyz", ops.readyz)
    r.add_get("/metrics", ops.metrics)
    from web import api_workflow, console

    api_workflow.add_routes(app)
    console.add_routes(app)
    setup_ws(app)
    from web import wall

    wall.add_routes(app)
    from web import api_alarms, api_ingest, api_supervision, openapi

    api_ingest.add_routes(app)
    api_alarms.add_routes(app)
    api_supervision.add_routes(app)
    openapi.add_routes(app)
    revocations.add_routes(app)
    from web import (
        admin,
        admin_alarm_settings,
        admin_audit,
        admin_plans,
        admin_subjects,
        admin_supervision,
        admin_walls,
    )

    admin.add_routes(app)
    admin_audit.add_routes(app)
    admin_supervision.add_routes(app)
    admin_plans.add_routes(app)
    admin_subjects.add_routes(app)
    admin_walls.add_routes(app)
    admin_alarm_settings.add_routes(app)
    from web import api_rooms, check
    from web.ws import rtc

    api_rooms.add_routes(app)
    from web import api_spotchecks, api_track, spotcheck_pages

    api_spotchecks.add_routes(app)
    from web import api_faces

    api_faces.add_routes(app)
    api_track.add_routes(app)
    spotcheck_pages.add_routes(app)
    from web import api_visit_records, api_visits

    api_visit_records.add_routes(app)  # before /api/v1/visits/{visit_id}
    api_visits.add_routes(app)
    from web import visit_pages

    visit_pages.add_routes(app)
    rtc.register(app)
    check.add_routes(app)
    r.add_static("/static", STATIC, append_version=False)
