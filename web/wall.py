"""The wall screen (大屏) page and its pairing API.

``GET /wall?token=dt_…`` opens a wall with a device token; ``GET /wall?code=123456`` makes the
page exchange a one-time pairing code for a token of its own (``POST /api/v1/wall/pair``);
``GET /wall`` uses the token the page stored before. There is no login prompt: the page
itself carries no data — everything arrives over ``/ws`` after the socket authenticates with
the token — so it is public, and a wrong token shows a clear "not paired" screen.

Staff (admin, duty) create codes with ``POST /api/v1/wall/pairing-codes``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Annotated, Final

import msgspec
from aiohttp import web

from center import audit
from center.authz import Action
from center.errors import INVALID_CREDENTIALS, TOO_MANY_ATTEMPTS, CenterError, RateLimited
from center.models import Role
from center.scope import visible_or_404
from center.wall_pairing import NAME_MAX, create_code, redeem_code
from web import keys
from web.api_auth import remote_of
from web.api_directory import PlaceId
from web.contract import contract
from web.fields import NO_NUL, Text
from web.i18n import language
from web.policy import SESSION, policy, principal_of, public
from web.principals import principal_from_secret
from web.templating import render

_LOGGER = logging.getLogger(__name__)

WALL_MESSAGES: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "title": "指挥中心大屏",
        "state.connecting": "连接中",
        "state.open": "实时",
        "state.reconnecting": "重连中",
        "state.auth_failed": "未授权",
        "state.closed": "已断开",
        "fresh.now": "数据实时",
        "fresh.ago": "{s} 秒前更新",
        "fresh.stale": "数据可能已过期（{s} 秒未更新）",
        "kpi.subjects": "在册矫正对象",
        "kpi.checkins": "今日签到",
        "kpi.checkin_rate": "签到完成率",
        "kpi.missed": "今日未签到",
        "kpi.open": "未处置报警",
        "kpi.overdue": "超时未响应",
        "kpi.closed_loop": "今日闭环率",
        "kpi.on_duty": "在岗值班",
        "kpi.media": "视频会见 / 点验",
        "panel.map": "各区未处置报警",
        "panel.ticker": "实时报警",
        "panel.trend": "24小时报警趋势",
        "panel.checkins": "各区今日签到",
        "map.note": "光明区、大鹏新区无独立边界图形，以标注点显示",
        "staffing.warning": "值班警告：在岗 {n} 人，低于最少 {m} 人",
        "staffing.unknown": "值班表未接入",
        "ticker.empty": "暂无未处置报警",
        "unpaired": "本大屏未配对或令牌无效。请联系值班员获取配对码，然后打开 /wall?code=配对码。",
        "pairing": "正在配对…",
        "checkins.done": "已签到",
        "checkins.missed": "未签到",
        "checkins.expected": "应签到",
        "unit.people": "人",
        "unit.items": "起",
    },
    "en": {
        "title": "Command center wall",
        "state.connecting": "Connecting",
        "state.open": "Live",
        "state.reconnecting": "Reconnecting",
        "state.auth_failed": "Not authorised",
        "state.closed": "Disconnected",
        "fresh.now": "Live data",
        "fresh.ago": "updated {s} s ago",
        "fresh.stale": "Data may be stale (no update for {s} s)",
        "kpi.subjects": "Under supervision",
        "kpi.checkins": "Check-ins today",
        "kpi.checkin_rate": "Check-in rate",
        "kpi.missed": "Missed today",
        "kpi.open": "Open alarms",
        "kpi.overdue": "Past SLA",
        "kpi.closed_loop": "Closed loop today",
        "kpi.on_duty": "On duty",
        "kpi.media": "Visits / spot-checks",
        "panel.map": "Open alarms by district",
        "panel.ticker": "Live alarms",
        "panel.trend": "Alarms, last 24 hours",
        "panel.checkins": "Check-ins by district",
        "map.note": "Guangming and Dapeng have no shape of their own; shown as labelled markers",
        "staffing.warning": "Staffing: {n} on duty, below the minimum of {m}",
        "staffing.unknown": "No duty roster connected",
        "ticker.empty": "No open alarms",
        "unpaired": "This wall is not paired or its token is invalid. Ask the duty officer for "
        "a pairing code and open /wall?code=<code>.",
        "pairing": "Pairing…",
        "checkins.done": "Done",
        "checkins.missed": "Missed",
        "checkins.expected": "Expected",
        "unit.people": "",
        "unit.items": "",
    },
}

KIND_LABELS: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "no_checkin": "未签到",
        "late_checkin": "迟签到",
        "out_of_bounds": "越界",
        "overdue_return": "逾期未归",
        "separation": "人机分离",
        "tamper": "设备拆卸",
        "low_battery": "低电量",
        "device_offline": "设备离线",
        "sos": "紧急求助",
        "spotcheck_missed": "点验未接",
        "face_mismatch": "人脸不符",
    },
    "en": {},
}


@public
async def wall_page(request: web.Request) -> web.Response:
    """Public: the page holds no data; the websocket authenticates (see module docstring)."""
    token = request.query.get("token", "")
    code = request.query.get("code", "")
    status = 200
    error = ""
    if token:
        principal = await principal_from_secret(request.app, token)
        if principal is None or principal.role != Role.WALL:
            status, error, token = 401, "unpaired", ""
    lang = language(request, request.app[keys.SETTINGS].language)
    config = {
        "token": token,
        "code": code if code.isdigit() else "",
        "error": error,
        "lang": lang,
        "messages": WALL_MESSAGES.get(lang, WALL_MESSAGES["zh-CN"]),
        "kinds": KIND_LABELS.get(lang) or {},
        "geojson": "/static/vendor/shenzhen-geojson/shenzhen.geojson",
        "timezone": request.app[keys.SETTINGS].timezone,
    }
    response = render(
        request, "wall.html", wall_config=json.dumps(config, ensure_ascii=False), error=error
    )
    response.set_status(status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


class PairingCodeIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, NO_NUL, msgspec.Meta(max_length=NAME_MAX)] = "wall"
    jurisdiction: PlaceId | None = None  # default: the caller's own


class PairingCodeOut(msgspec.Struct):
    code: str
    expires_at: datetime
    url: str


@policy(Action.WALL_PAIR, auth=(SESSION,))
@contract(
    "Create a wall pairing code",
    body=PairingCodeIn,
    response=PairingCodeOut,
    status=201,
    errors=(404,),
    description="A one-time code for `/wall?code=`. The wall is scoped to `jurisdiction` "
    "(default: the caller's), which must lie inside the caller's own (else 404, as for an "
    "unknown one).",
)
async def create_pairing_code(request: web.Request, *, body: PairingCodeIn) -> PairingCodeOut:
    app = request.app
    principal = principal_of(request)
    jurisdiction = body.jurisdiction or (principal.jurisdiction or ("",))[-1]
    visible_or_404(principal, app[keys.TREE], Action.WALL_PAIR, jurisdiction, "jurisdiction")
    async with app[keys.SESSIONMAKER]() as session:
        code, expires = await create_code(
            session,
            name=body.name.strip(),
            jurisdiction_id=jurisdiction,
            actor=principal.actor,
            now=app[keys.CLOCK].now(),
            ttl=timedelta(seconds=app[keys.SETTINGS].wall_pairing_ttl_s),
        )
        await session.commit()
    return PairingCodeOut(code=code, expires_at=expires, url=f"/wall?code={code}")


class PairIn(msgspec.Struct):
    code: Text


class PairOut(msgspec.Struct):
    token: str


def _too_many(wait: float) -> RateLimited:
    return RateLimited(
        "too many wrong pairing codes; try again later", retry_after=wait, code=TOO_MANY_ATTEMPTS
    )


@public
@contract(
    "Pair a wall screen",
    body=PairIn,
    response=PairOut,
    errors=(401, 429),
    description="Exchanges a pairing code for the wall's own device token, once; 401 "
    "`invalid_credentials` for an unknown, expired or used code; 429 `too_many_attempts` "
    "after repeated failures from one address.",
)
async def pair(request: web.Request, *, body: PairIn) -> PairOut:
    app = request.app
    throttle = app[keys.THROTTLE]
    key = f"wall-pair:{remote_of(request)}"
    wait = throttle.retry_after(key)
    if wait > 0:
        raise _too_many(wait)
    now = app[keys.CLOCK].now()
    async with app[keys.SESSIONMAKER]() as session:
        token = await redeem_code(session, body.code.strip(), remote=remote_of(request), now=now)
        if token is None:
            await session.rollback()
            locked = throttle.failure(key)
            if locked:
                raise _too_many(locked)
            raise CenterError(
                "unknown, expired or already used pairing code",
                code=INVALID_CREDENTIALS,
                status=401,
            )
        await audit.record(
            session,
            actor=f"pairing@{remote_of(request)}",
            action="wall.paired",
            target_type="wall",
            target_id="",
            at=now,
        )
        await session.commit()
    throttle.success(key)
    _LOGGER.info("a wall screen paired from %s", remote_of(request))
    return PairOut(token=token)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wall", wall_page)
    app.router.add_post("/api/v1/wall/pairing-codes", create_pairing_code)
    app.router.add_post("/api/v1/wall/pair", pair)
