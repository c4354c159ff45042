"""Liveness of a live challenge, judged from facial landmarks across the challenge window.

dlib's 68-point shape predictor (``face_recognition_models``) gives, per frame, the head's
yaw — where the nose tip sits between the jaw's two ends, -0.5 … 0.5, 0 facing the camera —
and the eyes' opening (the eye aspect ratio, EAR: about 0.3 open, under 0.2 closed). A head
turn is a change of yaw from the window's first frames; a blink is an EAR dip and recovery.
A still photo held to the camera does neither: every reading stays where it started, and
the verdict is ``failed``. Too few frames with one face is ``undecided``. The officer sees
the verdict and the series (``evidence``) beside the video, and still decides.

Synchronous and CPU-bound, like :mod:`alerts.faces`: run it in the face worker pool.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

Challenge = Literal["turn_left", "turn_right", "blink"]
Verdict = Literal["passed", "failed", "undecided"]
CHALLENGES: Final[tuple[str, ...]] = ("turn_left", "turn_right", "blink")

MIN_FRAMES: Final = 4
"""Frames with exactly one face needed for any verdict."""
TURN_YAW: Final = 0.08
"""Yaw change (of the face's width) that counts as a head turn."""
STILL_YAW: Final = 0.02
EAR_CLOSED: Final = 0.2
EAR_OPEN: Final = 0.25


@dataclass(frozen=True, slots=True)
class Pose:
    """One frame's reading: the head's yaw and the mean eye aspect ratio."""

    yaw: float
    ear: float


@dataclass(frozen=True, slots=True)
class Liveness:
    challenge: str
    verdict: Verdict
    reason: str
    poses: tuple[Pose | None, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "challenge": self.challenge,
            "verdict": self.verdict,
            "evidence": {
                "reason": self.reason,
                "frames": len(self.poses),
                "yaw": [None if p is None else round(p.yaw, 3) for p in self.poses],
                "ear": [None if p is None else round(p.ear, 3) for p in self.poses],
            },
        }


def _ear(points: NDArray[np.float64]) -> float:
    """Eye aspect ratio of six eye landmarks (Soukupová and Čech, 2016)."""
    a = math.dist(points[1], points[5])
    b = math.dist(points[2], points[4])
    c = math.dist(points[0], points[3])
    return (a + b) / (2 * c) if c else 0.0


def pose_of(landmarks: NDArray[np.float64]) -> Pose:
    """The pose from dlib's 68 landmarks (jaw 0-16, nose tip 30, eyes 36-41 and 42-47)."""
    left, right = landmarks[0][0], landmarks[16][0]
    width = right - left
    yaw = ((landmarks[30][0] - (left + right) / 2) / width) if width else 0.0
    ear = (_ear(landmarks[36:42]) + _ear(landmarks[42:48])) / 2
    return Pose(float(yaw), float(ear))


class LandmarkModel:
    """The detector and the 68-point predictor, loaded once per worker process."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(frm.pose_predictor_model_location())

    def pose(self, rgb: NDArray[np.uint8]) -> Pose | None:
        """The frame's pose, or None unless it shows exactly one face."""
        rects, scores, _ = self._detector.run(rgb, 1 if max(rgb.shape[:2]) <= 800 else 0, 0.0)
        faces = [r for r, s in zip(rects, scores, strict=True) if s >= 0.5]
        if len(faces) != 1:
            return None
        shape = self._shape(rgb, faces[0])
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        return pose_of(points)

    def judge(self, challenge: str, frames: Sequence[NDArray[np.uint8]]) -> Liveness:
        return judge(challenge, [self.pose(f) for f in frames])


def judge(challenge: str, poses: Sequence[Pose | None]) -> Liveness:
    """The verdict of ``challenge`` from the poses of the window's frames, in order."""
    seen = [p for p in poses if p is not None]
    kept = tuple(poses)
    if challenge not in CHALLENGES:
        return Liveness(challenge, "undecided", "not a challenge judged automatically", kept)
    if len(seen) < MIN_FRAMES:
        return Liveness(challenge, "undecided", f"one face in {len(seen)} frames only", kept)
    start = float(np.median([p.yaw for p in seen[:2]]))
    yaws = [p.yaw - start for p in seen]
    ears = [p.ear for p in seen]
    if challenge == "blink":
        closed = [i for i, e in enumerate(ears) if e < EAR_CLOSED]
        if closed and ears[0] >= EAR_OPEN and any(e >= EAR_OPEN for e in ears[closed[0] :]):
            return Liveness(challenge, "passed", "the eyes closed and opened again", kept)
        return Liveness(challenge, "failed", "no blink: the eyes never closed and opened", kept)
    toward = max(yaws) if challenge == "turn_left" else -min(yaws)
    if toward >= TURN_YAW:
        return Liveness(challenge, "passed", f"the head turned by {toward:.2f}", kept)
    if max(abs(y) for y in yaws) < STILL_YAW:
        return Liveness(
            challenge, "failed", "no motion: the head never moved (a still photo?)", kept
        )
    return Liveness(
        challenge, "failed", f"the head turned by {toward:.2f} only, or the other way", kept
    )
