"""The duty console page (值班台): one page for duty, district and street officers.

The page is a shell; the queue, the detail panel and the live updates are built by
``static/js/console.js`` from the JSON API and the websocket, scoped by the server to the
officer's jurisdiction. Its strings come from the page's catalogue (``web.i18n``); the boot
object carries only data and the enum values the filters offer.
"""

from __future__ import annotations

import json

from aiohttp import web

from alerts.models import AlarmKind
from alerts.transitions import Disposition
from center.authz import Action
from web import keys
from web.api_auth import me_payload
from web.policy import policy
from web.templating import render


@policy(Action.ALARMS_READ, page=True)
async def console_page(request: web.Request) -> web.Response:
    me = me_payload(request)
    tree = request.app[keys.TREE]
    districts = [{"id": n.id, "name": n.name} for n in tree.by_level("district")]
    streets = [
        {"id": n.id, "name": n.name, "district_id": n.parent_id} for n in tree.by_level("street")
    ]
    boot = {
        "me": me,
        "districts": districts,
        "streets": streets,
        "dispositions": [str(d) for d in Disposition],
        "kinds": [str(k) for k in AlarmKind],
    }
    return render(
        request,
        "console.html",
        boot_json=json.dumps(boot, ensure_ascii=False).replace("</", "<\\/"),
        role=me["role"],
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", console_page)
