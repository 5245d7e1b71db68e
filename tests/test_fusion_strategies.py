from collections import Counter

import numpy as np
import pytest

from emoxformer.cli import main
from emoxformer.config import load_config
from emoxformer.data.context import TARGET_MARK, context_texts
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.data.datasets import merge_samples
from emoxformer.data.meld import read_meld
from emoxformer.data.pairing import PairedSampler, label_matched_examples
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.evaluate import paired_test_examples, paired_test_metrics


def _datamodule(root, *overrides):
    config = load_config("quickstart", [f"data.root={root}", *overrides])
    dm = EmoDataModule(config.data, Preprocessor(config.model), batch_size=16, seed=0, progress=False)
    dm.setup()
    return config, dm


def test_label_pairing_shares_one_label_and_sees_every_sample(sample_root):
    _, dm = _datamodule(sample_root, "data.pairing=label")
    loader = dm.train_dataloader()
    sampler, dataset = loader.sampler, loader.dataset
    assert isinstance(sampler, PairedSampler)
    keys = sampler.epoch_draws()
    seen = Counter()
    for _, parts, _ in keys:
        labels = {dataset[(index, None)]["label"] for index, _ in parts}
        assert len(labels) == 1
        assert len(parts) == 3  # the sample data has every emotion in every dataset
        seen.update(index for index, _ in parts)
    assert set(seen) == set(range(len(dataset)))  # every training sample at least once per epoch
    largest = dm.splits["fer2013"]["train"]  # per label, the largest dataset's samples appear exactly once
    fer_offset = len(dm.splits["meld"]["train"]) + len(dm.splits["ravdess"]["train"])
    assert all(seen[fer_offset + i] == 1 for i in range(len(largest)))
    example = dataset[keys[0]]
    assert example["dataset"] == -1 and {"text", "audio", "vision"} <= set(example)
    batch = next(iter(loader))
    assert batch["present"].all()


def test_pairing_cycles_smaller_datasets_evenly():
    labels = [np.array([0, 0, 1]), np.array([0, 0, 0, 0, 1, 1])]
    examples = label_matched_examples(labels, np.random.default_rng(0))
    assert len(examples) == 6
    first = Counter(e[0] for e in examples)
    assert first[0] == first[1] == 2 and first[2] == 2  # label 0: 2 samples cycled to 4; label 1: 1 sample twice
    assert sorted(e[1] for e in examples) == [3, 4, 5, 6, 7, 8]


def test_modality_dropout_never_drops_everything():
    samples = [{"id": "a", "label": 2, "text": [1, 2]}, {"id": "b", "label": 2, "audio": np.ones(10)}, {"id": "c", "label": 2, "vision": np.ones(3)}]
    rng = np.random.default_rng(0)
    merged = [merge_samples(samples, 0.5, rng) for _ in range(2000)]
    kept = [sum(m in example for m in ("text", "audio", "vision")) for example in merged]
    assert min(kept) >= 1
    assert 1.4 < np.mean(kept) < 1.7  # about 1.5 of 3 kept at p = 0.5 (plus the never-all rule)
    assert all(m in merge_samples(samples) for m in ("text", "audio", "vision"))


def test_context_never_crosses_dialogues_or_looks_ahead(real_samples):
    records = read_meld(real_samples / "meld").train
    texts = context_texts(records, 2, "</s>")
    by_id = {r.id: r for r in records}
    for record in records:
        text = texts[record.id]
        turns = text.split(" </s> ")
        assert turns[-1] == f"{TARGET_MARK} {record.speaker}: {record.text}"
        earlier = [r for r in records if r.dialogue_id == record.dialogue_id and r.utterance_id < record.utterance_id]
        expected = [f"{r.speaker}: {r.text}" for r in sorted(earlier, key=lambda r: r.utterance_id)[-2:]]
        assert turns[:-1] == expected
    first = by_id["meld/train/dia0_utt0"]
    assert texts[first.id] == f"{TARGET_MARK} Chandler: {first.text}"  # a dialogue's first turn has no context


def test_context_zero_is_the_reference_code_input(sample_root):
    _, plain = _datamodule(sample_root)
    _, zero = _datamodule(sample_root, "data.text_context=0")
    for split in ("train", "test"):
        a, b = plain.splits["meld"][split], zero.splits["meld"][split]
        assert all(a[i]["text"] == b[i]["text"] == Preprocessor(load_config("quickstart").model).tokenize(a.records[i].text)
                   for i in range(len(a)))
    _, with_context = _datamodule(sample_root, "data.text_context=3")
    assert any(with_context.splits["meld"]["test"][i]["text"] != plain.splits["meld"]["test"][i]["text"] for i in range(5))


def test_tokenizer_keeps_the_end_for_context():
    from emoxformer.model.config import EmoXFormerConfig

    pre = Preprocessor(EmoXFormerConfig(max_text_tokens=8))
    ids = pre.tokenize("abcdefghij", keep_end=True)
    assert len(ids) == 8 and bytes(i - 3 for i in ids[1:]) == b"defghij"


def test_paired_test_covers_every_subset(sample_root):
    config, dm = _datamodule(sample_root, "model.hidden_size=16", "model.builtin_width=16", "model.fusion_layers=1")
    examples = paired_test_examples(dm, seed=0)
    assert examples and all({"text", "audio", "vision"} <= set(e) for e in examples)
    ids = [part for e in examples for part in e["id"].split("+")]
    assert len(ids) == len(set(ids))  # no test sample is used twice
    assert [e["id"] for e in examples] == [e["id"] for e in paired_test_examples(dm, seed=0)]
    metrics = paired_test_metrics(EmoXFormer(config.model), dm, config.train)
    assert set(metrics) == {"model", "late"}  # the model's fused answer and late fusion, each on every subset
    for fusion in ("model", "late"):
        assert set(metrics[fusion]) == {"t", "a", "v", "t+a", "t+v", "a+v", "t+a+v"}
        assert all(m["n"] == len(examples) for m in metrics[fusion].values())
    assert all(metrics["model"][s] == metrics["late"][s] for s in ("t", "a", "v"))  # one modality: no fusion


@pytest.mark.slow  # trains every setting of the ablation
def test_ablate_writes_one_table(sample_root, tmp_path, capsys):
    tiny = ["model.hidden_size=16", "model.builtin_width=16", "model.fusion_layers=1", "model.builtin_text_layers=1",
            "data.samples_per_epoch=64", "train.stage1.epochs=1", "train.stage2.epochs=1"]
    assert main(["ablate", "--data", str(sample_root), "--out", str(tmp_path), "--no-progress",
                 "--grid", "pairing=none,label", "modality_dropout=0,0.3", "--set", *tiny]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "ablation.csv")
    assert len(table) == 4 and list(table["pairing"]) == ["none", "none", "label", "label"]
    for column in ("meld w-F1", "ravdess acc", "fer2013 acc", "paired t+a+v acc", "paired a acc"):
        assert column in table.columns
    markdown = (tmp_path / "ablation.md").read_text()
    assert markdown.startswith("| pairing | modality_dropout |") and markdown.count("\n") == 6
    assert (tmp_path / "pairing=label__modality_dropout=0.3" / "config.yaml").is_file()


def test_pairing_keeps_every_part_when_there_are_more_than_three():
    # Regression (issue 26, item 1): 4 parts gave 4 seeds, and `s[:3]` cut every example to its first 3 samples.
    labels = [np.array([0, 1]), np.array([0, 1]), np.array([0, 1]), np.array([0, 1])]
    sampler = PairedSampler(labels, seed=0)
    for _, parts, _ in sampler.epoch_draws():
        assert len(parts) == 4
        assert sorted(index // 2 for index, _ in parts) == [0, 1, 2, 3]


def test_pairing_pools_datasets_of_one_modality():
    # Two audio datasets (say RAVDESS and CREMA-D) form one pool: each example holds one audio sample, from either.
    labels = [np.array([0, 0]), np.array([0, 0, 0]), np.array([0, 0, 0, 0])]  # text, audio A, audio B
    examples = label_matched_examples(labels, np.random.default_rng(0), modality_per_part=["text", "audio", "audio"])
    assert len(examples) == 7  # the audio pool (3 + 4 samples) is the largest
    assert all(len(e) == 2 and e[0] < 2 and e[1] >= 2 for e in examples)
    assert sorted(e[1] for e in examples) == list(range(2, 9))  # every audio sample of both datasets once


def test_merging_two_samples_of_one_modality_is_refused():
    # Regression (issue 26, item 1): the second audio sample silently replaced the first.
    samples = [{"id": "a", "label": 1, "audio": np.ones(4)}, {"id": "b", "label": 1, "audio": np.zeros(4)}]
    import pytest

    with pytest.raises(ValueError, match="two audio samples"):
        merge_samples(samples)
    cached = [{"id": "a", "label": 1, "encoder_outputs": {"audio": np.ones((2, 3))}}, {"id": "b", "label": 1, "audio": np.ones(4)}]
    with pytest.raises(ValueError, match="two audio samples"):
        merge_samples(cached)
