"""Liveness from landmarks across a challenge window, on frames made from the astronaut
photo: a synthetic head turn passes its direction and fails the other; a still photo
replayed (every frame the same) fails with no motion; no face is undecided."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.liveness import LandmarkModel, Pose, judge
from tests import face_images as fi


@pytest.fixture(scope="module")
def model() -> LandmarkModel:
    return LandmarkModel()


@pytest.fixture(scope="module")
def turning() -> list[fi.Image]:
    return [fi.head_turned(d) for d in (0, 0, 5, 10, 15, 20, 20)]


def test_a_head_turn_passes_its_direction_only(model: LandmarkModel, turning) -> None:
    left = model.judge("turn_left", turning)
    assert left.verdict == "passed", left.reason
    assert model.judge("turn_right", turning).verdict == "failed"
    mirrored = [np.ascontiguousarray(f[:, ::-1]) for f in turning]
    assert model.judge("turn_right", mirrored).verdict == "passed"
    out = left.as_json()
    assert out["challenge"] == "turn_left" and out["verdict"] == "passed"
    assert len(out["evidence"]["yaw"]) == len(turning)
    assert out["evidence"]["yaw"][-1] - out["evidence"]["yaw"][0] >= 0.08


@pytest.mark.parametrize("challenge", ["turn_left", "turn_right", "blink"])
def test_a_still_photo_replayed_fails(model: LandmarkModel, challenge: str) -> None:
    still = [fi.astronaut()] * 8
    verdict = model.judge(challenge, still)
    assert verdict.verdict == "failed", verdict.reason
    if challenge != "blink":
        assert "no motion" in verdict.reason


def test_no_face_is_undecided(model: LandmarkModel) -> None:
    frames = [fi.fake_camera(n) for n in range(6)]
    verdict = model.judge("turn_left", frames)
    assert verdict.verdict == "undecided"
    assert verdict.as_json()["evidence"]["yaw"] == [None] * 6


def test_blink_needs_the_eyes_to_close_and_open_again() -> None:
    def poses(*ears: float) -> list[Pose | None]:
        return [Pose(0.0, e) for e in ears]

    assert judge("blink", poses(0.32, 0.31, 0.15, 0.12, 0.30, 0.31)).verdict == "passed"
    assert judge("blink", poses(0.32, 0.31, 0.15, 0.12, 0.14, 0.13)).verdict == "failed"
    assert judge("blink", poses(0.32, 0.31, 0.30, 0.32, 0.31, 0.30)).verdict == "failed"
    assert judge("blink", [None, None, Pose(0, 0.3)]).verdict == "undecided"
    assert judge("read_digits", poses(0.3, 0.3, 0.3, 0.3)).verdict == "undecided"
