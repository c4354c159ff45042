"""The page a logged-in user gets for a page their role may not use (403, in their language).

A visit-staff member who opens ``/console`` or ``/reports`` from a bookmark should read what
they may do and find their own page, not a JSON error body meant for scripts.
"""

from __future__ import annotations

from aiohttp import web

from center.authz import Principal
from web.principals import home_for
from web.templating import render


def forbidden_page(request: web.Request, principal: Principal) -> web.Response:
    target = home_for(request.app, str(principal.role))
    response = render(
        request,
        "forbidden.html",
        role=str(principal.role),
        name=principal.display_name or principal.name,
        work_page=target,
        page_path=request.path,
    )
    response.set_status(403)
    return response
