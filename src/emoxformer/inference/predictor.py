"""Predictor: emotion probabilities from any mix of text, speech, a face image or a video."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.collate import Collator
from ..errors import InputError
from ..labels import EMOTIONS
from ..model.config import MODALITIES
from ..model.modeling import EmoXFormer
from ..model.preprocessing import Preprocessor
from ..training.run import logits_in_batches
from .faces import crop_face, find_largest_face
from .media import check_audio, read_audio, read_image, read_video

MODALITY_NAMES = {"text": "text", "audio": "audio", "vision": "image"}


@dataclass
class Prediction:
    probabilities: dict[str, float]
    modalities: tuple[str, ...]
    per_modality: dict[str, dict[str, float]] = field(default_factory=dict)  # video: each modality alone

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def to_dict(self) -> dict:
        out = {"label": self.label, "probabilities": self.probabilities, "modalities": list(self.modalities)}
        if self.per_modality:
            out["per_modality"] = {m: {"label": max(p, key=p.get), "probabilities": p} for m, p in self.per_modality.items()}
        return out


class Predictor:
    """Wraps a trained EmoXFormer with its preprocessing; only the encoders of the given modalities run."""

    def __init__(self, model: EmoXFormer, preprocessor: Preprocessor, device: str | torch.device | None = None,
                 detect_faces: bool = True, max_audio_seconds: float = 600.0, max_image_pixels: int = 40_000_000,
                 max_video_frames: int = 8, batch_size: int = 32):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.preprocessor = preprocessor
        self.collate = Collator(preprocessor.pad_id)
        self.detect_faces = detect_faces
        self.max_audio_seconds, self.max_image_pixels = max_audio_seconds, max_image_pixels
        self.max_video_frames, self.batch_size = max_video_frames, batch_size

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> "Predictor":
        model = EmoXFormer.from_pretrained(path)
        return cls(model, Preprocessor.for_model(model.config, path), **kwargs)

    # ------------------------------------------------------------------ inputs
    def prepare(self, text: str | None = None, audio=None, image=None, sample_rate: int | None = None,
                detect_faces: bool | None = None) -> dict:
        """One prepared sample for the collator; raises InputError for unusable input."""
        self._check_modalities({"text": text, "audio": audio, "vision": image})
        sample = {}
        if text is not None:
            if not str(text).strip():
                raise InputError("text is empty")
            sample["text"] = self.preprocessor.tokenize(" ".join(str(text).split()))
        if audio is not None:
            rate = self.preprocessor.config.sample_rate
            wave = read_audio(audio, sample_rate, rate, self.max_audio_seconds)
            sample["audio"] = self.preprocessor.prepare_audio(wave)
        if image is not None:
            sample["vision"] = self.preprocessor.prepare_image(self._face(image, detect_faces))
        if not sample:
            raise InputError("no input given: pass at least one of text, audio, image or video")
        return sample

    def _check_modalities(self, inputs: dict) -> None:
        """InputError for an input of a modality the model has no encoder for (trained without that dataset)."""
        for modality, value in inputs.items():
            if value is not None and modality not in self.model.modalities:
                takes = " and ".join(MODALITY_NAMES[m] for m in self.model.modalities)
                raise InputError(f"this model was trained without {MODALITY_NAMES[modality]}: it takes only {takes}")

    def _face(self, image, detect_faces: bool | None) -> np.ndarray:
        array = read_image(image, self.max_image_pixels)
        if not (self.detect_faces if detect_faces is None else detect_faces):
            return array
        box = find_largest_face(array)
        if box is None:
            name = image if isinstance(image, (str, Path)) else "the image"
            raise InputError(f"{name}: no face found; for an already cropped face turn face detection off (--no-face-detect)")
        return crop_face(array, box)

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def probabilities(self, samples: list[dict]) -> np.ndarray:
        """Calibrated probabilities [n, 7] for prepared samples, in batches."""
        logits = logits_in_batches(self.model, samples, self.collate, self.device, self.batch_size)
        return self.model.probabilities(logits).numpy()

    def predict(self, text: str | None = None, audio=None, image=None, video=None, sample_rate: int | None = None,
                detect_faces: bool | None = None) -> Prediction:
        if video is not None:
            return self._predict_video(video, text, detect_faces)
        sample = self.prepare(text, audio, image, sample_rate, detect_faces)
        return _prediction(self.probabilities([sample])[0], sample)

    def predict_batch(self, items: list[dict], progress: bool = False) -> list[Prediction]:
        """Many predictions; each item is a dict with any of text, audio, image, sample_rate (video: use predict)."""
        samples = [self.prepare(**item) for item in tqdm(items, desc="reading inputs", disable=not progress)]
        probabilities = self.probabilities(samples)
        return [_prediction(p, s) for p, s in zip(probabilities, samples)]

    def _predict_video(self, video, text: str | None, detect_faces: bool | None) -> Prediction:
        self._check_modalities({"vision": video})
        rate = self.preprocessor.config.sample_rate
        frames, audio = read_video(video, self.max_video_frames, rate, self.max_audio_seconds)
        detect = self.detect_faces if detect_faces is None else detect_faces
        faces = []
        for frame in frames:
            box = find_largest_face(frame) if detect else (0, 0, frame.shape[1], frame.shape[0])
            if box is not None:
                faces.append(self.preprocessor.prepare_image(crop_face(frame, box, margin=0.1 if detect else 0.0)))
        if not faces:
            raise InputError(f"{video}: no face found in any of {len(frames)} sampled frames")
        base = self.prepare(text=text) if text is not None and str(text).strip() else {}  # the transcript is optional
        if audio is not None and "audio" in self.model.modalities:  # a model without audio ignores the track
            try:
                base["audio"] = self.preprocessor.prepare_audio(check_audio(audio, rate, f"{video} (audio track)"))
            except InputError:
                pass  # a silent or too-short track: the frames and the transcript still count
        # One sample per sampled frame: the face of that frame with the whole audio track and transcript.
        fused = self.probabilities([{**base, "vision": face} for face in faces]).mean(0)
        per_modality = {"image": self.probabilities([{"vision": face} for face in faces]).mean(0)}
        for modality in ("text", "audio"):
            if modality in base:
                per_modality[modality] = self.probabilities([{modality: base[modality]}])[0]
        return Prediction(
            probabilities=_as_dict(fused), modalities=tuple(MODALITY_NAMES[m] for m in MODALITIES if m in base or m == "vision"),
            per_modality={m: _as_dict(p) for m, p in per_modality.items()},
        )


def _prediction(probabilities: np.ndarray, sample: dict) -> Prediction:
    return Prediction(_as_dict(probabilities), tuple(MODALITY_NAMES[m] for m in MODALITIES if m in sample))


def _as_dict(probabilities: np.ndarray) -> dict[str, float]:
    return {name: float(p) for name, p in zip(EMOTIONS, probabilities)}

