"""The console page shell: served to officers in their language, refused to others."""

from __future__ import annotations

import json
import re

from aiohttp.test_utils import TestClient

from tests.conftest import login


async def test_console_page_per_role(demo_client: TestClient) -> None:
    resp = await demo_client.get("/console", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    await login(demo_client, "street1")
    resp = await demo_client.get("/console")
    html = await resp.text()
    assert resp.status == 200 and "/static/js/console.js" in html and 'lang="zh-CN"' in html
    boot = json.loads(re.search(r"window.CONSOLE = (.*?);</script>", html).group(1))  # type: ignore[union-attr]
    assert boot["me"]["role"] == "street" and boot["strings"]["act.acknowledge"] == "签收"
    assert "false_alarm" in boot["dispositions"]
    resp = await demo_client.get("/console?lang=en")
    assert "Acknowledge" in await resp.text()
    await login(demo_client, "visit1")
    resp = await demo_client.get("/console")
    assert resp.status == 403
    resp = await demo_client.get("/")
    assert resp.status == 200  # visit staff are not sent to the console
