"""Several models of a CV, an ensemble or a recipe: those missing trained, each into its run folder,
one after another or side by side in their own processes (one per GPU where the setup names GPUs),
or as tasks on a Ray cluster (cluster/models.py); those that exist reused.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from competition.config import TrainConfig
from competition.data.digits import Digits, load_train
from competition.runs.choosing import newest_named
from competition.runs.console import setup_console_logging
from competition.training import hardware, trainer

VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"  # the GPUs a process's CUDA sees, read once as it starts


@dataclasses.dataclass(frozen=True)
class Job:
    """One model of a CV or an ensemble: run `name` in folder, trained as cfg says if it is missing."""

    cfg: TrainConfig
    folder: Path
    name: str
    indices: tuple[np.ndarray, np.ndarray] | None = None  # train rows, validation rows (CV folds)
    what: str = ""


def train_all(jobs: list[Job], workers: int = 1, setup: hardware.Setup | None = None, cluster: str | None = None,
              digits: Digits | None = None) -> list[Path]:
    """Each job's run folder, in order: the folds of a CV, the members of an ensemble. Those that
    exist are reused (an interrupted job continues); the missing ones are trained, `workers` at a time,
    or on the Ray cluster at `cluster` (each node resolving its own precision and threads), from
    `digits` (train.csv as the command read it; without, each model reads its data_dir).

    With workers > 1 each model trains in a fresh process with its share of the cores (cfg.threads
    unless set): on 2 cores, two 1-thread trainings together do more images/s than one 2-thread
    training, though each takes longer (docs/speed.md). `setup`, the command's resolved precision
    and threads, is handed to each model (resolved from the first job's config without it).
    """
    found: dict[str, Path] = {}
    for job in jobs:
        with contextlib.suppress(FileNotFoundError):
            found[job.name] = newest_named(job.folder, job.name).folder
            print(f"{job.name}: already trained, reusing {found[job.name].name}", flush=True)
    todo = [job for job in jobs if job.name not in found]
    if not todo:
        return [found[job.name] for job in jobs]
    if cluster:
        # Ray only where a cluster is asked for.
        from competition.training.cluster import models as ray_cluster

        digits = load_train(todo[0].cfg.data_dir) if digits is None else digits
        found.update(ray_cluster.train_all(todo, cluster, digits))
        return [found[job.name] for job in jobs]
    setup = setup or hardware.resolve(todo[0].cfg.precision, todo[0].cfg.threads)
    if workers > 1 and len(setup.gpus) > 1:
        found.update(_train_on_gpus(todo, setup.gpus[:workers], setup, digits))
        return [found[job.name] for job in jobs]
    if workers <= 1:
        found.update((job.name, _train(job, setup, digits)) for job in todo)
        return [found[job.name] for job in jobs]

    threads = hardware.threads_each(workers)
    # spawn: a fresh TensorFlow per model, whose thread pools are set before it starts.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1,
                               initializer=_end_with_parent)
    try:
        futures = {}
        for job in todo:
            each = job.cfg.threads or threads
            futures[job.name] = pool.submit(_train_in_worker, dataclasses.replace(
                job, cfg=dataclasses.replace(job.cfg, threads=each)), dataclasses.replace(setup, threads=each), digits)
        for name, future in futures.items():
            found[name] = future.result()
    finally:
        pool.shutdown(cancel_futures=True)  # after a failure, start no more models
    return [found[job.name] for job in jobs]


def _train_on_gpus(todo: list[Job], gpus: tuple[int, ...], setup: hardware.Setup, digits: Digits | None
                   ) -> dict[str, Path]:
    """Each model in a fresh process that sees one GPU, as many at once as there are GPUs, in order: the
    next model starts on the first GPU freed. CUDA_VISIBLE_DEVICES is in the process's environment from
    its start, before TensorFlow loads (set here around the start: a pool of one process per model,
    started by submit in this thread, so nothing else starts a process meanwhile)."""
    context = multiprocessing.get_context("spawn")
    threads = hardware.threads_each(len(gpus))
    free, running, found = list(gpus), {}, {}
    try:
        for job in todo:
            if not free:
                found.update(_collect(running, free, wait(running, return_when=FIRST_COMPLETED).done))
            gpu = free.pop(0)
            pool = ProcessPoolExecutor(1, mp_context=context, initializer=_end_with_parent)
            each = job.cfg.threads or threads
            with _visible_gpu(gpu):
                future = pool.submit(_train_in_worker, dataclasses.replace(job, cfg=dataclasses.replace(
                    job.cfg, threads=each)), dataclasses.replace(setup, threads=each, gpus=()), digits)
            running[future] = (job.name, gpu, pool)
        found.update(_collect(running, free, list(running)))
    finally:
        for _, _, pool in running.values():  # after a failure: the others' models end, no new one starts
            pool.shutdown(cancel_futures=True)
    return found


def _collect(running: dict, free: list[int], done) -> dict[str, Path]:
    """The finished models' run folders (a failure raised), their GPUs freed, their processes ended."""
    found = {}
    for future in done:
        name, gpu, pool = running.pop(future)
        pool.shutdown()
        free.append(gpu)
        found[name] = future.result()
    return found


@contextlib.contextmanager
def _visible_gpu(gpu: int):
    before = os.environ.get(VISIBLE_DEVICES)
    os.environ[VISIBLE_DEVICES] = str(gpu)
    try:
        yield
    finally:
        if before is None:
            del os.environ[VISIBLE_DEVICES]
        else:
            os.environ[VISIBLE_DEVICES] = before


def _train(job: Job, setup: hardware.Setup, digits: Digits | None) -> Path:
    gpu = os.environ.get(VISIBLE_DEVICES)
    print(f"{job.name}: training{job.what}" + (f" on GPU {gpu} ({VISIBLE_DEVICES}={gpu})" if gpu else ""), flush=True)
    return trainer.train_model(dataclasses.replace(job.cfg, name=job.name, models_dir=str(job.folder)), setup,
                               trainer.Placement(digits, job.indices))


def _train_in_worker(job: Job, setup: hardware.Setup, digits: Digits | None) -> Path:
    setup_console_logging(prefix=f"[{job.name}] ")  # several models log to one console
    return _train(job, setup, digits)


PR_SET_PDEATHSIG = 1  # prctl(2)


def _end_with_parent() -> None:
    """A model's process ends when the command that started it ends, however (killed, its terminal
    closed), rather than training on unseen or idling, holding cores and memory; its epoch
    checkpoints stay for the command's next run. The pools' initializer: set as the process starts,
    before it waits for a model. Linux only: elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it ended before the line above
        os.kill(os.getpid(), signal.SIGTERM)
