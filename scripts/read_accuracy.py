"""How well edge.pi.read reads numbers: photos composed from a run's own validation digits, per form.

    python scripts/read_accuracy.py --run RUN [--variant int8] [--numbers 250] [--length 4] [--out FILE]

For the run's validation split (the rows it never trained on; competition/runs/rows.py), the
exported TFLite model (RUN/tflite, make tflite) classifies the plain 28x28 digits, the same digits
re-centred by edge/pi/image.py (MNIST's recipe), and then photos of `--length`-digit numbers made
from them in each of edge/pi/synthetic.py's forms (the same digits in every form). Per form: numbers
read whole and right, digits right (by position; a number cut into the wrong count of digits
counts all its digits wrong), numbers cut into the right count, and ms per photo (median).
A benchmark, not a test: it prints figures (docs/pi.md keeps them).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from competition.cli import add_data_dir, add_models_dir, add_run_flag  # noqa: E402
from competition.data.digits import load_train  # noqa: E402
from competition.runs.folders import resolve_run  # noqa: E402
from edge.export.exported import EXPORT_DIR, run_data_dir, variant_file  # noqa: E402
from edge.pi.classifier import DigitClassifier  # noqa: E402
from edge.pi.image import mnist_like  # noqa: E402
from edge.pi.reader import read_image  # noqa: E402
from edge.pi.synthetic import FORMS, compose  # noqa: E402


def measure(classifier: DigitClassifier, x_val: np.ndarray, y_val: np.ndarray, numbers: int, length: int,
            seed: int) -> dict:
    order = np.random.default_rng(seed).permutation(len(y_val))[:numbers * length].reshape(numbers, length)
    plain = classifier.predict(x_val).argmax(axis=1)
    centred = classifier.predict(np.stack([mnist_like(x.reshape(28, 28)) for x in x_val])).argmax(axis=1)
    results = {"validation_digits": len(y_val), "plain_28x28": float(np.mean(plain == y_val)),
               "recentred_28x28": float(np.mean(centred == y_val)),
               "plain_28x28_of_used_digits": float(np.mean(plain[order] == y_val[order])), "forms": {}}
    for form in FORMS:
        rng = np.random.default_rng(seed)
        whole = digits_right = cut_right = 0
        times = []
        for picks in order:
            buffer = io.BytesIO()
            compose(x_val[picks], form, rng).save(buffer, "PNG")
            start = time.perf_counter()
            text = read_image(classifier, buffer.getvalue(), name=form).text
            times.append(time.perf_counter() - start)
            truth = "".join(str(label) for label in y_val[picks])
            whole += text == truth
            if len(text) == length:
                cut_right += 1
                digits_right += sum(a == b for a, b in zip(text, truth))
        results["forms"][form] = {"numbers": numbers, "whole_numbers": whole / numbers,
                                  "digits": digits_right / (numbers * length), "cut_right": cut_right / numbers,
                                  "ms_per_photo": 1000 * float(np.median(times))}
        row = results["forms"][form]
        print(f"{form:<9}{row['whole_numbers']:>8.4f}{row['digits']:>9.4f}{row['cut_right']:>10.4f}"
              f"{row['ms_per_photo']:>9.1f}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flag(parser)
    add_models_dir(parser)
    add_data_dir(parser, default=None, what="train.csv to split (default: the run's own data)")
    parser.add_argument("--variant", default="int8", help="exported variant to read with (default: %(default)s)")
    parser.add_argument("--numbers", type=int, default=250, help="numbers per form (default: %(default)s)")
    parser.add_argument("--length", type=int, default=4, help="digits per number (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    parser.add_argument("--out", default=None, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    from competition.runs.rows import run_split

    folder = resolve_run(args.models_dir, args.run, single=True)
    _, x_val, _, y_val = run_split(folder, load_train(run_data_dir(folder, args.data_dir)))
    if args.numbers * args.length > len(y_val):
        parser.error(f"--numbers x --length is more than the {len(y_val)} validation digits")
    classifier = DigitClassifier(folder / EXPORT_DIR / variant_file(args.variant), num_threads=1)
    print(f"run {folder.name}, {args.variant} on {classifier.backend}, {len(y_val)} validation digits; "
          f"{args.numbers} numbers of {args.length} digits per form")
    print(f"{'form':<9}{'whole':>8}{'digits':>9}{'cut right':>10}{'ms':>9}")
    results = measure(classifier, x_val.reshape(len(x_val), -1), y_val, args.numbers, args.length, args.seed)
    print(f"plain 28x28 digits: {results['plain_28x28']:.4f} (all), {results['plain_28x28_of_used_digits']:.4f} "
          f"(those used); re-centred by edge/pi/image.py: {results['recentred_28x28']:.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"run": folder.name, "variant": args.variant, **results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
