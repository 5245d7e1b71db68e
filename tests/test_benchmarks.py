"""The benchmark scripts: the GPU script's CPU smoke run, and the baselines' re-creation of the reference code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

# The GPU machine may lack the audio and video readers: the script must run with them unimportable.
WITHOUT_MEDIA_LIBRARIES = (
    "import runpy, sys\n"
    "sys.modules.update(soundfile=None, soxr=None, av=None)\n"
    "sys.argv = [sys.argv[1], '--tiny']\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def numbers_in(value, path=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from numbers_in(inner, f"{path}.{key}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def test_gpu_paper_tiny_runs_without_media_libraries_and_reports_positive_figures():
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent / "src")}
    done = subprocess.run([sys.executable, "-c", WITHOUT_MEDIA_LIBRARIES, str(BENCHMARKS / "gpu_paper.py")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"name", "device", "ratio", "cache_build", "stage1_cached", "stage2", "stage2_max_batch", "failures"} <= set(result)
    assert result["failures"] == []
    for phase in ("cache_build", "stage1_cached", "stage2"):
        assert set(result[phase]) == {"bf16", "fp32"}
        assert set(result[phase]["bf16"]) == {"3", "6"}
    assert set(result["cache_build"]["fp32"]["6"]) == {"text", "audio", "vision"}
    for precision in ("bf16", "fp32"):
        assert set(result["stage2"][precision]["6"]) == {"samples_per_s", "peak_gib"}
        # no out-of-memory on the CPU: the doubling search reaches its cap
        assert result["stage2_max_batch"][precision]["largest_fitting"] == 12
    figures = dict(numbers_in(result))
    assert len(figures) >= 2 * 2 * (3 + 1 + 1) * 2  # precisions x batch sizes x measurements x (samples/s, GiB)
    assert all(value > 0 for value in figures.values()), figures


def test_reference_batch_skips_text_and_gives_400_samples_of_silence():
    from common import seed_style

    batch = {"present": torch.tensor([[False, False, True]] * 2), "vision": {"pixel_values": torch.zeros(2, 3, 8, 8)}}
    reference = seed_style(batch)
    assert reference["present"].tolist() == [[False, True, True]] * 2  # RoBERTa skipped, Wav2Vec2 and ViT run
    assert reference["audio"]["waveform"].shape == (2, 400)
    assert reference["audio"]["lengths"].tolist() == [400, 400]


def test_reference_fer_dataset_serves_the_same_batches_as_record_dataset_and_collator(tmp_path, monkeypatch):
    import fer_decode

    from emoxformer.data.collate import Collator
    from emoxformer.data.datasets import RecordDataset
    from emoxformer.data.fer2013 import read_fer_csv
    from emoxformer.labels import FER_INDEX_TO_EMOTION, LABEL_TO_INDEX

    monkeypatch.setenv("EMOXFORMER_CACHE", "off")
    path = tmp_path / "fer2013.csv"
    fer_decode.write_fer_csv(path, 40)
    split = read_fer_csv(path)
    records = sorted(split.train + split.val + split.test, key=lambda r: int(r.id.split("/")[-1]))
    for size in (48, 224):
        preprocessor = fer_decode.image_preprocessor(size)
        ours = RecordDataset(records, fer_decode.FER_DATASET_INDEX, preprocessor)
        reference = fer_decode.ReferenceFERDataset(path, preprocessor)
        assert len(ours) == len(reference) == 40
        indices = [0, 17, 39]
        our_batch, reference_batch = fer_decode.our_batch(ours, Collator(), indices), fer_decode.reference_batch(reference, indices)
        if size == 48:  # the built-in encoder's input: no resizing, the same values
            assert torch.equal(our_batch, reference_batch)
        else:  # torch's bilinear interpolation vs PIL's, which rounds to whole grey levels: within one level (2/255)
            assert our_batch.shape == reference_batch.shape == (3, 3, 224, 224)
            assert (our_batch - reference_batch).abs().max() <= 2 / 255 + 1e-5
    for i in indices:
        assert ours[i]["label"] == LABEL_TO_INDEX[FER_INDEX_TO_EMOTION[reference[i]["label"]]]
    assert np.array_equal(records[5].pixels, np.fromstring(reference.data.iloc[5]["pixels"], sep=" ", dtype=np.uint8).reshape(48, 48))


# Every script in benchmarks/ runs end to end at a tiny size, so none can fall behind the package unnoticed (the
# inference benchmark called Predictor.collate long after collation had moved to the processor). Each ends with
# its one-line JSON result. Scripts that train or build several models take longer: marked slow.
SMOKE_RUNS = {
    "audio_batching.py": ["--batch-size", "4", "--repeats", "1", "--width", "32", "--layers", "1"],
    "audio_padding_accuracy.py": ["--epochs", "1", "--batch-size", "8", "--width", "32", "--layers", "1"],
    "cached_step.py": ["--batch-size", "6", "--repeats", "1"],
    "fusion_pairs_step.py": ["--batch-size", "9", "--repeats", "1", "--width", "32", "--layers", "1"],
    "fer_decode.py": ["--rows", "60", "--repeats", "1", "--image-size", "48", "--batch-size", "8"],
    "inference.py": ["--requests", "1", "--seconds", "0.25", "--repeats", "1", "--width", "32", "--layers", "1"],
    "laptop_budget.py": ["--config", "quickstart", "--data", "{sample_root}", "--steps", "1", "--encode-batches", "1"],
    "optimizer_step.py": ["--tiny", "--repeats", "1"],
    "speech_lstm_step.py": ["--batch-size", "2", "--repeats", "1"],
    "stage1_cache.py": ["--epochs", "2", "--samples", "12", "--val-samples", "6", "--width", "32", "--layers", "1"],
    "stage2_dispatch.py": ["--batch-size", "6", "--repeats", "1", "--width", "32", "--layers", "1"],
    "timeline.py": ["--seconds", "3"],
    "whisper_window.py": ["--tiny", "--data", "{sample_root}"],
}
# On 2 busy CPU cores every script but the inference one took 45 s to a few minutes even at these sizes: they
# have a marker of their own (`python -m pytest -q -m benchmark`), outside CI's 20 minutes.
SLOW_SMOKE = set(SMOKE_RUNS) - {"inference.py"}
COVERED_ELSEWHERE = {"common.py", "gpu_paper.py"}  # helpers; gpu_paper.py --tiny is run above


def test_every_benchmark_script_has_a_smoke_run():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")}
    assert scripts - COVERED_ELSEWHERE == set(SMOKE_RUNS), "add the new script to SMOKE_RUNS"


@pytest.mark.parametrize("script", [pytest.param(name, marks=pytest.mark.benchmark) if name in SLOW_SMOKE else name
                                    for name in sorted(SMOKE_RUNS)])
def test_benchmark_script_runs_at_a_tiny_size(script, sample_root):
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent / "src")}
    arguments = [a.format(sample_root=sample_root) for a in SMOKE_RUNS[script]]
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *arguments], capture_output=True, text=True,
                          env=env, timeout=900)
    if done.returncode != 0 and "ModuleNotFoundError" in done.stderr:
        pytest.skip(f"{script} needs a package not installed here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # A comparison reports its ratio; the laptop budget, a projection with no baseline, its projected seconds.
    assert result["name"] and (result.get("ratio") or result.get("projected_s", 0)) > 0, result
