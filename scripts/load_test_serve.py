"""A bounded load test of edge.pi.serve on 127.0.0.1: valid and malformed requests from concurrent clients.

    python scripts/load_test_serve.py [--model build/edge-fixtures/model_int8.tflite] [--clients 8]
                                      [--seconds 30] [--out FILE]

Starts `python -m edge.pi.serve MODEL --port 0 --timeout 2` (the Python running this script must
have edge's requirements), then --clients threads send requests for --seconds, each picking at
random: a photo of a 4-digit number (POST /api/read, 200), 784 pixels (/api/classify, 200), and
the malformed kinds: a body over --max_bytes (413), a wrong content type (415), a truncated image
(422), pixels out of range (400), no Content-Length (411); one further client is slow, trickling a
body a byte at a time (408 by the server's deadline). Every answer is checked: the expected status,
and for a 4xx a JSON body with "error". Prints requests/s, p50/p99 ms per kind, p99 and the
server's resident memory (VmRSS) per --window seconds (they should stay flat), and exits 1 if any
answer was unexpected or the server died. A benchmark: figures go to docs/pi.md, not into tests.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from edge.pi.synthetic import compose  # noqa: E402

MAX_BYTES = 1_000_000
SERVER_TIMEOUT = 2.0
KINDS = {  # kind: (weight, expected status)
    "read": (30, 200), "classify": (30, 200), "oversized": (8, 413), "wrong_type": (8, 415),
    "truncated": (8, 422), "out_of_range": (8, 400), "no_length": (8, 411),
}


def payloads(digits_csv: Path) -> dict:
    table = np.loadtxt(digits_csv, delimiter=",", skiprows=1, dtype=np.int64)[:, 1:].astype(np.uint8)
    photo = io.BytesIO()
    compose(table[:4], "paper", np.random.default_rng(0)).save(photo, "JPEG", quality=85)
    photo = photo.getvalue()
    pixels = table[4].tolist()
    return {
        "read": ("/api/read", photo, "image/jpeg"),
        "classify": ("/api/classify", json.dumps({"pixels": pixels}).encode(), "application/json"),
        "oversized": ("/api/read", b"\xff" * (MAX_BYTES + 1), "image/jpeg"),
        "wrong_type": ("/api/read", photo, "text/plain"),
        "truncated": ("/api/read", photo[: len(photo) // 3], "image/jpeg"),
        "out_of_range": ("/api/classify", json.dumps({"pixels": pixels[:-1] + [300]}).encode(), "application/json"),
        "no_length": ("/api/read", photo, "image/jpeg"),
    }


def send(address: tuple[str, int], kind: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    if kind == "no_length":  # http.client always sends a length: write the request by hand
        with socket.create_connection(address, timeout=30) as raw:
            raw.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\r\n".encode() + body)
            return parse_raw(b"".join(iter(lambda: raw.recv(65536), b"")))
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def slow_send(address: tuple[str, int]) -> tuple[int, bytes]:
    """A body promised at 1,000 bytes and trickled a byte every 0.1 s, until the server answers."""
    with socket.create_connection(address, timeout=30) as raw:
        raw.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n")
        raw.settimeout(0.1)
        reply = b""
        for _ in range(600):
            try:
                raw.sendall(b"x")
            except OSError:
                pass
            try:
                chunk = raw.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            reply += chunk
        return parse_raw(reply)


def parse_raw(reply: bytes) -> tuple[int, bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


def check(status: int, body: bytes, expected: int) -> str | None:
    """None when the answer is what the request should get, else what was wrong."""
    if status != expected:
        return f"status {status}, expected {expected}: {body[:100]!r}"
    if status >= 400:
        try:
            if "error" not in json.loads(body):
                return "4xx without an error field"
        except ValueError:
            return f"4xx whose body is not JSON: {body[:100]!r}"
    return None


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "build/edge-fixtures/model_int8.tflite"), help="(default: %(default)s)")
    parser.add_argument("--digits", default=str(ROOT / "build/edge-fixtures/digits.csv"),
                        help="labelled digits the photos are made of (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=30, help="(default: %(default)s)")
    parser.add_argument("--window", type=float, default=5, help="seconds per p99/memory window (default: %(default)s)")
    parser.add_argument("--server_threads", type=int, default=None, help="the server's interpreter threads")
    parser.add_argument("--out", default=None, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    bodies = payloads(Path(args.digits))
    command = [sys.executable, "-m", "edge.pi.serve", args.model, "--port", "0", "--quiet", "--timeout",
               str(SERVER_TIMEOUT), "--max_bytes", str(MAX_BYTES), "--max_connections", str(4 * args.clients)]
    if args.server_threads:
        command += ["--threads", str(args.server_threads)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()
        if not first.startswith("serving http://"):
            print(f"error: edge.pi.serve did not start: {first}{server.stderr.read()}", file=sys.stderr)
            return 2
        host, port = first.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)
        address = (host, int(port))
        records: list[tuple[float, str, float, str | None]] = []  # (start, kind, ms, problem)
        lock = threading.Lock()
        start = time.monotonic()
        stop = start + args.seconds

        def client(seed: int, slow: bool) -> None:
            rng = random.Random(seed)
            names, weights = list(KINDS), [w for w, _ in KINDS.values()]
            while time.monotonic() < stop:
                kind = "slow" if slow else rng.choices(names, weights)[0]
                began = time.monotonic()
                try:
                    status, body = slow_send(address) if slow else send(address, kind, *bodies[kind])
                    problem = check(status, body, 408 if slow else KINDS[kind][1])
                except OSError as err:
                    problem = f"{type(err).__name__}: {err}"
                with lock:
                    records.append((began - start, kind, 1000 * (time.monotonic() - began), problem))

        memory = []
        threads = [threading.Thread(target=client, args=(k, k == args.clients), daemon=True)
                   for k in range(args.clients + 1)]
        for thread in threads:
            thread.start()
        while time.monotonic() < stop:
            memory.append((time.monotonic() - start, rss_kib(server.pid)))
            time.sleep(0.5)
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - start
        alive = server.poll() is None
        memory.append((elapsed, rss_kib(server.pid) if alive else 0))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return report(records, memory, elapsed, alive, args)


def report(records, memory, elapsed, alive, args) -> int:
    fast = [r for r in records if r[1] != "slow"]
    problems = [r for r in records if r[3]]
    print(f"{len(records)} requests in {elapsed:.1f}s from {args.clients} clients and 1 slow one: "
          f"{len(fast) / elapsed:,.0f} requests/s (slow client excluded)")
    print(f"{'kind':<14}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'unexpected':>12}")
    figures = {"requests": len(records), "seconds": elapsed, "requests_per_s": len(fast) / elapsed, "kinds": {},
               "windows": []}
    for kind in [*KINDS, "slow"]:
        times = [r[2] for r in records if r[1] == kind]
        if not times:
            continue
        bad = sum(1 for r in records if r[1] == kind and r[3])
        p50, p99 = np.percentile(times, [50, 99])
        figures["kinds"][kind] = {"requests": len(times), "p50_ms": p50, "p99_ms": p99, "unexpected": bad}
        print(f"{kind:<14}{len(times):>9}{p50:>9.1f}{p99:>9.1f}{bad:>12}")
    p50, p99 = np.percentile([r[2] for r in fast], [50, 99])
    figures.update(p50_ms=p50, p99_ms=p99)
    print(f"{'all but slow':<14}{len(fast):>9}{p50:>9.1f}{p99:>9.1f}{len(problems):>12}")
    print(f"\n{'window s':<10}{'requests':>9}{'p99 ms':>9}{'server RSS MiB':>16}")
    for left in np.arange(0, args.seconds, args.window):
        times = [r[2] for r in fast if left <= r[0] < left + args.window]
        rss = [m for t, m in memory if left <= t < left + args.window]
        if times:
            row = {"from_s": float(left), "requests": len(times), "p99_ms": float(np.percentile(times, 99)),
                   "rss_mib": max(rss) / 1024 if rss else None}
            figures["windows"].append(row)
            print(f"{left:<10.0f}{len(times):>9}{row['p99_ms']:>9.1f}"
                  f"{row['rss_mib'] if row['rss_mib'] is not None else float('nan'):>16.1f}")
    for record in problems[:10]:
        print(f"unexpected: {record[1]} at {record[0]:.1f}s: {record[3]}", file=sys.stderr)
    print(f"server {'still serving' if alive else 'DIED'}; {len(problems)} unexpected answers")
    if args.out:
        Path(args.out).write_text(json.dumps({**figures, "alive": alive, "unexpected": len(problems)}, indent=1))
    return 0 if alive and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
