"""UI strings: one catalogue per language, ``web/locales/<lang>.json``.

zh-CN is the default, English is available; a request chooses with ``?lang=en`` (which the
page then remembers in the ``lang`` cookie) or the ``lang`` cookie, else the ``language``
setting. The same flat catalogue (``"namespace.key": "text"``) serves the jinja2 templates
(``{{ t("key") }}``) and every page script: pages embed it as JSON in
``<script id="i18n" type="application/json">`` and ``static/js/i18n.js`` exposes
``t("key", {var})``, so no script keeps a private copy of any text.

Labels for enum values are keyed by the value itself (``kind.<AlarmKind>``,
``state.<AlarmState>``, ``severity.<Severity>``, ``disposition.<Disposition>``,
``action.<Action>``, ``level.<Level>``, ``role.<Role>``, ``supervision.<SupervisionLevel>``),
so a test can check that every enum value has a label in every language.

Placeholders are ``{name}``: ``str.format`` here, a regular-expression replace in the
script; a missing key shows as the key itself (the catalogue test keeps that from shipping).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

from aiohttp import web

_LOGGER = logging.getLogger(__name__)

LANGS: Final = ("zh-CN", "en")
DEFAULT_LANG: Final = "zh-CN"
LOCALES: Final = Path(__file__).parent / "locales"


@functools.cache
def catalogue(lang: str) -> Mapping[str, str]:
    """The read-only catalogue of ``lang`` (an unknown language gets the default's).

    Read once per process: the files ship with the code and change only with a release.
    """
    if lang not in LANGS:
        lang = DEFAULT_LANG
    with (LOCALES / f"{lang}.json").open(encoding="utf-8") as f:
        table = json.load(f)
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in table.items()
    ):
        raise ValueError(f"{lang}.json must be one flat object of strings")
    _LOGGER.debug("loaded %d UI strings for %s", len(table), lang)
    return MappingProxyType(table)


@functools.cache
def catalogue_json(lang: str) -> str:
    """The catalogue as JSON safe to embed in a ``<script>`` element (no ``</``)."""
    return json.dumps(dict(catalogue(lang)), ensure_ascii=False).replace("</", "<\\/")


def language(request: web.Request, default: str = DEFAULT_LANG) -> str:
    """The request's language: ``?lang=``, then the ``lang`` cookie, then ``default``."""
    lang = request.query.get("lang") or request.cookies.get("lang") or default
    if lang in LANGS:
        return lang
    return default if default in LANGS else DEFAULT_LANG


@functools.cache
def translator(lang: str) -> Translator:
    return Translator(lang)


class Translator:
    """``t(key, **vars)`` for one language, falling back to zh-CN, then to the key."""

    __slots__ = ("_fallback", "_table", "lang")

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT_LANG
        self._table = catalogue(self.lang)
        self._fallback = catalogue(DEFAULT_LANG)

    def __call__(self, key: str, **kwargs: object) -> str:
        text = self._table.get(key) or self._fallback.get(key) or key
        return text.format(**kwargs) if kwargs else text

    def __repr__(self) -> str:
        return f"Translator({self.lang})"
