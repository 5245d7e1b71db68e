"""Generate MELD, RAVDESS and FER2013 sample data in the real on-disk layouts, with learnable signals, and a small
audio-visual corpus (av/av.csv: recordings with a transcript, a voice and a face, as mp4 clips or wav + png pairs;
a multimodal manifest, data/multimodal.py).

Text carries emotion-dependent wording, speech carries emotion-dependent pitch, tempo, tremor and
breathiness contours, and faces carry emotion-dependent mouths and brows. Output is deterministic for a seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image, ImageDraw, ImageFilter

from ..errors import DataError
from ..labels import EMOTION_TO_FER_INDEX, EMOTIONS, MELD_TO_EMOTION, RAVDESS_EMOTIONS
from .meld import MELD_COLUMNS, MELD_FILES

RAVDESS_RATE = 48_000


@dataclass(frozen=True)
class SampleSize:
    meld_per_class: tuple[int, int, int]  # train, dev, test utterances per class
    ravdess_statements: int  # clips per actor and emotion (all 24 actors are written)
    fer_per_class: tuple[int, int, int]  # Training, PublicTest, PrivateTest images per class
    clip_seconds: tuple[float, float]
    av_per_class: int = 2  # audio-visual recordings per emotion (av/av.csv)


SIZES = {
    "small": SampleSize((40, 8, 12), 1, (48, 10, 14), (1.2, 1.8), 2),
    "medium": SampleSize((120, 20, 40), 2, (300, 40, 40), (2.0, 3.0), 4),
}

# ----------------------------------------------------------------------------- MELD text
_PHRASES = {
    "anger": ["I am so angry at you", "this is outrageous", "how dare you do that", "I'm furious right now",
              "stop yelling at me, you idiot", "that makes me mad", "I hate when you lie to me"],
    "disgust": ["that is disgusting", "eww, gross", "that's revolting", "yuck, that smells nasty",
                "ugh, that's so gross", "what a vile thing", "that's repulsive"],
    "fear": ["I'm scared", "I'm terrified of it", "oh no, I'm so afraid", "please help me, I'm frightened",
             "something is in the dark", "I'm nervous about the dark", "that's creepy and scary"],
    "joy": ["I'm so happy", "this is wonderful", "yay, that's great news", "I love it so much",
            "we did it, awesome", "what a fantastic day", "that's so sweet, thank you"],
    "sadness": ["I'm so sad", "I miss her so much", "this is heartbreaking", "I feel lonely and terrible",
                "I can't stop crying", "he left me", "everything is ruined, sorry"],
    "surprise": ["oh my God, really?", "wow, no way!", "what?! seriously?", "I can't believe it!",
                 "you're kidding me!", "whoa, since when?", "are you serious?!"],
    "neutral": ["I'll be at the coffee house", "can you pass the salt", "we need to talk about the rent",
                "it's on the table", "the meeting is at noon", "I'm going to the store", "okay, see you later"],
}
_LEADS = ["", "", "Okay, ", "Well, ", "Listen, ", "You know, ", "Ross, ", "Rachel, ", "Joey, ", "Hey, "]
_TAILS = ["", "", ".", "!", "...", " — honestly.", " right now.", " again.", ", ’kay?"]
_SPEAKERS = ["Chandler", "Joey", "Monica", "Rachel", "Ross", "Phoebe"]


def _utterance(rng: np.random.Generator, emotion: str) -> str:
    text = rng.choice(_LEADS) + rng.choice(_PHRASES[emotion]) + rng.choice(_TAILS)
    if rng.random() < 0.05:  # the real files hold line breaks and doubled spaces inside utterances
        text = text.replace(" ", "\n", 1)
    if rng.random() < 0.05:
        text = text.replace(" ", "  ", 1)
    return text[0].upper() + text[1:]


def sample_utterance(rng: np.random.Generator, emotion: str) -> str:
    """One utterance of the sample MELD data showing `emotion` (a taxonomy label: happy, sad, ...)."""
    meld_label = next(name for name, label in MELD_TO_EMOTION.items() if label == emotion)
    return " ".join(_utterance(rng, meld_label).split())


def write_meld(root: Path, size: SampleSize, rng: np.random.Generator) -> None:
    data_dir = root / "meld" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    meld_labels = list(MELD_TO_EMOTION)
    for (split, filename), per_class in zip(MELD_FILES.items(), size.meld_per_class):
        emotions = [e for e in meld_labels for _ in range(per_class)]
        rng.shuffle(emotions)
        rows, dialogue, utterance = [], 0, 0
        dialogue_length = int(rng.integers(3, 9))
        for number, emotion in enumerate(emotions, start=1):
            if utterance == dialogue_length:
                dialogue, utterance, dialogue_length = dialogue + 1, 0, int(rng.integers(3, 9))
            start = int(rng.integers(0, 3600 * 1000))
            rows.append({
                "Sr No.": number, "Utterance": _utterance(rng, emotion), "Speaker": rng.choice(_SPEAKERS),
                "Emotion": emotion, "Sentiment": _sentiment(emotion), "Dialogue_ID": dialogue,
                "Utterance_ID": utterance, "Season": int(rng.integers(1, 11)), "Episode": int(rng.integers(1, 25)),
                "StartTime": _timestamp(start), "EndTime": _timestamp(start + int(rng.integers(800, 6000))),
            })
            utterance += 1
        pd.DataFrame(rows, columns=list(MELD_COLUMNS)).to_csv(data_dir / filename, index=False)


def _sentiment(emotion: str) -> str:
    return {"joy": "positive", "neutral": "neutral", "surprise": "positive"}.get(emotion, "negative")


def _timestamp(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


# ----------------------------------------------------------------------------- RAVDESS speech
# emotion code -> pitch factor, pitch glide (octaves over the clip), syllables per second, level, tremor, breathiness
_VOICE = {
    1: (1.00, 0.00, 4.0, 0.50, 0.00, 0.02),
    2: (0.95, -0.05, 3.0, 0.35, 0.00, 0.02),
    3: (1.35, 0.35, 5.5, 0.70, 0.00, 0.02),
    4: (0.80, -0.40, 2.2, 0.30, 0.00, 0.06),
    5: (1.20, -0.10, 7.0, 1.00, 0.00, 0.20),
    6: (1.55, 0.10, 6.0, 0.50, 0.08, 0.05),
    7: (0.90, -0.15, 3.0, 0.55, 0.00, 0.35),
    8: (1.30, 0.90, 4.0, 0.75, 0.00, 0.02),
}


def _harmonics(phase: np.ndarray, count: int) -> np.ndarray:
    """sum over k = 1..count of sin(k * phase) / k (a sawtooth-like voiced source), by the recurrence
    sin((k+1)x) = 2 cos(x) sin(kx) - sin((k-1)x): one sine and one cosine instead of `count` sines."""
    twice_cos = 2 * np.cos(phase)
    previous, current = np.zeros_like(phase), np.sin(phase)
    total = current.copy()
    for k in range(2, count + 1):
        previous, current = current, twice_cos * current - previous
        total += current / k
    return total


def synthesize_voice(rng: np.random.Generator, emotion_code: int, actor: int, seconds: float, rate: int = RAVDESS_RATE) -> np.ndarray:
    pitch, glide, syllables, level, tremor, breath = _VOICE[emotion_code]
    base = (120.0 if actor % 2 else 210.0) * (1 + 0.06 * ((actor * 7) % 5 - 2) / 2)  # odd actors male, as in RAVDESS
    n = int(seconds * rate)
    t = np.arange(n) / rate
    progress = t / seconds
    f0 = base * pitch * rng.uniform(0.94, 1.06) * 2 ** (glide * (progress - 0.5))
    f0 = f0 * (1 + tremor * np.sin(2 * np.pi * 7.0 * t)) * (1 + 0.005 * rng.standard_normal(n).cumsum() / np.sqrt(n))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = _harmonics(phase, 11)
    syllable_rate = syllables * rng.uniform(0.9, 1.1)
    envelope = np.clip(np.sin(np.pi * syllable_rate * t + rng.uniform(0, np.pi)), 0, None) ** 0.7
    noise = rng.standard_normal(n)
    signal = envelope * ((1 - breath) * voiced / 2.0 + breath * 2.0 * noise)
    fade = np.minimum(1, np.minimum(t, seconds - t) / 0.05)
    signal = level * 0.3 * signal * fade + 0.002 * rng.standard_normal(n)
    return np.clip(signal, -1, 1).astype(np.float32)


def write_ravdess(root: Path, size: SampleSize, rng: np.random.Generator) -> None:
    for actor in range(1, 25):
        actor_dir = root / "ravdess" / f"Actor_{actor:02d}"
        actor_dir.mkdir(parents=True, exist_ok=True)
        for emotion_code in RAVDESS_EMOTIONS:
            for statement in range(1, size.ravdess_statements + 1):
                intensity = 1 if emotion_code == 1 else 1 + (actor + statement) % 2  # neutral has no strong intensity
                name = f"03-01-{emotion_code:02d}-{intensity:02d}-{statement:02d}-01-{actor:02d}.wav"
                seconds = float(rng.uniform(*size.clip_seconds))
                wave = synthesize_voice(rng, emotion_code, actor, seconds)
                sf.write(actor_dir / name, wave, RAVDESS_RATE, subtype="PCM_16")


# ----------------------------------------------------------------------------- FER2013 faces
def draw_face(rng: np.random.Generator, emotion: str, side: int = 48) -> np.ndarray:
    """A grey 48x48 cartoon face whose mouth and brows show the emotion; pose and lighting vary."""
    scale = 4
    big = side * scale
    image = Image.new("L", (big, big), int(rng.integers(20, 90)))
    draw = ImageDraw.Draw(image)
    cx, cy = big / 2 + rng.uniform(-3, 3) * scale, big / 2 + rng.uniform(-3, 3) * scale
    r = big * rng.uniform(0.36, 0.44)
    draw.ellipse([cx - r * 0.85, cy - r, cx + r * 0.85, cy + r], fill=int(rng.integers(150, 220)))
    dark = int(rng.integers(10, 50))
    w = max(2, int(scale * 1.2))
    eye_y, eye_dx = cy - 0.25 * r, 0.35 * r
    eye_r = 0.09 * r * (1.5 if emotion in ("fear", "surprise") else 1.0)
    for sx in (-1, 1):
        ex = cx + sx * eye_dx
        draw.ellipse([ex - eye_r, eye_y - eye_r, ex + eye_r, eye_y + eye_r], fill=dark)
        brow_y = eye_y - 0.22 * r - (0.12 * r if emotion in ("fear", "surprise") else 0)
        inner, outer = ex - sx * 0.15 * r, ex + sx * 0.18 * r
        tilt = {"anger": 0.12, "sad": -0.12, "fear": -0.08, "disgust": 0.05}.get(emotion, 0.0) * r
        draw.line([(inner, brow_y + tilt), (outer, brow_y - tilt)], fill=dark, width=w)
    my, mw = cy + 0.45 * r, 0.35 * r
    if emotion == "happy":
        draw.arc([cx - mw, my - 0.35 * r, cx + mw, my + 0.15 * r], 20, 160, fill=dark, width=w)
    elif emotion == "sad":
        draw.arc([cx - mw, my, cx + mw, my + 0.4 * r], 200, 340, fill=dark, width=w)
    elif emotion == "surprise":
        draw.ellipse([cx - 0.14 * r, my - 0.18 * r, cx + 0.14 * r, my + 0.2 * r], fill=dark)
    elif emotion == "fear":
        draw.ellipse([cx - mw, my - 0.07 * r, cx + mw, my + 0.09 * r], fill=dark)
    elif emotion == "anger":
        draw.rectangle([cx - mw * 0.8, my - 0.03 * r, cx + mw * 0.8, my + 0.05 * r], fill=dark)
    elif emotion == "disgust":
        draw.line([(cx - mw, my + 0.08 * r), (cx - mw / 3, my - 0.08 * r), (cx + mw / 3, my + 0.08 * r), (cx + mw, my - 0.08 * r)], fill=dark, width=w)
        for sx in (-1, 1):  # wrinkled nose
            draw.line([(cx + sx * 0.08 * r, cy), (cx + sx * 0.2 * r, cy + 0.08 * r)], fill=dark, width=max(1, w // 2))
    else:
        draw.line([(cx - mw * 0.8, my), (cx + mw * 0.8, my)], fill=dark, width=w)
    image = image.rotate(float(rng.uniform(-8, 8)), resample=Image.BILINEAR, center=(cx, cy))
    image = image.filter(ImageFilter.GaussianBlur(scale * 0.4)).resize((side, side), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, (side, side))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_fer2013(root: Path, size: SampleSize, rng: np.random.Generator) -> None:
    folder = root / "fer2013"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for usage, per_class in zip(("Training", "PublicTest", "PrivateTest"), size.fer_per_class):
        for emotion in EMOTIONS:
            for _ in range(per_class):
                pixels = draw_face(rng, emotion)
                rows.append((EMOTION_TO_FER_INDEX[emotion], " ".join(map(str, pixels.ravel().tolist())), usage))
    order = np.concatenate([rng.permutation(np.flatnonzero([r[2] == u for r in rows])) for u in ("Training", "PublicTest", "PrivateTest")])
    frame = pd.DataFrame([rows[i] for i in order], columns=["emotion", "pixels", "Usage"])
    frame.to_csv(folder / "fer2013.csv", index=False)


# ----------------------------------------------------------------------------- audio-visual recordings
AV_RATE = 16_000
AV_SIDE = 96  # frame side: a face-sized frame (the whole frame is the face when no face is detected)
_EMOTION_CODE = {name: code for code, (_, name) in sorted(RAVDESS_EMOTIONS.items(), reverse=True)}  # neutral -> 1


def write_mp4(path: Path, shots: list[tuple[np.ndarray, int]], audio: np.ndarray | None, rate: int = AV_RATE,
              fps: int = 10) -> Path:
    """An mp4 (MPEG-4 video, AAC sound): each shot an RGB frame [height, width, 3] (uint8) shown for its number of
    frames, in order, and `audio` (mono float at `rate`, clipped to [-1, 1]) as the track, or no track when None."""
    import av

    height, width = shots[0][0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=rate)
            sound.layout = "mono"
        for frame_rgb, count in shots:
            for _ in range(count):
                for packet in video.encode(av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")):
                    container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in sound.encode(frame):
                container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def write_av_clip(path: Path, face: np.ndarray, audio: np.ndarray | None, rate: int = AV_RATE, seconds: float = 1.0,
                  fps: int = 10, side: int = AV_SIDE) -> Path:
    """An mp4 showing the grey face `face` enlarged to `side` x `side` for `seconds`, with `audio` (mono float at
    `rate`) as its track, or without a track when `audio` is None."""
    frame_rgb = np.repeat(np.asarray(Image.fromarray(face).resize((side, side), Image.BICUBIC))[..., None], 3, axis=2)
    return write_mp4(path, [(frame_rgb, max(1, int(seconds * fps)))], audio, rate, fps)


def write_av(root: Path, size: SampleSize, rng: np.random.Generator) -> Path:
    """ROOT/av/av.csv: `av_per_class` recordings per emotion, each a transcript, a one-second voice and a face;
    every other recording is an mp4 clip (video column: the face in its frames, the voice as its track), the rest a
    wav + png pair (audio and image columns). Returns the manifest."""
    folder = root / "av"
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(size.av_per_class):
        for emotion in EMOTIONS:
            number = len(rows)
            name = f"clips/{number:03d}_{emotion}"
            voice = synthesize_voice(rng, _EMOTION_CODE[emotion], 1 + number % 24, 1.0, rate=AV_RATE)
            face = draw_face(rng, emotion)
            row = {"id": f"{number:03d}", "text": sample_utterance(rng, emotion), "audio": "", "image": "", "video": "",
                   "label": emotion, "split": "test" if k == size.av_per_class - 1 else "train",
                   "speaker": f"actor_{1 + number % 4}"}
            if number % 2 == 0:
                write_av_clip(folder / f"{name}.mp4", face, voice)
                row["video"] = f"{name}.mp4"
            else:
                sf.write(folder / f"{name}.wav", voice, AV_RATE, subtype="PCM_16")
                Image.fromarray(face).save(folder / f"{name}.png")
                row["audio"], row["image"] = f"{name}.wav", f"{name}.png"
            rows.append(row)
    manifest = folder / "av.csv"
    pd.DataFrame(rows, columns=["id", "text", "audio", "image", "video", "label", "split", "speaker"]).to_csv(manifest, index=False)
    return manifest


SAMPLE_MARKER = "SAMPLE_DATA.txt"  # says the folder's datasets are generated, so writing them again loses nothing
SAMPLE_FOLDERS = ("meld", "ravdess", "fer2013", "av")


def _check_target(root: Path) -> None:
    """DataError unless `root` is a folder the sample data may be written to: new, empty, or holding sample data
    only (real datasets there would be overwritten)."""
    if root.exists() and not root.is_dir():
        raise DataError(root, "not a folder")
    held = [f"{name}/" for name in SAMPLE_FOLDERS if (root / name).is_dir() and any((root / name).iterdir())]
    if held and not (root / SAMPLE_MARKER).is_file():
        raise DataError(root, f"already holds {', '.join(held)} without the {SAMPLE_MARKER} that make-sample-data "
                              "leaves (real data is never written over); write the sample data to another folder (sample "
                              f"data of a version before that mark: delete it, or add an empty {SAMPLE_MARKER})")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(root, f"cannot create the folder ({error.strerror})") from None


def make_sample_data(root: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write ROOT/meld/data/*.csv, ROOT/ravdess/Actor_XX/*.wav, ROOT/fer2013/fer2013.csv and ROOT/av/av.csv (with
    its clips), and ROOT/SAMPLE_DATA.txt saying they are generated. DataError for a ROOT that holds other data."""
    if size not in SIZES:
        raise ValueError(f"unknown sample size {size!r}: use {', '.join(SIZES)}")
    root = Path(root)
    _check_target(root)
    (root / SAMPLE_MARKER).write_text(f"Generated by `emoxformer make-sample-data` (size {size}, seed {seed}): "
                                      "synthetic data in the real datasets' layouts, for tests and the quickstart.\n")
    spec = SIZES[size]
    meld_rng, ravdess_rng, fer_rng, av_rng = (np.random.default_rng([seed, i]) for i in range(4))
    write_meld(root, spec, meld_rng)
    write_ravdess(root, spec, ravdess_rng)
    write_fer2013(root, spec, fer_rng)
    write_av(root, spec, av_rng)
    return root
