"""Administrator commands behind ``python run.py <command>`` (no server needed)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tarfile
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from center.audit import verify_chain
from center.backup import BackupError, restore_backup, take_backup
from center.clock import RealClock
from center.datalock import DataDirBusy
from center.db import create_engine, create_sessionmaker
from center.errors import CenterError, NotFound
from center.identity import create_credential, create_user, new_password
from center.jurisdictions import JurisdictionTree
from center.migrate import migrate
from center.models import CredentialKind, Role, Subject, User
from center.revocation import disable_user, revoke_credential
from config.settings import Settings

T = TypeVar("T")


async def _with_session(settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from pathlib import Path

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url_resolved)
    try:
        await migrate(engine)
        async with create_sessionmaker(engine)() as session:
            return await fn(session)
    finally:
        await engine.dispose()


def run_migrate(settings: Settings) -> int:
    async def noop(_: AsyncSession) -> None:
        return None

    asyncio.run(_with_session(settings, noop))
    print("database schema is up to date")
    return 0


def run_create_user(settings: Settings, args: Any) -> int:
    password = args.password or new_password()

    async def go(session: AsyncSession) -> None:
        tree = await JurisdictionTree.load(session)
        jur = args.jurisdiction or next((n.id for n in tree.roots()), None)
        subject_id = getattr(args, "subject_id", None)
        if (args.role == Role.SUBJECT) != bool(subject_id):
            raise CenterError("--subject-id goes with --role subject, and only with it")
        if subject_id:
            subject = await session.get(Subject, subject_id)
            if subject is None:
                raise CenterError(f"unknown subject {subject_id!r}")
            if await session.scalar(select(User.id).where(User.subject_id == subject_id)):
                raise CenterError(f"subject {subject_id!r} already has a login")
            jur = subject.street_id
        if jur is None or jur not in tree:
            raise CenterError(
                f"unknown jurisdiction {args.jurisdiction!r}; seed or create it first"
            )
        user = await create_user(
            session,
            username=args.username,
            password=password,
            role=Role(args.role),
            jurisdiction_id=jur,
            display_name=args.display_name or args.username,
            actor="cli:create-user",
            now=RealClock().now(),
        )
        user.subject_id = subject_id or None
        await session.commit()

    try:
        asyncio.run(_with_session(settings, go))
    except CenterError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    print(f"created user {args.username} ({args.role})")
    if not args.password:
        print(f"password: {password}")
    return 0


def run_create_key(settings: Settings, args: Any) -> int:
    kind = CredentialKind.DEVICE_TOKEN if args.kind == "device_token" else CredentialKind.API_KEY

    async def go(session: AsyncSession) -> str:
        tree = await JurisdictionTree.load(session)
        jur = args.jurisdiction or next((n.id for n in tree.roots()), None)
        if jur is None or jur not in tree:
            raise CenterError(
                f"unknown jurisdiction {args.jurisdiction!r}; seed or create it first"
            )
        _, secret = await create_credential(
            session,
            kind=kind,
            name=args.name,
            jurisdiction_id=jur,
            actor="cli:create-key",
            now=RealClock().now(),
        )
        await session.commit()
        return secret

    try:
        secret = asyncio.run(_with_session(settings, go))
    except CenterError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    print(f"created {kind} {args.name!r}; it is shown only once:")
    print(secret)
    return 0


def run_revoke_key(settings: Settings, args: Any) -> int:
    """Running instances read the revocation from the database within a second (and drop
    the key's cache entry and websockets), so no bus is needed from here."""

    async def go(session: AsyncSession) -> tuple[str, bool]:
        cred, revoked = await revoke_credential(
            session,
            cred_id=args.id,
            name=args.name,
            actor="cli:revoke-key",
            now=RealClock().now(),
        )
        await session.commit()
        return f"{cred.kind} {cred.name!r} ({cred.id})", revoked is not None

    try:
        what, changed = asyncio.run(_with_session(settings, go))
    except CenterError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    print(f"revoked {what}" if changed else f"{what} was already revoked")
    return 0


def run_disable_user(settings: Settings, args: Any) -> int:
    async def go(session: AsyncSession) -> bool:
        user = await session.scalar(select(User).where(User.username == args.username))
        if user is None:
            raise NotFound(f"no user {args.username!r}")
        revoked = await disable_user(session, user, actor="cli:disable-user", now=RealClock().now())
        await session.commit()
        return revoked is not None

    try:
        changed = asyncio.run(_with_session(settings, go))
    except CenterError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    print(
        f"disabled {args.username}; every session ended"
        if changed
        else f"{args.username} was already disabled"
    )
    return 0


def run_verify_audit(settings: Settings) -> int:
    result = asyncio.run(_with_session(settings, verify_chain))
    if result.ok:
        print(f"audit log OK: {result.checked} entries, chain intact")
        return 0
    print(
        f"audit log BROKEN at entry {result.broken_id}: {result.reason} "
        f"({result.checked} entries verified before it)"
    )
    return 1


def run_backup(settings: Settings, dest: str) -> int:
    try:
        result = take_backup(settings, dest, RealClock().now())
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error, tarfile.TarError) as err:
        print(f"error: the backup into {dest} failed: {err}", file=sys.stderr)
        return 1
    print(
        f"backup written to {result.path}: database with {result.audit_entries} audit entries, "
        f"{result.files} files ({result.bytes} bytes), SHA-256 in manifest.json"
    )
    return 0


def run_restore(settings: Settings, source: str) -> int:
    """Exit 3 when a center holds the data directory, 1 when the archive fails a check."""
    try:
        result = restore_backup(settings, source, RealClock().now())
    except DataDirBusy as err:
        print(f"error: refusing to restore: {err}", file=sys.stderr)
        return 3
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as err:
        print(f"error: the restore from {source} failed: {err}", file=sys.stderr)
        return 1
    if result.kept:
        print(f"the database it replaced is kept in {result.kept}")
    print(
        f"restored {result.files} files (SHA-256 checked against the manifest); "
        f"audit log OK: {result.audit.checked} entries, chain intact"
    )
    return 0


def run_settings(write_readme: bool) -> int:
    """Print the settings table, or rewrite it between the README's markers."""
    import re
    from pathlib import Path

    from config.settings import settings_table_markdown

    table = settings_table_markdown()
    if not write_readme:
        print(table)
        return 0
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    text = re.sub(
        r"(<!-- settings-table:start -->\n).*?(<!-- settings-table:end -->)",
        lambda m: m.group(1) + table + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    readme.write_text(text, encoding="utf-8")
    print(f"updated the configuration table in {readme}")
    return 0
