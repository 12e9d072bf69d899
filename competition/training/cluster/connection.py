"""Ray, reached: --cluster's addresses, the connection, the project's packages shipped to the nodes,
and the versions every node must share with the driver.

    --cluster local          Ray started in this process on this machine's cores (to try it; the tests)
    --cluster auto           the running cluster: $RAY_ADDRESS, or the one `ray start` left on this machine
    --cluster HOST:PORT      a cluster's head (`ray start --head` prints it), or ray://HOST:PORT (Ray Client)

Ray is imported only here and only when a cluster is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import common
import competition
import edge
from common.errors import ConfigError, ProjectError, RemoteError, describe
from competition.training import hardware

LOCAL, AUTO = "local", "auto"
CLUSTER_ADDRESSES = "local, auto, HOST:PORT or ray://HOST:PORT"
CLIENT_PREFIX = "ray://"
# Where `ray start` notes the address of the cluster it started on this machine.
RAY_START_RECORD = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
PACKAGES = (common, competition, edge)  # what a node imports of the project (the pair models: edge's generator)
PROBE_SECONDS = 5.0  # ray.init waits minutes on an address where nothing listens: ask the port first


class VersionMismatch(ProjectError):
    """A node whose libraries differ from the driver's: its models would not be the same."""


def parse_address(text: str) -> str:
    """--cluster's value, checked for its form (local, auto, HOST:PORT, ray://HOST:PORT)."""
    if text in (LOCAL, AUTO):
        return text
    host, sep, port = text.removeprefix(CLIENT_PREFIX).rpartition(":")
    if not (sep and host and port.isdigit()):
        raise ConfigError(f"--cluster {text!r}: expected {CLUSTER_ADDRESSES}")
    return text


def versions() -> dict[str, str]:
    """What must be the same on every node for a model to train as it would on the driver."""
    import keras
    import numpy
    import tensorflow as tf

    return {"Python": ".".join(platform.python_version_tuple()[:2]), "numpy": numpy.__version__,
            "Keras": keras.__version__, "TensorFlow": tf.__version__}


def runtime_env() -> dict:
    """The project's packages, shipped by Ray to every worker ahead of whatever a node has installed."""
    return {"py_modules": [str(Path(package.__file__).parent) for package in PACKAGES],
            "excludes": ["__pycache__/", "*.pyc"]}


def head_address(address: str) -> str:
    """The address to connect to, once something answers there; RemoteError in one line if not."""
    if address == AUTO:
        address = os.environ.get("RAY_ADDRESS") or (
            RAY_START_RECORD.read_text().strip() if RAY_START_RECORD.is_file() else "")
        if not address:
            raise RemoteError("--cluster auto: no running Ray cluster ($RAY_ADDRESS is unset and `ray start` has "
                              "left none on this machine): start one with `ray start --head`, or pass --cluster local")
    host, _, port = parse_address(address).removeprefix(CLIENT_PREFIX).rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
    except OSError as err:
        raise RemoteError(f"no Ray cluster at {address}: {err.strerror or describe(err)} (on its head: "
                          "`ray start --head`; --cluster local runs on this machine)") from None
    return address


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ProjectError("--cluster needs Ray, which is not installed here: pip install -r requirements.txt "
                           "(it pins ray), or leave out --cluster") from None
    return ray


@contextlib.contextmanager
def connected(address: str) -> Iterator:
    """Ray, connected to the cluster at address (started here for `local`) for the block."""
    ray = _import_ray()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # the members' epoch lines look alike: each is news
    os.environ.setdefault("RAY_COLOR_PREFIX", "1" if sys.stdout.isatty() else "0")  # no escape codes in logs
    options = {"runtime_env": runtime_env(), "logging_level": logging.WARNING, "log_to_driver": True}
    start = time.perf_counter()
    if address == LOCAL:
        ray.init(num_cpus=hardware.usable_cores(), include_dashboard=False, **options)
    else:
        target = head_address(address)
        try:
            ray.init(address=target, **options)
        except ConnectionError as err:
            raise RemoteError(f"no Ray cluster at {target}: {describe(err)}") from None
    try:
        print(f"cluster: {describe_cluster(ray)}; Ray {ray.__version__} ready in "
              f"{time.perf_counter() - start:.1f}s", flush=True)
        yield ray
    finally:
        ray.shutdown()


def alive_nodes(ray) -> list[dict]:
    return [node["Resources"] for node in ray.nodes() if node.get("Alive")]


def describe_cluster(ray) -> str:
    nodes = alive_nodes(ray)
    cpus, gpus = (sum(node.get(kind, 0) for node in nodes) for kind in ("CPU", "GPU"))
    return (f"{len(nodes)} node{'s' * (len(nodes) != 1)}, {cpus:g} CPUs, "
            + (f"{gpus:g} GPU{'s' * (gpus != 1)}" if gpus else "no GPU"))
