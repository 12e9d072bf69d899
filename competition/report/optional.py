"""The report's sections that only some runs have: a tuned run's search, an exported run's edge check.

Both read files that other steps write (models/search-*/, RUN/tflite/check.json) and tolerate their
absence: a missing file means a missing section or a sentence that says so, never a failed report.
"""

from __future__ import annotations

from pathlib import Path

from competition.config import ROOT
from competition.data.reading import read_csv, read_json
from competition.report import figures
from competition.report.page import Section, key_values, table


def local_path(recorded: str) -> Path:
    """A path from a run's config: as recorded (relative to where it ran), else under the project root."""
    path = Path(recorded)
    if path.is_absolute() or path.exists() or not (ROOT / path).exists():
        return path
    return ROOT / path


def tuning_section(config: dict, save) -> Section | None:
    """For a run trained from a search's best hyperparameters: the trials and the best values."""
    if not config.get("hparams"):
        return None
    best_file = local_path(config["hparams"])
    search = best_file.parent
    section = Section("tuning", "Tuning", f"This run trained the best hyperparameters of {search}.")
    results_file = search / "results.csv"
    if results_file.is_file():
        results = read_csv(results_file, dtype={"trial": str})
        section.figures.append((save(figures.tuning_trials(results), "tuning_trials.png"),
                                f"val_loss of every trial in {results_file}; lower is better."))
        top = results.sort_values("val_loss").head(10)
        section.html += "<h3>The 10 best trials</h3>" + table(top.to_dict("records"))
    else:
        section.text += f" Its trials are not here ({results_file} is missing)."
    best = read_json(best_file) if best_file.is_file() else {}
    values = best.get("hyperparameters") or config.get("hyperparameters") or {}
    if values:
        facts = {**values, **best.get("model", {})}
        if "val_loss" in best:
            facts["search val_loss"] = (f"{best['val_loss']:.5f} "
                                        f"(trial {best.get('trial', '?')}, {best.get('tuner', '?')})")
        section.html += "<h3>Best hyperparameters</h3>" + key_values(facts)
    return section


def find_edge_check(folder: Path, models_dir: Path) -> Path | None:
    """The edge check's JSON table for this run: in the run's tflite/ or edge/ folder, or models/edge/."""
    own = [folder / "tflite" / "check.json", folder / "check_edge.json",
           *sorted((folder / "edge").glob("*check*.json"))]
    for path in own:
        if path.is_file():
            return path
    for path in sorted((models_dir / "edge").glob("*check*.json")):
        try:
            if read_json(path).get("run") == folder.name:
                return path
        except (ValueError, AttributeError):
            continue
    return None


def edge_section(folder: Path, models_dir: Path) -> Section | None:
    path = find_edge_check(folder, models_dir)
    if path is None:
        return None
    section = Section("edge", "Edge variants", f"The check of the exported models against the Keras model ({path}).")
    try:
        check = read_json(path)
    except ValueError as err:
        section.text += f" It could not be read: {err}."
        return section
    rows = check.get("rows") if isinstance(check, dict) else check
    if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
        section.html += table(rows)
    if isinstance(check, dict):
        section.html += key_values({key: value for key, value in check.items() if key != "rows"})
    return section
