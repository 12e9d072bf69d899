"""Read written numbers from photos or scans with an exported TFLite model (no TensorFlow).

    python -m edge.pi.read model_int8.tflite number.jpg board.png    # one line per image
    python -m edge.pi.read model_int8.tflite number.jpg --json        # one JSON object per image
    python -m edge.pi.read model_int8.tflite *.jpg --annotate annotated/ --threads 4

Finds each digit (ink on paper or board, either polarity, uneven light, colour, JPEG, slight
rotation, faint strokes, loose specks; two touching digits are cut apart), makes it MNIST-like,
classifies, and reads left to right (edge/pi/reader.py); touching digits are found and read by the
pair models that make tflite writes beside the digit model (pairs_int8.tflite, the finder, and
pair_reader_int8.tflite, the reader), or by rules where there are none. A line is
`FILE: NUMBER  (weakest digit P)`;
--json prints {"file": ..., "text": "2026", "weakest": P, "digits": [{"label": 2, "probability":
0.998, "box": [x, y, w, h], "split": false}, ...]} with boxes in the image's own pixels; "split"
is true for a digit cut out of ink it shared with its neighbour. --annotate DIR writes each image
as DIR/<name>.png with its boxes and labels drawn. An image whose only ink is one digit reads as
that digit (edge.pi.classify remains the command for one digit per image). Exit 2 on a bad image
or one that holds no number (blank or ruled paper, noise, dots, a texture), naming it in one line;
the images before it are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from common.errors import add_debug_flag, exit_status
from common.writing import writable_folder, write_whole
from edge.pi.classifier import INTERPRETER_ERRORS, ClassifierOptions, DigitClassifier
from edge.pi.reader import Reading, read_image
from edge.pi.touching import pair_models_beside, touching_line

BOX_COLOUR = (230, 30, 30)


def annotate(path: Path, reading: Reading, out_dir: Path) -> Path:
    """The image with each digit's box and label drawn, as out_dir/<stem>.png (written whole)."""
    with Image.open(path) as image:
        canvas = ImageOps.exif_transpose(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(max(canvas.size) / 300))
    for digit in reading.digits:
        x, y, h = digit.box.x0, digit.box.y0, digit.box.height
        draw.rectangle([x, y, digit.box.x1 - 1, digit.box.y1 - 1], outline=BOX_COLOUR, width=line)
        font = ImageFont.load_default(size=max(12, h // 3))
        draw.text((x, max(0, y - line)), f"{digit.label} {digit.probability:.2f}", fill=BOX_COLOUR, font=font,
                  anchor="lb" if y > h // 3 else "lt")
    target = out_dir / f"{path.stem}.png"
    write_whole(target, lambda tmp: canvas.save(tmp, "PNG"))
    return target


def line_for(path: str, reading: Reading) -> str:
    return f"{path}: {reading.text}  (weakest digit {reading.weakest:.3f})"


def read_images(model: str, images: list[str], as_json: bool, annotate_dir: str | None, threads: int | None) -> None:
    """Read each image's number; print a line or a JSON object per image; annotate if asked."""
    if annotate_dir:
        writable_folder(Path(annotate_dir), what=annotate_dir)
    classifier = DigitClassifier(model, ClassifierOptions(num_threads=threads))
    pairs = pair_models_beside(model, threads)
    for path in images:
        reading = read_image(classifier, path, pairs=pairs)
        if as_json:
            print(json.dumps({"file": path, **reading.as_dict()}), flush=True)
        else:
            print(line_for(path, reading), flush=True)
        if annotate_dir:
            annotate(Path(path), reading, Path(annotate_dir))
    print(f"model: {model} on {classifier.backend}, {classifier.threads} threads; touching digits by "
          + touching_line(pairs), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an exported .tflite file (make tflite)")
    parser.add_argument("images", nargs="+", help="image files, one number each")
    parser.add_argument("--json", action="store_true", help="one JSON object per image instead of a line")
    parser.add_argument("--annotate", default=None, metavar="DIR", help="write each image with its boxes here")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: every core)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return exit_status(lambda: read_images(args.model, args.images, args.json, args.annotate, args.threads), args.debug, also=INTERPRETER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
