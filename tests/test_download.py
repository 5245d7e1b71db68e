"""`emoxformer download` against a local HTTP server (127.0.0.1, Range support written here), never the internet."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tarfile
import threading
import types
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emoxformer.cli import main
from emoxformer.config import DataConfig
from emoxformer.data import download
from emoxformer.data.sample_data import draw_face
from emoxformer.data.sources import load_dataset

RAVDESS_ZIP = "Audio_Speech_Actors_01-24.zip"
MELD_CSVS = ("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv")


# ----------------------------------------------------------------------------- a mirror served on 127.0.0.1
class _RangeHandler(BaseHTTPRequestHandler):
    """Serves server.directory; honours `Range: bytes=N-` (unless server.honour_range is False); cuts a
    response short when server.cuts says so."""

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        path = server.directory / self.path.lstrip("/").split("?")[0]
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        requested = self.headers.get("Range") if server.honour_range else None
        if requested:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cuts = server.cuts.get(path.name)
        if cuts:  # a dropped connection: part of the body, then the socket closes
            self.wfile.write(body[:cuts.pop(0)])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(mirror):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    httpd.directory, httpd.requests, httpd.cuts, httpd.honour_range = mirror, [], {}, True
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def mirror(sample_root, tmp_path_factory) -> Path:
    """The sample data packed as the sources ship it: MELD's CSVs, RAVDESS's speech zip, FER2013's tar.gz."""
    mirror = tmp_path_factory.mktemp("mirror")
    (mirror / "meld").mkdir()
    for name in MELD_CSVS:
        shutil.copy(sample_root / "meld" / "data" / name, mirror / "meld" / name)
    (mirror / "ravdess").mkdir()
    _zip_actors(sample_root, mirror / "ravdess" / RAVDESS_ZIP, range(1, 25))
    (mirror / "fer2013").mkdir()
    with tarfile.open(mirror / "fer2013" / "fer2013.tar.gz", "w:gz") as bundle:
        bundle.add(sample_root / "fer2013" / "fer2013.csv", arcname="fer2013/fer2013.csv")
    return mirror


def _zip_actors(sample_root: Path, archive: Path, actors) -> None:
    """Actor_XX/ folders at the top of the zip, as in the real archive (two clips an actor keep it small)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        for actor in actors:
            for wav in sorted((sample_root / "ravdess" / f"Actor_{actor:02d}").glob("*.wav"))[:2]:
                bundle.write(wav, f"Actor_{actor:02d}/{wav.name}")


def _digest(path: Path, algorithm: str) -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def _pins_of(mirror: Path) -> dict:
    """EMOXFORMER_SOURCES entries pinning the mirror's files (same algorithms as the real pins)."""
    pins = {"meld": {name: {"sha256": _digest(mirror / "meld" / name, "sha256"), "size": (mirror / "meld" / name).stat().st_size}
                     for name in MELD_CSVS},
            "ravdess": {RAVDESS_ZIP: {"md5": _digest(mirror / "ravdess" / RAVDESS_ZIP, "md5"),
                                      "size": (mirror / "ravdess" / RAVDESS_ZIP).stat().st_size}}}
    with tarfile.open(mirror / "fer2013" / "fer2013.tar.gz") as bundle:
        csv = bundle.extractfile("fer2013/fer2013.csv").read()
    pins["fer2013"] = {"fer2013.csv": {"md5": hashlib.md5(csv).hexdigest()}}
    return pins


@pytest.fixture
def use_mirror(server, mirror, tmp_path, monkeypatch):
    """Point downloads at the local server; returns a function that rewrites EMOXFORMER_SOURCES."""
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    monkeypatch.setenv("EMOXFORMER_MIRROR", server.url)
    sources = tmp_path / "sources.json"
    monkeypatch.setenv("EMOXFORMER_SOURCES", str(sources))

    def write(edit=None):
        pins = _pins_of(mirror)
        if edit:
            edit(pins)
        sources.write_text(json.dumps(pins))

    write()
    return write


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("emoxformer: error:")]


def _dataset_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


# ----------------------------------------------------------------------------- happy paths
def test_all_lays_out_a_root_that_training_reads(use_mirror, server, mirror, sample_root, tmp_path, capsys):
    root = tmp_path / "data"
    assert main(["download", "all", "--to", str(root), "--from", str(mirror / "fer2013" / "fer2013.tar.gz"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "meld: ready" in out and "ravdess: ready" in out and "fer2013: ready" in out
    assert sorted(p.name for p in root.iterdir()) == ["fer2013", "meld", "ravdess"]  # no cache left behind
    assert sorted(p.name for p in (root / "meld" / "data").iterdir()) == sorted(MELD_CSVS)
    assert sorted(p.name for p in (root / "ravdess").iterdir()) == [f"Actor_{a:02d}" for a in range(1, 25)]
    assert (root / "fer2013" / "fer2013.csv").read_bytes() == (sample_root / "fer2013" / "fer2013.csv").read_bytes()
    config = DataConfig(root=str(root))
    expected = DataConfig(root=str(sample_root))
    for name in ("meld", "fer2013"):
        got, want = load_dataset(config, name), load_dataset(expected, name)
        assert [len(got.train), len(got.val), len(got.test)] == [len(want.train), len(want.val), len(want.test)], name
    ravdess = load_dataset(config, "ravdess")
    assert len(ravdess.train) + len(ravdess.val) + len(ravdess.test) == 48  # two clips from each of 24 actors
    assert {path for path, _ in server.requests} == {f"/meld/{name}" for name in MELD_CSVS} | {f"/ravdess/{RAVDESS_ZIP}"}


def test_a_second_run_on_complete_data_does_nothing_and_says_so(use_mirror, server, mirror, tmp_path, capsys):
    root = tmp_path / "data"
    archive = str(mirror / "fer2013" / "fer2013.tar.gz")
    assert main(["download", "all", "--to", str(root), "--from", archive, "--no-progress"]) == 0
    before, requests = _dataset_files(root), len(server.requests)
    capsys.readouterr()
    assert main(["download", "all", "--to", str(root), "--from", archive, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}: already complete in {root / name}; nothing to do" in out for name in ("meld", "ravdess", "fer2013"))
    assert len(server.requests) == requests and _dataset_files(root) == before


# ----------------------------------------------------------------------------- interruptions and failures
def test_a_dropped_connection_resumes_with_a_range_request(use_mirror, server, mirror, tmp_path, capsys):
    size = (mirror / "ravdess" / RAVDESS_ZIP).stat().st_size
    server.cuts[RAVDESS_ZIP] = [size // 3]
    root = tmp_path / "data"
    assert main(["download", "ravdess", "--to", str(root)]) == 0  # with progress bars
    assert server.requests == [(f"/ravdess/{RAVDESS_ZIP}", None), (f"/ravdess/{RAVDESS_ZIP}", f"bytes={size // 3}-")]
    assert not download.missing_parts("ravdess", root / "ravdess")
    assert RAVDESS_ZIP in capsys.readouterr().err  # the progress bar names the file


def test_an_interrupted_download_keeps_its_part_file_and_the_next_run_resumes(use_mirror, server, mirror, tmp_path, capsys):
    cut = 100_000
    server.cuts[RAVDESS_ZIP] = [cut] * download.ATTEMPTS  # every try of this run is cut short
    root = tmp_path / "data"
    assert main(["download", "ravdess", "--to", str(root), "--no-progress"]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and errors[0].startswith("emoxformer: error: ravdess: ") and "run again to resume" in errors[0]
    part = root / ".downloads" / "ravdess" / f"{RAVDESS_ZIP}.part"
    assert part.stat().st_size == cut * download.ATTEMPTS
    assert not (root / "ravdess").exists()

    assert main(["download", "ravdess", "--to", str(root), "--no-progress"]) == 0
    assert server.requests[-1] == (f"/ravdess/{RAVDESS_ZIP}", f"bytes={cut * download.ATTEMPTS}-")
    assert not download.missing_parts("ravdess", root / "ravdess") and not (root / ".downloads").exists()


def test_a_failed_meld_download_keeps_the_verified_files_for_the_next_run(use_mirror, server, mirror, tmp_path, capsys):
    good_test = _pins_of(mirror)["meld"]["test_sent_emo.csv"]
    use_mirror(lambda pins: pins["meld"]["test_sent_emo.csv"].update(sha256="0" * 64))  # the last file fails
    root = tmp_path / "data"
    assert main(["download", "meld", "--to", str(root), "--no-progress"]) == 2
    assert len(_errors(capsys)) == 1 and not (root / "meld").exists()
    cache = root / ".downloads" / "meld"
    for name in ("train_sent_emo.csv", "dev_sent_emo.csv"):  # fetched and verified: kept
        assert (cache / name).read_bytes() == (mirror / "meld" / name).read_bytes()
    assert not list(cache.glob("test_sent_emo.csv*"))  # the bad one is not

    use_mirror(lambda pins: pins["meld"].update({"test_sent_emo.csv": good_test}))
    server.requests.clear()
    assert main(["download", "meld", "--to", str(root), "--no-progress"]) == 0
    assert server.requests == [("/meld/test_sent_emo.csv", None)]  # only what was missing
    assert not download.missing_parts("meld", root / "meld") and not (root / ".downloads").exists()


def test_a_server_that_ignores_range_restarts_the_file(use_mirror, server, mirror, tmp_path):
    root = tmp_path / "data"
    cache = root / ".downloads" / "meld"
    cache.mkdir(parents=True)
    (cache / "dev_sent_emo.csv.part").write_bytes(b"stale bytes")
    server.honour_range = False
    assert main(["download", "meld", "--to", str(root), "--no-progress"]) == 0
    assert ("/meld/dev_sent_emo.csv", "bytes=11-") in server.requests
    assert (root / "meld" / "data" / "dev_sent_emo.csv").read_bytes() == (mirror / "meld" / "dev_sent_emo.csv").read_bytes()


def test_a_checksum_mismatch_fails_and_leaves_no_dataset(use_mirror, tmp_path, capsys):
    use_mirror(lambda pins: pins["meld"]["dev_sent_emo.csv"].update(sha256="0" * 64))
    root = tmp_path / "data"
    assert main(["download", "meld", "--to", str(root), "--no-progress"]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and errors[0].startswith("emoxformer: error: meld: dev_sent_emo.csv: sha256 ")
    assert f"does not match the pinned {'0' * 64}" in errors[0]
    assert not (root / "meld").exists()
    assert not list(root.rglob("dev_sent_emo.csv*"))  # the bad download is not kept for a resume


def test_a_404_fails_with_one_line(use_mirror, server, tmp_path, capsys):
    use_mirror(lambda pins: pins["ravdess"][RAVDESS_ZIP].update(url=f"{server.url}/gone/{RAVDESS_ZIP}"))
    root = tmp_path / "data"
    assert main(["download", "ravdess", "--to", str(root), "--no-progress"]) == 2
    assert _errors(capsys) == [f"emoxformer: error: ravdess: {server.url}/gone/{RAVDESS_ZIP} answered HTTP 404 Not Found"]
    assert not (root / "ravdess").exists()


def test_an_unreachable_server_fails_with_one_line(use_mirror, server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMOXFORMER_MIRROR", "http://127.0.0.1:9")  # discard port: nothing listens
    root = tmp_path / "data"
    assert main(["download", "meld", "--to", str(root), "--no-progress"]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and errors[0].startswith("emoxformer: error: meld: http://127.0.0.1:9/meld/train_sent_emo.csv: ")
    assert not (root / "meld").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to fill a disk")
def test_a_full_disk_fails_with_one_line(use_mirror, tmp_path, capsys):
    root = tmp_path / "data"
    cache = root / ".downloads" / "meld"
    cache.mkdir(parents=True)
    (cache / "train_sent_emo.csv.part").symlink_to("/dev/full")  # every write: ENOSPC
    assert main(["download", "meld", "--to", str(root), "--no-progress"]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and errors[0].startswith("emoxformer: error: meld: cannot write ")
    assert errors[0].endswith("No space left on device")
    assert not (root / "meld").exists()


def test_an_archive_without_every_actor_leaves_no_dataset(use_mirror, server, sample_root, tmp_path, capsys):
    served = tmp_path / "served"
    (served / "ravdess").mkdir(parents=True)
    broken = served / "ravdess" / RAVDESS_ZIP
    _zip_actors(sample_root, broken, range(1, 24))  # Actor_24 missing
    server.directory = served
    use_mirror(lambda pins: pins["ravdess"].update({RAVDESS_ZIP: {"md5": _digest(broken, "md5"), "size": broken.stat().st_size}}))
    root = tmp_path / "data"
    assert main(["download", "ravdess", "--to", str(root), "--no-progress"]) == 2
    assert _errors(capsys) == ["emoxformer: error: ravdess: the download holds no Actor_24/*.wav"]
    assert not (root / "ravdess").exists() and not (root / ".downloads" / "ravdess" / "unpacking").exists()


def test_an_incomplete_dataset_folder_is_left_alone(use_mirror, server, tmp_path, capsys):
    root = tmp_path / "data"
    (root / "meld" / "data").mkdir(parents=True)
    (root / "meld" / "data" / "train_sent_emo.csv").write_text("mine")
    assert main(["download", "meld", "--to", str(root), "--no-progress"]) == 2
    assert _errors(capsys) == [f"emoxformer: error: meld: {root / 'meld'} exists but is incomplete "
                               "(no data/dev_sent_emo.csv); move it away and run again"]
    assert (root / "meld" / "data" / "train_sent_emo.csv").read_text() == "mine" and not server.requests


def test_a_bad_sources_file_is_one_line(use_mirror, tmp_path, capsys, monkeypatch):
    sources = tmp_path / "bad.json"
    sources.write_text(json.dumps({"iemocap": {}}))
    monkeypatch.setenv("EMOXFORMER_SOURCES", str(sources))
    assert main(["download", "meld", "--to", str(tmp_path / "data")]) == 2
    assert _errors(capsys) == [f"emoxformer: error: {sources} (EMOXFORMER_SOURCES): unknown dataset 'iemocap'; "
                               "choose from meld, ravdess, fer2013"]


# ----------------------------------------------------------------------------- FER2013: Kaggle or the user's file
def _image_folders(folder: Path) -> Path:
    """The image-folder variant (train/ and test/ with class folders; file names keep the Usage)."""
    rng = np.random.default_rng(0)
    classes = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
               "sad": "sad", "surprise": "surprise"}
    for split, usages in (("train", ["Training"] * 3), ("test", ["PublicTest", "PrivateTest"] * 2)):
        for class_folder, emotion in classes.items():
            (folder / split / class_folder).mkdir(parents=True)
            for number, usage in enumerate(usages):
                Image.fromarray(draw_face(rng, emotion)).save(folder / split / class_folder / f"{usage}_{number}.jpg")
    return folder


def _kaggle_competition_zip(mirror: Path, archive: Path) -> Path:
    """What Kaggle's competition download holds: fer2013.tar.gz beside train.csv, test.csv, icml_face_data.csv."""
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(mirror / "fer2013" / "fer2013.tar.gz", "fer2013.tar.gz")
        for name in ("train.csv", "test.csv", "icml_face_data.csv", "example_submission.csv"):
            bundle.writestr(name, "emotion, Usage, pixels\n")
    return archive


@pytest.mark.parametrize("form", ["csv", "competition zip", "image folders zip", "image folders"])
def test_fer2013_from_what_the_user_downloaded(form, use_mirror, mirror, sample_root, tmp_path, capsys):
    if form == "csv":
        source = sample_root / "fer2013" / "fer2013.csv"
    elif form == "competition zip":
        source = _kaggle_competition_zip(mirror, tmp_path / "challenges-in-representation-learning.zip")
    else:
        source = _image_folders(tmp_path / "kaggle-images")
        if form == "image folders zip":
            shutil.make_archive(str(tmp_path / "archive"), "zip", source)
            source = tmp_path / "archive.zip"
    before = _dataset_files(source) if source.is_dir() else source.read_bytes()
    root = tmp_path / "data"
    assert main(["download", "fer2013", "--to", str(root), "--from", str(source), "--no-progress"]) == 0
    assert "fer2013: ready" in capsys.readouterr().out
    records = load_dataset(DataConfig(root=str(root)), "fer2013")
    if form.startswith("image folders"):
        assert [len(records.train), len(records.val), len(records.test)] == [21, 14, 14]
    else:
        assert len(records.train) and len(records.val) and len(records.test)
    assert (_dataset_files(source) if source.is_dir() else source.read_bytes()) == before  # the user's copy untouched
    assert sorted(p.name for p in root.iterdir()) == ["fer2013"]


def test_fer2013_csv_that_is_not_the_published_file_is_refused(use_mirror, sample_root, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("EMOXFORMER_SOURCES")  # the real pin: md5 of Kaggle's fer2013.csv
    root = tmp_path / "data"
    source = sample_root / "fer2013" / "fer2013.csv"
    assert main(["download", "fer2013", "--to", str(root), "--from", str(source), "--no-progress"]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and "md5" in errors[0] and "f8428a1edbd21e88f42c73edd2a14f95" in errors[0]
    assert "--fer2013 PATH" in errors[0] and source.is_file() and not (root / "fer2013").exists()


def test_fer2013_without_kaggle_access_says_what_to_do(use_mirror, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "data"
    assert main(["download", "fer2013", "--to", str(root), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emoxformer: error: fer2013: ")
    assert f"{download.FER_PAGE}/rules" in err[0]
    assert f"emoxformer download fer2013 --to {root} --from fer2013.tar.gz" in err[0]
    assert not (root / "fer2013").exists()


def _fake_kaggle(monkeypatch, api_class) -> None:
    """Make `from kaggle.api.kaggle_api_extended import KaggleApi` give api_class, with credentials set."""
    extended = types.ModuleType("kaggle.api.kaggle_api_extended")
    extended.KaggleApi = api_class
    for name, module in (("kaggle", types.ModuleType("kaggle")), ("kaggle.api", types.ModuleType("kaggle.api")),
                         ("kaggle.api.kaggle_api_extended", extended)):
        monkeypatch.setitem(sys.modules, name, module)


def test_fer2013_through_the_kaggle_api(use_mirror, mirror, tmp_path, monkeypatch, capsys):
    calls = []

    class FakeKaggleApi:  # the kaggle package's KaggleApi, as far as download uses it
        def authenticate(self):
            calls.append("authenticate")

        def competition_download_file(self, competition, file_name, path=None, force=False, quiet=False):
            calls.append((competition, file_name))
            shutil.copy(mirror / "fer2013" / file_name, Path(path) / file_name)

    _fake_kaggle(monkeypatch, FakeKaggleApi)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "0123")
    root = tmp_path / "data"
    assert main(["download", "fer2013", "--to", str(root), "--no-progress"]) == 0
    assert calls == ["authenticate", (download.FER_COMPETITION, "fer2013.tar.gz")]
    assert (root / "fer2013" / "fer2013.csv").is_file() and not (root / ".downloads").exists()


class _RefusingKaggleApi:
    def authenticate(self):
        pass

    def competition_download_file(self, competition, file_name, path=None, force=False, quiet=False):
        raise RuntimeError("403 Client Error: Forbidden for url: https://www.kaggle.com/api/v1/...")


@pytest.mark.parametrize("case", ["kaggle not installed", "kaggle refuses"])
def test_fer2013_kaggle_failures_say_what_to_do(case, use_mirror, tmp_path, monkeypatch, capsys):
    if case == "kaggle not installed":
        monkeypatch.setitem(sys.modules, "kaggle", None)  # import kaggle raises ImportError
    else:
        _fake_kaggle(monkeypatch, _RefusingKaggleApi)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "0123")
    root = tmp_path / "data"
    assert main(["download", "fer2013", "--to", str(root), "--no-progress"]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and f"--to {root} --from fer2013.tar.gz" in errors[0]
    assert ("pip install kaggle" if case == "kaggle not installed" else "403 Client Error") in errors[0]
    assert not (root / "fer2013").exists()


def test_from_is_only_for_fer2013(tmp_path, capsys):
    assert main(["download", "meld", "--to", str(tmp_path), "--from", str(tmp_path)]) == 2
    assert _errors(capsys) == ["emoxformer: error: --from is for FER2013 (fer2013.csv, the Kaggle zip or tar.gz, "
                               "or train/ test/ folders)"]


def test_the_build_step_assembles_a_dataset_from_cached_files_alone(sample_root, tmp_path):
    """'cache' and 'build' are separate steps: the build lays out RAVDESS from an archive already in the cache,
    with no server and no fetch."""
    cache = tmp_path / download.CACHE_FOLDER / "ravdess"
    cache.mkdir(parents=True)
    _zip_actors(sample_root, cache / RAVDESS_ZIP, range(1, 25))
    built = cache / "unpacking" / "ravdess"
    built.parent.mkdir()
    detail = download.BUILD_STEPS["ravdess"](download.load_pins({}), [cache / RAVDESS_ZIP], built)
    assert download.missing_parts("ravdess", built) == [] and detail.startswith("24 actors, 48 wav files")
    assert (cache / RAVDESS_ZIP).is_file()  # the cached download stays until the dataset is in place


def test_a_ravdess_folder_of_lowercase_actor_folders_is_complete(tmp_path):
    # The RAVDESS reader takes actor_05 as Actor_05; the download check must agree (it called the folder incomplete).
    for actor in range(1, 25):
        (tmp_path / f"actor_{actor:02d}").mkdir()
        (tmp_path / f"actor_{actor:02d}" / f"03-01-01-01-01-01-{actor:02d}.wav").write_bytes(b"")
    assert download.missing_parts("ravdess", tmp_path) == []
    (tmp_path / "actor_07" / "03-01-01-01-01-01-07.wav").unlink()
    assert download.missing_parts("ravdess", tmp_path) == ["Actor_07/*.wav"]
