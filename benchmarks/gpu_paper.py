"""The paper's EmoXFormer on one GPU, random data at real sizes: samples/s and peak memory per training phase.

Model: RoBERTa-base, wav2vec2-base (group-norm feature extractor, as the released checkpoint) and ViT-B/16 at
224, built from transformers configs with random weights (nothing is downloaded), fusion 512 wide, 4 layers,
4 heads. Inputs: text of 128 tokens, speech of 3-5 s (about 4 s) at 16 kHz, 224x224 RGB images; training
batches hold a third of each modality, one modality per sample (disjoint datasets). Measured, in bf16 autocast
and in fp32 (PyTorch's defaults: TF32 for convolutions only), for batch sizes 16, 32 and 64:

  cache build     the stage-1 feature cache: one encoder forward (no grad) over a batch of its own modality,
                  outputs copied to the host;
  stage-1 cached  one stage-1 step on cached features (projections, fusion, head; forward, backward, AdamW);
  stage-2         one full fine-tuning step (all encoders; forward, backward, AdamW);

then the largest stage-2 batch that fits, doubling from 64 until the first out-of-memory. Inputs are created
on the device, so data loading is not included. Peak memory is torch.cuda.max_memory_allocated (weights,
optimiser state and activations). Prints a table, then one JSON line; its `ratio` is stage-2 samples/s in bf16
over fp32 at batch 32.

    PYTHONPATH=src python benchmarks/gpu_paper.py          # one GPU, under 8 minutes on an H100
    PYTHONPATH=src python benchmarks/gpu_paper.py --tiny   # CPU, tiny dimensions, seconds (a smoke test)

Imports only emoxformer.model.* (no soundfile, soxr or av needed).
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import time
from dataclasses import dataclass

import torch

from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.losses import build_loss
from emoxformer.model.modeling import EmoXFormer

MODALITIES = ("text", "audio", "vision")
PRECISIONS = ("bf16", "fp32")
SAMPLE_RATE = 16_000


@dataclass
class Setting:
    device: str
    text_tokens: int
    audio_seconds: tuple[float, float]
    image_size: int
    batch_sizes: tuple[int, ...]
    cache_batches: int  # timed encoder batches per modality
    cached_steps: int  # timed stage-1 cached steps
    stage2_steps: int  # timed stage-2 steps
    max_batch_cap: int  # the doubling search stops here even without running out of memory
    time_budget_s: float  # measurements still to start after this are skipped
    fusion: dict
    backbones: dict


def paper_setting() -> Setting:
    from transformers import RobertaConfig, ViTConfig, Wav2Vec2Config

    return Setting(device="cuda", text_tokens=128, audio_seconds=(3.0, 5.0), image_size=224, batch_sizes=(16, 32, 64),
                   cache_batches=5, cached_steps=200, stage2_steps=5, max_batch_cap=4096, time_budget_s=400,
                   fusion={"hidden_size": 512, "num_heads": 4, "fusion_layers": 4},
                   backbones={"text": RobertaConfig(pad_token_id=1),
                              "audio": Wav2Vec2Config(feat_extract_norm="group", do_stable_layer_norm=False),
                              "vision": ViTConfig(image_size=224, patch_size=16)})


def tiny_setting() -> Setting:
    from transformers import RobertaConfig, ViTConfig, Wav2Vec2Config

    small = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    return Setting(device="cpu", text_tokens=16, audio_seconds=(0.3, 0.5), image_size=32, batch_sizes=(3, 6),
                   cache_batches=2, cached_steps=3, stage2_steps=2, max_batch_cap=12, time_budget_s=float("inf"),
                   fusion={"hidden_size": 32, "num_heads": 2, "fusion_layers": 1},
                   backbones={"text": RobertaConfig(vocab_size=100, max_position_embeddings=40, pad_token_id=1, **small),
                              "audio": Wav2Vec2Config(conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                                                      feat_extract_norm="group", do_stable_layer_norm=False, **small),
                              "vision": ViTConfig(image_size=32, patch_size=16, **small)})


def build_model(setting: Setting) -> EmoXFormer:
    """Random weights from the backbone configs, as EmoXFormer.from_pretrained rebuilds a saved model's backbones."""
    config = EmoXFormerConfig(text_backbone="roberta-base", audio_backbone="facebook/wav2vec2-base",
                              vision_backbone="google/vit-base-patch16-224-in21k", max_text_tokens=setting.text_tokens,
                              image_size=setting.image_size, image_channels=3, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                              **setting.fusion)
    torch.manual_seed(0)
    with torch.device(setting.device):
        model = EmoXFormer(config, {m: c.to_dict() for m, c in setting.backbones.items()})
    return model.to(setting.device)


# ----------------------------------------------------------------------------- inputs
def modality_inputs(modality: str, count: int, setting: Setting, batch_size: int | None = None, rows=None) -> dict:
    """Full-batch inputs of one modality as the collator builds them; only `rows` (default: all) hold data."""
    size = batch_size or count
    device = setting.device
    rows = torch.arange(count, device=device) if rows is None else rows
    if modality == "text":
        vocab = setting.backbones["text"].vocab_size
        ids = torch.full((size, setting.text_tokens), setting.backbones["text"].pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros((size, setting.text_tokens), dtype=torch.long, device=device)
        ids[rows] = torch.randint(3, vocab, (len(rows), setting.text_tokens), device=device)
        mask[rows] = 1
        return {"input_ids": ids, "attention_mask": mask}
    if modality == "audio":
        low, high = (int(s * SAMPLE_RATE) for s in setting.audio_seconds)
        lengths = torch.zeros(size, dtype=torch.long, device=device)
        lengths[rows] = torch.randint(low, high + 1, (len(rows),), device=device)
        waveform = torch.randn((size, int(lengths.max())), device=device)
        waveform *= torch.arange(waveform.shape[1], device=device)[None] < lengths[:, None]
        return {"waveform": waveform, "lengths": lengths}
    pixels = torch.zeros((size, 3, setting.image_size, setting.image_size), device=device)
    pixels[rows] = torch.randn((len(rows), 3, setting.image_size, setting.image_size), device=device)
    return {"pixel_values": pixels}


def thirds(batch_size: int) -> dict[str, torch.Tensor]:
    """Rows of each modality in a training batch: a third each (the remainder goes to vision)."""
    third = batch_size // 3
    bounds = {"text": (0, third), "audio": (third, 2 * third), "vision": (2 * third, batch_size)}
    return {m: torch.arange(lo, hi) for m, (lo, hi) in bounds.items()}


def mixed_batch(batch_size: int, setting: Setting) -> dict:
    rows = thirds(batch_size)
    present = torch.zeros((batch_size, 3), dtype=torch.bool)
    for column, modality in enumerate(MODALITIES):
        present[rows[modality], column] = True
    batch = {"present": present.to(setting.device),
             "labels": torch.randint(0, 7, (batch_size,), device=setting.device)}
    for modality in MODALITIES:
        batch[modality] = modality_inputs(modality, len(rows[modality]), setting, batch_size, rows[modality].to(setting.device))
    return batch


@torch.no_grad()
def cached_features_batch(model: EmoXFormer, batch_size: int, setting: Setting) -> dict:
    """A mixed batch of cached encoder outputs (`encoder_outputs` {hidden, valid} per modality, zero rows where absent), as the
    collator builds it from the feature cache."""
    batch = mixed_batch(batch_size, setting)
    model.eval()
    for column, modality in enumerate(MODALITIES):
        rows = batch["present"][:, column].nonzero(as_tuple=True)[0]
        hidden, valid = model.encoders[modality](**{k: v[rows] for k, v in batch[modality].items()})
        features = hidden.new_zeros((batch_size,) + hidden.shape[1:], dtype=torch.float32)
        features[rows] = hidden.float()
        full_valid = torch.zeros(features.shape[:2], dtype=torch.bool, device=features.device)
        full_valid[rows] = valid
        batch.setdefault("encoder_outputs", {})[modality] = {"hidden": features, "valid": full_valid}
        del batch[modality]
    return batch


# ----------------------------------------------------------------------------- timing
def synchronize(setting: Setting) -> None:
    if setting.device == "cuda":
        torch.cuda.synchronize()


def reset_peak(setting: Setting) -> None:
    if setting.device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib(setting: Setting) -> float:
    """Peak allocated device memory since reset_peak; on the CPU the process's peak resident memory."""
    if setting.device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def autocast(precision: str, setting: Setting):
    return torch.autocast(setting.device, dtype=torch.bfloat16, enabled=precision == "bf16")


def timed_loop(step, warmup: int, steps: int, setting: Setting) -> float:
    """Seconds for `steps` calls of step() after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    synchronize(setting)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(setting)
    return time.perf_counter() - start


def free_memory(model: EmoXFormer) -> None:
    model.zero_grad(set_to_none=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_out_of_memory(error: RuntimeError) -> bool:
    """torch.cuda.OutOfMemoryError, or cuBLAS / cuDNN failing to allocate their workspace."""
    return isinstance(error, torch.cuda.OutOfMemoryError) or any(
        text in str(error) for text in ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_NOT_ENOUGH_MEMORY"))


def out_of_memory_safe(function, model: EmoXFormer, failures: list[str]):
    """function()'s result, or None when the device ran out of memory or the step failed (its error appended to
    `failures`, so one broken phase does not cost the other measurements); memory is freed either way."""
    result = None
    try:
        result = function()
    except RuntimeError as error:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if not is_out_of_memory(error):
            failures.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
    free_memory(model)  # outside the except block, so the traceback no longer holds the step's tensors
    return result


# ----------------------------------------------------------------------------- the three phases
def cache_build(model: EmoXFormer, modality: str, batch_size: int, precision: str, setting: Setting) -> dict:
    encoder = model.encoders[modality].eval()
    inputs = modality_inputs(modality, batch_size, setting)

    @torch.no_grad()
    def step():
        with autocast(precision, setting):
            hidden, valid = encoder(**inputs)
        hidden.float().cpu()  # the cache stores outputs on the host

    reset_peak(setting)
    seconds = timed_loop(step, 1, setting.cache_batches, setting)
    return {"samples_per_s": batch_size * setting.cache_batches / seconds, "peak_gib": peak_gib(setting)}


def training_step_function(model: EmoXFormer, batch: dict, precision: str, setting: Setting, lr: float):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    loss_fn = build_loss("focal", 2.0)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, setting):
            logits = model(batch).logits
        loss_fn(logits, batch["labels"]).backward()
        optimizer.step()

    return step


def stage1_cached(model: EmoXFormer, batch_size: int, precision: str, setting: Setting) -> dict:
    model.freeze_backbones(True)
    batch = cached_features_batch(model, batch_size, setting)
    model.train()
    step = training_step_function(model, batch, precision, setting, lr=1e-4)
    reset_peak(setting)
    seconds = timed_loop(step, 10 if setting.device == "cuda" else 1, setting.cached_steps, setting)
    return {"samples_per_s": batch_size * setting.cached_steps / seconds, "peak_gib": peak_gib(setting)}


def stage2(model: EmoXFormer, batch_size: int, precision: str, setting: Setting, steps: int | None = None) -> dict:
    model.unfreeze_backbones()
    model.train()
    batch = mixed_batch(batch_size, setting)
    step = training_step_function(model, batch, precision, setting, lr=5e-5)
    steps = setting.stage2_steps if steps is None else steps
    reset_peak(setting)
    seconds = timed_loop(step, 2, steps, setting)  # the 2nd step is the first with AdamW's state allocated
    return {"samples_per_s": batch_size * steps / seconds if steps else None, "peak_gib": peak_gib(setting)}


def largest_stage2_batch(model: EmoXFormer, precision: str, start: int, setting: Setting, deadline: float,
                         failures: list[str]) -> dict:
    """Double the stage-2 batch from `start` until a step runs out of memory (or fails), the cap, or the time
    budget."""
    largest, first_oom, batch_size = None, None, start
    while batch_size <= setting.max_batch_cap and time.perf_counter() < deadline:
        failed_before = len(failures)
        result = out_of_memory_safe(lambda: stage2(model, batch_size, precision, setting, steps=0), model, failures)
        if result is None:
            first_oom = batch_size if len(failures) == failed_before else None
            break
        largest = {"batch": batch_size, "peak_gib": result["peak_gib"]}
        print(f"  stage-2 {precision} batch {batch_size}: fits, peak {result['peak_gib']:.1f} GiB", flush=True)
        batch_size *= 2
    return {"largest_fitting": largest["batch"] if largest else None,
            "peak_gib": largest["peak_gib"] if largest else None, "first_oom": first_oom}


# ----------------------------------------------------------------------------- main
def device_name(setting: Setting) -> str:
    if setting.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
    return "CPU"


def measure(model: EmoXFormer, setting: Setting, deadline: float, failures: list[str]) -> tuple[list[tuple], dict]:
    """Rows for the table and the nested results: phase -> precision -> batch size -> figures (None: out of
    memory, failed, or skipped for time)."""
    rows, results = [], {"cache_build": {}, "stage1_cached": {}, "stage2": {}}
    for precision in PRECISIONS:
        for phase in results:
            results[phase][precision] = {}
        for batch_size in setting.batch_sizes:
            phases = [(f"cache build {m}", "cache_build", m, lambda m=m: cache_build(model, m, batch_size, precision, setting))
                      for m in MODALITIES]
            phases += [("stage-1 cached", "stage1_cached", None, lambda: stage1_cached(model, batch_size, precision, setting)),
                       ("stage-2", "stage2", None, lambda: stage2(model, batch_size, precision, setting))]
            for label, phase, modality, function in phases:
                failed_before, in_time = len(failures), time.perf_counter() < deadline
                result = out_of_memory_safe(function, model, failures) if in_time else None
                slot = results[phase][precision].setdefault(str(batch_size), {}) if modality else results[phase][precision]
                slot[modality or str(batch_size)] = result
                rows.append((label, precision, batch_size, result))
                print(f"  {label:<20} {precision:<5} {batch_size:>4}  " + (
                    f"{result['samples_per_s']:10.1f} samples/s  {result['peak_gib']:6.2f} GiB" if result else
                    ("skipped (time budget)" if not in_time else "out of memory" if len(failures) == failed_before
                     else f"failed: {failures[-1]}")), flush=True)
    return rows, results


def largest_measured(stage2_results: dict, setting: Setting) -> int:
    """The largest batch size of the table whose stage-2 step fitted (half the smallest when none did)."""
    fitted = [b for b in setting.batch_sizes if stage2_results.get(str(b))]
    return max(fitted) if fitted else max(1, setting.batch_sizes[0] // 2)


def print_table(rows: list[tuple], memory_note: str) -> None:
    print(f"\n{'phase':<20} {'precision':<9} {'batch':>5} {'samples/s':>10} {'peak GiB':>9}")
    for label, precision, batch_size, result in rows:
        figures = f"{result['samples_per_s']:10.1f} {result['peak_gib']:9.2f}" if result else f"{'-':>10} {'-':>9}"
        print(f"{label:<20} {precision:<9} {batch_size:>5} {figures}")
    print(memory_note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny dimensions on the CPU (a smoke test)")
    args = parser.parse_args()
    setting = tiny_setting() if args.tiny else paper_setting()
    if args.tiny:
        torch.set_num_threads(1)  # tiny tensors: more threads only wait on each other
    if setting.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device; use --tiny for the CPU smoke test")
    started = time.perf_counter()
    deadline = started + setting.time_budget_s
    model = build_model(setting)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"gpu_paper: {device_name(setting)}; torch {torch.__version__}; {parameters / 1e6:.0f} M parameters; text "
          f"{setting.text_tokens} tokens, audio {setting.audio_seconds[0]:g}-{setting.audio_seconds[1]:g} s, images "
          f"{setting.image_size} px; model built in {time.perf_counter() - started:.0f} s", flush=True)
    failures: list[str] = []
    rows, results = measure(model, setting, deadline, failures)
    results["stage2_max_batch"] = {p: largest_stage2_batch(model, p, 2 * largest_measured(results["stage2"][p], setting), setting,
                                                           deadline, failures) for p in PRECISIONS}
    memory_note = ("peak GiB: torch.cuda.max_memory_allocated per measurement" if setting.device == "cuda"
                   else "peak GiB: the process's peak resident memory (CPU run)")
    print_table(rows, memory_note)
    for precision, found in results["stage2_max_batch"].items():
        print(f"largest stage-2 batch, {precision}: {found['largest_fitting']} (first out of memory: {found['first_oom']})")
    middle = str(setting.batch_sizes[len(setting.batch_sizes) // 2])
    bf16, fp32 = results["stage2"]["bf16"].get(middle), results["stage2"]["fp32"].get(middle)
    ratio = round(bf16["samples_per_s"] / fp32["samples_per_s"], 2) if bf16 and fp32 else None
    for failure in dict.fromkeys(failures):
        print(f"failed: {failure}")
    print(f"total {time.perf_counter() - started:.0f} s")
    print(json.dumps({"name": "gpu_paper", "device": device_name(setting), "ratio": ratio, "ratio_batch": int(middle),
                      **round_floats(results), "failures": sorted(set(failures))}))


def round_floats(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: round_floats(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    main()
