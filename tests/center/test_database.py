"""Migrations, the audit chain and the admin commands on real SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import inspect, select, text, update

from center import audit
from center.db import create_engine, create_sessionmaker
from center.identity import authenticate, create_credential, create_user, resolve_credential
from center.migrate import migrate
from center.models import AuditEntry, CredentialKind, Jurisdiction, Role

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrations_apply_twice(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)  # idempotent on restart
        async with engine.connect() as conn:
            heads = (
                (await conn.execute(text("SELECT version_num FROM alembic_version")))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert "0001_foundation" in heads or heads  # every branch head applied
    tables = await _tables(database_url)
    assert {"jurisdictions", "users", "sessions", "credentials", "subjects", "audit_log"} <= tables


async def test_sqlite_uses_wal(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
    finally:
        await engine.dispose()
    assert mode == "wal"


async def _seeded(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    try:
        async with create_sessionmaker(engine)() as s:
            s.add(Jurisdiction(id="4403", parent_id=None, level="city", name="深圳市", sort=0))
            await s.flush()
            await create_user(
                s,
                username="alice",
                password="correct horse battery",
                role=Role.DUTY,
                jurisdiction_id="4403",
                actor="test",
                now=T0,
            )
            _, secret = await create_credential(
                s,
                kind=CredentialKind.API_KEY,
                name="vendor",
                jurisdiction_id="4403",
                actor="test",
                now=T0,
            )
            for i in range(5):
                await audit.record(
                    s,
                    actor="test",
                    action="thing.done",
                    target_type="thing",
                    target_id=str(i),
                    details={"i": i, "名": "值"},
                    at=T0 + timedelta(seconds=i),
                )
            await s.commit()
        async with create_sessionmaker(engine)() as s:
            assert await authenticate(s, "alice", "correct horse battery") is not None
            assert await authenticate(s, "alice", "wrong") is None
            assert await resolve_credential(s, secret) is not None
            assert await resolve_credential(s, secret + "x") is None
    finally:
        await engine.dispose()


def _cli(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTER_")}
    env["CENTER_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_audit_chain_verify_and_tamper(database_url: str, tmp_path: Path) -> None:
    await _seeded(database_url)
    ok = _cli(database_url, tmp_path, "verify-audit")
    assert ok.returncode == 0, ok.stderr
    assert "chain intact" in ok.stdout
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            target = (
                await s.execute(select(AuditEntry).where(AuditEntry.target_id == "2"))
            ).scalar_one()
            await s.execute(
                update(AuditEntry).where(AuditEntry.id == target.id).values(details='{"i": 99}')
            )
            await s.commit()
            broken_id = target.id
    finally:
        await engine.dispose()
    bad = _cli(database_url, tmp_path, "verify-audit")
    assert bad.returncode == 1
    assert f"BROKEN at entry {broken_id}" in bad.stdout


async def test_audit_detects_deleted_tail(sqlite_url: str, tmp_path: Path) -> None:
    await _seeded(sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        async with create_sessionmaker(engine)() as s:
            last = (
                await s.execute(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
            ).scalar_one()
            await s.execute(AuditEntry.__table__.delete().where(AuditEntry.id == last))
            await s.commit()
            result = await audit.verify_chain(s)
    finally:
        await engine.dispose()
    assert not result.ok and "deleted" in result.reason


async def test_cli_create_user_and_key(database_url: str, tmp_path: Path) -> None:
    await _seeded(database_url)
    r = _cli(
        database_url,
        tmp_path,
        "create-user",
        "--username",
        "bob",
        "--role",
        "street",
        "--jurisdiction",
        "4403",
    )
    assert r.returncode == 0, r.stderr
    assert "password:" in r.stdout
    r = _cli(database_url, tmp_path, "create-user", "--username", "bob", "--role", "street")
    assert r.returncode == 2 and "already exists" in r.stderr
    r = _cli(database_url, tmp_path, "create-key", "--name", "kiosk", "--kind", "device_token")
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1].startswith("dt_")
    r = _cli(database_url, tmp_path, "create-key", "--name", "x", "--jurisdiction", "nowhere")
    assert r.returncode == 2 and "unknown jurisdiction" in r.stderr
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            actions = (await s.execute(select(AuditEntry.action))).scalars().all()
    finally:
        await engine.dispose()
    assert actions.count("user.create") == 2 and "device_token.create" in actions
