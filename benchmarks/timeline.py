"""Seconds of compute per minute of video for `emoxformer predict --video --timeline` (Predictor.timeline).

Writes a generated talk (a cartoon face on a textured background, 25 frames a second at 640x360, a synthetic voice,
the emotion changing every 5 s) with an SRT transcript, then times the timeline of it: decoding, face detection,
and the model on every window's faces, sound and text. The model: by default a recipe's architecture with random
fusion (--config quickstart, the small built-in encoders; --config laptop, the laptop recipe's pretrained
encoders: its compute is the trained model's), or a trained model folder (--model RUN/best).
Last line: {"name", "video_s", "compute_s", "seconds_per_minute", "ratio" (times faster than the video plays),
"windows", "peak_rss_growth_mib"}.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from emoxformer.data.sample_data import draw_face, sample_utterance, synthesize_voice  # noqa: E402
from emoxformer.inference import Predictor  # noqa: E402
from emoxformer.labels import EMOTIONS, RAVDESS_EMOTIONS  # noqa: E402

RATE = 16_000
SCENE_S = 5.0
VOICE = {name: code for code, (_, name) in sorted(RAVDESS_EMOTIONS.items(), reverse=True)}  # neutral -> 1


def write_talk(path: Path, seconds: float, fps: int = 25, size=(640, 360), seed: int = 0) -> list[tuple[float, float, str]]:
    """The video (MPEG-4, AAC); returns its transcript cues (start, end, text), one per scene."""
    import av
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    background = rng.normal(100, 15, (height, width, 1)).clip(0, 255).astype(np.uint8).repeat(3, 2)
    side = height // 2
    cues = []
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=RATE)
        sound.layout = "mono"
        start, scene = 0.0, 0
        while start < seconds - 1e-6:
            length = min(SCENE_S, seconds - start)
            emotion = EMOTIONS[scene % len(EMOTIONS)]
            frame = background.copy()
            face = np.asarray(Image.fromarray(draw_face(rng, emotion)).resize((side, side), Image.BICUBIC))
            top, left = (height - side) // 2, (width - side) // 3
            frame[top:top + side, left:left + side] = face[..., None]
            for _ in range(round(length * fps)):
                for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            voice = synthesize_voice(rng, VOICE[emotion], 1 + scene % 24, length, rate=RATE)
            audio = av.AudioFrame.from_ndarray((np.clip(voice, -1, 1) * 32767).astype(np.int16)[None], format="s16",
                                               layout="mono")
            audio.sample_rate = RATE
            for packet in sound.encode(audio):
                container.mux(packet)
            cues.append((start + 0.3, start + length - 0.3, sample_utterance(rng, emotion)))
            start, scene = start + length, scene + 1
        for stream in (video, sound):
            for packet in stream.encode():
                container.mux(packet)
    return cues


def write_srt(path: Path, cues) -> Path:
    def clock(seconds: float) -> str:
        ms = round(seconds * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    path.write_text("".join(f"{i}\n{clock(a)} --> {clock(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1)))
    return path


def build_predictor(args) -> tuple[Predictor, str]:
    if args.model:
        return Predictor.from_pretrained(args.model, device="cpu"), str(args.model)
    from emoxformer.config import load_config
    from emoxformer.model.modeling import EmoXFormer
    from emoxformer.model.preprocessing import Preprocessor
    from emoxformer.training.input_format import record_input_format

    torch.manual_seed(0)
    config = load_config(args.config)
    model = EmoXFormer.from_config(config.model)
    record_input_format(model.config, config.data)
    return Predictor(model, Preprocessor.for_model(model.config), device="cpu"), f"{args.config} architecture, random fusion"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the generated video (default 60)")
    parser.add_argument("--model", help="a trained model folder (default: --config's architecture, random fusion)")
    parser.add_argument("--config", default="quickstart", help="recipe whose architecture is timed without --model")
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--no-transcript", action="store_true", help="time faces and voice only")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    predictor, described = build_predictor(args)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "talk.mp4"
        cues = write_talk(video, args.seconds)
        transcript = None if args.no_transcript else write_srt(Path(tmp) / "talk.srt", cues)
        warm = Path(tmp) / "warm.mp4"
        write_talk(warm, 2.0, seed=1)
        predictor.timeline(warm, window=args.window, hop=args.hop)  # the face cascade, first-call allocations
        print(f"timeline: {args.seconds:g} s of 640x360 video at 25 frames/s, windows of {args.window:g} s every "
              f"{args.hop:g} s{'' if transcript else ', no transcript'}; model: {described}; {machine()}")
        rss_before = peak_rss_mib()
        start = time.perf_counter()
        frame = predictor.timeline(video, window=args.window, hop=args.hop, transcript=transcript)
        compute = time.perf_counter() - start
        growth = peak_rss_mib() - rss_before
    per_minute = compute / args.seconds * 60
    print(f"  {len(frame)} windows in {compute:.1f} s: {per_minute:.1f} s of compute per minute of video "
          f"(x{args.seconds / compute:.1f} real time); peak memory grew {growth:.0f} MiB")
    import json

    print(json.dumps({"name": "timeline", "video_s": args.seconds, "compute_s": round(compute, 3),
                      "seconds_per_minute": round(per_minute, 2), "ratio": round(args.seconds / compute, 2),
                      "windows": len(frame), "peak_rss_growth_mib": round(growth, 1), "model": described}))


if __name__ == "__main__":
    main()
