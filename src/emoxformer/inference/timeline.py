"""Emotion over time in a video: one answer per window (`Predictor.timeline`, `emoxformer predict --timeline`).

The video is decoded once, in the file's order, and scored window by window: only the sound and the sampled faces
of the windows still open are held, so memory stays flat however long the video is. Each window is scored as
`predict(video=...)` scores a clip: every sampled face with the window's sound and transcript, the answers
averaged over the faces; a window without a face is scored from what it has.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..labels import EMOTIONS
from ..media import resample, to_mono
from ..model.config import MODALITIES
from ..faces import crop_face, find_largest_face, is_face_sized
from .media import MIN_AUDIO_SECONDS, VideoStream, check_audio
from .processor import MODALITY_NAMES
from .subtitles import read_subtitles, text_between

PER_MODALITY = ("image", "audio", "text")  # Prediction.per_modality's names: the face, the voice, the transcript
FRAMES_PER_WINDOW = 4
# A window closes once both streams have passed its end; one stream may run this far ahead of the other before the
# window closes without the lagging stream's rest (a track that stops early), which bounds what is held.
MAX_STREAM_LEAD_S = 10.0
# Faces are looked for in frames shrunk to this shorter side: a 1080p frame costs what a 360p one does, and a face
# down to a fifteenth of the frame's height is still found.
DETECT_SHORT_SIDE = 360
_EPSILON = 1e-6


def timeline_columns() -> list[str]:
    """The DataFrame's columns, whatever the video holds."""
    columns = ["start", "end", "label", "modalities", "faces"] + [f"p_{e}" for e in EMOTIONS]
    for name in PER_MODALITY:
        columns += [f"{name}_label"] + [f"{name}_p_{e}" for e in EMOTIONS]
    return columns + ["transcript", "notes"]


# ----------------------------------------------------------------------------- windows
@dataclass
class Window:
    start: float
    end: float
    faces: list = field(default_factory=list)  # the prepared faces of the frames sampled in the window
    frames: int = 0  # frames sampled in the window (with a face or not)
    audio: np.ndarray | None = None  # the window's sound, mono at the stream's rate


class _AudioBuffer:
    """Mono sound kept from a sample index on, in the chunks it arrived in."""

    def __init__(self, rate: int):
        self.rate = rate
        self.chunks: list[tuple[int, np.ndarray]] = []  # (index of the first sample, samples)
        self.end = 0  # index after the last sample

    def add(self, start_s: float, chunk: np.ndarray) -> None:
        start = max(round(start_s * self.rate), self.end if self.chunks else 0)
        samples = to_mono(chunk)
        self.chunks.append((start, samples))
        self.end = start + len(samples)

    @property
    def seconds(self) -> float:
        return self.end / self.rate

    @property
    def held(self) -> int:
        return sum(len(samples) for _, samples in self.chunks)

    def between(self, start_s: float, end_s: float) -> np.ndarray:
        first, last = round(start_s * self.rate), round(end_s * self.rate)
        parts = [samples[max(0, first - at): max(0, last - at)] for at, samples in self.chunks
                 if at < last and at + len(samples) > first]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def drop_before(self, start_s: float) -> None:
        first = round(start_s * self.rate)
        self.chunks = [(at, samples) for at, samples in self.chunks if at + len(samples) > first]


class WindowReader:
    """The windows of a VideoStream, each yielded as soon as both streams have passed its end: [k * hop, k * hop +
    window), the last one cut at the video's end (a tail shorter than a tenth of a hop gets no window of its own).
    Frames are sampled every `window / frames_per_window` seconds and each is prepared once (`prepare_frame`: an
    RGB array -> a prepared face or None; None: no frames are sampled), however many windows it falls in. `peak_held_samples` and
    `peak_held_frames` record the most sound and the most sampled frames held at once."""

    def __init__(self, stream: VideoStream, window: float, hop: float, prepare_frame: Callable | None,
                 frames_per_window: int = FRAMES_PER_WINDOW, use_audio: bool = True):
        self.stream, self.window, self.hop = stream, float(window), float(hop)
        self.step = self.window / max(1, int(frames_per_window))
        self.prepare_frame = prepare_frame
        self.audio = _AudioBuffer(stream.audio_rate) if stream.has_audio and use_audio else None
        self.sampled: list[tuple[float, object]] = []  # (time, prepared face or None)
        self.peak_held_samples = self.peak_held_frames = 0
        self._next_sample, self._index, self._video_time, self._video_end = 0, 0, -math.inf, 0.0

    def __iter__(self) -> Iterator[Window]:
        for kind, time, payload in self.stream:
            if kind == "video":
                self._add_frame(time, payload)
            elif self.audio is not None:
                self.audio.add(time, payload)
                self.peak_held_samples = max(self.peak_held_samples, self.audio.held)
            while self._closed(self._index):
                yield self._take(self._index, self._bounds(self._index)[1])
        duration = self._video_end
        while True:  # the windows still open at the end of the file
            start, end = self._bounds(self._index)
            previous_end = self._bounds(self._index - 1)[1] if self._index else -math.inf
            if start >= duration or previous_end >= duration - 0.1 * self.hop:
                return
            yield self._take(self._index, min(end, duration))

    def _add_frame(self, time: float, frame) -> None:
        self._video_time = time
        self._video_end = max(self._video_end, time + self.stream.frame_seconds)
        if self.prepare_frame is None or time + _EPSILON < self._next_sample * self.step:
            return
        self.sampled.append((time, self.prepare_frame(frame.to_ndarray(format="rgb24"))))
        self.peak_held_frames = max(self.peak_held_frames, len(self.sampled))
        self._next_sample = math.floor(time / self.step + _EPSILON) + 1

    def _bounds(self, index: int) -> tuple[float, float]:
        return index * self.hop, index * self.hop + self.window

    def _closed(self, index: int) -> bool:
        """Whether both streams have passed the window's end (or one has, by MAX_STREAM_LEAD_S)."""
        end = self._bounds(index)[1]
        video = self._video_time >= end
        sound = self.audio is None or self.audio.seconds >= end
        lead = max(self._video_time, self.audio.seconds if self.audio else -math.inf) >= end + MAX_STREAM_LEAD_S
        return (video and sound) or lead

    def _take(self, index: int, end: float) -> Window:
        start = self._bounds(index)[0]
        inside = [face for time, face in self.sampled if start - _EPSILON <= time < end - _EPSILON]
        audio = self.audio.between(start, end) if self.audio is not None else None
        self._index += 1
        following = self._bounds(self._index)[0]
        self.sampled = [(time, face) for time, face in self.sampled if time >= following - _EPSILON]
        if self.audio is not None:
            self.audio.drop_before(following)
        return Window(start, end, [face for face in inside if face is not None], len(inside), audio)


# ----------------------------------------------------------------------------- scoring
@dataclass
class _Scored:
    window: Window
    samples: list[dict]
    text: str
    notes: list[str]


def video_timeline(predictor, video, window: float = 2.0, hop: float = 1.0, transcript=None,
                   detect_faces: bool | None = None, progress: bool = False,
                   frames_per_window: int = FRAMES_PER_WINDOW):
    """The emotion of each window of `video` as a pandas DataFrame (columns: `timeline_columns()`); notes on how
    the video was used are in `frame.attrs["notes"]`. See Predictor.timeline."""
    import pandas as pd
    from tqdm.auto import tqdm

    window, hop = _checked_times(window, hop, predictor.max_audio_seconds)
    model_modalities = predictor.model.modalities
    cues = None
    if transcript is not None:
        predictor.processor.check_modalities({"text": transcript})
        cues = read_subtitles(transcript)
    detect = predictor.detect_faces if detect_faces is None else detect_faces
    notes: list[str] = []
    with VideoStream(video) as stream:
        use_audio = stream.has_audio and "audio" in model_modalities
        if not stream.has_audio:
            rest = " and the transcript" if cues else ""
            notes.append(f"{Path(video).name}: no audio track; the windows are scored from the faces{rest}")
        elif "audio" not in model_modalities:
            notes.append("this model was trained without audio: the sound track is not used")
        if "vision" not in model_modalities and not use_audio and cues is None:
            takes = " and ".join(MODALITY_NAMES[m] for m in model_modalities)
            raise InputError(f"this model takes only {takes}: a video without a transcript gives it nothing to score "
                             "(pass --transcript FILE.srt)")
        frames = _FramePreparer(predictor, detect)
        reader = WindowReader(stream, window, hop, frames if "vision" in model_modalities else None,
                              frames_per_window, use_audio)
        total = round(stream.duration, 1) if stream.duration else None
        rows, pending = [], []
        counts = "{n:.0f}/{total:.0f} s of video" if total else "{n:.0f} s of video"
        with tqdm(total=total, unit="s", desc="timeline", disable=not progress,
                  bar_format="{l_bar}{bar}| " + counts + " [{elapsed}<{remaining}]") as bar:
            for part in reader:
                pending.append(_window_samples(predictor, part, cues, stream.audio_rate))
                if sum(len(p.samples) for p in pending) >= predictor.batch_size:
                    rows += _score(predictor, pending)
                    pending = []
                bar.update(max(0.0, min(part.start + hop, total or math.inf) - bar.n))
            rows += _score(predictor, pending)
            if total is not None:
                bar.update(max(0.0, total - bar.n))
    frame = pd.DataFrame(rows, columns=timeline_columns())
    rest = " and ".join(name for name, has in (("sound", use_audio), ("transcript", cues is not None)) if has)
    frame.attrs["notes"] = notes + frames.notes + _summary_notes(frame, rest)
    frame.attrs["video"] = str(video)
    frame.attrs["fusion"] = predictor.fusion
    return frame


def _checked_times(window: float, hop: float, max_seconds: float) -> tuple[float, float]:
    try:
        window, hop = float(window), float(hop)
    except (TypeError, ValueError):
        raise InputError(f"window and hop are seconds, got window={window!r}, hop={hop!r}") from None
    if not (math.isfinite(window) and math.isfinite(hop)) or window <= 0 or hop <= 0:
        raise InputError(f"window and hop must be positive seconds, got window={window:g}, hop={hop:g}")
    if window < MIN_AUDIO_SECONDS:
        raise InputError(f"a window of {window:g} s is too short: at least {MIN_AUDIO_SECONDS} s")
    if window > max_seconds:
        raise InputError(f"a window of {window:g} s is longer than the audio limit of {max_seconds:g} s")
    return window, hop


class _FramePreparer:
    """A sampled frame -> its prepared face, or None without one. Face-sized frames without a detected face are
    used whole (as predict does), with a note."""

    def __init__(self, predictor, detect: bool):
        self.predictor, self.detect = predictor, detect
        self.notes: list[str] = []

    def __call__(self, frame: np.ndarray):
        prepare = self.predictor.processor.prepare_image
        if not self.detect:
            return prepare(frame)
        box = find_largest_face(frame, DETECT_SHORT_SIDE)
        if box is not None:
            return prepare(crop_face(frame, box))
        if is_face_sized(frame, self.predictor.preprocessor.config.image_size):
            if not self.notes:
                height, width = frame.shape[:2]
                self.notes.append(f"no face found in some {width}x{height} frames; the whole frames were used as the face")
            return prepare(frame)
        return None


def _window_samples(predictor, part: Window, cues, audio_rate: int | None) -> _Scored:
    """The model's samples of one window: one per face, each with the window's sound and transcript (one sample
    with those alone when no face was found; none when the window has nothing)."""
    base: dict = {}
    notes = [] if part.faces or not part.frames else ["no face"]
    if part.audio is not None:
        rate = predictor.preprocessor.config.sample_rate
        try:
            wave = check_audio(resample(part.audio, audio_rate, rate), rate, "sound")
            base["audio"] = predictor.preprocessor.prepare_audio(wave)
        except InputError as error:  # silent, too short: the faces and the transcript still count
            notes.append(f"sound not used ({str(error).split(': ', 1)[-1]})")
    text = text_between(cues, part.start, part.end) if cues else ""
    if text.strip():
        try:
            base["text"] = predictor.processor.prepare_text(text)
        except InputError as error:
            notes.append(f"transcript: {error}")
    samples = [{**base, "vision": face} for face in part.faces] or ([base] if base else [])
    if not samples:
        notes.append("nothing to score")
    return _Scored(part, samples, text, notes)


def _score(predictor, pending: list[_Scored]) -> list[dict]:
    samples = [sample for scored in pending for sample in scored.samples]
    if samples:
        fused, alone = predictor.answers(samples)
    rows, at = [], 0
    for scored in pending:
        count = len(scored.samples)
        prediction = None
        if count:
            modalities = [m for m in MODALITIES if m in scored.samples[0]]
            prediction = predictor.frames_prediction(fused[at:at + count], {m: a[at:at + count] for m, a in alone.items()},
                                                     modalities)
        at += count
        rows.append(_row(scored, prediction))
    return rows


def _row(scored: _Scored, prediction) -> dict:
    part = scored.window
    row = {"start": round(part.start, 3), "end": round(part.end, 3), "label": "", "modalities": "",
           "faces": len(part.faces), "transcript": scored.text, "notes": "; ".join(scored.notes)}
    row.update({f"p_{e}": math.nan for e in EMOTIONS})
    for name in PER_MODALITY:
        row[f"{name}_label"] = ""
        row.update({f"{name}_p_{e}": math.nan for e in EMOTIONS})
    if prediction is not None:
        row.update(label=prediction.label, modalities="+".join(prediction.modalities))
        row.update({f"p_{e}": p for e, p in prediction.probabilities.items()})
        for name, probabilities in prediction.per_modality.items():
            row[f"{name}_label"] = max(probabilities, key=probabilities.get)
            row.update({f"{name}_p_{e}": p for e, p in probabilities.items()})
    return row


def _summary_notes(frame, rest: str) -> list[str]:
    notes = []
    count = len(frame)
    no_face = frame["notes"].str.contains("no face", regex=False)
    if no_face.any():
        notes.append(f"no face in {int(no_face.sum())} of {count} windows (first at {frame['start'][no_face].iloc[0]:g} s); "
                     + (f"those were scored from their {rest}" if rest else "they had nothing else to score"))
    silent = frame["notes"].str.contains("audio is silent", regex=False)
    if silent.any():
        notes.append(f"the sound is silent in {int(silent.sum())} of {count} windows; those were scored without it")
    empty = frame["label"] == ""
    if empty.any():
        notes.append(f"{int(empty.sum())} of {count} windows had nothing to score (no face, no usable sound, no "
                     "transcript): their label is empty")
    return notes


# ----------------------------------------------------------------------------- output
def save_timeline_csv(frame, path: str | Path) -> Path:
    from ..io_utils import atomic_write

    path = Path(path)
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))
    return path


def segments(frame) -> list[tuple[float, float, str]]:
    """The fused label's runs: (from, to, label), each window standing for its middle hop."""
    edges = _edges(frame)
    runs: list[list] = []
    for (left, right), label in zip(edges, frame["label"]):
        if runs and runs[-1][2] == label:
            runs[-1][1] = right
        else:
            runs.append([left, right, label])
    return [(float(a), float(b), label) for a, b, label in runs]


def _edges(frame) -> list[tuple[float, float]]:
    """Each window's share of the time axis: from the middle between its centre and the previous window's to the
    middle between its centre and the next's (the first from its start, the last to its end)."""
    centres = ((frame["start"] + frame["end"]) / 2).tolist()
    starts, ends = frame["start"].tolist(), frame["end"].tolist()
    edges = []
    for i, centre in enumerate(centres):
        left = starts[0] if i == 0 else (centres[i - 1] + centre) / 2
        right = ends[-1] if i == len(centres) - 1 else (centre + centres[i + 1]) / 2
        edges.append((left, right))
    return edges


EMOTION_COLOURS = {"anger": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#ff9f1c", "sad": "#1f77b4",
                   "surprise": "#17becf", "neutral": "#7f7f7f"}
PANEL_TITLES = {"image": "face", "audio": "voice", "text": "text"}


def timeline_figure(frame, title: str | None = None):
    """The probabilities over time, one panel per modality (those the video had) and one for the fused answer,
    with the fused dominant emotion as a coloured band underneath."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    panels = [(PANEL_TITLES[name], f"{name}_p_") for name in PER_MODALITY if frame[f"{name}_label"].ne("").any()]
    panels.append(("all together" if panels else "answer", "p_"))
    figure = Figure(figsize=(11, 1.9 * len(panels) + 1.3))
    axes = figure.subplots(len(panels) + 1, 1, sharex=True,
                           gridspec_kw={"height_ratios": [3] * len(panels) + [0.6]})
    centres = (frame["start"] + frame["end"]) / 2
    for ax, (name, prefix) in zip(axes, panels):
        for emotion in EMOTIONS:
            ax.plot(centres, frame[f"{prefix}{emotion}"], marker=".", lw=1.6 if prefix == "p_" else 1.1,
                    color=EMOTION_COLOURS[emotion], label=emotion)
        ax.set_ylim(0, 1)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    band = axes[-1]
    for (left, right), label in zip(_edges(frame), frame["label"]):
        if label:
            band.axvspan(left, right, color=EMOTION_COLOURS[label], lw=0)
    for left, right, label in segments(frame):
        if label and right - left > 0.06 * (frame["end"].max() - frame["start"].min()):
            band.text((left + right) / 2, 0.5, label, ha="center", va="center", fontsize=8, color="white")
    band.set_yticks([])
    band.set_ylabel("emotion", rotation=0, ha="right", va="center")
    band.set_xlabel("time (s)")
    if len(frame):
        band.set_xlim(frame["start"].min(), frame["end"].max())
    handles = [Patch(color=EMOTION_COLOURS[e], label=e) for e in EMOTIONS]
    axes[0].legend(handles=handles, ncol=len(EMOTIONS), loc="lower left", bbox_to_anchor=(0, 1.02), fontsize=8,
                   frameon=False)
    if title:
        figure.suptitle(title, fontsize=10, y=0.995)
    figure.tight_layout()
    return figure


def save_timeline_plot(frame, path: str | Path, title: str | None = None) -> Path:
    from ..io_utils import atomic_write

    path = Path(path)
    figure = timeline_figure(frame, title)
    kind = check_plot_path(path)
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format=kind))
    return path


PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")


def check_plot_path(path: str | Path) -> str:
    kind = Path(path).suffix.lower().lstrip(".")
    if kind not in PLOT_FORMATS:
        raise InputError(f"{path}: the plot is written as .png, .svg, .pdf or .jpg; name the file with one of these")
    return kind


def figure_pixels(figure) -> np.ndarray:
    """A figure as an RGB uint8 array (for the demo page)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
