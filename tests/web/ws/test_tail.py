"""``run.py tail``: a second client of the protocol (the websockets library) prints live
alarm events, resumes after a dropped connection, and exits 2 on a refused token."""

from __future__ import annotations

import asyncio
import io

from aiohttp.test_utils import TestClient

from tests.web.ws.conftest import alarm, bus_of, street_of, wall_token
from web.tail import format_event, tail, ws_url


def test_ws_url() -> None:
    assert ws_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/ws"
    assert ws_url("https://center.example/") == "wss://center.example/ws"
    assert ws_url("ws://h:1/ws") == "ws://h:1/ws"
    assert ws_url("127.0.0.1:8080") == "ws://127.0.0.1:8080/ws"


def test_format_event() -> None:
    line = format_event(
        "alarms",
        {
            "type": "alarm.raised",
            "seq": 4,
            "at": 0,
            "data": {
                "id": 7,
                "kind": "sos",
                "severity": "high",
                "state": "new",
                "district_name": "福田区",
                "subject_name": "张*丰",
                "overdue": True,
            },
        },
    )
    assert "#4 alarm.raised alarm 7 sos high new 福田区 张*丰 OVERDUE" in line


class Watched(io.StringIO):
    """Output a test can wait on, without polling."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        self.changed.set()
        return super().write(text)

    async def until(self, text: str) -> None:
        async def wait() -> None:
            while text not in self.getvalue():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), 10)


async def test_tail_prints_masked_events_and_resumes(demo_client: TestClient) -> None:
    url = str(demo_client.make_url("/ws"))
    out = Watched()
    street = street_of(demo_client, "street1")
    bus = bus_of(demo_client)
    task = asyncio.create_task(tail(url, wall_token(demo_client), "alarms", out=out, max_events=3))
    await out.until("live")
    await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id="T1", name="欧阳娜娜"))
    await out.until("T1")
    # drop every websocket (as a proxy restart would); tail reconnects and resumes
    from web import keys

    for ws in demo_client.app[keys.WEBSOCKETS].snapshot():
        await ws.close()
    await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id="T2"))
    await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id="T3"))
    assert await asyncio.wait_for(task, 30) == 0
    text = out.getvalue()
    assert "欧**娜" in text and "欧阳娜娜" not in text and "440301199001011234" not in text
    assert [line.split()[4] for line in text.splitlines() if "alarm.raised" in line] == [
        "T1",
        "T2",
        "T3",
    ]
    assert "resumed, 2 missed" in text or "resumed, 0 missed" in text


async def test_tail_refused_token_exits_2(demo_client: TestClient) -> None:
    url = str(demo_client.make_url("/"))
    assert await asyncio.wait_for(tail(url, "dt_wrong", out=io.StringIO()), 30) == 2
