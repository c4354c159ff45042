"""Jinja2 environment (autoescaped) and a render helper that adds the language and its strings.

Every page gets ``t`` (the translator), ``lang``, ``other_lang`` (for the language switch),
``center_timezone`` (the ``timezone`` setting: pages show every time in it, never the
browser's) and ``i18n_json`` (the whole catalogue, embedded for the page scripts; see
``web.i18n``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from web import keys
from web.i18n import LANGS, catalogue_json, language, translator

JINJA = web.AppKey("jinja", jinja2.Environment)
_TEMPLATES = Path(__file__).parent / "templates"


def setup_templates(app: web.Application) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        enable_async=False,
    )
    app[JINJA] = env


def request_language(request: web.Request) -> str:
    """The language a page for this request is rendered in (see ``web.i18n.language``)."""
    return language(request, request.app[keys.SETTINGS].language)


def render(request: web.Request, template: str, **context: Any) -> web.Response:
    settings = request.app[keys.SETTINGS]
    lang = request_language(request)
    html = (
        request.app[JINJA]
        .get_template(template)
        .render(
            t=translator(lang),
            lang=lang,
            other_lang=next(other for other in LANGS if other != lang),
            center_name=settings.center_name,
            center_timezone=settings.timezone,
            i18n_json=catalogue_json(lang),
            **context,
        )
    )
    response = web.Response(text=html, content_type="text/html")
    if "lang" in request.query and request.query["lang"] == lang:
        response.set_cookie("lang", lang, samesite="Strict", path="/")
    return response
