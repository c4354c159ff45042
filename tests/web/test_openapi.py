"""The generated OpenAPI document: complete, true to the router and the settings, and a
schemathesis run over it (coverage and fuzzing phases) finds no 5xx.

The fuzz run is schemathesis's own command line against a real ``run.py --demo`` process,
as an integrator would point it at us: once with the demo integration key, once with a
duty officer's session cookie and its CSRF header.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import schemathesis
from aiohttp.test_utils import TestClient

from tests.conftest import AppFactory
from tests.procs import ServerProcess, start_server
from web.contract import get_contract
from web.policy import get_policy


def _routed(client: TestClient) -> set[tuple[str, str]]:
    out = set()
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api/v1") and route.method != "HEAD":
            out.add((route.method.lower(), path))
    return out


async def test_every_route_is_documented_and_every_operation_routed(
    make_client: AppFactory,
) -> None:
    client = await make_client(demo=True)
    resp = await client.get("/api/v1/openapi.json")  # public: no credential
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(doc)  # loads and resolves every reference
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    routed = _routed(client)
    assert documented == routed, (routed - documented, documented - routed)
    assert len(routed) >= 33
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api/v1") and route.method != "HEAD":
            assert get_contract(route.handler) is not None, path
            assert get_policy(route.handler) is not None, path
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert codes & {"200", "201", "204"}, (method, path)
            if op["security"]:
                assert {"401", "403"} <= codes, (method, path)
            if "requestBody" in op and "application/json" in op["requestBody"]["content"]:
                assert {"400", "415", "422"} <= codes, (method, path)


async def test_limits_and_enums_come_from_settings_and_code(make_client: AppFactory) -> None:
    client = await make_client(demo=True, ingest_max_batch=7, max_body_bytes=123456)
    doc = await (await client.get("/api/v1/openapi.json")).json()
    body = doc["paths"]["/api/v1/checkins"]["post"]["requestBody"]["content"]["application/json"]
    batch = body["schema"]["anyOf"][1]["properties"]["items"]
    assert batch["maxItems"] == 7
    assert "123456" in doc["paths"]["/api/v1/checkins"]["post"]["responses"]["413"]["description"]
    from alerts.models import CheckinSource

    assert set(doc["components"]["schemas"]["CheckinSource"]["enum"]) == {
        str(s) for s in CheckinSource
    }
    security = doc["components"]["securitySchemes"]
    assert {"apiKey", "session", "csrf", "deviceToken"} <= set(security)


@pytest.fixture
def server(tmp_path: Path) -> Any:
    srv = start_server(
        tmp_path / "data",
        env={"CENTER_INGEST_RATE_PER_S": "1000000", "CENTER_INGEST_BURST": "1000000"},
    )
    try:
        yield srv
    finally:
        srv.stop()


def _login(srv: ServerProcess) -> tuple[str, str]:
    creds = srv.credentials()
    req = urllib.request.Request(
        f"{srv.url}/api/v1/auth/login",
        data=json.dumps(
            {"username": "duty1", "password": creds["users"]["duty1"]["password"]}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
        csrf = json.loads(resp.read())["csrf_token"]
    return cookie, csrf


def _schemathesis(srv: ServerProcess, tmp: Path, name: str, *args: str) -> None:
    examples = os.environ.get("CENTER_TEST_FUZZ_EXAMPLES", "15")
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{srv.url}/api/v1/openapi.json",
        "--phases=coverage,fuzzing",
        "--checks=not_a_server_error",
        f"--max-examples={examples}",
        "--workers=1",
        "--seed=20261201",
        "--no-color",
        f"--report-junit-path={tmp / (name + '.xml')}",
        "--report=junit",
        *args,
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-8000:] + "\n--- server log ---\n" + srv.log()[-4000:]
    assert "unhandled error" not in srv.log(), srv.log()[-8000:]
    # it really ran: one JUnit test case per operation, none failed
    suite = ElementTree.parse(tmp / (name + ".xml")).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) >= 30, out[-3000:]
    assert not suite.findall(".//failure") and not suite.findall(".//error"), out[-3000:]


# the suite's 300 s cap is for one test; a fuzz run grows with every operation
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_schemathesis_with_an_integration_key(server: ServerProcess, tmp_path: Path) -> None:
    key = server.credentials()["integration_key"]
    _schemathesis(server, tmp_path, "key", "-H", f"Authorization: Bearer {key}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_schemathesis_with_a_duty_session(server: ServerProcess, tmp_path: Path) -> None:
    cookie, csrf = _login(server)
    _schemathesis(
        server,
        tmp_path,
        "session",
        "-H",
        f"Cookie: {cookie}",
        "-H",
        f"X-CSRF-Token: {csrf}",
        # logging out would end the session the run is using
        "--exclude-path=/api/v1/auth/logout",
    )


def _strings(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every ``{"type": "string"}`` schema under ``node`` with its location."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") == "string" or (
            isinstance(node.get("type"), list) and "string" in node["type"]
        ):
            found.append((where, node))
        for key, value in node.items():
            found.extend(_strings(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_strings(value, f"{where}/{i}"))
    return found


async def test_every_text_input_follows_the_one_text_rule(make_client: AppFactory) -> None:
    """Every string a client sends — path, query, body, batch item — is an enum, a date or
    time, or carries a pattern that refuses NUL and the other control characters (the one
    rule of :mod:`center.text`), so no input reaches a database that would refuse it."""
    import re

    client = await make_client()
    doc = await (await client.get("/api/v1/openapi.json")).json()
    inputs: list[tuple[str, Any]] = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                inputs.append((f"{method} {path} {param['name']}", param["schema"]))
            for media in op.get("requestBody", {}).get("content", {}).values():
                inputs.append((f"{method} {path} body", media.get("schema", {})))
    refs: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in refs:
                refs.add(ref)
                collect(doc["components"]["schemas"][ref.rsplit("/", 1)[-1]])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for _, schema in inputs:
        collect(schema)
    nodes = [
        *inputs,
        *((ref, doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]) for ref in refs),
    ]
    loose = []
    for where, schema in nodes:
        for at, string in _strings(schema, where):
            if "enum" in string or string.get("format") in ("date", "date-time", "binary"):
                continue
            pattern = string.get("pattern")
            if pattern is None or any(re.search(pattern, f"a{c}b") for c in "\x00\x01\x1b\x7f"):
                loose.append(at)
    assert not loose, "\n".join(sorted(set(loose)))
