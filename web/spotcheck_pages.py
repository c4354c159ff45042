"""Pages of spot-checks: ``/s`` (the supervised person's phone) and ``/spotcheck`` (the
officer's view, laptop and phone). Both are shells for their scripts; see docs/spotchecks.md.
"""

from __future__ import annotations

import json

from aiohttp import web

from center.authz import Action
from web.api_auth import me_payload
from web.policy import policy, principal_of
from web.templating import render


def _boot(request: web.Request, **extra: object) -> str:
    me = me_payload(request)
    boot = {"csrf_token": me.get("csrf_token", ""), "home": me.get("home", "/"), **extra}
    return json.dumps(boot, ensure_ascii=False).replace("</", "<\\/")


@policy(Action.SPOTCHECKS_ANSWER, page=True)
async def subject_page(request: web.Request) -> web.Response:
    principal = principal_of(request)
    return render(
        request,
        "subject.html",
        boot_json=_boot(request, name=principal.display_name or principal.name),
    )


@policy(Action.SPOTCHECKS_RUN, page=True)
async def officer_page(request: web.Request) -> web.Response:
    return render(request, "spotcheck.html", boot_json=_boot(request))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/s", subject_page)
    app.router.add_get("/spotcheck", officer_page)
