import hashlib
import json

import numpy as np
import soundfile as sf

from emoxformer.cli import main
from emoxformer.data.sample_data import make_sample_data
from emoxformer.labels import EMOTIONS


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_summary_json_reports_all_splits_and_classes(sample_root, capsys):
    assert main(["data", "summary", str(sample_root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"meld", "ravdess", "fer2013"}
    for name, info in summary.items():
        for split in ("train", "val", "test"):
            assert info[split]["total"] > 0, (name, split)
        assert all(info["train"]["per_class"][e] > 0 for e in EMOTIONS), name


def test_layout_matches_the_real_datasets(sample_root):
    assert sorted(p.name for p in (sample_root / "meld" / "data").iterdir()) == [
        "dev_sent_emo.csv", "test_sent_emo.csv", "train_sent_emo.csv"]
    header = (sample_root / "meld" / "data" / "train_sent_emo.csv").read_text().splitlines()[0]
    assert header == "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"
    actors = sorted(p.name for p in (sample_root / "ravdess").iterdir())
    assert actors == [f"Actor_{i:02d}" for i in range(1, 25)]
    wav = next((sample_root / "ravdess" / "Actor_05").glob("*.wav"))
    info = sf.info(wav)
    assert info.samplerate == 48_000 and info.subtype == "PCM_16" and info.channels == 1
    assert wav.name.startswith("03-01-") and wav.name.endswith("-05.wav")
    fer_header = (sample_root / "fer2013" / "fer2013.csv").read_text().split("\n", 1)[0]
    assert fer_header == "emotion,pixels,Usage"


def test_deterministic_for_a_seed(tmp_path):
    a = make_sample_data(tmp_path / "a", seed=5)
    b = make_sample_data(tmp_path / "b", seed=5)
    c = make_sample_data(tmp_path / "c", seed=6)
    assert _digest(a) == _digest(b) != _digest(c)


def test_face_and_voice_signals_depend_on_emotion():
    from emoxformer.data.sample_data import draw_face, synthesize_voice

    # Same seed, same pose and lighting: happy and sad differ only in the mouth and brows.
    happy = draw_face(np.random.default_rng(7), "happy").astype(float)
    sad = draw_face(np.random.default_rng(7), "sad").astype(float)
    diff = np.abs(happy - sad)
    total = diff.sum()
    assert total > 0 and diff[28:44].sum() > 0.3 * total and diff[10:26].sum() > 0.3 * total  # mouth and brow rows
    assert diff[:10].sum() + diff[44:].sum() < 0.01 * total
    rng = np.random.default_rng(0)
    angry = synthesize_voice(rng, 5, actor=1, seconds=1.0)
    calm = synthesize_voice(rng, 2, actor=1, seconds=1.0)
    assert np.sqrt((angry ** 2).mean()) > 2 * np.sqrt((calm ** 2).mean())


def test_cli_make_sample_data_and_errors(tmp_path, capsys):
    assert main(["make-sample-data", str(tmp_path / "d"), "--seed", "1"]) == 0
    assert (tmp_path / "d" / "fer2013" / "fer2013.csv").is_file()
    assert main(["data", "summary", str(tmp_path / "missing")]) == 2
    out = capsys.readouterr().out
    assert "meld: MISSING OR BROKEN" in out and "ravdess: MISSING OR BROKEN" in out


def test_cli_error_is_one_line_with_exit_2(tmp_path, capsys):
    import subprocess
    import sys

    root = make_sample_data(tmp_path / "d", seed=2)
    csv = root / "fer2013" / "fer2013.csv"
    lines = csv.read_text().splitlines()
    lines[3] = "3,1 2 3,Training"
    csv.write_text("\n".join(lines) + "\n")
    result = subprocess.run([sys.executable, "-m", "emoxformer.cli", "data", "summary", str(root)], capture_output=True, text=True)
    assert result.returncode == 2  # the other datasets are listed; the broken one is reported, and the exit code says so
    assert f"{csv}, row 4: pixel string has 3 values" in result.stdout
    assert "meld" in result.stdout and "ravdess" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
