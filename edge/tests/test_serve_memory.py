"""edge.pi.serve under --memory_mb: concurrent large decodes in a server process, its peak memory
(VmHWM) measured; every request answered, the server serving after."""

import http.client
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, model_path
from PIL import Image

from edge.pi.memory import status_kib

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc")
BUDGET_MB = 240  # a pool of about 150 MiB: one 3000x3000 PNG (113 MiB) at a time
CLIENTS = 8


@pytest.fixture(scope="module")
def server(fixtures):
    process = subprocess.Popen([sys.executable, "-m", "edge.pi.serve", str(model_path(fixtures, "int8")), "--port", "0",
                                "--quiet", "--memory_mb", str(BUDGET_MB), "--max_connections", "16"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()
    assert first.startswith("serving http://"), first + process.stderr.read()
    host, port = first.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    yield process, (host, int(port))
    process.terminate()
    process.wait(timeout=10)


def post(address, path, body, content_type):
    connection = http.client.HTTPConnection(*address, timeout=60)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def white_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), "white").save(buffer, "PNG")
    return buffer.getvalue()


def inked_png(side: int, pixels) -> bytes:
    """A white RGB page `side` pixels square with a number written across it, dark digits a sixth
    of its side tall: decoded, shrunk and read through every step of the reader."""
    page = np.full((side, side), 255, np.uint8)
    scale = side // 6 // 28
    for k, digit in enumerate(pixels):
        big = 255 - np.kron(digit.reshape(28, 28), np.ones((scale, scale), np.uint8))
        top, left = side // 3, side // 10 + k * (28 * scale + side // 20)
        page[top:top + big.shape[0], left:left + big.shape[1]] = big
    buffer = io.BytesIO()
    Image.fromarray(page).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def test_concurrent_large_decodes_stay_within_the_budget(server, digits):
    process, address = server
    body = inked_png(3000, digits[0][:4])  # 36 MB decoded from about 100 KB: eight at once would take about 500 MB
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(post(address, "/api/read", body, "image/png")))
               for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(status for status, _ in answers)
    assert len(answers) == CLIENTS and set(statuses) <= {200, 503}, answers
    assert 200 in statuses  # at least one was decoded and read, the others waited or were told to retry
    assert all(len(a["text"]) == 4 if status == 200 else "try again" in a["error"] for status, a in answers)
    peak_mib = status_kib("VmHWM", process.pid) / 1024
    assert 0 < peak_mib <= BUDGET_MB
    assert post(address, "/api/classify", json.dumps({"pixels": [0] * 784}).encode(), "application/json")[0] == 200


def test_an_image_larger_than_the_budget_is_a_413_before_decoding(server):
    process, address = server
    before = status_kib("VmHWM", process.pid)
    status, answer = post(address, "/api/read", white_png(6000), "image/png")  # 144 MB decoded
    assert status == 413 and "this server takes at most" in answer["error"] and "--memory_mb" in answer["error"]
    assert status_kib("VmHWM", process.pid) - before < 8 * 1024  # KiB: nothing was decoded


def test_deep_json_from_many_clients_is_a_400_each(server):
    process, address = server
    body = b"[" * 100_000 + b"]" * 100_000
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(post(address, "/api/classify", body, "application/json")))
               for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [status for status, _ in answers] == [400] * CLIENTS
    assert all("nested too deeply" in answer["error"] for _, answer in answers)
    assert process.poll() is None
