"""`make kaggle-best`'s plan: a recipe's minutes on Kaggle's GPUs, the session's time limit, the quota left.

Kaggle's machine_shape NvidiaTeslaT4 is two T4s: the members train two at a time, one per GPU, each
started on the first GPU free. The session (what the weekly quota counts) is its start plus that
schedule; the GPU-minutes are the members' minutes added up. The rates are guesses until measured on
Kaggle (docs/kaggle.md).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from common.errors import ProjectError
from competition.config import COMPETITION_TRAIN_ROWS, PAIR_PRESETS, PairConfig, Recipe
from competition.kaggle import bootstrap
from competition.kaggle.client import KaggleClient
from competition.training import planning

# The session's time limit: the estimate (a guess until measured) times TIMEOUT_MARGIN, at least
# TIMEOUT_MIN_MINUTES, at most Kaggle's own limit for a GPU session.
TIMEOUT_MARGIN = 2.0
TIMEOUT_MIN_MINUTES = 30.0
KAGGLE_MAX_HOURS = 12.0


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    count: int  # GPUs in the session: the members train this many at a time, one per GPU
    capability: tuple[int, int]
    rates: dict[str, float]  # images/s a preset trains at on one of them, in the precision auto picks for it
    measured: str = ""  # where the rates were measured; empty: they are guesses

    def describe(self) -> str:
        return f"{'two' if self.count == 2 else self.count} {self.name}s" if self.count > 1 else f"a {self.name}"


# Kaggle's accelerators (machine_shape). NvidiaTeslaT4 is two T4s (Kaggle offers no single one); the P100 is
# retired (the server runs such a session on T4s). No rate has been measured on Kaggle yet: these are guesses
# from the presets' batch sizes (64: step-bound on a GPU) and a T4's float16 throughput; docs/kaggle.md.
GPUS = {
    "NvidiaTeslaT4": Gpu("Tesla T4", 2, (7, 5), {"report-aug": 10_000, "strong": 8_000, "strong-long": 8_000,
                                                 "strong-long-ema": 8_000, "strong-short": 8_000, "strong-fast": 8_000,
                                                 "resnet-long-ema": 4_000, "resnet-short-ema": 4_000,
                                                 "resnet-matuzas": 4_000, "vgg-matuzas": 3_000}),
}
DEFAULT_GPU = "NvidiaTeslaT4"
# The pair models (`--pair_models`), after the recipe on one T4: pieces made by Kaggle's 4 CPUs, then
# trained on a T4, pieces/s per design. Making: twice what both cores of a 2-core AVX2 EPYC made (finder
# 463-517/s, its wide and slanted pieces dearer to draw, the bold finder's 569/s, reader 809/s:
# docs/kaggle.md); training: guesses.
PAIR_MAKING_RATES = {"pair_finder": 1_000, "pair_finder_bold": 1_000, "pair_reader": 1_600}
PAIR_RATES = {"pair_finder": 20_000, "pair_finder_bold": 20_000, "pair_reader": 10_000}
START_MINUTES = 4.0  # the session's start, TensorFlow's import, the calibration, the submission (a guess)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A recipe's time on Kaggle: each member's minutes on one GPU, how many train at once, the session's
    minutes (start included: what the quota counts) and the GPU-minutes the training keeps busy."""

    member_minutes: list[float]
    at_once: int
    session_minutes: float
    gpu_minutes: float
    what: str  # measured, or a guess
    pair_minutes: float = 0.0  # the pair models after the recipe (0: not asked)

    def describe(self, gpu: Gpu) -> str:
        n, longest = len(self.member_minutes), hours(max(self.member_minutes) / 60)
        if self.at_once > 1:
            how = f"{n} models of about {longest} at most each, {self.at_once} at a time, one per GPU"
        elif gpu.count > 1:
            how = f"{n} model of about {longest} on one of the {gpu.count} GPUs (the other{'s' * (gpu.count > 2)} idle)"
        else:
            how = f"{n} model{'s' * (n > 1)} of about {longest} at most each, one at a time"
        pairs = f", then the pair models, about {self.pair_minutes:.0f} min on one GPU" if self.pair_minutes else ""
        return (f"{how}{pairs}: about {self.session_minutes:.0f} min of session ({START_MINUTES:.0f} min to start, "
                f"{self.session_minutes - START_MINUTES:.0f} min of training), {self.gpu_minutes:.0f} GPU-minutes of "
                f"training ({self.what})")


def pair_minutes(epochs: int | None = None) -> float:
    """The pair models, one after the other: their pieces made (training and held out), then trained
    (their presets; with epochs, a trial's TRIAL_PAIR_EXAMPLES pieces for that many epochs)."""
    total = 0.0
    for design, preset in PAIR_PRESETS.items():
        examples = bootstrap.TRIAL_PAIR_EXAMPLES if epochs else preset["examples"]
        made = examples * (1 + PairConfig().held_out)
        total += made / PAIR_MAKING_RATES[design] + examples * (epochs or preset["epochs"]) / PAIR_RATES[design]
    return total / 60


def plan_minutes(recipe: Recipe, accelerator: str, epochs: int | None = None, pair_models: bool = False) -> Plan:
    """The recipe on that accelerator: its members in order, each started on the first GPU free; then,
    asked, the pair models."""
    gpu = GPUS[accelerator]
    members = planning.members(recipe, "", "", epochs)
    each = [planning.minutes(m.cfg, COMPETITION_TRAIN_ROWS, gpu.rates[m.preset]) for m in members]
    at_once = min(gpu.count, len(each))
    free_at = [0.0] * at_once
    for minutes in each:
        first = free_at.index(min(free_at))
        free_at[first] += minutes
    what = f"measured {gpu.measured}" if gpu.measured else "a guess: not measured on Kaggle yet"
    pairs = pair_minutes(epochs) if pair_models else 0.0
    return Plan(each, at_once, START_MINUTES + max(free_at) + pairs, sum(each) + pairs, what, pairs)


def elsewhere(recipe: Recipe, epochs: int | None = None) -> str | None:
    """make best's line for the same recipe on Kaggle's GPUs (make kaggle-best), its rates' source
    said; None for a recipe of presets without a rate there (one made for a test)."""
    gpu = GPUS[DEFAULT_GPU]
    if any(preset not in gpu.rates for preset, _ in recipe.members):
        return None
    plan = plan_minutes(recipe, DEFAULT_GPU, epochs)
    return f"on Kaggle's {gpu.describe()} instead (make kaggle-best): {plan.describe(gpu)}"


def session_timeout_s(minutes: float) -> int:
    """The push's session timeout for a run estimated at `minutes`: a guess can be short, and a session
    stopped at its limit has spent its quota for nothing; past Kaggle's own limit it is that limit."""
    return int(min(KAGGLE_MAX_HOURS * 60, max(TIMEOUT_MIN_MINUTES, minutes * TIMEOUT_MARGIN)) * 60)


def check_quota(client: KaggleClient, needed_minutes: float, gpu: str, what: str, force: bool) -> None:
    """The week's GPU quota left: allowed, less used, less reserved by sessions still running."""
    quota, refresh = client.gpu_quota()
    need = f"the recipe needs about {hours(needed_minutes / 60)} on {gpu} ({what})"
    if quota is None or quota.total_time_allowed is None:
        print(f"kaggle-best: Kaggle did not say this account's GPU quota; {need}", flush=True)
        return
    used, reserved = quota.time_used or timedelta(0), quota.time_reserved or timedelta(0)
    left_h = max(0.0, (quota.total_time_allowed - used - reserved).total_seconds() / 3600)
    total_h = quota.total_time_allowed.total_seconds() / 3600
    when = f", renewed {refresh:%a %d %b %H:%M} UTC" if refresh else ""
    held = f" ({hours(reserved.total_seconds() / 3600)} held by sessions still running)" if reserved else ""
    line = f"GPU quota: {hours(left_h)} of {hours(total_h)} left this week{held}{when}; {need}"
    if left_h * 60 < needed_minutes and not force:
        raise ProjectError(f"{line}: not pushed (--force pushes anyway; Kaggle stops a kernel when the quota ends)")
    print(f"kaggle-best: {line}" + (" (--force: pushing anyway)" if left_h * 60 < needed_minutes else ""), flush=True)


def hours(value: float) -> str:
    """3.5 -> '3.5 h', 0.25 -> '15 min'."""
    return f"{value:.1f} h" if value >= 1 else f"{value * 60:.0f} min"
