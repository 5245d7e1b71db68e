"""The laptop recipe's settings: its config, per-encoder learning rates and schedule, EmoBox folds from the command
line, and the quickstart's pointer to it."""
import pytest
import torch

from emoxformer import cli
from emoxformer.config import StageConfig, TrainConfig, load_config
from emoxformer.data.ravdess import EMOBOX_FOLDS, emobox_fold_actors
from emoxformer.data.sources import load_dataset
from emoxformer.errors import ConfigError
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer
from emoxformer.training.module import EmoXFormerModule, warmup_cosine


def test_laptop_config_names_installable_backbones():
    config = load_config("laptop", ["data.root=/data"])
    assert (config.model.text_backbone, config.model.audio_backbone, config.model.vision_backbone) == \
        ("minilm", "speaker_lstm", "mobilenet_v2")
    assert config.train.feature_cache and config.train.stage1.freeze_backbones and not config.train.stage2.freeze_backbones
    assert set(config.train.stage2.encoder_lr) == {"text", "audio", "vision"}
    assert config.data.datasets == ["meld", "ravdess", "fer2013"]


def test_each_encoder_trains_at_its_own_learning_rate():
    model = EmoXFormer(EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1))
    stage = StageConfig(lr=1e-3, freeze_backbones=False, encoder_lr={"text": 2e-5, "vision": 5e-4})
    groups = EmoXFormerModule(model, ["meld", "ravdess", "fer2013"], TrainConfig(), stage).parameter_groups()
    by_name = {g["name"]: g for g in groups}
    assert by_name["encoder.text"]["lr"] == 2e-5 and by_name["encoder.vision"]["lr"] == 5e-4
    assert by_name["model"]["lr"] == 1e-3
    ids = {name: {id(p) for p in g["params"]} for name, g in by_name.items()}
    assert ids["encoder.text"] == {id(p) for p in model.encoders["text"].parameters()}
    assert {id(p) for p in model.encoders["audio"].parameters()} <= ids["model"]  # not named: the stage's lr
    assert not ids["model"] & ids["encoder.text"] and not ids["model"] & ids["encoder.vision"]
    assert sum(len(v) for v in ids.values()) == sum(1 for _ in model.parameters())


def test_frozen_encoders_are_left_out_of_the_groups():
    model = EmoXFormer(EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1))
    model.freeze_backbones(True)
    stage = StageConfig(lr=1e-3, encoder_lr={"text": 2e-5})
    groups = EmoXFormerModule(model, ["meld"], TrainConfig(), stage).parameter_groups()
    assert [g["name"] for g in groups] == ["model"]
    assert all(p.requires_grad for p in groups[0]["params"])


def test_the_optimizer_is_the_fused_adamw_and_updates_like_the_per_tensor_one():
    """Without `fused`, torch's AdamW updated CPU parameters one tensor at a time (20 % of a laptop stage-2 step)."""
    torch.manual_seed(0)
    model = EmoXFormer(EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1))
    stage = StageConfig(lr=1e-3, freeze_backbones=False, encoder_lr={"text": 2e-5})
    module = EmoXFormerModule(model, ["meld", "ravdess", "fer2013"], TrainConfig(weight_decay=0.01), stage)
    optimizer = module.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW) and [g["fused"] for g in optimizer.param_groups] == [True, True]
    assert sorted(g["lr"] for g in optimizer.param_groups) == [2e-5, 1e-3]

    reference_params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    reference = torch.optim.AdamW([{"params": reference_params[:3], "lr": 2e-5}, {"params": reference_params[3:]}],
                                  lr=1e-3, weight_decay=0.01, foreach=False)
    ours = torch.optim.AdamW([{"params": list(model.parameters())[:3], "lr": 2e-5},
                              {"params": list(model.parameters())[3:]}], lr=1e-3, weight_decay=0.01,
                             fused=True)
    for _ in range(3):
        for param, ref in zip(model.parameters(), reference_params):
            ref.grad = torch.randn_like(ref)
            param.grad = ref.grad.clone()
        reference.step()
        ours.step()
    for param, ref in zip(model.parameters(), reference_params):
        torch.testing.assert_close(param.detach(), ref.detach(), atol=1e-6, rtol=1e-5)


def test_a_resumed_stage_keeps_the_fused_kernel_after_loading_a_plain_optimizer_state():
    """Loading a state saved with the plain kernel brought back `fused: None`, which under a gradient scaler breaks
    the fused optimiser's step."""
    from types import SimpleNamespace

    model = EmoXFormer(EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1))
    module = EmoXFormerModule(model, ["meld"], TrainConfig(), StageConfig(lr=1e-3, freeze_backbones=False))
    optimizer = module.configure_optimizers()["optimizer"]
    saved_plain = torch.optim.AdamW(module.parameter_groups(), lr=1e-3).state_dict()
    optimizer.load_state_dict(saved_plain)
    assert {g["fused"] for g in optimizer.param_groups} == {None}  # what Lightning's restore leaves
    module._trainer = SimpleNamespace(optimizers=[optimizer])
    module.on_train_start()
    assert {g["fused"] for g in optimizer.param_groups} == {True}
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    optimizer.grad_scale, optimizer.found_inf = torch.tensor(1.0), torch.tensor(0.0)  # what a gradient scaler sets
    optimizer.step()


def test_a_resumed_fused_optimizer_keeps_its_step_counters_on_the_parameters_device():
    """Issue 26, item 20: torch loads a plain kernel's `step` counters onto the host, where the fused kernel cannot
    read them for CUDA parameters. On the CPU the device cannot differ, so the counters are left in another dtype
    (float64): the fix puts them where and as the fused kernel keeps its own (the parameter's device, float32)."""
    from types import SimpleNamespace

    model = EmoXFormer(EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1))
    module = EmoXFormerModule(model, ["meld"], TrainConfig(), StageConfig(lr=1e-3, freeze_backbones=False))
    optimizer = module.configure_optimizers()["optimizer"]
    plain = torch.optim.AdamW(module.parameter_groups(), lr=1e-3)
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    plain.step()
    optimizer.load_state_dict(plain.state_dict())
    for state in optimizer.state.values():
        state["step"] = torch.tensor(1.0, dtype=torch.float64)  # not as the fused kernel keeps it
    module._trainer = SimpleNamespace(optimizers=[optimizer])
    module.on_train_start()
    for param, state in optimizer.state.items():
        assert state["step"].device == param.device and state["step"].dtype == torch.float32
    optimizer.step()


@pytest.mark.parametrize("precision, grad_clip, fused", [
    ("32-true", 1.0, True), ("bf16-true", 1.0, True), ("16-mixed", 1.0, False), ("bf16-mixed", 1.0, False),
    ("16-mixed", 0.0, True),
])
def test_the_fused_kernel_is_left_out_where_lightning_clips_scaled_gradients(precision, grad_clip, fused):
    from emoxformer.training.optimizer import use_fused_adamw

    assert use_fused_adamw("cpu", TrainConfig(precision=precision, grad_clip=grad_clip)) is fused
    assert use_fused_adamw("cpu", TrainConfig(strategy="fsdp", grad_clip=1.0)) is False


def test_warmup_then_cosine_to_zero():
    factor = warmup_cosine(total_steps=100, warmup_steps=10)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0) and factor(55) == pytest.approx(0.5) and factor(100) == pytest.approx(0.0)
    assert [factor(s) for s in range(10, 100)] == sorted((factor(s) for s in range(10, 100)), reverse=True)


@pytest.mark.parametrize("values, message", [
    ({"schedule": "linear"}, "plateau or cosine"),
    ({"encoder_lr": {"speech": 1e-4}}, "unknown modality speech"),
    ({"warmup": 1.5}, "warmup"),
])
def test_bad_stage_settings_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        load_config("laptop", [f"train.stage2.{k}={v}" for k, v in values.items()])


def test_cosine_schedule_steps_the_learning_rate_each_batch(sample_root, tmp_path):
    from emoxformer.training.run import TwoStageTrainer

    config = load_config("quickstart", [
        f"data.root={sample_root}", "data.datasets=[fer2013]", "model.hidden_size=16", "model.builtin_width=16",
        "model.fusion_layers=1", "data.samples_per_epoch=64", "train.batch_size=16", "train.stage1.epochs=0",
        "train.stage2.epochs=2", "train.stage2.schedule=cosine", "train.stage2.warmup=0.25", "train.stage2.lr=1e-3",
        "train.stage2.encoder_lr={vision: 1e-2}", "train.log_every_n_steps=1"])
    seen = []

    import lightning as L

    class RecordRates(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append([group["lr"] for group in trainer.optimizers[0].param_groups])

    TwoStageTrainer(config, tmp_path / "run", progress=False, extra_callbacks=[RecordRates()]).run()
    assert len(seen) == 8
    assert seen[0] == pytest.approx([1e-3 / 2, 1e-2 / 2])  # warm-up: 2 of 8 steps
    assert seen[1] == pytest.approx([1e-3, 1e-2])
    assert seen[-1][0] < seen[2][0] and seen[-1][1] / seen[-1][0] == pytest.approx(10.0)


def test_emobox_folds_cover_every_actor_once_with_separate_validation_actors():
    tested = []
    for fold in range(1, len(EMOBOX_FOLDS) + 1):
        validation, test = emobox_fold_actors(fold)
        assert test == EMOBOX_FOLDS[fold - 1] and not set(validation) & set(test)
        assert sorted(a % 2 for a in validation) == [0, 1]  # one actress, one actor
        tested += test
    assert sorted(tested) == list(range(1, 25))


@pytest.mark.parametrize("fold", [0, 7, "2"])
def test_bad_fold_is_refused(fold):
    with pytest.raises(ConfigError, match="ravdess_fold"):
        emobox_fold_actors(fold)


def test_fold_from_the_command_line_sets_the_test_actors(sample_root):
    config = load_config("quickstart", [f"data.root={sample_root}", "data.ravdess_fold=3"])
    assert config.data.ravdess_fold == 3
    splits = load_dataset(config.data, "ravdess")
    assert {r.actor for r in splits.test} <= set(EMOBOX_FOLDS[2]) and {r.actor for r in splits.test}
    assert {r.actor for r in splits.val} <= {1, 2} and not {r.actor for r in splits.train} & {1, 2, 8, 9, 19, 23}


def test_fold_out_of_range_from_the_cli_is_one_line(sample_root, tmp_path, capsys):
    assert cli.main(["train", "--config", "quickstart", "--data", str(sample_root), "--out", str(tmp_path / "run"),
                     "--datasets", "ravdess", "--no-progress", "data.ravdess_fold=9"]) == 2
    err = capsys.readouterr().err
    assert "ravdess_fold must be one of 1..6" in err and "Traceback" not in err


def test_quickstart_ends_by_pointing_to_the_laptop_recipe(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_train_and_report", lambda *args, **kwargs: print("best model: ...") or 0)
    data = tmp_path / "sample"
    for name in ("meld", "ravdess", "fer2013"):
        (data / name).mkdir(parents=True)
    assert cli.main(["quickstart", "--out", str(tmp_path / "run"), "--data", str(data), "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    note = next(i for i, line in enumerate(lines) if "demonstration config" in line)
    assert note > lines.index("best model: ...")  # the closing lines, after the run's report
    assert lines[-1].strip().startswith("emoxformer train --config laptop --data ROOT")
    assert any(".[laptop]" in line for line in lines[note:])
