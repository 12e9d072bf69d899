"""Which run folder a command takes when it is not told exactly."""

from __future__ import annotations

from pathlib import Path

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


def resolve_run(models_dir: str | Path, run: str | None = None, name: str | None = None, single: bool = False,
                say=print) -> Path:
    """A run folder: `run` (a path, or an id under models_dir); else the newest run called `name`;
    else the finished run or ensemble with the best recorded score (best_scored: said through `say`,
    with why); else the newest tuned run (`make train-best`); else the newest run.
    single: a folder of one model is wanted (to report on, to export), so an ensemble of one member
    (the fast and best-single recipes) stands for that member, and larger ensembles are passed over."""
    models = Path(models_dir)
    remove_killed_runs(models)
    if run:
        for candidate in (Path(run), models / run):
            if is_run(candidate) or is_ensemble(candidate):
                return (sole_member(candidate) or candidate) if single else candidate
        raise FileNotFoundError(f"no run {run!r}: expected a folder with {MODEL_FILE} or {ENSEMBLE_FILE}, "
                                f"as a path or under {models}")
    runs = sorted(p for p in models.iterdir() if is_run(p)) if models.is_dir() else []
    if name:
        runs = [p for p in runs if p.name.endswith(f"-{name}")]
    elif (picked := best_scored(models, single)) is not None:
        say(f"run: {picked[0]} ({picked[1]}; RUN=<id> picks another)")
        return picked[0]
    if not runs and not name:  # nothing scored and no single run: the newest ensemble or recipe
        ensembles = sorted((p for p in models.iterdir() if is_ensemble(p) and (single is False or sole_member(p))),
                           key=lambda p: (p / ENSEMBLE_FILE).stat().st_mtime) if models.is_dir() else []
        if ensembles:
            picked = sole_member(ensembles[-1]) if single else ensembles[-1]
            say(f"run: {picked} (the newest finished ensemble; none has a recorded score; RUN=<id> picks another)")
            return picked
    if not runs:
        what = f"run named {name!r}" if name else "trained run"
        raise FileNotFoundError(f"no {what} in {models}: run `make best` or `make train` (or `make demo`) first")
    tuned = [p for p in runs if p.name.endswith(f"-{TUNED_NAME}")]
    return (tuned or runs)[-1]  # ids start with a timestamp, so the last is the newest


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


def best_scored(models_dir: str | Path, single: bool = False) -> tuple[Path, str] | None:
    """The finished run or ensemble under models_dir with the highest recorded score, and a sentence
    saying why; runs of the competition's data before demo ones. None when none has a score."""
    folder = Path(models_dir)
    scored = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith(".") or not (is_run(path) or is_ensemble(path)):
            continue
        target = (sole_member(path) if is_ensemble(path) else path) if single else path
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
    return target, f"picked {source.name}{via}: {among}, {what} {score:.5f}"

