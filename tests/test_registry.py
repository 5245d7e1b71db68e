"""The dataset registry: a fourth dataset of an existing modality is one reader plus one registry entry."""
import json
from pathlib import Path

import numpy as np
import pytest

from emoxformer.config import load_config
from emoxformer.data import registry
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.data.records import ImageRecord, SplitRecords
from emoxformer.data.sources import dataset_modalities
from emoxformer.data.summary import summarize
from emoxformer.errors import ConfigError
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.run import TwoStageTrainer

TINY = ["model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
        "data.samples_per_epoch=48", "train.batch_size=16", "train.stage1.epochs=1", "train.stage2.epochs=1"]


def read_toy_faces(folder: Path, data_config) -> SplitRecords:
    """A toy corpus: faces.npy (uint8 [n, 32, 32]) and labels.json ({"train": [...], "val": [...], "test": [...]})."""
    faces = np.load(folder / "faces.npy")
    splits = json.loads((folder / "labels.json").read_text())
    result, start = SplitRecords(), 0
    for split, labels in splits.items():
        for offset, label in enumerate(labels):
            getattr(result, split).append(ImageRecord(f"toy/{start + offset}", label, split, faces[start + offset]))
        start += len(labels)
    return result


@pytest.fixture
def toy_faces(sample_root, tmp_path):
    """The sample data root plus ROOT/toy_faces, registered as a vision dataset for the test's duration."""
    rng = np.random.default_rng(0)
    folder = sample_root / "toy_faces"
    folder.mkdir(exist_ok=True)
    np.save(folder / "faces.npy", rng.integers(0, 256, (42, 32, 32), dtype=np.uint8))
    labels = {"train": [i % 7 for i in range(28)], "val": [i % 7 for i in range(7)], "test": [i % 7 for i in range(7)]}
    (folder / "labels.json").write_text(json.dumps(labels))
    registry.register_dataset(registry.DatasetSpec("toy_faces", "vision", read_toy_faces, "toy faces"))
    yield sample_root
    registry.unregister_dataset("toy_faces")


def test_a_registered_dataset_is_read_collated_and_counted(toy_faces):
    assert registry.dataset_names()[:3] == ("meld", "ravdess", "fer2013")  # built-ins keep their order
    assert dataset_modalities(["meld", "toy_faces"]) == ["text", "vision"]
    config = load_config("quickstart", [f"data.root={toy_faces}", "data.datasets=[meld,toy_faces]"])
    dm = EmoDataModule(config.data, Preprocessor(config.model), batch_size=8, seed=0, progress=False)
    dm.setup()
    assert dm.names == ["meld", "toy_faces"] and dm.dataset_indices == {"meld": 0, "toy_faces": 1}
    batch = dm.collate([dm.splits["toy_faces"]["val"][i] for i in range(3)] + [dm.splits["meld"]["val"][0]])
    assert batch["vision"]["pixel_values"].shape[0] == 4 and batch["dataset"].tolist() == [1, 1, 1, 0]
    assert summarize(config.data, ["toy_faces"])["toy_faces"]["train"]["total"] == 28


def test_a_registered_dataset_trains_with_the_feature_cache(toy_faces, tmp_path):
    config = load_config("quickstart", [f"data.root={toy_faces}", "data.datasets=[fer2013,toy_faces]", *TINY])
    metrics = TwoStageTrainer(config, tmp_path / "run", progress=False).run().to_dict()
    assert set(metrics["stage1"]) == set(metrics["stage2"]) == {"fer2013", "toy_faces"}
    assert metrics["stage2"]["toy_faces"]["n"] == 7


def test_unknown_dataset_and_modality_are_refused(toy_faces):
    with pytest.raises(ConfigError, match="unknown dataset 'cremad'"):
        registry.dataset("cremad")
    with pytest.raises(ConfigError, match="unknown modality 'smell'"):
        registry.register_dataset(registry.DatasetSpec("noses", "smell", read_toy_faces))


def test_two_configs_in_one_process_each_read_their_own_manifest_corpus(tmp_path):
    """data.extra registers a corpus by name when a config loads; a second config with that name (another manifest,
    another modality) must not change what the first reads, and a config that declares no such corpus cannot
    name it."""
    from emoxformer.data.records import AudioRecord, TextRecord
    from emoxformer.data.sample_data import synthesize_voice
    from emoxformer.data.sources import load_dataset
    from emoxformer.labels import DATASET_NAMES, EMOTIONS
    import soundfile as sf

    rng = np.random.default_rng(0)
    rows = []
    for split in ("train", "val", "test"):
        for k, emotion in enumerate(EMOTIONS):
            name = f"wav/{split}_{k}.wav"
            (tmp_path / "wav").mkdir(exist_ok=True)
            sf.write(tmp_path / name, synthesize_voice(rng, 1 + k, 1, 0.5, rate=16_000), 16_000)
            rows.append(json.dumps({"path": name, "label": emotion, "split": split}))
    (tmp_path / "voices.jsonl").write_text("\n".join(rows) + "\n")
    (tmp_path / "words.csv").write_text("text,label,split\n" + "".join(
        f"some words {i},{EMOTIONS[i % 7]},{split}\n" for split in ("train", "val", "test") for i in range(3)))
    try:
        voices = load_config("quickstart", [f"data.extra=[{{name: corp, modality: audio, manifest: '{tmp_path / 'voices.jsonl'}'}}]",
                                            "data.datasets=[corp]"])
        dm = EmoDataModule(voices.data, Preprocessor(voices.model), batch_size=4, seed=0, progress=False)
        words = load_config("quickstart", [f"data.extra=[{{name: corp, modality: text, manifest: '{tmp_path / 'words.csv'}'}}]",
                                           "data.datasets=[corp]"])
        dm.setup()  # after the second config registered its own `corp`
        assert isinstance(dm.records["corp"].test[0], AudioRecord) and len(dm.records["corp"].test) == 7
        assert "audio" in dm.collate([dm.splits["corp"]["test"][i] for i in range(2)])
        assert registry.dataset("corp", voices.data).modality == "audio" == registry.dataset_modality("corp", voices.data)
        assert registry.dataset("corp", words.data).modality == "text"
        assert [type(r) for r in load_dataset(words.data, "corp").test] == [TextRecord] * 3
        assert isinstance(load_dataset(voices.data, "corp").test[0], AudioRecord)
        # A config that declares no `corp` does not silently read the manifest another config registered.
        with pytest.raises(ConfigError, match=r"data.datasets\[0\] must be .*got 'corp'"):
            load_config("quickstart", ["data.datasets=[corp]"])
        with pytest.raises(ConfigError, match="does not declare"):
            load_dataset(load_config("quickstart").data, "corp")
        assert "corp" not in summarize(load_config("quickstart").data)
    finally:
        for name in registry.dataset_names():
            if name not in DATASET_NAMES:
                registry.unregister_dataset(name)
