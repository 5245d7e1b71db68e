"""Models on the Hugging Face Hub: load a model folder by id (`org/name`) and push one with a generated model card.

Loading goes through `huggingface_hub.snapshot_download` into its cache (HF_HUB_CACHE; HF_HUB_OFFLINE=1 reads only the
cache). Only JSON, safetensors, tokenizer vocabularies and the card are downloaded, never pickle-based files, and a
cached copy that holds one is refused as a local folder would be. A local folder always wins over a Hub id of the
same name. Every failure is one ModelLoadError (loading) or HubError (pushing) line naming the id.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from fnmatch import fnmatch
from pathlib import Path

from ..errors import HubError, ModelLoadError
from .files import CONFIG_NAME, UNSAFE_SUFFIXES, WEIGHTS_NAME, load_model_config

# What a model folder may hold and a download fetches: config.json, model.safetensors, the tokenizer's JSON,
# vocabulary and sentencepiece files (tokenizer/), and the card. Nothing else is ever downloaded or uploaded.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "README.md"]
IGNORE_PATTERNS = [f"*{suffix}" for suffix in UNSAFE_SUFFIXES]
CARD_NAME = "README.md"
# `org/name`: one slash, each part starting with a letter or digit (a path such as ./best or runs/a/best is not one).
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def is_hub_id(name: str | Path) -> bool:
    """Whether `name` has the shape of a Hub model id, `org/name` (it may still name a local folder)."""
    text = str(name)
    return _REPO_ID.fullmatch(text) is not None and ".." not in text


def resolve_model_dir(name: str | Path, revision: str | None = None, cache_dir: str | Path | None = None,
                      token: str | bool | None = None) -> Path:
    """The local folder of a model: `name` itself when it exists (a local folder wins over a Hub id), else the cached
    snapshot of the Hub model `name` at `revision`, downloaded if needed. A name that is neither is returned as it is,
    for the loader's "model folder not found"."""
    path = Path(name)
    if path.exists():
        if revision is not None:
            raise ModelLoadError(f"{path}: a local model folder; a revision applies only to a Hugging Face Hub id "
                                 "(rename or move the folder to load the Hub model of that name)")
        return path
    if not is_hub_id(name):
        return path
    return download(str(name), revision=revision, cache_dir=cache_dir, token=token)


def download(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None,
             token: str | bool | None = None) -> Path:
    """The Hub model's snapshot folder in the huggingface_hub cache (downloading what is missing); ModelLoadError in
    one line when it cannot be had."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub import errors as hub_errors

    at = f" (revision {revision})" if revision else ""
    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, token=token,
                                        allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS,
                                        library_name="emoxformer"))
    except hub_errors.RevisionNotFoundError:
        raise ModelLoadError(f"{repo_id}: the Hugging Face Hub model has no revision {revision!r}") from None
    except (hub_errors.RepositoryNotFoundError, hub_errors.GatedRepoError):
        raise ModelLoadError(f"{repo_id}: no such local folder, and no such model on the Hugging Face Hub (a private "
                             "or gated one needs `hf auth login` or HF_TOKEN)") from None
    except hub_errors.LocalEntryNotFoundError:  # offline or unreachable, and nothing cached
        offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise ModelLoadError(f"{repo_id}{at}: no such local folder; the Hugging Face Hub could not be reached{offline} "
                             f"and the model is not in the cache {cache}") from None
    except hub_errors.HFValidationError as exc:
        raise ModelLoadError(f"{repo_id}: model folder not found (nor a valid Hub id: {_first_line(exc)})") from None
    except Exception as exc:  # incomplete cached snapshots, Hub or disk errors: still one line
        raise ModelLoadError(f"{repo_id}{at}: no such local folder, and the Hugging Face Hub model could not be "
                             f"downloaded ({type(exc).__name__}: {_first_line(exc)})") from None
    unsafe = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix.lower() in UNSAFE_SUFFIXES)
    if unsafe:
        raise ModelLoadError(f"{repo_id}: refusing the cached Hub model {folder}, which holds pickle-based files "
                             f"({', '.join(unsafe)}); only safetensors weights are read")
    for required in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / required).is_file():
            raise ModelLoadError(f"{repo_id}{at}: the Hugging Face Hub model is not an EmoXFormer model ({required} missing)")
    return folder


def push_folder(model_dir: str | Path, repo_id: str, *, metrics: dict | None = None, training_config: dict | None = None,
                license: str | None = None, private: bool | None = None, token: str | bool | None = None,
                revision: str | None = None, commit_message: str | None = None) -> str:
    """Upload a model folder (config.json, model.safetensors, tokenizer/) to the Hub repo `repo_id` (created if
    missing) with a generated model card as README.md, in one commit; returns the commit's URL.

    `metrics` is a run's metrics.json, `training_config` its config.yaml (as dicts); see model_card.render_card."""
    from huggingface_hub import HfApi

    from .model_card import render_card

    model_dir = Path(model_dir)
    if not is_hub_id(repo_id):
        raise HubError(f"{repo_id}: not a Hugging Face Hub model id (ORG/NAME)")
    config = load_model_config(model_dir)  # a model folder, without pickle files
    card = render_card(repo_id, config, metrics=metrics, training_config=training_config, license=license)
    with tempfile.TemporaryDirectory(prefix="emoxformer-push-") as staging:
        staging = Path(staging)
        for source in sorted(model_dir.rglob("*")):
            relative = source.relative_to(model_dir).as_posix()
            if source.is_file() and relative != CARD_NAME and any(fnmatch(relative, p) for p in ALLOW_PATTERNS):
                _link_or_copy(source, staging / relative)
        (staging / CARD_NAME).write_text(card, encoding="utf-8")
        api = HfApi(token=token, library_name="emoxformer")
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision not in (None, "main"):
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=str(staging), revision=revision,
                                     commit_message=commit_message or "Upload EmoXFormer model")
        except Exception as exc:  # no token, no network, no rights: one line
            raise HubError(f"{repo_id}: could not push to the Hugging Face Hub ({type(exc).__name__}: {_first_line(exc)}); "
                           "log in with `hf auth login` or set HF_TOKEN") from None
    return str(getattr(info, "commit_url", info))


def read_run_records(run_dir: str | Path) -> tuple[dict | None, dict | None]:
    """A run folder's metrics.json and config.yaml as dicts (None for one it lacks)."""
    import yaml

    run_dir = Path(run_dir)
    metrics = training = None
    try:
        if (run_dir / "metrics.json").is_file():
            metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        if (run_dir / "config.yaml").is_file():
            training = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise HubError(f"{run_dir}: cannot read the run's records for the model card ({_first_line(exc)})") from None
    return metrics, training


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
