"""Training on multimodal corpora (data/recordings.py): a manifest row holding text, speech and a face (or a video) is
one training example holding all of them, the real pairs that disjoint datasets lack."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from emoxformer.config import load_config
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.data.recordings import RecordingSet
from emoxformer.errors import ConfigError
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.run import TwoStageTrainer

SUBSETS = ["t", "a", "v", "t+a", "t+v", "a+v", "t+a+v"]
TINY = ["model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
        "data.samples_per_epoch=64", "train.batch_size=16", "train.stage1.epochs=1", "train.stage2.epochs=1"]


def av_config(root, *extra, dropout=0.3, datasets="[meld,av]"):
    """The sample data's audio-visual corpus with its first two training rows (of 7) for validation."""
    corpus = root / "av" / "av_with_val.csv"
    if not corpus.is_file():
        rows = pd.read_csv(root / "av" / "av.csv", keep_default_na=False)
        rows.loc[rows.index[rows["split"] == "train"][:2], "split"] = "val"
        rows.to_csv(corpus, index=False)
    return load_config("quickstart", [
        f"data.root={root}", *TINY,
        f"data.extra=[{{name: av, modality: multi, manifest: '{corpus}', modality_dropout: {dropout}}}]",
        f"data.datasets={datasets}", *extra])


def datamodule_for(config):
    datamodule = EmoDataModule(config.data, Preprocessor(config.model), batch_size=16, progress=False)
    datamodule.setup()
    return datamodule


def test_a_multimodal_corpus_trains_as_one_example_per_recording(sample_root):
    datamodule = datamodule_for(av_config(sample_root))
    splits = datamodule.splits["av"]
    assert all(isinstance(splits[s], RecordingSet) for s in ("train", "val", "test"))
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (5, 2, 7)  # as the split column says
    av_index = datamodule.dataset_indices["av"]
    # Evaluation rows keep every modality of the recording: transcript, voice (a wav or the video's track), face.
    for index in range(len(splits["test"])):
        example = splits["test"][index]
        assert {"text", "audio", "vision"} <= set(example) and example["dataset"] == av_index
        assert example["label"] == splits["test"].records[index].label
    # Training draws drop each modality with probability 0.3, never all of them.
    counts = [len({"text", "audio", "vision"} & set(splits["train"][(i % 5, seed)])) for seed, i in enumerate(range(200))]
    assert min(counts) >= 1 and max(counts) == 3 and (1 in counts or 2 in counts)
    assert sum(c == 3 for c in counts) / len(counts) == pytest.approx(0.7 ** 3, abs=0.1)
    # The draw repeats from its seed (augmentation and dropout alike).
    first, again = splits["train"][(0, 123)], splits["train"][(0, 123)]
    assert set(first) == set(again) and first["id"] == again["id"]


def test_a_batch_of_recordings_holds_several_modalities_per_row(sample_root):
    datamodule = datamodule_for(av_config(sample_root, dropout=0.0))
    batch = datamodule.collate([datamodule.splits["av"]["train"][(i, i)] for i in range(5)])
    assert batch["present"].all()  # text, audio and vision in every row
    assert batch["vision"]["pixel_values"].shape[0] == 5 and batch["audio"]["waveform"].shape[0] == 5


def test_multimodal_rows_cannot_be_label_paired(sample_root):
    with pytest.raises(ConfigError, match="holds real multimodal rows") as raised:
        av_config(sample_root, "data.pairing=label")
    assert "\n" not in str(raised.value)


@pytest.fixture(scope="module")
def av_run(sample_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("av-run")
    result = TwoStageTrainer(av_config(sample_root), out, progress=False).run()
    return out, result


def test_training_with_a_multimodal_corpus_scores_every_subset_of_its_test_rows(av_run):
    out, result = av_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["stage1"]) == {"meld", "av"}  # the corpus's validation and test metrics, as any dataset's
    recordings = metrics["recordings"]["av"]
    assert list(recordings["model"]) == SUBSETS and list(recordings["late"]) == SUBSETS
    assert all(recordings["model"][s]["n"] == 7 for s in SUBSETS)  # every test row holds all three
    assert recordings["late"]["a"] == recordings["model"]["a"]  # one modality: no fusion
    # The fusion was chosen on the corpus's validation rows (real pairs) besides anything label-matched.
    scored = metrics["fusion_choice"]["validation_accuracy"]
    assert set(scored) == {"model", "late"}
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["inference_fusion"] == metrics["inference_fusion"]
    assert set(config["modality_priors"]) == {"text", "audio", "vision"}  # vision and audio from the corpus alone


def test_the_stage1_feature_cache_serves_each_modality_of_a_recording(sample_root, tmp_path, monkeypatch):
    from emoxformer.model.modeling import EmoXFormer
    from emoxformer.training.feature_cache import cached_tables

    monkeypatch.setenv("EMOXFORMER_CACHE", str(tmp_path / "cache"))
    config = av_config(sample_root, dropout=0.0, datasets="[av]")
    datamodule = datamodule_for(config)
    config.model.modalities = ["text", "audio", "vision"]
    model = EmoXFormer(config.model).eval()
    tables = cached_tables(model, datamodule, ("train", "val"), 1, torch.device("cpu"), progress=False)
    assert {key[2] for key in tables if key[0] == "av"} == {"text", "audio", "vision"}
    cached = datamodule.with_encoder_outputs(tables).splits["av"]["val"][0]
    live = datamodule.splits["av"]["val"][0]
    assert set(cached["encoder_outputs"]) == {"text", "audio", "vision"} and cached["label"] == live["label"]
    # A cached row's tokens are the encoder's output on that row's input.
    batch = datamodule.collate([live])
    with torch.no_grad():
        hidden, valid = model.encoders["audio"](**batch["audio"])
    expected = hidden[0][valid[0]].numpy()
    np.testing.assert_allclose(np.asarray(cached["encoder_outputs"]["audio"], dtype=np.float32), expected, atol=2e-2, rtol=2e-2)
