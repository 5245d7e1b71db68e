"""The three modalities, one module each; importing this package registers them."""
from . import audio, text, vision  # noqa: F401
