"""Face reading: one photo in, one face's embedding (or the reason there is none) out.

dlib's HOG detector finds faces, its 5-point shape predictor aligns the face, and its
ResNet model (``face_recognition_models``, shipped in the package, no download) turns the
aligned face into a 128-number embedding; two photos of one person lie closer than about
0.6 (Euclidean). Everything here is synchronous and CPU-bound — it runs in the worker
processes of :mod:`alerts.face_pool`, never on the event loop (dlib holds the GIL).

Detector settings, chosen on ``skimage.data.astronaut()`` (tests/media/test_faces.py):

- upsampling lets the HOG detector find faces under 80 px but, on the astronaut photo, one
  level of it also reports a false second face (detection score 0.12 against 1.16 for the
  real one). So photos whose long side is at most ``UPSAMPLE_BELOW_PX`` are upsampled once
  (a 640x480 webcam snapshot with a face of 60-80 px) and larger ones are not, and every
  detection scoring below ``MIN_DETECTION_SCORE`` is dropped;
- a face narrower than ``MIN_FACE_PX``, too dark, too flat or too blurred is
  ``poor_quality``: its embedding would be noise, and a noisy mismatch is a false alarm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import numpy as np
from numpy.typing import NDArray

Outcome = Literal["match", "mismatch", "no_face", "several_faces", "poor_quality"]
OUTCOMES: Final[tuple[str, ...]] = ("match", "mismatch", "no_face", "several_faces", "poor_quality")
Reading = Literal["face", "no_face", "several_faces", "poor_quality"]

UPSAMPLE_BELOW_PX: Final = 800
MIN_DETECTION_SCORE: Final = 0.5
MIN_FACE_PX: Final = 60
MIN_FACE_BRIGHTNESS: Final = 40.0
MIN_FACE_CONTRAST: Final = 20.0
# Mean absolute second difference over standard deviation: about 0.45 for a sharp face,
# 0.07 after a Gaussian blur of sigma 2 px.
MIN_FACE_SHARPNESS: Final = 0.12
DEFAULT_THRESHOLD: Final = 0.6
EMBEDDING_SIZE: Final = 128


class PhotoError(ValueError):
    """The bytes are not a decodable JPEG photo."""


@dataclass(frozen=True, slots=True)
class FaceBox:
    left: int
    top: int
    width: int
    height: int
    score: float


@dataclass(frozen=True, slots=True)
class FaceReading:
    """What one photo shows: exactly one usable face (with its embedding) or why not."""

    reading: Reading
    faces: tuple[FaceBox, ...] = ()
    embedding: tuple[float, ...] | None = None
    problem: str = ""

    def __repr__(self) -> str:
        return f"FaceReading({self.reading}, faces={len(self.faces)}, problem={self.problem!r})"


@dataclass(frozen=True, slots=True)
class FaceVerdict:
    """A reading compared with a baseline: the outcome and the smallest distance."""

    outcome: Outcome
    distance: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "distance": self.distance}


def decode_jpeg(data: bytes) -> NDArray[np.uint8]:
    """JPEG bytes to an RGB array with PyAV (already a dependency: no Pillow needed)."""
    import av

    try:
        codec: Any = av.CodecContext.create("mjpeg", "r")
        frames = codec.decode(av.Packet(data))
        frames += codec.decode(None)
    except (av.FFmpegError, ValueError) as exc:
        raise PhotoError(f"not a JPEG photo: {exc}") from None
    if not frames:
        raise PhotoError("not a JPEG photo: nothing decoded")
    rgb: NDArray[np.uint8] = frames[0].to_ndarray(format="rgb24")
    return np.ascontiguousarray(rgb)


def encode_jpeg(rgb: NDArray[np.uint8], quality: int = 3) -> bytes:
    """An RGB array to JPEG (for tests, the bench and the demo); ``quality`` is qscale."""
    import fractions

    import av
    from av.video.frame import VideoFrame

    h, w = rgb.shape[0] & ~1, rgb.shape[1] & ~1
    frame = VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
    encoder: Any = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = w, h
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = fractions.Fraction(1, 25)
    encoder.qmin = encoder.qmax = quality
    picture = frame.reformat(format="yuvj420p")
    picture.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(picture))
    return data + b"".join(bytes(p) for p in encoder.encode(None))


class FaceModels:
    """The three dlib models, loaded once per worker process (about 1 s, 120 MB on disk)."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def detect(self, rgb: NDArray[np.uint8]) -> list[tuple[Any, FaceBox]]:
        upsample = 1 if max(rgb.shape[:2]) <= UPSAMPLE_BELOW_PX else 0
        rects, scores, _ = self._detector.run(rgb, upsample, 0.0)
        found = []
        for rect, score in zip(rects, scores, strict=True):
            if score < MIN_DETECTION_SCORE:
                continue
            box = FaceBox(rect.left(), rect.top(), rect.width(), rect.height(), float(score))
            found.append((rect, box))
        return found

    def read(self, rgb: NDArray[np.uint8]) -> FaceReading:
        found = self.detect(rgb)
        boxes = tuple(b for _, b in found)
        if not found:
            return FaceReading("no_face")
        if len(found) > 1:
            return FaceReading("several_faces", boxes)
        rect, box = found[0]
        problem = quality_problem(rgb, box)
        if problem:
            return FaceReading("poor_quality", boxes, problem=problem)
        shape = self._shape(rgb, rect)
        vector = self._encoder.compute_face_descriptor(rgb, shape)
        return FaceReading("face", boxes, tuple(float(v) for v in vector))

    def read_jpeg(self, data: bytes) -> FaceReading:
        return self.read(decode_jpeg(data))


def quality_problem(rgb: NDArray[np.uint8], box: FaceBox) -> str:
    """Why the face in ``box`` is unusable, or ``""``."""
    if box.width < MIN_FACE_PX:
        return f"face {box.width} px wide, under {MIN_FACE_PX}"
    top, left = max(box.top, 0), max(box.left, 0)
    crop = rgb[top : box.top + box.height, left : box.left + box.width].mean(axis=-1)
    if crop.size == 0:
        return "face outside the photo"
    brightness, contrast = float(crop.mean()), float(crop.std())
    if brightness < MIN_FACE_BRIGHTNESS:
        return f"too dark (mean {brightness:.0f})"
    if contrast < MIN_FACE_CONTRAST:
        return f"too flat (contrast {contrast:.0f})"
    detail = float(
        np.abs(np.diff(crop, 2, axis=0)).mean() + np.abs(np.diff(crop, 2, axis=1)).mean()
    )
    if detail / contrast < MIN_FACE_SHARPNESS:
        return f"blurred (sharpness {detail / contrast:.2f})"
    return ""


def distance(a: Sequence[float], b: Sequence[float]) -> float:
    return math.dist(a, b)


def verdict(
    reading: FaceReading, baseline: Sequence[Sequence[float]], threshold: float
) -> FaceVerdict | None:
    """The outcome of ``reading`` against the approved baseline embeddings; ``None`` when
    there is no baseline to compare with (nothing to decide, no alarm)."""
    if reading.reading != "face" or reading.embedding is None:
        return FaceVerdict(cast(Outcome, reading.reading))
    if not baseline:
        return None
    best = min(distance(reading.embedding, b) for b in baseline)
    rounded = round(best, 4)
    return FaceVerdict("match" if best <= threshold else "mismatch", rounded)
