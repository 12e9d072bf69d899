"""Named recipes: the configurations that earned their place, from a quick model to the best ensemble.

A recipe is a list of members (a preset of competition/config.py and how many seeds of it), the rows
they train on, the test-time augmentation of its submission, and what its cross-validation
measured. `make best RECIPE=<name>` (competition/best.py) trains it in models/recipe-<name>/ and
writes its checked submission.csv. The figures and the commands behind them: docs/experiments.md.
"""

from __future__ import annotations

import dataclasses

from competition.config import PRESETS, TrainConfig


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Held-out accuracy that a cross-validation measured for a recipe's first `members` models."""

    accuracy: float
    std: float | None
    source: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    members: tuple[tuple[str, int], ...]  # (preset, seeds), trained in this order
    val_size: float  # 0: every row trains; the CV below is the estimate
    tta: int  # warped copies per test digit in the submission
    estimates: dict[int, Estimate]  # by how many members are trained

    def estimate(self, trained: int) -> Estimate | None:
        """What the CV says of an ensemble of the first `trained` members (fewer under a budget)."""
        known = [n for n in self.estimates if n <= trained]
        return self.estimates[max(known)] if known else None


RECIPES = {recipe.name: recipe for recipe in (
    Recipe("report", "the report's model 2 (augmented CNN), validated on the report's 90/10 split",
           (("report-aug", 1),), val_size=0.1, tta=0,
           estimates={1: Estimate(0.99190, None, "its validation digits, docs/experiments.md")}),
    Recipe("fast", "one strong model on every row",
           (("strong", 1),), val_size=0.0, tta=0,
           estimates={1: Estimate(0.99524, 0.00042, "5-fold CV, docs/experiments.md")}),
    Recipe("best-single", "one residual network on every row, long schedule, weights' average, TTA x4",
           (("resnet-long-ema", 1),), val_size=0.0, tta=4,
           estimates={1: Estimate(0.99638, 0.00041, "5-fold CV with TTA x4, docs/experiments.md")}),
    Recipe("best-ensemble", "a residual network and two strong models, long schedule, weights' average, "
           "averaged", (("resnet-long-ema", 1), ("strong-long-ema", 2)), val_size=0.0, tta=0,
           estimates={1: Estimate(0.99602, 0.00038, "its first member alone, 5-fold CV, docs/experiments.md"),
                      3: Estimate(0.99638, 0.00047, "each fold's 3 models, 5-fold CV, docs/experiments.md")}),
)}


@dataclasses.dataclass(frozen=True)
class Member:
    name: str  # its run folder's name in the recipe folder: member-<i>
    preset: str
    cfg: TrainConfig


def members(recipe: Recipe, data_dir: str, models_dir: str, epochs: int | None = None) -> list[Member]:
    """Each model of recipe, configured: its preset, seed 0, 1, ... per preset, the recipe's rows.
    epochs replaces the presets' (a quick trial; the recipe's estimate then no longer applies)."""
    found = []
    for preset, seeds in recipe.members:
        for seed in range(seeds):
            name = f"member-{len(found) + 1}"
            settings = {**PRESETS[preset], **({"epochs": epochs} if epochs else {})}
            cfg = TrainConfig(**settings, name=name, data_dir=data_dir, models_dir=models_dir, seed=seed,
                              val_size=recipe.val_size)
            found.append(Member(name, preset, cfg))
    return found


def minutes(cfg: TrainConfig, rows: int, images_per_second: float) -> float:
    """Training minutes of one member at a measured rate (early stopping can only shorten it)."""
    return cfg.epochs * rows * (1 - cfg.val_size) / images_per_second / 60


def within_budget(planned: list[float], budget_minutes: float) -> int:
    """How many members, in order, fit budget_minutes if trained one after another (0 budget: all).
    At least one: a recipe always has its first model."""
    if budget_minutes <= 0:
        return len(planned)
    total, count = 0.0, 0
    for minutes_each in planned:
        total += minutes_each
        if total > budget_minutes and count:
            break
        count += 1
    return count
