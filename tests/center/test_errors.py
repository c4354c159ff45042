"""The one error map: every declared code has one status, media's included."""

from __future__ import annotations

import logging

import pytest

import media.errors  # noqa: F401  (declares the media codes)
from center.bus import BusUnavailableError
from center.errors import (
    ERRORS,
    CenterError,
    InternalError,
    NotFound,
    Unavailable,
    error_of,
)

_LOG = logging.getLogger("tests.errors")


def test_media_codes_are_in_the_map_with_their_status() -> None:
    assert ERRORS["room_not_found"].status == 404
    assert ERRORS["not_allowed"].status == 403
    assert ERRORS["room_full"].status == 409
    assert ERRORS["snapshot_timeout"].status == 504
    assert issubclass(ERRORS["bad_sdp"], CenterError)


def test_a_code_cannot_get_a_second_status() -> None:
    with pytest.raises(TypeError, match="not_found"):

        class Gone(CenterError):
            status, code = 410, "not_found"


def test_error_of_maps_domain_errors_outages_and_bugs() -> None:
    err = NotFound("no such alarm")
    assert error_of(err, _LOG) is err
    outage = error_of(BusUnavailableError("cannot publish x: Connection refused"), _LOG)
    assert isinstance(outage, Unavailable) and outage.status == 503
    assert "refused" not in outage.message
    bug = error_of(ZeroDivisionError("boom"), _LOG)
    assert isinstance(bug, InternalError) and bug.status == 500 and "boom" not in bug.message
