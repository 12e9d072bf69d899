"""The code's layers: commands sit on top, and nothing imports a command; no import goes round in a cycle.

A command is a module with a `__main__` block (run as `python -m ...`); everything it shares with
other commands lives in library modules. Imports inside functions count too: a lazy import is
still a dependency.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("competition", "edge")


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "tests" in path.relative_to(ROOT).parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = project_modules()


def imported(name: str) -> set[str]:
    """The project modules that module `name` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {module for module in found if module in MODULES and module != name}


def is_command(name: str) -> bool:
    return name.endswith("__main__") or '__name__ == "__main__"' in MODULES[name].read_text()


def test_no_module_imports_a_command():
    commands = {name for name in MODULES if is_command(name)}
    assert {"competition.train", "competition.best", "edge.classify"} <= commands
    wrong = {name: sorted(imported(name) & commands) for name in MODULES
             if not name.endswith("__main__") and imported(name) & commands}
    assert wrong == {}


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


def test_the_pi_commands_need_nothing_of_the_training_side():
    """What the Pi runs imports nothing of competition/ (TensorFlow's stack), however indirectly."""
    needed, todo = set(), ["edge.classify", "edge.read", "edge.camera", "edge.serve", "edge.bench"]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += imported(name)
    assert sorted(name for name in needed if not name.startswith("edge")) == []
