"""Photos with known truth, all made from ``skimage.data.astronaut()`` (no download).

Eileen Collins' NASA portrait is the only photograph of a person scikit-image ships; every
other case is derived from it, so each test knows what the photo shows.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

from media.faces import encode_jpeg

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
    return np.ascontiguousarray(astronaut()[0:300, 80:300])


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
