"""CV folds and ensemble members as tasks on a Ray cluster started by the test: a head without CPUs
and two nodes of one CPU each (ray.cluster_utils.Cluster), one epoch on the demo set."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ray.cluster_utils import Cluster
from test_faults import usage_error_line

from competition import best, cv, ensemble, train_pairs
from competition import predict as submission
from competition.config import COMPUTE_PRECISIONS, PAIR_DESIGNS
from competition.runs.layout import is_run
from competition.training.cluster import connection
from competition.training.cluster import models as ray_cluster
from competition.training import hardware

ROOT = Path(__file__).resolve().parent.parent
RUN_FILES = ["config.json", "data_fingerprint.json", "history.csv", "metrics.json", "model.keras", "train.log"]


def quick(demo_dir, models_dir):
    return ["--data_dir", str(demo_dir), "--models_dir", str(models_dir), "--epochs", "1", "--batch_size", "128",
            "--learning_rate", "0.003"]


def two_nodes() -> Cluster:
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # the driver's node trains nothing
    workers = [nodes.add_node(num_cpus=1) for _ in range(2)]
    nodes.wait_for_nodes()
    nodes.workers = workers
    return nodes


@pytest.fixture(scope="module")
def cluster():
    nodes = two_nodes()
    yield nodes
    nodes.shutdown()


def runs_in(folder: Path) -> list[Path]:
    """The finished runs in folder (not a hidden .tmp-<id> being written)."""
    return sorted(p for p in folder.iterdir() if is_run(p))


def files_of(run: Path) -> list[str]:
    """A run's files, less the predictions that scoring caches in it."""
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and p.parent.name != "predictions")


def test_a_cv_on_the_cluster_writes_what_local_processes_write_and_continues_here(demo_dir, tmp_path, cluster, capfd):
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "c", "--cluster", cluster.address]) == 0
    out = capfd.readouterr().out
    assert "cluster: 3 nodes, 2 CPUs, no GPU" in out
    for fold in ("fold-1", "fold-2"):  # the driver's line as it queues and ends; the node's own lines, named
        assert f"{fold}: queued (of 2" in out and f"{fold}: done on " in out
        assert any(line.startswith(f"({fold} pid=") and "epoch 1/1" in line for line in out.splitlines())
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "l", "--jobs", "2"]) == 0
    capfd.readouterr()

    on_cluster, here = (json.loads((tmp_path / f"cv-{name}" / "cv.json").read_text()) for name in ("c", "l"))
    assert on_cluster.keys() == here.keys() and [f.keys() for f in on_cluster["folds"]] == [f.keys() for f in here["folds"]]
    for mine, theirs in zip(on_cluster["folds"], here["folds"]):
        cluster_run, local_run = tmp_path / "cv-c" / mine["runs"][0], tmp_path / "cv-l" / theirs["runs"][0]
        assert files_of(cluster_run) == files_of(local_run) == sorted([*RUN_FILES, "rows.npz"])
        with np.load(cluster_run / "rows.npz") as a, np.load(local_run / "rows.npz") as b:  # the same folds
            np.testing.assert_array_equal(a["validation"], b["validation"])
        config = json.loads((cluster_run / "config.json").read_text())
        # The node resolved "auto" for itself and says on what; the paths are the driver's, not the node's.
        assert config["precision"] in COMPUTE_PRECISIONS and config["hardware"]["threads"] == 1
        assert config["models_dir"] == str(tmp_path / "cv-c") and config["data_dir"] == str(demo_dir)
        assert "epoch 1/1" in (cluster_run / "train.log").read_text()
        metrics = json.loads((cluster_run / "metrics.json").read_text())
        assert metrics["validation"]["accuracy"] == pytest.approx(mine["accuracy"][0])
    assert json.loads((tmp_path / "cv-c" / "cv_config.json").read_text())["precision"] == "auto"
    assert json.loads((tmp_path / "cv-l" / "cv_config.json").read_text())["precision"] in COMPUTE_PRECISIONS
    assert not [p for p in (tmp_path / "cv-c").iterdir() if p.name.startswith(".tmp-")]

    # Begun on the cluster (each node its own precision), it continues on this machine as one more node.
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "c"]) == 0
    assert capfd.readouterr().out.count("already trained, reusing") == 2


def test_a_cv_begun_here_continues_on_the_cluster_in_the_precision_it_recorded(demo_dir, tmp_path, cluster, capfd):
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--folds", "1", "--name", "r"]) == 0
    recorded = json.loads((tmp_path / "cv-r" / "cv_config.json").read_text())["precision"]
    assert recorded in COMPUTE_PRECISIONS
    assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "r", "--cluster", cluster.address]) == 0
    out = capfd.readouterr().out
    assert "fold-1: already trained, reusing" in out and "fold-2: done on" in out
    fold_2 = next(p for p in runs_in(tmp_path / "cv-r") if p.name.endswith("-fold-2"))
    assert json.loads((fold_2 / "config.json").read_text())["precision"] == recorded  # on every node: never mixed
    assert json.loads((tmp_path / "cv-r" / "cv_config.json").read_text())["precision"] == recorded


@pytest.mark.parametrize("requested, recorded, on_cluster, expected", [
    ("float32", None, True, "float32"),  # asked for: everywhere
    ("float32", "mixed_bfloat16", False, "float32"),  # (and the record check then refuses the change)
    ("auto", None, False, "HERE"),  # new work here: this machine's, as before clusters
    ("auto", None, True, "auto"),  # new work on a cluster: each node its own
    ("auto", "auto", False, "auto"),  # begun on a cluster, continued here: this machine is one more node
    ("auto", "auto", True, "auto"),
    ("auto", "mixed_bfloat16", True, "mixed_bfloat16"),  # begun on one machine: its precision on every node
    ("auto", "float32", False, "HERE"),  # here: compared with the record, refused if it differs
])
def test_the_precision_resumable_work_records(requested, recorded, on_cluster, expected):
    here = hardware.Setup(hardware.Hardware("x", frozenset(), 2, 2), "HERE", "test", 2)
    assert hardware.work_precision(requested, here, recorded, on_cluster) == expected


def test_an_ensemble_on_the_cluster_is_an_ordinary_ensemble_folder(demo_dir, tmp_path, cluster, trained_run, capfd):
    assert ensemble.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "e", "--cluster", cluster.address]) == 0
    folder = tmp_path / "ensemble-e"
    # by number: an id begins with the second its member began, and on a busy cluster member 2 may begin first
    members = sorted(runs_in(folder), key=lambda p: int(p.name.rsplit("-", 1)[-1]))
    assert [p.name.rsplit("-", 2)[-2:] for p in members] == [["member", "1"], ["member", "2"]]
    for member in members:  # as a run trained here is written
        assert files_of(member) == files_of(trained_run) == RUN_FILES
    assert json.loads((folder / "ensemble.json").read_text())["members"] == [p.name for p in members]
    assert json.loads((folder / "metrics.json").read_text())["members"] == 2
    out = tmp_path / "submission.csv"
    assert submission.main(["--run", str(folder), "--data_dir", str(demo_dir), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 359 and "ensemble of 2" in capfd.readouterr().out


def descendants(pid: int) -> list[int]:
    """The processes under pid, read from /proc (Linux, as every machine of the project)."""
    parent_of = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:  # "pid (name) state ppid ...": the name may hold spaces and brackets
                parent_of[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # ended as we looked
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parent_of.items() if parent in frontier]
        found += children
        frontier = children
    return found


def open_paths(pid: int) -> list[Path]:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []
    paths = []
    for fd in fds:
        try:
            paths.append(Path(os.readlink(fd)))
        except OSError:
            continue
    return paths


def training_now(nodes: list) -> dict[Path, tuple[str, int]]:
    """The models the nodes' workers are training now: by attempt (the lock file of its unfinished run,
    .tmp-<id>.lock in the node's own digits-run-* folder, which the worker holds open until the run is
    whole), its run id and the index of its node in `nodes`. A node that is gone has none."""
    found = {}
    for index, node in enumerate(nodes):
        raylet = node.all_processes.get("raylet")
        if not raylet or raylet[0].process.poll() is not None:
            continue
        for worker in descendants(raylet[0].process.pid):
            for path in open_paths(worker):
                if path.parent.name.startswith("digits-run-") and re.fullmatch(r"\.tmp-.+-fold-\d+\.lock", path.name):
                    found[path] = (path.name[len(".tmp-"):-len(".lock")], index)
    return found


def test_a_node_lost_during_a_model_has_it_trained_again_on_another(demo_dir, tmp_path, capfd):
    """The node of the first model seen training is removed at once (no graceful end): Ray starts that
    model again on the other node, and the CV ends with each fold trained once. Each start of a model
    is seen by its worker's lock on the run it builds, so nothing here assumes how long anything takes."""
    nodes = two_nodes()
    attempts: dict[Path, tuple[str, int]] = {}  # every start of a model seen, in order
    lost: list[int] = []  # the node removed
    failed: list[BaseException] = []
    stop = threading.Event()

    def watch():
        try:
            while not stop.is_set():
                for attempt, (run_id, node) in training_now(nodes.workers).items():
                    attempts.setdefault(attempt, (run_id, node))
                    if not lost:
                        nodes.remove_node(nodes.workers[node], allow_graceful=False)
                        lost.append(node)
                stop.wait(0.1)  # a model holds its lock for seconds
        except BaseException as err:  # said by the test, not lost in a thread
            failed.append(err)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        watcher.start()
        assert cv.main([*quick(demo_dir, tmp_path), "--k", "2", "--name", "n", "--cluster", nodes.address]) == 0
    finally:
        stop.set()
        watcher.join(timeout=60)
        nodes.shutdown()
        for attempt in attempts:  # the lost node's worker could not remove its folder
            shutil.rmtree(attempt.parent, ignore_errors=True)
    assert not failed, failed
    assert lost, "no model was seen training"
    starts = list(attempts.values())
    first_id, node = starts[0]
    fold = re.search(r"fold-\d+$", first_id).group()
    other, survivor = "fold-2" if fold == "fold-1" else "fold-1", 1 - node
    assert lost == [node], "the node removed is the one that trained the first model seen"
    by_fold = {name: [(run_id, n) for run_id, n in starts if run_id.endswith(f"-{name}")] for name in (fold, other)}
    assert [n for _, n in by_fold[fold]] == [node, survivor], f"{fold}: on the lost node, then on the other: {starts}"
    assert [n for _, n in by_fold[other]] == [survivor], f"{other}: once, on the node that stayed: {starts}"

    summary = json.loads((tmp_path / "cv-n" / "cv.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2]
    runs = runs_in(tmp_path / "cv-n")
    assert sorted(run.name for run in runs) == sorted([by_fold[fold][-1][0], by_fold[other][0][0]]), \
        "each fold finished once: the lost one's run is its second start's"
    for run in runs:
        assert files_of(run) == sorted([*RUN_FILES, "rows.npz"])
    out = capfd.readouterr().out
    assert out.count(": done on ") == 2 and out.count(f"{fold}: done on ") == 1


def test_a_recipes_plan_on_the_cluster_gives_a_nodes_measured_minutes(demo_dir, tmp_path, cluster, capfd):
    assert best.main(["--recipe", "fast", "--data_dir", str(demo_dir), "--models_dir", str(tmp_path), "--epochs", "1",
                      "--cluster", cluster.address]) == 0
    out = capfd.readouterr().out
    [calibrated] = [line for line in out.splitlines() if line.startswith("best: calibrated strong-fast on the cluster")]
    rate = float(re.search(r": ([\d,]+) images/s there", calibrated).group(1).replace(",", ""))
    assert rate > 0 and re.search(r"\((float32|mixed_bfloat16)\)$", calibrated), calibrated
    [plan] = [line for line in out.splitlines() if "on the cluster at " in line]
    planned = float(re.search(r"1 at a time: about ([\d.]+) min of training", plan).group(1))
    member_minutes = 1 * len(pd.read_csv(demo_dir / "train.csv")) / rate / 60  # one epoch of every row
    assert planned == pytest.approx(member_minutes, abs=0.051), plan  # printed to 0.1 min, the rate to 1 img/s
    assert "member-1: done on " in out and (tmp_path / "recipe-fast" / "submission.csv").is_file()


def test_the_pair_models_train_on_the_cluster_into_ordinary_pair_runs(demo_dir, tmp_path, cluster, capfd):
    from competition.config import PAIR_RUNS_DIR
    from competition.training.pair_runs import find_pair_run

    flags = ["--data_dir", str(demo_dir), "--examples", "200", "--epochs", "1"]
    assert train_pairs.main([*flags, "--models_dir", str(tmp_path / "c"), "--cluster", cluster.address]) == 0
    out = capfd.readouterr().out
    for design in PAIR_DESIGNS:  # queued here, trained on a node (its own lines), placed here
        assert f"{design}: queued: 1 CPU" in out and f"{design}: done on " in out
        assert any(line.startswith(f"({design} pid=") and "epoch 1/1" in line for line in out.splitlines())
    assert train_pairs.main([*flags, "--models_dir", str(tmp_path / "l"), "--threads", "1"]) == 0
    capfd.readouterr()
    sha = json.loads(next((tmp_path / "l" / PAIR_RUNS_DIR).glob("*/data_fingerprint.json")).read_text())["sha256"]
    for design in PAIR_DESIGNS:
        on_cluster, here = (find_pair_run(tmp_path / where, design, sha) for where in ("c", "l"))
        assert on_cluster and files_of(on_cluster) == files_of(here)
        config, local = (json.loads((run / "config.json").read_text()) for run in (on_cluster, here))
        assert {k: v for k, v in config.items() if k not in ("run_id", "models_dir", "hardware")} == \
            {k: v for k, v in local.items() if k not in ("run_id", "models_dir", "hardware")}
        metrics = json.loads((on_cluster / "metrics.json").read_text())
        assert metrics["held_out"] == json.loads((here / "metrics.json").read_text())["held_out"], \
            "the same pieces and seed: the same model's figures"
    assert train_pairs.main([*flags, "--models_dir", str(tmp_path / "c"), "--cluster", cluster.address]) == 0
    assert capfd.readouterr().out.count("reused") == len(PAIR_DESIGNS), "a finished pair run is not trained again"


def test_a_driver_killed_and_run_again_reuses_every_model_it_wrote(demo_dir, tmp_path, cluster, capfd):
    argv = [*quick(demo_dir, tmp_path), "--k", "3", "--name", "k", "--cluster", cluster.address]
    driver = subprocess.Popen([sys.executable, "-m", "competition.ensemble", *argv], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "ensemble-k"
    deadline = time.monotonic() + 240
    while not (folder.is_dir() and runs_in(folder)) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.1)
    driver.kill()
    driver.wait()
    written = runs_in(folder)
    assert 1 <= len(written) < 3, "the driver was to be killed between its first model and its last"

    assert ensemble.main(argv) == 0
    out = capfd.readouterr().out
    assert out.count("already trained, reusing") == len(written)
    assert set(written) < set(runs_in(folder)) and len(runs_in(folder)) == 3


def test_a_node_with_other_versions_refuses_in_one_line_and_writes_nothing(demo_dir, tmp_path, cluster, monkeypatch,
                                                                          capfd):
    real = ray_cluster.versions()
    monkeypatch.setattr(ray_cluster, "versions", lambda: {**real, "Keras": "0.0.0"})  # the driver's, as it says
    assert ensemble.main([*quick(demo_dir, tmp_path), "--k", "1", "--name", "v", "--cluster", cluster.address]) == 2
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: member-1: node ") and "refuses it" in errors[0]
    assert "Traceback" not in err
    assert f"Keras {real['Keras']} there, 0.0.0 on the driver" in errors[0] and "(" in errors[0]  # the node named
    assert not runs_in(tmp_path / "ensemble-v")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_ray_no_cluster_and_too_few_cpus_are_one_line_each(demo_dir, tmp_path, cluster, monkeypatch, capfd):
    argv = [*quick(demo_dir, tmp_path), "--k", "1", "--name", "x"]
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "ray", None)  # as if not installed
        assert ensemble.main([*argv, "--cluster", "local"]) == 2
    port = free_port()
    assert ensemble.main([*argv, "--cluster", f"127.0.0.1:{port}"]) == 1
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(connection, "RAY_START_RECORD", tmp_path / "no-record")
    assert ensemble.main([*argv, "--cluster", "auto"]) == 1
    assert ensemble.main([*argv, "--cluster", cluster.address, "--threads", "4"]) == 2
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and errors == [
        "error: --cluster needs Ray, which is not installed here: pip install -r requirements.txt (it pins ray), "
        "or leave out --cluster",
        f"error: no Ray cluster at 127.0.0.1:{port}: Connection refused (on its head: `ray start --head`; "
        "--cluster local runs on this machine)",
        "error: --cluster auto: no running Ray cluster ($RAY_ADDRESS is unset and `ray start` has left none on this "
        "machine): start one with `ray start --head`, or pass --cluster local",
        "error: the cluster has no node with 4 CPUs for one model (its largest has 1) (--threads 4): add a node "
        "with `ray start --address HEAD:PORT`, or ask fewer --threads",
    ]
    assert not runs_in(tmp_path / "ensemble-x")
    with pytest.raises(SystemExit) as exit_:
        ensemble.main([*argv, "--cluster", "head-without-port"])
    assert exit_.value.code == 2
    usage_error_line(capfd.readouterr().err, "--cluster 'head-without-port': expected local, auto, HOST:PORT or "
                     "ray://HOST:PORT")


@pytest.mark.parametrize("nodes, models, threads, expected", [
    ([{"CPU": 1}, {"CPU": 1}], 2, 0, (1, 0)),  # the cores shared among the models
    ([{"CPU": 8}, {"CPU": 2}], 1, 0, (8, 0)),  # one model: one node's cores at most
    ([{"CPU": 8}, {"CPU": 2}], 20, 0, (1, 0)),
    ([{"CPU": 0}, {"CPU": 4, "GPU": 1}], 3, 0, (1, 1)),  # a GPU each, where there are GPUs
    ([{"CPU": 16}, {"CPU": 4, "GPU": 2}], 1, 0, (4, 1)),  # on a GPU node: its CPUs
    ([{"CPU": 4}], 1, 2, (2, 0)),  # --threads
])
def test_each_model_asks_for_its_threads_as_cpus_and_a_gpu_where_there_are_some(nodes, models, threads, expected):
    assert ray_cluster.member_resources(nodes, models, threads) == expected


def test_without_the_flag_ray_is_never_imported():
    code = ("import sys\nfrom competition import best, cv, ensemble\nfrom competition.training import parallel\n"
            "try:\n    cv.main(['--help'])\nexcept SystemExit:\n    pass\nprint('ray imported:', 'ray' in sys.modules)")
    check = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "--cluster ADDRESS" in check.stdout and check.stdout.rstrip().endswith("ray imported: False")
