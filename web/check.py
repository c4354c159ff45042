"""The device check page (设备检测, ``/check``): camera preview, an echo room through the
server, and a plain-words verdict on whether video and sound make the round trip.

The page is a shell for ``static/js/check.js``, which opens an echo room
(``POST /api/v1/rooms {"kind": "echo"}``) and signals over ``/ws`` with
``static/js/rtc-client.js``. Staff use it with their login session; family members and
subjects will reach it with a code that yields a guest principal holding the
``rooms.check`` grant — nothing on the page depends on the login being staff.
"""

from __future__ import annotations

import json

from aiohttp import web

from center.authz import Action
from web.api_auth import me_payload
from web.policy import policy
from web.templating import render


@policy(Action.ROOMS_CHECK, page=True)
async def check_page(request: web.Request) -> web.Response:
    me = me_payload(request)
    boot = {
        "csrf_token": me.get("csrf_token", ""),
        "home": me.get("home", "/"),
    }
    return render(
        request,
        "check.html",
        boot_json=json.dumps(boot, ensure_ascii=False).replace("</", "<\\/"),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/check", check_page)
