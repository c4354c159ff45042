"""Evidence kept on an alarm's timeline: uploaded files, spot-check snapshots, recordings.

Files are checked by content, not by name or declared type (JPEG, PNG and PDF magic bytes),
streamed to disk with a hard size limit, and stored under ``<data_dir>/evidence`` named by
their SHA-256 — identical uploads share one file, and the name itself proves the content.
The row, the timeline event and the audit entry commit together; a file whose row did not
commit is harmless (content-addressed, unreferenced).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import unquote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.alarm_log import record_alarm_event
from alerts.workflow_schema import AlarmEvidence, EvidenceKind
from center.authz import Principal
from center.clock import Clock
from center.errors import (
    EvidenceCorrupt,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

_LOGGER = logging.getLogger(__name__)

_MAGIC: Final = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


def sniff(head: bytes) -> str | None:
    """The content type by magic bytes, or None for anything else."""
    for magic, ctype in _MAGIC:
        if head.startswith(magic):
            return ctype
    return None


class ChunkSource(Protocol):
    async def read_chunk(self, size: int = ...) -> bytes: ...


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    size: int
    content_type: str
    relpath: str


def evidence_json(e: AlarmEvidence) -> dict[str, Any]:
    return {
        "id": e.id,
        "alarm_id": e.alarm_id,
        "kind": e.kind,
        "filename": e.filename,
        "content_type": e.content_type,
        "size": e.size,
        "sha256": e.sha256,
        "note": e.note,
        "uploaded_by": e.uploaded_by,
        "uploaded_at": e.uploaded_at.isoformat(),
        "url": f"/api/v1/evidence/{e.id}",
    }


async def _chunks(source: ChunkSource) -> AsyncIterator[bytes]:
    while True:
        chunk = await source.read_chunk(65536)
        if not chunk:
            return
        yield chunk


class EvidenceStore:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        data_dir: str | os.PathLike[str],
        *,
        max_bytes: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.root = Path(data_dir) / "evidence"
        self.max_bytes = max_bytes

    async def store(self, source: ChunkSource | AsyncIterator[bytes]) -> StoredFile:
        """Stream to a temporary file, checking type and size; then move into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".upload-{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        size = 0
        ctype: str | None = None
        head = b""
        chunks = source if hasattr(source, "__aiter__") else _chunks(source)  # type: ignore[arg-type]
        try:
            with tmp.open("wb") as fh:
                async for chunk in chunks:  # type: ignore[union-attr]
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLarge(
                            f"evidence files are limited to {self.max_bytes} bytes",
                            details={"max_bytes": self.max_bytes},
                        )
                    if ctype is None:
                        head += chunk
                        if len(head) >= 8 or size >= 8:
                            ctype = sniff(head)
                            if ctype is None:
                                raise UnsupportedMediaType(
                                    "evidence must be a JPEG or PNG image or a PDF document"
                                )
                    digest.update(chunk)
                    fh.write(chunk)
            if ctype is None:
                ctype = sniff(head)
            if ctype is None or size == 0:
                raise UnsupportedMediaType("evidence must be a JPEG or PNG image or a PDF document")
            sha = digest.hexdigest()
            rel = f"{sha[:2]}/{sha}"
            dest = self.root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(os.replace, tmp, dest)
            return StoredFile(sha, size, ctype, rel)
        finally:
            tmp.unlink(missing_ok=True)

    async def save(
        self,
        principal: Principal,
        alarm_id: int,
        source: ChunkSource | AsyncIterator[bytes],
        *,
        filename: str,
        note: str = "",
        kind: str = EvidenceKind.FILE,
    ) -> dict[str, Any]:
        stored = await self.store(source)
        return await self.record(principal.actor, alarm_id, stored, filename, note, kind)

    async def record(
        self,
        actor: str,
        alarm_id: int,
        stored: StoredFile,
        filename: str,
        note: str,
        kind: str,
    ) -> dict[str, Any]:
        """Row + timeline + audit for a stored file (snapshots and recordings come here)."""
        now = self._clock.now()
        name = unquote(filename).replace("\\", "/")
        safe_name = os.path.basename(name)[:200] or "upload"
        async with self._sessionmaker() as session:
            item = AlarmEvidence(
                alarm_id=alarm_id,
                kind=kind,
                filename=safe_name,
                content_type=stored.content_type,
                size=stored.size,
                sha256=stored.sha256,
                path=stored.relpath,
                note=note.strip(),
                uploaded_by=actor,
                uploaded_at=now,
            )
            session.add(item)
            await session.flush()
            data = {
                "evidence_id": item.id,
                "kind": kind,
                "filename": safe_name,
                "content_type": stored.content_type,
                "size": stored.size,
                "sha256": stored.sha256,
            }
            await record_alarm_event(
                session,
                alarm_id=alarm_id,
                at=now,
                type="evidence",
                actor=actor,
                note=item.note,
                data=data,
                audit_action="alarm.evidence",
                audit_details=data,
            )
            await session.commit()
        _LOGGER.info(
            "alarm %s: evidence %s (%s bytes) by %s", alarm_id, item.id, stored.size, actor
        )
        return evidence_json(item)

    async def list(self, alarm_id: int) -> list[dict[str, Any]]:
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(AlarmEvidence)
                .where(AlarmEvidence.alarm_id == alarm_id)
                .order_by(AlarmEvidence.id)
            )
            return [evidence_json(e) for e in rows.scalars()]

    async def open(self, evidence_id: int) -> tuple[AlarmEvidence, Path]:
        """The row and the file path, after re-checking the file's SHA-256."""
        async with self._sessionmaker() as session:
            item = await session.get(AlarmEvidence, evidence_id)
        if item is None:
            raise NotFound("no such evidence")
        path = self.root / item.path
        actual = await asyncio.to_thread(_sha256_file, path)
        if actual != item.sha256:
            _LOGGER.error("evidence %s: file missing or altered (%s)", item.id, actual)
            raise EvidenceCorrupt(
                "the evidence file is missing or does not match its recorded SHA-256"
            )
        return item, path


def _sha256_file(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None
