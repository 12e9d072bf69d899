"""Commands import libraries only: a module with a __main__ block is a command, and no module imports one."""

import ast

from conftest import ROOT

EDGE = ROOT / "edge"


def is_command(path) -> bool:
    return 'if __name__ == "__main__":' in path.read_text()


def edge_imports(path) -> set[str]:
    """The edge modules `path` imports (edge.x as 'x'), at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "edge":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("edge."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("edge."))
    return names


def test_no_edge_module_imports_a_command():
    commands = {path.stem for path in EDGE.glob("*.py") if is_command(path)}
    assert {"classify", "check", "export"} <= commands
    offenders = {f"{path.name} imports edge.{name}" for path in EDGE.glob("*.py")
                 for name in edge_imports(path) & commands}
    assert not offenders
