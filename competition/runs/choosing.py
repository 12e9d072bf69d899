"""Which run folder a command takes: each command calls the functions for what it means.

- `run_by_id` / `model_by_id`: the run the user named (RUN=<id> or a path);
- `newest_named`: the newest run of a name (a recipe's member, a parallel job, already trained?);
- `best_scored` / `best_model`: the finished folder with the best recorded score, the default;
- `newest` / `newest_model`: when nothing has a score, the newest tuned run, run or ensemble;
- `default_run` / `default_model`: what a command takes when it is not told: the best scored, else
  the newest (the command says which, and why: Chosen.line()).

The `_model` forms are for commands that need a folder of one model (to report on, to export): an
ensemble of one member (the fast and best-single recipes) stands for that member, and larger
ensembles are passed over. Each returns a Chosen: the folder and the reason the command says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common.errors import ProjectError
from competition.data.reading import read_json
from competition.runs.building import remove_killed_runs
from competition.runs.layout import (
    CV_SCORES_FILE,
    ENSEMBLE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    TUNED_NAME,
    is_ensemble,
    is_run,
)


@dataclass(frozen=True)
class Chosen:
    folder: Path
    reason: str  # why this folder, as the command says it

    def line(self) -> str:
        """What a command prints when it chose for the user."""
        return f"run: {self.folder} ({self.reason}; RUN=<id> picks another)"


def run_by_id(models_dir: str | Path, run: str) -> Chosen:
    """The run or ensemble `run` names: a path, or an id under models_dir; FileNotFoundError else."""
    models = Path(models_dir)
    remove_killed_runs(models)
    for candidate in (Path(run), models / run):
        if is_run(candidate) or is_ensemble(candidate):
            return Chosen(candidate, f"asked for {run!r}")
    raise FileNotFoundError(f"no run {run!r}: expected a folder with {MODEL_FILE} or {ENSEMBLE_FILE}, "
                            f"as a path or under {models}")


def model_by_id(models_dir: str | Path, run: str) -> Chosen:
    """run_by_id, an ensemble of one member standing for that member."""
    chosen = run_by_id(models_dir, run)
    member = sole_member(chosen.folder)
    return Chosen(member, f"{chosen.reason}, its model {member.name}") if member else chosen


def newest_named(models_dir: str | Path, name: str) -> Chosen:
    """The newest finished run called `name` (its id ends in -name); FileNotFoundError if none."""
    runs = [p for p in _runs(models_dir) if p.name.endswith(f"-{name}")]
    if not runs:
        raise FileNotFoundError(f"no run named {name!r} in {Path(models_dir)}: run `make best` or `make train` "
                                "(or `make demo`) first")
    return Chosen(runs[-1], f"the newest run named {name!r}")


def default_run(models_dir: str | Path) -> Chosen:
    """The run or ensemble a command takes when not told which: best_scored, else newest."""
    return best_scored(models_dir) or newest(models_dir)


def default_model(models_dir: str | Path) -> Chosen:
    """default_run for a command that needs one model: best_model, else newest_model."""
    return best_model(models_dir) or newest_model(models_dir)


def best_scored(models_dir: str | Path) -> Chosen | None:
    """The finished run or ensemble with the highest recorded score, saying why; runs of the
    competition's data before demo ones. None when none has a score."""
    return _best(models_dir, _itself)


def best_model(models_dir: str | Path) -> Chosen | None:
    """best_scored among the folders of one model (a CV or a larger ensemble is many)."""
    return _best(models_dir, _one_model)


def newest(models_dir: str | Path) -> Chosen:
    """When nothing has a recorded score: the newest tuned run (`make train-best`), else the newest
    run, else the newest finished ensemble; FileNotFoundError if there is none of these."""
    return _newest(models_dir, _itself)


def newest_model(models_dir: str | Path) -> Chosen:
    """newest, an ensemble counting only when it has one member, which stands for it."""
    return _newest(models_dir, _one_model)


def sole_member(folder: Path) -> Path | None:
    """The run folder of an ensemble of exactly one member; None for anything else."""
    if not is_ensemble(folder):
        return None
    try:
        members = read_json(folder / ENSEMBLE_FILE)["members"]
    except (ProjectError, KeyError, TypeError):
        return None
    return folder / members[0] if len(members) == 1 and is_run(folder / members[0]) else None


def recorded_score(folder: Path) -> tuple[float, str, bool] | None:
    """The accuracy a finished run, ensemble, CV or recipe folder recorded for itself, what that
    figure is, and whether it was of demo data; None when it recorded none (models of every row
    outside a recipe) or its record cannot be read."""
    try:
        metrics = read_json(folder / METRICS_FILE) if (folder / METRICS_FILE).is_file() else {}
        demo = bool(metrics.get("demo_data"))
        if metrics.get("validation"):
            return float(metrics["validation"]["accuracy"]), "validation accuracy", demo
        if metrics.get("estimate"):
            return float(metrics["estimate"]["accuracy"]), f"expected accuracy, {metrics['estimate']['source']}", demo
        if (folder / CV_SCORES_FILE).is_file():
            scores = read_json(folder / CV_SCORES_FILE)
            part = scores.get("ensemble") or scores["single"]
            return float(part["mean"]), f"{scores['k']}-fold CV accuracy", bool(scores.get("demo_data"))
    except (ProjectError, KeyError, TypeError, ValueError):
        return None
    return None


def _itself(folder: Path) -> Path:
    return folder


def _one_model(folder: Path) -> Path | None:
    return sole_member(folder) if is_ensemble(folder) else folder


def _runs(models_dir: str | Path) -> list[Path]:
    """The finished runs in models_dir, oldest first (ids start with a timestamp), once the
    folders of killed runs are removed."""
    models = Path(models_dir)
    remove_killed_runs(models)
    return sorted(p for p in models.iterdir() if is_run(p)) if models.is_dir() else []


def _best(models_dir: str | Path, stands_for: Callable[[Path], Path | None]) -> Chosen | None:
    folder = Path(models_dir)
    remove_killed_runs(folder)
    scored = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith(".") or not (is_run(path) or is_ensemble(path)):
            continue
        target = stands_for(path)
        found = recorded_score(path)
        if target is not None and found is not None:
            scored.append((found, path, target))
    pool = [s for s in scored if not s[0][2]] or scored
    if not pool:
        return None
    (score, what, _), source, target = max(pool, key=lambda s: (s[0][0], s[1].name))  # ties: the newest
    via = f", its model {target.name}" if target != source else ""
    among = (f"the best recorded score of {len(pool)} finished runs and ensembles" if len(pool) > 1
             else "the only finished run or ensemble with a recorded score")
    return Chosen(target, f"picked {source.name}{via}: {among}, {what} {score:.5f}")


def _newest(models_dir: str | Path, stands_for: Callable[[Path], Path | None]) -> Chosen:
    models = Path(models_dir)
    runs = _runs(models)
    if runs:
        tuned = [p for p in runs if p.name.endswith(f"-{TUNED_NAME}")]
        what = f"the newest {TUNED_NAME} run" if tuned else "the newest run"
        return Chosen((tuned or runs)[-1], f"{what}; none has a recorded score")
    ensembles = sorted((p for p in models.iterdir() if is_ensemble(p) and stands_for(p)),
                       key=lambda p: (p / ENSEMBLE_FILE).stat().st_mtime) if models.is_dir() else []
    if ensembles:
        return Chosen(stands_for(ensembles[-1]), "the newest finished ensemble; none has a recorded score")
    raise FileNotFoundError(f"no trained run in {models}: run `make best` or `make train` (or `make demo`) first")
