"""Prediction on users' own text, speech, images and video."""
from .predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor"]
