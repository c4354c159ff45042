"""The ``visits`` topic on /ws: the relative's guest session hears its own visit (the
staff's warning text, the state), visit staff their own prison's visits only."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from center.clock import FakeClock
from tests.alerts.workflow_support import browser
from tests.center.test_visits import book, post, relatives
from tests.conftest import AppFactory, login
from tests.web.ws.conftest import authed, connect, wall_token
from tests.web.ws.test_dashboard import dashboard, wait_section
from web.ws.errors import CLOSE_VISIT_ENDED


async def test_both_sides_hear_the_text_and_staff_only_their_prison(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, visit_lead_working_days=0, visit_require_monitor=False)
    csrf = await login(client, "visit1")
    start = fake_clock.now() + timedelta(minutes=40)
    visit = await book(client, csrf, "inmate-1001", ["王秀英"], start.isoformat())
    codes = (await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {}))["join_codes"]
    await fake_clock.set(start - timedelta(minutes=1))
    joined = await post(client, "", "/api/v1/visits/join", {"code": codes[0]["join_code"]})

    staff = await authed(client)  # visit1's session cookie
    relative = await authed(client, joined["guest_token"])
    subs = {}
    for name, ws in (("staff", staff), ("relative", relative)):
        sub_id = await ws.send("subscribe", topic="visits")
        res = await ws.result(sub_id)
        assert res["success"], res
        snapshot = res["result"]["snapshot"]["visits"]
        assert [(v["id"], v["state"]) for v in snapshot] == [(visit["id"], "waiting")], name
        subs[name] = (ws, sub_id)

    # the other prison's visit is not visit1's business
    async with browser(client, "visit2") as (other, csrf2):
        rel = await relatives(client, "inmate-2001")
        body = {
            "inmate_id": "inmate-2001",
            "relative_ids": list(rel.values()),
            "starts_at": (start + timedelta(hours=2)).isoformat(),
        }
        theirs = await post(other, csrf2, "/api/v1/visits", body, 201)

    await post(client, csrf, f"/api/v1/visits/{visit['id']}/admit", {})
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/warn", {"text": "请勿谈论案情"})
    for name, (ws, sub_id) in subs.items():
        events = await ws.wait_events(
            sub_id, lambda evs: any(e["type"] == "visit.text" for e in evs)
        )
        text = next(e["data"] for e in events if e["type"] == "visit.text")
        assert text["text"] == "请勿谈论案情" and text["visit_id"] == visit["id"], name
        states = [e["data"]["state"] for e in events if e["type"] == "visit.state"]
        assert "live" in states, name
        ids = {e["data"].get("id", e["data"].get("visit_id")) for e in events}
        assert theirs["id"] not in ids, name
    for ws in (staff, relative):
        await ws.close()


async def test_the_wall_counts_visits_live_today_and_terminated(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, visit_lead_working_days=0, visit_require_monitor=False)
    wall = await authed(client, wall_token(client))
    sub, res = await dashboard(wall)
    snap = res["snapshot"]
    assert snap["media"]["visits"] == {"live": 0, "today": 0, "terminated": 0}
    csrf = await login(client, "visit1")
    start = fake_clock.now() + timedelta(minutes=40)
    visit = await book(client, csrf, "inmate-1001", ["王秀英"], start.isoformat())
    codes = (await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {}))["join_codes"]
    await fake_clock.set(start - timedelta(minutes=1))
    await post(client, "", "/api/v1/visits/join", {"code": codes[0]["join_code"]})
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/admit", {})
    await wait_section(wall, sub, "media", snap, lambda m: m["visits"]["live"] == 1)
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/terminate", {"reason": "other"})
    media = await wait_section(wall, sub, "media", snap, lambda m: m["visits"]["live"] == 0)
    assert media["visits"] == {"live": 0, "today": 1, "terminated": 1}
    await wall.close()


async def test_a_relatives_socket_closes_with_4002_after_the_last_state(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    """When the visit ends, the relative's open sockets get the final ``visit.state`` and
    then close with 4002 (the page does not reconnect); staff and other visits' relatives
    stay connected, and the guest token no longer opens a socket."""
    client = await make_client(demo=True, visit_lead_working_days=0, visit_require_monitor=False)
    csrf = await login(client, "visit1")
    start = fake_clock.now() + timedelta(minutes=40)
    visit = await book(client, csrf, "inmate-1001", ["王秀英"], start.isoformat())
    codes = (await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {}))["join_codes"]
    async with browser(client, "visit2") as (other_prison, csrf2):  # another prison's visit
        rel = await relatives(client, "inmate-2001")
        body = {
            "inmate_id": "inmate-2001",
            "relative_ids": list(rel.values())[:1],
            "starts_at": start.isoformat(),
        }
        other = await post(other_prison, csrf2, "/api/v1/visits", body, 201)
        approved = await post(other_prison, csrf2, f"/api/v1/visits/{other['id']}/approve", {})
    await fake_clock.set(start - timedelta(minutes=1))
    joined = await post(client, "", "/api/v1/visits/join", {"code": codes[0]["join_code"]})
    stranger = await post(
        client, "", "/api/v1/visits/join", {"code": approved["join_codes"][0]["join_code"]}
    )

    relative = await authed(client, joined["guest_token"])
    second = await authed(client, joined["guest_token"])  # a second tab: closed too
    unrelated = await authed(client, stranger["guest_token"])
    staff = await authed(client)
    sub_id = await relative.send("subscribe", topic="visits")
    assert (await relative.result(sub_id))["success"]
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/admit", {})
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/terminate", {"reason": "other"})

    await asyncio.wait_for(relative.closed.wait(), 10)
    await asyncio.wait_for(second.closed.wait(), 10)
    assert relative.ws.close_code == CLOSE_VISIT_ENDED == 4002
    assert second.ws.close_code == 4002
    last = relative.events(sub_id)[-1]
    assert last["type"] == "visit.state" and last["data"]["state"] == "ended"
    assert last["data"]["outcome"] == "terminated"
    for ws in (unrelated, staff):
        assert not ws.closed.is_set()
        assert (await ws.call("ping"))["success"]
    again = await connect(client)
    res = await again.call("auth", token=joined["guest_token"])
    assert not res["success"]
    for ws in (unrelated, staff, again):
        await ws.close()
