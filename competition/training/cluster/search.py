"""A keras-tuner cluster on this machine: a chief (the oracle) and workers, each its own process
running `python -m competition.tune` with the same flags (`make tune WORKERS=N`)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys

from competition.config import SearchConfig
from competition.runs.building import exclusive
from competition.training import hardware
from competition.training.tuning import search_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_argv(cfg: SearchConfig) -> list[str]:
    """Command-line flags that reproduce cfg, for the processes of a local cluster."""
    argv = []
    for key, value in cfg.to_dict().items():
        if isinstance(value, bool):
            argv.append(f"--{key}" if value else f"--no-{key}")
        else:
            argv += [f"--{key}", str(value)]
    return argv


def run_local_cluster(cfg: SearchConfig, workers: int) -> int:
    """A chief and `workers` workers on this machine, as separate processes. The chief's output is
    shown; each worker's goes to worker-<i>.log in the search folder."""
    folder = search_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    command = [sys.executable, "-m", "competition.tune"]
    chief = subprocess.Popen([*command, *config_argv(cfg)], env={**base, "KERASTUNER_TUNER_ID": "chief"})
    if not cfg.threads:  # share the cores rather than oversubscribe them
        cfg = dataclasses.replace(cfg, threads=hardware.threads_each(workers))
    procs = []
    for i in range(workers):
        with open(folder / f"worker-{i}.log", "w") as log_file:
            procs.append(subprocess.Popen([*command, *config_argv(cfg)], stdout=log_file, stderr=subprocess.STDOUT,
                                          env={**base, "KERASTUNER_TUNER_ID": f"tuner{i}"}))
    print(f"cluster: chief + {workers} workers on 127.0.0.1:{base['KERASTUNER_ORACLE_PORT']}; "
          f"worker logs in {folder}/worker-*.log", flush=True)
    try:
        codes = [p.wait() for p in procs] + [chief.wait()]
    except KeyboardInterrupt:
        for p in [*procs, chief]:
            p.terminate()
        return 130
    return max(codes)


def run_cluster(cfg: SearchConfig, workers: int, fresh: bool) -> int:
    """run_local_cluster's exit code, after --fresh removed the search (unless a search holds it)."""
    if fresh and search_dir(cfg).exists():
        with exclusive(search_dir(cfg), "a search"):
            shutil.rmtree(search_dir(cfg))
    return run_local_cluster(cfg, workers)
