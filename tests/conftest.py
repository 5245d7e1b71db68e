from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = REPO.parent / "shared" / "samples"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Decoded-data caches go to a temporary folder, not the user's ~/.cache (subprocesses inherit it)."""
    import os

    os.environ["EMOXFORMER_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """Real excerpts of MELD, RAVDESS and FER2013 (../shared/samples), read in place, never copied."""
    if not SHARED_SAMPLES.is_dir():
        pytest.skip("../shared/samples is not present beside this checkout")
    return SHARED_SAMPLES


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    from emoxformer.data.sample_data import make_sample_data

    return make_sample_data(tmp_path_factory.mktemp("sample-data"), size="small", seed=0)


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory) -> dict[str, str]:
    from tiny_backbones import save_tiny_backbones

    return save_tiny_backbones(tmp_path_factory.mktemp("backbones"))
