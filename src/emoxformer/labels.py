"""The 7-class emotion taxonomy and each dataset's mapping onto it."""
from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
DATASET_NAMES: tuple[str, ...] = ("meld", "ravdess", "fer2013")  # a sample's `dataset` index points in here
LABEL_TO_INDEX = {name: i for i, name in enumerate(EMOTIONS)}

# MELD's Emotion column.
MELD_TO_EMOTION = {
    "neutral": "neutral",
    "joy": "happy",
    "sadness": "sad",
    "anger": "anger",
    "surprise": "surprise",
    "fear": "fear",
    "disgust": "disgust",
}

# RAVDESS file-name field 3 (emotion code) -> (RAVDESS name, taxonomy label).
RAVDESS_EMOTIONS = {
    1: ("neutral", "neutral"),
    2: ("calm", "neutral"),
    3: ("happy", "happy"),
    4: ("sad", "sad"),
    5: ("angry", "anger"),
    6: ("fearful", "fear"),
    7: ("disgust", "disgust"),
    8: ("surprised", "surprise"),
}

# FER2013 `emotion` column index -> taxonomy label.
FER_INDEX_TO_EMOTION = {0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
# Class-folder names of the image-folder variant of FER2013.
FER_FOLDER_TO_EMOTION = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprise",
    "neutral": "neutral",
}
EMOTION_TO_FER_INDEX = {v: k for k, v in FER_INDEX_TO_EMOTION.items()}

