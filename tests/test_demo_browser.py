"""`emoxformer demo` in a real browser: headless Debian Chromium driven by Playwright against the running page.

Run with `python -m pytest -q -m browser`; needs `apt-get install -y chromium` and `pip install -e ".[demo,browser]"`.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from emoxformer.demo.examples import make_examples
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
MISSING = [why for missing, why in [
    (not CHROMIUM.exists(), "/usr/bin/chromium is missing (apt-get install -y chromium)"),
    (importlib.util.find_spec("playwright") is None, "playwright is not installed (pip install -e '.[browser]')"),
    (importlib.util.find_spec("gradio") is None, "gradio is not installed (pip install -e '.[demo]')"),
] if missing]
START_SECONDS = 240  # importing Gradio and torch on a busy 2-core machine
ANSWER_MS = 120_000
SENTENCE = "I'm so happy, yay!"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(bool(MISSING), reason="browser test: " + "; ".join(MISSING))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_page(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"emoxformer demo exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"emoxformer demo did not answer on {url} within {START_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    EmoXFormer(EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1)).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def demo_url(model_dir, tmp_path_factory):
    """`emoxformer demo` on a free port of 127.0.0.1, stopped by SIGTERM after the tests (it must exit cleanly)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("demo-log") / "demo.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "emoxformer.cli", "demo", "--model", str(model_dir), "--port", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_page(url, server, log)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            exit_code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            exit_code = "none: killed after 60 s"
    output = log.read_text()
    assert f"EmoXFormer demo of {model_dir}: {url}" in output  # bound to 127.0.0.1 by default
    assert exit_code == 0 and "Traceback" not in output, output


@pytest.fixture()
def page(demo_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(ANSWER_MS)
        page.goto(demo_url, wait_until="domcontentloaded")
        yield page
        browser.close()


def _cli_label(model_dir: Path, text: str) -> str:
    result = subprocess.run([sys.executable, "-m", "emoxformer.cli", "predict", "--model", str(model_dir), "--text", text, "--json"],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["label"]


def test_the_page_answers_like_the_cli_and_shows_each_modality(page, model_dir, tmp_path):
    shown_label = page.locator("#fused-label [data-testid=label-output-value]")
    text_box = page.locator("#text-input textarea, #text-input input").first
    text_box.fill(SENTENCE)
    text_box.press("Enter")
    page.locator("#per-modality tr.alone").first.wait_for()
    assert shown_label.inner_text().strip() == _cli_label(model_dir, SENTENCE)
    assert page.locator("#per-modality tbody tr").all_inner_texts()[0].startswith("text alone")

    example = make_examples(tmp_path / "inputs")[-1]
    page.locator("#image-input input[type=file]").set_input_files(example.image)
    page.locator("#audio-input input[type=file]").set_input_files(example.audio)
    page.locator("#image-input img").wait_for()  # both uploads have landed before predicting
    page.locator("#audio-input button[aria-label='Play']").wait_for()
    page.locator("#predict-button").click()
    page.locator("#per-modality tr.fused").wait_for()
    rows = [row.split("\t")[0].strip() for row in page.locator("#per-modality tbody tr").all_inner_texts()]
    assert rows == ["text alone", "audio alone", "face alone", "all together"]
    assert "Used: text, audio, image (face)" in page.locator("#inputs-report").inner_text()
    page.locator("#face-output img").wait_for()  # the face box picture

    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
    assert (tmp_path / "demo.png").stat().st_size > 10_000
