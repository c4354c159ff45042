"""rtc.* over the websocket with real aiortc peers: errors come back as error replies on a
live connection; media makes the trip; a closed socket or an unsubscribe leaves the room
and leaves no peer or task behind; a recorded call decodes after it ends."""

from __future__ import annotations

import asyncio

import av
from aiohttp.test_utils import TestClient

from tests.web.conftest import create_room, media, rtc_tasks, signal_for, user
from tests.web.ws.rtc_peer import WsPeer, wait_for


async def _error(reply: dict[str, object]) -> str:
    assert reply["success"] is False, reply
    return str(reply["error"]["code"])  # type: ignore[index]


async def test_errors_are_replies_not_crashes(app_client: TestClient) -> None:
    street2 = await user(app_client, "street2")
    duty = await user(app_client, "duty1")
    room = await create_room(app_client, duty, kind="call", participants=["street1"])
    sig = await signal_for(app_client, duty)
    stranger = await signal_for(app_client, street2)
    try:
        assert await _error(await sig.call("rtc.join", room="nope")) == "room_not_found"
        assert (
            await _error(await sig.call("rtc.offer", room=room["id"], sdp="v=0\r\n"))
            == "participant_not_found"
        )
        # a room one may not see answers as an unknown one does (as over HTTP)
        assert await _error(await stranger.call("rtc.join", room=room["id"])) == "room_not_found"
        street2_monitor = await stranger.call("rtc.join", room=room["id"], role="monitor")
        assert await _error(street2_monitor) == "forbidden"
        assert (
            await _error(await sig.call("rtc.join", room=room["id"], role="x")) == "invalid_format"
        )
        joined = await sig.call("rtc.join", room=room["id"])
        assert joined["success"], joined
        assert await _error(await sig.call("rtc.join", room=room["id"])) == "conflict"
        for bad in ("hello", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"):
            assert await _error(await sig.call("rtc.offer", room=room["id"], sdp=bad)) == "bad_sdp"
        assert await _error(
            await sig.call("rtc.answer", room=room["id"], sdp="v=0\r\nm=x\r\n")
        ) in ("invalid_state", "bad_sdp")
        assert (await sig.call("ping"))["success"]  # the connection is still fine
        assert (await sig.call("rtc.leave", room=room["id"]))["success"]
        assert not media(app_client).manager.room(room["id"]).participants
    finally:
        await sig.close()
        await stranger.close()


async def test_echo_round_trip_and_close_leaves(app_client: TestClient) -> None:
    duty = await user(app_client, "duty1")
    room = await create_room(app_client, duty, kind="echo")
    sig = await signal_for(app_client, duty)
    peer = WsPeer(sig, room["id"], base=5000)
    try:
        joined = await peer.join()
        assert joined["success"], joined
        assert joined["result"]["ice_servers"] == []
        await peer.connect()
        await wait_for(
            lambda: (v := peer.video_from(peer.participant)) is not None and len(v.valid) > 15
        )
        video = peer.video_from(peer.participant)
        assert video is not None and min(video.valid) >= 5000
        await wait_for(lambda: peer.audio_frames() > 10)
        events = [e["type"] for e in sig.event_log(peer.join_id)]
        assert "state" in events and "tracks" in events
        assert [e["seq"] for e in sig.event_log(peer.join_id)] == list(range(1, len(events) + 1))
    finally:
        await sig.close()
    service = media(app_client)
    await wait_for(lambda: not service.manager.metrics()["participants"])
    await service.settle()
    assert service.manager.metrics()["rooms"] == 0  # an echo room ends with its party
    assert not service.sessions
    await wait_for(lambda: not rtc_tasks())
    await peer.close()


async def test_unsubscribe_of_the_join_id_leaves(app_client: TestClient) -> None:
    futian = await user(app_client, "futian")
    room = await create_room(app_client, futian, kind="call", record=False)
    sig = await signal_for(app_client, futian)
    try:
        join_id = await sig.send("rtc.join", room=room["id"])
        assert (await sig.result(join_id))["success"]
        service = media(app_client)
        assert len(service.manager.room(room["id"]).participants) == 1
        assert (await sig.call("unsubscribe", subscription=join_id))["success"]
        await service.settle()
        await wait_for(lambda: not service.manager.room(room["id"]).participants)
        # a call room stays open for others; its creator can come back
        assert (await sig.call("rtc.join", room=room["id"]))["success"]
    finally:
        await sig.close()
    await media(app_client).settle()


async def test_two_parties_call_recorded_and_ended(
    app_client: TestClient, tmp_path: object
) -> None:
    street1 = await user(app_client, "street1")
    futian = await user(app_client, "futian")
    room = await create_room(app_client, futian, kind="call", participants=["street1"])
    sig_a = await signal_for(app_client, futian)
    sig_b = await signal_for(app_client, street1)
    a = WsPeer(sig_a, room["id"], base=10_000)
    b = WsPeer(sig_b, room["id"], base=20_000)
    try:
        await a.join()
        await b.join()
        await asyncio.gather(a.connect(), b.connect())
        await wait_for(lambda: (v := a.video_from(b.participant)) is not None and len(v.valid) > 20)
        await wait_for(lambda: (v := b.video_from(a.participant)) is not None and len(v.valid) > 20)
        assert min(a.video_from(b.participant).valid) >= 20_000  # type: ignore[union-attr]
        assert 10_000 <= min(b.video_from(a.participant).valid) < 20_000  # type: ignore[union-attr]
        joined = [e for e in sig_a.event_log(a.join_id) if e["type"] == "participant_joined"]
        assert joined and joined[0]["data"]["participant_id"] == b.participant
        resp = await app_client.delete(
            f"/api/v1/rooms/{room['id']}", headers={"X-CSRF-Token": futian.csrf}
        )
        assert resp.status == 200
        body = await resp.json()
        for sig, peer in ((sig_a, a), (sig_b, b)):
            await wait_for(
                lambda s=sig, p=peer: any(e["type"] == "bye" for e in s.event_log(p.join_id))
            )
            assert sig.event_log(peer.join_id)[-1]["data"] == {"reason": "room_closed"}
    finally:
        await sig_a.close()
        await sig_b.close()
        await a.close()
        await b.close()
    assert len(body["recordings"]) == 2
    service = media(app_client)
    for rec in body["recordings"]:
        assert rec["state"] == "finished" and rec["sha256"] and rec["size_bytes"] > 0
    paths = sorted((service.manager.settings.recordings_dir / room["id"]).iterdir())
    assert len(paths) == 2
    for path in paths:
        with av.open(str(path)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames > 10, path
    await service.settle()
    assert not service.sessions
    await wait_for(lambda: not rtc_tasks())


async def test_dropped_websocket_rejoins_the_same_slot(app_client: TestClient) -> None:
    """A party whose websocket drops keeps its slot: a new socket takes it back with the
    rejoin token (same participant id, the other party's view resumes on the same m-line);
    another user cannot use the token."""
    street1 = await user(app_client, "street1")
    futian = await user(app_client, "futian")
    room = await create_room(app_client, futian, kind="call", participants=["street1"])
    sig_a = await signal_for(app_client, futian)
    sig_b = await signal_for(app_client, street1)
    a = WsPeer(sig_a, room["id"], base=10_000)
    b = WsPeer(sig_b, room["id"], base=20_000)
    a2: WsPeer | None = None
    sig_a2 = None
    try:
        await a.join()
        await b.join()
        await asyncio.gather(a.connect(), b.connect())
        await wait_for(lambda: (v := b.video_from(a.participant)) is not None and len(v.valid) > 10)
        token = a.join_result["rejoin_token"]
        assert token
        await sig_a.close()  # the socket drops, no rtc.leave
        service = media(app_client)
        await service.settle()
        await wait_for(lambda: service.manager.room(room["id"]).held() == [a.participant])
        reconnecting = [
            e for e in sig_b.event_log(b.join_id) if e["type"] == "participant_reconnecting"
        ]
        assert reconnecting and reconnecting[0]["data"]["participant_id"] == a.participant
        # The other party cannot take the slot with the token.
        refused = await sig_b.call(
            "rtc.rejoin", room=room["id"], participant=a.participant, token=token
        )
        assert await _error(refused) in ("not_allowed", "conflict")
        await user(app_client, "futian")
        sig_a2 = await signal_for(app_client, futian)
        a2 = WsPeer(sig_a2, room["id"], base=30_000)
        rejoined = await a2.rejoin(a.participant, token)
        assert rejoined["success"], rejoined
        assert a2.participant == a.participant
        await a2.connect()
        await wait_for(
            lambda: (
                (v := b.video_from(a.participant)) is not None
                and sum(1 for c in v.valid if c >= 30_000) > 10
            )
        )
        await wait_for(lambda: (v := a2.video_from(b.participant)) is not None and len(v.valid) > 5)
    finally:
        await sig_b.close()
        if sig_a2 is not None:
            await sig_a2.close()
        await a.close()
        await b.close()
        if a2 is not None:
            await a2.close()
    await media(app_client).settle()


async def test_quality_timeline_served_during_and_after_the_call(app_client: TestClient) -> None:
    street1 = await user(app_client, "street1")
    futian = await user(app_client, "futian")
    room = await create_room(app_client, futian, kind="call", participants=["street1"])
    sig_a = await signal_for(app_client, futian)
    sig_b = await signal_for(app_client, street1)
    a = WsPeer(sig_a, room["id"], base=10_000)
    b = WsPeer(sig_b, room["id"], base=20_000)
    url = f"/api/v1/rooms/{room['id']}/quality"
    try:
        await a.join()
        await b.join()
        await asyncio.gather(a.connect(), b.connect())
        live = media(app_client).manager.room(room["id"])
        await wait_for(lambda: len(live.quality) >= 8)
        resp = await app_client.get(url)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["room"] == room["id"] and body["ended"] is False
        sides = {(s["participant"], s["direction"]) for s in body["samples"]}
        assert {(a.participant, "uplink"), (b.participant, "downlink")} <= sides
        assert {s["grade"] for s in body["samples"]} <= {"excellent", "good", "poor", "lost"}
        resp = await app_client.delete(
            f"/api/v1/rooms/{room['id']}", headers={"X-CSRF-Token": futian.csrf}
        )
        assert resp.status == 200
        after = await (await app_client.get(url)).json()
        assert after["ended"] is True and len(after["samples"]) >= len(body["samples"])
        await user(app_client, "street2")  # not invited, other jurisdiction: 404
        assert (await app_client.get(url)).status == 404
    finally:
        await sig_a.close()
        await sig_b.close()
        await a.close()
        await b.close()
    await media(app_client).settle()


async def test_a_page_that_saw_its_link_die_rejoins_on_its_own_socket(
    app_client: TestClient,
) -> None:
    """The page notices a dead peer connection before the server does and sends
    ``rtc.rejoin`` for its still-present participant on the same websocket: a wrong token
    changes nothing; the right one moves the slot to the fresh connection (the other party
    is told ``participant_reconnecting`` and then sees the new video), and the page's
    ``rtc.stats`` samples land in the quality timeline; bad samples are refused."""
    street1 = await user(app_client, "street1")
    futian = await user(app_client, "futian")
    room = await create_room(app_client, futian, kind="call", participants=["street1"])
    sig_a = await signal_for(app_client, futian)
    sig_b = await signal_for(app_client, street1)
    a = WsPeer(sig_a, room["id"], base=10_000)
    b = WsPeer(sig_b, room["id"], base=20_000)
    a2 = WsPeer(sig_a, room["id"], base=30_000)
    live = media(app_client).manager.room(room["id"])
    try:
        await a.join()
        await b.join()
        await asyncio.gather(a.connect(), b.connect())
        await wait_for(lambda: (v := b.video_from(a.participant)) is not None and len(v.valid) > 10)
        old = live.participants[a.participant]
        wrong = await sig_a.call(
            "rtc.rejoin", room=room["id"], participant=a.participant, token="not-it"
        )
        assert await _error(wrong) == "conflict"  # still in the room on this socket
        assert live.participants[a.participant] is old
        rejoined = await a2.rejoin(a.participant, a.join_result["rejoin_token"])
        assert rejoined["success"], rejoined
        assert a2.participant == a.participant and live.participants[a.participant] is not old
        await a2.connect()
        await wait_for(
            lambda: (
                (v := b.video_from(a.participant)) is not None
                and sum(1 for c in v.valid if c >= 30_000) > 10
            )
        )
        kinds = [e["type"] for e in sig_b.event_log(b.join_id)]
        assert "participant_reconnecting" in kinds
        await a.pc.close()  # the old connection's late failure must not take the new one
        await asyncio.sleep(0.5)
        assert live.participants[a.participant] is not old
        sample = {"direction": "downlink", "loss": 0.01, "rtt_ms": 20.0, "fps": 29.5}
        ok = await sig_a.call("rtc.stats", room=room["id"], samples=[sample])
        assert ok["success"], ok
        mine = [q for q in live.quality if q.source == "browser"]
        assert [(q.participant_id, q.direction, q.fps) for q in mine] == [
            (a.participant, "downlink", 29.5)
        ]
        for bad in ({**sample, "loss": 2}, {**sample, "direction": "sideways"}, {"fps": 1}):
            refused = await sig_a.call("rtc.stats", room=room["id"], samples=[bad])
            assert not refused["success"], bad
        assert len([q for q in live.quality if q.source == "browser"]) == 1
    finally:
        await sig_a.close()
        await sig_b.close()
        await a.close()
        await a2.close()
        await b.close()
    await media(app_client).settle()
