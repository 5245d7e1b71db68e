"""The documentation site (mkdocs.yml, docs/*.md): it builds strictly, and what it shows still works.

- `mkdocs build --strict` succeeds: no broken link, heading anchor, included file or API reference.
- Every ```python block of docs/*.md runs. A page's blocks run in order in one namespace (a block may use what an
  earlier block of its page defined), in a fresh folder that holds the files the examples name: `runs/q/best`,
  `runs/nb/best` and `runs/ctx/best` (small untrained models, the last with dialogue context), `speech.wav` (a
  voice), `photo.jpg` (a photo with a face) and `face.png` (a 48x48 face crop). An HTML comment on the line just
  before a block's opening fence keeps it from the default run:
      <!-- docs-test: skip (REASON) -->   never run here: needs the real datasets, a GPU, the network, or hours
      <!-- docs-test: slow (REASON) -->   run only with `-m slow`, as CI does (e.g. a training run of a minute)
  Unmarked blocks always run, so an example that drifts from the API fails the default test run.
- Every `emoxformer ...` command in a ```bash block of the docs or the README names a real subcommand and only
  options that subcommand has; every benchmarks/, configs/ and tests/ file the docs name exists.
- The README, the landing page on GitHub, keeps the two commands of the Getting started page, and its links resolve.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<kind>\w+)\s*(?P<reason>\(.*\))?\s*-->$")
MARKER_LIKE = re.compile(r"docs-test", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int          # of the opening fence, 1-based
    language: str
    code: str
    marker: str | None  # "skip", "slow" or None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, each with the docs-test marker on the line before it (if any)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = re.match(r"^(\s*)(`{3,})\s*([\w+-]*)", lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, language = opening.groups()
        end = index + 1
        while end < len(lines) and not re.match(rf"^\s*{fence}\s*$", lines[end]):
            end += 1
        code = "\n".join(line[len(indent):] for line in lines[index + 1:end]) + "\n"
        previous = lines[index - 1].strip() if index else ""
        found = MARKER.match(previous)
        blocks.append(Block(path, index + 1, language.lower(), code, found["kind"] if found else None))
        index = end + 1
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in fenced_blocks(page)]
PYTHON_PAGES = sorted({block.page for block in ALL_BLOCKS if block.language == "python"})
SLOW_PAGES = sorted({block.page for block in ALL_BLOCKS if block.language == "python" and block.marker == "slow"})


# ----------------------------------------------------------------------------- the markers
def test_markers_are_well_formed_and_most_examples_run():
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not (line.lstrip().startswith("<!--") and MARKER_LIKE.search(line)):
                continue
            found = MARKER.match(line.strip())
            where = f"{page.relative_to(REPO)}:{number}"
            assert found and found["kind"] in ("skip", "slow"), f"{where}: write <!-- docs-test: skip|slow (reason) -->"
            assert found["reason"], f"{where}: a docs-test marker says why, in parentheses"
            following = lines[number] if number < len(lines) else ""
            assert following.startswith("```python"), f"{where}: a docs-test marker stands just before a ```python block"
    python = [block for block in ALL_BLOCKS if block.language == "python"]
    assert python, "the docs show no Python"
    unmarked = [block for block in python if block.marker is None]
    assert len(unmarked) >= len(python) / 2, "most Python examples should run in the default test run"


# ----------------------------------------------------------------------------- the examples
TINY = dict(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1)


def make_workspace(folder: Path, slow: bool) -> Path:
    """The files the examples name. With the slow blocks running, `runs/nb` is left for the Python API's training
    block to make, and that block's `data/sample` is written."""
    import numpy as np
    from PIL import Image

    from emoxformer.data.sample_data import draw_face, make_sample_data
    from emoxformer.demo.examples import write_face_photo, write_voice
    from emoxformer.model.config import EmoXFormerConfig
    from emoxformer.model.modeling import EmoXFormer

    rng = np.random.default_rng(0)
    model = EmoXFormer(EmoXFormerConfig(**TINY))
    model.save_pretrained(folder / "runs" / "q" / "best")
    EmoXFormer(EmoXFormerConfig(**TINY, text_context=3)).save_pretrained(folder / "runs" / "ctx" / "best")
    if slow:
        make_sample_data(folder / "data" / "sample", size="small", seed=0)
    else:
        model.save_pretrained(folder / "runs" / "nb" / "best")
    write_voice(folder / "speech.wav", rng, "happy")
    write_face_photo(folder / "photo.jpg", rng, "happy")
    Image.fromarray(draw_face(rng, "happy")).save(folder / "face.png")
    return folder


def run_page(page: Path, folder: Path, monkeypatch, slow: bool) -> int:
    """Run the page's Python blocks in order in one namespace, in `folder`; returns how many ran."""
    from emoxformer.data import registry

    blocks = [block for block in fenced_blocks(page) if block.language == "python"
              and (block.marker is None or (slow and block.marker == "slow"))]
    monkeypatch.chdir(make_workspace(folder, slow))
    monkeypatch.setattr(registry, "_DATASETS", dict(registry._DATASETS))  # a page's register_dataset stays in it
    namespace = {"__name__": f"docs_example_{page.stem.replace('-', '_')}"}
    for block in blocks:
        try:
            exec(compile(block.code, block.where, "exec"), namespace)
        except Exception:
            pytest.fail(f"the example at {block.where} fails:\n{block.code}\n{traceback.format_exc()}", pytrace=False)
    return len(blocks)


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=[page.name for page in PYTHON_PAGES])
def test_the_python_examples_of_a_page_run(page, tmp_path, monkeypatch):
    if not run_page(page, tmp_path, monkeypatch, slow=False):
        pytest.skip(f"every Python block of {page.name} is marked")


@pytest.mark.slow
@pytest.mark.parametrize("page", SLOW_PAGES, ids=[page.name for page in SLOW_PAGES])
def test_the_slow_python_examples_run_too(page, tmp_path, monkeypatch):
    assert run_page(page, tmp_path, monkeypatch, slow=True)


# ----------------------------------------------------------------------------- the commands
def _subcommands(parser) -> dict:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def _options(parser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a bash block as token lists: continuation lines joined, comments dropped, split at && ; |."""
    logical, pending = [], ""
    for line in code.replace("\\\n", " ").splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            tokens = shlex.split(pending, comments=True)
        except ValueError:  # a quote that goes on on the next line
            continue
        logical.append(tokens)
        pending = ""
    assert not pending, f"unbalanced quotes in:\n{code}"
    commands = []
    for tokens in logical:
        current = []
        for token in tokens:
            if token in ("&&", "||", ";", "|"):
                commands.append(current)
                current = []
            else:
                current.append(token)
        commands.append(current)
    return [command for command in commands if command]


def emoxformer_invocations(command: list[str]) -> list[str]:
    """The arguments after `emoxformer` (or `-m emoxformer.cli`) in a command, brackets of optional parts removed."""
    for index, token in enumerate(command):
        if token == "emoxformer" or (token == "emoxformer.cli" and index and command[index - 1] == "-m"):
            return [part for part in (token.strip("[]") for token in command[index + 1:]) if part]
    return []


BASH_BLOCKS = [block for block in ALL_BLOCKS + fenced_blocks(REPO / "README.md") if block.language in ("bash", "sh")]


def test_the_emoxformer_commands_shown_exist_with_their_options():
    from emoxformer.cli import build_parser

    parser, checked = build_parser(), 0
    for block in BASH_BLOCKS:
        for command in shell_commands(block.code):
            arguments = emoxformer_invocations(command)
            if not arguments:
                continue
            commands = _subcommands(parser)
            assert arguments[0] in commands, f"{block.where}: `emoxformer {arguments[0]}` is no command"
            sub, rest = commands[arguments[0]], arguments[1:]
            if _subcommands(sub):
                assert rest and rest[0] in _subcommands(sub), f"{block.where}: `emoxformer {' '.join(arguments[:2])}`"
                sub, rest = _subcommands(sub)[rest[0]], rest[1:]
            known = _options(sub)
            for token in rest:
                if token.startswith("--"):
                    option = token.split("=", 1)[0]
                    assert option in known, f"{block.where}: `emoxformer {arguments[0]}` has no option {option}"
            checked += 1
    assert checked >= 30, f"only {checked} emoxformer commands found in the docs"


def test_the_files_the_docs_name_exist():
    named = set()
    for page in [*PAGES, REPO / "README.md"]:
        named |= set(re.findall(r"(?<![\w/.])((?:benchmarks|configs|tests)/\w+\.(?:py|yaml))", page.read_text(encoding="utf-8")))
    assert named
    missing = sorted(path for path in named if not (REPO / path).is_file())
    assert not missing, f"the docs name files that are not in the repository: {missing}"


# ----------------------------------------------------------------------------- the README
def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    following = text.find("\n## ", start + 1)
    return text[start:following if following > 0 else len(text)]


def test_the_readme_and_getting_started_show_the_same_two_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    in_readme = [block.code for block in fenced_blocks(REPO / "README.md") if f"\n{block.code}" in _section(readme, "## Two commands")]
    assert in_readme == ['pip install -r requirements-ci.txt -e ".[test]" && emoxformer quickstart\n', "python -m pytest -q\n"]
    assert [code for code in in_readme if code in _section(page, "## Two commands")] == in_readme


def _slug(heading: str) -> str:
    """Python-Markdown's heading ids (toc's slugify), which GitHub's agree with for these headings."""
    text = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def test_the_readme_links_resolve():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        path, _, anchor = link.partition("#")
        target = REPO / path if path else REPO / "README.md"
        assert target.is_file(), f"README.md links to {link}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+\s+(.*)$", target.read_text(encoding="utf-8"), re.MULTILINE)
            assert anchor in {_slug(heading) for heading in headings}, f"README.md links to {link}: no such heading"


# ----------------------------------------------------------------------------- the site
def test_the_site_builds_strictly(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install -e '.[docs]'")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "index.html").is_file()
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="emoxformer.inference.predictor.Predictor.predict"' in api  # the reference was generated
    results = (tmp_path / "site" / "results" / "index.html").read_text(encoding="utf-8")
    assert "Results on the real datasets" in results  # RESULTS.md was included
