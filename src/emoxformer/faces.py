"""Find and crop the largest face with OpenCV's bundled Haar cascade (works offline), and choose the face of an image
as both training (multimodal corpora) and prediction do."""
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


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return image[y: y + h, x: x + w]


# Without a detected face, an image at most this many times the model's input side is taken as a face crop.
WHOLE_IMAGE_MAX_SCALE = 2


def is_face_sized(image: np.ndarray, image_size: int) -> bool:
    """Small enough to be a face crop (FER2013's are 48x48, too small for the detector)."""
    return max(image.shape[:2]) <= WHOLE_IMAGE_MAX_SCALE * image_size


def face_box(image: np.ndarray, image_size: int) -> tuple[tuple[int, int, int, int] | None, str | None]:
    """Where the face to classify is in `image`, (x, y, w, h), and a note when that is not a detected face: the
    largest face with its margin; else a face-sized image whole (noted); else None. Prediction and the readers of
    multimodal corpora choose faces with it."""
    box = find_largest_face(image)
    if box is not None:
        return margin_box(box, image.shape), None
    if is_face_sized(image, image_size):
        height, width = image.shape[:2]
        return (0, 0, width, height), f"no face found in the {width}x{height} image; the whole image was used as the face"
    return None, None


def frame_faces(frames: list[np.ndarray], image_size: int) -> tuple[list[np.ndarray] | None, str | None]:
    """The faces of a video's sampled frames and a note: the largest face (with its margin) of each frame that shows
    one; when none does but the frames are face-sized, the whole frames (noted); None when neither."""
    boxes = [find_largest_face(frame) for frame in frames]
    if any(box is not None for box in boxes):
        return [crop_face(frame, box) for frame, box in zip(frames, boxes) if box is not None], None
    if frames and is_face_sized(frames[0], image_size):
        height, width = frames[0].shape[:2]
        return list(frames), f"no face found in the {width}x{height} frames; the whole frames were used as the face"
    return None, None
