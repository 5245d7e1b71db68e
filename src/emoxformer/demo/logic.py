"""The demo's logic without Gradio: run the Predictor on what the page was given, refuse unusable inputs one by one,
tabulate what each modality says on its own beside the fused answer, and draw the face box.

Every prediction goes through `Predictor.predict`, the call behind `emoxformer predict`, so the page and the
command line give the same answer for the same inputs.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelLoadError
from ..inference import FaceCrop, Prediction, Predictor
from ..labels import EMOTIONS

DEFAULT_MODEL = Path("emoxformer-runs/quickstart/best")  # where `emoxformer quickstart` puts its model by default
INPUT_NAMES = ("text", "audio", "image", "video")
ROW_NAMES = {"text": "text alone", "audio": "audio alone", "image": "face alone"}  # keyed by Prediction.modalities
FUSED_ROW = "all together"
FUSION_TITLES = {"model": "the trained fusion (cross-attention over the modalities' answers)",
                 "late": "late fusion (the product of each input's own calibrated answer)"}
DIALOGUE = "dialogue context"  # the earlier turns and speaker, reported apart from the text
VIDEO_OVERRIDES = "not used: with a video, its own sound track and frames are used (as in `emoxformer predict`)"


@dataclass
class DemoInputs:
    """What the page hands over; files arrive as paths, empty fields as None or ''."""

    text: str | None = None
    audio: str | None = None
    image: str | None = None
    video: str | None = None
    detect_faces: bool = True
    context: str | None = None  # earlier turns of the dialogue, one "Speaker: utterance" a line, oldest first
    speaker: str | None = None  # who says `text`

    def given(self) -> dict[str, str]:
        values = {name: getattr(self, name) for name in INPUT_NAMES}
        return {name: value for name, value in values.items() if value is not None and str(value).strip()}

    def dialogue(self) -> dict:
        """The Predictor's context and speaker arguments, for those given."""
        turns = [line.strip() for line in (self.context or "").splitlines() if line.strip()]
        speaker = (self.speaker or "").strip()
        return {**({"context": turns} if turns else {}), **({"speaker": speaker} if speaker else {})}


@dataclass
class DemoResult:
    prediction: Prediction | None  # the fused answer over the accepted inputs; None when none was usable
    alone: dict[str, dict[str, float]] = field(default_factory=dict)  # modality -> its probabilities on its own
    used: list[str] = field(default_factory=list)  # accepted inputs, in INPUT_NAMES order (plus DIALOGUE)
    refused: dict[str, str] = field(default_factory=dict)  # input -> why (the InputError text)
    face: FaceCrop | None = None  # the face the Predictor classified from the image input, when it was used
    notes: list[str] = field(default_factory=list)  # the Predictor's notes on how inputs were used

    @property
    def label(self) -> str | None:
        return self.prediction.label if self.prediction else None

    @property
    def face_box(self) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of the face crop in the image input."""
        return self.face.box if self.face else None


def resolve_model_dir(model: str | Path | None, default: Path = DEFAULT_MODEL) -> Path:
    """The model folder to serve: --model, else the quickstart's model when it exists."""
    if model is not None:
        return Path(model)
    if (default / "config.json").is_file():
        return default
    raise ModelLoadError(f"no model to serve: {default} does not exist; run `emoxformer quickstart` first or pass --model DIR")


class _Attempts:
    """Predictions of single inputs, collecting each refusal with its reason instead of stopping."""

    def __init__(self, predictor: Predictor, inputs: DemoInputs):
        self.predictor, self.detect_faces = predictor, inputs.detect_faces
        self.given = inputs.given()
        self.alone: dict[str, Prediction] = {}
        self.refused: dict[str, str] = {}
        self.dialogue: dict = {}  # the context and speaker going with the text, once the text took them
        self.face: FaceCrop | None = None  # the image's face, located once for every prediction that uses it

    def attempt(self, name: str, call):
        """call(), or None with the refusal of input `name` recorded."""
        try:
            return call()
        except InputError as error:
            self.refused[name] = _without_folders(str(error), self.given.get(name))
            return None

    def try_predict(self, name: str, **values) -> Prediction | None:
        return self.attempt(name, lambda: self.predictor.predict(**values, detect_faces=self.detect_faces))

    def try_alone(self, name: str) -> None:
        if name in self.given and (prediction := self.try_predict(name, **{name: self.given[name]})) is not None:
            self.alone[name] = prediction

    def image(self) -> None:
        """The image's face, decoded and located once; the image alone and the fused prediction both use it."""
        if "image" not in self.given:
            return
        self.face = self.attempt("image", self._locate_face)
        if self.face is not None and (prediction := self.try_predict("image", image=self.face)) is not None:
            self.alone["image"] = prediction

    def _locate_face(self) -> FaceCrop:
        image = self.given["image"]
        self.predictor.processor.check_modalities({"vision": image})  # a model without vision: that is the reason
        return self.predictor.locate_face(image, self.detect_faces)

    def text(self, dialogue: dict) -> None:
        """The text with its dialogue context; context the model refuses is reported and the text used alone."""
        if "text" not in self.given:
            if dialogue:
                self.refused[DIALOGUE] = "earlier turns and speaker go with a text to classify: type the text too"
            return
        if dialogue and (prediction := self.try_predict(DIALOGUE, text=self.given["text"], **dialogue)) is not None:
            self.alone["text"], self.dialogue = prediction, dialogue
            return
        self.try_alone("text")
        if dialogue and "text" in self.refused:
            self.refused.pop(DIALOGUE, None)
            self.refused[DIALOGUE] = "goes with the text, which was refused"


def run_demo(predictor: Predictor, inputs: DemoInputs) -> DemoResult:
    """Predict from every usable input; an unusable one is refused with its reason and the others still count."""
    attempts = _Attempts(predictor, inputs)
    attempts.text(inputs.dialogue())
    given = attempts.given
    if "video" in given:
        text = {"text": given["text"], **attempts.dialogue} if "text" in attempts.alone else {}
        prediction = attempts.try_predict("video", video=given["video"], **text)  # as `emoxformer predict --video --text`
        if prediction is not None:
            attempts.refused.update({name: VIDEO_OVERRIDES for name in ("audio", "image") if name in given})
            used = (["text"] if text else []) + ["video"] + ([DIALOGUE] if attempts.dialogue else [])
            return DemoResult(prediction, dict(prediction.per_modality), used, attempts.refused, notes=list(prediction.notes))
    attempts.try_alone("audio")  # without a usable video the files given beside it count
    attempts.image()
    return _fused(attempts)


def _fused(attempts: _Attempts) -> DemoResult:
    alone, given = attempts.alone, attempts.given
    used = [name for name in INPUT_NAMES if name in alone]
    if not used:
        return DemoResult(None, refused=attempts.refused)
    if len(used) == 1:
        prediction = alone[used[0]]
    else:
        values = {name: attempts.face if name == "image" else given[name] for name in used}
        prediction = attempts.predictor.predict(**values, **attempts.dialogue, detect_faces=attempts.detect_faces)
    notes = list(dict.fromkeys(note for p in [prediction, *alone.values()] for note in p.notes))
    return DemoResult(prediction, {name: p.probabilities for name, p in alone.items()},
                      used + ([DIALOGUE] if attempts.dialogue else []), attempts.refused,
                      attempts.face if "image" in used else None, notes)


def _without_folders(message: str, value) -> str:
    """Uploads live in temporary folders; the reason names the file as the user knows it."""
    if isinstance(value, (str, Path)) and str(value) in message:
        return message.replace(str(value), Path(value).name)
    return message


def draw_face_box(pixels: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """A decoded image (uint8, grey or RGB) as RGB with the face box drawn on it (unchanged when there is no box)."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(pixels).convert("RGB")
    if box is not None:
        x, y, w, h = box
        line = max(2, round(min(picture.size) / 100))
        ImageDraw.Draw(picture).rectangle([x, y, x + w - 1, y + h - 1], outline=(0, 200, 80), width=line)
    return np.asarray(picture)


def modality_rows(result: DemoResult) -> list[dict]:
    """One row per modality on its own, then the fused answer when more than one input was used."""
    rows = [_row(ROW_NAMES[m], p) for m, p in _in_row_order(result.alone)]
    if result.prediction is not None and len(result.alone) > 1:
        rows.append(_row(FUSED_ROW, result.prediction.probabilities))
    return rows


def _in_row_order(alone: dict[str, dict[str, float]]):
    for modality, name in ROW_NAMES.items():
        if modality in alone:
            yield modality, alone[modality]


def _row(name: str, probabilities: dict[str, float]) -> dict:
    label = max(probabilities, key=probabilities.get)
    return {"input": name, "emotion": label, "confidence": probabilities[label], "probabilities": probabilities}


def modality_table_html(rows: list[dict]) -> str:
    """The per-modality rows as an HTML table: input, emotion, confidence with a bar."""
    if not rows:
        return "<p>No prediction yet.</p>"
    body = "".join(
        f"<tr class='{'fused' if row['input'] == FUSED_ROW else 'alone'}'><td>{html.escape(row['input'])}</td>"
        f"<td class='emotion'>{html.escape(row['emotion'])}</td>"
        f"<td><span class='bar' style='width:{row['confidence'] * 100:.0f}px'></span> {row['confidence']:.0%}</td></tr>"
        for row in rows
    )
    return ("<table class='per-modality'><thead><tr><th>input</th><th>emotion</th><th>confidence</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def inputs_report(result: DemoResult) -> str:
    """Markdown: which inputs were used and which were refused, with the reason."""
    lines = []
    if result.used:
        lines.append("**Used:** " + ", ".join(_input_title(name) for name in result.used))
    for name, reason in result.refused.items():
        lines.append(f"**Refused {_input_title(name)}:** {reason}")
    if result.prediction is not None and result.prediction.fusion:
        lines.append(f"**Combined by:** {FUSION_TITLES[result.prediction.fusion]}")
    lines += [f"**Note:** {note}" for note in result.notes]
    if not result.used and not result.refused:
        lines.append("No input given: type a sentence, or add audio, an image or a video.")
    return "  \n".join(lines)


def _input_title(name: str) -> str:
    return {"image": "image (face)"}.get(name, name)


@dataclass
class PageOutputs:
    """What the page shows, in plain values: probabilities for the label chart, the table, the report, the image."""

    probabilities: dict[str, float] | None
    table_html: str
    report: str
    face_image: np.ndarray | None


def page_outputs(predictor: Predictor, inputs: DemoInputs) -> PageOutputs:
    result = run_demo(predictor, inputs)
    face_image = draw_face_box(result.face.image, result.face.box) if result.face is not None else None
    probabilities = result.prediction.probabilities if result.prediction else None
    return PageOutputs(probabilities, modality_table_html(modality_rows(result)), inputs_report(result), face_image)


# ----------------------------------------------------------------------------- emotion over time (a video)
TIMELINE_COLUMNS = {"start": "from (s)", "end": "to (s)", "label": "emotion", "image_label": "face",
                    "audio_label": "voice", "text_label": "text", "notes": "notes"}


@dataclass
class TimelineOutputs:
    """What the page shows for a video over time: the plot (RGB pixels), the table and notes (Markdown)."""

    plot: np.ndarray | None
    table: object | None  # a pandas DataFrame, one row per window
    report: str


def timeline_outputs(predictor: Predictor, video: str | None, window: float = 2.0, hop: float = 1.0,
                     transcript: str | None = None, detect_faces: bool = True) -> TimelineOutputs:
    """`Predictor.timeline` of the uploaded video (the call behind `emoxformer predict --timeline`), drawn as the
    command's --plot draws it; an unusable video or transcript gives its reason instead."""
    from ..inference.timeline import figure_pixels, timeline_figure

    if not video:
        return TimelineOutputs(None, None, "Upload a video to see its emotion over time.")
    try:
        frame = predictor.timeline(video, window=window, hop=hop, transcript=transcript or None, detect_faces=detect_faces)
    except InputError as error:
        message = _without_folders(_without_folders(str(error), video), transcript)
        return TimelineOutputs(None, None, f"**Refused:** {message}")
    plot = figure_pixels(timeline_figure(frame, Path(video).name))
    table = frame[list(TIMELINE_COLUMNS)].rename(columns=TIMELINE_COLUMNS)
    table.insert(3, "confidence", frame[[f"p_{e}" for e in EMOTIONS]].max(axis=1).round(3))
    report = [f"{len(frame)} windows of {window:g} s, one every {hop:g} s"] + [f"**Note:** {n}" for n in frame.attrs["notes"]]
    return TimelineOutputs(plot, table, "  \n".join(report))
