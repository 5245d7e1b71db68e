"""Find and crop the largest face with OpenCV's bundled Haar cascade (works offline)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _cascade():
    import cv2

    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def find_largest_face(image: np.ndarray, short_side: int | None = None) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the largest frontal face in a uint8 grey or RGB image, or None. `short_side`: look in a copy
    shrunk to at most this many pixels on its shorter side (the cost of a search grows with the pixels; the box
    is given in the image's own pixels)."""
    import cv2

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, short_side / min(grey.shape)) if short_side else 1.0
    if scale < 1.0:
        grey = cv2.resize(grey, (round(grey.shape[1] * scale), round(grey.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    min_side = max(24, int(min(grey.shape) * 0.05))
    faces = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, w, h = (round(float(v) / scale) for v in max(faces, key=lambda f: f[2] * f[3]))
    return x, y, w, h


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.1) -> np.ndarray:
    """The face box widened by `margin` on each side (FER2013 crops include a little forehead and chin)."""
    x, y, w, h = box
    dx, dy = int(w * margin), int(h * margin)
    top, left = max(0, y - dy), max(0, x - dx)
    return image[top: y + h + dy, left: x + w + dx]
