"""What the training inputs looked like, written into the model config so inference prepares its inputs alike."""
from __future__ import annotations

from ..data import registry
from ..data.context import TARGET_MARK
from ..model.config import EmoXFormerConfig
from ..model.preprocessing import Preprocessor


def record_input_format(model_config: EmoXFormerConfig, data_config) -> None:
    """Fill the model config's image colour mode and dialogue-text format from the data config of its training run:
    grey when any image dataset of the run is grey (FER2013's faces are), dialogue context when a text dataset is
    trained with it."""
    specs = [registry.dataset(name) for name in data_config.datasets]
    grey = any("vision" in spec.input_modalities and spec.image_colour == "grey" for spec in specs)
    model_config.image_colour = "grey" if grey else "colour"
    model_config.text_context = data_config.text_context if any("text" in spec.input_modalities for spec in specs) else 0
    model_config.text_target_mark = TARGET_MARK
    model_config.text_separator = ""  # so the Preprocessor gives its tokenizer's separator, the one training uses
    model_config.text_separator = Preprocessor.for_model(model_config).context_separator
