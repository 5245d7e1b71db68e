"""What the training inputs looked like, written into the model config so inference prepares its inputs alike."""
from __future__ import annotations

from .config import EmoXFormerConfig

# Vision datasets whose images are grey: FER2013 ships 48x48 grey faces in both its CSV and image-folder forms.
GREY_VISION_DATASETS = ("fer2013",)


def record_input_format(model_config: EmoXFormerConfig, data_config) -> None:
    """Fill the model config's image colour mode and MELD text format from the data config of its training run."""
    from ..data.context import TARGET_MARK
    from .preprocessing import Preprocessor

    grey = any(name in data_config.datasets for name in GREY_VISION_DATASETS)
    model_config.image_colour = "grey" if grey else "colour"
    model_config.text_context = data_config.text_context if "meld" in data_config.datasets else 0
    model_config.text_target_mark = TARGET_MARK
    model_config.text_separator = ""  # so the Preprocessor gives its tokenizer's separator, the one training uses
    model_config.text_separator = Preprocessor.for_model(model_config).context_separator
