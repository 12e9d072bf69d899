"""A bounded load test of edge.pi.serve on 127.0.0.1: valid and malformed requests from concurrent clients.

    python scripts/load_test_serve.py [--model build/edge-fixtures/model_int8.tflite] [--clients 8]
                                      [--seconds 30] [--memory_mb N] [--out FILE]

Starts `python -m edge.pi.serve MODEL --port 0 --timeout 2` (the Python running this script must
have edge's requirements). First the worst cases at once: --clients concurrent POSTs of a
7000x7000 white PNG (49 megapixels in 160 KB, just under edge/pi/image.py's 50-megapixel cap), then
as many of a 7000x7000 progressive JPEG (its coefficients are held whole), then as many JSON bodies
nested 100,000 deep, then as many of each image that holds no number at its costliest (a
2048x2048 page of dots, a woven texture, grey noise as large as --max_bytes lets through: the
reader refuses them, 422, within its bounds). Then --clients threads send requests for --seconds, each picking at random: a
photo of a 4-digit number (POST /api/read, 200), 784 pixels (/api/classify, 200), the malformed
kinds: a body over --max_bytes (413), a wrong content type (415), a truncated image (422), pixels
out of range (400), no Content-Length (411), deep JSON and a 5,000-digit integer (400); and the
worst images again (4%) and the non-numbers (6%). One further client is slow, trickling a body a byte at a time (408 by
the server's deadline). Every answer is checked: its status among those expected (a busy server
may answer 503 "try again" to an image, a blank one is 422, one over the budget 413), and for a
4xx or 503 a JSON body with "error". Prints requests/s, p50/p99 ms per kind, p99 and the server's
resident memory (VmRSS) per --window seconds, the server's peak resident memory (VmHWM), the
longest any image request took against the server's --deadline (the server answers 503 past it),
and exits 1 if any answer was unexpected, an image request outlasted the deadline by more than
DEADLINE_SLACK_S, or the server died. A benchmark: figures go to docs/pi.md, not into
tests. --server_root runs another checkout's edge.pi.serve (a before/after comparison).
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
from PIL import Image

from edge.pi.memory import status_kib
from edge.forms.synthetic import compose
from edge.tests.nonnumbers import non_number

ROOT = Path(__file__).resolve().parent.parent

MAX_BYTES = 1_000_000
SERVER_TIMEOUT = 2.0
SERVER_DEADLINE = 5.0  # the server's --deadline: seconds from an image's arrival to its reading's end
DEADLINE_SLACK_S = 1.0  # what an answer may take past it: decoding (before the first check) and the step in progress
BUSY = 503  # an image may find the server's memory taken by others: "try again"
WORST_IMAGE = (422, 413, BUSY)  # blank, over the server's budget, or busy
KINDS = {  # kind: (weight, expected statuses)
    "read": (30, (200, BUSY)), "classify": (30, (200,)), "oversized": (6, (413,)), "wrong_type": (6, (415,)),
    "truncated": (6, (422, BUSY)), "out_of_range": (6, (400,)), "no_length": (6, (411,)),
    "deep_json": (3, (400,)), "huge_number": (3, (400,)), "huge_png": (2, WORST_IMAGE), "huge_jpeg": (2, WORST_IMAGE),
    "dots_page": (2, WORST_IMAGE), "woven": (2, WORST_IMAGE), "noise": (2, WORST_IMAGE),
}
NON_NUMBERS = ("dots_page", "woven", "noise")  # images holding no number, at their costliest
READS = ("read", "truncated", "huge_png", "huge_jpeg", *NON_NUMBERS)  # the kinds the server reads an image for
BURSTS = ("huge_png", "huge_jpeg", "deep_json", *NON_NUMBERS)  # each sent by every client at once before the mixed load
HUGE_SIDE = 7000


def payloads(digits_csv: Path) -> dict:
    table = np.loadtxt(digits_csv, delimiter=",", skiprows=1, dtype=np.int64)[:, 1:].astype(np.uint8)
    photo = io.BytesIO()
    compose(table[:4], "paper", np.random.default_rng(0)).save(photo, "JPEG", quality=85)
    photo = photo.getvalue()
    pixels = table[4].tolist()
    white = Image.new("RGB", (HUGE_SIDE, HUGE_SIDE), "white")
    png, jpeg = io.BytesIO(), io.BytesIO()
    white.save(png, "PNG", compress_level=9)
    white.save(jpeg, "JPEG", quality=50, progressive=True)
    deep = b"[" * 100_000 + b"]" * 100_000
    return {
        **{kind: ("/api/read", costliest(kind), "image/png") for kind in NON_NUMBERS},
        "huge_png": ("/api/read", png.getvalue(), "image/png"),
        "huge_jpeg": ("/api/read", jpeg.getvalue(), "image/jpeg"),
        "deep_json": ("/api/classify", b'{"pixels": ' + deep + b"}", "application/json"),
        "huge_number": ("/api/classify", json.dumps({"pixels": pixels[:-1]})[:-2].encode() + b", 1" + b"0" * 5000
                        + b"]}", "application/json"),
        "read": ("/api/read", photo, "image/jpeg"),
        "classify": ("/api/classify", json.dumps({"pixels": pixels}).encode(), "application/json"),
        "oversized": ("/api/read", b"\xff" * (MAX_BYTES + 1), "image/jpeg"),
        "wrong_type": ("/api/read", photo, "text/plain"),
        "truncated": ("/api/read", photo[: len(photo) // 3], "image/jpeg"),
        "out_of_range": ("/api/classify", json.dumps({"pixels": pixels[:-1] + [300]}).encode(), "application/json"),
        "no_length": ("/api/read", photo, "image/jpeg"),
    }


def costliest(kind: str) -> bytes:
    """A PNG of one of NON_NUMBERS at its costliest for the reader: the largest side of 2048, 1536,
    1024 and 768 pixels whose file fits under MAX_BYTES."""
    for side in (2048, 1536, 1024, 768):
        rng = np.random.default_rng(0)
        if kind == "dots_page":  # 2% of the page in single dots
            image = Image.fromarray(np.where(rng.random((side, side)) < 0.02, 40, 235).astype(np.uint8))
        elif kind == "woven":
            image = non_number("woven", (side, side), rng)
        else:  # grey noise of one-pixel grains
            image = Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        if len(buffer.getvalue()) <= MAX_BYTES:
            return buffer.getvalue()
    raise ValueError(f"{kind}: no size fits under {MAX_BYTES:,} bytes")


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


def check(status: int, body: bytes, expected: tuple[int, ...]) -> str | None:
    """None when the answer is what the request should get, else what was wrong."""
    if status not in expected:
        return f"status {status}, expected {' or '.join(map(str, expected))}: {body[:100]!r}"
    if status >= 400:
        try:
            if "error" not in json.loads(body):
                return "4xx without an error field"
        except ValueError:
            return f"4xx whose body is not JSON: {body[:100]!r}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "build/edge-fixtures/model_int8.tflite"), help="(default: %(default)s)")
    parser.add_argument("--digits", default=str(ROOT / "build/edge-fixtures/digits.csv"),
                        help="labelled digits the photos are made of (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=30, help="(default: %(default)s)")
    parser.add_argument("--window", type=float, default=5, help="seconds per p99/memory window (default: %(default)s)")
    parser.add_argument("--server_threads", type=int, default=None, help="the server's interpreter threads")
    parser.add_argument("--memory_mb", type=int, default=None, help="the server's budget (default: its own)")
    parser.add_argument("--server_root", default=str(ROOT), help="the checkout whose edge.pi.serve runs (default: this)")
    parser.add_argument("--out", default=None, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    bodies = payloads(Path(args.digits))
    command = [sys.executable, "-m", "edge.pi.serve", str(Path(args.model).resolve()), "--port", "0", "--quiet",
               "--timeout", str(SERVER_TIMEOUT), "--deadline", str(SERVER_DEADLINE), "--max_bytes", str(MAX_BYTES),
               "--max_connections", str(4 * args.clients)]
    if args.server_threads:
        command += ["--threads", str(args.server_threads)]
    if args.memory_mb:
        command += ["--memory_mb", str(args.memory_mb)]
    server = subprocess.Popen(command, cwd=args.server_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        first = server.stdout.readline()
        if not first.startswith("serving http://"):
            print(f"error: edge.pi.serve did not start: {first}{server.stderr.read()}", file=sys.stderr)
            return 2
        host, port = first.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)
        address = (host, int(port))
        records: list[tuple[float, str, float, str | None, int]] = []  # (start, kind, ms, problem, status)
        lock = threading.Lock()
        started_kib = status_kib("VmHWM", server.pid)
        bursts = {kind: burst(address, kind, bodies[kind], args.clients, server.pid) for kind in BURSTS}
        start = time.monotonic()
        stop = start + args.seconds

        def client(seed: int, slow: bool) -> None:
            rng = random.Random(seed)
            names, weights = list(KINDS), [w for w, _ in KINDS.values()]
            while time.monotonic() < stop:
                kind = "slow" if slow else rng.choices(names, weights)[0]
                began = time.monotonic()
                status, problem = ask(address, kind, (408,) if slow else KINDS[kind][1], bodies.get(kind))
                with lock:
                    records.append((began - start, kind, 1000 * (time.monotonic() - began), problem, status))

        memory = []
        threads = [threading.Thread(target=client, args=(k, k == args.clients), daemon=True)
                   for k in range(args.clients + 1)]
        for thread in threads:
            thread.start()
        while time.monotonic() < stop:
            memory.append((time.monotonic() - start, status_kib("VmRSS", server.pid)))
            time.sleep(0.5)
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - start
        alive = server.poll() is None and healthy(address)
        memory.append((elapsed, status_kib("VmRSS", server.pid) if alive else 0))
        peak_kib = status_kib("VmHWM", server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return report(records, memory, elapsed, alive, args, bursts, started_kib, peak_kib)


def healthy(address: tuple[str, int]) -> bool:
    """Whether the server still answers GET /api/health with 200."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("GET", "/api/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def ask(address: tuple[str, int], kind: str, expected: tuple[int, ...], body: tuple) -> tuple[int, str | None]:
    """One request of a kind: its status and what was wrong with the answer (None: as expected)."""
    try:
        status, answer = slow_send(address) if kind == "slow" else send(address, kind, *body)
        return status, check(status, answer, expected)
    except OSError as err:
        return 0, f"{type(err).__name__}: {err}"


def burst(address: tuple[str, int], kind: str, body: tuple, clients: int, pid: int) -> dict:
    """`clients` requests of one kind at once: their statuses, problems, seconds and the server's peak memory."""
    results: list[tuple[int, str | None, float]] = []
    began = time.monotonic()

    def one() -> None:
        start = time.monotonic()
        results.append((*ask(address, kind, KINDS[kind][1], body), time.monotonic() - start))

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(status for status, _, _ in results)
    problems = [problem for _, problem, _ in results if problem]
    figures = {"statuses": statuses, "problems": problems, "seconds": time.monotonic() - began,
               "longest_s": max((seconds for _, _, seconds in results), default=0.0),
               "peak_mib": status_kib("VmHWM", pid) / 1024}
    print(f"burst: {clients} x {kind} ({len(body[1]):,} bytes) at once: statuses {statuses}, "
          f"{figures['seconds']:.1f}s, server peak {figures['peak_mib']:.0f} MiB", flush=True)
    return figures


def report(records, memory, elapsed, alive, args, bursts, started_kib, peak_kib) -> int:
    fast = [r for r in records if r[1] != "slow"]
    problems = [r for r in records if r[3]] + [(0, kind, 0, p, 0) for kind, b in bursts.items() for p in b["problems"]]
    print(f"{len(records)} requests in {elapsed:.1f}s from {args.clients} clients and 1 slow one: "
          f"{len(fast) / elapsed:,.0f} requests/s (slow client excluded)")
    print(f"{'kind':<14}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'unexpected':>12}  statuses")
    figures = {"requests": len(records), "seconds": elapsed, "requests_per_s": len(fast) / elapsed, "kinds": {},
               "windows": [], "bursts": bursts, "start_peak_mib": started_kib / 1024, "peak_mib": peak_kib / 1024}
    for kind in [*KINDS, "slow"]:
        times = [r[2] for r in records if r[1] == kind]
        if not times:
            continue
        bad = sum(1 for r in records if r[1] == kind and r[3])
        p50, p99 = np.percentile(times, [50, 99])
        counts = {str(code): sum(1 for r in records if r[1] == kind and r[4] == code)
                  for code in sorted({r[4] for r in records if r[1] == kind})}
        figures["kinds"][kind] = {"requests": len(times), "p50_ms": p50, "p99_ms": p99, "unexpected": bad,
                                  "statuses": counts}
        print(f"{kind:<14}{len(times):>9}{p50:>9.1f}{p99:>9.1f}{bad:>12}  "
              + " ".join(f"{code}:{n}" for code, n in counts.items()))
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
    print(f"server peak resident memory (VmHWM): {peak_kib / 1024:.0f} MiB ({started_kib / 1024:.0f} MiB after start"
          f"{f', budget {args.memory_mb} MiB' if args.memory_mb else ''})")
    longest = max([(r[2] / 1000, r[1]) for r in records if r[1] in READS]
                  + [(b["longest_s"], kind) for kind, b in bursts.items() if kind in READS], default=(0.0, "none"))
    late = longest[0] > SERVER_DEADLINE + DEADLINE_SLACK_S
    figures["longest_read_s"] = longest[0]
    print(f"longest image request, others in flight: {longest[0]:.2f} s ({longest[1]}); the server's deadline "
          f"{SERVER_DEADLINE:g} s{' EXCEEDED' if late else f' (+{DEADLINE_SLACK_S:g} s to decode): none waited longer'}")
    print(f"server {'still serving' if alive else 'DIED'}; {len(problems)} unexpected answers")
    if args.out:
        Path(args.out).write_text(json.dumps({**figures, "alive": alive, "unexpected": len(problems)}, indent=1))
    return 0 if alive and not problems and not late else 1


if __name__ == "__main__":
    sys.exit(main())
