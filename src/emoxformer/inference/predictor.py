"""Predictor: emotion probabilities from any mix of text, speech, a face image or a video."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import InputError, no_cuda_gpu
from ..labels import EMOTIONS
from ..model.batching import probabilities_in_batches
from ..model.config import MODALITIES
from ..model.modeling import FUSIONS, EmoXFormer
from ..model.preprocessing import Preprocessor
from ..faces import face_box, frame_faces
from .media import check_audio, read_image, read_video
from .processor import MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS, MODALITY_NAMES, EmoXFormerProcessor


@dataclass
class Prediction:
    probabilities: dict[str, float]
    modalities: tuple[str, ...]
    # With two or more modalities: each modality's own answer (calibrated), keyed text, audio, image.
    per_modality: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how an input was used when that was not the obvious way
    # What combined the modalities: "model" (the trained fusion) or "late" (late fusion); None for one modality.
    fusion: str | None = None

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def to_dict(self) -> dict:
        out = {"label": self.label, "probabilities": self.probabilities, "modalities": list(self.modalities),
               "notes": list(self.notes)}
        if self.fusion is not None:
            out["fusion"] = self.fusion
        if self.per_modality:
            out["per_modality"] = {m: {"label": max(p, key=p.get), "probabilities": p} for m, p in self.per_modality.items()}
        return out


@dataclass
class FaceCrop:
    """The face a Predictor classifies from an image (Predictor.locate_face): the decoded image, the box (x, y, w, h)
    of the crop in it (the largest detected face with its margin, or the whole image) and a note when the whole
    image stands in for a face. Given as `image` to `prepare` or `predict`, it is used as located: the image is
    not decoded or searched again."""

    image: np.ndarray
    box: tuple[int, int, int, int]
    note: str | None = None

    @property
    def face(self) -> np.ndarray:
        x, y, w, h = self.box
        return self.image[y: y + h, x: x + w]


@dataclass
class VideoInputs:
    """What a video gives a model (Predictor.video_inputs): prepared faces of sampled frames, the prepared audio
    track or None, notes on how the frames were used, and why the track is not used (None when it is)."""

    faces: list
    audio: np.ndarray | None
    notes: list[str]
    audio_problem: str | None = None


class Predictor:
    """Wraps a trained EmoXFormer with its processor (an EmoXFormerProcessor, or a Preprocessor to build one from),
    and reads files, media and video; only the encoders of the given modalities run.

    `fusion` combines several modalities: "model" (the trained fusion), "late" (the product of the calibrated
    single-modality answers), or None for the model's own choice (`config.inference_fusion`, the one that
    validated better when it was trained)."""

    def __init__(self, model: EmoXFormer, processor: EmoXFormerProcessor | Preprocessor, device: str | torch.device | None = None,
                 detect_faces: bool = True, max_audio_seconds: float = MAX_AUDIO_SECONDS, max_image_pixels: int = MAX_IMAGE_PIXELS,
                 max_video_frames: int = 8, batch_size: int = 32, fusion: str | None = None):
        if fusion is not None and fusion not in FUSIONS:
            raise InputError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        self.fusion = fusion or model.config.inference_fusion
        self.device = _usable_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor if isinstance(processor, EmoXFormerProcessor) else EmoXFormerProcessor.from_preprocessor(processor)
        self.detect_faces = detect_faces
        self.max_audio_seconds, self.max_image_pixels = max_audio_seconds, max_image_pixels
        self.max_video_frames, self.batch_size = max_video_frames, batch_size

    @classmethod
    def from_pretrained(cls, path: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None,
                        token: str | bool | None = None, **kwargs) -> "Predictor":
        """A Predictor of a model folder or a Hugging Face Hub model (`org/name`, at `revision`; downloaded into the
        huggingface_hub cache, and a local folder of that name wins); `kwargs` go to the constructor."""
        from ..model.hub import resolve_model_dir

        folder = resolve_model_dir(path, revision=revision, cache_dir=cache_dir, token=token)
        return cls(EmoXFormer.from_pretrained(folder), EmoXFormerProcessor.from_pretrained(folder), **kwargs)

    @property
    def preprocessor(self) -> Preprocessor:
        return self.processor.preprocessor

    # ------------------------------------------------------------------ inputs
    def prepare(self, text: str | None = None, audio=None, image=None, sample_rate: int | None = None,
                detect_faces: bool | None = None, context: Sequence[str | tuple[str, str]] | None = None,
                speaker: str | None = None) -> dict:
        """One prepared sample for the collator (with `notes` on how its inputs were used); raises InputError for
        unusable input. `context`: earlier turns of the dialogue, oldest first, each "Speaker: utterance" or a
        (speaker, utterance) pair; `speaker`: who says `text`. Both only for models trained with dialogue context."""
        self.processor.check_modalities({"text": text, "audio": audio, "vision": image})
        crop = self.locate_face(image, detect_faces) if image is not None else None
        sample = self.processor.prepare_sample(text, audio, crop.face if crop else None, sample_rate, context, speaker,
                                               max_audio_seconds=self.max_audio_seconds)
        sample["notes"] += [crop.note] if crop and crop.note else []
        return sample

    def locate_face(self, image, detect_faces: bool | None = None) -> FaceCrop:
        """The face this Predictor classifies from `image` (a path, PIL image, array, or a FaceCrop, returned as it
        is): the largest detected face with its margin; without detection, or when none is found in a face-sized
        image, the whole image. InputError for an unreadable image, or a larger one without a face."""
        if isinstance(image, FaceCrop):
            return image
        array = read_image(image, self.max_image_pixels)
        whole = (0, 0, array.shape[1], array.shape[0])
        if not (self.detect_faces if detect_faces is None else detect_faces):
            return FaceCrop(array, whole)
        box, note = face_box(array, self.preprocessor.config.image_size)
        if box is None:
            name = image if isinstance(image, (str, Path)) else "the image"
            raise InputError(f"{name}: no face found; for an already cropped face turn face detection off (--no-face-detect)")
        return FaceCrop(array, box, note)

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def probabilities(self, samples: list[dict]) -> np.ndarray:
        """Calibrated probabilities [n, classes] for prepared samples, in batches."""
        return self.answers(samples)[0]

    @torch.no_grad()
    def answers(self, samples: list[dict]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Calibrated probabilities [n, classes] of prepared samples, and each modality's own [n, classes] (NaN rows
        for samples without it)."""
        fused, alone = probabilities_in_batches(self.model, samples, self.processor.collate, self.device, self.batch_size,
                                                fusion=self.fusion)
        return fused.numpy(), {m: p.numpy() for m, p in alone.items()}

    def predict(self, text: str | None = None, audio=None, image=None, video=None, sample_rate: int | None = None,
                detect_faces: bool | None = None, context: Sequence[str | tuple[str, str]] | None = None,
                speaker: str | None = None) -> Prediction:
        """`context` (earlier turns) and `speaker` (who says `text`): see `prepare`."""
        if video is not None:
            if audio is not None or image is not None:
                given = " and ".join(name for name, value in (("audio", audio), ("an image", image)) if value is not None)
                raise InputError(f"a video gives its own sound and faces: pass {given} without the video, or the video alone")
            return self._predict_video(video, text, detect_faces, context, speaker)
        sample = self.prepare(text, audio, image, sample_rate, detect_faces, context, speaker)
        return self._predictions([sample])[0]

    def predict_batch(self, items: list[dict], progress: bool = False) -> list[Prediction]:
        """Many predictions; each item is a dict with any of text, audio, image, sample_rate, detect_faces, context,
        speaker (video: use predict)."""
        samples = [self.prepare(**item) for item in tqdm(items, desc="reading inputs", disable=not progress)]
        return self._predictions(samples)

    def _predictions(self, samples: list[dict]) -> list[Prediction]:
        fused, alone = self.answers(samples)
        predictions = []
        for row, sample in enumerate(samples):
            used = [m for m in MODALITIES if m in sample]
            several = len(used) > 1
            predictions.append(Prediction(
                _as_dict(fused[row]), tuple(MODALITY_NAMES[m] for m in used),
                per_modality={MODALITY_NAMES[m]: _as_dict(alone[m][row]) for m in used} if several else {},
                notes=list(sample.get("notes", [])), fusion=self.fusion if several else None,
            ))
        return predictions

    def video_inputs(self, video, detect_faces: bool | None = None) -> VideoInputs:
        """A video read as `predict(video=...)` reads it: the prepared faces of its sampled frames (none for a model
        without vision), its prepared audio track (None without one, for a model without audio, or for a silent or
        too-short track, `audio_problem` saying which) and notes; InputError for an unusable video."""
        rate = self.preprocessor.config.sample_rate
        frames, audio = read_video(video, self.max_video_frames, rate, self.max_audio_seconds)
        faces, notes = [], []
        if "vision" in self.model.modalities:
            faces, notes = self._video_faces(video, frames, self.detect_faces if detect_faces is None else detect_faces)
        prepared, problem = None, None
        if audio is None:
            problem = "no audio track"
        elif "audio" in self.model.modalities:  # a model without audio ignores the track
            try:
                prepared = self.preprocessor.prepare_audio(check_audio(audio, rate, f"{video} (audio track)"))
            except InputError as error:
                problem = str(error)  # a silent or too-short track: the frames and the transcript still count
        return VideoInputs(faces, prepared, notes, problem)

    def _predict_video(self, video, text: str | None, detect_faces: bool | None, context, speaker) -> Prediction:
        self.processor.check_modalities({"vision": video})
        inputs = self.video_inputs(video, detect_faces)
        faces, notes = inputs.faces, list(inputs.notes)
        has_transcript = text is not None and str(text).strip()  # the transcript is optional
        if not has_transcript and (context or speaker):
            raise InputError("dialogue context and speaker go with a text to classify: pass text too")
        base = self.prepare(text=text, context=context, speaker=speaker) if has_transcript else {"notes": []}
        notes += base.pop("notes")
        if inputs.audio is not None:
            base["audio"] = inputs.audio
        elif "audio" in self.model.modalities:
            notes.append(f"{Path(video).name}: {_without_video_path(inputs.audio_problem, video)}; answered without the sound")
        # One sample per sampled frame: the face of that frame with the whole audio track and transcript.
        fused, alone = self.answers([{**base, "vision": face} for face in faces])
        prediction = self.frames_prediction(fused, alone, [m for m in MODALITIES if m in base or m == "vision"])
        prediction.notes = notes
        return prediction

    def frames_prediction(self, fused: np.ndarray, alone: dict[str, np.ndarray], modalities: Sequence[str]) -> Prediction:
        """One answer from the `answers` of samples that share their sound and text and differ in the face (one
        sample per sampled frame; a single sample without a face): the mean over the frames, fused and of the
        faces alone, beside the sound's and the text's own answers. `modalities`: those the samples have."""
        per_modality = {MODALITY_NAMES[m]: _as_dict(alone[m].mean(0) if m == "vision" else alone[m][0])
                        for m in MODALITIES if m in modalities}
        return Prediction(
            probabilities=_as_dict(fused.mean(0)), modalities=tuple(per_modality), per_modality=per_modality,
            fusion=self.fusion if len(per_modality) > 1 else None,
        )

    def timeline(self, video, window: float = 2.0, hop: float = 1.0, transcript=None, detect_faces: bool | None = None,
                 progress: bool = False, frames_per_window: int = 4):
        """The emotion of a video over time, as a pandas DataFrame with one row per window of `window` seconds,
        one every `hop` seconds: start, end, the fused label and probabilities (p_<emotion>), the modalities
        used, the faces found, each modality's own answer (image_label, image_p_<emotion>, and the same for audio
        and text), the window's transcript and notes; notes on the whole video in `.attrs["notes"]`.

        `transcript`: an SRT or WebVTT file whose cues give each window its text. The video is decoded once and
        scored window by window (memory stays flat however long it is), `frames_per_window` faces a window, each
        with the window's sound and text as `predict(video=...)` scores a clip; a window without a face is scored
        from its sound and text. `progress`: a progress bar."""
        from .timeline import video_timeline

        return video_timeline(self, video, window, hop, transcript, detect_faces, progress, frames_per_window)

    def _video_faces(self, video, frames: list[np.ndarray], detect: bool) -> tuple[list, list[str]]:
        """Prepared faces of the sampled frames that show one (all frames when detection is off, or when none
        does but the frames are small enough to be face crops), and notes."""
        if not detect:
            return [self.processor.prepare_image(frame) for frame in frames], []
        faces, note = frame_faces(frames, self.preprocessor.config.image_size)
        if faces is None:
            raise InputError(f"{video}: no face found in any of {len(frames)} sampled frames")
        return [self.processor.prepare_image(face) for face in faces], [note] if note else []


def _without_video_path(problem: str, video) -> str:
    """An audio problem's message without the video's path in front (the note names the video once)."""
    prefix = f"{video} (audio track): "
    return problem[len(prefix):] if problem.startswith(prefix) else problem


def _usable_device(device: str | torch.device | None) -> torch.device:
    """The device to predict on (default: a CUDA GPU when there is one); InputError for a name torch does not know
    or a GPU this machine does not have."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device {device!r}: not a device name (cpu, cuda, cuda:N or mps)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InputError(no_cuda_gpu(f"device {device!r}", "cpu"))
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise InputError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r}: Apple's MPS is not available here (pass cpu)")
    return chosen


def _as_dict(probabilities: np.ndarray) -> dict[str, float]:
    return {name: float(p) for name, p in zip(EMOTIONS, probabilities)}

