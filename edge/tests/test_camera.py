"""python -m edge.pi.camera on a video file: one reading per frame, as edge.pi.read reads a photo."""

import json

import numpy as np
import pytest
from conftest import model_path

from edge.pi import camera
from edge.pi.classifier import DigitClassifier
from edge.pi.reader import read_grey_image
from edge.forms.synthetic import frame

cv2 = pytest.importorskip("cv2", reason="edge.pi.camera needs OpenCV: pip install -r edge/pi/requirements-camera.txt")
SIZE = (640, 480)


@pytest.fixture(scope="module")
def video(tmp_path_factory, digits):
    pixels = digits[0]
    frames = [frame(pixels[0:4], np.random.default_rng(k)) for k in range(4)] + [
        frame(None, np.random.default_rng(0))] * 2 + [frame(pixels[4:7], np.random.default_rng(k)) for k in range(3)]
    path = tmp_path_factory.mktemp("video") / "numbers.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    for image in frames:
        writer.write(image)
    writer.release()
    return path


def test_headless_json_reads_every_frame_of_a_video(video, fixtures, capsys):
    model = model_path(fixtures, "int8")
    assert camera.main([str(model), "--source", str(video), "--headless", "--json", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["frame"] for line in lines] == list(range(1, 10))
    assert [len(line["text"]) for line in lines] == [4] * 4 + [0] * 2 + [3] * 3
    assert all(list(line) == ["frame", "text", "weakest", "digits", "ms"] and line["ms"] > 0 for line in lines)
    assert [line["weakest"] for line in lines[4:6]] == [None, None] and lines[4]["digits"] == []
    # The same reading as edge/pi/reader.py gives the decoded frame.
    capture = cv2.VideoCapture(str(video))
    ok, first = capture.read()
    capture.release()
    expected = read_grey_image(DigitClassifier(model), first.astype(np.float32) @ camera.BGR_WEIGHTS).text
    assert ok and lines[0]["text"] == expected
    assert "9 frames from" in captured.err and "frames/s" in captured.err


def test_headless_lines_and_frame_limit(video, fixtures, capsys):
    assert camera.main([str(model_path(fixtures, "int8")), "--source", str(video), "--headless",
                        "--frames", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[0].startswith("frame 1: ") and "(weakest digit 0." in lines[0]
    assert lines[4].startswith("frame 5: -, ") and lines[4].endswith(" ms")  # the blank frame


def test_a_missing_source_is_one_line(tmp_path, fixtures, capsys):
    code = camera.main([str(model_path(fixtures, "int8")), "--source", str(tmp_path / "absent.mp4"), "--headless"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "absent.mp4: cannot be opened" in err


def test_the_window_frame_shows_boxes_labels_and_fps(digits, fixtures):
    image = frame(digits[0][:3], np.random.default_rng(0))
    reading = camera.read_frame(DigitClassifier(model_path(fixtures, "int8")), image)
    drawn = camera.draw(cv2, image.copy(), reading, fps=12.5)
    box = reading.digits[0].box
    assert len(reading.digits) == 3 and tuple(drawn[box.y0, box.x0 + box.width // 2]) == camera.GREEN  # the box's top edge
    assert (drawn[:40] != image[:40]).any(axis=2).sum() > 100  # the number and the fps, top left
