"""The face detector and crop live in the media leaves (emoxformer.faces), shared with the dataset readers."""
from ..faces import WHOLE_IMAGE_MAX_SCALE, choose_face, crop_face, find_largest_face, is_face_sized

__all__ = ["WHOLE_IMAGE_MAX_SCALE", "choose_face", "crop_face", "find_largest_face", "is_face_sized"]
