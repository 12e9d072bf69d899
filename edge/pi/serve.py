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
--max_connections at once (503 beyond). numpy, Pillow and an interpreter only.
"""

from __future__ import annotations

import argparse
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

from common.errors import InputError, add_debug_flag, exit_status
from edge.pi.classifier import (
    INTERPRETER_ERRORS,
    NUM_PIXELS,
    ClassifierOptions,
    DigitClassifier,
)
from edge.pi.image import ImageError
from edge.pi.reader import read_image

PAGE = Path(__file__).with_name("page.html")
IMAGE_TYPES = ("image/", "application/octet-stream")
WATCH_SECONDS = 0.25  # how often the deadlines of requests in progress are checked
DRAIN_FACTOR = 4  # a too-large body up to this many times --max_bytes is read and dropped before the 413


class RequestError(Exception):
    """A request the server refuses: its HTTP status and a message for the client."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class DigitServer(ThreadingHTTPServer):
    """One thread per connection, at most max_connections at once; one shared classifier."""

    daemon_threads = True
    request_queue_size = 64  # socketserver's 5 drops bursts of connections: a client then waits 1 s to retry

    def __init__(self, address: tuple[str, int], classifier: DigitClassifier, model: str, max_bytes: int,
                 timeout: float, max_connections: int, quiet: bool = False):
        self.classifier, self.model, self.max_bytes, self.quiet = classifier, model, max_bytes, quiet
        self.request_timeout = timeout
        self.slots = threading.BoundedSemaphore(max_connections)
        # Images are decoded at full size before shrinking (a 4 MB PNG can hold 50 megapixels): as many
        # at once as there are cores bounds the memory and costs no throughput, the work being CPU-bound.
        self.decoding = threading.BoundedSemaphore(os.cpu_count() or 1)
        self.page = PAGE.read_bytes()
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


class Handler(BaseHTTPRequestHandler):
    server: DigitServer
    protocol_version = "HTTP/1.1"  # keep-alive: a page's requests reuse one connection
    default_request_version = "HTTP/1.0"  # not 0.9: a garbled request line still gets a status line and JSON
    server_version = "edge.pi.serve"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # a client that stalls this long is dropped
        self.late = False
        super().setup()

    def handle_one_request(self) -> None:
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
        routes = {"/api/read": self.api_read, "/api/classify": self.api_classify}
        route = routes.get(self.path.split("?", 1)[0])
        try:
            if self.late:
                raise RequestError(HTTPStatus.REQUEST_TIMEOUT, "the request came too slowly")
            if route is None:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no API {self.path}; POST /api/read or /api/classify")
            start = time.perf_counter()
            answer = route(self.body())
            self.send_json(HTTPStatus.OK, {**answer, "ms": round(1000 * (time.perf_counter() - start), 2)})
        except RequestError as err:
            self.send_json(err.status, {"error": str(err)})
        except Exception as err:  # a bug must not stop the server: answer 500 and log it
            self.log_error("internal error: %s: %s", type(err).__name__, err)
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error; see the server's log"})

    def do_PUT(self) -> None:
        self.send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET for the page, POST for the API"})

    do_DELETE = do_PATCH = do_PUT

    def body(self) -> bytes:
        """The request's body, refused before reading when it is too large or of unknown length."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or length is None:
            self.close_connection = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length (no chunked bodies)")
        if not length.strip().isdigit():
            self.close_connection = True
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length {length[:20]!r} is not a number")
        size = int(length)
        if size > self.server.max_bytes:
            self.close_connection = True
            if size <= DRAIN_FACTOR * self.server.max_bytes:  # read and drop it, so the client sees the answer
                self.drain(size)
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self.too_large(size))
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

    def too_large(self, size: int) -> str:
        return f"body of {size:,} bytes; at most {self.server.max_bytes:,} are taken"

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
            self.send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": self.too_large(int(length))})
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
            with self.server.decoding:
                reading = read_image(self.server.classifier, data, name="the image")
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
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"not JSON: {err}") from None
    pixels = value.get("pixels") if isinstance(value, dict) else value
    if not isinstance(pixels, list) or len(pixels) != NUM_PIXELS:
        size = len(pixels) if isinstance(pixels, list) else type(pixels).__name__
        raise RequestError(HTTPStatus.BAD_REQUEST, f'expected {{"pixels": [{NUM_PIXELS} values 0..255]}}, got {size}')
    for i, p in enumerate(pixels):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 255:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"pixel {i}: expected a number 0..255, got {json.dumps(p)[:20]}")
    return np.array(pixels, dtype=np.float32)


def make_server(model: str, host: str = "127.0.0.1", port: int = 8000, threads: int | None = None,
                max_bytes: int = 4 << 20, timeout: float = 10.0, max_connections: int = 32,
                quiet: bool = False) -> DigitServer:
    classifier = DigitClassifier(model, ClassifierOptions(num_threads=threads))
    try:
        return DigitServer((host, port), classifier, model, max_bytes, timeout, max_connections, quiet)
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
    parser.add_argument("--max_connections", type=int, default=32, help="connections at once (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if min(args.max_bytes, args.max_connections) < 1 or args.timeout <= 0 or not 0 <= args.port <= 65535:
        parser.error("--max_bytes, --max_connections and --timeout must be positive, --port 0..65535")

    def serve() -> None:
        server = make_server(args.model, args.host, args.port, args.threads, args.max_bytes, args.timeout,
                             args.max_connections, args.quiet)
        host, port = server.server_address[:2]
        print(f"serving http://{host}:{port}/ with {args.model} on {server.classifier.backend} "
              f"(Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        finally:
            server.server_close()

    return exit_status(serve, args.debug, also=INTERPRETER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
