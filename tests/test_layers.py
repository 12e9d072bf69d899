"""The floor plan, read from the syntax tree of every module of common/, competition/, edge/, scripts/
and research/, as README.md's Layout section draws it:

    common/                      the base: imports nothing else of the project, nor TensorFlow or pandas
    competition/ (top level)     the commands (run as `python -m competition.X`), config.py, cli.py, startup.py
    competition/<job>/           libraries, in layers: data < model < runs < scoring < training < kaggle, report
    edge/pi/                     the Pi runtime: itself and common/ only
    edge/forms/                  numbers made to measure the reader, over edge/pi/; never needed on a Pi
    edge/export/                 the TensorFlow side of the edge, over competition's libraries
    scripts/, research/          measurements and one-offs: they import libraries, never a command

Nothing imports a command (a module with an `if __name__ == "__main__":` block, or a __main__);
no import goes round in a cycle; every trainer-side command starts with startup.begin() before it
imports anything else of the project. Imports inside functions count too: a lazy import is still
a dependency.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "competition", "edge")
# Library layers of competition/: a module may import its own subpackage and those before it.
LAYERS = ("competition.data", "competition.model", "competition.runs", "competition.scoring",
          "competition.training", "competition.kaggle", "competition.report")
BASE = ("competition.config", "competition.startup")  # settings: every layer may read them
LIGHT = {"numpy", "PIL"}  # what common/ and edge/pi/ may import from outside the standard library


def modules_under(*folders: str) -> dict[str, Path]:
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "tests" in path.relative_to(ROOT).parts and folder != "tests":
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules_under(*PACKAGES)
TOOLS = modules_under("scripts", "research")
TREES = {name: ast.parse(path.read_text()) for name, path in {**MODULES, **TOOLS}.items()}


def imports(name: str) -> set[str]:
    """Every module name that module `name` imports, anywhere in it."""
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def imported(name: str) -> set[str]:
    """The project modules that module `name` imports."""
    return {module for module in imports(name) if module in MODULES and module != name}


def outside(name: str) -> set[str]:
    """The top-level packages outside the project and the standard library that `name` imports."""
    import sys
    tops = {module.split(".")[0] for module in imports(name)}
    return {top for top in tops if top not in PACKAGES and top not in sys.stdlib_module_names and top != "__future__"}


def is_command(name: str) -> bool:
    if name.endswith("__main__"):
        return True
    return any(isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
               and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
               for node in TREES[name].body)


COMMANDS = {name for name in MODULES if is_command(name)}
LIBRARIES = set(MODULES) - COMMANDS


def layer(name: str) -> int | None:
    return next((i for i, prefix in enumerate(LAYERS) if name == prefix or name.startswith(prefix + ".")), None)


def test_the_commands_are_where_a_user_finds_them():
    top = {name for name, path in MODULES.items() if name.count(".") == 1 and name.startswith("competition.")
           and path.name != "__init__.py"}
    assert top - COMMANDS == {"competition.config", "competition.cli", "competition.startup"}
    assert {"competition.train", "competition.best", "competition.predict", "competition.submit",
            "edge.pi.classify", "edge.export.tflite"} <= COMMANDS


def test_no_module_imports_a_command():
    wrong = {name: sorted(imported(name) & COMMANDS) for name in MODULES
             if not name.endswith("__main__") and imported(name) & COMMANDS}
    assert wrong == {}
    tools = {name: sorted({m for m in imports(name) if m in COMMANDS}) for name in TOOLS}
    assert {name: found for name, found in tools.items() if found} == {}


def test_libraries_keep_their_layers():
    wrong = {}
    for name in sorted(LIBRARIES):
        if not name.startswith("competition.") or name in (*BASE, "competition.cli"):  # cli: the commands' parser
            continue
        mine = layer(name)
        for other in imported(name):
            if other == "competition.cli" or (other.startswith("competition.") and other not in BASE
                                              and (mine is None or layer(other) is None or layer(other) > mine)):
                wrong.setdefault(name, []).append(other)
    assert wrong == {}


def test_the_base_and_the_pi_runtime_stand_alone():
    """common/ and what the Pi runs import nothing of competition/ (TensorFlow's stack), however
    indirectly, and nothing outside the standard library but numpy and Pillow."""
    for name in MODULES:
        if name.startswith("common"):
            assert {m for m in imported(name) if not m.startswith("common")} == set(), name
    needed, todo = set(), [name for name in MODULES if name.startswith("edge.pi")]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += imported(name)
    assert sorted(name for name in needed if not name.startswith(("edge.pi", "common"))) == []
    heavy = {name: outside(name) - LIGHT for name in needed if outside(name) - LIGHT}
    # the interpreters and OpenCV are imported where they are optional, inside functions
    assert all(found <= {"ai_edge_litert", "tflite_runtime", "tensorflow", "cv2", "picamera2"}
               for found in heavy.values()), heavy


def test_the_made_numbers_are_not_part_of_the_pi_runtime():
    """The generators of written numbers and photo scenes are test and measurement tools: edge/forms/,
    which nothing of edge/pi/ needs, and which itself needs only edge/pi/, common/, numpy and Pillow."""
    forms = {name for name in MODULES if name.startswith("edge.forms")}
    assert {"edge.forms.written", "edge.forms.synthetic"} <= forms
    assert not any(name.startswith("edge.pi") and imported(name) & forms for name in MODULES)
    for name in forms:
        assert all(m.startswith(("edge.pi", "edge.forms", "common")) for m in imported(name)), name
        assert outside(name) <= LIGHT, name


def test_every_trainer_command_starts_up_first():
    """startup.begin() runs before the command imports anything else of the project, so TensorFlow's
    start-up is quieted and Keras' backend set; importing a library has no such effect."""
    wrong = []
    for name in sorted(COMMANDS):
        if not name.startswith(("competition", "edge.export")) or name.endswith("__main__"):
            continue
        body = TREES[name].body
        begin = next((i for i, node in enumerate(body) if isinstance(node, ast.Expr)
                      and ast.unparse(node) == "startup.begin()"), None)
        first = next((i for i, node in enumerate(body) if isinstance(node, (ast.Import, ast.ImportFrom))
                      and any(m.split(".")[0] in PACKAGES for m in _names(node))
                      and "competition.startup" not in {f"{node.module}.{a.name}" for a in node.names}), None)
        if begin is None or (first is not None and first < begin):
            wrong.append(name)
    assert wrong == []
    init = TREES["competition"].body
    assert all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in init)


def _names(node) -> list[str]:
    return [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]


def test_no_import_cycle():
    graph = {name: imported(name) for name in MODULES}
    done, path, cycles = set(), [], []

    def visit(name):
        path.append(name)
        for other in sorted(graph[name]):
            if other in path:
                cycles.append(path[path.index(other):] + [other])
            elif other not in done:
                visit(other)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name)
    assert cycles == []


def test_no_script_edits_the_import_path():
    """The project is installed (pip install -e .): nothing reaches it through sys.path."""
    edits = [name for name, tree in TREES.items() for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path"]
    assert edits == []


def test_the_installed_packages_carry_no_test_double():
    """Fakes and test tools (the fake Kaggle, the browser driver) live in tests/, not in what pip installs."""
    doubles = {name for name, tree in TREES.items() if name in MODULES for node in ast.walk(tree)
               if isinstance(node, ast.ClassDef) and node.name.startswith(("Fake", "Mock", "Stub"))}
    named = {name for name in MODULES if name.rsplit(".", 1)[-1].startswith(("fake", "mock", "stub", "browser"))}
    assert doubles | named == set()
    assert (ROOT / "tests" / "fake_kaggle.py").is_file() and (ROOT / "tests" / "browser.py").is_file()
