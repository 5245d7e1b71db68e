"""`emoxformer download`: MELD, RAVDESS and FER2013 from their official sources, laid out as a data root.

Every file is checked against a pinned checksum: sha256 where one could be computed from the pinned
source (MELD), otherwise the algorithm the source itself publishes (Zenodo publishes only md5 for
RAVDESS; torchvision pins the md5 of FER2013's fer2013.csv). Downloads resume from
ROOT/.downloads/<dataset>/<file>.part with HTTP Range requests. A dataset is assembled under
ROOT/.downloads/<dataset>/ and renamed to ROOT/<dataset> only when complete, so an interrupted run
never leaves a dataset folder that looks whole.

Overrides, for mirrors and tests: EMOXFORMER_MIRROR=URL fetches URL/<dataset>/<file name> instead of
the official URLs; EMOXFORMER_SOURCES=FILE.json replaces single entries, e.g.
{"ravdess": {"Audio_Speech_Actors_01-24.zip": {"url": "...", "md5": "...", "size": 123}}}.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from ..version import __version__
from ..errors import ConfigError, DownloadError
from ..labels import DATASET_NAMES
from .meld import MELD_FILES
from .ravdess import actor_folders

CACHE_FOLDER = ".downloads"  # ROOT/.downloads/<dataset>/: .part files and unpacking, outside the dataset folders
ATTEMPTS = 3
RETRY_WAIT_S = 2.0
TIMEOUT_S = 60
CHUNK_BYTES = 1 << 20
USER_AGENT = f"emoxformer/{__version__} (dataset download)"


@dataclass(frozen=True)
class Pin:
    """One file of a dataset: where it is downloaded from and the checksum it must have."""

    name: str
    url: str | None  # None: no public URL (FER2013 comes through Kaggle or from the user)
    algorithm: str | None  # "sha256", or "md5" where the source publishes only md5
    digest: str | None
    size: int | None = None


MELD_COMMIT = "2d2011b409d3ca2d7e94460cd007d434b1d0a102"
MELD_RAW = f"https://raw.githubusercontent.com/declare-lab/MELD/{MELD_COMMIT}/data/MELD/"
# GitHub publishes no checksums: these are the sha256 and sizes of the files at MELD_COMMIT,
# computed from the authors' git repository (git show MELD_COMMIT:data/MELD/<file> | sha256sum).
_MELD_FILES = {
    "train_sent_emo.csv": ("d2fa2d6529cf03cac2989efec05c9b27d8fd2f4c8fc5974c7ae88aa537fa02db", 1_119_290),
    "dev_sent_emo.csv": ("2e89c6f8aa182d6f62f8c6331aece905ac7273ca4999660bfb5213e1d0370c1c", 121_640),
    "test_sent_emo.csv": ("8d37103938f7067600839fe29d5a114a6cd1bcdafb75bec101e06464c5006888", 294_526),
}
RAVDESS_RECORD = "https://zenodo.org/records/1188976"
RAVDESS_ARCHIVE = "Audio_Speech_Actors_01-24.zip"
FER_COMPETITION = "challenges-in-representation-learning-facial-expression-recognition-challenge"
FER_PAGE = f"https://www.kaggle.com/c/{FER_COMPETITION}"

PINS: dict[str, tuple[Pin, ...]] = {
    "meld": tuple(Pin(name, MELD_RAW + name, "sha256", digest, size) for name, (digest, size) in _MELD_FILES.items()),
    # Zenodo's file listing of record 1188976 publishes md5 only; no sha256 is published for this file.
    "ravdess": (Pin(RAVDESS_ARCHIVE, f"{RAVDESS_RECORD}/files/{RAVDESS_ARCHIVE}?download=1", "md5",
                    "bc696df654c87fed845eb13823edef8a", 208_468_073),),
    # Kaggle publishes no checksum for the competition's fer2013.tar.gz; the fer2013.csv inside it is checked
    # against the md5 that torchvision pins for it (torchvision.datasets.FER2013, _RESOURCES["fer"]).
    "fer2013": (Pin("fer2013.tar.gz", None, None, None),
                Pin("fer2013.csv", None, "md5", "f8428a1edbd21e88f42c73edd2a14f95")),
}
SOURCE_PAGES = {
    "meld": (f"https://github.com/declare-lab/MELD/tree/{MELD_COMMIT}/data/MELD", "GPL-3.0"),
    "ravdess": (RAVDESS_RECORD, "CC BY-NC-SA 4.0"),
    "fer2013": (FER_PAGE, "research use under Kaggle's competition rules"),
}


def fer_manual_steps(root: Path) -> str:
    """What a user without Kaggle API access does; FER2013 sits behind a Kaggle login."""
    return (f"accept the rules at {FER_PAGE}/rules, download fer2013.tar.gz from {FER_PAGE}/data and run "
            f"`emoxformer download fer2013 --to {root} --from fer2013.tar.gz`")


Say = Callable[[str], None]


# ----------------------------------------------------------------------------- the sources table and its overrides
def load_pins(environ: dict[str, str] | None = None) -> dict[str, dict[str, Pin]]:
    """PINS as {dataset: {file name: Pin}}, with EMOXFORMER_MIRROR and EMOXFORMER_SOURCES applied."""
    environ = os.environ if environ is None else environ
    pins = {name: {pin.name: pin for pin in entries} for name, entries in PINS.items()}
    mirror = environ.get("EMOXFORMER_MIRROR", "").rstrip("/")
    if mirror:
        for name, entries in pins.items():
            for file, pin in entries.items():
                if pin.url:
                    entries[file] = replace(pin, url=f"{mirror}/{name}/{file}")
    if environ.get("EMOXFORMER_SOURCES"):
        _apply_overrides(pins, Path(environ["EMOXFORMER_SOURCES"]))
    return pins


def _apply_overrides(pins: dict[str, dict[str, Pin]], path: Path) -> None:
    where = f"{path} (EMOXFORMER_SOURCES)"
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: not a readable JSON file ({exc})") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected an object {{dataset: {{file: {{url, sha256|md5, size}}}}}}")
    for name, files in table.items():
        if name not in pins or not isinstance(files, dict):
            raise ConfigError(f"{where}: unknown dataset {name!r}; choose from {', '.join(pins)}")
        for file, fields in files.items():
            if file not in pins[name] or not isinstance(fields, dict):
                raise ConfigError(f"{where}: {name} has no file {file!r}; its files: {', '.join(pins[name])}")
            unknown = set(fields) - {"url", "sha256", "md5", "size"}
            if unknown:
                raise ConfigError(f"{where}: {name}/{file}: unknown keys {sorted(unknown)}; use url, sha256 or md5, size")
            pin = pins[name][file]
            if "url" in fields:
                pin = replace(pin, url=str(fields["url"]))
            for algorithm in ("sha256", "md5"):
                if algorithm in fields:
                    pin = replace(pin, algorithm=algorithm, digest=str(fields[algorithm]).lower())
            if "size" in fields:
                pin = replace(pin, size=None if fields["size"] is None else int(fields["size"]))
            pins[name][file] = pin


# ----------------------------------------------------------------------------- downloading one file
def fetch(dataset: str, pin: Pin, folder: Path, progress: bool = True) -> Path:
    """`folder/pin.name`, downloaded (resuming a .part left by an earlier try) and verified."""
    final = folder / pin.name
    if final.is_file() and not _check(final, pin):
        return final  # verified by an earlier run that stopped before unpacking
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{pin.name}.part"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _get(dataset, pin, part, progress)
            break
        except urllib.error.HTTPError as error:
            raise DownloadError(dataset, f"{pin.url} answered HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            # Only network problems land here: local write errors are raised as DownloadError by _get.
            kept = part.stat().st_size if part.is_file() else 0
            if attempt == ATTEMPTS:
                raise DownloadError(dataset, f"{pin.url}: {_network_problem(error)} ({_bytes(kept)} kept in {part}; "
                                             "run again to resume)") from None
            print(f"{dataset}: {_network_problem(error)}; retrying from {_bytes(kept)} ({attempt}/{ATTEMPTS - 1})",
                  file=sys.stderr)
            time.sleep(RETRY_WAIT_S * attempt)
    problem = _check(part, pin)
    if problem:
        part.unlink()
        raise DownloadError(dataset, f"{problem}; the download was deleted, run again to fetch it anew")
    os.replace(part, final)
    return final


def _get(dataset: str, pin: Pin, part: Path, progress: bool) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(pin.url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            error.close()
            return  # the .part already holds the whole file: the checksum decides
        raise
    with response:
        if offset and not _resumes_at(response, offset):
            offset = 0  # the server ignored the Range request: start again
        total = _total_bytes(response, offset) or pin.size
        out = _open(dataset, part, "ab" if offset else "wb")
        with out, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=f"{dataset} {pin.name}", disable=not progress, leave=False) as bar:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                _write(dataset, out, chunk, part)
                bar.update(len(chunk))
    received = part.stat().st_size
    if total is not None and received < total:
        raise ConnectionError(f"connection closed after {_bytes(received)} of {_bytes(total)}")


def _resumes_at(response, offset: int) -> bool:
    return response.status == 206 and (response.headers.get("Content-Range") or "").startswith(f"bytes {offset}-")


def _total_bytes(response, offset: int) -> int | None:
    if response.status == 206:
        total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _open(dataset: str, path: Path, mode: str):
    try:
        return open(path, mode, buffering=0)  # unbuffered: a full disk fails in _write, not later on close
    except OSError as exc:
        raise DownloadError(dataset, f"cannot write {path}: {exc.strerror or exc}") from None


def _write(dataset: str, out, chunk: bytes, path: Path) -> None:
    view = memoryview(chunk)
    try:
        while view:
            view = view[out.write(view):]
    except OSError as exc:
        raise DownloadError(dataset, f"cannot write {path}: {exc.strerror or exc}") from None


def _check(path: Path, pin: Pin) -> str | None:
    """None when `path` has the pinned size and checksum, else the problem."""
    size = path.stat().st_size
    if pin.size is not None and size != pin.size:
        return f"{pin.name}: {size:,} bytes, expected {pin.size:,}"
    if pin.algorithm:
        actual = file_digest(path, pin.algorithm)
        if actual != pin.digest:
            return f"{pin.name}: {pin.algorithm} {actual} does not match the pinned {pin.digest}"
    return None


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _network_problem(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    return str(reason) or type(error).__name__


def _bytes(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count:,} bytes"


# ----------------------------------------------------------------------------- archives
def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith((".zip", ".tar", ".tar.gz", ".tgz"))


def _unpack(dataset: str, archive: Path, destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(destination)  # zipfile drops absolute paths and ".." from member names
        else:
            with tarfile.open(archive) as bundle:
                _extract_tar(bundle, destination)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise DownloadError(dataset, f"{archive}: not a readable archive ({exc})") from None
    return destination


def _extract_tar(bundle: tarfile.TarFile, destination: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        bundle.extractall(destination, filter="data")
        return
    for member in bundle.getmembers():  # Python < 3.10.12: refuse what the data filter would refuse
        if member.name.startswith("/") or ".." in Path(member.name).parts or member.issym() or member.islnk():
            raise tarfile.TarError(f"unsafe member {member.name!r}")
    bundle.extractall(destination)


# ----------------------------------------------------------------------------- layouts
def missing_parts(name: str, folder: Path) -> list[str]:
    """What ROOT/<name> lacks to be a complete dataset in the documented layout (docs/data.md) ([] when complete)."""
    if name == "meld":
        return [f"data/{file}" for file in MELD_FILES.values() if not (folder / "data" / file).is_file()]
    if name == "ravdess":
        actors = {p.name.lower(): p for p in actor_folders(folder)} if folder.is_dir() else {}  # as the reader finds them
        return [f"Actor_{actor:02d}/*.wav" for actor in range(1, 25)
                if not ((found := actors.get(f"actor_{actor:02d}")) and any(found.glob("*.wav")))]
    if (folder / "fer2013.csv").is_file() or all((folder / split).is_dir() for split in ("train", "test")):
        return []
    return ["fer2013.csv or train/ and test/ image folders"]


# The "cache" step of each dataset: the files it is built from, fetched and verified into ROOT/.downloads/<dataset>
# (FER2013: or the user's --from path). A verified file stays there until the dataset is complete, outside what a
# failed build deletes, so a later run fetches only what is still missing.
def _cache_meld(pins, cache: Path, from_path, progress: bool, say: Say) -> list[Path]:
    return [fetch("meld", pin, cache, progress) for pin in pins["meld"].values()]


def _cache_ravdess(pins, cache: Path, from_path, progress: bool, say: Say) -> list[Path]:
    (pin,) = pins["ravdess"].values()
    return [fetch("ravdess", pin, cache, progress)]


def _cache_fer2013(pins, cache: Path, from_path, progress: bool, say: Say) -> list[Path]:
    source = Path(from_path) if from_path else _fetch_fer(pins, cache, progress, say)
    if not source.exists():
        raise DownloadError("fer2013", f"{source}: not found")
    return [source]


# The "build" step of each dataset: the dataset folder `built` assembled from its cached files (archives are
# unpacked beside it, in built.parent); returns what it holds, for the closing line.
def _build_meld(pins, files: list[Path], built: Path) -> str:
    data = built / "data"
    data.mkdir(parents=True)
    for path in files:
        os.replace(path, data / path.name)
    return f"{len(pins['meld'])} CSV files, {_algorithms(pins['meld'].values())} verified"


def _build_ravdess(pins, files: list[Path], built: Path) -> str:
    (pin,) = pins["ravdess"].values()
    unpacked = _unpack("ravdess", files[0], built.parent / "archive")
    actors = {}
    for folder in sorted(unpacked.rglob("Actor_*")):
        if folder.is_dir() and "__MACOSX" not in folder.parts:
            actors.setdefault(folder.name, folder)
    built.mkdir()
    for name, folder in actors.items():
        os.replace(folder, built / name)
    wavs = sum(1 for _ in built.glob("Actor_*/*.wav"))
    return f"{len(actors)} actors, {wavs:,} wav files; {pin.name} {_algorithms([pin])} verified"


def _build_fer2013(pins, files: list[Path], built: Path) -> str:
    found = _find_fer(files[0], built.parent / "archive")
    cache = built.parents[1]  # ROOT/.downloads/fer2013: built is cache/unpacking/fer2013
    own_copy = cache in found.parents  # what this run downloaded or unpacked is moved; the user's files are copied
    built.mkdir()
    if found.is_file():
        csv_pin = pins["fer2013"]["fer2013.csv"]
        problem = _check(found, csv_pin)
        if problem:
            raise DownloadError("fer2013", f"{found}: {problem} (the published fer2013.csv); "
                                           "to train on this copy anyway, pass it to train with --fer2013 PATH")
        _place(found, built / "fer2013.csv", own_copy)
        return f"fer2013.csv, {csv_pin.algorithm} verified"
    for split in ("train", "test"):
        _place(found / split, built / split, own_copy)
    images = sum(1 for path in built.rglob("*") if path.is_file())
    return f"train/ and test/ image folders, {images:,} files; no published checksum for this variant"


def _fetch_fer(pins, cache: Path, progress: bool, say: Say) -> Path:
    archive = pins["fer2013"]["fer2013.tar.gz"]
    if archive.url:  # a mirror given in EMOXFORMER_SOURCES
        return fetch("fer2013", archive, cache, progress)
    manual = fer_manual_steps(cache.parents[1])  # cache is ROOT/.downloads/fer2013
    if not kaggle_credentials():
        raise DownloadError("fer2013", f"FER2013 sits behind a Kaggle login: {manual} (or put your Kaggle API token in "
                                       "~/.kaggle/kaggle.json, `pip install kaggle` and run again)")
    target = cache / "kaggle"
    target.mkdir(parents=True, exist_ok=True)
    say(f"fer2013: downloading {archive.name} of {FER_PAGE} through the Kaggle API ...")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi  # importing the package already authenticates

        api = KaggleApi()
        api.authenticate()
        api.competition_download_file(FER_COMPETITION, archive.name, path=str(target), quiet=not progress)
    except ImportError:
        raise DownloadError("fer2013", "Kaggle credentials found but the `kaggle` package is not installed: "
                                       f"`pip install kaggle` and run again, or {manual}") from None
    except Exception as exc:  # the kaggle package raises its own, requests' and urllib3's exception types
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DownloadError("fer2013", f"the Kaggle API failed ({first_line}); accept the rules at {FER_PAGE}/rules "
                                       f"with the account of your API token and run again, or {manual}") from None
    if not any(path.is_file() for path in target.iterdir()):
        raise DownloadError("fer2013", f"the Kaggle API wrote nothing to {target}")
    return target


def kaggle_credentials(environ: dict[str, str] | None = None) -> bool:
    """Whether the Kaggle API has credentials: KAGGLE_USERNAME/KAGGLE_KEY or a kaggle.json it reads."""
    environ = os.environ if environ is None else environ
    if environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY"):
        return True
    folders = [Path(environ["KAGGLE_CONFIG_DIR"])] if environ.get("KAGGLE_CONFIG_DIR") else []
    folders += [Path.home() / ".kaggle", Path.home() / ".config" / "kaggle"]
    return any((folder / "kaggle.json").is_file() for folder in folders)


def _find_fer(source: Path, work: Path) -> Path:
    """fer2013.csv, or the folder holding train/ and test/, in `source`: a csv, an archive or a folder.

    Archives inside are unpacked too (Kaggle's competition zip holds fer2013.tar.gz, which holds fer2013.csv).
    """
    if source.is_file() and not _is_archive(source):
        return source
    folders = [_unpack("fer2013", source, work / "0") if source.is_file() else source]
    unpacked: set[Path] = set()
    for _ in range(3):
        for folder in folders:
            found = _fer_layout_in(folder)
            if found:
                return found
        nested = [path for folder in folders for path in sorted(folder.rglob("*"))
                  if path.is_file() and _is_archive(path) and path not in unpacked]
        folders = []
        for archive in nested:
            unpacked.add(archive)
            folders.append(_unpack("fer2013", archive, work / str(len(unpacked))))
    raise DownloadError("fer2013", f"{source} holds neither fer2013.csv nor train/ and test/ image folders")


def _fer_layout_in(folder: Path) -> Path | None:
    paths = sorted(folder.rglob("*"), key=lambda path: (len(path.parts), str(path)))
    for path in paths:
        if path.name == "fer2013.csv" and path.is_file() and "__MACOSX" not in path.parts:
            return path
    for path in [folder, *paths]:
        if path.is_dir() and (path / "train").is_dir() and (path / "test").is_dir():
            return path
    return None


def _place(source: Path, destination: Path, move: bool) -> None:
    if move:
        os.replace(source, destination)
    elif source.is_dir():
        shutil.copytree(source, destination)
    else:
        shutil.copy2(source, destination)


def _algorithms(pins) -> str:
    return "/".join(sorted({pin.algorithm for pin in pins if pin.algorithm}))


CACHE_STEPS = {"meld": _cache_meld, "ravdess": _cache_ravdess, "fer2013": _cache_fer2013}
BUILD_STEPS = {"meld": _build_meld, "ravdess": _build_ravdess, "fer2013": _build_fer2013}


# ----------------------------------------------------------------------------- one dataset, several datasets
def download_dataset(name: str, root: str | Path, pins: dict[str, dict[str, Pin]] | None = None,
                     from_path: str | Path | None = None, progress: bool = True, say: Say = print) -> Path:
    """Fetch, verify and unpack one dataset into ROOT/<name>; does nothing when it is already complete."""
    pins = load_pins() if pins is None else pins
    root = Path(root)
    target = root / name
    if _already_complete(name, target):
        say(f"{name}: already complete in {target}; nothing to do")
        return target
    page, licence = SOURCE_PAGES[name]
    say(f"{name}: from {page} ({licence})")
    cache = root / CACHE_FOLDER / name
    work = cache / "unpacking"  # everything unpacked or assembled; only a complete dataset leaves it
    shutil.rmtree(work, ignore_errors=True)  # left over by a run that was killed
    try:
        work.mkdir(parents=True)
        files = CACHE_STEPS[name](pins, cache, from_path, progress, say)
        detail = BUILD_STEPS[name](pins, files, work / name)
        _move_into_place(name, work / name, target)
    except OSError as exc:  # disk full, permissions; network errors were reported by fetch
        raise DownloadError(name, f"{exc.filename or root}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _drop_cache(root, name)
    say(f"{name}: ready in {target} ({detail})")
    return target


def _already_complete(name: str, target: Path) -> bool:
    """Whether ROOT/<name> holds the whole dataset (False: absent or an empty folder); DownloadError when it holds
    part of it, which a download would mix with."""
    if not target.exists() or _is_empty_dir(target):
        return False
    missing = missing_parts(name, target)
    if missing:
        raise DownloadError(name, f"{target} exists but is incomplete (no {missing[0]}); move it away and run again")
    return True


def _move_into_place(name: str, built: Path, target: Path) -> None:
    """The assembled dataset renamed to ROOT/<name>, once it is complete."""
    missing = missing_parts(name, built)
    if missing:
        raise DownloadError(name, f"the download holds no {missing[0]}")
    if target.is_dir():
        target.rmdir()  # an empty folder the user made
    os.replace(built, target)


def _drop_cache(root: Path, name: str) -> None:
    """The dataset's downloads, no longer needed once it is built, and ROOT/.downloads when nothing else is left."""
    shutil.rmtree(root / CACHE_FOLDER / name, ignore_errors=True)
    if _is_empty_dir(root / CACHE_FOLDER):
        (root / CACHE_FOLDER).rmdir()


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def download_datasets(choice: str, root: str | Path, from_path: str | Path | None = None,
                      progress: bool = True, say: Say = print) -> list[DownloadError]:
    """`choice` is a dataset name or "all"; returns the failures (each one line), after trying every dataset."""
    if choice not in (*DATASET_NAMES, "all"):
        raise ConfigError(f"unknown dataset {choice!r}: choose from {', '.join(DATASET_NAMES)}, all")
    names = list(DATASET_NAMES) if choice == "all" else [choice]
    if from_path and "fer2013" not in names:
        raise ConfigError("--from is for FER2013 (fer2013.csv, the Kaggle zip or tar.gz, or train/ test/ folders)")
    pins = load_pins()
    failures = []
    for name in names:
        try:
            download_dataset(name, root, pins, from_path if name == "fer2013" else None, progress, say)
        except DownloadError as error:
            failures.append(error)
    return failures
