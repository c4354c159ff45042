"""The liveness probe behind spot-check challenges: the subject's live video → a verdict.

The media core samples the challenge window (:mod:`media.challenge_window`: media time, a
few frames a second, bounded), the kept frames are stored as JPEG with their SHA-256 (the
evidence of what was judged), and the face pool's workers judge them with
:mod:`alerts.liveness` — never on the event loop. ``alerts`` records the verdict.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from alerts.face_pool import FacePool
from alerts.faces import encode_jpeg
from alerts.spotcheck_ports import SubjectLogin
from media.challenge_window import WindowFrame, sample_window
from media.component import MediaService
from media.errors import NoMediaError, RoomNotFoundError


class LivenessProbe:
    def __init__(
        self,
        service: MediaService,
        pool: FacePool,
        directory: Path,
        *,
        window_s: float,
        fps: float,
        max_frames: int,
        timeout_s: float,
    ) -> None:
        self._service = service
        self._pool = pool
        self._directory = directory
        self._window_s = window_s
        self._fps = fps
        self._max_frames = max_frames
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"LivenessProbe({self._window_s} s at {self._fps} fps)"

    def _forwarder(self, room_id: str, subject: SubjectLogin) -> Any:
        try:
            room = self._service.manager.room(room_id)
        except RoomNotFoundError:
            raise NoMediaError("the call has ended") from None
        for p in room.participants.values():
            if p.principal == subject.principal_key:
                for f in p.publications:
                    if f.kind == "video" and not f.ended:
                        return f
        raise NoMediaError("the subject publishes no video in the call")

    async def __call__(
        self,
        room_id: str,
        subject: SubjectLogin,
        challenge: str,
        *,
        spotcheck_id: int,
        item_id: int,
    ) -> dict[str, Any]:
        frames = await sample_window(
            self._forwarder(room_id, subject),
            duration_s=self._window_s,
            fps=self._fps,
            max_frames=self._max_frames,
            timeout_s=self._timeout_s,
        )
        folder = self._directory / f"spotcheck-{spotcheck_id}" / f"challenge-{item_id}"
        files = await asyncio.to_thread(_store, frames, folder)
        verdict = await self._pool.judge(challenge, [data for data, _ in files])
        out = verdict.as_json()
        out["evidence"]["window_s"] = self._window_s
        out["evidence"]["files"] = [meta for _, meta in files]
        return out


def _store(frames: list[WindowFrame], folder: Path) -> list[tuple[bytes, dict[str, Any]]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n, frame in enumerate(frames):
        data = encode_jpeg(frame.rgb)
        name = f"{n:03d}.jpg"
        (folder / name).write_bytes(data)
        meta = {
            "at_s": frame.at_s,
            "file": f"{folder.parent.name}/{folder.name}/{name}",
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        out.append((data, meta))
    return out
