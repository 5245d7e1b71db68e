from pathlib import Path

import lightning as L
import numpy as np
import torch

from emoxformer.config import load_config
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training import feature_cache
from emoxformer.training.feature_cache import cached_tables

TINY = ["model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1"]


def _setup(root, *extra, seed=0):
    config = load_config("quickstart", [f"data.root={root}", *TINY, *extra])
    torch.manual_seed(0)
    model = EmoXFormer.from_config(config.model)
    model.freeze_backbones(True)
    model.eval()
    dm = EmoDataModule(config.data, Preprocessor(config.model), batch_size=8, eval_batch_size=16, seed=seed, progress=False)
    dm.setup()
    return config, model, dm


def _logits(model, dm, split, indices):
    outputs = []
    for name in dm.names:
        dataset = dm.splits[name][split]
        outputs.append(model(dm.collate([dataset[i] for i in indices])).logits)
    return torch.cat(outputs)


def test_cached_features_give_the_same_logits(sample_root):
    _, model, dm = _setup(sample_root)
    with torch.no_grad():
        direct = _logits(model, dm, "val", range(6))
        served = dm.with_encoder_outputs(cached_tables(model, dm, ("train", "val"), 1, torch.device("cpu"), progress=False))
        cached = _logits(model, served, "val", range(6))
        batch = served.collate([served.splits["meld"]["val"][0]])
        assert "text" not in batch and "text" in batch["encoder_outputs"]  # really served from the cache
        assert dm.splits["meld"]["val"][0]["text"]  # the datamodule it came from is unchanged
    torch.testing.assert_close(cached, direct, atol=2e-2, rtol=2e-2)  # float16 storage


def test_cache_is_reused_and_keyed_by_settings(sample_root, monkeypatch):
    _, model, dm = _setup(sample_root)
    cached_tables(model, dm, ("val",), 1, torch.device("cpu"), progress=False)
    calls = []
    original = feature_cache.build_table
    monkeypatch.setattr(feature_cache, "build_table", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    cached_tables(model, dm, ("val",), 1, torch.device("cpu"), progress=False)
    assert calls == []  # same encoder, settings and data: read back
    _, other_model, other_dm = _setup(sample_root, "model.max_text_tokens=40")
    cached_tables(other_model, other_dm, ("val",), 1, torch.device("cpu"), progress=False)
    assert "text" in calls  # a changed preprocessing setting builds a new text table
    calls.clear()
    with torch.no_grad():
        model.encoders["vision"].features[0][0].weight.add_(0.01)  # changed encoder weights
    cached_tables(model, dm, ("val",), 1, torch.device("cpu"), progress=False)
    assert calls == ["vision"]


def test_augmented_views(sample_root):
    _, model, dm = _setup(sample_root)
    tables = cached_tables(model, dm, ("train",), 3, torch.device("cpu"), progress=False)
    table = tables[("fer2013", "train", "vision")]
    assert table.views == 3
    views = [np.asarray(table.get(0, v), dtype=np.float32) for v in range(3)]
    assert not np.allclose(views[1], views[2])
    dataset = dm.with_encoder_outputs(tables).splits["fer2013"]["train"]
    assert np.array_equal(dataset[(0, 4)]["encoder_outputs"]["vision"], table.get(0, 1))  # draw seed 4 -> view 4 % 3
    assert np.array_equal(dataset[0]["encoder_outputs"]["vision"], table.get(0, 0))
    dataset = dm.splits["fer2013"]["train"]
    with torch.no_grad():
        plain = model.encoders["vision"](dm.collate([dataset[0]])["vision"]["pixel_values"])[0][0]
    np.testing.assert_allclose(views[0], plain.numpy(), atol=2e-2, rtol=2e-2)  # view 0 is the un-augmented input


def _spy_on_builds(monkeypatch):
    """(modality, number of records encoded) for each table built from now on."""
    builds = []
    original = feature_cache.build_table

    def spy(model, dataset, modality, views, *args, **kwargs):
        tokens, offsets = original(model, dataset, modality, views, *args, **kwargs)
        builds.append((modality, (len(offsets) - 1) // views))
        return tokens, offsets

    monkeypatch.setattr(feature_cache, "build_table", spy)
    return builds


def test_augmented_views_are_keyed_by_the_seed(sample_root, monkeypatch):
    _, model, dm = _setup(sample_root, "data.datasets=[fer2013]")
    first = cached_tables(model, dm, ("train",), 3, torch.device("cpu"), progress=False)[("fer2013", "train", "vision")]
    builds = _spy_on_builds(monkeypatch)
    _, model, other_seed = _setup(sample_root, "data.datasets=[fer2013]", seed=1)
    second = cached_tables(model, other_seed, ("train",), 3, torch.device("cpu"), progress=False)[("fer2013", "train", "vision")]
    assert [modality for modality, _ in builds] == ["vision"]  # another seed draws other views: not the first run's
    assert not np.array_equal(np.asarray(first.get(0, 1)), np.asarray(second.get(0, 1)))
    np.testing.assert_array_equal(np.asarray(first.get(0, 0)), np.asarray(second.get(0, 0)))  # view 0: un-augmented
    _, model, seed_zero = _setup(sample_root, "data.datasets=[fer2013]")
    cached_tables(model, seed_zero, ("val",), 3, torch.device("cpu"), progress=False)
    builds.clear()
    cached_tables(model, other_seed, ("val",), 3, torch.device("cpu"), progress=False)
    assert builds == []  # un-augmented validation tables do not depend on the seed


def test_replicated_ravdess_is_encoded_once_per_clip(sample_root):
    _, model, dm = _setup(sample_root, "data.datasets=[ravdess]", "data.ravdess_replicate=7")
    clips = len(dm.records["ravdess"].train)
    assert len(dm.splits["ravdess"]["train"]) == 7 * clips
    for views in (1, 3):
        table = cached_tables(model, dm, ("train",), views, torch.device("cpu"), progress=False)[("ravdess", "train", "audio")]
        assert len(table.offsets) - 1 == clips * views  # rows on disk: one per clip and view, not per replica
        dataset = dm.with_encoder_outputs({("ravdess", "train", "audio"): table}).splits["ravdess"]["train"]
        for index in (0, clips - 1):
            for copy in range(1, 7):
                replica = index + copy * clips
                np.testing.assert_array_equal(dataset[replica]["encoder_outputs"]["audio"], dataset[index]["encoder_outputs"]["audio"])
                for draw_seed in (4, 5):  # each draw still gets a view: draw seed modulo the views
                    np.testing.assert_array_equal(dataset[(replica, draw_seed)]["encoder_outputs"]["audio"],
                                                  table.get(index, draw_seed % views))
    views = [np.asarray(table.get(0, v), dtype=np.float32) for v in range(3)]
    assert not np.array_equal(views[1], views[2])


class FeatureSource(L.Callback):
    """The file the stage-1 training features are read from (None: the encoders ran)."""

    def __init__(self):
        self.files = []

    def on_train_start(self, trainer, pl_module):
        dataset = trainer.datamodule.splits["fer2013"]["train"]
        table = getattr(dataset, "table", None)  # an EncoderOutputDataset serves a FeatureTable
        self.files.append(Path(table.tokens.filename) if table is not None else None)


def test_cache_off_keeps_stage1_features_out_of_the_current_directory(sample_root, tmp_path, monkeypatch):
    from emoxformer.training.run import TwoStageTrainer

    monkeypatch.setenv("EMOXFORMER_CACHE", "off")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    source = FeatureSource()
    config = load_config("quickstart", [f"data.root={sample_root}", *TINY, "data.datasets=[fer2013]", "data.samples_per_epoch=48",
                                        "train.batch_size=16", "train.stage1.epochs=1", "train.stage2.epochs=0"])
    TwoStageTrainer(config, tmp_path / "run", progress=False, extra_callbacks=[source]).run()
    assert list(workdir.iterdir()) == []  # no ./.emoxformer-cache
    [features] = source.files
    assert features is not None, "stage 1 did not train from cached features"
    assert workdir not in features.parents
    assert not features.exists()  # removed after the stage
    assert not (tmp_path / "run" / "stage1" / "features.tmp").exists()


def test_mixed_batches_of_cached_features_give_the_same_logits(sample_root):
    """Training batches mix datasets: each row's logits from cached outputs equal those from running its encoder."""
    _, model, dm = _setup(sample_root)
    served = dm.with_encoder_outputs(cached_tables(model, dm, ("train", "val"), 1, torch.device("cpu"), progress=False))
    order = [(name, i) for i in range(4) for name in dm.names]  # meld, ravdess, fer2013, meld, ...
    with torch.no_grad():
        direct = model(dm.collate([dm.splits[name]["val"][i] for name, i in order])).logits
        cached = model(served.collate([served.splits[name]["val"][i] for name, i in order])).logits
    torch.testing.assert_close(cached, direct, atol=2e-2, rtol=2e-2)


def test_the_key_follows_every_input_setting_of_its_modality(sample_root):
    """A colour corpus trained alone, then jointly with FER2013 (grey), feeds its encoder other pixels: other key.
    Every setting in the model config's INPUT_SETTINGS counts, for its own modality."""
    import copy

    from emoxformer.config import AugmentConfig
    from emoxformer.model.config import INPUT_SETTINGS

    _, model, dm = _setup(sample_root)
    names = {"text": "meld", "audio": "ravdess", "vision": "fer2013"}
    for modality, settings in INPUT_SETTINGS.items():
        records = dm.splits[names[modality]]["val"].records[:4]
        key = feature_cache.cache_key(model, modality, records, 1, AugmentConfig())
        original = copy.deepcopy(model.config)
        for name in settings:
            value = getattr(model.config, name)
            changed = {"grey": "colour", "colour": "grey"}.get(value) if isinstance(value, str) else None
            changed = changed or (value + "x" if isinstance(value, str) else value + [0.25] if isinstance(value, list)
                                  else value + 1)
            setattr(model.config, name, changed)
            assert feature_cache.cache_key(model, modality, records, 1, AugmentConfig()) != key, (modality, name)
            model.config = copy.deepcopy(original)


def test_another_split_of_the_same_clips_copies_their_rows_and_encodes_only_new_ones(sample_root, monkeypatch, tmp_path):
    """EmoBox's folds: fold 2's training and validation clips are fold 1's but for its test actors, so only the clips
    of those are encoded; the copied rows are the features an encoder pass gives."""
    _, model, fold1 = _setup(sample_root, "data.datasets=[ravdess]", "data.ravdess_fold=1")
    # A folder of its own: no table of other tests to copy from.
    cached_tables(model, fold1, ("train", "val"), 1, torch.device("cpu"), progress=False, root=tmp_path)
    builds = _spy_on_builds(monkeypatch)
    _, shorter, shorter_fold2 = _setup(sample_root, "data.datasets=[ravdess]", "data.ravdess_fold=2",
                                       "model.max_audio_seconds=1.5")
    cached_tables(shorter, shorter_fold2, ("train", "val"), 1, torch.device("cpu"), progress=False, root=tmp_path)
    everything = {r.id for split in ("train", "val") for r in shorter_fold2.splits["ravdess"][split].records}
    assert sum(count for _, count in builds) == len(everything)  # another input setting: nothing to copy
    builds.clear()
    _, model, fold2 = _setup(sample_root, "data.datasets=[ravdess]", "data.ravdess_fold=2")
    tables = cached_tables(model, fold2, ("train", "val"), 1, torch.device("cpu"), progress=False, root=tmp_path)
    seen = {r.id for split in ("train", "val") for r in fold1.splits["ravdess"][split].records}
    wanted = {r.id for split in ("train", "val") for r in fold2.splits["ravdess"][split].records}  # replicas: one
    new = wanted - seen
    assert 0 < len(new) < len(wanted)
    assert sum(count for _, count in builds) == len(new)
    train = fold2.splits["ravdess"]["train"]
    for index in (0, len(train) - 1):
        direct = feature_cache.build_table(model, train, "audio", 1, fold2.collate, torch.device("cpu"), 4, 0, False,
                                           [index])[0]
        # Equal up to float16 rounding of a batch of other clips (1 unit in the last place).
        np.testing.assert_allclose(np.asarray(tables[("ravdess", "train", "audio")].get(index), np.float32), direct, atol=4e-3)


def test_a_table_another_process_is_still_writing_is_not_copied_from(sample_root, monkeypatch, tmp_path):
    _, model, fold1 = _setup(sample_root, "data.datasets=[ravdess]", "data.ravdess_fold=1")
    cached_tables(model, fold1, ("val",), 1, torch.device("cpu"), progress=False, root=tmp_path)
    (table,) = list(tmp_path.iterdir())
    table.rename(tmp_path / f".{table.name}.123.tmp")  # as a table looks before its writer renames it
    builds = _spy_on_builds(monkeypatch)
    cached_tables(model, fold1, ("val",), 1, torch.device("cpu"), progress=False, root=tmp_path)
    assert builds == [("audio", len(fold1.splits["ravdess"]["val"]))]
