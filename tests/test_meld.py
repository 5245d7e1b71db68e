import pandas as pd
import pytest

from emoxformer.data.meld import read_meld, read_meld_csv
from emoxformer.data.text_cleaning import clean_utterance
from emoxformer.errors import DataError
from emoxformer.labels import LABEL_TO_INDEX


def _row_count(path):
    return len(pd.read_csv(path, dtype=str, keep_default_na=False))


def test_real_excerpts_load_without_loss(real_samples):
    splits = read_meld(real_samples / "meld")
    data = real_samples / "meld" / "data"
    assert len(splits.train) == _row_count(data / "train_sent_emo.csv")
    assert len(splits.val) == _row_count(data / "dev_sent_emo.csv")
    assert len(splits.test) == _row_count(data / "test_sent_emo.csv")
    assert not splits.skipped


def test_real_quirks_are_repaired(real_samples):
    test = read_meld(real_samples / "meld" / "data").test
    by_id = {r.id: r for r in test}
    first = by_id["meld/test/dia0_utt1"]
    assert first.text.startswith("Oh. That’s so Monica can keep track. That way if one on them is missing")
    assert "‘Where’s number 27?!’" in first.text
    assert first.speaker == "Rachel" and first.label == LABEL_TO_INDEX["anger"]
    dashes = by_id["meld/test/dia1_utt5"]
    assert dashes.text == "Let's— I was just—yeah, right."  # doubled space collapsed, dashes kept
    assert all("  " not in r.text and r.text == r.text.strip() for r in test)


def test_dialogue_fields_and_ids_are_kept(real_samples):
    train = read_meld(real_samples / "meld").train
    first = train[0]
    assert (first.dialogue_id, first.utterance_id, first.speaker) == (0, 0, "Chandler")
    assert first.text.startswith("also I was the point person")
    assert len({r.id for r in train}) == len(train)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("You must\x92ve had your hands full.", "You must’ve had your hands full."),
        ("It\u00e2\u20ac\u2122s fine", "It’s fine"),
        ("  Two\nlines,   here ", "Two lines, here"),
        ("\x93Quoted\x94", "“Quoted”"),
    ],
)
def test_clean_utterance_fixes_encodings(raw, expected):
    assert clean_utterance(raw) == expected


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"


def test_clean_utterance_replaces_lone_surrogates():
    assert clean_utterance("caf\udce9  ok \ud83d") == "caf\ufffd ok \ufffd"
    assert clean_utterance("\ud83d\ude00 fine").encode() == "\ufffd\ufffd fine".encode()  # never a pair by accident
    assert clean_utterance("caf\u00c3\u00a9 \udc80").encode()  # with the mojibake repair too


def test_quoted_commas_newlines_and_cp1252_file(tmp_path):
    body = b'1,"Well, I\x92m\nhere",Ross,joy,positive,3,0,1,1,"00:00:01,000","00:00:02,000"\n'
    path = tmp_path / "x.csv"
    path.write_bytes(HEADER.encode() + body)  # a cp1252 byte, invalid as UTF-8
    (record,) = read_meld_csv(path, "train")
    assert record.text == "Well, I’m here" and record.label == LABEL_TO_INDEX["happy"]


@pytest.mark.parametrize(
    "body, message",
    [
        ('1,hello,Ross,bored,neutral,0,0,1,1,a,b\n', "row 2: unknown emotion 'bored'"),
        ('1,hello,Ross,joy,positive,x,0,1,1,a,b\n', "row 2: Dialogue_ID/Utterance_ID must be integers"),
        ('1,hi,Ross,joy,positive,0,0,1,1,a,b\n2,yo,Ross,joy,positive,0,0,1,1,a,b\n', "row 3: duplicate utterance id"),
        ('1,"   ",Ross,joy,positive,0,0,1,1,a,b\n', "row 2: empty utterance"),
    ],
)
def test_bad_rows_name_file_and_row(tmp_path, body, message):
    path = _write(tmp_path / "bad.csv", HEADER + body)
    with pytest.raises(DataError) as info:
        read_meld_csv(path, "train")
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_column_and_missing_file(tmp_path):
    path = _write(tmp_path / "cols.csv", "Utterance,Speaker\nhi,Ross\n")
    with pytest.raises(DataError, match="missing column"):
        read_meld_csv(path, "train")
    with pytest.raises(DataError, match="file not found"):
        read_meld(tmp_path / "nowhere")


def test_skip_bad_counts_and_keeps_good_rows(tmp_path):
    data = tmp_path / "meld" / "data"
    data.mkdir(parents=True)
    good = '1,hello,Ross,joy,positive,0,0,1,1,a,b\n'
    bad = '2,hello,Ross,bored,neutral,0,1,1,1,a,b\n'
    for name in ("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv"):
        _write(data / name, HEADER + good + bad)
    splits = read_meld(tmp_path / "meld", skip_bad=True)
    assert len(splits.train) == len(splits.val) == len(splits.test) == 1
    assert len(splits.skipped) == 3 and all("unknown emotion" in s for s in splits.skipped)


def test_word_dropout_with_dialogue_context_drops_words_of_utterances_only():
    """data.text_context > 0: the separators, the `>>` mark and the speakers stay, as inference always writes them."""
    from types import SimpleNamespace

    import numpy as np

    from emoxformer.data import registry
    from emoxformer.data.context import TARGET_MARK
    from emoxformer.data.records import TextRecord

    turns = [("Joey", "how you doin today my friend"), ("", "who said that just now"), ("Ross", "me and only me here")]
    records = [TextRecord(f"meld/train/dia0_utt{i}", 0, text, speaker, 0, i, "train") for i, (speaker, text) in enumerate(turns)]
    text = registry.modality("text")
    preprocessor = SimpleNamespace(context_separator="[SEP]", tokenize=lambda text, keep_end=False: text)
    state = text.setup(records, SimpleNamespace(text_context=2), preprocessor, False)
    assert text.prepare(records[2], state, preprocessor, None, None) == \
        "Joey: how you doin today my friend [SEP] who said that just now [SEP] >> Ross: me and only me here"
    rng = np.random.default_rng(0)
    augment = SimpleNamespace(word_dropout=0.5)
    shortened = 0
    for _ in range(50):
        parts = text.prepare(records[2], state, preprocessor, augment, rng).split(" [SEP] ")
        assert len(parts) == 3 and parts[0].startswith("Joey: ") and parts[2].startswith(f"{TARGET_MARK} Ross: ")
        for part, (speaker, utterance) in zip(parts, turns):
            words = part.removeprefix(f"{TARGET_MARK} ").removeprefix(f"{speaker}: " if speaker else "").split()
            assert words and all(word in utterance.split() for word in words)  # at least one word of each utterance
            shortened += len(words) < len(utterance.split())
    assert shortened > 50  # words were dropped
    single = text.setup(records, SimpleNamespace(text_context=0), preprocessor, False)
    assert single is None and text.prepare(records[0], single, preprocessor, augment, rng) != turns[0][1]
