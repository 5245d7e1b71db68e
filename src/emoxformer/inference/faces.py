"""The face detector and crop live in the media leaves (emoxformer.faces), shared with the dataset readers."""
from ..faces import (WHOLE_IMAGE_MAX_SCALE, crop, crop_face, face_box, find_largest_face, frame_faces, is_face_sized,
                     margin_box)

__all__ = ["WHOLE_IMAGE_MAX_SCALE", "crop", "crop_face", "face_box", "find_largest_face", "frame_faces", "is_face_sized",
           "margin_box"]
