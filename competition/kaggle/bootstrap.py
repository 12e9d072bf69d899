"""What runs on Kaggle: the kernel script that `make kaggle-best` pushes is this file's source, then
its settings (the recipe, the project's code as a base64 zip, the versions it was tested with) and a
call of `run` (competition/kaggle/kernel.py writes it). The standard library only: it runs before
the project is unpacked, on whatever Kaggle's image has.

In the kernel it
1. copies everything it prints into <working>/kaggle-best.log (Kaggle's own log has it too), names the
   GPUs nvidia-smi lists, and stops at once, in one line, when there is none (rather than train on
   the CPU against the GPU quota);
2. checks the image's TensorFlow, Keras, numpy, pandas and scikit-learn against ACCEPTED: outside a
   range it stops at once, in one line (not a traceback twenty minutes in); inside one but not the
   tested pin, one line says so and it runs on Kaggle's own (no pip install: no internet needed,
   no minutes of GPU quota spent installing, and the CUDA build that matches Kaggle's drivers);
3. finds the competition's data where Kaggle mounts it (find_input: <root>/input/competitions/<slug>,
   then the older <root>/input/<slug>, then any folder under <root>/input holding train.csv),
   unpacks the project and runs `python -m competition.best --recipe <name> --gpus 0,1` on it, as
   `make best` does, into <working>/recipe-<name>/: on Kaggle's two T4s (machine_shape NvidiaTeslaT4)
   the members train two at a time, one per GPU, each in a process that sees only its own;
4. with the pair models asked (`make kaggle-best ARGS=--pair_models`), runs `python -m
   competition.train_pairs` on the same data into <working>/pair-models/;
5. lifts the recipe folder's files into <working>/ (submission.csv at the top, where Kaggle looks for a
   notebook's submission) and writes kaggle_run.json: what ran, on which versions.
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = "/kaggle"  # Kaggle's tree: input/ (the attached sources, read-only), working/ (the outputs)
# Tests only: the fake Kaggle's runner sets these (nothing on Kaggle does): its stand-in for /kaggle, and
# how many GPUs to pretend nvidia-smi listed (its CPU then trains in their place).
ROOT_VARIABLE = "DIGITS_FAKE_KAGGLE_ROOT"
FAKE_GPUS_VARIABLE = "DIGITS_FAKE_GPUS"
COMPETITION = "digit-recognizer"
LOG_FILE = "kaggle-best.log"
TRIAL_PAIR_EXAMPLES = 2_000  # with --epochs (a trial), the pair models' pieces: minutes, not the presets' hour
RUN_FILE = "kaggle_run.json"  # in the output: the recipe, the code's digest, the versions it ran on
PREFIX = "kaggle-best:"
# The versions the project runs on: [lowest, first too high). Keras 3 on TensorFlow 2.16+ (where Keras 3
# is TensorFlow's own); below the tested pins (requirements.txt) it is untested, and the log says so.
ACCEPTED = {
    "tensorflow": ((2, 16), (3, 0)),
    "keras": ((3, 5), (4, 0)),
    "numpy": ((1, 26), (3, 0)),
    "pandas": ((2, 0), (4, 0)),
    "scikit-learn": ((1, 3), (2, 0)),
}


def version_tuple(text: str) -> tuple[int, ...]:
    """'2.18.0rc1' -> (2, 18, 0): the leading numbers."""
    found = re.match(r"\d+(\.\d+)*", text)
    return tuple(int(part) for part in found.group(0).split(".")) if found else ()


# Other distributions of the same package: TensorFlow's CPU build (the tests' Kaggle-like environment).
ALSO_NAMED = {"tensorflow": ("tensorflow-cpu",)}


def installed_versions(names=tuple(ACCEPTED)) -> dict[str, str | None]:
    found = {}
    for name in names:
        found[name] = None
        for distribution in (name, *ALSO_NAMED.get(name, ())):
            try:
                found[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                pass
    return found


def check_versions(installed: dict[str, str | None], tested: dict[str, str]) -> tuple[list[str], list[str]]:
    """What stops the run (a package missing or outside ACCEPTED) and what is only said (inside, untested)."""
    errors, notes = [], []
    for name, (low, high) in ACCEPTED.items():
        have = installed.get(name)
        wanted = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
        if have is None:
            errors.append(f"{name} is not installed (the project needs {name}{wanted})")
        elif not low <= version_tuple(have) < high:
            errors.append(f"{name} {have} (the project needs {name}{wanted})")
        elif tested.get(name) and have != tested[name]:
            notes.append(f"{name} {have}")
    return errors, notes


class Tee(io.TextIOBase):
    """Writes to the stream and to the log file, line-buffered, so the log holds what Kaggle's holds."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.stream.flush()
        self.log.write(text)
        self.log.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()


def say(text: str) -> None:
    print(f"{PREFIX} {text}", flush=True)


def unpack(project_zip_b64: str, dest: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(project_zip_b64))) as zf:
        zf.extractall(dest)
    return dest


def kaggle_root() -> Path:
    return Path(os.environ.get(ROOT_VARIABLE) or ROOT)


def find_input(input_root: Path, slug: str = COMPETITION) -> Path | None:
    """The competition's folder under input_root: competitions/<slug> (how Kaggle mounts a competition
    now), <slug> (before), else the first folder holding train.csv, links followed (mounts may be links)."""
    for folder in (input_root / "competitions" / slug, input_root / slug):
        if (folder / "train.csv").is_file():
            return folder
    for folder, subfolders, files in os.walk(input_root, followlinks=True):
        subfolders.sort()
        if "train.csv" in files:
            return Path(folder)
    return None


def lift(folder: Path, working: Path) -> None:
    """folder's entries into working (same file system: renames), then folder itself goes."""
    for entry in sorted(folder.iterdir()):
        os.replace(entry, working / entry.name)
    folder.rmdir()


def list_gpus() -> list[str]:
    """The GPUs nvidia-smi lists, one line each (name, compute capability, memory); none without it."""
    faked = os.environ.get(FAKE_GPUS_VARIABLE, "")
    if faked.isdigit():
        return [f"faked GPU {i} (the tests' fake Kaggle: the CPU trains)" for i in range(int(faked))]
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else []


def run_step(command: list[str], project: Path) -> int:
    """One of the project's commands, run in the unpacked project, its lines passed on as they come;
    its exit status."""
    say(f"$ python -m {' '.join(command[3:])}")
    env = {**os.environ, "PYTHONPATH": str(project), "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    for line in process.stdout:
        sys.stdout.write(line)
    return process.wait()


def run_recipe(recipe: str, project_zip_b64: str, code_digest: str, tested: dict[str, str], epochs: int | None = None,
        root: Path | None = None, pair_models: bool = False) -> int:
    """The kernel's work, in the tree at root (default: kaggle_root()); its exit status (non-zero: Kaggle
    marks the run ERROR). pair_models: then the reader's pair models, on the same data, into
    <working>/pair-models/ (with epochs, a trial: that many epochs of TRIAL_PAIR_EXAMPLES pieces)."""
    root = root or kaggle_root()
    working = root / "working"
    working.mkdir(parents=True, exist_ok=True)
    log = open(working / LOG_FILE, "a", encoding="utf-8")
    # The streams of the moment: a notebook's cell output on Kaggle (its log and __results__.html), else the terminal.
    sys.stdout, sys.stderr = Tee(sys.stdout, log), Tee(sys.stderr, log)
    start = time.monotonic()
    gpus = list_gpus()
    said = "; ".join(gpus) or "none"
    say(f"recipe {recipe}" + (f", {epochs} epochs a member (a trial)" if epochs else "")
        + f", project code {code_digest}, Python {platform.python_version()}, {len(gpus)} GPU{'s' * (len(gpus) != 1)}: {said}")
    if not gpus:
        say("error: this kernel sees no GPU (nvidia-smi lists none): stopped rather than train on the CPU against the "
            "GPU quota; the kernel's accelerator must be on (machine_shape NvidiaTeslaT4) and the week's quota not spent")
        return 5
    installed = installed_versions()
    errors, notes = check_versions(installed, tested)
    if errors:
        say(f"error: Kaggle's image has {'; '.join(errors)}: pin an older image in the kernel's settings, or "
            "update the project's ACCEPTED ranges (competition/kaggle/bootstrap.py) once it is tested there")
        return 3
    say("running on Kaggle's own " + ", ".join(f"{name} {have}" for name, have in installed.items())
        + (f" (tested with {', '.join(f'{n} {tested[n]}' for n in tested)}; untested here: {', '.join(notes)})"
           if notes else " (the tested pins)"))

    data = find_input(root / "input")
    if data is None:
        say(f"error: no train.csv under {root / 'input'} (looked in competitions/{COMPETITION}, {COMPETITION}, then "
            f"every folder): attach the competition to the kernel (competition_sources: [\"{COMPETITION}\"])")
        return 4
    project = unpack(project_zip_b64, Path(tempfile.mkdtemp(prefix="digits-project-")))
    python = [sys.executable, "-u", "-m"]
    steps = [("make best", [*python, "competition.best", "--recipe", recipe, "--data_dir", str(data),
                            "--models_dir", str(working), "--gpus", ",".join(map(str, range(len(gpus)))),
                            *(["--epochs", str(epochs)] if epochs else [])])]
    if pair_models:  # one process, on the first GPU: the two models one after the other
        steps.append(("make pair-models", [*python, "competition.train_pairs", "--data_dir", str(data),
                                           "--models_dir", str(working),
                                           *(["--epochs", str(epochs), "--examples", str(TRIAL_PAIR_EXAMPLES)]
                                             if epochs else [])]))
    for what, command in steps:
        code = run_step(command, project)
        minutes = (time.monotonic() - start) / 60
        if code:
            say(f"error: {what} stopped with exit status {code} after {minutes:.1f} min (its last lines above)")
            return code
    lift(working / f"recipe-{recipe}", working)
    (working / RUN_FILE).write_text(json.dumps({
        "recipe": recipe, "epochs": epochs, "pair_models": pair_models, "code": code_digest, "versions": installed,
        "python": platform.python_version(), "gpu": said, "gpus": len(gpus), "minutes": round(minutes, 1)}, indent=2)
        + "\n")
    shutil.rmtree(project, ignore_errors=True)
    say(f"done in {minutes:.1f} min: submission.csv, metrics.json, the members' run folders"
        + (", the pair models' runs in pair-models/" if pair_models else "") + f" and {LOG_FILE} in {working}")
    return 0
