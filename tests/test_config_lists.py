"""List-valued config fields: the comma form of an override gets the field's element type."""
from dataclasses import dataclass, field

import pytest

from emoxformer.cli import main
from emoxformer.config import load_config
from emoxformer.config_io import load_dataclass
from emoxformer.errors import ConfigError


def test_comma_list_override_converts_to_the_element_type():
    config = load_config("quickstart", ["data.ravdess_test_actors=21,22", "data.ravdess_val_actors=19",
                                        "data.datasets=meld, fer2013", "model.image_mean=0.5,1"])
    assert config.data.ravdess_test_actors == [21, 22]
    assert config.data.ravdess_val_actors == [19]
    assert config.data.datasets == ["meld", "fer2013"]
    assert config.model.image_mean == [0.5, 1.0] and all(type(v) is float for v in config.model.image_mean)


@dataclass
class _Words:
    words: list[str] = field(default_factory=list)


def test_comma_list_of_strings_keeps_yaml_words_as_strings():
    # An override's value "no,yes,on" reaches the config as that text (YAML reads no commas into a list).
    assert load_dataclass(_Words, {"words": "no,yes,on"}).words == ["no", "yes", "on"]
    with pytest.raises(ConfigError, match=r"data\.datasets\[0\] must be meld, ravdess or fer2013 .*got 'no'"):
        load_config("quickstart", ["data.datasets=no,yes,on"])  # 'no', not False


@pytest.mark.parametrize("override, message", [
    ("data.ravdess_test_actors=21,x", r"data\.ravdess_test_actors\[1\]: 'x' is not a valid int"),
    ("data.ravdess_test_actors=[21, 2.5]", r"data\.ravdess_test_actors\[1\]: 2\.5 is not a valid int"),
    ("data.ravdess_test_actors=true", r"data\.ravdess_test_actors\[0\]: True is not a valid int"),
    ("model.image_mean=0.5,grey", r"model\.image_mean\[1\]: 'grey' is not a valid float"),
])
def test_list_element_that_does_not_convert_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("quickstart", [override])


def test_bad_list_override_stops_the_command_line_in_one_line(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "data.ravdess_test_actors=21,x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.ravdess_test_actors[1]" in err[0]
