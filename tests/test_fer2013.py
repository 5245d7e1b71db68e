import numpy as np
import pytest

from emoxformer.data.fer2013 import decode_pixel_strings, read_fer2013
from emoxformer.errors import DataError
from emoxformer.labels import LABEL_TO_INDEX


def test_vectorised_decode_matches_row_by_row():
    rng = np.random.default_rng(0)
    rows = [" ".join(map(str, rng.integers(0, 256, 2304))) for _ in range(50)]
    rows[3] = "  " + rows[3].replace(" ", "   ", 5) + " "  # irregular spacing is still valid
    images, good, problems = decode_pixel_strings(rows)
    assert good.tolist() == list(range(50)) and not any(problems)
    for i in (0, 3, 49):
        assert (images[i] == np.array(rows[i].split(), dtype=np.uint8)).all()


def test_decode_reports_each_bad_row():
    ok = " ".join(["7"] * 2304)
    rows = [ok, "1 2 3", ok + " x", ok.replace("7", "300", 1), ok]
    images, good, problems = decode_pixel_strings(rows)
    assert good.tolist() == [0, 4]
    assert problems[1] == "pixel string has 3 values, expected 2304"
    assert problems[2] == "pixel string holds non-numeric tokens"
    assert problems[3] == "pixel value above 255"
    assert images.shape == (2, 2304) and (images == 7).all()


def _pixel_row(rng, count, separators=None):
    values = rng.integers(0, 256, count)
    separators = separators or [" "] * (count - 1)
    return values, "".join(f"{v}{sep}" for v, sep in zip(values, separators + [""]))


def test_rows_that_fool_a_space_count_are_named_and_their_neighbours_keep_their_pixels():
    # Each bad row below has exactly 2303 spaces, as a good row does: the short one has a double space, the long one
    # a tab. Side by side in one chunk they also keep the chunk's total right.
    rng = np.random.default_rng(1)
    good = [_pixel_row(rng, 2304) for _ in range(3)]
    short = _pixel_row(rng, 2303, [" "] * 2301 + ["  "])[1]
    long_ = _pixel_row(rng, 2305, [" "] * 2303 + ["\t"])[1]
    assert short.count(" ") == long_.count(" ") == 2303
    rows = [good[0][1], short, long_, good[1][1], good[2][1]]
    images, kept, problems = decode_pixel_strings(rows)
    assert kept.tolist() == [0, 3, 4]
    assert problems[1] == "pixel string has 2303 values, expected 2304"
    assert problems[2] == "pixel string has 2305 values, expected 2304"
    for image, (values, _) in zip(images, good):
        assert (image == values).all()


def test_valid_rows_with_irregular_whitespace_decode_exactly():
    rng = np.random.default_rng(2)
    separators = [" "] * 2303
    separators[10], separators[500], separators[2000] = "  ", "\t", " \t "
    values, text = _pixel_row(rng, 2304, separators)
    rows = [" " + text + "  ", _pixel_row(rng, 2304)[1]]
    images, kept, problems = decode_pixel_strings(rows)
    assert kept.tolist() == [0, 1] and not any(problems)
    assert (images[0] == values).all()


def test_huge_pixel_values_are_not_wrapped_into_range():
    ok = ["7"] * 2304
    rows = []
    for huge in ("4294967303", "18446744073709551623"):  # 2^32 + 7 and 2^64 + 7
        values = list(ok)
        values[5] = huge
        rows.append(" ".join(values))
    images, kept, problems = decode_pixel_strings(rows + [" ".join(ok)])
    assert problems[:2] == ["pixel value above 255"] * 2 and kept.tolist() == [2]


def _python_decode(text, n_values):
    """What a row means, by Python's int: (values or None, problem)."""
    if text.encode("ascii", errors="replace").translate(None, delete=b"0123456789 \t\r\n"):
        return None, "pixel string holds non-numeric tokens"
    numbers = [int(token) for token in text.split()]
    if len(numbers) != n_values:
        return None, f"pixel string has {len(numbers)} values, expected {n_values}"
    return (None, "pixel value above 255") if max(numbers) > 255 else (numbers, "")


def test_decode_agrees_with_pythons_int_on_every_kind_of_row(monkeypatch):
    """Leading zeros ("0255", valid), 3-digit values above 255, long digit runs, stray characters, missing and extra
    values, odd whitespace and empty rows, spread over chunks of 4 rows."""
    import emoxformer.data.fer2013 as fer2013

    monkeypatch.setattr(fer2013, "_ROWS_PER_CHUNK", 4)
    rng = np.random.default_rng(5)
    n_values = 30
    rows = []
    for kind in rng.integers(0, 10, 120):
        tokens = [str(v) for v in rng.integers(0, 256, n_values)]
        at = int(rng.integers(n_values))
        tokens[at] = {1: "0" * int(rng.integers(1, 5)) + tokens[at], 2: str(rng.integers(256, 1000)),
                      3: str(rng.integers(1000, 10**12)), 4: tokens[at] + "x", 5: "\u00e9"}.get(kind, tokens[at])
        tokens = tokens[:-1] if kind == 6 else tokens + ["9"] if kind == 7 else tokens
        separators = rng.choice([" ", "  ", "\t", " \r ", "\n"], len(tokens), p=[0.9, 0.025, 0.025, 0.025, 0.025])
        text = "".join(t + s for t, s in zip(tokens, separators)).rstrip() if kind != 8 else ""
        rows.append((" " + text) if rng.random() < 0.1 else text)
    images, kept, problems = decode_pixel_strings(rows, n_values)
    expected = [_python_decode(row, n_values) for row in rows]
    assert problems == [problem for _, problem in expected]
    assert kept.tolist() == [row for row, (values, _) in enumerate(expected) if values is not None]
    assert np.array_equal(images, np.array([values for values, _ in expected if values is not None], dtype=np.uint8))
    assert {"", "pixel value above 255", "pixel string holds non-numeric tokens"} < set(problems)
    assert any(problem.startswith("pixel string has") for problem in problems)


def test_bad_row_in_a_later_chunk_is_named_in_the_file(tmp_path):
    rng = np.random.default_rng(3)
    rows = [_pixel_row(rng, 2304)[1] for _ in range(1030)]
    rows[1027] = _pixel_row(rng, 2303, [" "] * 2301 + ["  "])[1]  # chunk 2 of 1024 rows
    path = tmp_path / "fer2013.csv"
    path.write_text(HEADER + "".join(f"3,{row},Training\n" for row in rows))
    with pytest.raises(DataError) as info:
        read_fer2013(path)
    assert f"{path}, row 1029: pixel string has 2303 values, expected 2304" in str(info.value)
    splits = read_fer2013(path, skip_bad=True)
    assert len(splits.train) == 1029 and len(splits.skipped) == 1 and "row 1029" in splits.skipped[0]
    last = splits.train[-1]
    assert last.id.endswith("/1029") and (last.pixels.ravel() == np.array(rows[1029].split(), dtype=np.uint8)).all()


def test_csv_usages_map_to_splits(sample_root):
    splits = read_fer2013(sample_root / "fer2013")
    assert {r.usage for r in splits.train} == {"Training"}
    assert {r.usage for r in splits.val} == {"PublicTest"}
    assert {r.usage for r in splits.test} == {"PrivateTest"}
    assert splits.train[0].pixels.shape == (48, 48) and splits.train[0].pixels.dtype == np.uint8


def test_real_image_folders_recover_official_splits(real_samples):
    splits = read_fer2013(real_samples / "fer2013")
    assert len(splits.train) == 28 and len(splits.val) == 14 and len(splits.test) == 14
    assert {r.usage for r in splits.val} == {"PublicTest"} and {r.usage for r in splits.test} == {"PrivateTest"}
    angry = [r for r in splits.train if "/angry/" in r.id]
    assert angry and all(r.label == LABEL_TO_INDEX["anger"] and r.pixels.shape == (48, 48) for r in angry)


def _write_folder(root, names_by_split):
    from PIL import Image

    for split, names in names_by_split.items():
        for cls, name in names:
            path = root / split / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((48, 48), 100, np.uint8)).save(path)


def test_folders_without_usage_names_hold_out_seeded_validation(tmp_path):
    train = [(cls, f"img{i}.png") for cls in ("happy", "sad") for i in range(10)]
    _write_folder(tmp_path, {"train": train, "test": [("happy", "a.png"), ("sad", "b.png")]})
    first = read_fer2013(tmp_path, val_fraction=0.2, seed=1)
    again = read_fer2013(tmp_path, val_fraction=0.2, seed=1)
    assert len(first.val) == 4 and len(first.train) == 16 and len(first.test) == 2
    assert [r.id for r in first.val] == [r.id for r in again.val]
    assert not {r.id for r in first.val} & {r.id for r in first.train}


def test_unknown_class_folder(tmp_path):
    _write_folder(tmp_path, {"train": [("bored", "x.png")], "test": [("happy", "y.png")]})
    with pytest.raises(DataError, match="unknown class folder"):
        read_fer2013(tmp_path)


HEADER = "emotion,pixels,Usage\n"


@pytest.mark.parametrize(
    "row, message",
    [
        ("9,{ok},Training", "row 2: unknown emotion '9'"),
        ("3,1 2 3,Training", "row 2: pixel string has 3 values, expected 2304"),
        ("3,{ok} abc,Training", "row 2: pixel string holds non-numeric tokens"),
        ("3,{ok},Validation", "row 2: unknown Usage 'Validation'"),
    ],
)
def test_bad_csv_rows_name_file_and_row(tmp_path, row, message):
    path = tmp_path / "fer2013.csv"
    path.write_text(HEADER + row.format(ok=" ".join(["1"] * 2304)) + "\n")
    with pytest.raises(DataError) as info:
        read_fer2013(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_column_and_skip_bad(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels\n3,1 2\n")
    with pytest.raises(DataError, match="missing column"):
        read_fer2013(path)
    ok = " ".join(["1"] * 2304)
    path.write_text(HEADER + f"3,{ok},Training\n3,1 2,Training\n4,{ok},PrivateTest\n")
    splits = read_fer2013(path, skip_bad=True)
    assert len(splits.train) == 1 and len(splits.test) == 1 and len(splits.skipped) == 1
    assert "row 3" in splits.skipped[0]


def test_no_dataset_found(tmp_path):
    with pytest.raises(DataError, match="no fer2013.csv"):
        read_fer2013(tmp_path)
