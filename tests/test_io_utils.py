from fnmatch import fnmatch

import pytest

from emoxformer.io_utils import atomic_write


def test_atomic_write_takes_text_or_a_writer_and_leaves_no_temporary_file(tmp_path):
    atomic_write(tmp_path / "a.json", '{"x": 1}')
    atomic_write(tmp_path / "b.bin", lambda tmp: tmp.write_bytes(b"\x00\x01"))
    atomic_write(tmp_path / "a.json", '{"x": 2}')  # replaces
    assert (tmp_path / "a.json").read_text() == '{"x": 2}' and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_an_interrupted_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("previous")

    def interrupted(tmp):
        tmp.write_text("half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_text() == "previous"
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(fnmatch(name, ".*.tmp") for name in leftovers)  # hidden; `train --overwrite` removes them
