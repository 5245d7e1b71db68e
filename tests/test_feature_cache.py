import numpy as np
import torch

from emoxformer.config import load_config
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training import feature_cache
from emoxformer.training.feature_cache import cached_tables

TINY = ["model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1"]


def _setup(root, *extra):
    config = load_config("quickstart", [f"data.root={root}", *TINY, *extra])
    torch.manual_seed(0)
    model = EmoXFormer.from_config(config.model)
    model.freeze_backbones(True)
    model.eval()
    dm = EmoDataModule(config.data, Preprocessor(config.model), batch_size=8, eval_batch_size=16, seed=0, progress=False)
    dm.setup()
    return config, model, dm


def _logits(model, dm, split, indices):
    outputs = []
    for name in dm.names:
        dataset = dm.splits[name][split]
        outputs.append(model(dm.collate([dataset[i] for i in indices])))
    return torch.cat(outputs)


def test_cached_features_give_the_same_logits(sample_root):
    _, model, dm = _setup(sample_root)
    with torch.no_grad():
        direct = _logits(model, dm, "val", range(6))
        dm.use_features(cached_tables(model, dm, ("train", "val"), 1, torch.device("cpu"), progress=False))
        cached = _logits(model, dm, "val", range(6))
        batch = dm.collate([dm.splits["meld"]["val"][0]])
        assert "features" in batch["text"]  # really served from the cache
        dm.use_features(None)
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
    table = tables[("fer2013", "train")]
    assert table.views == 3
    views = [np.asarray(table.get(0, v), dtype=np.float32) for v in range(3)]
    assert not np.allclose(views[1], views[2])
    dm.use_features(tables)
    dataset = dm.splits["fer2013"]["train"]
    assert np.array_equal(dataset[(0, 4)]["vision"]["features"], table.get(0, 1))  # draw seed 4 -> view 4 % 3
    assert np.array_equal(dataset[0]["vision"]["features"], table.get(0, 0))
    dm.use_features(None)
    with torch.no_grad():
        plain = model.encoders["vision"](dm.collate([dataset[0]])["vision"]["pixel_values"])[0][0]
    np.testing.assert_allclose(views[0], plain.numpy(), atol=2e-2, rtol=2e-2)  # view 0 is the un-augmented input
