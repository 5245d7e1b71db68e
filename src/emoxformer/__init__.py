"""EmoXFormer: multimodal emotion recognition from text, speech and faces, trained on disjoint datasets."""
from .labels import EMOTIONS
from .version import __version__

__all__ = ["EMOTIONS", "EmoXFormer", "EmoXFormerConfig", "Prediction", "Predictor", "__version__"]


def __getattr__(name: str):
    # Lazy, so `import emoxformer` (and the CLI's --help) stays fast without loading torch.
    if name in ("Predictor", "Prediction"):
        from . import inference

        return getattr(inference, name)
    if name == "EmoXFormer":
        from .model.modeling import EmoXFormer

        return EmoXFormer
    if name == "EmoXFormerConfig":
        from .model.config import EmoXFormerConfig

        return EmoXFormerConfig
    raise AttributeError(f"module 'emoxformer' has no attribute {name!r}")
