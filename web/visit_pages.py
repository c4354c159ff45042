"""Pages of family visits: ``/join`` (the relative's phone: code, device check, waiting
room, the call), ``/visits/book`` (the relative books and cancels), ``/terminal?token=``
(the prison's kiosk), ``/visits/monitor`` (visit staff watch, warn, mute, terminate and
admit), ``/visits`` (the staff's list) and ``/visits/records`` (inmates and relatives).

``/join`` and ``/terminal`` are public shells: the relative earns a guest token from the
join code, the kiosk brings its device token; both then speak the API and ``/ws`` with a
bearer token, so nothing on these pages rests on a login. Flow: docs/visits.md.
"""

from __future__ import annotations

import json
import re

from aiohttp import web

from center.authz import Action
from web import keys
from web.api_auth import me_payload
from web.policy import policy, public
from web.templating import render

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _boot(**data: object) -> str:
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def _minutes(request: web.Request) -> int:
    """The limit counts from admission (``live_at``); the pages count down to it."""
    return request.app[keys.SETTINGS].visit_minutes


@public
async def join_page(request: web.Request) -> web.Response:
    """The relative's page; ``/join/<token>`` (the join link) skips typing the code."""
    token = request.match_info.get("token", "")
    if token and not _TOKEN.match(token):
        token = ""
    return render(
        request,
        "visit_join.html",
        boot_json=_boot(link_token=token, visit_minutes=_minutes(request)),
    )


@public
async def terminal_page(request: web.Request) -> web.Response:
    """The prison terminal's kiosk; its device token comes in the query (kiosk start URL)."""
    return render(request, "visit_terminal.html", boot_json=_boot(visit_minutes=_minutes(request)))


@public
async def book_page(request: web.Request) -> web.Response:
    """The relative's booking page (public: identity by ID number and phone)."""
    return render(request, "visit_book.html", boot_json=_boot(visit_minutes=_minutes(request)))


@policy(Action.VISITS_RUN, page=True)
async def monitor_page(request: web.Request) -> web.Response:
    me = me_payload(request)
    return render(
        request, "visit_monitor.html", boot_json=_boot(csrf_token=me.get("csrf_token", ""))
    )


@policy(Action.VISITS_READ, page=True)
async def list_page(request: web.Request) -> web.Response:
    me = me_payload(request)
    return render(request, "visit_list.html", boot_json=_boot(csrf_token=me.get("csrf_token", "")))


@policy(Action.VISITS_READ, page=True)
async def records_page(request: web.Request) -> web.Response:
    """Inmates and relatives: register, attach photo and proof, verify, lift a ban."""
    me = me_payload(request)
    return render(
        request, "visit_records.html", boot_json=_boot(csrf_token=me.get("csrf_token", ""))
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/join", join_page)
    app.router.add_get("/join/{token}", join_page)
    app.router.add_get("/terminal", terminal_page)
    app.router.add_get("/visits/book", book_page)
    app.router.add_get("/visits/monitor", monitor_page)
    app.router.add_get("/visits", list_page)
    app.router.add_get("/visits/records", records_page)
