"""edge/pi/image.py's bound on one image's decoding: the estimate from the header, against the peak
memory of a process that decodes the image (VmHWM), and the refusal before decoding."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from PIL import Image

from edge.pi.image import ImageTooLarge, jpeg_scans, read_grey

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc")
MIB = 1 << 20

# Decode one file as edge.pi.read does (shrunk to 1,024) in a fresh process: its peak memory beyond
# what it held before, and the estimate; or the refusal, when max_bytes is given.
MEASURE = """
import json, sys
from edge.pi.image import ImageTooLarge, decode_bytes, opened_image, read_grey
from edge.pi.memory import status_kib
path, max_bytes = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
with opened_image(data, path) as (image, _):
    estimate = decode_bytes(image, data, 1024)
before = status_kib("VmHWM")
try:
    read_grey(data, max_side=1024, max_bytes=max_bytes)
    refused = None
except ImageTooLarge as err:
    refused = str(err)
print(json.dumps({"estimate": estimate, "measured": (status_kib("VmHWM") - before) * 1024, "refused": refused}))
"""


def measure(path: Path, max_bytes: int = 1 << 40) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(max_bytes)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


IMAGES = {  # name: (mode, size, format, save options); white, so the files are small and the pixels many
    "grey.png": ("L", (4000, 3000), "PNG", {}),
    "rgb.png": ("RGB", (3000, 3000), "PNG", {}),
    "rgba.png": ("RGBA", (3000, 2000), "PNG", {}),
    "baseline.jpg": ("RGB", (4000, 3000), "JPEG", {}),
    "progressive.jpg": ("RGB", (4000, 3000), "JPEG", {"progressive": True, "subsampling": 0}),
    "rgb.webp": ("RGB", (3000, 2000), "WEBP", {}),
}


@pytest.mark.parametrize("name", IMAGES)
def test_the_estimate_covers_the_peak_memory_of_decoding(tmp_path, name):
    mode, size, kind, options = IMAGES[name]
    path = tmp_path / name
    Image.new(mode, size, "white").save(path, kind, **options)
    figures = measure(path)
    assert figures["refused"] is None
    full_size = size[0] * size[1] * (1 if mode == "L" else 4)
    assert figures["measured"] > full_size / 8  # the decoding was measured (a JPEG draft is an eighth or more)
    assert figures["measured"] <= figures["estimate"] <= 3 * figures["measured"] + 8 * MIB, figures


def test_an_image_over_the_bound_is_refused_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (5000, 5000), "white").save(path)  # 100 MB decoded, 80 KB of file
    figures = measure(path, max_bytes=32 * MIB)
    assert "5000x5000 pixels (PNG RGB) would take about" in figures["refused"]
    assert "at most 32 MiB are taken" in figures["refused"]
    assert figures["measured"] < 4 * MIB  # nothing was decoded
    with pytest.raises(ImageTooLarge, match="big.png: 5000x5000"):
        read_grey(path, max_bytes=32 * MIB)


def test_progressive_and_sequential_jpegs_are_told_apart():
    image = Image.new("RGB", (64, 48), "white")
    scans = {}
    for progressive in (False, True):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", progressive=progressive)
        scans[progressive] = jpeg_scans(buffer.getvalue())
    assert scans == {False: 1, True: 2}
    assert jpeg_scans(b"\xff\xd8 not a jpeg") == 0
