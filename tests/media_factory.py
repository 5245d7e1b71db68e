"""Test media made on the fly: a face photo, a stereo 44.1 kHz recording, a short video with sound."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from emoxformer.data.sample_data import write_mp4


def face_photo(face: np.ndarray, path: Path, size=(640, 480), at=(430, 260), side=150) -> tuple[int, int, int, int]:
    """Paste a grey face crop, enlarged to `side`, onto a large textured background; returns its (x, y, w, h)."""
    rng = np.random.default_rng(0)
    background = (rng.normal(120, 20, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
    patch = np.asarray(Image.fromarray(face).resize((side, side), Image.BICUBIC))
    background[at[1]:at[1] + side, at[0]:at[0] + side] = patch[..., None]
    Image.fromarray(background).save(path)
    return at[0], at[1], side, side


def write_video(path: Path, face: np.ndarray, audio: np.ndarray, rate: int, seconds: float = 1.0, fps: int = 10) -> Path:
    """A 320x240 video of the grey face `face` enlarged to 144 pixels, with the first `seconds` of `audio` as sound."""
    frame_rgb = np.full((240, 320, 3), 90, np.uint8)
    frame_rgb[50:194, 90:234] = np.asarray(Image.fromarray(face).resize((144, 144), Image.BICUBIC))[..., None]
    return write_mp4(path, [(frame_rgb, int(seconds * fps))], audio[: int(seconds * rate)], rate, fps)


def write_scenes(path: Path, scenes: list[tuple[float, np.ndarray | None, np.ndarray | None]], rate: int = 16_000,
                 fps: int = 10, size=(320, 240)) -> Path:
    """A video of scenes, each (seconds, grey face crop or None, mono sound at `rate` or None): the face enlarged
    on a textured background (no face: the background alone), the sounds one after the other (None: silence). No
    scene with sound: no audio track at all."""
    width, height = size
    background = np.random.default_rng(0).normal(90, 12, (height, width, 1)).clip(0, 255).astype(np.uint8).repeat(3, 2)
    shots, sounds = [], []
    for seconds, face, sound in scenes:
        frame_rgb = background.copy()
        if face is not None:
            side = min(144, height - 20)
            top, left = (height - side) // 2, (width - side) // 2
            frame_rgb[top:top + side, left:left + side] = np.asarray(
                Image.fromarray(face).resize((side, side), Image.BICUBIC))[..., None]
        shots.append((frame_rgb, round(seconds * fps)))
        samples = np.zeros(round(seconds * rate), np.float32)
        if sound is not None:
            samples[:min(len(sound), len(samples))] = sound[:len(samples)]
        sounds.append(samples)
    has_sound = any(sound is not None for _, _, sound in scenes)
    return write_mp4(path, shots, np.concatenate(sounds) if has_sound else None, rate, fps)
