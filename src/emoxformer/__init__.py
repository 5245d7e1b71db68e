"""EmoXFormer: multimodal emotion recognition from text, speech and faces, trained on disjoint datasets."""
from .labels import EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "__version__"]
