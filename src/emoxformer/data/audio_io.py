"""Speech files are read by the package's one media layer (emoxformer.media); these names stay importable here."""
from __future__ import annotations

from ..media import TARGET_SAMPLE_RATE, check_wav_complete, load_audio, resample, to_mono

__all__ = ["TARGET_SAMPLE_RATE", "check_wav_complete", "load_audio", "resample", "to_mono"]
