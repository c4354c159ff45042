"""Settings: defaults, sources and their order, and clear refusals (exit code 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import FIELDS, SettingsError, load_settings, settings_table_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_every_setting_described() -> None:
    s = load_settings(env={})
    assert s.port == 8080 and s.host == "127.0.0.1" and s.timezone == "Asia/Shanghai"
    assert s.database_url_resolved.startswith("sqlite+aiosqlite:///")
    for name, f in FIELDS.items():
        assert f.metadata.get("description"), name
    table = settings_table_markdown()
    assert all(f"CENTER_{name.upper()}" in table for name in FIELDS)


def test_source_order(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('port = 9000\ncenter_name = "测试中心"\n', encoding="utf-8")
    s = load_settings(config_file=cfg, env={"CENTER_PORT": "9100"}, overrides={"port": "9200"})
    assert s.port == 9200 and s.center_name == "测试中心"
    s = load_settings(config_file=cfg, env={"CENTER_PORT": "9100"})
    assert s.port == 9100
    s = load_settings(env={"CENTER_DEMO": "true", "CENTER_TEST_POSTGRES_URL": "ignored"})
    assert s.demo is True


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CENTER_PORT": "eighty"}, "not a valid int"),
        ({"CENTER_PORT": "70000"}, "between 0 and 65535"),
        ({"CENTER_PROT": "1"}, "Did you mean 'port'"),
        ({"CENTER_TIMEZONE": "Mars/Olympus"}, "IANA time zone"),
        ({"CENTER_DATABASE_URL": "mysql://x"}, "postgresql+asyncpg://"),
        ({"CENTER_LOG_LEVEL": "LOUD"}, "allowed values"),
        ({"CENTER_DEMO": "maybe"}, "not a valid bool"),
    ],
)
def test_bad_values_refused(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as exc:
        load_settings(env=env)
    assert fragment in str(exc.value)


def test_bad_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("port = [", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config_file=cfg, env={})
    cfg.write_text("colour = 'red'", encoding="utf-8")
    with pytest.raises(SettingsError, match="Unknown setting 'colour'"):
        load_settings(config_file=cfg, env={})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(config_file=tmp_path / "missing.toml", env={})


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--port", "notaport"], {}),
        ([], {"CENTER_LOG_LEVEL": "LOUD"}),
        (["--config", "/nonexistent.toml"], {}),
    ],
)
def test_run_py_bad_setting_exits_2_with_one_paragraph(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CENTER_")}
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("run.py: configuration error:")
    assert len(proc.stderr.strip().splitlines()) == 1
