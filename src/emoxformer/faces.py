"""Find and crop the largest face with OpenCV's bundled Haar cascade (works offline), and choose the face of an image
as both training (multimodal corpora) and prediction do."""
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


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.1) -> np.ndarray:
    """The face box widened by `margin` on each side (FER2013 crops include a little forehead and chin)."""
    x, y, w, h = box
    dx, dy = int(w * margin), int(h * margin)
    top, left = max(0, y - dy), max(0, x - dx)
    return image[top: y + h + dy, left: x + w + dx]


# Without a detected face, an image at most this many times the model's input side is taken as a face crop.
WHOLE_IMAGE_MAX_SCALE = 2


def is_face_sized(image: np.ndarray, image_size: int) -> bool:
    """Small enough to be a face crop (FER2013's are 48x48, too small for the detector)."""
    return max(image.shape[:2]) <= WHOLE_IMAGE_MAX_SCALE * image_size


def choose_face(image: np.ndarray, image_size: int) -> tuple[np.ndarray | None, str | None]:
    """The face to classify in `image` and a note when that is not a detected face: the largest face, padded; else
    a face-sized image whole (noted); else None."""
    box = find_largest_face(image)
    if box is not None:
        return crop_face(image, box), None
    if is_face_sized(image, image_size):
        height, width = image.shape[:2]
        return image, f"no face found in the {width}x{height} image; the whole image was used as the face"
    return None, None
