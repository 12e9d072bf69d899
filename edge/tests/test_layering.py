"""The Pi runtime's own plan, checked where it runs (without TensorFlow): commands import libraries
only, and edge/pi/ needs nothing but itself and common/ (tests/test_layers.py checks the whole tree)."""

import ast

from conftest import ROOT

PI = ROOT / "edge" / "pi"


def is_command(path) -> bool:
    return any(isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
               for node in ast.parse(path.read_text()).body)


def project_imports(path) -> set[str]:
    """The project modules `path` imports, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in ("common", "competition", "edge")}


def test_no_pi_module_imports_a_command():
    commands = {f"edge.pi.{path.stem}" for path in PI.glob("*.py") if is_command(path)}
    assert {"edge.pi.classify", "edge.pi.read", "edge.pi.serve"} <= commands
    offenders = {f"{path.name} imports {name}" for path in PI.glob("*.py") for name in project_imports(path) & commands}
    assert not offenders


def test_the_pi_runtime_needs_only_itself_and_common():
    outside = {f"{path.name}: {name}" for path in PI.glob("*.py") for name in project_imports(path)
               if not name.startswith(("edge.pi", "common"))}
    assert not outside
