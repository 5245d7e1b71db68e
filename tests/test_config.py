"""The one config loader (emoxformer/config_io.py): Literal choice fields checked at load time, cross-field rules
validated at load time (so the command line stops in one line before any model or data loads), and the four
places that read configs (load_config, the model's config.json, evaluate's run config, the ablation grid) share it."""
import json
import typing

import pytest

from emoxformer import config_io
from emoxformer.cli import main
from emoxformer.config import AugmentConfig, DataConfig, ExperimentConfig, StageConfig, TrainConfig, load_config
from emoxformer.errors import ConfigError, ModelLoadError
from emoxformer.model.config import MODALITIES, EmoXFormerConfig
from emoxformer.training.ablation import full_key

CHOICE_FIELDS = [
    (DataConfig, "ravdess_split"), (DataConfig, "ravdess_fold"), (DataConfig, "pairing"),
    (StageConfig, "schedule"), (TrainConfig, "loss"), (TrainConfig, "monitor_mode"), (TrainConfig, "accelerator"),
    (TrainConfig, "precision"), (EmoXFormerConfig, "modalities"), (EmoXFormerConfig, "vision_tokens"),
    (EmoXFormerConfig, "image_colour"),
]


def _literals(hint) -> list:
    """The Literal types inside an annotation (through unions and lists)."""
    if typing.get_origin(hint) is typing.Literal:
        return [hint]
    return [found for arg in typing.get_args(hint) for found in _literals(arg)]


@pytest.mark.parametrize("cls, name", CHOICE_FIELDS, ids=[f"{c.__name__}.{n}" for c, n in CHOICE_FIELDS])
def test_choice_fields_are_literals(cls, name):
    assert _literals(typing.get_type_hints(cls)[name]), f"{cls.__name__}.{name} is not a Literal choice"


def test_modality_choices_are_the_model_modalities():
    assert typing.get_args(typing.get_type_hints(EmoXFormerConfig)["modalities"])[0].__args__ == MODALITIES


@pytest.mark.parametrize("override, message", [
    ("train.loss=hinge", "train.loss must be focal or cross_entropy, got 'hinge'"),
    ("data.pairing=labels", "data.pairing must be none or label, got 'labels'"),
    ("data.ravdess_split=speaker", "data.ravdess_split must be actor or random, got 'speaker'"),
    ("data.datasets=meld,imdb", "data.datasets[1] must be meld, ravdess or fer2013 (the registered datasets), got 'imdb'"),
    ("data.ravdess_fold=9", "data.ravdess_fold must be one of 1..6 or null, got 9"),
    ("data.ravdess_fold=true", "data.ravdess_fold must be one of 1..6 or null, got True"),  # True == 1, but not a fold
    ("train.stage1.schedule=linear", "train.stage1.schedule must be plateau or cosine, got 'linear'"),
    ("train.monitor_mode=lowest", "train.monitor_mode must be auto, min or max, got 'lowest'"),
    ("train.accelerator=tpuu", "train.accelerator must be auto, cpu, gpu, cuda, mps or tpu, got 'tpuu'"),
    ("train.precision=16", "train.precision must be 32-true, bf16-mixed, 16-mixed, "),  # YAML's int 16 is not "16-mixed"
    ("model.vision_tokens=patch", "model.vision_tokens must be pooled or patches, got 'patch'"),
    ("model.image_colour=gray", "model.image_colour must be grey or colour, got 'gray'"),
    ("model.modalities=text,smell", "model.modalities[1] must be text, audio or vision, got 'smell'"),
])
def test_a_bad_choice_is_refused_naming_key_value_and_choices(override, message):
    with pytest.raises(ConfigError) as info:
        load_config("quickstart", [override])
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_valid_choices_and_unions_load():
    config = load_config("quickstart", ["train.devices=2", "train.precision=bf16-mixed", "data.ravdess_fold=3",
                                        "train.accelerator=gpu", "train.stage2.encoder_lr={vision: 1e-2}"])
    assert (config.train.devices, config.train.precision, config.data.ravdess_fold) == (2, "bf16-mixed", 3)
    assert config.train.stage2.encoder_lr == {"vision": 0.01}  # YAML 1.1 reads 1e-2 as a string
    assert load_config("quickstart", ["train.devices=auto"]).train.devices == "auto"


@pytest.mark.parametrize("overrides, message", [
    (["train.stage1.epochs=0", "train.stage2.epochs=0"],
     r"both stages have 0 epochs \(train\.stage1\.epochs, train\.stage2\.epochs\): nothing to train"),
    (["train.stage2.epochs=-1"], r"train\.stage2\.epochs must be 0 \(skip the stage\) or more, got -1"),
    (["data.pairing=label", "data.datasets=[meld]"], r"data\.pairing=label .* needs two or more in data\.datasets, got \['meld'\]"),
    (["data.datasets=[]"], r"data\.datasets is empty"),
    (["data.modality_dropout=1"], r"data\.modality_dropout must be in \[0, 1\), got 1\.0"),
    (["data.ravdess_val_actors=21,22"], r"data\.ravdess_val_actors and data\.ravdess_test_actors share actors \[21, 22\]"),
    (["train.monitor=val/acc"], r"train\.monitor must be val/score, val/score_by_size, val/loss or val/DATASET/METRIC .*got 'val/acc'"),
    (["data.datasets=[meld]", "train.monitor=val/ravdess/uar"], r"train\.monitor is 'val/ravdess/uar', but ravdess is not in data\.datasets"),
    (["model.hidden_size=100", "model.num_heads=3"], r"model\.hidden_size \(100\) must be a multiple of model\.num_heads \(3\)"),
    (["model.modalities=[]"], r"model\.modalities is empty"),
])
def test_cross_field_rules_are_checked_at_load_time(overrides, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        load_config("quickstart", overrides)


def test_rules_that_do_not_apply_pass():
    load_config("quickstart", ["train.stage1.epochs=0"])  # one stage is enough
    load_config("quickstart", ["data.pairing=label", "data.datasets=[meld,fer2013]"])
    load_config("quickstart", ["data.datasets=[meld]", "data.ravdess_val_actors=21,22"])  # RAVDESS not used
    load_config("quickstart", ["data.ravdess_fold=2", "data.ravdess_val_actors=21,22"])  # the fold picks the actors
    load_config("quickstart", ["data.datasets=[meld]", "train.monitor=val/meld/uar", "train.monitor_mode=max"])
    assert load_config("quickstart", ["train.monitor=val/score_by_size"]).train.resolved_monitor_mode == "max"


class _NeverBuilt:
    def __init__(self, *args, **kwargs):
        raise AssertionError("the trainer was built: the config should have been refused first")


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emoxformer: error: "), err
    return err[0]


@pytest.mark.parametrize("arguments, message", [
    (["--set", "train.stage1.epochs=0", "train.stage2.epochs=0"], "both stages have 0 epochs"),
    (["--datasets", "meld", "data.pairing=label"], "data.pairing=label pairs samples of different datasets"),
    (["--accelerator", "tpuu"], "train.accelerator must be auto, cpu, gpu, cuda, mps or tpu, got 'tpuu'"),
])
def test_train_stops_in_one_line_before_any_model_or_data_loads(arguments, message, tmp_path, monkeypatch, capsys):
    import emoxformer.training.run as run

    monkeypatch.setattr(run, "TwoStageTrainer", _NeverBuilt)
    out = tmp_path / "run"
    assert main(["train", "--config", "quickstart", "--data", str(tmp_path), "--out", str(out), *arguments]) == 2
    assert message in _one_line_error(capsys)
    assert not out.exists()


def test_quickstart_checks_its_overrides_before_writing_sample_data(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "run"), "train.loss=hinge"]) == 2
    assert "train.loss must be focal or cross_entropy, got 'hinge'" in _one_line_error(capsys)
    assert not (tmp_path / "sample-data").exists()


def test_model_config_json_goes_through_the_loader(tmp_path):
    assert EmoXFormerConfig.from_dict({"hidden_size": 64, "image_mean": [1]}).image_mean == [1.0]
    for values, message in [({"vision_tokens": "patch"}, "vision_tokens must be pooled or patches, got 'patch'"),
                            ({"hidden_size": "512"}, "hidden_size: '512' is not a valid int"),
                            ({"hidden_size": 100, "num_heads": 3}, "hidden_size (100) must be a multiple of num_heads (3)"),
                            ({"architectures": ["Bert"]}, "unknown config key(s) architectures")]:
        with pytest.raises(ValueError) as info:
            EmoXFormerConfig.from_dict(values)
        assert str(info.value).startswith(message)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**EmoXFormerConfig().to_dict(), "image_colour": "gray"}))
    (folder / "model.safetensors").write_bytes(b"")  # never read: the config is refused first
    from emoxformer.model.modeling import EmoXFormer

    with pytest.raises(ModelLoadError, match=r"config\.json: not an EmoXFormer config \(image_colour must be grey or colour, got 'gray'\)"):
        EmoXFormer.from_pretrained(folder)


@pytest.mark.parametrize("run_data, arguments, message", [
    ({"ravdess_split": "speaker"}, [], "data.ravdess_split must be actor or random, got 'speaker'"),
    ({"datasets": ["meld", "imdb"]}, [], "data.datasets[1] must be meld, ravdess or fer2013 (the registered datasets), got 'imdb'"),
    ({"nope": 1}, [], "unknown config key(s) data.nope"),
    ({}, ["--accelerator", "tpuu"], "train.accelerator must be auto, cpu, gpu, cuda, mps or tpu, got 'tpuu'"),
])
def test_evaluate_checks_the_run_config_before_loading_the_model(run_data, arguments, message, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)  # no model in it: loading one would fail differently
    (run / "config.yaml").write_text(json.dumps({"data": run_data}))
    assert main(["evaluate", "--model", str(run / "best"), "--data", str(tmp_path), *arguments]) == 2
    assert message in _one_line_error(capsys)


def test_ablation_grid_is_loaded_whole_before_any_training(tmp_path, monkeypatch, capsys):
    import emoxformer.training.ablation as ablation

    monkeypatch.setattr(ablation, "TwoStageTrainer", _NeverBuilt)
    assert main(["ablate", "--data", str(tmp_path), "--out", str(tmp_path / "ablate"), "--no-progress",
                 "--grid", "pairing=none,lable"]) == 2  # the first combination is fine, the second is not
    assert "data.pairing must be none or label, got 'lable'" in _one_line_error(capsys)
    assert not (tmp_path / "ablate").exists()


def test_ablation_short_keys():
    assert [full_key(k) for k in ("pairing", "text_context", "enabled", "hidden_size", "loss", "train.stage2.lr")] == [
        "data.pairing", "data.text_context", "data.augment.enabled", "model.hidden_size", "train.loss", "train.stage2.lr"]
    with pytest.raises(ConfigError, match=r"grid key 'epochs' is ambiguous \(train\.stage1\.epochs, train\.stage2\.epochs\)"):
        full_key("epochs")
    with pytest.raises(ConfigError, match="not a config field"):
        full_key("nope")


def test_the_four_places_share_one_loader(tmp_path, monkeypatch, capsys):
    """load_config, the model's config.json, evaluate's run config and the ablation grid all check values in
    config_io (seen here by the keys it is asked to check)."""
    seen = []
    convert = config_io.convert
    monkeypatch.setattr(config_io, "convert", lambda hint, value, where: seen.append(where) or convert(hint, value, where))

    load_config("quickstart", ["train.loss=cross_entropy"])
    assert "train.loss" in seen and "model.hidden_size" in seen
    seen.clear()
    EmoXFormerConfig.from_dict({"vision_tokens": "patches"})
    assert seen == ["vision_tokens"]
    seen.clear()
    (tmp_path / "run" / "best").mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text("data: {ravdess_split: random}\n")
    assert main(["evaluate", "--model", str(tmp_path / "run" / "best")]) == 2  # the model folder is empty
    assert "data.ravdess_split" in seen and "not an EmoXFormer model folder" in capsys.readouterr().err
    seen.clear()
    monkeypatch.setattr("emoxformer.training.ablation.TwoStageTrainer", _NeverBuilt)
    with pytest.raises(ConfigError):
        from emoxformer.training.ablation import run_ablation

        run_ablation("quickstart", None, ["loss=focal,hinge"], tmp_path / "ablate", [])
    assert seen.count("train.loss") == 2


def test_loader_refuses_non_mappings_and_reads_defaults():
    assert config_io.load_dataclass(AugmentConfig, None, "data.augment") == AugmentConfig()
    with pytest.raises(ConfigError, match="^data.augment: expected a mapping, got list$"):
        config_io.load_dataclass(ExperimentConfig, {"data": {"augment": [1]}})


def test_yaml_that_is_not_a_mapping_is_one_line(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping of config sections, got list"):
        load_config(path)


def test_a_partial_stage_section_keeps_that_stages_defaults(tmp_path):
    """`stage2: {epochs: 2}` must not turn stage 2 into StageConfig's class defaults (frozen backbones, lr 1e-4)."""
    from emoxformer.config import TrainConfig, load_config

    path = tmp_path / "partial.yaml"
    path.write_text("train:\n  stage2:\n    epochs: 2\n")
    stage2 = load_config(str(path)).train.stage2
    default = TrainConfig().stage2
    assert stage2.epochs == 2
    assert (stage2.freeze_backbones, stage2.lr, stage2.patience) == (default.freeze_backbones, default.lr, default.patience)
    assert stage2.freeze_backbones is False
    assert load_config(str(path), ["train.stage1.lr=0.01"]).train.stage1.freeze_backbones is True
