"""Prediction on users' own text, speech, images and video."""
from .predictor import FaceCrop, Prediction, Predictor

__all__ = ["FaceCrop", "Prediction", "Predictor"]
