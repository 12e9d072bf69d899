"""The reader's pair models trained as tasks on a Ray cluster (`python -m competition.train_pairs
--cluster ADDRESS`), the way models.py trains a CV's or a recipe's models there.

Each pair model is one task (its CPUs, one GPU where the cluster has GPUs, a fresh worker): the
driver checks the CSVs and puts the digits in Ray's object store; the node makes the pieces and
trains into a folder of its own (training/pair_runs.py, as here), then returns the finished run's
files, which the driver writes whole into models/pair-models/, where `make tflite` finds them.
A node lost mid-model: Ray trains it again elsewhere, up to models.RETRIES times.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from competition.config import PairConfig
from competition.data.digits import Digits
from competition.runs.building import place_run, run_files
from competition.training.cluster.connection import alive_nodes, connected, versions
from competition.training.cluster.models import duration, member_resources, node_checked, remote_task, result_of


def train_all(configs: list[PairConfig], address: str, digits: Digits) -> dict[str, Path]:
    """Train each config's pair model on the cluster at address, on `digits` (checked by the
    driver); their run folders under models_dir/pair-models/ on the driver, by design."""
    from competition.training.pair_runs import pair_runs_dir

    with connected(address) as ray:
        cpus, gpus = member_resources(alive_nodes(ray), len(configs), configs[0].threads)
        task = remote_task(ray, train_pair_on_node, cpus, gpus)
        shared, expected = ray.put(digits), versions()
        pending = {}
        for cfg in configs:
            pending[task.options(name=cfg.design).remote(dataclasses.replace(cfg, threads=cpus), shared, expected)] = cfg
            print(f"{cfg.design}: queued: {cpus} CPU{'s' * (cpus != 1)}" + (" and 1 GPU" if gpus else ""), flush=True)
        found = {}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            cfg = pending.pop(ref)
            result = result_of(ray, ref, cfg.design)
            found[cfg.design] = place_run(pair_runs_dir(cfg.models_dir), result["run_id"], result["files"])
            print(f"{cfg.design}: done on {result['node']} in {duration(result['seconds'])} -> {found[cfg.design]}",
                  flush=True)
        return found


def train_pair_on_node(cfg: PairConfig, digits: Digits, expected: dict[str, str]) -> dict:
    """Ray's task: one pair model trained on this node, returned as its run folder's files."""
    node = node_checked(expected)
    from competition.training import pair_runs

    print(f"{cfg.design}: training on {node}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="digits-pairs-") as own:
        run = pair_runs.train_pair_run(dataclasses.replace(cfg, models_dir=own), digits)
        files = run_files(run)
    return {"run_id": run.name, "files": files, "node": node, "seconds": time.perf_counter() - start}
