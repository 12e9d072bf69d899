"""Every setting has one home (competition/config.py): no function, flag or Makefile line writes a
config field's default again, and the presets and recipes are built from it."""

import ast
import dataclasses
import re
from pathlib import Path

from competition.config import PRESETS, RECIPES, SearchConfig, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {}
for cls in (TrainConfig, SearchConfig):
    for field in dataclasses.fields(cls):
        DEFAULTS.setdefault(field.name, set()).add(field.default)


def literal_defaults(tree):
    """(line, name, value) of each literal default of a parameter or an add_argument flag."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            pairs = list(zip(args.args[len(args.args) - len(args.defaults):], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                if isinstance(default, ast.Constant):
                    yield node.lineno, arg.arg, default.value
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args
              and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("--")):
            for keyword in node.keywords:
                if keyword.arg == "default" and isinstance(keyword.value, ast.Constant):
                    yield node.lineno, node.args[0].value.lstrip("-"), keyword.value.value


def test_no_default_is_written_twice():
    repeated, seen = [], 0
    for folder in ("common", "competition", "edge", "scripts", "research"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "tests" in path.parts or path.name == "config.py":
                continue
            for line, name, value in literal_defaults(ast.parse(path.read_text())):
                seen += 1
                if name in DEFAULTS and value in DEFAULTS[name] and value not in (None, "", 0, False, True):
                    repeated.append(f"{path.relative_to(ROOT)}:{line} {name}={value!r}")
    makefile = "\n".join(line for line in (ROOT / "Makefile").read_text().splitlines() if not line.startswith("#"))
    flags = sorted(set(re.findall(r"--(\w+) [\d.]+", makefile)) & set(DEFAULTS))
    assert seen > 100 and repeated == [] and flags == [], (seen, repeated, flags)


def test_search_settings_are_the_training_ones_where_they_share_a_name():
    train = {f.name: f for f in dataclasses.fields(TrainConfig)}
    shared = [f for f in dataclasses.fields(SearchConfig) if f.name in train]
    assert {f.name for f in shared} >= {"batch_size", "learning_rate", "val_size", "split_seed", "rotation_deg"}
    different = {f.name for f in shared if f.default != train[f.name].default}
    assert different == {"name", "augment"}  # a search is named for its tuner, and augments as the report's did


def test_presets_and_recipes_name_real_settings():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(set(preset) <= fields for preset in PRESETS.values())
    assert all(preset in PRESETS for recipe in RECIPES.values() for preset, _ in recipe.members)
    assert TrainConfig(**PRESETS["demo"]).lr_decay > 0  # the demo's rate decays each epoch, not on plateaus
