"""What this machine is, and the compute precision and threads that suit it.

`--precision auto` (every preset's default) trains in bfloat16 only where the hardware runs it
natively: a CPU with AVX512-BF16 or AMX-BF16, or a GPU of compute capability 8.0 or more. A GPU of
compute capability 7.x (T4, V100: float16 tensor cores, no bfloat16 ones) trains in mixed_float16.
Elsewhere (CPUs without those instructions, a P100 at 6.0 with no tensor cores) reduced precision is
emulated or gains little, and several times slower on a CPU (docs/speed.md), so auto means float32.
`--threads 0` means every core this process may use: its CPU affinity and its cgroup's CPU quota
(a container's share), not the host's count that os.cpu_count() gives.

Every run's config.json and every benchmark records `record(hardware)`: CPU model, the cores used,
the instruction sets that matter to training speed, GPU, and the library versions.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
from pathlib import Path

from competition.config import TrainConfig

# Instruction sets that decide how fast TensorFlow's CPU kernels (oneDNN) train, as /proc/cpuinfo
# names them, and how a person does.
CPU_FEATURES = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX512F", "avx512_vnni": "AVX512-VNNI",
         "avx512_bf16": "AVX512-BF16", "amx_tile": "AMX", "amx_bf16": "AMX-BF16", "asimd": "NEON", "bf16": "BF16"}
NATIVE_BF16_FEATURES = ("amx_bf16", "avx512_bf16")  # x86 features of bfloat16 matrix instructions
BF16_GPU_CAPABILITY = (8, 0)  # Ampere and later: bfloat16 tensor cores
FP16_GPU_CAPABILITY = (7, 0)  # Volta and Turing: float16 tensor cores only


@dataclasses.dataclass(frozen=True)
class Hardware:
    cpu: str
    flags: frozenset[str]  # those of CPU_FEATURES the CPU has
    cores: int  # usable by this process
    host_cores: int
    gpu: str | None = None  # TensorFlow's first GPU, by name
    gpu_capability: tuple[int, int] | None = None


def cpu_info(text: str | None = None) -> tuple[str, frozenset[str]]:
    """The CPU's model name and which of CPU_FEATURES it has, from /proc/cpuinfo (x86 `flags`, Arm `Features`)."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux
            text = ""
    names, flags = {}, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "model", "hardware") and not value.isdigit():  # x86's `model` is a number
            names.setdefault(key, value)
        elif key in ("flags", "features"):
            flags |= set(value.split()) & set(CPU_FEATURES)
    model = names.get("model name") or names.get("model") or names.get("hardware")
    return model or platform.processor() or platform.machine() or "unknown CPU", frozenset(flags)


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup"), self_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs the process's cgroup may use (quota / period), the tightest along its path; None if unlimited."""
    try:
        paths = [line.split(":", 2)[2].strip() for line in self_cgroup.read_text().splitlines() if line.count(":") >= 2]
    except OSError:
        paths = []
    limits = []
    for relative in paths or ["/"]:
        # cgroup v2 keeps cpu.max in the process's own folder; v1 under the cpu controller's mount.
        for base, read in ((root, _v2_limit), (root / "cpu", _v1_limit)):
            folder = base / relative.lstrip("/")
            while True:  # an ancestor's quota binds too; in a container the path may not exist below it
                limits.append(read(folder))
                if folder == base or base not in folder.parents:
                    break
                folder = folder.parent
    limits = [limit for limit in limits if limit]
    return min(limits) if limits else None


def _v2_limit(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1_limit(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cores(limit: float | None = None) -> int:
    """Cores this process may run on: its affinity, capped by its cgroup quota (rounded down, at least 1:
    a thread more than the quota gets throttled, which costs more than an idle fraction of a core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit() if limit is None else limit
    return max(1, min(cores, math.floor(limit))) if limit else cores


def threads_each(workers: int, cores: int | None = None) -> int:
    """Intra-op threads for each of `workers` processes on `cores` (default: this machine's usable
    ones): the cores shared, not oversubscribed."""
    return max(1, (cores or usable_cores()) // workers)


def detect(gpu: bool = True) -> Hardware:
    """This machine; gpu=False skips asking TensorFlow (which imports it)."""
    cpu, flags = cpu_info()
    name = capability = None
    if gpu:
        import tensorflow as tf

        found = tf.config.list_physical_devices("GPU")
        if found:
            details = tf.config.experimental.get_device_details(found[0])
            name = details.get("device_name", found[0].name)
            capability = details.get("compute_capability")
    return Hardware(cpu, flags, usable_cores(), os.cpu_count() or 1, name, tuple(capability) if capability else None)


def choose_precision(requested: str, hardware: Hardware) -> tuple[str, str]:
    """The compute precision to train in, and why."""
    if requested != "auto":
        return requested, "as asked"
    if hardware.gpu:
        if hardware.gpu_capability and hardware.gpu_capability >= BF16_GPU_CAPABILITY:
            return "mixed_bfloat16", f"auto: {hardware.gpu} has bfloat16 tensor cores"
        if hardware.gpu_capability and hardware.gpu_capability >= FP16_GPU_CAPABILITY:
            return "mixed_float16", (f"auto: {hardware.gpu} has float16 tensor cores, none for bfloat16 "
                                     "(compute capability 7.x)")
        return "float32", f"auto: {hardware.gpu} has no tensor cores (compute capability below 7.0)"
    native = [CPU_FEATURES[flag] for flag in NATIVE_BF16_FEATURES if flag in hardware.flags]
    if native:
        return "mixed_bfloat16", f"auto: the CPU has {native[0]}, so bfloat16 runs natively"
    return "float32", "auto: the CPU has no AVX512-BF16 or AMX-BF16, where bfloat16 is emulated and slower"


def choose_threads(requested: int, hardware: Hardware) -> int:
    return requested or hardware.cores


@dataclasses.dataclass(frozen=True)
class Setup:
    """How a run trains on this machine: the precision "auto" resolved to (and why) and the threads.
    Decided once, by the command or the process that trains, and handed down to every layer."""

    machine: Hardware
    precision: str
    reason: str
    threads: int
    # GPU indices that models train on side by side, one model per GPU, each in a process that sees
    # only its own (CUDA_VISIBLE_DEVICES); empty: one process sees them all (TensorFlow uses the first).
    gpus: tuple[int, ...] = ()


def resolve(precision: str = TrainConfig.precision, threads: int = TrainConfig.threads,
            machine: Hardware | None = None) -> Setup:
    """The Setup for a requested precision and thread count (0: every usable core) on machine (detected)."""
    machine = machine or detect()
    chosen, why = choose_precision(precision, machine)
    return Setup(machine, chosen, why, choose_threads(threads, machine))


def work_precision(requested: str, here: Setup, recorded: str | None, cluster: bool) -> str:
    """The precision that resumable work (CV folds, ensemble members, a recipe's models) records,
    and so the one its models train in. `recorded`: what the work's record holds (None: new work).

    Here, "auto" is this machine's precision, as the record check has always compared it: work
    begun on another machine is refused if that one trained otherwise. On a cluster each node
    resolves "auto" for itself, so new work records "auto"; work that recorded "auto" continues so
    anywhere (this machine is one more node); work that recorded a resolved precision continues in
    it on every node, so that its models never mix precisions (docs/cluster.md)."""
    if requested != "auto":
        return requested
    if recorded == "auto" or (cluster and recorded is None):
        return "auto"
    return recorded if cluster else here.precision


def describe_machine(hardware: Hardware) -> str:
    """One line: AMD EPYC, 2 of 2 cores, AVX2 FMA AVX512F AVX512-BF16, no GPU."""
    flags = " ".join(label for flag, label in CPU_FEATURES.items() if flag in hardware.flags) or "no AVX2"
    cores = f"{hardware.cores} of {hardware.host_cores} cores" if hardware.cores != hardware.host_cores \
        else f"{hardware.cores} cores"
    gpu = f"GPU {hardware.gpu}" if hardware.gpu else "no GPU"
    return f"{hardware.cpu}, {cores}, {flags}, {gpu}"


def record(hardware: Hardware, threads: int | None = None) -> dict:
    """The machine and the library versions, for config.json and benchmark output."""
    import keras
    import numpy as np

    versions = {"python": platform.python_version(), "numpy": np.__version__, "keras": keras.__version__,
                "keras_backend": keras.backend.backend()}
    if "tensorflow" in sys.modules:
        versions["tensorflow"] = sys.modules["tensorflow"].__version__
    return {"cpu": hardware.cpu, "cpu_flags": sorted(hardware.flags), "cores_usable": hardware.cores,
            "cores_host": hardware.host_cores, **({"threads": threads} if threads is not None else {}),
            "gpu": hardware.gpu, "gpu_compute_capability": list(hardware.gpu_capability or []) or None,
            "machine": platform.machine(), **versions}


def apply_threads(threads: int) -> int:
    """Give TensorFlow's intra-op pool `threads` threads; the count it then has. Once TensorFlow has run
    an op in this process (a notebook, a test session) its pools are fixed and stay as they are."""
    import tensorflow as tf

    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current != threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            return current or os.cpu_count() or 1  # 0: TensorFlow's own default, every host core
    return threads
