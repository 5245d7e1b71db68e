"""The package's import structure: no import cycles, and no module imports from a layer above its own.

Every `import` counts, also those inside functions (a lazy import still ties the two modules together)."""
import ast
from pathlib import Path

import emoxformer

PACKAGE_ROOT = Path(emoxformer.__file__).parent

# Lowest first; a module may import from its own layer and the layers below. The package itself re-exports the
# Predictor, so it sits with the applications.
LAYERS = (
    ("leaves", ("emoxformer.labels", "emoxformer.errors", "emoxformer.version", "emoxformer.io_utils",
                "emoxformer.config_io", "emoxformer.model.config", "emoxformer.metrics", "emoxformer.media",
                "emoxformer.faces")),
    ("model", ("emoxformer.model",)),  # builds and loads a model from its config alone: no data code
    ("data", ("emoxformer.data",)),
    ("experiment config", ("emoxformer.config",)),  # checks dataset names against the data registry
    ("training and inference", ("emoxformer.training", "emoxformer.inference")),
    ("applications", ("emoxformer.cli", "emoxformer.demo", "emoxformer")),
)


def module_name(path: Path, root: Path, package: str) -> str:
    parts = (package, *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, package: str,
                     modules: set[str]) -> set[str]:
    """The package's modules an import statement in `module` reads (`from x import name`: x.name if that is a
    module, else x)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != package:
        return set()
    found = {f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target for alias in node.names}
    return found & modules


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of the package under `root` -> the package's modules it imports."""
    paths = {module_name(path, root, package): path for path in root.rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        statements = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
        imports = set()
        for node in statements:
            imports |= imported_modules(node, module, path.name == "__init__.py", package, set(paths))
        graph[module] = imports - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    done, path = set(), []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph[module]):
            if cycle := visit(imported):
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if cycle := visit(module):
            return cycle
    return None


def layer_of(module: str) -> int:
    """The index in LAYERS of the most specific prefix naming `module`."""
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}"
    return max(matches)[1]


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph(PACKAGE_ROOT, "emoxformer"))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_inference_model_and_data_never_import_training():
    graph = import_graph(PACKAGE_ROOT, "emoxformer")
    offending = sorted(f"{module} -> {imported}" for module, imports in graph.items() for imported in imports
                       if module.startswith(("emoxformer.inference", "emoxformer.model", "emoxformer.data"))
                       and imported.startswith("emoxformer.training"))
    assert offending == []


def test_no_module_imports_from_a_layer_above_its_own():
    graph = import_graph(PACKAGE_ROOT, "emoxformer")
    upward = sorted(f"{module} ({LAYERS[layer_of(module)][0]}) -> {imported} ({LAYERS[layer_of(imported)][0]})"
                    for module, imports in graph.items() for imported in imports
                    if layer_of(imported) > layer_of(module))
    assert upward == []


def test_the_checks_see_cycles_and_lazy_relative_imports(tmp_path):
    """The walker itself: a cycle through a function-level relative import is found, an acyclic package passes."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import low\n")
    (package / "sub" / "low.py").write_text("import os\n\ndef late():\n    from ..high import VALUE\n")
    (package / "high.py").write_text("from .sub.low import late\nVALUE = 1\n")
    graph = import_graph(package, "pkg")
    assert graph["pkg.sub"] == {"pkg.sub.low"} and graph["pkg.sub.low"] == {"pkg.high"}
    assert find_cycle(graph) == ["pkg.high", "pkg.sub.low", "pkg.high"]
    (package / "sub" / "low.py").write_text("import os\n")
    assert find_cycle(import_graph(package, "pkg")) is None


def _settings_lists(root: Path, package: str, settings: set[str], least: int = 3) -> list[str]:
    """Module-level names that look like a list of input settings (…PREPROCESSING…, …INPUT_SETTINGS…), and literal
    tuples, lists or sets of strings naming `least` or more of `settings`, outside model/config.py."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root, package)
        if module == f"{package}.model.config":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else ""
                if "PREPROCESSING" in name.upper() or "INPUT_SETTINGS" in name.upper() or "INPUT_FIELDS" in name.upper():
                    found.append(f"{module}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if len(names & settings) >= least:
                    found.append(f"{module} line {node.lineno}: {sorted(names & settings)}")
    return found


def test_the_input_settings_are_listed_once_in_the_model_config():
    """The feature cache's key, the processor's check and config.json share model/config.py's INPUT_SETTINGS: a
    second list (the two PREPROCESSING_FIELDS that disagreed, image_colour missing from the cache's) drifts."""
    from emoxformer.model.config import INPUT_SETTINGS

    settings = {name for names in INPUT_SETTINGS.values() for name in names}
    assert {"image_colour", "text_context", "max_text_tokens", "sample_rate", "image_size"} <= settings
    assert _settings_lists(PACKAGE_ROOT, "emoxformer", settings) == []


def test_the_settings_list_check_finds_a_second_list(tmp_path):
    package = tmp_path / "pkg"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "config.py").write_text("INPUT_SETTINGS = ('a', 'b', 'c')\n")
    (package / "cache.py").write_text("FIELDS = ['a', 'b', 'c', 'x']\n")
    (package / "processor.py").write_text("PREPROCESSING_FIELDS = ()\n")
    assert len(_settings_lists(package, "pkg", {"a", "b", "c"})) == 2


# ----------------------------------------------------------------------------- one media layer
MEDIA_MODULE = "emoxformer.media"  # the one place image and audio files are decoded
IMAGE_DECODERS = {"PIL.Image.open", "cv2.imread", "cv2.imdecode", "imageio.imread", "imageio.v2.imread",
                  "imageio.v3.imread", "skimage.io.imread", "matplotlib.pyplot.imread", "matplotlib.image.imread",
                  "torchvision.io.read_image", "torchvision.io.decode_image"}
AUDIO_LOADERS = {"soundfile.read", "soundfile.info", "soundfile.SoundFile", "soundfile.blocks", "wave.open",
                 "scipy.io.wavfile.read", "librosa.load", "torchaudio.load", "torchaudio.info", "audioread.audio_open"}
GREY_CONVERSIONS = {"L", "LA", "1"}  # PIL's image.convert("L"): a grey decoding that skips the media layer's rules
# Conversions outside the media layer that are known and owned elsewhere, each with why it is still there. An
# entry whose conversion is gone fails the test, so the list only names live exceptions.
KNOWN_CONVERSIONS = {
    "emoxformer.model.preprocessing": "to_uint8_image turns a PIL image handed to the Preprocessor directly into an "
                                      "array with PIL's convert (no EXIF, 16-bit or alpha rules); it should call "
                                      "emoxformer.media.decode_image (a leaf the model layer may import)",
}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _grey_mode(node: ast.AST) -> bool:
    """A convert() argument that is, or may be, a grey mode ("L", or "L" if ... else "RGB")."""
    return any(isinstance(n, ast.Constant) and n.value in GREY_CONVERSIONS for n in ast.walk(node))


def media_decoders(root: Path, package: str, media_module: str) -> tuple[list[str], list[str]]:
    """(image decodings, audio loadings) outside `media_module`: calls or imports of the decoders above, through any
    import alias, and `.convert` calls to a grey mode."""
    images, audio = [], []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root, package)
        if module == media_module:
            continue
        tree = ast.parse(path.read_text())
        aliases: dict[str, str] = {}
        found: list[tuple[int, str]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Attribute, ast.Name)) and isinstance(getattr(node, "ctx", None), ast.Load):
                dotted = _dotted(node)
                if dotted:
                    head, _, rest = dotted.partition(".")
                    found.append((node.lineno, ".".join(filter(None, [aliases.get(head, head), rest]))))
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "convert"
                    and any(_grey_mode(a) for a in [*node.args[:1], *(k.value for k in node.keywords if k.arg == "mode")])):
                found.append((node.lineno, ".convert(grey)"))
        for line, name in sorted(set(found)):
            if name in IMAGE_DECODERS or name == ".convert(grey)":
                images.append(f"{module} line {line}: {name}")
            elif name in AUDIO_LOADERS:
                audio.append(f"{module} line {line}: {name}")
    return images, audio


def test_images_and_audio_are_decoded_by_one_media_module():
    """Three image decoders (manifests ignoring EXIF, FER2013 folders' convert("L"), the Predictor's) and two audio
    loaders (one with the WAV checks, one without) read the same file differently in training and prediction."""
    images, audio = media_decoders(PACKAGE_ROOT, "emoxformer", MEDIA_MODULE)
    known = [entry for entry in images if entry.split(" line ")[0] in KNOWN_CONVERSIONS and "convert(grey)" in entry]
    assert [entry for entry in images if entry not in known] == [], f"image decoding outside {MEDIA_MODULE}"
    assert audio == [], f"audio loading outside {MEDIA_MODULE}"
    assert {entry.split(" line ")[0] for entry in known} == set(KNOWN_CONVERSIONS), "a known conversion is gone: drop its entry"


def test_the_media_check_finds_a_second_decoder_under_any_alias(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "media.py").write_text("from PIL import Image\nimport soundfile as sf\nImage.open('x'); sf.read('x')\n")
    (package / "faces.py").write_text("import PIL.Image\nfrom PIL import Image as I\n\ndef f(p):\n"
                                      "    a = PIL.Image.open(p).convert('L')\n    return I.open(p), a\n")
    (package / "speech.py").write_text("from soundfile import read as r\nimport wave\n\ndef g(p):\n"
                                       "    return r(p), wave.open(p)\n")
    (package / "fine.py").write_text("import soundfile\nfrom PIL import Image\nsoundfile.write('x', [], 1)\n"
                                     "Image.fromarray(0).convert('RGB')\n")
    images, audio = media_decoders(package, "pkg", "pkg.media")
    assert images == ["pkg.faces line 5: .convert(grey)", "pkg.faces line 5: PIL.Image.open", "pkg.faces line 6: PIL.Image.open"]
    assert audio == ["pkg.speech line 1: soundfile.read", "pkg.speech line 5: soundfile.read", "pkg.speech line 5: wave.open"]
