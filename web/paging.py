"""Query-string parsing for list endpoints: paging and enumerated filters with clear 4xx."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from center.errors import NotFound, ValidationFailed

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(
            f"query parameter {name!r} must be an integer", details={name: raw}
        ) from None
    if not lo <= value <= hi:
        raise ValidationFailed(
            f"query parameter {name!r} must be between {lo} and {hi}", details={name: raw}
        )
    return value


def paging(request: web.Request) -> tuple[int, int]:
    """(page, page_size), page counted from 1."""
    page = int_param(request, "page", 1, 1, 1_000_000)
    size = int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return page, size


def enum_param(request: web.Request, name: str, allowed: Iterable[str]) -> list[str]:
    """Comma-separated values of an enumerated filter (empty list: no filter)."""
    raw = request.query.get(name, "")
    if not raw:
        return []
    values = [v.strip() for v in raw.split(",") if v.strip()]
    allowed_set = set(allowed)
    bad = [v for v in values if v not in allowed_set]
    if bad:
        raise ValidationFailed(
            f"unknown value(s) for {name!r}: {', '.join(bad)}; allowed: {', '.join(sorted(allowed_set))}",
            details={name: bad},
        )
    return values


# Integer primary keys are 32-bit on PostgreSQL; anything outside cannot exist.
_MAX_ID = 2_147_483_647


def id_param(request: web.Request, name: str, what: str) -> int:
    """A positive integer id from the path; anything else is a 404 (never a 500 from the
    database driver for an out-of-range number)."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= _MAX_ID:
        raise NotFound(f"no such {what}")
    return int(raw)
