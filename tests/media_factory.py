"""Test media made on the fly: a face photo, a stereo 44.1 kHz recording, a short video with sound."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def face_photo(face: np.ndarray, path: Path, size=(640, 480), at=(430, 260), side=150) -> tuple[int, int, int, int]:
    """Paste a grey face crop, enlarged to `side`, onto a large textured background; returns its (x, y, w, h)."""
    rng = np.random.default_rng(0)
    background = (rng.normal(120, 20, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
    patch = np.asarray(Image.fromarray(face).resize((side, side), Image.BICUBIC))
    background[at[1]:at[1] + side, at[0]:at[0] + side] = patch[..., None]
    Image.fromarray(background).save(path)
    return at[0], at[1], side, side


def write_video(path: Path, face: np.ndarray, audio: np.ndarray, rate: int, seconds: float = 1.0, fps: int = 10) -> Path:
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "mono"
        frame_rgb = np.full((240, 320, 3), 90, np.uint8)
        frame_rgb[50:194, 90:234] = np.asarray(Image.fromarray(face).resize((144, 144), Image.BICUBIC))[..., None]
        for _ in range(int(seconds * fps)):
            for packet in video.encode(av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = (audio[: int(seconds * rate)] * 32767).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in sound.encode(frame):
            container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    return path


def write_scenes(path: Path, scenes: list[tuple[float, np.ndarray | None, np.ndarray | None]], rate: int = 16_000,
                 fps: int = 10, size=(320, 240)) -> Path:
    """A video of scenes, each (seconds, grey face crop or None, mono sound at `rate` or None): the face enlarged
    on a textured background (no face: the background alone), the sounds one after the other (None: silence). No
    scene with sound: no audio track at all."""
    import av

    width, height = size
    background = np.random.default_rng(0).normal(90, 12, (height, width, 1)).clip(0, 255).astype(np.uint8).repeat(3, 2)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        has_sound = any(sound is not None for _, _, sound in scenes)
        if has_sound:
            track = container.add_stream("aac", rate=rate)
            track.layout = "mono"
        sounds = []
        for seconds, face, sound in scenes:
            frame_rgb = background.copy()
            if face is not None:
                side = min(144, height - 20)
                top, left = (height - side) // 2, (width - side) // 2
                frame_rgb[top:top + side, left:left + side] = np.asarray(
                    Image.fromarray(face).resize((side, side), Image.BICUBIC))[..., None]
            for _ in range(round(seconds * fps)):
                for packet in video.encode(av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")):
                    container.mux(packet)
            samples = np.zeros(round(seconds * rate), np.float32)
            if sound is not None:
                samples[:min(len(sound), len(samples))] = sound[:len(samples)]
            sounds.append(samples)
        for packet in video.encode():
            container.mux(packet)
        if has_sound:
            samples = (np.clip(np.concatenate(sounds), -1, 1) * 32767).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in track.encode(frame):
                container.mux(packet)
            for packet in track.encode():
                container.mux(packet)
    return path
