"""`make kaggle-best`'s library: a recipe trained in a Kaggle script kernel on Kaggle's GPU, brought back.

The kernel is one code file: competition/kaggle/bootstrap.py's source, then the project's own
packages (common/ and competition/, zipped, base64) and the recipe to run. One file rather than a
private dataset: a push is one call and nothing else to create, version or wait for; each kernel
version holds exactly the code it ran (the source tab on Kaggle shows it); no dataset is left behind
in the account. The competition's data is attached by `competition_sources`; GPU on, internet off
(the kernel runs on Kaggle's own TensorFlow, bootstrap.py says why), private.

The steps, each one call of the client (competition/kaggle/client.py):
    plan      minutes on Kaggle's two T4s, two members at a time, against the GPU quota left (plan.py)
    push      kernel-metadata.json + kaggle_best.py; the pushed version is remembered in
              models/.kaggle-best/<recipe>.json, so Ctrl-C while watching leaves it running and the
              same command attaches to it instead of pushing a second one
    watch     its status and its log's last line, every poll_s
    fetch     its output files into a hidden folder, checked, then renamed to models/recipe-<name>-kaggle/
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from common.digits_csv import SUBMISSION_FILE
from common.errors import ProjectError
from common.writing import write_json, write_text
from competition.config import PAIR_RUNS_DIR, ROOT, Recipe
from competition.data.reading import read_json
from competition.kaggle import bootstrap, plan
from competition.kaggle.client import COMPETITION, KaggleClient, KaggleError
from competition.runs.layout import ENSEMBLE_FILE, METRICS_FILE

SCRIPT_FILE = "kaggle_best.py"
METADATA_FILE = "kernel-metadata.json"  # the name the kaggle client reads
PACKED = ("common", "competition", "edge")  # what trains (the pair models: edge's generator); tests/, docs/ stay home
STATE_FOLDER = ".kaggle-best"  # under the models folder: one <recipe>.json per kernel pushed and not yet fetched
POLL_S = 30.0
QUEUED_NOTICE_S = 15 * 60  # QUEUED this long (API pushes are known to stick there): the kernel's URL, what to do
LOG_TAIL = 15  # lines of a failed kernel's log shown
# Lines Kaggle's notebook runner adds to a log (nbconvert's, Jupyter's warnings): never a reason.
JUPYTER_LINE = re.compile(r"\[NbConvertApp\]|__results__\.html|__notebook__\.ipynb|traitlets")
MAX_CODE_BYTES = 700_000  # the largest code file known to pass a push (Kaggle does not document its limit)
HEARTBEAT = 10  # polls without news between two progress lines


def slug_of(recipe: Recipe) -> str:
    return f"digits-kaggle-best-{recipe.name}"


def output_folder(recipe: Recipe, models_dir: str | Path) -> Path:
    return Path(models_dir) / f"recipe-{recipe.name}-kaggle"


# Building the kernel


def project_zip(root: Path = ROOT) -> tuple[str, str]:
    """The project's packages (PACKED, .py files) as a base64 zip, and a short digest of their content."""
    buffer, digest = io.BytesIO(), hashlib.sha256()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in PACKED:
            for path in sorted((root / package).rglob("*.py")):
                name = path.relative_to(root).as_posix()
                if "/tests/" in name:
                    continue
                data = path.read_bytes()
                digest.update(name.encode() + b"\0" + data)
                # A fixed date: the same code makes the same zip.
                zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return base64.b64encode(buffer.getvalue()).decode(), digest.hexdigest()[:12]


def tested_pins(requirements: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """requirements.txt's pins of the packages the kernel checks (bootstrap.ACCEPTED)."""
    pins = {}
    for line in requirements.read_text().splitlines():
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if name in bootstrap.ACCEPTED and version:
            pins[name] = version.strip()
    return pins


def kernel_script(recipe: Recipe, epochs: int | None = None, root: Path = ROOT, pair_models: bool = False
                  ) -> tuple[str, str]:
    """The kernel's code file and the digest of the code it carries; pair_models: it also trains the
    reader's pair models after the recipe."""
    packed, digest = project_zip(root)
    lines = "\n".join(f'    "{packed[i:i + 100]}"' for i in range(0, len(packed), 100))
    footer = f'''

# Written by `make kaggle-best` (competition/kaggle/kernel.py): what this kernel runs.
RECIPE = {recipe.name!r}
EPOCHS = {epochs!r}
PAIR_MODELS = {pair_models!r}
CODE_DIGEST = {digest!r}
TESTED = {tested_pins(root / "requirements.txt")!r}
PROJECT_ZIP = (  # {", ".join(PACKED)} of the checkout, zipped, base64
{lines}
)

if __name__ == "__main__":  # as a script, and as the one cell of the notebook Kaggle makes of it
    code = run_recipe(RECIPE, PROJECT_ZIP, CODE_DIGEST, TESTED, EPOCHS, pair_models=PAIR_MODELS)
    if code:
        sys.exit(code)
'''
    return Path(bootstrap.__file__).read_text() + footer, digest


def kernel_metadata(username: str, recipe: Recipe, accelerator: str = plan.DEFAULT_GPU, docker_image: str | None = None
                    ) -> dict:
    """kernel-metadata.json, as `kaggle kernels init` writes it (booleans as the strings it writes);
    docker_image pins Kaggle's image (default: the latest)."""
    slug = slug_of(recipe)
    return {**({"docker_image": docker_image} if docker_image else {}),
        "id": f"{username}/{slug}", "title": f"digits kaggle-best {recipe.name}",  # Kaggle slugifies it to the id
        "code_file": SCRIPT_FILE, "language": "python", "kernel_type": "script",
        "is_private": "true", "enable_gpu": "true", "enable_tpu": "false", "enable_internet": "false",
        "machine_shape": accelerator, "dataset_sources": [], "competition_sources": [COMPETITION],
        "kernel_sources": [], "model_sources": [],
    }


def write_kernel_folder(folder: Path, username: str, recipe: Recipe, epochs: int | None = None,
                        accelerator: str = plan.DEFAULT_GPU, docker_image: str | None = None,
                        pair_models: bool = False) -> str:
    """The folder `kaggle kernels push` takes; the digest of the code in it."""
    script, digest = kernel_script(recipe, epochs, pair_models=pair_models)
    size = len(script.encode())
    if size > MAX_CODE_BYTES:
        raise ProjectError(f"the kernel's code file would be {size / 1000:,.0f} kB, over the {MAX_CODE_BYTES / 1000:,.0f} kB "
                           f"Kaggle is known to take: not pushed (only .py files of {', '.join(PACKED)} travel; "
                           "keep large files out of them)")
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / SCRIPT_FILE, script)
    write_json(folder / METADATA_FILE, kernel_metadata(username, recipe, accelerator, docker_image))
    return digest


# The pushed kernel, remembered


def state_path(recipe: Recipe, models_dir: str | Path) -> Path:
    return Path(models_dir) / STATE_FOLDER / f"{recipe.name}.json"


def push(client: KaggleClient, recipe: Recipe, models_dir: str | Path, epochs: int | None, accelerator: str,
         timeout_s: int, docker_image: str | None = None, pair_models: bool = False) -> dict:
    """Push the kernel; what Kaggle answered (its version and ref) remembered in the state file."""
    with tempfile.TemporaryDirectory(prefix="kaggle-best-push-") as folder:
        digest = write_kernel_folder(Path(folder), client.username, recipe, epochs, accelerator, docker_image,
                                     pair_models)
        response = client.push_kernel(Path(folder), timeout_s)
    if not response.version_number:
        raise KaggleError(f"push: Kaggle took the kernel but named no version (ref {response.ref!r}): see "
                          f"{response.url or 'its page on Kaggle'}")
    state = {"slug": f"{client.username}/{slug_of(recipe)}", "version": response.version_number,
             "ref": response.ref, "url": response.url, "recipe": recipe.name, "epochs": epochs,
             "pair_models": pair_models, "code": digest,
             "accelerator": accelerator, "docker_image": docker_image, "timeout_s": timeout_s,
             "pushed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json(state_path(recipe, models_dir), state)
    print(f"kaggle-best: pushed version {state['version']} of {state['slug']} (ref {state['ref']}, code {digest}, "
          f"stopped by Kaggle after {plan.hours(timeout_s / 3600)}"
          + (f", image {docker_image}" if docker_image else "") + f"): {state['url']}", flush=True)
    return state


# Watching, fetching


def log_lines(output) -> list[str]:
    """The kernel's log (the JSON list Kaggle keeps: {stream_name, time, data}) as text lines."""
    try:
        events = json.loads(output.log or "[]")
    except json.JSONDecodeError:  # not the JSON Kaggle keeps: its lines as they are
        return [line for line in (output.log or "").splitlines() if line.strip()]
    text = "".join(event.get("data", "") for event in events if isinstance(event, dict))
    return [line for line in text.splitlines() if line.strip()]


def watch(client: KaggleClient, state: dict, poll_s: float = POLL_S) -> str:
    """Follow the pushed version until its run ends; its last status. While it runs, its log's lines
    as Kaggle writes them (the client's log stream; Jupyter's own left out); where the stream is not
    to be had, a line when the status or the log's last line changes, and every HEARTBEAT polls when
    neither does. Once, after QUEUED_NOTICE_S in QUEUED, what to do."""
    start, shown, quiet, queued_at, told = time.monotonic(), None, 0, None, False
    version = state.get("version")
    streamed, streaming = 0, True
    while True:
        status, failure = client.kernel_status(state["slug"], version)
        if status not in ("QUEUED", "RUNNING", "NEW_SCRIPT", "CANCEL_REQUESTED"):
            return status
        if status == "QUEUED":
            queued_at = queued_at or time.monotonic()
            if not told and time.monotonic() - queued_at >= QUEUED_NOTICE_S:
                print(f"kaggle-best: still QUEUED after {QUEUED_NOTICE_S / 60:.0f} min: Kaggle has not started version "
                      f"{version}. Open {state['url']}: if it shows no running session, cancel it there (or "
                      "'Save Version' to run it from the page), then run this again with --new; Ctrl-C stops "
                      "the watching only", flush=True)
                told = True
        polled = status == "RUNNING" and not streaming  # a stream shows the log itself
        lines = log_lines(client.kernel_output(state["slug"], version, page_size=1)) if polled else []
        now = (status, lines[-1][:160] if lines else "")
        quiet = 0 if now != shown else quiet + 1
        if quiet % HEARTBEAT == 0 and not (streaming and quiet):
            elapsed = time.monotonic() - start
            print(f"kaggle-best: {status} {int(elapsed // 60)}m {int(elapsed % 60):02d}s"
                  + (f": {now[1]}" if now[1] else ""), flush=True)
        shown = now
        if status == "RUNNING" and streaming:
            try:
                streamed = follow_log(client, state, streamed)
            except KaggleError as err:  # no stream here: the status lines go on
                print(f"kaggle-best: no live log ({err}); its status every {poll_s:g}s instead", flush=True)
                streaming = False
        time.sleep(poll_s)


def follow_log(client: KaggleClient, state: dict, skip: int) -> int:
    """Print the running version's log lines as they come, after the `skip` already printed (a stream
    started again replays from the start); the lines seen in all, once the stream ends."""
    seen = 0
    for line in client.kernel_log_stream(state["slug"], state.get("version")):
        if not line.strip() or JUPYTER_LINE.search(line):
            continue
        seen += 1
        if seen > skip:
            print(f"kaggle-best: | {line[:200]}", flush=True)
    return max(seen, skip)


def failure_reason(lines: list[str], failure: str) -> str:
    """Why a kernel failed, in one line: the kit's own error line, else Kaggle's failure message, else the
    kit's last line. Never Jupyter's: a notebook's log ends with nbconvert writing __results__.html."""
    ours = [line[len(bootstrap.PREFIX):].strip() for line in lines if line.startswith(bootstrap.PREFIX)]
    errors = [line[len("error:"):].strip() for line in ours if line.startswith("error:")]
    if errors:
        return errors[-1]
    if failure:
        return failure
    return f"its last line: {ours[-1]}" if ours else "no reason given and no line of the kit in its log"


def failed(client: KaggleClient, state: dict, status: str) -> KaggleError:
    """The failed kernel's log's last lines (on stderr, Jupyter's own left out), and the one line that
    says what failed."""
    _, failure = client.kernel_status(state["slug"], state.get("version"))
    lines = [line for line in log_lines(client.kernel_output(state["slug"], state.get("version"), page_size=1))
             if not JUPYTER_LINE.search(line)]
    for line in lines[-LOG_TAIL:]:
        print(f"  | {line}", file=sys.stderr)
    why = failure_reason(lines, failure)
    return KaggleError(f"kernel {state['slug']} version {state['version']} ended {status} on Kaggle: {why} "
                       f"(its log: {state['url']}; the next run pushes a new version)")


def fetch(client: KaggleClient, state: dict, target: Path) -> list[str]:
    """The kernel's output files into target, whole: a hidden folder beside it, checked, then renamed
    (a target already there is replaced only then). The files' names."""
    staging = target.with_name(f".{target.name}.download")
    shutil.rmtree(staging, ignore_errors=True)
    names, token = [], ""
    try:
        while True:
            page = client.kernel_output(state["slug"], state.get("version"), token)
            for item in page.files or []:
                name = item.file_name
                parts = Path(name).parts
                if Path(name).is_absolute() or ".." in parts or not parts:
                    raise KaggleError(f"kernel output: refusing the file name {name!r} (outside the folder)")
                if parts[0].startswith("."):  # the recipe folder's lock file, lifted with it
                    continue
                client.download_url(item.url, staging / name, f"download {name}")
                names.append(name)
            token = page.next_page_token or ""
            if not token:
                break
        missing = [n for n in (SUBMISSION_FILE, METRICS_FILE, ENSEMBLE_FILE) if not (staging / n).is_file()]
        if missing:
            raise KaggleError(f"kernel {state['slug']} version {state['version']} completed without "
                              f"{', '.join(missing)} in its output: see its log at {state['url']}")
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def place_pair_runs(target: Path, models_dir: str | Path) -> list[Path]:
    """The pair runs a kernel trained (target/pair-models/<id>/, fetched whole), renamed into
    models_dir/pair-models/ (the same file system), where `make tflite` looks for them; the runs placed."""
    fetched, home = target / PAIR_RUNS_DIR, Path(models_dir) / PAIR_RUNS_DIR
    placed = []
    for run in sorted(p for p in fetched.iterdir() if p.is_dir()) if fetched.is_dir() else []:
        home.mkdir(parents=True, exist_ok=True)
        placed.append(run.rename(home / run.name))
    shutil.rmtree(fetched, ignore_errors=True)
    return placed


def kaggle_best(recipe: Recipe, models_dir: str | Path, accelerator: str = plan.DEFAULT_GPU, epochs: int | None = None,
                force: bool = False, new: bool = False, poll_s: float = POLL_S, client: KaggleClient | None = None,
                docker_image: str | None = None, pair_models: bool = False) -> Path:
    """Push (or attach to) the recipe's kernel, watch it, fetch its output; the installed folder. With
    pair_models the kernel also trains the reader's pair models, placed in models_dir/pair-models/."""
    client = client or KaggleClient()
    path = state_path(recipe, models_dir)
    state = read_json(path) if path.is_file() and not new else None
    if state:
        print(f"kaggle-best: attaching to version {state['version']} of {state['slug']}, pushed "
              f"{state['pushed_at']} (code {state['code']}): {state['url']} (--new pushes another)", flush=True)
    else:
        planned, gpu = plan.plan_minutes(recipe, accelerator, epochs, pair_models), plan.GPUS[accelerator]
        print(f"kaggle-best: recipe {recipe.name} ({recipe.summary}) on {gpu.describe()} ({accelerator}): "
              f"{planned.describe(gpu)}", flush=True)
        plan.check_quota(client, planned.session_minutes, gpu.describe(), planned.what, force)
        state = push(client, recipe, models_dir, epochs, accelerator, plan.session_timeout_s(planned.session_minutes),
                     docker_image, pair_models)
    status = watch(client, state, poll_s)
    if status != "COMPLETE":
        path.unlink(missing_ok=True)
        raise failed(client, state, status)
    target = output_folder(recipe, models_dir)
    names = fetch(client, state, target)
    placed = place_pair_runs(target, models_dir)
    path.unlink(missing_ok=True)
    metrics = read_json(target / METRICS_FILE)
    ran = read_json(target / bootstrap.RUN_FILE) if (target / bootstrap.RUN_FILE).is_file() else {}
    estimate = (metrics.get("estimate") or {}).get("accuracy")
    print(f"kaggle-best: {len(names)} files -> {target}; {metrics.get('train_minutes')} min of training, "
          f"{ran.get('minutes')} min in all; GPU: {ran.get('gpu', 'not said')}"
          + (f"; expected accuracy about {estimate:.5f}" if estimate else ""), flush=True)
    if placed:
        print(f"kaggle-best: the pair models {', '.join(run.name for run in placed)} -> {placed[0].parent} "
              "(make tflite places them beside an export of a run of the same data)", flush=True)
    print(f"kaggle-best: send it with `make submit RUN={target.name}` (plain `make submit` picks the best "
          "recorded score)", flush=True)
    return target

