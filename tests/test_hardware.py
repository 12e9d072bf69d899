"""The machine, as the project sees it: CPU features, usable cores, and the precision chosen for them.

The CPUs are faked (cpuinfo text, cgroup files, Hardware values), so these tests say the same on
any machine.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from competition import startup, train
from competition.training import hardware, trainer
from competition.training.hardware import Hardware

ROOT = Path(__file__).resolve().parent.parent
AVX2_ONLY = Hardware("Intel(R) Core(TM) i7-8565U", frozenset({"avx2", "fma"}), 2, 8)
AVX512_BF16 = Hardware("AMD EPYC", frozenset({"avx2", "fma", "avx512f", "avx512_bf16"}), 2, 2)
SAPPHIRE_RAPIDS = Hardware("Intel(R) Xeon(R) Platinum 8480+", frozenset({"avx2", "avx512f", "amx_tile", "amx_bf16"}), 4, 4)

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model\t\t: 2
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_bf16 avx512_vnni sha_ni
"""
PI4_CPUINFO = """processor\t: 0
Features\t: fp asimd evtstrm crc32 cpuid
CPU part\t: 0xd08

Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""


@pytest.mark.parametrize("machine, expected, why", [
    (AVX2_ONLY, "float32", "no AVX512-BF16 or AMX-BF16"),
    (AVX512_BF16, "mixed_bfloat16", "AVX512-BF16"),
    (SAPPHIRE_RAPIDS, "mixed_bfloat16", "AMX-BF16"),
    (Hardware("ARM Neoverse", frozenset({"asimd", "bf16"}), 4, 4), "float32", "no AVX512-BF16"),
    (Hardware("AMD EPYC", frozenset({"avx2"}), 16, 16, "NVIDIA H200", (9, 0)), "mixed_bfloat16", "NVIDIA H200"),
    (Hardware("Xeon", frozenset({"avx512_bf16"}), 8, 8, "Tesla T4", (7, 5)), "mixed_float16", "float16 tensor cores"),
    (Hardware("Xeon", frozenset({"avx2"}), 8, 8, "Tesla V100-SXM2-16GB", (7, 0)), "mixed_float16", "7.x"),
    (Hardware("Xeon", frozenset({"avx512_bf16"}), 4, 4, "Tesla P100-PCIE-16GB", (6, 0)), "float32", "below 7.0"),
    (Hardware("Xeon", frozenset({"avx2"}), 4, 4, "an unnamed GPU", None), "float32", "no tensor cores"),
])
def test_auto_precision_is_bfloat16_only_where_the_hardware_runs_it_natively(machine, expected, why):
    precision, reason = hardware.choose_precision("auto", machine)
    assert precision == expected and why in reason and reason.startswith("auto: ")


@pytest.mark.parametrize("asked", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_an_explicit_precision_is_kept_on_any_machine(asked):
    for machine in (AVX2_ONLY, AVX512_BF16):
        assert hardware.choose_precision(asked, machine) == (asked, "as asked")


def test_cpu_model_and_flags_from_cpuinfo():
    assert hardware.cpu_info(X86_CPUINFO) == ("AMD EPYC 9B45", frozenset({"avx2", "fma", "avx512f", "avx512_bf16",
                                                                        "avx512_vnni"}))
    assert hardware.cpu_info(PI4_CPUINFO) == ("Raspberry Pi 4 Model B Rev 1.4", frozenset({"asimd"}))
    assert "AVX512-BF16" in hardware.describe_machine(hardware.Hardware(*hardware.cpu_info(X86_CPUINFO), 2, 2))


def test_cgroup_quota_caps_the_cores(tmp_path):
    """cgroup v2: cpu.max in the process's own folder, or an ancestor's; v1: cfs_quota_us / cfs_period_us."""
    own = tmp_path / "v2" / "user.slice" / "job"
    own.mkdir(parents=True)
    (tmp_path / "v2" / "user.slice" / "cpu.max").write_text("250000 100000\n")
    (own / "cpu.max").write_text("max 100000\n")
    self_cgroup = tmp_path / "self_v2"
    self_cgroup.write_text("0::/user.slice/job\n")
    assert hardware.cgroup_cpu_limit(tmp_path / "v2", self_cgroup) == 2.5

    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "self_v1").write_text("4:cpu,cpuacct:/docker/abc\n")  # the container's folder is the mount's root
    assert hardware.cgroup_cpu_limit(tmp_path / "v1", tmp_path / "self_v1") == 1.5

    (v1 / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert hardware.cgroup_cpu_limit(tmp_path / "v1", tmp_path / "self_v1") is None


def test_usable_cores_are_the_affinity_capped_by_the_quota():
    affinity = len(os.sched_getaffinity(0))
    assert hardware.usable_cores(limit=0.5) == 1  # at least one
    assert hardware.usable_cores(limit=affinity + 0.9) == affinity  # never more than the process may run on
    assert hardware.usable_cores(limit=1.9) == 1  # rounded down: a thread past the quota is throttled


def test_strong_preset_on_an_avx2_only_cpu_trains_in_float32_and_says_so(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "detect", lambda gpu=True: AVX2_ONLY)
    cfg = train.parse_args(["--preset", "strong", "--epochs", "1", "--data_dir", str(demo_dir),
                            "--models_dir", str(tmp_path)])
    assert cfg.precision == "auto"
    folder = trainer.train_model(cfg)
    config = json.loads((folder / "config.json").read_text())
    assert config["precision"] == "float32" and "no AVX512-BF16" in config["precision_reason"]
    assert config["hardware"]["cpu"] == AVX2_ONLY.cpu and config["hardware"]["cpu_flags"] == ["avx2", "fma"]
    assert {"tensorflow", "keras", "threads", "cores_usable", "gpu"} <= set(config["hardware"])
    first = (folder / "train.log").read_text().splitlines()[0]
    assert "machine: Intel(R) Core(TM) i7-8565U, 2 of 8 cores, AVX2 FMA, no GPU" in first
    assert "precision float32 (auto: the CPU has no AVX512-BF16" in first


def test_a_faked_t4_trains_in_mixed_float16_with_loss_scaling_and_saves_float32(demo_dir, tmp_path, monkeypatch):
    """On a T4 (compute capability 7.5) auto means mixed_float16: the model that trains has Keras' loss
    scaling around an Adam that keeps the weights' average (--ema, the best recipes'), and the saved
    float32 model holds that average, not the last step's (run here on the CPU, which TensorFlow allows,
    slowly): the GPU path of a Kaggle T4, run before a user's quota pays for it."""
    import keras

    t4 = Hardware("Intel(R) Xeon(R) CPU @ 2.00GHz", frozenset({"avx2", "fma"}), 4, 4, "Tesla T4", (7, 5))
    monkeypatch.setattr(hardware, "detect", lambda gpu=True: t4)
    trained, fit = {}, trainer.fit

    def fit_and_keep(cfg, folder, model, *args):
        trained["model"] = model
        summary, last_step = fit(cfg, folder, model, *args)
        trained["last_step"] = last_step
        return summary, last_step

    monkeypatch.setattr(trainer, "fit", fit_and_keep)
    cfg = train.parse_args(["--preset", "demo", "--epochs", "1", "--ema", "0.9", "--data_dir", str(demo_dir),
                            "--models_dir", str(tmp_path)])
    folder = trainer.train_model(cfg)
    config = json.loads((folder / "config.json").read_text())
    assert config["precision"] == "mixed_float16" and "Tesla T4 has float16 tensor cores" in config["precision_reason"]

    model = trained["model"]
    # The layers compute in float16 (the output layer in float32).
    assert "mixed_float16" in {layer.dtype_policy.name for layer in model.layers if layer.weights}
    scaler = model.optimizer  # the loss scaled before the gradients, unscaled before the step
    assert isinstance(scaler, keras.optimizers.LossScaleOptimizer) and scaler.dynamic_scale.numpy() > 1
    adam = scaler.inner_optimizer
    assert adam.use_ema and adam.ema_momentum == 0.9 and int(adam.iterations) > 0
    averages = [v.numpy() for v in adam._model_variables_moving_average]

    saved = keras.models.load_model(folder / "model.keras")
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
    weights = [v.numpy() for v in saved.trainable_variables]
    assert len(weights) == len(averages) and all(np.array_equal(w, a) for w, a in zip(weights, averages))
    last_step = trained["last_step"]  # model.get_weights() at the last step, before the average was swapped in
    assert len(last_step) == len(saved.get_weights())
    assert not all(np.array_equal(w, last) for w, last in zip(saved.get_weights(), last_step))
    assert json.loads((folder / "metrics.json").read_text())["train_seconds"] > 0


def test_strong_preset_on_an_avx512_bf16_cpu_trains_in_bfloat16(monkeypatch):
    monkeypatch.setattr(hardware, "detect", lambda gpu=True: AVX512_BF16)
    setup = hardware.resolve(train.parse_args(["--preset", "strong"]).precision)
    assert setup.precision == "mixed_bfloat16" and "AVX512-BF16" in setup.reason


@pytest.mark.parametrize("line, nvidia, noise", [
    (b"E0000 00:00:17.4 2310 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n", False, True),
    (b"E0000 00:00:17.4 2310 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n", True, False),
    (b"I0000 00:00:17.4 2310 cudart_stub.cc:31] Could not find cuda drivers on your machine\n", False, True),
    (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n", False, True),
    (b"W0000 00:00:17.4 2310 op_kernel.cc:1858] OP_REQUIRES failed at strided_slice_op.cc:117\n", False, False),
    (b"E0000 00:00:17.4 2310 some_kernel.cc:10] a real error\n", False, False),
])
def test_only_start_up_noise_is_dropped(line, nvidia, noise):
    assert startup.is_noise(line, nvidia) is noise


@pytest.mark.skipif(startup.has_nvidia_device(), reason="this machine has an NVIDIA device")
def test_a_command_on_a_cpu_only_machine_prints_no_cuda_probing():
    code = ("import competition.startup; competition.startup.begin(); import competition.model.designs, keras, tensorflow as tf; keras.ops.ones(2) + 1; "
            "import os; os.write(2, b'W0000 a real warning\\n')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "cuInit" not in stderr and "cuda" not in stderr.lower() and "absl::InitializeLog" not in stderr
    assert "W0000 a real warning" in stderr  # what is written after start-up still shows
