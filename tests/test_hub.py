"""Models on the Hugging Face Hub, without a network: loading reads a local directory laid out as the huggingface_hub
cache in offline mode, and pushing runs against a mocked HfApi that records what would be uploaded."""
import json
import shutil
import socket

import numpy as np
import pytest
import torch
import yaml
from offline_hub import set_hub_offline

from emoxformer import EmoXFormer, EmoXFormerProcessor, Predictor
from emoxformer.cli import main
from emoxformer.config import load_config, save_config
from emoxformer.data.sample_data import draw_face, synthesize_voice
from emoxformer.errors import HubError, ModelLoadError
from emoxformer.model.hub import ALLOW_PATTERNS, IGNORE_PATTERNS
from emoxformer.labels import EMOTIONS
from emoxformer.metrics import classification_metrics
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.training.result import TrainingResult

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Offline mode, an empty cache under tmp_path, the working directory tmp_path/work, and no socket connects."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    set_hub_offline(monkeypatch)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return cache


def _model(seed: int = 0, **values) -> EmoXFormer:
    torch.manual_seed(seed)
    return EmoXFormer(EmoXFormerConfig(**{"hidden_size": 16, "builtin_width": 16, "fusion_layers": 1,
                                          "builtin_text_layers": 1, **values})).eval()


def _cache_model(cache, repo_id: str, model: EmoXFormer, commit: str = COMMIT, refs=("main",)):
    """Lay `model` out in the Hub cache as snapshot_download leaves it: models--org--name/snapshots/<commit>/, refs/."""
    storage = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    model.save_pretrained(snapshot)
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (storage / "refs" / ref).write_text(commit)
    return snapshot


def _inputs() -> dict:
    voice = synthesize_voice(np.random.default_rng(1), 3, actor=2, seconds=1.0, rate=16_000)
    return {"text": "I'm so happy today!", "audio": voice, "image": draw_face(np.random.default_rng(0), "happy"),
            "sample_rate": 16_000, "detect_faces": False}


def _probabilities(predictor: Predictor) -> dict:
    return predictor.predict(**_inputs()).probabilities


def _local_predictor(model: EmoXFormer) -> Predictor:
    return Predictor(model, EmoXFormerProcessor.for_model(model), device="cpu")


# ----------------------------------------------------------------------------- loading by id
def test_a_model_round_trips_through_the_hub_cache(offline):
    model = _model()
    _cache_model(offline, "org/tiny", model, refs=("main", "v1"))
    expected = _probabilities(_local_predictor(model))
    assert _probabilities(Predictor.from_pretrained("org/tiny", device="cpu")) == pytest.approx(expected, abs=1e-7)
    for revision in (None, "main", "v1", COMMIT):
        loaded = EmoXFormer.from_pretrained("org/tiny", revision=revision)
        for name, tensor in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[name], tensor), (revision, name)
    assert EmoXFormerProcessor.from_pretrained("org/tiny").config.to_dict() == model.config.to_dict()


def test_a_revision_not_in_the_cache_is_one_line(offline):
    _cache_model(offline, "org/tiny", _model())
    with pytest.raises(ModelLoadError) as error:
        EmoXFormer.from_pretrained("org/tiny", revision="v2")
    message = str(error.value)
    assert "\n" not in message and message.startswith("org/tiny (revision v2): ") and "not in the cache" in message


def test_a_local_folder_wins_over_a_hub_id_of_the_same_name(offline, tmp_path):
    hub_model, local_model = _model(seed=0), _model(seed=1)
    _cache_model(offline, "org/tiny", hub_model)
    local_model.save_pretrained(tmp_path / "work" / "org" / "tiny")  # ./org/tiny beside the cached org/tiny
    expected = _probabilities(_local_predictor(local_model))
    assert expected != pytest.approx(_probabilities(_local_predictor(hub_model)), abs=1e-4)
    assert _probabilities(Predictor.from_pretrained("org/tiny", device="cpu")) == pytest.approx(expected, abs=1e-7)
    with pytest.raises(ModelLoadError, match="a local model folder; a revision applies only to a Hugging Face Hub id"):
        EmoXFormer.from_pretrained("org/tiny", revision="main")


def test_offline_with_nothing_cached_is_one_line_naming_the_id(offline, capsys):
    with pytest.raises(ModelLoadError) as error:
        Predictor.from_pretrained("org/missing")
    message = str(error.value)
    assert "\n" not in message and message.startswith("org/missing: ")
    assert "could not be reached" in message and f"not in the cache {offline}" in message
    assert main(["predict", "--model", "org/missing", "--text", "hello"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("emoxformer: error: org/missing: ")
    # A path that is no Hub id stays a missing folder.
    with pytest.raises(ModelLoadError, match="runs/a/best: model folder not found"):
        EmoXFormer.from_pretrained("runs/a/best")


def test_pickle_files_are_never_downloaded_and_refused_when_cached(offline):
    from huggingface_hub.utils import filter_repo_objects

    repo = ["config.json", "model.safetensors", "README.md", "tokenizer/tokenizer.json", "tokenizer/vocab.txt",
            "tokenizer/spiece.model", "pytorch_model.bin", "optimizer.pt", "last.ckpt", "tokenizer/extra.pkl", "run.pth"]
    fetched = list(filter_repo_objects(repo, allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS))
    assert fetched == repo[:6]
    snapshot = _cache_model(offline, "org/tiny", _model())
    (snapshot / "pytorch_model.bin").write_bytes(b"pickle")  # e.g. cached by another library
    with pytest.raises(ModelLoadError) as error:
        Predictor.from_pretrained("org/tiny")
    assert "\n" not in str(error.value) and "pickle-based files (pytorch_model.bin)" in str(error.value)


# ----------------------------------------------------------------------------- pushing
@pytest.fixture
def hub_calls(monkeypatch):
    """HfApi.create_repo / create_branch / upload_folder replaced: each call recorded, with the uploaded files' bytes."""
    from huggingface_hub import HfApi

    calls = {"create_repo": [], "create_branch": [], "upload_folder": []}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"].append({"repo_id": repo_id, **kwargs})

    def create_branch(self, repo_id, **kwargs):
        calls["create_branch"].append({"repo_id": repo_id, **kwargs})

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        from pathlib import Path

        files = {p.relative_to(folder_path).as_posix(): p.read_bytes() for p in Path(folder_path).rglob("*") if p.is_file()}
        calls["upload_folder"].append({"repo_id": repo_id, "files": files, **kwargs})
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/{COMMIT}"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def _run_metrics(datasets=("meld", "ravdess", "fer2013")) -> dict:
    """A metrics.json as a run writes it (TrainingResult.to_dict), with metrics computed the way evaluation does."""
    generator = torch.Generator().manual_seed(0)
    stage = {}
    for i, name in enumerate(datasets):
        target = torch.randint(0, len(EMOTIONS), (40 + i,), generator=generator)
        stage[name] = classification_metrics(torch.where(torch.rand(40 + i, generator=generator) < 0.6, target, 0), target)
    result = TrainingResult(run_dir=None, model_dir=None, metrics={"stage1": stage, "stage2": stage}, best_stage="stage2",
                            selection={"stage1": 0.5, "stage2": 0.6}, temperature=1.2, test_predictions={},
                            dataset_names=tuple(datasets), modality_temperatures={"text": 1.1},
                            paired_test={"text+audio": {"n": 12, "accuracy": 0.5, "weighted_f1": 0.4, "macro_f1": 0.3, "uar": 0.45}})
    return json.loads(json.dumps(result.to_dict()))


def test_push_to_hub_uploads_the_model_and_a_card_with_the_metrics(hub_calls):
    model = _model()
    metrics = _run_metrics()
    url = model.push_to_hub("org/tiny", metrics=metrics, private=True)
    assert url == f"https://huggingface.co/org/tiny/commit/{COMMIT}"
    assert hub_calls["create_repo"] == [{"repo_id": "org/tiny", "private": True, "exist_ok": True}]
    (upload,) = hub_calls["upload_folder"]
    assert upload["repo_id"] == "org/tiny" and set(upload["files"]) == {"config.json", "model.safetensors", "README.md"}
    assert json.loads(upload["files"]["config.json"]) == model.config.to_dict() | {"backbone_configs": {}}
    card = upload["files"]["README.md"].decode()
    front = _front_matter(card)
    assert front["library_name"] == "emoxformer" and front["license"] == "other"
    assert front["datasets"] == ["meld", "ravdess", "fer2013"] and front["metrics"] == ["accuracy", "f1", "recall"]
    assert {"emoxformer", "emotion-recognition", "text-classification", "audio-classification",
            "image-classification"} <= set(front["tags"])
    for name in ("meld", "ravdess", "fer2013"):
        values = metrics["stage2"][name]
        assert (f"| {name} | {values['n']} | {values['accuracy']:.3f} | {values['weighted_f1']:.3f} | "
                f"{values['macro_f1']:.3f} | {values['uar']:.3f} |") in card
    assert "GPL-3.0" in card and "CC BY-NC-SA 4.0" in card and "research use" in card
    assert "| text+audio | 12 | 0.500 | 0.400 | 0.450 |" in card
    assert 'Predictor.from_pretrained("org/tiny")' in card and "emoxformer predict --model org/tiny" in card


def test_a_failed_push_is_one_line(hub_calls, monkeypatch, tmp_path):
    from huggingface_hub import HfApi

    def no_token(self, repo_id, **kwargs):
        raise OSError("Invalid user token.\nmore detail")

    monkeypatch.setattr(HfApi, "create_repo", no_token)
    with pytest.raises(HubError) as error:
        _model().push_to_hub("org/tiny")
    assert "\n" not in str(error.value) and str(error.value).startswith("org/tiny: could not push")
    with pytest.raises(HubError, match="not a Hugging Face Hub model id"):
        _model().push_to_hub("tiny")


def _run_folder(tmp_path, datasets=("meld", "ravdess", "fer2013")):
    run = tmp_path / "run"
    run.mkdir()
    overrides = [f"data.root={tmp_path / 'private-data'}", f"data.datasets=[{','.join(datasets)}]"]
    save_config(load_config("quickstart", overrides), run / "config.yaml")
    (run / "metrics.json").write_text(json.dumps(_run_metrics(datasets)))
    modalities = {"meld": "text", "ravdess": "audio", "fer2013": "vision"}
    _model(modalities=[modalities[d] for d in datasets]).save_pretrained(run / "best")
    return run


def test_cli_push_uploads_a_runs_best_model_with_its_card(hub_calls, tmp_path, capsys):
    run = _run_folder(tmp_path)
    (run / "best" / "stray.pt").write_bytes(b"pickle")
    assert main(["push", str(run / "best"), "org/tiny"]) == 2  # a folder holding pickle files is refused
    assert "pickle-based files (stray.pt)" in capsys.readouterr().err and not hub_calls["upload_folder"]
    (run / "best" / "stray.pt").unlink()
    assert main(["push", str(run), "org/tiny", "--revision", "v1", "--message", "first model"]) == 0  # RUN_DIR: its best/
    assert "pushed" in capsys.readouterr().out
    (upload,) = hub_calls["upload_folder"]
    assert upload["revision"] == "v1" and upload["commit_message"] == "first model"
    assert hub_calls["create_branch"] == [{"repo_id": "org/tiny", "branch": "v1", "exist_ok": True}]
    assert set(upload["files"]) == {"config.json", "model.safetensors", "README.md"}
    card = upload["files"]["README.md"].decode()
    assert "## Training config" in card and "stage2:" in card and "private-data" not in card
    assert f"{_run_metrics()['stage2']['ravdess']['accuracy']:.3f}" in card


def test_cli_push_of_a_single_dataset_model_takes_its_licence(hub_calls, tmp_path, capsys):
    run = _run_folder(tmp_path, datasets=("meld",))
    assert main(["push", str(run / "best"), "org/meld-text"]) == 0
    front = _front_matter(hub_calls["upload_folder"][0]["files"]["README.md"].decode())
    assert front["license"] == "gpl-3.0" and front["datasets"] == ["meld"] and "text-classification" in front["tags"]
    assert main(["push", str(run / "best"), "org/meld-text", "--license", "mit"]) == 0
    assert _front_matter(hub_calls["upload_folder"][1]["files"]["README.md"].decode())["license"] == "mit"


def test_cli_predict_reads_a_hub_id_from_the_cache(offline, tmp_path, capsys):
    model = _model()
    _cache_model(offline, "org/tiny", model, refs=("main", "v1"))
    local = tmp_path / "local"
    shutil.copytree(offline / "models--org--tiny" / "snapshots" / COMMIT, local)
    answers = []
    for source in (["--model", "org/tiny"], ["--model", "org/tiny", "--revision", "v1"], ["--model", str(local)]):
        assert main(["predict", *source, "--text", "so happy", "--json", "--device", "cpu"]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0]["label"] in EMOTIONS and answers[0] == answers[1] == answers[2]


def test_the_cards_licences_are_the_download_sources():
    from emoxformer.data.download import SOURCE_PAGES
    from emoxformer.model.model_card import DATASETS

    assert {name: DATASETS[name][2] for name in SOURCE_PAGES} == {name: licence for name, (_, licence) in SOURCE_PAGES.items()}
