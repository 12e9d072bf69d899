"""How far a reader travels through the code to follow one command: the project modules its calls
enter, in order, measured by running it.

    python scripts/code_path.py -- -m competition.best --recipe fast --data_dir data/demo --epochs 1 \
        --models_dir /tmp/path-models

Every call (imports aside) from a function of the project (common/, competition/, edge/) into a function of another
of its modules is an edge; each edge counts once, where it is first taken (a loop's second call
teaches a reader nothing new). Walking those edges in order, a stop is each module entered, and a
return is a stop at a module the walk had already left; a climb is a call into a module that is
already on the call stack below its caller (the path goes back up, as recipes -> hardware -> runs ->
hardware). Printed: each edge, the walk, and the counts. Run it on two commits for a before and after (each checkout's own code: PYTHONPATH=. where another
checkout is the one installed).
Processes the command starts (side-by-side models) are not followed: pick a command that trains in
its own process.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "competition", "edge")


def project_module(code) -> str | None:
    """The dotted module name of a code object's file, if it is the project's."""
    try:
        relative = Path(code.co_filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    if relative.parts[0] not in PACKAGES or relative.suffix != ".py":
        return None
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def trace(argv: list[str]) -> dict[tuple[str, str], bool]:
    """The cross-module call edges (caller module, callee module.function), each once, in first-seen order;
    each True where it climbs: the callee's module is already on the call stack, below the caller."""
    edges: dict[tuple[str, str], bool] = {}
    names: dict[object, str | None] = {}

    def module_of(code):
        if code not in names:
            names[code] = project_module(code)
        return names[code]

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = module_of(frame.f_code)
        if callee is None or frame.f_back is None or frame.f_code.co_name == "<module>":  # calls, not imports
            return
        caller = module_of(frame.f_back.f_code)
        if caller is not None and caller != callee and (caller, f"{callee}.{frame.f_code.co_name}") not in edges:
            edges[caller, f"{callee}.{frame.f_code.co_name}"] = callee in stack_of(frame.f_back.f_back)

    def stack_of(frame) -> set[str]:
        """The project modules below a frame on its call stack."""
        found = set()
        while frame is not None:
            found.add(module_of(frame.f_code))
            frame = frame.f_back
        return found

    sys.argv = [argv[1], *argv[2:]] if argv[0] == "-m" else argv
    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        if argv[0] == "-m":
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as end:
        if end.code:
            print(f"code_path: the command ended with {end.code}", file=sys.stderr)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return edges


def walk(edges: list[tuple[str, str]]) -> tuple[list[str], int]:
    """The modules entered along the edges, in order, and how many of those stops return to a module left before."""
    stops: list[str] = []
    returns = 0
    for caller, callee in edges:
        for module in (caller, callee.rsplit(".", 1)[0]):
            if stops and stops[-1] == module:
                continue
            returns += module in stops
            stops.append(module)
    return stops, returns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-m MODULE ARGS... or SCRIPT ARGS... (after --)")
    args = parser.parse_args()
    command = [part for part in args.command if part != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the command to follow: -- -m competition.best ...")
    edges = trace(command)
    stops, returns = walk(list(edges))
    for (caller, callee), climbs in edges.items():
        print(f"  {caller} -> {callee}" + ("   (climbs: already on the stack)" if climbs else ""))
    print(" > ".join(stops))
    print(f"code_path: {len(edges)} cross-module calls, {len(stops)} stops in {len(set(stops))} modules, "
          f"{returns} returns to a module already left, {sum(edges.values())} climbs back to a module on the stack")
    return 0


if __name__ == "__main__":
    sys.exit(main())
