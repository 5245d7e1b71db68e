"""Find and crop the largest face with OpenCV's bundled Haar cascade (works offline)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _cascade():
    import cv2

    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def find_largest_face(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the largest frontal face in a uint8 grey or RGB image, or None."""
    import cv2

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    min_side = max(24, int(min(grey.shape) * 0.05))
    faces = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def margin_box(box: tuple[int, int, int, int], shape: tuple[int, ...], margin: float = 0.1) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the face box widened by `margin` on each side (FER2013 crops include a little forehead and
    chin), kept within an image of `shape` ([H, W] or [H, W, C])."""
    x, y, w, h = box
    dx, dy = int(w * margin), int(h * margin)
    left, top = max(0, x - dx), max(0, y - dy)
    right, bottom = min(shape[1], x + w + dx), min(shape[0], y + h + dy)
    return left, top, right - left, bottom - top


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.1) -> np.ndarray:
    """The part of `image` inside `margin_box`."""
    x, y, w, h = margin_box(box, image.shape, margin)
    return image[y: y + h, x: x + w]
