"""What a Ray cluster costs on one machine: the same ensemble with --jobs and with --cluster local.

    python scripts/bench_cluster.py [--data_dir DIR] [--k 2] [--preset strong] [--epochs 2] [--rounds 1]

Each round trains `--k` members of `--preset` for `--epochs` epochs twice, in fresh models folders
and fresh processes, one after the other on this machine: `competition.ensemble --jobs K` (this
machine's processes, one per member) and `competition.ensemble --cluster local` (Ray started in the
command, the members as its tasks). It prints the machine, each command's wall time, their ratio
(the cluster's overhead), and the time Ray took to start, as the command said it. Run it on an
otherwise idle machine; the rounds alternate which goes first.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time

from competition.config import PRESETS, SHARED_DATA_DIR
from competition.training import hardware

READY = re.compile(r"^cluster: .* ready in ([\d.]+)s$", re.MULTILINE)


def ensemble(data_dir: str, models_dir: str, k: int, preset: str, epochs: int, how: list[str]) -> tuple[float, str]:
    """Wall seconds of one `competition.ensemble` and what it printed."""
    command = [sys.executable, "-m", "competition.ensemble", "--data_dir", data_dir, "--models_dir", models_dir,
               "--k", str(k), "--preset", preset, "--epochs", str(epochs), *how]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(SHARED_DATA_DIR), help="train.csv's folder (default: %(default)s)")
    parser.add_argument("--k", type=int, default=2, help="members (default: %(default)s)")
    parser.add_argument("--preset", default="strong", choices=sorted(PRESETS), help="their preset (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs each (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of both commands (default: %(default)s)")
    args = parser.parse_args(argv)

    print(f"machine: {hardware.describe_machine(hardware.detect(gpu=False))}", flush=True)
    ways = {"--jobs": ["--jobs", str(args.k)], "--cluster local": ["--cluster", "local"]}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    ray_start = []
    for round_ in range(args.rounds):
        order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for way in order:
            with tempfile.TemporaryDirectory(prefix="bench-cluster-") as models:
                took, out = ensemble(args.data_dir, models, args.k, args.preset, args.epochs, ways[way])
            seconds[way].append(took)
            ray_start += [float(found) for found in READY.findall(out)]
            print(f"round {round_ + 1}: {way:<15} {took:6.1f} s wall", flush=True)
    local, on_ray = (statistics.median(seconds[way]) for way in ways)
    print(f"{args.k} x {args.preset}, {args.epochs} epochs each, median of {args.rounds}: --jobs {args.k} "
          f"{local:.1f} s, --cluster local {on_ray:.1f} s: ratio {on_ray / local:.3f} "
          f"({100 * (on_ray / local - 1):+.1f}%); Ray ready in {statistics.median(ray_start):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
