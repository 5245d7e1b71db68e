"""Any corpus through a manifest (data/manifest.py, `data.extra`, `evaluate --manifest`, `data summary --manifest`)."""
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from emoxformer.cli import main
from emoxformer.config import load_config
from emoxformer.data import registry
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.data.manifest import read_manifest
from emoxformer.data.registry import register_manifest_dataset
from emoxformer.data.summary import summarize_manifest
from emoxformer.data.records import AudioRecord, ImageRecord, TextRecord
from emoxformer.data.sample_data import draw_face, sample_utterance, synthesize_voice
from emoxformer.data.sources import load_dataset
from emoxformer.errors import ConfigError, DataError
from emoxformer.labels import DATASET_NAMES, EMOTIONS, LABEL_TO_INDEX
from emoxformer.model.preprocessing import Preprocessor
from test_registry import TINY

# RAVDESS emotion codes of the sample voices, per emotion.
VOICE = {"neutral": 1, "happy": 3, "sad": 4, "anger": 5, "fear": 6, "disgust": 7, "surprise": 8}


@pytest.fixture(autouse=True)
def forget_manifest_datasets():
    """Each test registers its own corpora; none outlives it."""
    yield
    for name in registry.dataset_names():
        if name not in DATASET_NAMES:
            registry.unregister_dataset(name)


@dataclass
class Entry:
    """A `data.extra` item as the reader sees it."""

    name: str
    modality: str
    manifest: str | dict
    root: str | None = None
    label_map: dict = field(default_factory=dict)
    drop_unmapped: bool = False
    val_fraction: float = 0.1
    image_colour: str = "colour"


def read(entry: Entry, skip_bad: bool = False, **options):
    return read_manifest(entry, SimpleNamespace(skip_bad=skip_bad, split_seed=42), **options)


def write_jsonl(path: Path, rows: list[dict], header: dict | None = None) -> Path:
    lines = ([json.dumps({"label_map": header})] if header is not None else []) + [json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_clips(folder: Path, per_class: int, seed: int = 0, labels=EMOTIONS) -> list[tuple[str, str]]:
    """`per_class` one-second 16 kHz WAVs of the sample voice per emotion: (path relative to `folder`, emotion)."""
    rng = np.random.default_rng(seed)
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    clips = []
    for emotion in labels:
        for k in range(per_class):
            name = f"wav/{emotion}_{seed}_{k}.wav"
            sf.write(folder / name, synthesize_voice(rng, VOICE[emotion], 1 + k % 24, 1.0, rate=16_000), 16_000)
            clips.append((name, emotion))
    return clips


def audio_corpus(folder: Path, per_split=(3, 1, 1)) -> Path:
    """An audio manifest with a split column: per_split clips per emotion in train, val (as `dev`) and test."""
    rows = []
    for split, count in zip(("train", "dev", "test"), per_split):
        rows += [{"path": path, "label": label, "split": split} for path, label in write_clips(folder, count, seed=len(rows))]
    return write_jsonl(folder / "corpus.jsonl", rows)


# ============================================================================= the reader
# ----------------------------------------------------------------------------- each modality
def test_text_csv_with_a_label_map_header_and_dialogue_context(tmp_path):
    rng = np.random.default_rng(0)
    lines = ['# label_map: {"joy": "happy", "Angry": "anger"}', "text,label,split,speaker,dialogue,turn"]
    for split in ("train", "validation", "test"):
        for i, label in enumerate(["joy", "Angry", "sad", "neutral"]):
            emotion = {"joy": "happy", "Angry": "anger"}.get(label, label)
            lines.append(f'"{sample_utterance(rng, emotion)}",{label},{split},S{i % 2},d{split},{4 - i}')
    (tmp_path / "talk.csv").write_text("\n".join(lines) + "\n")
    records = read(Entry("talk", "text", str(tmp_path / "talk.csv")))
    assert [len(records[s]) for s in ("train", "val", "test")] == [4, 4, 4]
    first = records.train[0]
    assert isinstance(first, TextRecord) and first.label == LABEL_TO_INDEX["happy"] and first.speaker == "S0"
    assert [r.label for r in records.val] == [LABEL_TO_INDEX[e] for e in ("happy", "anger", "sad", "neutral")]
    # `turn` orders the dialogue: the row with turn 3 follows the row with turn 2.
    texts = registry.modality("text").setup(records.train, SimpleNamespace(text_context=1),
                                            Preprocessor(load_config("quickstart").model), False)
    assert texts[records.train[1].id].startswith("S0: ") and texts[records.train[1].id].endswith(records.train[1].text)
    assert records.train[2].text in texts[records.train[1].id]


def test_image_folder_pngs_are_decoded_at_read_time(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["path,label,split"]
    for split, count in (("train", 2), ("val", 1), ("test", 1)):
        for emotion in EMOTIONS:
            for k in range(count):
                name = f"faces/{split}/{emotion}_{k}.png"
                (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(draw_face(rng, emotion)).save(tmp_path / name)
                rows.append(f"{name},{emotion},{split}")
    colour = tmp_path / "faces" / "colour.png"
    Image.fromarray(np.zeros((60, 50, 3), np.uint8)).save(colour)
    rows.append(f"{colour},happy,test")  # an absolute path, a colour image of another size
    (tmp_path / "faces.csv").write_text("\n".join(rows) + "\n")
    records = read(Entry("faces", "vision", str(tmp_path / "faces.csv")))
    assert [len(records[s]) for s in ("train", "val", "test")] == [14, 7, 8]
    assert isinstance(records.test[0], ImageRecord) and records.test[0].pixels.shape == (48, 48)
    assert records.test[-1].pixels.shape == (60, 50, 3) and records.test[-1].usage == "test"
    # Grey faces are declared, as FER2013's are, so a model trained on them sees photos grey too.
    assert register_manifest_dataset(Entry("faces", "vision", "faces.csv")).image_colour == "colour"
    assert register_manifest_dataset(Entry("faces", "vision", "faces.csv", image_colour="grey")).image_colour == "grey"


# ----------------------------------------------------------------------------- EmoBox
def test_emobox_manifests_per_split_as_they_are(tmp_path):
    """EmoBox's fold files: key, wav (relative to the data folder EmoBox was given), emo codes or names, no split and
    no validation file, so a stratified share of train validates."""
    data = tmp_path / "emobox-data"
    clips = write_clips(data / "downloads" / "crema", 4)
    codes = {"anger": "ang", "happy": "Happy", "sad": "sad", "neutral": "neu", "fear": "Fearful", "disgust": "dis",
             "surprise": "Surprised"}

    def rows(part):
        return [{"key": f"crema-{Path(path).stem}", "dataset": "crema", "wav": f"downloads/crema/{path}", "type": "raw",
                 "sample_rate": 16000, "length": 1.0, "task": "category", "emo": codes[emotion], "channel": 1}
                for path, emotion in part]
    folds = tmp_path / "fold_1"
    folds.mkdir()
    train = write_jsonl(folds / "crema_train_fold_1.jsonl", rows([c for i, c in enumerate(clips) if i % 4]))
    test = write_jsonl(folds / "crema_test_fold_1.jsonl", rows([c for i, c in enumerate(clips) if not i % 4]))
    records = read(Entry("crema", "audio", {"train": str(train), "test": str(test)}, root=str(data), val_fraction=0.34))
    assert [len(records[s]) for s in ("train", "val", "test")] == [14, 7, 7]  # one of each class's three validates
    assert sorted(r.label for r in records.val) == list(range(7))
    assert records.test[0].id == "crema/crema-anger_0_0" and records.test[0].label == LABEL_TO_INDEX["anger"]


def test_emobox_calm_needs_a_mapping(tmp_path):
    write_clips(tmp_path, 1, labels=["neutral"])
    rows = [{"key": "a", "wav": "wav/neutral_0_0.wav", "emo": "Calm", "length": 1.0, "channel": 1},
            {"key": "b", "wav": "wav/neutral_0_0.wav", "emo": "Calm", "length": 1.0, "channel": 1}]
    manifest = write_jsonl(tmp_path / "calm.jsonl", rows)
    with pytest.raises(DataError, match=r"not mapped: 'Calm' \(2\)"):
        read(Entry("calm", "audio", {"test": str(manifest)}))
    records = read(Entry("calm", "audio", {"test": str(manifest)}, label_map={"calm": "neutral"}))
    assert [r.label for r in records.test] == [LABEL_TO_INDEX["neutral"]] * 2


# ----------------------------------------------------------------------------- labels
def test_unmapped_labels_are_refused_with_names_and_counts_or_dropped_and_counted(tmp_path):
    clips = write_clips(tmp_path, 1, labels=["happy", "sad"])
    rows = [{"path": clips[0][0], "label": "happy", "split": "train"},
            {"path": clips[1][0], "label": "sad", "split": "test"}]
    rows += [{"path": clips[0][0], "label": "boredom", "split": "train", "id": f"b{i}"} for i in range(3)]
    rows += [{"path": clips[1][0], "label": "happiness", "split": "test", "id": "h"}]
    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(DataError, match=r"'boredom' \(3\), 'happiness' \(1\)"):
        read(Entry("mine", "audio", str(manifest)))  # synonyms are not guessed outside EmoBox's emo column
    entry = Entry("mine", "audio", str(manifest), drop_unmapped=True, label_map={"Happiness": "happy"})
    summary = summarize_manifest(entry, SimpleNamespace(skip_bad=False, split_seed=42))["mine"]
    assert summary["skipped"]["total"] == 3 and "'boredom' is not mapped" in summary["skipped"]["examples"][0]
    assert summary["test"]["per_class"]["happy"] == 1 and summary["train"]["total"] + summary["val"]["total"] == 1


def test_config_label_map_wins_over_the_header_and_targets_must_be_emotions(tmp_path):
    clips = write_clips(tmp_path, 1, labels=["happy"])
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"path": clips[0][0], "label": "joy", "split": "test"}],
                           header={"joy": "surprise"})
    assert read(Entry("mine", "audio", str(manifest))).test[0].label == LABEL_TO_INDEX["surprise"]
    assert read(Entry("mine", "audio", str(manifest), label_map={"joy": "happy"})).test[0].label == LABEL_TO_INDEX["happy"]
    with pytest.raises(DataError, match="maps 'joy' to 'glee', which is not one of"):
        read(Entry("mine", "audio", str(manifest), label_map={"joy": "glee"}))


# ----------------------------------------------------------------------------- bad rows
def test_bad_rows_name_the_manifest_and_row(tmp_path):
    clips = write_clips(tmp_path, 1, labels=["happy"])
    good = {"path": clips[0][0], "label": "happy", "split": "train"}
    cases = {
        "missing file": ({"path": "wav/nowhere.wav", "label": "happy", "split": "train"}, r"row 2: audio file not found"),
        "unknown split": ({**good, "split": "holdout"}, r"row 2: unknown split 'holdout'"),
        "missing label": ({"path": clips[0][0], "split": "train"}, r"row 2: empty or missing label"),
    }
    for name, (row, message) in cases.items():
        manifest = write_jsonl(tmp_path / "bad.jsonl", [good, row])
        with pytest.raises(DataError, match=message) as raised:
            read(Entry("bad", "audio", str(manifest)))
        assert str(raised.value).startswith(str(manifest)), name
    (tmp_path / "bad.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataError, match="row 2: not a JSON object"):
        read(Entry("bad", "audio", str(tmp_path / "bad.jsonl")))
    (tmp_path / "t.csv").write_text("text,label,split\nhello there,happy,train\n   ,sad,train\nfine,sad,train,extra\n")
    with pytest.raises(DataError, match=r"t.csv, row 3: empty text"):
        read(Entry("t", "text", str(tmp_path / "t.csv")))
    skipped = read(Entry("t", "text", str(tmp_path / "t.csv")), skip_bad=True)
    assert len(skipped.train) == 1 and [s.split(": ", 1)[1] for s in skipped.skipped] == [
        "empty text", "4 fields, the header has 3 (text, label, split)"]


def test_wrong_columns_and_missing_splits_are_refused_for_the_whole_file(tmp_path):
    (tmp_path / "a.csv").write_text("file,emotion,split\nx.wav,happy,train\n")
    with pytest.raises(DataError, match=r"a.csv: a audio manifest needs the columns path .*found file, emotion, split"):
        read(Entry("a", "audio", str(tmp_path / "a.csv")))
    (tmp_path / "b.csv").write_text("text,label\nhi,happy\n")
    with pytest.raises(DataError, match=r"b.csv: no split column"):
        read(Entry("b", "text", str(tmp_path / "b.csv")))
    with pytest.raises(DataError, match=r"nowhere.jsonl: manifest not found"):
        read(Entry("c", "text", str(tmp_path / "nowhere.jsonl")))


def test_jsonl_rows_holding_unicode_line_separators_are_read(tmp_path):
    """JSONL lines end at "\n" (or "\r\n") only: U+2028, U+2029, U+0085 and \x0b inside a row's text are text."""
    texts = ["one\u2028two", "three\u2029four", "five\u0085six", "seven\x0beight"]
    rows = [json.dumps({"text": text, "label": "happy", "split": "train"}, ensure_ascii=False).replace("\\u000b", "\x0b")
            for text in texts]  # written raw, as some writers do
    (tmp_path / "t.jsonl").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    records = read(Entry("t", "text", str(tmp_path / "t.jsonl"), val_fraction=0))
    assert [r.text for r in records.train] == ["one two", "three four", "five\u2026six", "seven eight"]  # U+0085: MELD's cp1252 repair
    assert records.train[3].id == "t/t/4"  # rows are numbered by line
    (tmp_path / "u.jsonl").write_text(rows[0] + "\n{not json\n")
    with pytest.raises(DataError, match=r"u.jsonl, row 2: not a JSON object"):
        read(Entry("u", "text", str(tmp_path / "u.jsonl")))


def test_lone_surrogates_in_a_manifest_become_replacement_characters(tmp_path):
    # JSON's "\ud800" escapes decode to lone surrogates, which no encoding writes (tokenizing them failed).
    (tmp_path / "s.jsonl").write_text('{"text": "bad \\ud800 text", "label": "happy", "split": "test", '
                                      '"speaker": "Jo\\udc80", "id": "x\\udfff"}\n')
    record = read(Entry("s", "text", str(tmp_path / "s.jsonl"))).test[0]
    assert (record.text, record.speaker, record.id) == ("bad \ufffd text", "Jo\ufffd", "s/x\ufffd")
    texts = registry.modality("text").setup([record], SimpleNamespace(text_context=1),
                                            Preprocessor(load_config("quickstart").model), False)
    assert Preprocessor(load_config("quickstart").model).tokenize(texts[record.id], keep_end=True)


def test_default_ids_of_per_split_files_do_not_collide(tmp_path):
    """train/m.jsonl and test/m.jsonl of one layout name the same relative clips and have the same stem."""
    for split in ("train", "test"):
        clips = write_clips(tmp_path / split, 1, seed=0 if split == "train" else 1)
        write_jsonl(tmp_path / split / "m.jsonl", [{"path": p, "label": e} for p, e in clips])
        (tmp_path / split / "t.csv").write_text("text,label\nhello there,happy\nso sad,sad\n")
    clips = read(Entry("c", "audio", {"train": str(tmp_path / "train" / "m.jsonl"),
                                      "test": str(tmp_path / "test" / "m.jsonl")}, val_fraction=0))
    assert [len(clips.train), len(clips.test)] == [7, 7]
    assert clips.train[0].id != clips.test[0].id and clips.train[0].path != clips.test[0].path
    texts = read(Entry("t", "text", {"train": str(tmp_path / "train" / "t.csv"), "test": str(tmp_path / "test" / "t.csv")},
                       val_fraction=0))
    assert [r.id for r in texts.train + texts.test] == ["t/train/t/2", "t/train/t/3", "t/test/t/2", "t/test/t/3"]
    single = write_jsonl(tmp_path / "one.jsonl", [{"path": "train/wav/happy_0_0.wav", "label": "happy", "split": "test"}])
    assert read(Entry("o", "audio", str(single))).test[0].id == "o/train/wav/happy_0_0.wav"  # one file: as before


def _speaker_corpus(tmp_path: Path, rows_per_speaker: dict[str, int]) -> Path:
    lines = ["text,label,split,speaker"]
    for speaker, count in rows_per_speaker.items():
        lines += [f"words {speaker} {i},{EMOTIONS[i % 7]},train,{speaker}" for i in range(count)]
    lines.append("a test row,happy,test,T")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "s.csv"


def test_the_speaker_hold_out_never_takes_more_than_val_fraction_and_says_what_it_took(tmp_path, capsys):
    # Two speakers of 50 rows: a whole speaker would be half the training rows; 10 % of the rows validate instead.
    two = read(Entry("two", "text", str(_speaker_corpus(tmp_path, {"A": 50, "B": 50}))))
    assert 8 <= len(two.val) <= 10 and len(two.train) + len(two.val) == 100  # per label, rounded
    assert "stratified random share" in two.notes[0] and "speakers are shared" in two.notes[0]
    assert f"note: two: no validation rows: held out {len(two.val)} of 100" in capsys.readouterr().err
    # Twenty speakers of 5 rows: whole speakers, exactly the fraction.
    many = read(Entry("many", "text", str(_speaker_corpus(tmp_path, {f"S{i:02d}": 5 for i in range(20)}))))
    assert len(many.val) == 10 and not {r.speaker for r in many.val} & {r.speaker for r in many.train}
    assert "as 2 of 20 speakers" in many.notes[0]
    # Uneven speakers: never more than the fraction of rows.
    for seed in range(5):
        uneven = read_manifest(Entry("u", "text", str(_speaker_corpus(tmp_path, {"A": 40, "B": 30, "C": 6, "D": 4,
                                                                                 "E": 20}))),
                               SimpleNamespace(skip_bad=False, split_seed=seed))
        assert 5 <= len(uneven.val) <= 10, seed
    summary = summarize_manifest(Entry("many", "text", str(_speaker_corpus(tmp_path, {f"S{i}": 5 for i in range(20)}))),
                                 SimpleNamespace(skip_bad=False, split_seed=42))["many"]
    assert summary["notes"][0].startswith("no validation rows: held out 10 of 100 training rows (10.0%")
    assert "as 2 of 20 speakers" in summary["notes"][0]


def test_numeric_labels_and_label_map_keys(tmp_path):
    clips = write_clips(tmp_path, 1, labels=["happy", "neutral"])
    manifest = write_jsonl(tmp_path / "n.jsonl", [{"path": clips[0][0], "label": 3, "split": "test"},
                                                  {"path": clips[1][0], "label": "1", "split": "test"}])
    config = load_config("quickstart", [f"data.extra=[{{name: num, modality: audio, manifest: '{manifest}', "
                                        "label_map: {1: neutral, 3: happy}}]", "data.datasets=[num]"])
    assert config.data.extra[0].label_map == {"1": "neutral", "3": "happy"}
    assert [r.label for r in load_dataset(config.data, "num").test] == [LABEL_TO_INDEX["happy"], LABEL_TO_INDEX["neutral"]]


# ============================================================================= config and command line
def test_audio_jsonl_clips_are_audio_records_decoded_by_the_audio_store(tmp_path):
    manifest = audio_corpus(tmp_path / "cremad")
    config = load_config("quickstart", [f"data.extra=[{{name: cremad, modality: audio, manifest: '{manifest}'}}]",
                                        "data.datasets=[cremad]"])
    assert config.data.root is None and registry.dataset_modality("cremad") == "audio"
    assert len(load_dataset(config.data, "cremad").train) == 21  # found without a data root
    dm = EmoDataModule(config.data, Preprocessor(config.model), batch_size=4, progress=False)
    dm.setup()
    assert dm.names == ["cremad"] and [len(dm.splits["cremad"][s]) for s in ("train", "val", "test")] == [21, 7, 7]
    record = dm.records["cremad"].test[0]
    assert isinstance(record, AudioRecord) and record.path.is_file() and record.actor == 0  # no RAVDESS fields
    batch = dm.collate([dm.splits["cremad"]["test"][i] for i in range(3)])
    assert batch["audio"]["waveform"].shape[0] == 3 and batch["audio"]["lengths"].tolist() == [16_000] * 3


@pytest.mark.parametrize("entry, message", [
    ({"modality": "audio", "manifest": "x.jsonl"}, r"data.extra\[0\].name must be lower-case"),
    ({"name": "CREMA-D", "modality": "audio", "manifest": "x.jsonl"}, r"data.extra\[0\].name must be lower-case"),
    ({"name": "meld", "modality": "text", "manifest": "x.csv"}, r"'meld' is taken"),
    ({"name": "root", "modality": "text", "manifest": "x.csv"}, r"'root' is taken"),
    ({"name": "x", "modality": "smell", "manifest": "x.csv"}, r"data.extra\[0\].modality must be text, audio, vision or multi"),
    ({"name": "x", "modality": "audio"}, r"data.extra\[0\].manifest is required"),
    ({"name": "x", "modality": "audio", "manifest": {"train": "a", "eval": "b"}}, r"keys must be different splits"),
    ({"name": "x", "modality": "audio", "manifest": {"val": "a", "dev": "b"}}, r"keys must be different splits"),
])
def test_bad_extra_entries_are_refused_at_config_load(entry, message):
    with pytest.raises(ConfigError, match=message):
        load_config("quickstart", [f"data.extra=[{json.dumps(entry)}]"])


def test_a_corpus_named_twice_or_not_registered_is_refused():
    with pytest.raises(ConfigError, match="named more than once"):
        load_config("quickstart", ['data.extra=[{name: a, manifest: a.jsonl}, {name: a, manifest: b.jsonl}]'])
    with pytest.raises(ConfigError, match=r"data.datasets.*'cremad'"):
        load_config("quickstart", ["data.datasets=[meld,cremad]"])


def test_data_summary_of_a_manifest(tmp_path, capsys):
    clips = write_clips(tmp_path, 1, labels=["happy", "sad"])
    manifest = write_jsonl(tmp_path / "Test Set.jsonl", [{"path": p, "label": e} for p, e in clips]
                           + [{"path": clips[0][0], "label": "calm", "id": "c"}])  # no split: an evaluation set
    assert main(["data", "summary", "--manifest", str(manifest), "--drop-unmapped", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["test_set"]
    assert summary["test"]["total"] == 2 and summary["train"]["total"] == 0 and summary["skipped"]["total"] == 1
    assert main(["data", "summary", "--manifest", str(manifest), "--drop-unmapped"]) == 0
    assert "skipped 1 rows/files (bad, or unmapped labels dropped)" in capsys.readouterr().out
    assert main(["data", "summary", "--manifest", str(manifest)]) == 2
    captured = capsys.readouterr()
    assert "'calm' (1)" in captured.out and "Traceback" not in captured.err
    assert main(["data", "summary", "--manifest", str(manifest), "--label-map", "{calm: neutral}"]) == 0
    assert "neut" in capsys.readouterr().out


def test_a_manifest_path_holding_an_equals_sign_is_a_file_not_a_split(tmp_path, capsys):
    from emoxformer.data.manifest import parse_manifest_argument

    folder = tmp_path / "lr=3e-4"
    clips = write_clips(folder, 1, labels=["happy", "sad"])
    manifest = write_jsonl(folder / "test=set.jsonl", [{"path": p, "label": e} for p, e in clips])
    assert parse_manifest_argument([str(manifest)]) == str(manifest)
    assert parse_manifest_argument([f"train={manifest}", f"dev={manifest}"]) == {"train": str(manifest), "dev": str(manifest)}
    assert parse_manifest_argument(["test=b.jsonl"]) == {"test": "b.jsonl"}  # no such file: a split
    assert parse_manifest_argument(["runs/a=b.jsonl"]) == "runs/a=b.jsonl"  # "runs/a" is no split
    with pytest.raises(ConfigError, match="--manifest takes one FILE or SPLIT=FILE pairs"):
        parse_manifest_argument(["a.jsonl", "b.jsonl"])
    with pytest.raises(ConfigError, match="--manifest takes one FILE or SPLIT=FILE pairs"):
        parse_manifest_argument(["train=a.jsonl", "fold=b.jsonl"])
    assert main(["data", "summary", "--manifest", str(manifest), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_set"]["test"]["total"] == 2


def test_training_on_a_manifest_corpus_and_evaluating_another(sample_root, tmp_path, capsys):
    """`train --set data.extra=[...]`: the corpus is a dataset of its own (metrics, sampler share); `evaluate
    --manifest` scores every row of a labelled set the model never saw, as a corpus of its own."""
    manifest = audio_corpus(tmp_path / "cremad")
    run = tmp_path / "run"
    assert main(["train", "--config", "quickstart", "--data", str(sample_root), "--out", str(run), "--no-progress",
                 "--set", f"data.extra=[{{name: cremad, modality: audio, manifest: '{manifest}'}}]",
                 "data.datasets=[meld,cremad]", *TINY]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["stage2"]) == {"meld", "cremad"} and metrics["stage2"]["cremad"]["n"] == 7
    assert json.loads((run / "data_summary.json").read_text())["cremad"]["val"]["total"] == 7
    capsys.readouterr()

    other = tmp_path / "other"
    rows = [{"key": f"o{i}", "wav": path, "emo": {"anger": "ang", "happy": "hap"}.get(e, e)}
            for i, (path, e) in enumerate(write_clips(other, 1, seed=9))]
    test = write_jsonl(other / "test.jsonl", rows)
    assert main(["evaluate", "--model", str(run / "best"), "--manifest", str(test), "--accelerator", "cpu",
                 "--output", str(tmp_path / "m.json")]) == 0
    assert "test " in capsys.readouterr().out
    scored = json.loads((tmp_path / "m.json").read_text())
    assert list(scored) == ["test"] and scored["test"]["n"] == 7

    faces = tmp_path / "faces.csv"
    faces.write_text("path,label\nface.png,happy\n")
    assert main(["evaluate", "--model", str(run / "best"), "--manifest", str(faces)]) == 2
    err = capsys.readouterr().err.strip()
    assert "trained on text, audio only and cannot evaluate faces" in err and len(err.splitlines()) == 1
