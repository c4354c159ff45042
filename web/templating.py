"""Jinja2 environment (autoescaped) and a render helper that adds language and strings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from web import keys
from web.i18n import MESSAGES, language, translator

JINJA = web.AppKey("jinja", jinja2.Environment)
_TEMPLATES = Path(__file__).parent / "templates"


def setup_templates(app: web.Application) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        enable_async=False,
    )
    app[JINJA] = env


def render(request: web.Request, template: str, **context: Any) -> web.Response:
    settings = request.app[keys.SETTINGS]
    lang = language(request, settings.language)
    html = (
        request.app[JINJA]
        .get_template(template)
        .render(
            t=translator(lang),
            lang=lang,
            center_name=settings.center_name,
            messages_json=json.dumps(MESSAGES[lang], ensure_ascii=False),
            **context,
        )
    )
    response = web.Response(text=html, content_type="text/html")
    if "lang" in request.query and request.query["lang"] == lang:
        response.set_cookie("lang", lang, samesite="Strict", path="/")
    return response
