"""Backup and restore of an embedded (SQLite) center: one tar file with a manifest.

The database is copied with SQLite's online backup API in a single step, which reads one
consistent snapshot while the center keeps writing (WAL mode: writers are not blocked), so
everything committed before the backup began is in the copy. Recordings, snapshots and
evidence files go into the same archive, each read exactly once while its SHA-256 is computed,
so the manifest describes the bytes that were archived even if a recording is still growing.

Restore refuses while any center holds the data directory (:mod:`center.datalock`), checks
every archived file against the manifest and the database's audit chain *before* it replaces
anything, and keeps the database it replaces under ``<data_dir>/pre-restore-<time>/``.

PostgreSQL deployments back up with ``pg_dump``/``pg_restore`` (README); these commands refuse
a PostgreSQL ``database_url`` rather than silently archiving only the files.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from center.audit import VerifyResult, record, verify_chain
from center.clock import Clock
from center.datalock import DataDirLock
from center.db import create_engine, create_sessionmaker
from config.settings import Settings

_LOGGER = logging.getLogger(__name__)

FORMAT = "center-backup/1"
MANIFEST = "manifest.json"
DATABASE = "center.db"
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class FileRoots:
    """Where each kind of archived file lives for these settings."""

    database: Path
    dirs: dict[str, Path]

    @classmethod
    def of(cls, settings: Settings) -> FileRoots:
        if not settings.database_url_resolved.startswith("sqlite"):
            raise BackupError(
                "the database is PostgreSQL: back it up with pg_dump and restore it with "
                "pg_restore (README, 'Backup and restore'), and copy the data directory's "
                "recordings, snapshots and evidence folders"
            )
        data = Path(settings.data_dir).resolve()
        return cls(
            database=data / DATABASE,
            dirs={
                "recordings": Path(settings.recordings_dir or data / "recordings").resolve(),
                "snapshots": Path(settings.snapshots_dir or data / "snapshots").resolve(),
                "evidence": data / "evidence",
            },
        )


@dataclass(slots=True)
class BackupResult:
    path: Path
    files: int
    bytes: int
    audit_entries: int
    manifest: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        return f"BackupResult({str(self.path)!r}, files={self.files}, bytes={self.bytes})"


class _HashingReader(io.RawIOBase):
    """Reads at most ``size`` bytes of ``raw`` and hashes exactly what was handed out."""

    def __init__(self, raw: IO[bytes], size: int) -> None:
        self._raw = raw
        self._left = size
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._left:
            n = self._left
        data = self._raw.read(n)
        if len(data) < n:  # the file shrank under us: pad so the tar member stays whole
            data += b"\0" * (n - len(data))
        self._left -= len(data)
        self.sha.update(data)
        return data


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _walk(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                yield p


def _copy_database(source: Path, target: Path) -> dict[str, Any]:
    """One-step online backup; returns the copy's audit head for the manifest."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}; run 'python run.py migrate' first")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: the whole database from one read snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy stands alone: no -wal file
        try:
            row = dst.execute("SELECT last_id, last_hash FROM audit_head WHERE id = 1").fetchone()
        except sqlite3.OperationalError:
            row = None
    finally:
        dst.close()
        src.close()
    return {"entries": row[0] if row else 0, "last_hash": row[1] if row else ""}


def take_backup(settings: Settings, dest: str | os.PathLike[str], now: datetime) -> BackupResult:
    """Write the archive to ``dest`` (atomically: a partial file never carries its name).

    Blocking (file I/O); the scheduled task runs it in a worker thread."""
    roots = FileRoots.of(settings)
    dest_path = Path(dest).resolve()
    dest_path.parent.mkdir(parents=True, exist_ok=True)
    mode = "w:gz" if dest_path.name.endswith((".gz", ".tgz")) else "w"
    total = 0
    files: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=dest_path.parent, prefix=".backup-") as tmp:
        db_copy = Path(tmp) / DATABASE
        audit = _copy_database(roots.database, db_copy)
        part = Path(tmp) / "archive.part"
        with tarfile.open(part, mode) as tar:  # type: ignore[call-overload]
            tar.add(db_copy, arcname=DATABASE)
            for kind, root in roots.dirs.items():
                for p in _walk(root):
                    if p.is_relative_to(dest_path.parent) and dest_path.parent.is_relative_to(root):
                        continue  # earlier backups (or this one) kept under a file folder
                    arcname = f"{kind}/{p.relative_to(root).as_posix()}"
                    with p.open("rb") as fh:
                        size = os.fstat(fh.fileno()).st_size
                        info = tar.gettarinfo(fileobj=fh, arcname=arcname)
                        info.size = size
                        reader = _HashingReader(fh, size)
                        tar.addfile(info, reader)  # type: ignore[arg-type]
                    files.append({"path": arcname, "sha256": reader.sha.hexdigest(), "bytes": size})
                    total += size
            manifest = {
                "format": FORMAT,
                "created_at": now.isoformat(),
                "database": {
                    "path": DATABASE,
                    "sha256": _sha256(db_copy),
                    "bytes": db_copy.stat().st_size,
                },
                "audit": audit,
                "files": files,
            }
            raw = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(raw)
            info.mtime = int(now.timestamp())
            tar.addfile(info, io.BytesIO(raw))
        os.replace(part, dest_path)
    return BackupResult(dest_path, len(files), total, int(audit["entries"]), manifest)


def _safe_member(name: str) -> bool:
    p = Path(name)
    return not p.is_absolute() and ".." not in p.parts


def _verify_archive(tar: tarfile.TarFile, into: Path) -> dict[str, Any]:
    """Extract into ``into`` and check every member against the manifest."""
    try:
        member = tar.getmember(MANIFEST)
        fh = tar.extractfile(member)
        manifest = json.loads(fh.read() if fh else b"")
    except (KeyError, ValueError) as exc:
        raise BackupError(f"the archive has no readable {MANIFEST}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"the archive's format is {manifest.get('format')!r}, not {FORMAT}")
    expected = {DATABASE: manifest["database"]["sha256"]}
    expected.update({f["path"]: f["sha256"] for f in manifest["files"]})
    seen: set[str] = set()
    for m in tar:
        if m.name == MANIFEST:
            continue
        if not m.isfile() or not _safe_member(m.name) or m.name not in expected:
            raise BackupError(f"the archive holds {m.name!r}, which its manifest does not list")
        src = tar.extractfile(m)
        if src is None:
            raise BackupError(f"cannot read {m.name!r} from the archive")
        target = into / m.name
        target.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        with target.open("wb") as out:
            while chunk := src.read(_CHUNK):
                sha.update(chunk)
                out.write(chunk)
        if sha.hexdigest() != expected[m.name]:
            raise BackupError(f"{m.name} does not match its SHA-256 in the manifest")
        seen.add(m.name)
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"the archive lacks {len(missing)} listed file(s), e.g. {missing[0]}")
    return dict(manifest)


async def verify_database(path: Path) -> VerifyResult:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with create_sessionmaker(engine)() as session:
            return await verify_chain(session)
    finally:
        await engine.dispose()


async def _note_restore(path: Path, source: Path, manifest: dict[str, Any], now: datetime) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with create_sessionmaker(engine)() as session:
            await record(
                session,
                actor="cli:restore",
                action="backup.restored",
                target_type="backup",
                target_id=source.name,
                details={"created_at": manifest["created_at"], "files": len(manifest["files"])},
                at=now,
            )
            await session.commit()
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class RestoreResult:
    files: int
    audit: VerifyResult
    kept: Path | None


def restore_backup(
    settings: Settings, source: str | os.PathLike[str], now: datetime
) -> RestoreResult:
    """Replace the database and archived files with the archive's, or change nothing.

    :class:`center.datalock.DataDirBusy` while a center runs on the data directory."""
    roots = FileRoots.of(settings)
    src = Path(source).resolve()
    if not src.is_file():
        raise BackupError(f"there is no backup file {src}")
    data = Path(settings.data_dir).resolve()
    with DataDirLock(data).acquire(exclusive=True):
        with tempfile.TemporaryDirectory(dir=data, prefix=".restore-") as tmp:
            staged = Path(tmp)
            try:
                with tarfile.open(src, "r:*") as tar:
                    manifest = _verify_archive(tar, staged)
            except tarfile.TarError as exc:
                raise BackupError(f"{src} is not a readable backup archive: {exc}") from None
            audit = asyncio.run(verify_database(staged / DATABASE))
            if not audit.ok:
                raise BackupError(
                    f"the backup's audit log is broken at entry {audit.broken_id}: "
                    f"{audit.reason}; nothing was restored"
                )
            kept: Path | None = None
            old = [roots.database.with_name(roots.database.name + s) for s in ("", "-wal", "-shm")]
            if any(p.exists() for p in old):
                kept = data / f"pre-restore-{now.strftime('%Y%m%dT%H%M%SZ')}"
                kept.mkdir(exist_ok=True)
                for p in old:
                    if p.exists():
                        shutil.move(p, kept / p.name)
            shutil.move(staged / DATABASE, roots.database)
            for entry in manifest["files"]:
                kind, _, rel = entry["path"].partition("/")
                target = roots.dirs[kind] / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged / entry["path"], target)
        asyncio.run(_note_restore(roots.database, src, manifest, now))
    return RestoreResult(len(manifest["files"]), audit, kept)


def _backup_name(now: datetime) -> str:
    return f"center-{now.strftime('%Y%m%dT%H%M%SZ')}.tar"


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest scheduled backups (their names sort by time)."""
    ours = sorted(directory.glob("center-*.tar"))
    gone = ours[: max(0, len(ours) - keep)]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def backup_dir(settings: Settings) -> Path:
    return Path(settings.backup_dir or Path(settings.data_dir) / "backups").resolve()


class BackupSchedule:
    """Takes a backup every ``backup_interval_h`` hours of the clock, keeps ``backup_keep``."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.taken = 0
        self.failed = 0
        self.last_success: datetime | None = None

    def __repr__(self) -> str:
        return f"BackupSchedule(every {self.settings.backup_interval_h} h, taken={self.taken})"

    async def run(self) -> None:
        interval = self.settings.backup_interval_h * 3600
        directory = backup_dir(self.settings)
        while True:
            await self.clock.sleep(interval)
            now = self.clock.now()
            try:
                result = await asyncio.to_thread(
                    take_backup, self.settings, directory / _backup_name(now), now
                )
                await asyncio.to_thread(prune, directory, self.settings.backup_keep)
            except (OSError, sqlite3.Error, BackupError, tarfile.TarError):
                self.failed += 1
                _LOGGER.exception("scheduled backup into %s failed", directory)
                continue
            self.taken += 1
            self.last_success = now
            _LOGGER.info("scheduled backup %s: %s files", result.path.name, result.files)
