"""python -m edge.pi.serve: the drawing page and the JSON API; every bad request a 4xx JSON error."""

import http.client
import io
import json
import socket
import threading
import time

import numpy as np
import pytest
from conftest import model_path
from PIL import Image

from edge.pi import serve
from edge.pi.classifier import DigitClassifier
from edge.pi.image import mnist_like
from edge.pi.reader import read_image
from edge.forms.synthetic import compose
from edge.tests.nonnumbers import non_number

TIMEOUT = 0.5  # seconds a client may stall, short for the test


@pytest.fixture(scope="module")
def server(fixtures):
    server = serve.make_server(str(model_path(fixtures, "int8")), port=0, threads=1, max_bytes=200_000,
                               timeout=TIMEOUT, max_connections=4, quiet=True, memory_mb=1024)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def request(server, method, path, body=b"", headers=None):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, response.getheader("Content-Type"), data
    finally:
        connection.close()


def post_json(server, path, body, content_type):
    status, kind, data = request(server, "POST", path, body, {"Content-Type": content_type})
    assert kind == "application/json"
    return status, json.loads(data)


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_page_and_health(server):
    status, kind, page = request(server, "GET", "/")
    assert status == 200 and kind.startswith("text/html") and b'<canvas id="pad"' in page and b"/api/read" in page
    status, kind, data = request(server, "GET", "/api/health")
    assert status == 200 and json.loads(data) == {"ok": True, "model": "model_int8.tflite",
                                                   "interpreter": server.classifier.backend}


def test_read_answers_as_edge_read_does(server, digits):
    pixels, labels = digits
    photo = png_bytes(compose(pixels[:3], "paper", np.random.default_rng(0)))
    status, answer = post_json(server, "/api/read", photo, "image/png")
    assert status == 200 and len(answer["text"]) == 3 and answer["ms"] > 0
    for digit in answer["digits"]:
        assert len(digit["probabilities"]) == 10 and digit["label"] == int(np.argmax(digit["probabilities"]))
        assert len(digit["box"]) == 4 and digit["probability"] == max(digit["probabilities"])
    same = read_image(server.classifier, photo, pairs=server.pairs).as_dict()  # what edge.pi.read prints with --json
    assert (answer["text"], answer["weakest"]) == (same["text"], same["weakest"])
    assert [{key: d[key] for key in same["digits"][0]} for d in answer["digits"]] == same["digits"]


def test_an_image_holding_no_number_is_answered_as_a_blank_drawing_is(server):
    blank = post_json(server, "/api/read", png_bytes(Image.new("L", (600, 240), 255)), "image/png")
    weave = post_json(server, "/api/read", png_bytes(non_number("woven", (600, 240), np.random.default_rng(0))),
                      "image/png")
    assert blank[0] == weave[0] == 422
    assert "no digit found" in blank[1]["error"] and "no number found" in weave[1]["error"]


def test_a_reading_past_its_deadline_is_a_503(fixtures, digits):
    late = serve.make_server(str(model_path(fixtures, "int8")), port=0, threads=1, quiet=True, memory_mb=1024,
                             deadline=1e-9)  # passed before the reading's first step
    thread = threading.Thread(target=late.serve_forever, daemon=True)
    thread.start()
    try:
        photo = png_bytes(compose(digits[0][:3], "paper", np.random.default_rng(0)))
        status, answer = post_json(late, "/api/read", photo, "image/png")
        assert status == 503 and "not read within 1e-09 s (--deadline)" in answer["error"]
        assert late.readers.acquire(blocking=False)  # the reading's turn was given back
    finally:
        late.shutdown()
        late.server_close()


def test_classify_takes_784_pixels(server, fixtures, digits):
    digit = mnist_like(digits[0][5].reshape(28, 28))
    status, answer = post_json(server, "/api/classify", json.dumps({"pixels": digit.ravel().tolist()}).encode(),
                               "application/json")
    expected = DigitClassifier(model_path(fixtures, "int8")).classify(digit)
    assert status == 200 and answer["label"] == expected.label and len(answer["probabilities"]) == 10


BAD_REQUESTS = [  # (path, body, content type, status, words of the error)
    ("/api/read", b"not an image at all", "image/png", 422, "not a readable image"),
    ("/api/read", b"", "image/png", 400, "empty body"),
    ("/api/read", b"{}", "application/json", 415, "send an image"),
    ("/api/read", png_bytes(Image.new("L", (100, 60), 255)), "image/png", 422, "no digit found"),
    ("/api/read", png_bytes(Image.new("L", (1, 1))), "image/png", 422, "too small"),
    ("/api/classify", b"[1, 2", "application/json", 400, "not JSON"),
    ("/api/classify", json.dumps({"pixels": [0] * 783}).encode(), "application/json", 400, "got 783"),
    ("/api/classify", json.dumps({"pixels": [0] * 783 + [256]}).encode(), "application/json", 400, "pixel 783"),
    ("/api/classify", json.dumps([0] * 783 + ["x"]).encode(), "application/json", 400, "pixel 783"),
    ("/api/classify", json.dumps({"pixels": [0] * 784}).encode(), "text/plain", 415, "application/json"),
    ("/api/nothing", b"", "application/json", 404, "no API"),
]
PIXELS = json.dumps([0] * 783)[:-1].encode()  # 783 pixels, the list left open for a last one
MALFORMED_JSON = [  # (body, words of the 400's error): any shape that is not 784 pixels
    (b'{"pixels": ' + b"[" * 60_000 + b"]" * 60_000 + b"}", "nested too deeply"),
    (PIXELS + b", 1" + b"0" * 5000 + b"]", "4300 digits"),  # past Python's integer conversion
    (PIXELS + b", 1" + b"0" * 29 + b"]", "an integer of 30 digits"),
    (PIXELS + b", 1e999]", "got Infinity"),
    (PIXELS + b", NaN]", "got NaN"),
    (PIXELS + b', {"a": [1]}]', 'got {"a": [1]}'),
    (b'{"pixels": {"a": 1}}', "got dict"),
    (b'{"pixels": [' + b"[0], " * 783 + b"[0]]}", "pixel 0: expected a number 0..255, got [0]"),
    (b"[" + json.dumps([0] * 784).encode() + b"]", "got 1"),
    (b'{"pixel": []}', "got NoneType"),
    (b'"pixels"', "got str"),
    (b"true", "got bool"),
    (b"\xff\xfe\x00garbage", "not JSON"),
]


@pytest.mark.parametrize("body, words", MALFORMED_JSON, ids=range(len(MALFORMED_JSON)))
def test_malformed_json_of_any_shape_is_a_400(server, body, words):
    got, answer = post_json(server, "/api/classify", body, "application/json")
    assert got == 400 and words in answer["error"], answer


def test_a_classify_body_is_capped_below_max_bytes(server, monkeypatch):
    monkeypatch.setattr(serve, "MAX_JSON_BYTES", 20_000)  # below the test server's max_bytes
    got, answer = post_json(server, "/api/classify", b" " * 20_001, "application/json")
    assert got == 413 and "body of 20,001 bytes; at most 20,000" in answer["error"]


def test_headers_beyond_their_cap_are_a_431_and_the_connection_is_served_after(server):
    headers = "".join(f"X-Filler-{i}: {'x' * 1000}\r\n" for i in range(serve.HEADER_BYTES // 1000 + 1))
    with socket.create_connection(server.server_address[:2], timeout=5) as raw:
        raw.sendall(f"GET /api/health HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        reply = b"".join(iter(lambda: raw.recv(4096), b""))
    assert reply.startswith(b"HTTP/1.1 431") and b"application/json" in reply
    assert request(server, "GET", "/api/health", headers={"X-Small": "y" * 2000})[0] == 200


@pytest.mark.parametrize("path, body, kind, status, words", BAD_REQUESTS)
def test_bad_requests_get_a_4xx_json_error(server, path, body, kind, status, words):
    got, answer = post_json(server, path, body, kind)
    assert got == status and words in answer["error"]


def test_truncated_image_and_oversized_body(server, digits):
    photo = png_bytes(compose(digits[0][:2], "paper", np.random.default_rng(0)))
    got, answer = post_json(server, "/api/read", photo[: len(photo) // 2], "image/png")
    assert got == 422 and "not a readable image" in answer["error"]
    got, answer = post_json(server, "/api/read", b"\0" * 300_000, "image/png")
    assert got == 413 and "300,000 bytes; at most 200,000" in answer["error"]
    with socket.create_connection(server.server_address[:2], timeout=5) as raw:  # refused before it is sent
        raw.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                    b"Content-Length: 999999999\r\nExpect: 100-continue\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 413")
    assert request(server, "GET", "/api/health")[0] == 200


def test_slow_and_idle_clients_are_dropped_and_do_not_block_others(server):
    with socket.create_connection(server.server_address[:2], timeout=5) as slow:
        slow.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\nab")
        assert request(server, "GET", "/api/health")[0] == 200  # served while the slow one stalls
        reply = b"".join(iter(lambda: slow.recv(4096), b""))  # after TIMEOUT the server answers 408 and closes
        assert reply.startswith(b"HTTP/1.1 408") and b"too slowly" in reply


def test_connections_beyond_the_cap_get_503(server):
    idle = [socket.create_connection(server.server_address[:2], timeout=5) for _ in range(4)]
    try:
        time.sleep(0.1)
        with socket.create_connection(server.server_address[:2], timeout=5) as extra:
            extra.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert extra.recv(4096).startswith(b"HTTP/1.1 503")
    finally:
        for connection in idle:
            connection.close()
    deadline = time.monotonic() + 5
    while request(server, "GET", "/api/health")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_taken_port_is_one_line(server, fixtures, capsys):
    port = server.server_address[1]
    assert serve.main([str(model_path(fixtures, "int8")), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: 127.0.0.1:{port}: cannot listen there") and len(err.splitlines()) == 1


def test_a_trickling_client_is_answered_408_by_the_deadline(server):
    with socket.create_connection(server.server_address[:2], timeout=5) as slow:
        slow.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n")
        start = time.monotonic()
        reply = b""
        for _ in range(40):  # a byte every 0.05 s: every read gets something, so only the deadline ends it
            try:
                slow.sendall(b"x")
            except OSError:
                break
            time.sleep(0.05)
            if time.monotonic() - start > 4 * TIMEOUT:
                break
        slow.settimeout(5)
        reply = b"".join(iter(lambda: slow.recv(4096), b""))
    assert reply.startswith(b"HTTP/1.1 408") and b"too slowly" in reply


def test_http_servers_own_refusals_are_json(server):
    with socket.create_connection(server.server_address[:2], timeout=5) as raw:
        raw.sendall(b"NOT-HTTP\r\n\r\n")
        reply = b"".join(iter(lambda: raw.recv(4096), b""))
    assert reply.startswith(b"HTTP/1.1 400") and b'"error"' in reply and b"application/json" in reply


def test_a_budget_too_small_for_the_server_is_one_line(fixtures, capsys):
    assert serve.main([str(model_path(fixtures, "int8")), "--port", "0", "--memory_mb", "20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --memory_mb 20: too little; the server takes") and len(err.splitlines()) == 1
    assert serve.main([str(model_path(fixtures, "int8")), "--port", "0", "--max_bytes", str(900 << 20)]) == 2
    assert "is more than the" in capsys.readouterr().err
