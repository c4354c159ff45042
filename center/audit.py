"""The tamper-evident audit log.

Each entry stores the SHA-256 of the previous entry's hash plus its own canonical content,
so editing, deleting or reordering any row breaks the chain from there on. Appends are
serialised through the single ``audit_head`` row (locked ``FOR UPDATE`` on PostgreSQL; SQLite
serialises writers anyway), which keeps the chain linear across instances. The caller owns
the transaction: the audit entry commits or rolls back together with the change it records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from center.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def canonical(
    entry_id: int,
    at: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    details: str,
) -> str:
    return json.dumps(
        [
            entry_id,
            at.isoformat(timespec="microseconds"),
            actor,
            action,
            target_type,
            target_id,
            details,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def chain_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


async def record(
    session: AsyncSession,
    *,
    actor: str | None,
    action: str,
    target_type: str = "",
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime,
) -> AuditEntry:
    """Append one entry in the caller's transaction (the caller commits)."""
    head_stmt = select(AuditHead).where(AuditHead.id == 1)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        head_stmt = head_stmt.with_for_update()
    head = (await session.execute(head_stmt)).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(head)
        await session.flush()
    at = at.replace(microsecond=at.microsecond)  # keep µs; the column stores them
    details_json = json.dumps(details or {}, ensure_ascii=False, sort_keys=True, default=str)
    entry_id = head.last_id + 1
    content = canonical(
        entry_id, at, actor or "", action, target_type, target_id or "", details_json
    )
    digest = chain_hash(head.last_hash, content)
    entry = AuditEntry(
        id=entry_id,
        at=at,
        actor=actor or "",
        action=action,
        target_type=target_type,
        target_id=target_id or "",
        details=details_json,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(entry)
    await session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(last_id=entry_id, last_hash=digest)
    )
    await session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_id: int | None = None
    reason: str = ""


async def _iter_entries(session: AsyncSession, batch: int = 5000) -> AsyncIterator[AuditEntry]:
    last = 0
    while True:
        rows = (
            (
                await session.execute(
                    select(AuditEntry)
                    .where(AuditEntry.id > last)
                    .order_by(AuditEntry.id)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].id


async def verify_chain(session: AsyncSession) -> VerifyResult:
    """Walk the whole log; report the first entry whose link or content does not match."""
    prev = GENESIS
    expected_id = 1
    checked = 0
    async for e in _iter_entries(session):
        if e.id != expected_id:
            return VerifyResult(False, checked, expected_id, f"entry {expected_id} is missing")
        if e.prev_hash != prev:
            return VerifyResult(False, checked, e.id, "prev_hash does not match the entry before")
        content = canonical(e.id, e.at, e.actor, e.action, e.target_type, e.target_id, e.details)
        if chain_hash(prev, content) != e.hash:
            return VerifyResult(False, checked, e.id, "content does not match its hash (edited)")
        prev = e.hash
        expected_id += 1
        checked += 1
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one_or_none()
    if head is not None and (head.last_id != checked or head.last_hash != prev):
        return VerifyResult(
            False,
            checked,
            checked + 1 if head.last_id > checked else head.last_id,
            "the log ends before the recorded head (entries deleted at the end)",
        )
    return VerifyResult(True, checked)
