"""One visit across two instances (issue 14, "Done when"): the relative on instance A, the
prison terminal on instance B (one PostgreSQL, one Redis), real aiortc peers signalling
through each. The relative's join opens the room on A; the terminal and the monitoring
staff reach it through B. Staff act on B: admit finds the monitor through the owner, mute
silences the relatives for the terminal, and the warnings and the end fire on B's timers
(B's clock is the only one that moves) yet reach both sides, close the room on A with its
recordings on the record, and close the relative's socket with 4002."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from center.clock import FakeClock
from tests.center.test_visit_live import approved_visit
from tests.center.test_visits import post
from tests.conftest import (
    REDIS_URL,
    AppFactory,
    create_pg_database,
    demo_credentials,
    drop_pg_database,
    need_postgres,
    need_redis,
)
from tests.web.conftest import media, signal_for, user
from tests.web.ws.rtc_peer import WsPeer, WsSignal, wait_for
from web.components import TIMERS
from web.ws.errors import CLOSE_VISIT_ENDED

pytestmark = pytest.mark.slow

_seq = itertools.count()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    need_postgres()
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


async def bearer(client: TestClient, token: str) -> WsSignal:
    signal = WsSignal(await client.ws_connect("/ws"))
    reply = await signal.call("auth", token=token)
    assert reply["success"], reply
    return signal


async def visits_of(signal: WsSignal) -> int:
    sub = await signal.send("subscribe", topic="visits")
    assert (await signal.result(sub))["success"]
    return sub


def seen(signal: WsSignal, sub: int, type_: str) -> list[dict[str, Any]]:
    return [e["data"] for e in signal.event_log(sub) if e["type"] == type_]


def video(viewer: WsPeer, publisher: WsPeer) -> int:
    got = viewer.video_from(publisher.participant)
    return len(got.valid) if got is not None else 0


def state_of(peer: WsPeer) -> str:
    events = [e["type"] for e in peer.signal.event_log(peer.join_id)]
    return f"{peer.pc.connectionState}, events {events[-8:]}"


async def more_video(viewer: WsPeer, publisher: WsPeer, frames: int = 30) -> None:
    start = video(viewer, publisher)
    try:
        await wait_for(lambda: video(viewer, publisher) >= start + frames)
    except AssertionError as exc:  # say whether a peer connection itself went away
        raise AssertionError(f"{exc}; {state_of(viewer)}; {state_of(publisher)}") from None


async def more_audio(listener: WsPeer, frames: int = 25) -> None:
    start = listener.audio_frames()
    try:
        await wait_for(lambda: listener.audio_frames() >= start + frames)
    except AssertionError as exc:  # say whether the peer connection itself went away
        raise AssertionError(f"{exc}; {state_of(listener)}") from None


async def test_a_visit_with_the_relative_and_the_terminal_on_two_instances(
    make_client: AppFactory, pg_url: str, fake_clock: FakeClock
) -> None:
    need_redis()
    common = {
        "database_url": pg_url,
        "redis_url": REDIS_URL,
        "redis_key_prefix": f"visit2i{next(_seq)}:",
        "media_room_lease_s": 600.0,
        "visit_lead_working_days": 0,
        "visit_minutes": 10,
    }
    clock_b = FakeClock(fake_clock.now())
    a = await make_client(demo=True, **common)
    b = await make_client(demo=True, clock=clock_b, **common)
    staff_a = await user(a, "visit1")
    visit, codes, start = await approved_visit(a, fake_clock, staff_a.csrf)
    for clock in (fake_clock, clock_b):
        await clock.set(start - timedelta(minutes=1))

    joined = await post(a, "", "/api/v1/visits/join", {"code": codes[0]["join_code"]})
    room = joined["room_id"]
    assert room in media(a).rooms and not media(b).rooms  # the room lives on A
    sig_rel = await bearer(a, joined["guest_token"])
    sig_term = await bearer(b, demo_credentials(a)["terminal_token"])
    staff_b = await user(b, "visit1")
    sig_mon = await signal_for(b, staff_b)
    relative = WsPeer(sig_rel, room, base=10_000)
    terminal = WsPeer(sig_term, room, base=20_000)
    monitor = WsPeer(sig_mon, room, role="monitor")
    url = f"/api/v1/visits/{visit['id']}"
    try:
        rel_sub, term_sub = await visits_of(sig_rel), await visits_of(sig_term)
        assert (await relative.join())["success"]
        assert (await terminal.join())["success"]
        await relative.connect()
        await terminal.connect()
        # both sides see each other across the instances (the media is on A)
        await wait_for(lambda: video(relative, terminal) > 20 and video(terminal, relative) > 20)
        assert min(terminal.video_from(relative.participant).valid) < 20_000  # type: ignore[union-attr]
        assert min(relative.video_from(terminal.participant).valid) >= 20_000  # type: ignore[union-attr]
        assert not media(b).manager.rooms()

        # admit on B: no monitor yet, then the monitor on B (relayed to A) is found
        refused = await post(b, staff_b.csrf, f"{url}/admit", {}, 409)
        assert refused["error"]["code"] == "monitor_required"
        assert (await monitor.join())["success"]
        await monitor.connect()
        await wait_for(lambda: video(monitor, relative) > 10 and video(monitor, terminal) > 10)
        assert await media(a).monitored(room) and await media(b).monitored(room)
        live = await post(b, staff_b.csrf, f"{url}/admit", {})
        assert live["state"] == "live"
        admitted = datetime.fromisoformat(live["live_at"])

        # mute on B: the terminal no longer hears the relatives, still sees them
        await more_audio(terminal)
        await post(b, staff_b.csrf, f"{url}/mute", {"side": "relatives"})
        await more_video(terminal, relative, 10)
        silent_from = terminal.audio_frames()
        await more_video(terminal, relative, 45)
        assert terminal.audio_frames() == silent_from
        await more_audio(relative)  # the inmate's side is heard
        await post(b, staff_b.csrf, f"{url}/mute", {"side": "relatives", "muted": False})
        await more_audio(terminal)
        for sig, sub in ((sig_rel, rel_sub), (sig_term, term_sub)):
            await wait_for(lambda s=sig, n=sub: len(seen(s, n, "visit.mute")) == 2)  # type: ignore[misc]

        # the warnings and the end fire on B only (A's clock stands still)
        end = admitted + timedelta(minutes=10)
        for when in (end - timedelta(minutes=5), end - timedelta(minutes=1)):
            await clock_b.set(when)
            await b.app[TIMERS].fire_due()
        for sig, sub in ((sig_rel, rel_sub), (sig_term, term_sub)):
            await wait_for(lambda s=sig, n=sub: len(seen(s, n, "visit.warning")) == 2)  # type: ignore[misc]
            assert [w["minutes_left"] for w in seen(sig, sub, "visit.warning")] == [5, 1]
        await clock_b.set(end)
        await b.app[TIMERS].fire_due()
        # the room on A is closed by B's timer, and both parties hear it
        await wait_for(lambda: not media(a).manager.rooms())
        for peer in (relative, terminal, monitor):
            await wait_for(
                lambda p=peer: any(  # type: ignore[misc]
                    e["type"] == "bye" for e in p.signal.event_log(p.join_id)
                )
            )
        for sig, sub in ((sig_rel, rel_sub), (sig_term, term_sub)):
            await wait_for(
                lambda s=sig, n=sub: any(  # type: ignore[misc]
                    v["state"] == "ended" for v in seen(s, n, "visit.state")
                )
            )
            assert seen(sig, sub, "visit.state")[-1]["outcome"] == "completed"
        # the relative's socket is closed after the end (the terminal's device stays)
        await asyncio.wait_for(sig_rel.closed.wait(), 10)
        assert sig_rel.ws.close_code == CLOSE_VISIT_ENDED
        assert not sig_term.closed.is_set()
        record = await (await b.get(url)).json()
        assert (record["state"], record["outcome"]) == ("ended", "completed")
        recordings = [i for i in record["items"] if i["type"] == "recording"]
        assert len(recordings) == 2 and all(r["data"]["sha256"] for r in recordings)
        assert [i["data"]["muted"] for i in record["items"] if i["type"] == "mute"] == [
            True,
            False,
        ]
    finally:
        for sig in (sig_rel, sig_term, sig_mon):
            await sig.close()
        for peer in (relative, terminal, monitor):
            await peer.close()
