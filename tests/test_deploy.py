"""The deployment kit under deploy/: what an operator installs must load in the real tools."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import Settings
from tests.conftest import IN_CI, AppFactory

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
METRIC = re.compile(r"\b(center_[a-z0-9_]+)")


def _need(tool: str, path: str) -> str:
    if not Path(path).is_file():
        msg = f"{tool} is not installed (apt-get install --no-install-recommends {tool})"
        if IN_CI:
            pytest.fail(f"{msg}; CI must install it")
        pytest.skip(msg)
    return path


def test_nginx_accepts_the_site_with_a_self_signed_certificate(tmp_path: Path) -> None:
    nginx = _need("nginx", NGINX)
    openssl = _need("openssl", shutil.which("openssl") or "/usr/bin/openssl")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=center.example", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    site = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert "/etc/ssl/center/fullchain.pem" in site and "/etc/ssl/center/privkey.pem" in site
    site = site.replace("/etc/ssl/center/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/center/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = "\n".join(
        f"  {kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n{temp}\n  include {tmp_path}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_nginx_limits_follow_the_settings() -> None:
    site = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    sizes = [_size(v) for v in re.findall(r"client_max_body_size (\w+);", site)]
    defaults = Settings()
    assert sizes[0] == defaults.max_body_bytes  # the server-wide limit
    assert defaults.evidence_max_bytes < sizes[1] <= defaults.evidence_max_bytes * 1.2
    ws = site[site.index("location = /ws") :]
    ws = ws[: ws.index("}")]
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    read = int(re.search(r"proxy_read_timeout (\d+)s;", ws).group(1))  # type: ignore[union-attr]
    assert read > 2 * defaults.ws_heartbeat_s


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_prometheus_rules(tmp_path: Path) -> None:
    """promtool where Prometheus is installed; always the schema promtool would enforce."""
    promtool = shutil.which("promtool")
    if promtool:
        done = subprocess.run(
            [promtool, "check", "rules", str(DEPLOY / "prometheus-rules.yml")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    doc = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text(encoding="utf-8"))
    assert set(doc) == {"groups"}
    names = set()
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"])
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"]
            names.add(rule["alert"])
    # the situations the issue names
    for wanted in (
        "CenterAlarmBacklogGrowing",
        "CenterAckSlaBreaches",
        "CenterNoDutyOfficer",
        "CenterWebsocketDrops",
        "CenterIngestionErrors",
        "CenterForwardingFallback",
    ):
        assert wanted in names


async def _scraped_metrics(make_client: AppFactory) -> set[str]:
    client = await make_client(demo=True, backup_interval_h=24)
    await client.get("/healthz")
    resp = await client.get("/metrics")
    assert resp.status == 200
    text = await resp.text()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


async def test_grafana_dashboard_metrics_exist(make_client: AppFactory) -> None:
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dash["panels"] and dash["uid"]
    exported = await _scraped_metrics(make_client)
    for panel in dash["panels"]:
        wanted = {m for t in panel["targets"] for m in METRIC.findall(t["expr"])}
        assert wanted, panel["title"]
        assert wanted <= exported, (panel["title"], sorted(wanted - exported))
    ruled = {m for rule in _rules() for m in METRIC.findall(rule["expr"])}
    assert ruled <= exported, sorted(ruled - exported)
