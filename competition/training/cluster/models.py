"""The models of a CV, an ensemble or a recipe trained as tasks on a Ray cluster (--cluster ADDRESS;
addresses and the connection: connection.py).

Ray does the scheduling, placement, retries and transfer; this module only says what a model is to
it. Each model is one task: its threads as num_cpus, one GPU where the cluster has GPUs, in a fresh
worker process (max_calls=1: TensorFlow's thread pools are set before it starts, and GPU memory goes
back when it ends). Nothing is assumed of the nodes' disks: the driver reads and checks the CSVs
once and puts the digits in Ray's object store; a node trains into a folder of its own and returns
the finished run folder's files, which the driver writes into models/ whole (runs/building.place_run),
so a model on the driver is whole or absent. The project's packages travel in Ray's runtime
environment; each node compares its Python, numpy, Keras and TensorFlow with the driver's first.
A node lost mid-model: Ray trains that model again elsewhere (same seed, same work); an error of the
model's own (a bad value, a refused version) is raised once, not retried.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import ProjectError, RemoteError, describe
from competition.config import TrainConfig
from competition.data.digits import Digits
from competition.runs.building import place_run, run_files
from competition.runs.layout import METRICS_FILE
from competition.training import hardware
from competition.training.cluster.connection import VersionMismatch, alive_nodes, connected, versions

if TYPE_CHECKING:  # planning loads Keras: a node imports this module before TensorFlow's start-up settings
    from competition.training.planning import NodeSpeed

RETRIES = 3  # a model whose node or worker is lost is trained again elsewhere, up to this many times


def member_resources(nodes: list[dict], models: int, threads: int) -> tuple[int, int]:
    """CPUs and GPUs of one model's task: --threads where given, else the cluster's CPUs shared among
    the models (at most one node's); one GPU where the cluster has GPUs. ProjectError when no node
    can hold one model, so that Ray is not left waiting for a node that never comes."""
    gpu_nodes = [node for node in nodes if node.get("GPU", 0) >= 1]
    pool = gpu_nodes or nodes
    biggest = int(max((node.get("CPU", 0) for node in pool), default=0))
    total = int(sum(node.get("CPU", 0) for node in nodes))
    cpus = threads or max(1, min(biggest, total // max(models, 1)))
    if cpus > biggest:
        where = "GPU node" if gpu_nodes else "node"
        raise ProjectError(f"the cluster has no {where} with {cpus} CPU{'s' * (cpus != 1)} for one model "
                           f"(its largest has {biggest}){f' (--threads {threads})' if threads else ''}: "
                           "add a node with `ray start --address HEAD:PORT`, or ask fewer --threads")
    return cpus, 1 if gpu_nodes else 0


def remote_task(ray, function, cpus: int, gpus: int):
    """function as a Ray task of a model's resources, in a fresh worker each call (max_calls=1:
    TensorFlow's thread pools are set before it starts), trained again elsewhere when its node is
    lost (up to RETRIES), never retried for its own error."""
    return ray.remote(num_cpus=cpus, num_gpus=gpus, max_calls=1, max_retries=RETRIES,
                      retry_exceptions=False)(function)


def train_all(jobs: list, address: str, digits: Digits) -> dict[str, Path]:
    """Train each job (a training.parallel.Job) on the cluster at address, on `digits` (train.csv,
    checked by the driver); their run folders on the driver, by job name, written as they finish."""
    for job in jobs:
        if job.cfg.pseudo:
            raise ProjectError("--pseudo with --cluster: its labelling models are read from this machine's "
                               "models folder, which the nodes do not have; train it without --cluster")
    # A search's values are read here, where its folder is (imported here: a node loads this module before TensorFlow).
    from competition.training.trainer import tuned_values

    tuned = {job.cfg.hparams: tuned_values(job.cfg.hparams) for job in jobs if job.cfg.hparams}
    with connected(address) as ray:
        cpus, gpus = member_resources(alive_nodes(ray), len(jobs), jobs[0].cfg.threads)
        task = remote_task(ray, train_on_node, cpus, gpus)
        shared, expected = ray.put(digits), versions()
        pending = {}
        for job in jobs:
            cfg = dataclasses.replace(job.cfg, name=job.name, models_dir=str(job.folder), threads=cpus)
            ref = task.options(name=job.name).remote(cfg, job.indices, job.what, shared,
                                                     tuned.get(job.cfg.hparams), expected)
            pending[ref] = job
            print(f"{job.name}: queued{job.what}: {cpus} CPU{'s' * (cpus != 1)}" + (" and 1 GPU" if gpus else ""),
                  flush=True)
        found = {}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            result = result_of(ray, ref, job.name)
            found[job.name] = place_run(job.folder, result["run_id"], result["files"])
            print(f"{job.name}: done on {result['node']} in {duration(result['seconds'])}, "
                  f"{result['images_per_second']:,.0f} img/s, {result['precision']} -> {found[job.name]}", flush=True)
        return found


def measure_node(address: str, configs: dict[str, TrainConfig], digits: Digits, models: int) -> NodeSpeed:
    """A node's speed for each preset in configs: a calibration as `make best` runs here, as one task
    of a member's resources (models: the members to train, which share the cluster's CPUs), and how
    many such members the cluster holds at once."""
    from competition.training.planning import NodeSpeed

    with connected(address) as ray:
        nodes = alive_nodes(ray)
        cpus, gpus = member_resources(nodes, models, next(iter(configs.values())).threads)
        slots = sum(int(node.get("GPU", 0)) if gpus else int(node.get("CPU", 0) // cpus) for node in nodes)
        task = remote_task(ray, calibrate_on_node, cpus, gpus)
        configs = {preset: dataclasses.replace(cfg, threads=cpus) for preset, cfg in configs.items()}
        result = result_of(ray, task.options(name="calibration").remote(configs, digits, versions()), "calibration")
    return NodeSpeed(result["node"], result["precision"], result["rates"], max(1, slots))


def calibrate_on_node(configs: dict[str, TrainConfig], digits: Digits, expected: dict[str, str]) -> dict:
    """Ray's task: each preset's images/s on this node, in the precision it picks for "auto"."""
    node = node_checked(expected)
    from competition.training import speed, trainer

    first = next(iter(configs.values()))  # the presets share the recipe's precision and threads
    setup = hardware.resolve(first.precision, first.threads)
    hardware.apply_threads(setup.threads)
    onehot = trainer.onehot(digits.labels)
    rates = {preset: rate for preset, rate, _ in speed.preset_rates(configs, setup.precision, digits.images, onehot)}
    return {"node": node, "precision": setup.precision, "rates": rates}


def duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f} min"


def result_of(ray, ref, name: str) -> dict:
    """A model's result; its own error as one line of the project's (not retried: the same input
    fails again), Ray's (a node lost more often than RETRIES) as a RemoteError."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = err.cause
        if isinstance(cause, (ProjectError, OSError)):  # anything else: a bug, its traceback
            raise ProjectError(f"{name}: {describe(cause)}") from None
        raise
    except ray.exceptions.RayError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RemoteError(f"{name}: the cluster lost it: {first}") from None


def node_checked(expected: dict[str, str]) -> str:
    """This node's name, once its versions are the driver's (VersionMismatch if not); in a task's
    fresh worker, the start-up settings first, before TensorFlow loads."""
    from competition import startup

    startup.begin()
    import ray

    node = f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"
    mine = versions()
    wrong = [f"{name} {mine.get(name)} there, {version} on the driver" for name, version in expected.items()
             if mine.get(name) != version]
    if wrong:
        raise VersionMismatch(f"node {node} refuses it: {'; '.join(wrong)}: install requirements.txt's pins on "
                              "every node")
    return node


def train_on_node(cfg: TrainConfig, indices, what: str, digits: Digits, hyperparameters: dict | None,
                  expected: dict[str, str]) -> dict:
    """Ray's task: one model trained on this node, returned as its run folder's files. Imports
    TensorFlow only after the start-up settings, in this fresh worker."""
    node = node_checked(expected)
    from competition.training import trainer

    setup = hardware.resolve(cfg.precision, cfg.threads)  # this node's precision and threads
    print(f"{cfg.name}: training on {node}{what}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="digits-run-") as own:
        run = trainer.train_model(cfg, setup, trainer.Placement(digits, indices, hyperparameters, own))
        files = run_files(run)
    metrics = json.loads(files[METRICS_FILE])
    return {"run_id": run.name, "files": files, "node": node, "precision": setup.precision,
            "seconds": time.perf_counter() - start, "images_per_second": metrics["train_images_per_second"]}
