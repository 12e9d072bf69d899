"""`make best`'s plan, made before anything trains: a recipe and a machine's facts in, what will run out.

`make_plan` is pure: given the recipe's members, which of them are trained already, the images/s a
short calibration measured for each preset, the machine's resolved setup (precision, threads, GPUs)
and the command's options (budget, jobs, cluster), it returns a `Plan`: the members to train now
with their minutes, the precision they train in, the processes at once, where (this machine, its
GPUs, a Ray cluster), the training FLOPs. `Plan.lines()` is what the command prints. recipes.py
gathers the facts, prints the plan, then runs it.
"""

from __future__ import annotations

import dataclasses

from common.errors import ConfigError
from competition.config import COMPETITION_TRAIN_ROWS, PRESETS, Recipe, TrainConfig
from competition.model import designs
from competition.training import hardware, speed


@dataclasses.dataclass(frozen=True)
class Member:
    name: str  # its run folder's name in the recipe folder: member-<i>
    preset: str
    cfg: TrainConfig


def members(recipe: Recipe, data_dir: str, models_dir: str, epochs: int | None = None) -> list[Member]:
    """Each model of recipe, configured: its preset, seed 0, 1, ... per preset, the recipe's rows.
    epochs replaces the presets' (a quick trial; the recipe's estimate then no longer applies), and caps
    their plain epochs below it."""
    found = []
    for preset, seeds in recipe.members:
        for seed in range(seeds):
            name = f"member-{len(found) + 1}"
            settings = dict(PRESETS[preset])
            if epochs:  # a trial's plain epochs still leave one warped epoch
                settings.update(epochs=epochs, plain_epochs=min(settings.get("plain_epochs", 0), epochs - 1))
            cfg = TrainConfig(**settings, name=name, data_dir=data_dir, models_dir=models_dir, seed=seed,
                              val_size=recipe.val_size)
            found.append(Member(name, preset, cfg))
    return found


def minutes(cfg: TrainConfig, rows: int, images_per_second: float) -> float:
    """Training minutes of one member at a measured rate (early stopping can only shorten it)."""
    return cfg.epochs * rows * (1 - cfg.val_size) / images_per_second / 60


def overhead_minutes(start_seconds: float, calibration_seconds: float, test_rows: int, tta: int,
                     images_per_second: float) -> float:
    """What a member costs beyond its epochs, from what this command measured: a process's start
    (TensorFlow's import and the data, as this one took), its first steps (tracing and the input
    pipeline's warm-up, as long as the calibration took) and its predictions of test.csv (a forward
    pass is about a third of a training step's FLOPs)."""
    predict = test_rows * (1 + tta) / (3 * images_per_second)
    return (start_seconds + calibration_seconds + predict) / 60


def training_flops(cfgs: list[TrainConfig], rows: int = COMPETITION_TRAIN_ROWS) -> float:
    """FLOPs that training models of these configs takes on `rows` rows of train.csv
    (speed.training_flops an image, times the images of every epoch): what a machine's speed divides."""
    return sum(cfg.epochs * rows * (1 - cfg.val_size) * speed.training_flops(designs.for_config(cfg)) for cfg in cfgs)


def recipe_flops(recipe: Recipe, rows: int = COMPETITION_TRAIN_ROWS) -> float:
    return training_flops([member.cfg for member in members(recipe, "", "")], rows)


def makespan(each: list[float], slots: int) -> float:
    """Minutes until the last of `each` ends, `slots` at a time, each started on the first free slot."""
    free_at = [0.0] * max(1, min(slots, len(each)))
    for value in each:
        free_at[free_at.index(min(free_at))] += value
    return max(free_at)


def default_jobs(count: int, machine: hardware.Hardware) -> int:
    """Members at once: one a core at most. On 2 cores two 1-thread trainings do more images/s
    together than one 2-thread training (docs/speed.md)."""
    return max(1, min(count, machine.cores))


def gpu_plan(workers: int, gpus: tuple[int, ...]) -> str:
    """How the models share the GPUs, in words."""
    listed = ", ".join(map(str, gpus))
    if workers > 1 and len(gpus) > 1:
        return f"{min(workers, len(gpus))} at a time, one per GPU (GPUs {listed}, one process each)"
    idle = f" (GPUs {listed}: the other{'s' * (len(gpus) > 2)} idle)" if len(gpus) > 1 else ""
    return f"one at a time, on one of the {len(gpus)} GPU{'s' * (len(gpus) > 1)}{idle}"


@dataclasses.dataclass(frozen=True)
class Planned:
    """One member as the plan has it: its minutes of training here (0: trained already, reused) and
    beyond training (start-up, first steps, predictions)."""

    member: Member
    minutes: float
    overhead: float

    @property
    def trained(self) -> bool:
        return not self.minutes


@dataclasses.dataclass(frozen=True)
class NodeSpeed:
    """What a calibration on one of a cluster's nodes measured: its images/s per preset (in the
    precision it picked) and how many members the cluster trains at once (slots)."""

    node: str
    precision: str
    rates: dict[str, float]
    slots: int


@dataclasses.dataclass(frozen=True)
class Plan:
    """What `make best` will do: every field decided here, handed down as it is."""

    recipe: Recipe
    members: tuple[Planned, ...]  # those within the budget, in order
    of: int  # the recipe's members in all
    setup: hardware.Setup  # this machine: its precision for "auto", threads, GPUs
    precision: str  # what every member trains in (hardware.work_precision: "auto" on a cluster)
    workers: int  # members trained at once
    cluster: str | None
    rows: int  # train.csv's rows
    budget_minutes: float = 0.0
    node: NodeSpeed | None = None  # on a cluster: a node's measured speed

    @property
    def to_train(self) -> list[Member]:
        return [p.member for p in self.members if not p.trained]

    @property
    def minutes(self) -> float:
        return sum(p.minutes for p in self.members)

    @property
    def overhead(self) -> float:
        return sum(p.overhead for p in self.members)

    @property
    def flops(self) -> float:
        return training_flops([p.member.cfg for p in self.members], self.rows)

    @property
    def threads(self) -> int:
        """Each member's TensorFlow threads: the cores shared among the processes at once; 0 on a
        cluster, whose nodes share their own CPUs (cluster/models.py's member_resources)."""
        if self.cluster:
            return 0
        return self.setup.threads if self.workers <= 1 else hardware.threads_each(self.workers, self.setup.machine.cores)

    def lines(self) -> list[str]:
        """The plan as the command prints it, one line per member, then the total."""
        found = [f"{p.member.name}: {p.member.preset} seed {p.member.cfg.seed}, {p.member.cfg.epochs} epochs, "
                 + (f"about {format_minutes(p.minutes)}" if p.minutes else "trained already") for p in self.members]
        training = f"about {format_minutes(self.minutes)} of training"
        rest = f", {self.flops / 1e12:,.1f} TFLOP + {format_minutes(self.overhead)} of start-up and predictions"
        total = training + rest
        if self.cluster and self.node:
            found.append(f"{total} at this machine's speed; on the cluster at {self.cluster}: {self.cluster_line()}")
        elif self.cluster:
            found.append(f"{total} at this machine's speed, shared among the cluster's nodes at {self.cluster}")
        elif self.setup.gpus:
            found.append(f"{total} at the calibration's speed, {gpu_plan(self.workers, self.setup.gpus)}")
        elif self.workers > 1:
            found.append(f"{training} one after another on all cores{rest}; {self.workers} at a time in "
                         f"{self.precision}, each with {self.threads} thread{'s' * (self.threads != 1)}: about "
                         f"{format_minutes(self.wall_minutes())} until the last ends (each at its share of the "
                         "cores, docs/speed.md)")
        else:
            found.append(f"{total}, one at a time in {self.precision}")
        if len(self.members) < self.of:
            found.append(f"--budget_minutes {self.budget_minutes:g} fits {len(self.members)} of the recipe's {self.of} "
                         "models: the ensemble stops there (run again with a larger budget to add the rest)")
        return found

    def wall_minutes(self) -> float:
        """Training minutes until the last member ends, `workers` at a time, each on the first free slot.
        On this machine's CPU each member runs at its share of the cores (calibrated on all of them), so
        a long member left alone at the end keeps its share, not the cores the others freed. On a
        cluster: the sum at this machine's speed (the nodes' own: cluster_line)."""
        if self.cluster:
            return self.minutes
        slowdown = 1.0 if self.setup.gpus else self.setup.threads / self.threads
        return makespan([p.minutes * slowdown for p in self.members if not p.trained], self.workers)

    def needed_minutes(self) -> float:
        """What --budget_minutes is weighed against: the training until the last member ends, plus every
        member's start-up and predictions."""
        return self.wall_minutes() + self.overhead

    def node_minutes(self) -> list[float]:
        """Each member still to train, in minutes on a node like the one calibrated."""
        return [minutes(p.member.cfg, self.rows, self.node.rates[p.member.preset]) for p in self.members
                if not p.trained]

    def cluster_line(self) -> str:
        """The members' minutes at the calibrated node's speed, `slots` at a time, each on the first free."""
        each = self.node_minutes()
        slots = max(1, min(self.node.slots, len(each)))
        return (f"about {format_minutes(max(each, default=0.0))} a member at most at the speed measured on "
                f"{self.node.node} ({self.node.precision}), {slots} at a time: about "
                f"{format_minutes(makespan(each, slots))} of training")


def make_plan(recipe: Recipe, everyone: list[Member], trained: set[str], rates: dict[str, float],
              overheads: dict[str, float], setup: hardware.Setup, precision: str, rows: int,
              budget_minutes: float = 0.0, jobs: int = 0, cluster: str | None = None,
              node: NodeSpeed | None = None) -> Plan:
    """The plan for everyone (the recipe's members): `trained` names those reused; `rates` the images/s
    measured here for each preset still to train, `overheads` its minutes beyond training; jobs 0:
    one member a core (one a GPU with setup.gpus); `node`, on a cluster, a node's measured speed.
    ConfigError when the first model alone is over the budget."""
    everyone = [dataclasses.replace(m, cfg=dataclasses.replace(m.cfg, precision=precision)) for m in everyone]
    planned = [Planned(m, 0.0, 0.0) if m.name in trained
               else Planned(m, minutes(m.cfg, rows, rates[m.preset]), overheads[m.preset]) for m in everyone]
    if budget_minutes and planned[0].minutes > budget_minutes:
        raise ConfigError(f"recipe {recipe.name}'s first model needs about {format_minutes(planned[0].minutes)} here, "
                          f"over --budget_minutes {budget_minutes:g}; raise the budget or pick a faster recipe "
                          "(python -m competition.best --list)")

    def plan_of(kept: list[Planned]) -> Plan:
        to_train = sum(1 for p in kept if not p.trained)
        gpus = setup.gpus
        workers = jobs or (max(1, min(to_train, len(gpus))) if gpus else default_jobs(to_train, setup.machine))
        return Plan(recipe, tuple(kept), len(everyone), setup, precision, workers, cluster, rows, budget_minutes, node)

    # Under a budget, members in order while the plan of them, as it would run, still fits; always the first.
    keep = len(planned)
    if budget_minutes:
        keep = 1
        while keep < len(planned) and plan_of(planned[:keep + 1]).needed_minutes() <= budget_minutes:
            keep += 1
    return plan_of(planned[:keep])


def format_minutes(value: float) -> str:
    return f"{value:.1f} min" if value < 10 else f"{value:.0f} min"
