"""EmoXFormer: multimodal emotion recognition from text, speech and faces, trained on disjoint datasets.

The notebook API: `emoxformer.train(config, out_dir)` returns a TrainingResult; `EmoXFormer` and
`EmoXFormerProcessor` load from a saved model folder (`model(**processor(text=[...]))`); the `Predictor` reads files,
photos and video."""
from .labels import EMOTIONS
from .version import __version__

__all__ = ["EMOTIONS", "EmoXFormer", "EmoXFormerConfig", "EmoXFormerOutput", "EmoXFormerProcessor", "Prediction",
           "Predictor", "TrainingResult", "__version__", "train"]


def __getattr__(name: str):
    # Lazy, so `import emoxformer` (and the CLI's --help) stays fast without loading torch.
    if name == "train":
        from .api import train

        return train
    if name == "TrainingResult":
        from .training.result import TrainingResult

        return TrainingResult
    if name == "EmoXFormerProcessor":
        from .inference.processor import EmoXFormerProcessor

        return EmoXFormerProcessor
    if name in ("Predictor", "Prediction"):
        from . import inference

        return getattr(inference, name)
    if name in ("EmoXFormer", "EmoXFormerOutput"):
        from .model import modeling

        return getattr(modeling, name)
    if name == "EmoXFormerConfig":
        from .model.config import EmoXFormerConfig

        return EmoXFormerConfig
    raise AttributeError(f"module 'emoxformer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
