import json

import pytest

from emoxformer.cli import main


@pytest.mark.slow
def test_quickstart_learns_every_sample_test_set(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("Sample ") >= 5 and "True = " in out and "Pred = " in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("meld", "ravdess", "fer2013"):
        assert metrics["stage2"][name]["accuracy"] >= 0.8, (name, metrics["stage2"][name]["accuracy"])
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
