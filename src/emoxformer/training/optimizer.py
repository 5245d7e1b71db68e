"""The optimiser's kernel: AdamW's fused kernel where torch has one for the parameters' device and Lightning
allows it.

Without `fused`, torch's AdamW updates CPU parameters one tensor at a time (about a fifth of a laptop stage-2 step;
benchmarks/optimizer_step.py). Lightning's mixed-precision (and FSDP) plugins refuse to clip gradients for an
optimiser that unscales them inside its own step, as a fused one does, so clipping there keeps the plain kernel.
"""
from __future__ import annotations

import torch

FUSED_CPU_SINCE = (2, 4)  # torch's first release with a fused AdamW for CPU tensors


def fused_kernel_available(device_type: str) -> bool:
    if device_type == "cpu" and _torch_version() < FUSED_CPU_SINCE:
        return False
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:  # older torch: CUDA only
        return device_type == "cuda"
    return device_type in _get_fused_kernels_supported_devices()


def plugin_clips_gradients(train_config) -> bool:
    plugin_unscales = train_config.precision.endswith("-mixed") or "fsdp" in str(train_config.strategy)
    return plugin_unscales and train_config.grad_clip > 0


def use_fused_adamw(device_type: str, train_config) -> bool:
    return fused_kernel_available(device_type) and not plugin_clips_gradients(train_config)


def keep_kernel_choice(optimizer: torch.optim.Optimizer) -> None:
    """Loading an optimiser state brings back the saved groups' settings: a checkpoint written with the plain
    kernel would silently switch a fused optimiser off (and, under a gradient scaler, break its step). The
    optimiser's `defaults` keep the kernel it was built with."""
    fused = bool(optimizer.defaults.get("fused"))
    for group in optimizer.param_groups:
        group["fused"] = fused
        if fused:
            group["foreach"] = None
            # torch loads a plain kernel's `step` counters onto the host; the fused kernel reads them on the
            # parameters' device (a CUDA run resumed from a plain-kernel checkpoint would fail its first step).
            for parameter in group["params"]:
                state = optimizer.state.get(parameter, {})
                if torch.is_tensor(state.get("step")):
                    state["step"] = state["step"].to(device=parameter.device, dtype=torch.float32)


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)
