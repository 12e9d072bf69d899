"""A video of numbers for edge.pi.camera: frames of photos of numbers made of stored digits.

    python scripts/camera_video.py --out build/numbers.avi [--digits build/edge-fixtures/digits.csv]
                                   [--frames 300] [--size 640x480]

Each second (10 frames at 10 fps) shows another number of 3 to 5 digits from --digits (a labelled
CSV), in edge/forms/synthetic.py's forms in turn; every fifth second is blank paper. Motion-JPEG in an
AVI by default, which every OpenCV build reads (--codec FFV1: lossless, so that two machines'
JPEG decoders cannot differ). For measuring `edge.pi.camera --headless` (docs/pi.md) where no
camera is at hand. Needs OpenCV (edge/pi/requirements-camera.txt).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from edge.forms.synthetic import PHOTO_FORMS, frame  # noqa: E402

FPS = 10


def main(argv: list[str] | None = None) -> int:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the .avi to write")
    parser.add_argument("--digits", default=str(ROOT / "build/edge-fixtures/digits.csv"), help="(default: %(default)s)")
    parser.add_argument("--frames", type=int, default=300, help="(default: %(default)s)")
    parser.add_argument("--size", default="640x480", help="width x height (default: %(default)s)")
    parser.add_argument("--codec", default="MJPG", help="FourCC: MJPG as webcams send, FFV1 lossless "
                                                        "(the same pixels on every machine) (default: %(default)s)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    pixels = np.loadtxt(args.digits, delimiter=",", skiprows=1, dtype=np.int64)[:, 1:].astype(np.uint8)
    rng = np.random.default_rng(0)
    out = Path(args.out)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")  # OpenCV picks the container by the suffix
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*args.codec), FPS, (width, height))
    for second in range((args.frames + FPS - 1) // FPS):
        picks = None if second % 5 == 4 else rng.choice(len(pixels), int(rng.integers(3, 6)), replace=False)
        form = [f for f in PHOTO_FORMS if f != "plain"][second % (len(PHOTO_FORMS) - 1)]
        image = frame(None if picks is None else pixels[picks], rng, (width, height), form)
        for _ in range(min(FPS, args.frames - second * FPS)):
            writer.write(image)
    writer.release()
    tmp.replace(out)
    print(f"{args.frames} frames of {width}x{height} at {FPS} fps -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
