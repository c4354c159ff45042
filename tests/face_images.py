"""Photos with known truth, all made from ``skimage.data.astronaut()`` (no download).

Eileen Collins' NASA portrait is the only photograph of a person scikit-image ships; every
other case is derived from it, so each test knows what the photo shows.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

from alerts.faces import encode_jpeg

Image = NDArray[np.uint8]
# Where the HOG detector finds her face in the 512x512 photo (left, top, width).
FACE_BOX = (179, 83, 88)


@cache
def astronaut() -> Image:
    from skimage import data

    img: Image = np.ascontiguousarray(data.astronaut())
    return img


def _resize(img: Image, height: int, width: int) -> Image:
    from skimage.transform import resize

    out: Image = (resize(img, (height, width), anti_aliasing=True) * 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def crop() -> Image:
    # offsets off the 16-px JPEG block grid, so the face is re-encoded, not copied
    return np.ascontiguousarray(astronaut()[5:305, 83:303])


def scaled(factor: float) -> Image:
    side = round(512 * factor)
    return _resize(astronaut(), side, side)


def darkened(factor: float) -> Image:
    return (astronaut().astype(np.float32) * factor).astype(np.uint8)


def mirrored() -> Image:
    return np.ascontiguousarray(astronaut()[:, ::-1])


def blurred(sigma: float) -> Image:
    from skimage.filters import gaussian

    return (gaussian(astronaut(), sigma, channel_axis=-1) * 255).astype(np.uint8)


def second_face_pasted() -> Image:
    """Her face, a little smaller, pasted into the lower right corner."""
    img = astronaut().copy()
    face = img[60:200, 160:290]
    img[330:470, 340:470] = _resize(face, 140, 130)
    return img


def fake_camera(frame: int = 0) -> Image:
    """Like Chromium's default fake camera: a flat green field, a white disc that turns
    ("pacman") and a frame counter of blocks — no face."""
    h, w = 480, 640
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (0, 96, 48)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, r = h // 2, w // 2, 120
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    angle = np.arctan2(yy - cy, xx - cx)
    mouth = np.abs(np.angle(np.exp(1j * (angle - frame * 0.1)))) < 0.5
    img[disc & ~mouth] = 255
    for i, bit in enumerate(f"{frame:016b}"):
        if bit == "1":
            img[20:40, 20 + i * 24 : 40 + i * 24] = 255
    return img


def jpeg(img: Image) -> bytes:
    return encode_jpeg(img)


def head_turned(degrees: float) -> Image:
    """A synthetic head turn: her face mapped onto a vertical cylinder rotated by
    ``degrees`` (the nose moves, the jaw's ends barely), positive towards the image's right."""
    from scipy.ndimage import map_coordinates

    img = astronaut()
    cx, r, top, bottom = 223.0, 75.0, 60, 240
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    src = xx.copy()
    inside = (np.abs(xx - cx) < r) & (yy > top) & (yy < bottom)
    phi = np.clip(np.arcsin((xx[inside] - cx) / r) - np.radians(degrees), -np.pi / 2, np.pi / 2)
    fade = np.sin(np.pi * (yy[inside] - top) / (bottom - top))
    src[inside] = xx[inside] + (cx + r * np.sin(phi) - xx[inside]) * fade
    planes = [map_coordinates(img[..., c], [yy, src], order=1) for c in range(3)]
    return np.ascontiguousarray(np.stack(planes, -1).astype(np.uint8))
