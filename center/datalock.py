"""Who is using a data directory: running centers share it, a restore needs it alone.

Every running instance holds a *shared* ``flock`` on ``<data_dir>/center.lock``; ``run.py
restore`` takes an *exclusive* one without waiting, so it refuses while any center runs on that
directory and a center refuses to start while a restore is writing. The kernel drops a lock
when its process dies, so a crashed center (or ``kill -9``) never leaves a stale lock behind,
unlike a pid file; and unlike a port probe it does not depend on which address or port the
center was configured with. The file also says which process took the lock last, for the
operator reading the refusal.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_FILE = "center.lock"


class DataDirBusy(RuntimeError):
    """The data directory is locked the other way (a center runs, or a restore is writing)."""


class DataDirLock:
    """One ``flock`` on a data directory; :meth:`release` is idempotent."""

    __slots__ = ("_exclusive", "_fd", "path")

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._fd: int | None = None
        self._exclusive = False

    def __repr__(self) -> str:
        state = "free" if self._fd is None else ("exclusive" if self._exclusive else "shared")
        return f"DataDirLock({str(self.path)!r}, {state})"

    def acquire(self, *, exclusive: bool) -> DataDirLock:
        """Take the lock without waiting; :class:`DataDirBusy` says who holds it otherwise."""
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            os.close(fd)
            who = f" (last taken by {holder})" if holder else ""
            if exclusive:
                raise DataDirBusy(
                    f"a center is running on the data directory {self.path.parent}{who}; "
                    "stop every instance that uses it first"
                ) from None
            raise DataDirBusy(
                f"a restore is writing the data directory {self.path.parent}{who}; "
                "start the center when it has finished"
            ) from None
        self._fd = fd
        self._exclusive = exclusive
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        return self

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
