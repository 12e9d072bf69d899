"""A drawing page and a JSON API for a digit model, served from the Pi (standard library only).

    python -m edge.pi.serve model_int8.tflite                      # http://127.0.0.1:8000/
    python -m edge.pi.serve model_int8.tflite --host 0.0.0.0 --port 8080 --threads 2

GET /            the page: draw a digit or a number with mouse or finger (or upload a photo); it
                 shows the reading and each digit's ten probabilities as bars
POST /api/read   an image file as the body (Content-Type image/* or application/octet-stream):
                 {"text": "42", "weakest": p, "digits": [{"label", "probability", "box",
                 "probabilities"}, ...], "ms": ...}, as edge.pi.read reads it
POST /api/classify  {"pixels": [784 raw values 0..255]} (Content-Type application/json), one
                 MNIST-like digit: {"label", "probability", "probabilities", "ms"}
GET /api/health  {"ok": true, "model": ..., "interpreter": ...}

Binds to 127.0.0.1 unless --host says otherwise. A bad request gets a 4xx JSON {"error": ...} and
the server keeps serving: a body over --max_bytes is 413 (not read), a wrong content type 415, no
length 411, a request not in within --timeout seconds 408 (however it trickles), at most
--max_connections at once (503 beyond), headers over 32 KiB 431, JSON of any shape that is not 784
pixels 400 (a classify body over 256 KiB 413). An image that holds no number (noise, dots, a
texture, blank or ruled paper) is 422, as a blank drawing is.

Time: each image is read within --deadline seconds of its arrival, queue included, else 503 (try
again): at most as many images are read at once as there are cores (the others wait their turn
within the deadline), and a reading checks its deadline between steps and at every model call;
the reader itself bounds what one image may cost (edge/pi/pieces.py, edge/pi/budget.py).

Memory: the server's resident memory stays under --memory_mb MiB (default 384, for a 1 GB Pi
with room for its system) whatever arrives. What the server itself takes at start, and a share per
connection, are set aside; the rest is a pool from which each request takes what it needs before
it allocates: its body, then its image's decoding as the header says it will take (edge/pi/image.py:
JPEGs are decoded at a fraction of their size) and the reading. An image that would need more than
the pool (or over edge/pi/image.py's 256 MiB to decode) is 413 before decoding; a request that finds
no room within 2 seconds, because other large images are being decoded, is 503 (try again).
numpy, Pillow and an interpreter only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from common.errors import InputError, ProjectError, add_debug_flag, exit_status
from edge.pi.budget import DeadlinePassed
from edge.pi.classifier import (
    INTERPRETER_ERRORS,
    NUM_PIXELS,
    ClassifierOptions,
    DigitClassifier,
)
from edge.pi.image import ImageError, ImageTooLarge, decode_bytes, opened_image
from edge.pi.memory import MIB, MemoryPool, PoolBusy, release_freed_memory, status_kib
from edge.pi.reader import WORK_SIDE, read_image
from edge.pi.touching import PairModels, pair_models_beside

PAGE = Path(__file__).with_name("page.html")
IMAGE_TYPES = ("image/", "application/octet-stream")
WATCH_SECONDS = 0.25  # how often the deadlines of requests in progress are checked
DRAIN_FACTOR = 4  # a too-large body up to this many times --max_bytes is read and dropped before the 413
MEMORY_MB = 384  # default --memory_mb: a 1 GB Pi keeps well over half for its system and other programs
MEMORY_WAIT_S = 2.0  # a request waits this long for room in the memory pool, then gets a 503
MAX_JSON_BYTES = 256 << 10  # a classify body (784 numbers take under 16 KiB; JSON nested 100,000 deep 200 KB)
JSON_BYTES_PER_BYTE = 40  # Python objects parsed from a byte of JSON at most ("[[],[],..." : 56 bytes a list)
READ_BYTES_PER_PIXEL = 48  # edge/pi/reader.py's arrays per pixel of the shrunk image (45 measured on noise)
HEADER_BYTES = 32 << 10  # request line and headers of one request (http.server alone allows 100 x 64 KiB)
CONNECTION_BYTES = 1 * MIB  # set aside per connection: its headers parsed, thread, buffers
SLACK_BYTES = 16 * MIB  # set aside for the allocator's own overhead and Python's small objects
DEADLINE_S = 10.0  # default --deadline: a Pi 4 reads the costliest image the reader takes in about 5 s


class RequestError(ProjectError):
    """A request the server refuses: its HTTP status and a message for the client."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class DigitServer(ThreadingHTTPServer):
    """One thread per connection, at most max_connections at once; one shared classifier."""

    daemon_threads = True
    request_queue_size = 64  # socketserver's 5 drops bursts of connections: a client then waits 1 s to retry

    def __init__(self, address: tuple[str, int], classifier: DigitClassifier, model: str, max_bytes: int,
                 timeout: float, max_connections: int, quiet: bool = False, memory_mb: int = MEMORY_MB,
                 pairs: PairModels | None = None, deadline: float = DEADLINE_S):
        self.classifier, self.model, self.max_bytes, self.quiet = classifier, model, max_bytes, quiet
        self.pairs = pairs  # the reader's pair models, where make tflite wrote them beside the model
        self.request_timeout = timeout
        self.deadline = deadline  # seconds from a request's arrival to its reading's end
        self.readers = threading.BoundedSemaphore(os.cpu_count() or 1)  # images read at once: more only queue
        self.slots = threading.BoundedSemaphore(max_connections)
        self.page = PAGE.read_bytes()
        self.memory = MemoryPool(pool_bytes(memory_mb, max_connections))
        if max_bytes > self.memory.capacity:
            raise InputError(f"--max_bytes {max_bytes:,} is more than the {self.memory.capacity:,} bytes that "
                             f"--memory_mb {memory_mb} leaves for requests")
        self.deadlines: dict[Handler, float] = {}  # each request in progress: when it must have arrived
        self.deadline_lock = threading.Lock()
        self.watching = True
        super().__init__(address, Handler)
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self) -> None:
        """Stop reading from requests that are not in by their deadline (a client trickling bytes
        defeats a per-read timeout); they are answered 408."""
        while self.watching:
            time.sleep(WATCH_SECONDS)
            now = time.monotonic()
            with self.deadline_lock:
                late = [handler for handler, deadline in self.deadlines.items() if deadline < now]
                for handler in late:
                    del self.deadlines[handler]
            for handler in late:
                handler.stop_reading()

    def server_close(self) -> None:
        self.watching = False
        super().server_close()

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            try:
                body = json.dumps({"error": "too many connections; try again"}).encode()
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class HeaderLimit:
    """A connection's reader allowing `left` bytes of request line and headers (reset per request):
    http.server reads up to 100 header lines of 64 KiB, several copies of 6 MiB for each connection.
    Past the limit a line reads as too long, which http.server answers 431. Bodies read as they are."""

    def __init__(self, reader):
        self.reader, self.left = reader, HEADER_BYTES

    def readline(self, limit: int = -1) -> bytes:
        if self.left <= 0:
            return b"x" * (limit if limit > 0 else 1 << 16)  # longer than http.server's limit is asked for
        line = self.reader.readline(min(limit, self.left) if limit > 0 else self.left)
        self.left -= len(line)
        return line

    def __getattr__(self, name: str):
        return getattr(self.reader, name)


class Handler(BaseHTTPRequestHandler):
    server: DigitServer
    protocol_version = "HTTP/1.1"  # keep-alive: a page's requests reuse one connection
    default_request_version = "HTTP/1.0"  # not 0.9: a garbled request line still gets a status line and JSON
    server_version = "edge.pi.serve"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # a client that stalls this long is dropped
        self.late = False
        super().setup()
        self.rfile = HeaderLimit(self.rfile)

    def handle_one_request(self) -> None:
        self.rfile.left = HEADER_BYTES
        with self.server.deadline_lock:
            self.server.deadlines[self] = time.monotonic() + self.server.request_timeout
        try:
            super().handle_one_request()
        finally:
            with self.server.deadline_lock:
                self.server.deadlines.pop(self, None)

    def stop_reading(self) -> None:
        self.late = True
        try:
            self.connection.shutdown(socket.SHUT_RD)  # the read in progress ends; the answer can still go out
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a bad request line, headers too long, ...) as JSON too."""
        self.close_connection = True
        status = HTTPStatus.REQUEST_TIMEOUT if self.late else HTTPStatus(code)
        self.send_json(status, {"error": "the request came too slowly" if self.late else message or status.phrase})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if self.late:
            self.send_error(HTTPStatus.REQUEST_TIMEOUT)
        elif path in ("/", "/index.html"):
            self.send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif path == "/api/health":
            self.send_json(HTTPStatus.OK, {"ok": True, "model": Path(self.server.model).name,
                                           "interpreter": self.server.classifier.backend})
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no page {path}; try / or POST /api/read"})

    def do_POST(self) -> None:
        routes = {"/api/read": (self.api_read, self.server.max_bytes),
                  "/api/classify": (self.api_classify, min(self.server.max_bytes, MAX_JSON_BYTES))}
        route, max_bytes = routes.get(self.path.split("?", 1)[0], (None, 0))
        try:
            if self.late:
                raise RequestError(HTTPStatus.REQUEST_TIMEOUT, "the request came too slowly")
            if route is None:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no API {self.path}; POST /api/read or /api/classify")
            with contextlib.ExitStack() as self.holding:  # the memory the request takes, until it is answered
                self.arrived = time.monotonic()
                start = time.perf_counter()
                answer = route(self.body(max_bytes))
                self.send_json(HTTPStatus.OK, {**answer, "ms": round(1000 * (time.perf_counter() - start), 2)})
        except RequestError as err:
            self.send_json(err.status, {"error": str(err)})
        except Exception as err:  # a bug must not stop the server: answer 500 and log it
            self.log_error("internal error: %s: %s", type(err).__name__, err)
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error; see the server's log"})

    def do_PUT(self) -> None:
        self.send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET for the page, POST for the API"})

    do_DELETE = do_PATCH = do_PUT

    def body(self, max_bytes: int) -> bytes:
        """The request's body, refused before reading when it is too large or of unknown length, read
        once the memory pool has room for it (kept there until the answer is sent)."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or length is None:
            self.close_connection = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length (no chunked bodies)")
        if not length.strip().isdigit():
            self.close_connection = True
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length {length[:20]!r} is not a number")
        size = int(length)
        if size > max_bytes:
            self.close_connection = True
            if size <= DRAIN_FACTOR * max_bytes:  # read and drop it, so the client sees the answer
                self.drain(size)
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self.too_large(size, max_bytes))
        try:
            self.hold(size)
        except RequestError:
            self.close_connection = True
            self.drain(size)
            raise
        try:
            data = self.rfile.read(size)
        except TimeoutError:
            self.close_connection = True
            raise RequestError(HTTPStatus.REQUEST_TIMEOUT, "the body came too slowly: it stalled") from None
        if len(data) < size:
            self.close_connection = True
            if self.late:
                raise RequestError(HTTPStatus.REQUEST_TIMEOUT, f"the body came too slowly: {len(data):,} of "
                                   f"{size:,} bytes in {self.server.request_timeout:g}s")
            raise RequestError(HTTPStatus.BAD_REQUEST, f"body cut short: {len(data):,} of {size:,} bytes")
        return data

    def too_large(self, size: int, max_bytes: int) -> str:
        return f"body of {size:,} bytes; at most {max_bytes:,} are taken"

    def hold(self, size: int) -> None:
        """Take `size` bytes of the memory pool until the request is answered, else a 503."""
        try:
            self.holding.enter_context(self.server.memory.hold(size, MEMORY_WAIT_S))
        except PoolBusy:
            raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, "busy: other requests hold this server's memory "
                               "(--memory_mb); try again") from None

    def drain(self, size: int) -> None:
        try:
            while size > 0:
                chunk = self.rfile.read(min(size, 1 << 16))
                if not chunk:
                    break
                size -= len(chunk)
        except OSError:
            pass

    def handle_expect_100(self) -> bool:
        """Refuse a body that will be too large before the client sends it (Expect: 100-continue)."""
        length = self.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) > self.server.max_bytes:
            self.close_connection = True
            self.send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           {"error": self.too_large(int(length), self.server.max_bytes)})
            return False
        return super().handle_expect_100()

    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def api_read(self, data: bytes) -> dict:
        if not self.content_type().startswith(IMAGE_TYPES):
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                               f"Content-Type {self.content_type() or 'missing'}; send an image (image/png, image/jpeg)")
        if not data:
            raise RequestError(HTTPStatus.BAD_REQUEST, "empty body; send an image file")
        try:
            needed = image_bytes(data)
            if needed + len(data) > self.server.memory.capacity:  # the body is held already
                raise ImageTooLarge(f"the image would take about {needed / MIB:,.0f} MiB to decode and read; this "
                                    f"server takes at most {self.server.memory.capacity / MIB:,.0f} MiB (--memory_mb)")
            self.hold(needed)
            deadline = self.arrived + self.server.deadline
            if not self.server.readers.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise DeadlinePassed
            try:
                reading = read_image(self.server.classifier, data, name="the image", pairs=self.server.pairs,
                                     deadline=deadline)
            finally:
                self.server.readers.release()
        except DeadlinePassed:
            raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, f"busy: the image was not read within "
                               f"{self.server.deadline:g} s (--deadline) of its arrival; try again") from None
        except ImageTooLarge as err:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(err)) from None
        except ImageError as err:
            raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, str(err)) from None
        answer = reading.as_dict()
        for entry, digit in zip(answer["digits"], reading.digits):
            entry["probabilities"] = [round(float(p), 4) for p in digit.probabilities]
        return answer

    def api_classify(self, data: bytes) -> dict:
        if self.content_type() != "application/json":
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                               f"Content-Type {self.content_type() or 'missing'}; send application/json")
        self.hold(JSON_BYTES_PER_BYTE * len(data))
        pixels = parse_pixels(data)
        probabilities = self.server.classifier.predict(pixels[None])[0]
        label = int(np.argmax(probabilities))
        return {"label": label, "probability": round(float(probabilities[label]), 4),
                "probabilities": [round(float(p), 4) for p in probabilities]}

    def send_json(self, status: HTTPStatus, payload: dict) -> None:
        self.send(status, json.dumps(payload).encode(), "application/json")

    def send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client went away; nothing to answer
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)


def parse_pixels(data: bytes) -> np.ndarray:
    """784 raw pixels 0..255 from {"pixels": [...]} (or a bare list), else a 400 saying what was wrong."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise RequestError(HTTPStatus.BAD_REQUEST, "JSON nested too deeply; expected {\"pixels\": [...]}") from None
    except ValueError as err:  # not JSON, not UTF-8, or an integer of over 4,300 digits
        raise RequestError(HTTPStatus.BAD_REQUEST, f"not JSON: {str(err)[:200]}") from None
    pixels = value.get("pixels") if isinstance(value, dict) else value
    if not isinstance(pixels, list) or len(pixels) != NUM_PIXELS:
        size = len(pixels) if isinstance(pixels, list) else type(pixels).__name__
        raise RequestError(HTTPStatus.BAD_REQUEST, f'expected {{"pixels": [{NUM_PIXELS} values 0..255]}}, got {size}')
    for i, p in enumerate(pixels):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 255:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"pixel {i}: expected a number 0..255, got {shown(p)}")
    return np.array(pixels, dtype=np.float32)


def shown(value) -> str:
    """A JSON value as a client sent it, cut to 20 characters (a 4,000-digit integer too)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 20:
        return f"an integer of {len(str(abs(value)))} digits"
    return json.dumps(value)[:20]


def image_bytes(data: bytes) -> int:
    """What reading an image takes, from its header: decoding and shrinking it, then the reading."""
    with opened_image(data, "the image") as (image, _):
        width, height = image.size
        decoding = decode_bytes(image, data, WORK_SIDE)
    shrunk = width * height * min(1.0, WORK_SIDE / max(width, height)) ** 2
    return decoding + int(READ_BYTES_PER_PIXEL * shrunk)


def pool_bytes(memory_mb: int, max_connections: int) -> int:
    """The bytes requests may hold at once: --memory_mb less what the server holds now (the
    interpreter and model loaded), a share per connection and the allocator's slack."""
    resident = status_kib("VmRSS") * 1024 or 64 * MIB  # 64 MiB where /proc is missing (measured: 50-60)
    set_aside = resident + max_connections * CONNECTION_BYTES + SLACK_BYTES
    pool = memory_mb * MIB - set_aside
    if pool < 16 * MIB:
        raise InputError(f"--memory_mb {memory_mb}: too little; the server takes {resident / MIB:.0f} MiB, "
                         f"{max_connections} connections {max_connections * CONNECTION_BYTES / MIB:.0f} MiB, "
                         f"so give at least {(set_aside + 16 * MIB) / MIB:.0f}")
    return pool


def make_server(model: str, host: str = "127.0.0.1", port: int = 8000, threads: int | None = None,
                max_bytes: int = 4 << 20, timeout: float = 10.0, max_connections: int = 32,
                quiet: bool = False, memory_mb: int = MEMORY_MB, deadline: float = DEADLINE_S) -> DigitServer:
    release_freed_memory()
    classifier = DigitClassifier(model, ClassifierOptions(num_threads=threads))
    pairs = pair_models_beside(model, threads)  # loaded before the memory budget is worked out
    try:
        return DigitServer((host, port), classifier, model, max_bytes, timeout, max_connections, quiet, memory_mb,
                           pairs, deadline)
    except OSError as err:  # the port is taken, the address is not this machine's, a port below 1024
        raise InputError(f"{host}:{port}: cannot listen there: {err.strerror or err}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an exported .tflite file (make tflite)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 for the network (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free one (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: every core)")
    parser.add_argument("--max_bytes", type=int, default=4 << 20, help="largest request body (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a client may stall (default: %(default)s)")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S,
                        help="seconds from an image's arrival to its reading's end, else 503 (default: %(default)s)")
    parser.add_argument("--max_connections", type=int, default=32, help="connections at once (default: %(default)s)")
    parser.add_argument("--memory_mb", type=int, default=MEMORY_MB,
                        help="the server's resident memory stays under this many MiB (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if min(args.max_bytes, args.max_connections) < 1 or min(args.timeout, args.deadline) <= 0 or not 0 <= args.port <= 65535:
        parser.error("--max_bytes, --max_connections, --timeout and --deadline must be positive, --port 0..65535")

    def serve() -> None:
        server = make_server(args.model, args.host, args.port, args.threads, args.max_bytes, args.timeout,
                             args.max_connections, args.quiet, args.memory_mb, args.deadline)
        host, port = server.server_address[:2]
        print(f"serving http://{host}:{port}/ with {args.model} on {server.classifier.backend} "
              f"(Ctrl-C stops)", flush=True)
        if not args.quiet:
            print(f"memory: under {args.memory_mb} MiB, {server.memory.capacity / MIB:.0f} MiB of it for requests",
                  file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        finally:
            server.server_close()

    return exit_status(serve, args.debug, also=INTERPRETER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
