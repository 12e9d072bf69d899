"""Read numbers live from a camera (or a video file) with an exported TFLite model.

    python -m edge.pi.camera model_int8.tflite                          # camera 0, in a window (q quits)
    python -m edge.pi.camera model_int8.tflite --source picamera        # the Pi's camera (picamera2)
    python -m edge.pi.camera model_int8.tflite --source clip.mp4 --headless --json

Each frame is read as edge.pi.read reads a photo (edge/pi/reader.py) and shown with the digits' boxes,
labels and probabilities and the frames per second; --headless prints a line per frame instead,
--json one JSON object per frame: {"frame": n, "text": "2026", "digits": [...], "ms": ...}
(ms: the reading's time). A frame without digits reads as "". --source is a camera index
(0), a device (/dev/video0), a video file, or `picamera`. Ends at the end of a file, after
--frames frames, or on q / Ctrl-C; then prints frames, seconds and frames per second on stderr.

Needs OpenCV (edge/pi/requirements-camera.txt; a window needs opencv-python or Raspberry Pi OS's
python3-opencv rather than the headless wheel), or picamera2 for --source picamera (Raspberry Pi
OS: `sudo apt install python3-picamera2`, and a venv made with --system-site-packages).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Iterator

import numpy as np

from common.errors import InputError, add_debug_flag, exit_status
from edge.pi.classifier import INTERPRETER_ERRORS, ClassifierOptions, DigitClassifier
from edge.pi.image import ImageError, shrink_pixels
from edge.pi.reader import WORK_SIDE, Reading, read_grey_image
from edge.pi.touching import pair_models_beside

WINDOW = "edge.pi.camera (q quits)"
GREEN, RED = (40, 200, 40), (40, 40, 230)  # BGR, as OpenCV draws
BGR_WEIGHTS = np.array([0.114, 0.587, 0.299], np.float32)  # ITU-R 601 luma, as Pillow's "L"


def import_cv2():
    os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")  # its own lines (a missing camera) repeat ours
    try:
        import cv2
    except ImportError:
        raise ImportError("edge.pi.camera needs OpenCV: `pip install -r edge/pi/requirements-camera.txt` "
                          "(Raspberry Pi OS: sudo apt install python3-opencv)") from None
    return cv2


def opencv_frames(source: str) -> Iterator[np.ndarray]:
    """BGR frames from a camera index, a /dev/video device or a video file, until it ends."""
    cv2 = import_cv2()
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise InputError(f"{source}: cannot be opened as a camera or video file")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def picamera_frames(size: tuple[int, int] = (640, 480)) -> Iterator[np.ndarray]:
    """Frames from the Raspberry Pi camera through picamera2 (its "RGB888" is B, G, R in memory)."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise ImportError("--source picamera needs picamera2: sudo apt install python3-picamera2, and a venv "
                          "made with --system-site-packages (see docs/pi.md)") from None
    camera = Picamera2()
    camera.configure(camera.create_preview_configuration(main={"format": "RGB888", "size": size}))
    camera.start()
    try:
        while True:
            yield camera.capture_array()
    finally:
        camera.stop()


def read_frame(classifier: DigitClassifier, frame: np.ndarray, pairs: DigitClassifier | None = None) -> Reading:
    """The number in one BGR (or grey) frame, shrunk as edge.pi.read shrinks photos; no digits is an empty reading."""
    small, scale = shrink_pixels(frame, WORK_SIDE)
    grey = small.astype(np.float32) @ BGR_WEIGHTS if small.ndim == 3 else small.astype(np.float32)
    try:
        return read_grey_image(classifier, grey, scale, pairs)
    except ImageError:
        return Reading([])


def draw(cv2, frame: np.ndarray, reading: Reading, fps: float) -> np.ndarray:
    for digit in reading.digits:
        x, y = digit.box.x0, digit.box.y0
        cv2.rectangle(frame, (x, y), (digit.box.x1, digit.box.y1), GREEN, 2)
        cv2.putText(frame, f"{digit.label} {digit.probability:.2f}", (x, max(12, y - 6)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, GREEN, 2)
    cv2.putText(frame, f"{reading.text or '-'}  {fps:.1f} fps", (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, RED, 2)
    return frame


def watch(model: str, source: str, headless: bool, as_json: bool, frames: int | None, threads: int | None) -> None:
    classifier = DigitClassifier(model, ClassifierOptions(num_threads=threads))
    pairs = pair_models_beside(model, threads)  # the reader's pair models, where make tflite wrote them
    cv2 = None if headless and source == "picamera" else import_cv2()
    stream = picamera_frames() if source == "picamera" else opencv_frames(source)
    count, start, fps = 0, time.perf_counter(), 0.0
    try:
        for frame in stream:
            began = time.perf_counter()
            reading = read_frame(classifier, frame, pairs)
            ms = 1000 * (time.perf_counter() - began)
            count += 1
            fps = count / (time.perf_counter() - start)
            if as_json:
                print(json.dumps({"frame": count, **reading.as_dict(), "ms": round(ms, 2)}), flush=True)
            elif headless:
                weakest = f" (weakest digit {reading.weakest:.3f})" if reading.digits else ""
                print(f"frame {count}: {reading.text or '-'}{weakest}, {ms:.1f} ms", flush=True)
            if not headless:
                show(cv2, draw(cv2, frame, reading, fps))
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            if frames and count >= frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        if not headless and cv2 is not None:
            cv2.destroyAllWindows()
    seconds = time.perf_counter() - start
    if count == 0:
        raise InputError(f"{source}: no frames (an empty or unreadable video?)")
    print(f"{count} frames from {source} in {seconds:.2f}s: {count / seconds:.1f} frames/s "
          f"({classifier.backend}, {classifier.threads} threads)", file=sys.stderr)


def show(cv2, frame: np.ndarray) -> None:
    try:
        cv2.imshow(WINDOW, frame)
    except cv2.error:
        raise InputError("this OpenCV cannot open a window (opencv-python-headless, or no display): use "
                         "--headless, or install opencv-python") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an exported .tflite file (make tflite)")
    parser.add_argument("--source", default="0", help="camera index, /dev/videoN, a video file, or picamera "
                                                      "(default: %(default)s)")
    parser.add_argument("--headless", action="store_true", help="no window: a line per frame on stdout")
    parser.add_argument("--json", action="store_true", help="with --headless: one JSON object per frame")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: every core)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.json and not args.headless:
        parser.error("--json goes with --headless")
    if args.frames is not None and args.frames < 1 or args.threads is not None and args.threads < 1:
        parser.error("--frames and --threads must be at least 1")
    return exit_status(lambda: watch(args.model, args.source, args.headless, args.json, args.frames, args.threads),
                       args.debug, also=INTERPRETER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
