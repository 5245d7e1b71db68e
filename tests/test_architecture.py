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
                "emoxformer.config_io", "emoxformer.model.config", "emoxformer.metrics")),
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
