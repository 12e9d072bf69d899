"""python -m edge.pi.bench: per model and thread count, ms per digit and digits/s, with the CPU named."""

import json
from pathlib import Path

import numpy as np
from conftest import model_path
from PIL import Image

from edge.forms.synthetic import compose
from edge.pi import bench, read
from edge.tests.nonnumbers import non_number

PI4_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08

Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""


def test_bench_prints_a_row_per_model_and_thread_count_and_writes_json(tmp_path, fixtures, capsys):
    models = [str(model_path(fixtures, v)) for v in ("int8", "float32")]
    out = tmp_path / "bench.json"
    code = bench.main([*models, "--threads", "1", "2", "--runs", "5", "--batch", "8", "--batches", "2",
                       "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("interpreter: ") and printed[1].startswith("cpu: ") and printed[2].startswith("flags:")
    assert [line.split()[:2] for line in printed[4:]] == [["model_int8.tflite", "1"], ["model_int8.tflite", "2"],
                                                         ["model_float32.tflite", "1"], ["model_float32.tflite", "2"]]
    report = json.loads(out.read_text())
    assert report["cpu"]["cores"] >= 1 and report["version"] != "?" and len(report["rows"]) == 4
    for row in report["rows"]:
        assert 0 < row["ms_median"] <= row["ms_p99"] and row["digits_per_s_batched"] > 0 and row["runs"] == 5


def test_cpu_info_names_a_pi_and_its_features(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(PI4_CPUINFO)
    info = bench.cpu_info(str(cpuinfo))
    assert info["model"] == "Cortex-A72 (Pi 4) on Raspberry Pi 4 Model B Rev 1.4"
    assert "asimd" in info["flags"] and info["cores"] >= 1
    assert bench.cpu_info(str(tmp_path / "absent"))["model"] == "?"


def test_a_missing_model_is_one_line(tmp_path, capsys):
    assert bench.main([str(tmp_path / "absent.tflite"), "--runs", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "absent.tflite: no such model file" in err and len(err.splitlines()) == 1



def test_read_times_each_image_and_names_the_slowest(tmp_path, fixtures, digits, capsys):
    pixels, _ = digits
    number, page = tmp_path / "number.png", tmp_path / "dots.png"
    compose(pixels[:3], "paper", np.random.default_rng(0)).save(number)
    non_number("dots", (640, 480), np.random.default_rng(1)).save(page)
    model = str(model_path(fixtures, "int8"))
    assert read.main([model, str(number), "--json", "--threads", "1"]) == 0
    expected = json.loads(capsys.readouterr().out)["text"]  # what edge.pi.read reads
    out = tmp_path / "reading.json"
    assert bench.main([model, "--read", str(number), str(page), "--json", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[3].startswith("reading with model_int8.tflite, 1 thread; touching digits by the pair models")
    with Image.open(number) as image:
        size = f"{image.width}x{image.height}"
    assert [line.split()[:2] for line in printed[5:7]] == [["number.png", size], ["dots.png", "640x480"]]
    report = json.loads(out.read_text())
    readings = report["readings"]
    assert [r["image"] for r in readings] == [str(number), str(page)] and report["threads"] == 1
    assert readings[0]["read"] == expected and readings[1]["read"].startswith("refused: no number")
    assert all(r["seconds"] > 0 and r["cpu_seconds"] >= 0 for r in readings)
    slowest = max(readings, key=lambda r: r["seconds"])
    assert printed[-1].startswith(f"slowest: {Path(slowest['image']).name}, {slowest['seconds']:.2f} s")
