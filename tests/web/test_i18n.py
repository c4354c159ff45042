"""The UI catalogues (``web/locales/<lang>.json``): complete in every language, a label for
every enum value, and every key a template or page script names exists.

Usage is found by reading the sources: ``t("key")`` in templates and scripts, ``data-i18n="key"``
attributes, and any quoted ``"namespace.key"`` literal (tables of keys, ``cond ? "a" : "b"``).
A key built at run time (``t("kind." + a.kind)``) must use a prefix listed in ``DYNAMIC``, whose
members this test names from the code (enums) or from the script that produces them.
"""

from __future__ import annotations

import json
import re
import string
from enum import StrEnum
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from alerts.face_checks import NO_BASELINE
from alerts.face_models import PENDING
from alerts.faces import OUTCOMES
from alerts.models import AlarmKind, AlarmState, CheckinSource, LeaveState, Severity
from alerts.spotcheck_models import TIMELINE_EVENTS, FailReason, ItemType, SpotCheckState
from alerts.transitions import Action, Disposition, Level
from center.alarm_vocab import AlarmState as State
from center.models import JurisdictionLevel, Role, SupervisionLevel
from center.visits.models import RelativeStatus, TerminateReason, VisitOutcome, VisitState
from center.visits.quality import SIDES
from media.quality import Grade
from web.i18n import DEFAULT_LANG, LANGS, Translator, catalogue, catalogue_json

WEB = Path(__file__).resolve().parents[2] / "web"
# Page handlers that translate on the server (the report's CSV column labels) name keys too.
SOURCES = sorted(
    [
        *(WEB / "templates").glob("*.html"),
        *(WEB / "static" / "js").glob("*.js"),
        WEB / "api_reports.py",
    ]
)

ENUM_LABELS: dict[str, tuple[type[StrEnum], ...]] = {
    "kind.": (AlarmKind,),
    "state.": (AlarmState, State),
    "severity.": (Severity,),
    "disposition.": (Disposition,),
    "action.": (Action,),
    "level.": (Level, JurisdictionLevel),
    "role.": (Role,),
    "supervision.": (SupervisionLevel,),
    "source.": (CheckinSource,),
    "spot.state.": (SpotCheckState,),
    "spot.reason.": (FailReason,),
    "spot.item.": (ItemType,),
}
SPOT_TRACK_KINDS = {"checkin", "spotcheck"}  # web/api_track.py MarkOut.kind


def _ws_client_states() -> set[str]:
    text = (WEB / "static" / "js" / "ws-client.js").read_text(encoding="utf-8")
    states = set(re.findall(r'_setState\("([a-z_]+)"', text))
    assert {"open", "auth_failed", "closed"} <= states  # the pattern still finds them
    return states


def _check_page_names(pattern: str) -> set[str]:
    text = (WEB / "static" / "js" / "check.js").read_text(encoding="utf-8")
    return set(re.findall(pattern, text))


# Timeline event types: the workflow's EVENT_TYPE values, raising (raised / repeated /
# suppressed), escalation (escalated, <reason>_overdue, loop_breached) and evidence.
EVENT_TYPES = {
    "raised",
    "repeated",
    "suppressed",
    "acknowledged",
    "dispatched",
    "reported",
    "resolved",
    "closed",
    "reopened",
    "note",
    "escalated",
    "ack_overdue",
    "report_overdue",
    "loop_breached",
    "evidence",
    *TIMELINE_EVENTS,
}

DYNAMIC: dict[str, set[str]] = {
    **{
        prefix: {str(member) for enum in enums for member in enum}
        for prefix, enums in ENUM_LABELS.items()
    },
    "event.": EVENT_TYPES,
    "wall.conn.": _ws_client_states() | {"connecting"},
    "check.fail.": _check_page_names(r'fail\("([a-z]+)"') | {"auth"},
    "check.state.": _check_page_names(r'step\("[a-z]+", "([a-z]+)"') | {"waiting", "running"},
    "check.step.": _check_page_names(r'step\("([a-z]+)"'),
    "spot.track.": SPOT_TRACK_KINDS,
    "admin.key.kind.": {"api_key", "device_token"},  # center.models.CredentialKind
    "admin.leave.state.": {str(s) for s in LeaveState},
    "spot.face.": {*OUTCOMES, PENDING, NO_BASELINE},
    "spot.liveness.verdict.": {"passed", "failed", "undecided"},  # alerts/liveness.py Verdict
    "spot.liveness.challenge.": {"turn_left", "turn_right", "blink", "digits", "gesture"},
    "visits.vstate.": {str(s) for s in VisitState},
    "visits.outcome.": {str(o) for o in VisitOutcome},
    "visits.relstatus.": {str(s) for s in RelativeStatus},
    "visits.reason.": {str(r) for r in TerminateReason},
    "visits.grade.": {str(g) for g in Grade},
    "visits.side.": set(SIDES),
    "visits.state.": {"waiting", "live", "ended"},  # the call view's three (visit-call.js)
    "visits.book_page.state.": {str(s) for s in VisitState},  # visit-book.js
    "visits.book_page.rule.": {  # the booking refusals' details.rule (visit-book.js)
        "lead_time",
        "monthly_quota",
        "banned",
        "relative_pending",
        "max_relatives",
        "inmate_busy",
        "terminal_busy",
        "point_full",
        "in_past",
    },
    # web.admin_subjects.RowReport.status
    "admin.subj.status.": {"created", "updated", "unchanged", "rejected"},
}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _code(path: Path) -> str:
    """The source without comments and localStorage keys (``"console.muted"`` is no label)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/|\{#.*?#\}", "", text, flags=re.S)
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
    return re.sub(r"localStorage\.\w+\(\s*\"[^\"]*\"", "", text)


def _usage() -> tuple[set[str], set[str]]:
    """(literal keys, dynamic prefixes) named by the templates and page scripts."""
    namespaces = {key.split(".", 1)[0] for key in catalogue(DEFAULT_LANG)}
    literal: set[str] = set()
    dynamic: set[str] = set()
    for path in SOURCES:
        text = _code(path)
        literal |= set(re.findall(r'\bt\(\s*["\']([\w.]+)["\']\s*[,)]', text))
        literal |= set(re.findall(r'data-i18n="([\w.]+)"', text))
        literal |= {
            key
            for key in re.findall(r'["\']([a-z_]+\.[\w.]+)["\']', text)
            if key.split(".", 1)[0] in namespaces
            and not key.endswith((".", ".js", ".css", ".json", ".html"))
        }
        dynamic |= set(re.findall(r'\bt\(\s*["\']([\w.]+\.)["\']\s*\+', text))
    return literal, dynamic


@pytest.mark.parametrize("lang", LANGS)
def test_every_key_in_every_language_and_non_empty(lang: str) -> None:
    table, reference = catalogue(lang), catalogue(DEFAULT_LANG)
    assert set(table) == set(reference), set(table) ^ set(reference)
    empty = [key for key, text in table.items() if not text.strip()]
    assert not empty
    mismatched = [k for k in table if _placeholders(table[k]) != _placeholders(reference[k])]
    assert not mismatched  # the same {name} placeholders in every language


@pytest.mark.parametrize("prefix", sorted(DYNAMIC))
def test_every_enum_value_and_run_time_key_has_a_label(prefix: str) -> None:
    assert DYNAMIC[prefix]
    for lang in LANGS:
        missing = {value for value in DYNAMIC[prefix] if prefix + value not in catalogue(lang)}
        assert not missing, (lang, prefix, missing)


def test_every_key_a_template_or_script_uses_exists() -> None:
    literal, dynamic = _usage()
    assert {"login.title", "console.title", "wall.unpaired", "check.verdict.ok"} <= literal
    assert {"kind.", "state.", "event.", "wall.conn."} <= dynamic
    for lang in LANGS:
        assert not literal - set(catalogue(lang)), lang
    assert not dynamic - set(DYNAMIC), "a key built at run time needs its members in DYNAMIC"


def test_no_page_script_keeps_its_own_strings() -> None:
    """Visible text lives in the catalogue: no CJK text in a page script or a template
    (a city's place names arrive as data), and no script reads a private table."""
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if cjk.search(line)]
        allowed = [line for line in lines if "replace(/" in line]  # wall: 区/新区 suffixes
        assert lines == allowed, (path.name, lines)


def test_known_wording() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert zh["kind.low_battery"] == "低电量" and en["kind.low_battery"] == "Low battery"
    assert zh["action.acknowledge"] == "签收" and en["action.acknowledge"] == "Acknowledge"
    assert "未配对" in zh["wall.unpaired"] and zh["login.invalid"] == "用户名或密码错误"


def test_translator_formats_and_falls_back() -> None:
    t = Translator("en")
    assert t("home.welcome", name="Li") == "Hello, Li"
    assert t("no.such.key") == "no.such.key"
    assert Translator("fr").lang == DEFAULT_LANG
    assert "</" not in catalogue_json("zh-CN")


def test_every_key_is_used() -> None:
    """A key nothing names is dead text that drifts; drop it with the code that showed it."""
    literal, dynamic = _usage()
    unused = [
        key
        for key in catalogue(DEFAULT_LANG)
        if key not in literal and not any(key.startswith(prefix) for prefix in dynamic)
    ]
    assert not unused


def _embedded(html: str) -> dict[str, str]:
    found = re.search(r'<script id="i18n" type="application/json">(.*?)</script>', html)
    assert found, "the page embeds no catalogue"
    table = json.loads(found.group(1))
    assert isinstance(table, dict)
    return table


async def test_pages_embed_the_catalogue_of_their_language(demo_client: TestClient) -> None:
    """The wall (public), the login page and the report page all carry the full catalogue of
    the chosen language; the wall's English alarm labels are no longer empty."""
    for lang in LANGS:
        resp = await demo_client.get(f"/wall?lang={lang}")
        html = await resp.text()
        assert f'lang="{lang}"' in html and _embedded(html) == dict(catalogue(lang))
        assert '"messages"' not in html and '"kinds"' not in html  # no private copies
    resp = await demo_client.get("/login", cookies={"lang": "en"})
    assert _embedded(await resp.text())["login.title"] == "Sign in"
    resp = await demo_client.get("/wall?lang=xx")
    assert _embedded(await resp.text())["kind.low_battery"] == "低电量"
