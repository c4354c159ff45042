"""Rooms across instances (issue 12): two app instances on one Redis and one PostgreSQL, a
call room opened on the first, one aiortc party signalling through each instance. The party
on the second instance is forwarded to the owner over the bus and its peer connects straight
to the owner: both decode each other's counter video, no media lives on the second instance.
When the owner dies (stops answering and renewing, its lease lapses) the party on the second
instance gets ``bye`` with reason ``owner_lost``."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from center.clock import FakeClock
from media.cluster import OWNER_LOST
from tests.conftest import (
    REDIS_URL,
    AppFactory,
    create_pg_database,
    drop_pg_database,
    need_postgres,
    need_redis,
)
from tests.web.conftest import create_room, media, signal_for, user
from tests.web.ws.rtc_peer import WsPeer, wait_for

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


async def test_parties_on_two_instances_see_each_other_and_owner_loss_ends_it(
    make_client: AppFactory, pg_url: str, fake_clock: FakeClock
) -> None:
    need_redis()
    prefix = f"rooms2i{next(_seq)}:"
    common = {
        "database_url": pg_url,
        "redis_url": REDIS_URL,
        "redis_key_prefix": prefix,
        # renewals run on the fake clock: a lease long in real time does not lapse mid-test
        "media_room_lease_s": 600.0,
    }
    owner = await make_client(demo=True, **common)
    other = await make_client(demo=True, **common)
    futian = await user(owner, "futian")
    street1 = await user(other, "street1")
    room = await create_room(owner, futian, kind="call", participants=["street1"], record=False)
    sig_a = await signal_for(owner, futian)
    sig_b = await signal_for(other, street1)
    a = WsPeer(sig_a, room["id"], base=10_000)
    b = WsPeer(sig_b, room["id"], base=20_000)
    try:
        assert (await a.join())["success"]
        joined_b = await b.join()
        assert joined_b["success"], joined_b
        assert joined_b["result"]["kind"] == "call"
        await a.connect()
        await b.connect()
        await wait_for(lambda: (v := a.video_from(b.participant)) is not None and len(v.valid) > 20)
        await wait_for(lambda: (v := b.video_from(a.participant)) is not None and len(v.valid) > 20)
        assert min(a.video_from(b.participant).valid) >= 20_000  # type: ignore[union-attr]
        assert 10_000 <= min(b.video_from(a.participant).valid) < 20_000  # type: ignore[union-attr]
        # the media stays on the owner: both participants are there, none on the other
        assert set(media(owner).manager.room(room["id"]).participants) == {
            a.participant,
            b.participant,
        }
        assert not media(other).manager.rooms()
        # the owner's room events reach each party as its own, whichever instance it is on
        joined = [e for e in sig_a.event_log(a.join_id) if e["type"] == "participant_joined"]
        assert joined and joined[0]["data"]["participant_id"] == b.participant
        assert {e["type"] for e in sig_b.event_log(b.join_id)} & {"offer", "tracks", "state"}

        # the room is visible on both instances: the other asks the owner who is present
        resp = await other.get(f"/api/v1/rooms/{room['id']}")
        assert resp.status == 200, await resp.text()
        seen = await resp.json()
        assert seen["kind"] == "call" and seen["created_by"] == "user:futian"
        assert {p["participant"] for p in seen["present"]} == {a.participant, b.participant}

        # the owner dies: it stops answering and renewing, and its lease lapses in Redis
        cluster = media(owner).cluster
        assert cluster is not None
        for unsubscribe in cluster._unsubscribe:
            unsubscribe()
        cluster.owned.clear()
        r = aioredis.Redis.from_url(REDIS_URL)
        try:
            assert await r.delete(f"{prefix}rooms:{room['id']}") == 1
        finally:
            await r.aclose()
        await fake_clock.advance(media(other).cluster.period_s)
        await wait_for(lambda: any(e["type"] == "bye" for e in sig_b.event_log(b.join_id)))
        assert sig_b.event_log(b.join_id)[-1]["data"] == {"reason": OWNER_LOST}
        assert not media(other).cluster.relays
        # the socket is still fine, and the room is gone for it
        reply = await sig_b.call("rtc.offer", room=room["id"], sdp="v=0\r\n")
        assert reply["error"]["code"] == "participant_not_found"
    finally:
        await sig_a.close()
        await sig_b.close()
        await a.close()
        await b.close()


async def test_relayed_drop_rejoin_and_room_end(
    make_client: AppFactory, pg_url: str, fake_clock: FakeClock
) -> None:
    """A relayed party's socket drops: the owner holds its slot and a new socket on the
    other instance takes it back with the token; ending the room on the owner says
    ``room_closed`` to the relayed party and removes the room from the directory."""
    need_redis()
    common = {
        "database_url": pg_url,
        "redis_url": REDIS_URL,
        "redis_key_prefix": f"rooms2i{next(_seq)}:",
        "media_room_lease_s": 600.0,
    }
    owner = await make_client(demo=True, **common)
    other = await make_client(demo=True, **common)
    futian = await user(owner, "futian")
    street1 = await user(other, "street1")
    room = await create_room(owner, futian, kind="call", participants=["street1"], record=False)
    sig_b = await signal_for(other, street1)
    first = await sig_b.call("rtc.join", room=room["id"])
    assert first["success"], first
    participant, token = first["result"]["participant"], first["result"]["rejoin_token"]
    await sig_b.close()
    live = media(owner).manager.room(room["id"])
    await wait_for(lambda: participant in live.held())
    sig_b = await signal_for(other, street1)
    try:
        wrong = await sig_b.call("rtc.rejoin", room=room["id"], participant=participant, token="x")
        assert wrong["error"]["code"] == "not_allowed"
        join_id = await sig_b.send(
            "rtc.rejoin", room=room["id"], participant=participant, token=token
        )
        again = await sig_b.result(join_id)
        assert again["success"], again
        assert again["result"]["participant"] == participant
        resp = await owner.delete(
            f"/api/v1/rooms/{room['id']}", headers={"X-CSRF-Token": futian.csrf}
        )
        assert resp.status == 200, await resp.text()
        await wait_for(lambda: any(e["type"] == "bye" for e in sig_b.event_log(join_id)))
        assert sig_b.event_log(join_id)[-1]["data"] == {"reason": "room_closed"}
        assert not media(other).cluster.relays
        gone = await sig_b.call("rtc.join", room=room["id"])
        assert gone["error"]["code"] == "room_not_found"
        assert (await other.get(f"/api/v1/rooms/{room['id']}")).status == 404
    finally:
        await sig_b.close()


async def test_owner_shutdown_says_so_to_relayed_parties(
    make_client: AppFactory, pg_url: str, fake_clock: FakeClock
) -> None:
    """A graceful owner shutdown ends its rooms with ``server_shutdown``, which reaches the
    party relayed by the other instance, and gives its leases back."""
    need_redis()
    prefix = f"rooms2i{next(_seq)}:"
    common = {
        "database_url": pg_url,
        "redis_url": REDIS_URL,
        "redis_key_prefix": prefix,
        "media_room_lease_s": 600.0,
    }
    owner = await make_client(demo=True, **common)
    other = await make_client(demo=True, **common)
    futian = await user(owner, "futian")
    street1 = await user(other, "street1")
    room = await create_room(owner, futian, kind="call", participants=["street1"], record=False)
    sig_b = await signal_for(other, street1)
    try:
        join_id = await sig_b.send("rtc.join", room=room["id"])
        assert (await sig_b.result(join_id))["success"]
        await owner.close()
        await wait_for(lambda: any(e["type"] == "bye" for e in sig_b.event_log(join_id)))
        assert sig_b.event_log(join_id)[-1]["data"] == {"reason": "server_shutdown"}
        assert await media(other).cluster.lookup(room["id"]) is None
    finally:
        await sig_b.close()
