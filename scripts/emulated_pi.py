"""An emulated Raspberry Pi 4 classifies digits, reads a photo of a number and benchmarks, as x86 does.

    python scripts/emulated_pi.py [--fixtures build/edge-fixtures] [--digits 12] [--no-bench]

Set-up, cached in build/pi/ and skipped when there:
  - qemu-user-static from Debian (apt-get install), when qemu-aarch64-static is missing
  - an aarch64 Python 3.11: Debian's arm64 packages (dpkg --add-architecture arm64; apt-get
    download python3.11-minimal:arm64 libc6:arm64 ...), unpacked with dpkg -x into build/pi/root
  - aarch64 wheels of the interpreter (default tflite-runtime 2.14 with numpy<2, as on Raspberry
    Pi OS bookworm's Python 3.11), pip-downloaded for manylinux aarch64 and unpacked beside it
Then, under `qemu-aarch64-static -cpu cortex-a72` (the Pi 4's core) and on x86 with --x86_python:
  - `python3.11 -m edge.pi.classify model_int8.tflite --csv digits.csv`: the labels are compared;
  - `python3.11 -m edge.pi.read model_int8.tflite number.png --json`, a photo of a number composed
    from stored digits (edge/forms/synthetic.py): the text, the labels and the boxes are compared;
  - `python3.11 -m edge.pi.camera model_int8.tflite --source numbers.avi --headless --json`, a 640x480
    video of numbers (scripts/camera_video.py, written by --x86_python, which needs OpenCV): each
    frame's reading is compared, and both frame rates printed;
  - `python3.11 -m edge.pi.bench model_int8.tflite --read ... --threads 1`: the reader's costliest
    images (a 20-digit number of 10 touching pairs, touching digits 600 pixels tall, 2048x2048 pages
    of specks, dots, weave and noise): each read or refused as x86 does, and the slowest image's
    seconds on both printed (the reader bounds its work by counts, not time, so the emulated time is
    the same work at qemu's speed);
  - `python3.11 -m edge.pi.bench model_int8.tflite model_float32.tflite` (short): both tables printed,
    the emulated one labelled so (qemu's speed is not a Pi's; nothing is compared).
Exit 0 when the answers match, 1 when not, 2 on set-up errors.

--interpreter "ai-edge-litert==2.3.0" runs LiteRT instead. LiteRT 2.2 and later crash under
qemu-user 7.2 while probing the CPU: qemu shows the guest the host's x86 /proc/cpuinfo. --pi_cpuinfo
bind-mounts a Pi 4's /proc/cpuinfo for the emulated run (unshare; needs root), and then they run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "pi"
DEBIAN_PACKAGES = [  # python3.11 and what it and the interpreters' shared objects link against
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "libgcc-s1",
    "libstdc++6", "zlib1g", "libexpat1", "libffi8", "libbz2-1.0", "liblzma5",
]
WHEEL_PLATFORMS = ["manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64",
                   "manylinux_2_17_aarch64", "manylinux2014_aarch64"]
PILLOW = "pillow==13.0.0"  # edge.pi.read's image files, as in edge/tests/requirements-*.txt
OPENCV = "opencv-python-headless==4.11.0.86"  # edge.pi.camera's video file, as in edge/pi/requirements-camera.txt
VIDEO_FRAMES = 30  # a 640x480 video of numbers for edge.pi.camera --headless: 3 s at 10 fps
BENCH_ARGS = ["--threads", "1", "4", "--runs", "50", "--batch", "64", "--batches", "3"]  # minutes, not hours, under qemu
PHOTO_DIGITS = 4
PI4_CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
    "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n" for i in range(4)
) + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"


class SetupError(RuntimeError):
    pass


def sh(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kwargs)


def apt_ready(state: dict) -> None:
    """arm64 package lists, fetched once per run (a fresh machine has none)."""
    if state.get("apt"):
        return
    if os.geteuid() != 0:
        raise SetupError("setting up the emulated Pi needs root (apt-get, dpkg --add-architecture)")
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True).stdout
    if "arm64" not in foreign.split():
        sh("dpkg", "--add-architecture", "arm64")
    sh("apt-get", "update", "-qq")
    state["apt"] = True


def qemu(state: dict) -> str:
    if not shutil.which("qemu-aarch64-static"):
        apt_ready(state)
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", "qemu-user-static",
           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("qemu-aarch64-static")


def python_root(state: dict) -> Path:
    """Debian bookworm's aarch64 python3.11 (what Raspberry Pi OS bookworm ships), unpacked."""
    root, debs = CACHE / "root", CACHE / "debs"
    if (root / ".complete").is_file():
        return root
    debs.mkdir(parents=True, exist_ok=True)
    apt_ready(state)
    sh("apt-get", "download", "-qq", *(f"{name}:arm64" for name in DEBIAN_PACKAGES), cwd=debs)
    shutil.rmtree(root, ignore_errors=True)
    for deb in sorted(debs.glob("*.deb")):
        sh("dpkg", "-x", str(deb), str(root))
    (root / ".complete").touch()
    return root


def site_packages(interpreter: str) -> Path:
    """aarch64 wheels of the interpreter, numpy and Pillow, unpacked into one folder for PYTHONPATH."""
    requirements = [interpreter, "numpy<2"] if interpreter.startswith("tflite-runtime") else [interpreter]
    requirements += [PILLOW, OPENCV]
    site = CACHE / ("site-" + "".join(c if c.isalnum() or c in ".-" else "_" for c in "-".join(requirements)))
    if (site / ".complete").is_file():
        return site
    wheels = site.with_name(site.name + "-wheels")
    platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    sh(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", *platforms, "--python-version", "3.11",
       "--implementation", "cp", "--abi", "cp311", "-d", str(wheels), *requirements)
    shutil.rmtree(site, ignore_errors=True)
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    (site / ".complete").touch()
    return site


def stored_digits(fixtures: Path, count: int) -> Path:
    """The first `count` validation digits of the fixtures, as a labelled CSV."""
    lines = (fixtures / "digits.csv").read_text().splitlines()
    target = CACHE / "digits.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines[:count + 1]) + "\n")
    return target


def number_photo(fixtures: Path, count: int) -> tuple[Path, str]:
    """A photo of a number made of stored digits (paper, uneven light, JPEG), and the number's true text."""
    import numpy as np

    from edge.forms.synthetic import compose

    table = np.loadtxt(fixtures / "digits.csv", delimiter=",", skiprows=1, dtype=np.int64)[:count]
    target = CACHE / "number.jpg"
    compose(table[:, 1:].astype(np.uint8), "uneven", np.random.default_rng(0)).save(target, quality=90)
    return target, "".join(str(label) for label in table[:, 0])


def worst_cases(fixtures: Path) -> list[Path]:
    """The costliest images for the reader (scripts/read_accuracy.py's slowest kinds), seeded, as PNGs."""
    import numpy as np

    from edge.forms.written import lay_out, render, written_digit
    from edge.tests.nonnumbers import non_number

    table = np.loadtxt(fixtures / "digits.csv", delimiter=",", skiprows=1, dtype=np.int64)[:, 1:].astype(np.uint8)
    rng = np.random.default_rng(0)
    folder = CACHE / "worst"
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for name, count, height, touching in (("touching-20", 20, 70.0, tuple(range(0, 20, 2))),
                                          ("tall-touching-4", 4, 600.0, (0, 2))):
        inks = [written_digit(digit, height, "paper", rng, last=False) for digit in table[:count]]
        canvas, _ = lay_out(inks, height, rng, touching)
        images[name] = render(canvas, height, "paper", rng)
    for kind in ("specks", "dots", "woven", "noise"):
        images[f"{kind}-2048"] = non_number(kind, (2048, 2048), rng)
    paths = []
    for name, image in images.items():
        paths.append(folder / f"{name}.png")
        image.save(paths[-1])
    return paths


def timed_readings(command: list[str], what: str, **kwargs) -> list[dict]:
    """edge.pi.bench --read's rows (its --json file)."""
    out = CACHE / "readings.json"
    sys.stdout.write(output_of([*command, "--json", str(out)], what, **kwargs))
    return json.loads(out.read_text())["readings"]


def compare_worst(x86: list[dict], arm: list[dict]) -> bool:
    """The costliest images read alike on both; the slowest's seconds on each."""
    same = [row["read"] for row in x86] == [row["read"] for row in arm]
    worst = max(arm, key=lambda row: row["seconds"])
    on_x86 = next(row for row in x86 if row["image"] == worst["image"])
    print(f"{'ok' if same else 'FAIL'}: the emulated Pi reads or refuses the {len(arm)} costliest images as x86 "
          f"{'does' if same else 'does not'}; its slowest, {Path(worst['image']).name}: {worst['seconds']:.2f} s "
          f"({worst['cpu_seconds']:.2f} s of CPU) emulated, x86 {on_x86['seconds']:.2f} s ({on_x86['cpu_seconds']:.2f}), "
          "1 thread")
    return same


def output_of(command: list[str], what: str, **kwargs) -> str:
    """stdout of a command (its stderr shown); a failure is a SetupError."""
    print(f"\n{what}:\n+ {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, **kwargs)
    sys.stdout.write(result.stderr)
    if result.returncode != 0:
        raise SetupError(f"{what} failed with exit code {result.returncode}")
    return result.stdout


def labels_from(command: list[str], what: str, **kwargs) -> list[int]:
    return [int(line.split(",")[1]) for line in output_of(command, what, **kwargs).splitlines()[1:]]


def compare_readings(x86: dict, arm: dict, truth: str) -> bool:
    print(f"\n{'':<8}{'text':>8}  labels, boxes")
    for name, reading in (("true", {"text": truth, "digits": []}), ("x86_64", x86), ("pi", arm)):
        print(f"{name:<8}{reading['text']:>8}  " + " ".join(f"{d['label']}@{d['box']}" for d in reading["digits"]))
    same = [(d["label"], d["box"]) for d in x86["digits"]] == [(d["label"], d["box"]) for d in arm["digits"]]
    print("ok: the emulated Pi reads the photo as x86 does" if same else "FAIL: the emulated Pi reads it otherwise")
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", default=str(ROOT / "build" / "edge-fixtures"),
                        help="folder with model_int8.tflite and digits.csv (default: %(default)s)")
    parser.add_argument("--digits", type=int, default=12, help="stored digits to classify (default: %(default)s)")
    parser.add_argument("--interpreter", default="tflite-runtime==2.14.0",
                        help="what the Pi runs, a pip requirement (default: %(default)s)")
    parser.add_argument("--pi_cpuinfo", action="store_true", help="show the emulated run a Pi 4's /proc/cpuinfo")
    parser.add_argument("--x86_python", default=sys.executable, help="Python for the x86 run (default: this one)")
    parser.add_argument("--bench", action=argparse.BooleanOptionalAction, default=True,
                        help="run edge.pi.bench on both (default: %(default)s)")
    args = parser.parse_args(argv)
    fixtures = Path(args.fixtures)
    model = fixtures / "model_int8.tflite"
    try:
        if not model.is_file():
            raise SetupError(f"{model}: missing; `make test-edge` (scripts/edge_fixtures.py) builds it")
        state: dict = {}
        emulator, root, site = qemu(state), python_root(state), site_packages(args.interpreter)
        python = str(root / "usr/bin/python3.11")
        pi = [emulator, "-cpu", "cortex-a72", "-L", str(root), "-E", f"PYTHONPATH={site}:{ROOT}", python]
        if args.pi_cpuinfo:
            cpuinfo = CACHE / "cpuinfo-pi4"
            cpuinfo.write_text(PI4_CPUINFO)
            pi = ["unshare", "--mount", "sh", "-c", f'mount --bind {cpuinfo} /proc/cpuinfo && exec "$@"', "sh", *pi]
        machine = subprocess.run([*pi, "-c", "import platform; print(platform.machine(), platform.python_version())"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        emulated = f"emulated Raspberry Pi 4 ({machine}, {args.interpreter})"
        digits = stored_digits(fixtures, args.digits)
        classify = ["-m", "edge.pi.classify", str(model), "--csv", str(digits), "--threads", "4"]
        x86 = labels_from([args.x86_python, *classify], "x86_64")
        arm = labels_from([*pi, *classify], emulated, timeout=600)
        photo, number = number_photo(fixtures, PHOTO_DIGITS)
        read = ["-m", "edge.pi.read", str(model), str(photo), "--json", "--threads", "4"]
        x86_reading = json.loads(output_of([args.x86_python, *read], "x86_64"))
        arm_reading = json.loads(output_of([*pi, *read], emulated, timeout=600))
        worst = [str(path) for path in worst_cases(fixtures)]
        timing = ["-m", "edge.pi.bench", str(model), "--read", *worst, "--threads", "1"]
        x86_worst = timed_readings([args.x86_python, *timing], "x86_64: the costliest images")
        arm_worst = timed_readings([*pi, *timing], f"{emulated}: the costliest images", timeout=1200)
        video = CACHE / "numbers-640x480.avi"
        output_of([args.x86_python, str(ROOT / "scripts/camera_video.py"), "--out", str(video), "--digits",
                   str(fixtures / "digits.csv"), "--frames", str(VIDEO_FRAMES), "--codec", "FFV1"],
                  "a video of numbers (lossless: x86's and ARM's JPEG decoders differ by a few grey levels)")
        camera = ["-m", "edge.pi.camera", str(model), "--source", str(video), "--headless", "--json", "--threads", "4"]
        x86_frames = [json.loads(line)["text"] for line in output_of([args.x86_python, *camera], "x86_64").splitlines()]
        arm_frames = [json.loads(line)["text"] for line in output_of([*pi, *camera], emulated, timeout=900).splitlines()]
        if args.bench:
            bench = ["-m", "edge.pi.bench", str(model), str(fixtures / "model_float32.tflite"), *BENCH_ARGS]
            sys.stdout.write(output_of([args.x86_python, *bench], "x86_64 edge.pi.bench"))
            sys.stdout.write(output_of([*pi, *bench], f"{emulated} edge.pi.bench: EMULATED, not a Pi's speed"
                                       + ("" if args.pi_cpuinfo else "; qemu shows the host's cpuinfo"),
                                       timeout=1200))
    except (SetupError, subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    truth = [int(line.split(",")[0]) for line in digits.read_text().splitlines()[1:]]
    print(f"\n{'digit':>5} {'true':>5} {'x86_64':>7} {'pi':>4}")
    for i, row in enumerate(zip(truth, x86, arm), start=1):
        print(f"{i:>5} {row[0]:>5} {row[1]:>7} {row[2]:>4}" + ("" if row[1] == row[2] else "  <- differs"))
    same = sum(a == b for a, b in zip(x86, arm))
    if x86 != arm or len(arm) != len(truth):
        print("FAIL: the emulated Pi's labels differ from x86's", file=sys.stderr)
    else:
        print(f"ok: the emulated Pi 4 gives the x86 labels for all {len(arm)} digits")
    photo_same = compare_readings(x86_reading, arm_reading, number)
    frames_same = x86_frames == arm_frames and len(x86_frames) == VIDEO_FRAMES
    differing = sum(a != b for a, b in zip(x86_frames, arm_frames))
    print(f"ok: the emulated Pi reads all {len(arm_frames)} video frames as x86 does" if frames_same else
          f"FAIL: {differing} of {len(arm_frames)} video frames read otherwise on the emulated Pi")
    worst_same = compare_worst(x86_worst, arm_worst)
    passed = same + photo_same + frames_same + worst_same
    total = len(truth) + 3
    print(f"test-pi: {passed} passed, {total - passed} failed")  # one line a CI log reader counts
    return 0 if passed == total and len(x86) == len(truth) else 1


if __name__ == "__main__":
    sys.exit(main())
