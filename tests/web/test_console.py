"""The console page shell: served to officers in their language, refused to others."""

from __future__ import annotations

import json
import re

from aiohttp.test_utils import TestClient

from tests.conftest import login


def strings(html: str) -> dict[str, str]:
    """The catalogue the page embeds for its scripts (``web.i18n``)."""
    found = re.search(r'<script id="i18n" type="application/json">(.*?)</script>', html)
    assert found, "the page embeds no catalogue"
    table = json.loads(found.group(1))
    assert isinstance(table, dict)
    return table


async def test_console_page_per_role(demo_client: TestClient) -> None:
    resp = await demo_client.get("/console", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    await login(demo_client, "street1")
    resp = await demo_client.get("/console")
    html = await resp.text()
    assert resp.status == 200 and "/static/js/console.js" in html and 'lang="zh-CN"' in html
    boot = json.loads(re.search(r"window.CONSOLE = (.*?);</script>", html).group(1))  # type: ignore[union-attr]
    assert boot["me"]["role"] == "street" and "false_alarm" in boot["dispositions"]
    assert "low_battery" in boot["kinds"]
    assert strings(html)["action.acknowledge"] == "签收"
    assert strings(html)["kind.low_battery"] == "低电量"
    resp = await demo_client.get("/console?lang=en")
    html = await resp.text()
    assert 'lang="en"' in html and strings(html)["action.acknowledge"] == "Acknowledge"
    assert resp.cookies["lang"].value == "en"
    await login(demo_client, "visit1")
    resp = await demo_client.get("/console")
    assert resp.status == 403
    # A page in their language that says why and where to go, not a JSON body for scripts.
    page = await resp.text()
    assert (
        resp.content_type == "text/html" and "This page is not for your role" in page
    )  # lang=en cookie
    assert 'id="work-page"' in page and '"error"' not in page
    resp = await demo_client.get("/reports")
    assert resp.status == 403 and "/reports" in await resp.text()
    resp = await demo_client.get("/api/v1/alarms/queue")
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    resp = await demo_client.get("/")
    assert resp.status == 200  # visit staff are not sent to the console


async def test_read_api_and_openapi_carry_the_workflow(demo_client: TestClient) -> None:
    from tests.alerts.workflow_support import raise_alarm
    from tests.web.test_api_workflow import act, armed

    csrf = await login(demo_client, "duty1")
    a = await armed(demo_client, (await raise_alarm(demo_client))["id"])
    await act(demo_client, csrf, a["id"], "acknowledge", a["version"], note="收到")
    body = await (await demo_client.get(f"/api/v1/alarms/{a['id']}")).json()
    assert body["owner_level"] == "street" and body["ack_due_at"] and body["acknowledged_at"]
    assert [e["type"] for e in body["timeline"]][-1] == "acknowledged"
    listed = await (await demo_client.get("/api/v1/alarms")).json()
    assert listed["items"][0]["loop_due_at"]
    doc = await (await demo_client.get("/api/v1/openapi.json")).json()
    for path in (
        "/api/v1/alarms/{alarm_id}/actions",
        "/api/v1/reports/daily",
        "/api/v1/reports/daily.csv",
    ):
        assert path in doc["paths"]
    codes = doc["paths"]["/api/v1/alarms/{alarm_id}/actions"]["post"]["responses"]
    assert {"200", "403", "404", "409", "422"} <= set(codes)
