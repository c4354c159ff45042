"""``run.py backup`` / ``run.py restore`` as an operator runs them, against a real server."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from center.backup import BackupSchedule, backup_dir, prune
from center.clock import FakeClock
from center.datalock import DataDirBusy, DataDirLock
from config.settings import load_settings
from tests.procs import ROOT, ServerProcess, start_server

QUIET = {
    "CENTER_ALARM_CATCHUP_H": "0",
    "CENTER_CHECKIN_PLAN_STRICT": "mon 00:00-00:01",
    "CENTER_CHECKIN_PLAN_NORMAL": "mon 00:00-00:01",
    "CENTER_CHECKIN_PLAN_LENIENT": "mon 00:00-00:01",
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(ROOT),
        env=env,
    )


class CheckinWriter(threading.Thread):
    """Posts check-ins one by one; remembers each one the server acknowledged (201)."""

    def __init__(self, server: ServerProcess, subject_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.url = f"{server.url}/api/v1/checkins"
        self.key = server.credentials()["integration_key"]
        self.subjects = subject_ids
        self.acked: list[str] = []
        self.failed: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            event_id = f"bk-{n}"
            body = {
                "event_id": event_id,
                "subject_id": self.subjects[n % len(self.subjects)],
                "at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
                "source": "app",
            }
            req = urllib.request.Request(
                self.url,
                data=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    if resp.status == 201:  # accepted and stored
                        self.acked.append(event_id)
                    else:
                        self.failed.append(f"{event_id}: {resp.status}")
            except (urllib.error.URLError, OSError) as err:
                self.failed.append(f"{event_id}: {err}")


def _subjects(data: Path) -> list[str]:
    with sqlite3.connect(data / "center.db") as db:
        return [r[0] for r in db.execute("SELECT id FROM subjects LIMIT 50")]


def _event_ids(data: Path) -> set[str]:
    with sqlite3.connect(data / "center.db") as db:
        return {r[0] for r in db.execute("SELECT event_id FROM checkins")}


@pytest.mark.slow
def test_backup_under_writes_restores_everything_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "evidence" / "7").mkdir(parents=True)
    (data / "evidence" / "7" / "photo.jpg").write_bytes(b"\xff\xd8evidence" * 1000)
    (data / "recordings" / "room1").mkdir(parents=True)
    (data / "recordings" / "room1" / "rec.webm").write_bytes(b"webm" * 5000)
    server = start_server(data, env=QUIET)
    archive = tmp_path / "backup.tar.gz"
    try:
        writer = CheckinWriter(server, _subjects(data))
        writer.start()
        for _ in range(600):
            if len(writer.acked) >= 20 or writer.failed:
                break
            time.sleep(0.05)
        assert len(writer.acked) >= 20, writer.failed[:3]
        before = set(writer.acked)  # acknowledged before the backup began
        done = _run("backup", "--to", str(archive), "--data-dir", str(data))
        during = len(writer.acked) - len(before)
        writer.stop.set()
        writer.join(30)
        assert done.returncode == 0, done.stderr
        assert during > 0, "no check-in was written while the backup ran"
        assert not writer.failed, writer.failed[:3]
    finally:
        server.stop()

    with tarfile.open(archive) as tar:
        fh = tar.extractfile("manifest.json")
        assert fh is not None
        manifest = json.loads(fh.read())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert listed == {
        "evidence/7/photo.jpg": hashlib.sha256(b"\xff\xd8evidence" * 1000).hexdigest(),
        "recordings/room1/rec.webm": hashlib.sha256(b"webm" * 5000).hexdigest(),
    }

    target = tmp_path / "restored"
    done = _run("restore", "--from", str(archive), "--data-dir", str(target))
    assert done.returncode == 0, done.stdout + done.stderr
    verified = _run("verify-audit", "--data-dir", str(target))
    assert verified.returncode == 0, verified.stdout
    assert "chain intact" in verified.stdout
    restored = _event_ids(target)
    assert before <= restored, sorted(before - restored)[:5]
    assert (target / "evidence" / "7" / "photo.jpg").read_bytes() == b"\xff\xd8evidence" * 1000
    assert (target / "recordings" / "room1" / "rec.webm").read_bytes() == b"webm" * 5000


@pytest.mark.slow
def test_restore_refuses_a_running_center_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, env=QUIET)
    archive = tmp_path / "b.tar"
    try:
        assert _run("backup", "--to", str(archive), "--data-dir", str(data)).returncode == 0
        db_before = hashlib.sha256((data / "center.db").read_bytes()).hexdigest()
        done = _run("restore", "--from", str(archive), "--data-dir", str(data))
        assert done.returncode == 3, done.stdout + done.stderr
        assert "a center is running" in done.stderr
        assert hashlib.sha256((data / "center.db").read_bytes()).hexdigest() == db_before
        assert not list(data.glob("pre-restore-*"))
    finally:
        assert server.stop() == 0
    # stopped: the same restore goes through and keeps the database it replaced
    done = _run("restore", "--from", str(archive), "--data-dir", str(data))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(data.glob("pre-restore-*/center.db"))) == 1


def test_restore_refuses_a_tampered_archive(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run("migrate", "--data-dir", str(data)).returncode == 0
    (data / "snapshots").mkdir()
    (data / "snapshots" / "s.jpg").write_bytes(b"original")
    good = tmp_path / "good.tar"
    assert _run("backup", "--to", str(good), "--data-dir", str(data)).returncode == 0
    bad = tmp_path / "bad.tar"
    with tarfile.open(good) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            fh = src.extractfile(m)
            assert fh is not None
            raw = fh.read()
            if m.name == "snapshots/s.jpg":
                raw = b"changed!"
            m.size = len(raw)
            import io

            dst.addfile(m, io.BytesIO(raw))
    target = tmp_path / "target"
    done = _run("restore", "--from", str(bad), "--data-dir", str(target))
    assert done.returncode == 1
    assert "snapshots/s.jpg does not match its SHA-256" in done.stderr
    assert not (target / "center.db").exists()


def test_a_center_holds_the_data_directory_shared(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path).acquire(exclusive=False)
    second = DataDirLock(tmp_path).acquire(exclusive=False)
    with pytest.raises(DataDirBusy, match="a center is running"):
        DataDirLock(tmp_path).acquire(exclusive=True)
    first.release()
    second.release()
    second.release()  # idempotent
    restore = DataDirLock(tmp_path).acquire(exclusive=True)
    with pytest.raises(DataDirBusy, match="a restore is writing"):
        DataDirLock(tmp_path).acquire(exclusive=False)
    restore.release()


async def test_scheduled_backups_on_the_clock_keep_the_newest(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    import asyncio

    from center.cli import run_migrate

    settings = load_settings(
        env={},
        overrides={"data_dir": str(tmp_path), "backup_interval_h": 6, "backup_keep": 2},
    )
    await asyncio.to_thread(run_migrate, settings)
    schedule = BackupSchedule(settings, fake_clock)
    task = asyncio.create_task(schedule.run())
    try:
        for n in range(1, 4):
            await asyncio.sleep(0)
            await fake_clock.advance(hours=6)
            for _ in range(500):
                if schedule.taken == n:
                    break
                await asyncio.sleep(0.01)
            assert schedule.taken == n
        names = sorted(p.name for p in backup_dir(settings).glob("center-*.tar"))
        assert len(names) == 2
        assert names[-1] == f"center-{fake_clock.now().strftime('%Y%m%dT%H%M%SZ')}.tar"
        assert prune(backup_dir(settings), 1) and len(list(backup_dir(settings).iterdir())) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
