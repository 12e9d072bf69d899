"""How well edge.pi.read reads written numbers, against the same digits cut out perfectly, per form.

    python scripts/read_accuracy.py --run RUN [--variant int8] [--numbers 1050] [--out FILE] [--before FILE]
                                    [--no_pairs | --no_reader]

For the run's validation split (the rows it never trained on; competition/runs/rows.py), the
exported TFLite model (RUN/tflite, make tflite) reads photos of numbers of 2 to 6 digits made from
those digits by edge/forms/written.py in each of its forms, and by edge/tests/apart.py (apart-paper,
apart-blue, apart-board: a second generator, digits never touching, that the pair models never
learnt from); the same numbers, seeded, in every form.
Per form:
  whole     numbers read whole and right;
  bound     numbers whose every digit the model gets right when that digit is cut out perfectly:
            its own ink as written (height, faintness, thinness; no paper, light, neighbours or
            fragments) through MNIST's recipe (edge/pi/image.py). The reader's loss is bound - whole;
  gap       bound - whole;
  miscut    numbers cut into the wrong number of pieces;
  digits    digits right within the numbers cut into the right number;
  cut%      of the digits that touch no other, the share cut (read as two or more);
  split     digits that came from a split of touching ink;
  ms        milliseconds per number (median), decoding included.
Then images that hold no number (edge/tests/nonnumbers.py: noise, dots, specks, weaves, blank and
ruled paper, cross-hatching; up to 2048x2048, seeded), --non_numbers of them: per kind how many
were refused (the reader must read no number from any) and the slowest; last the slowest image
of all, number or not, in CPU time (one core: the interpreter runs on 1 thread), which a shared
machine's load does not inflate as it does the ms column's wall time. --before FILE (an earlier
run's --out) adds its whole and cut% to each form's line, the change in whole numbers in points,
and its refusals to the last line: before and after in one table.
The reader finds touching digits with the pair models exported beside the digit model (make tflite
writes pairs_int8.tflite, the finder, and pair_reader_int8.tflite; --no_reader leaves the reader
out), else, or with --no_pairs, by its rules. A benchmark, not a test: it
prints figures (docs/pi.md keeps the current ones, docs/experiments.md the history). --digits_out saves the validation digits (npz) so --digits
can rerun without the training environment.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

from common.writing import write_json
from competition.cli import add_data_dir, add_models_dir, add_run_flag
from edge.pi.classifier import DigitClassifier
from edge.pi.image import ImageError, from_ink
from edge.pi.reader import read_image
from edge.pi.touching import PairModels, pair_models_beside, touching_line
from edge.forms.written import WRITTEN_FORMS, write_number
from edge.tests.apart import LOOKS, write_apart
from edge.tests.nonnumbers import KINDS, non_numbers

LENGTHS = (2, 6)  # digits per number, both ends included
COLUMNS = ("whole", "bound", "gap", "miscut", "digits", "cut%", "split", "ms")
ALL_FORMS = (*WRITTEN_FORMS, *(f"apart-{look}" for look in LOOKS))  # written.py's, then edge/tests/apart.py's


def write(digits: np.ndarray, form: str, rng: np.random.Generator):
    """A number in a form of edge/forms/written.py or, apart-LOOK, of edge/tests/apart.py."""
    if form.startswith("apart-"):
        return write_apart(digits, form.removeprefix("apart-"), rng)
    return write_number(digits, form, rng)


def cut_alone(reading, number) -> tuple[int, int]:
    """Of the number's digits that touch no other, how many there are and how many the reading cut
    (two or more of its digits centred nearest the digit's)."""
    alone = [i for i in range(len(number.boxes)) if i not in number.touching and i - 1 not in number.touching]
    centres = np.array([x + w / 2 for x, _, w, _ in number.boxes])
    owners = [int(np.argmin(np.abs(centres - (d.box.x0 + d.box.width / 2)))) for d in reading.digits]
    return len(alone), sum(1 for i in alone if owners.count(i) > 1)


def picks(count: int, numbers: int, seed: int) -> list[np.ndarray]:
    """`numbers` lists of 2..6 digit indices, no digit used twice until all are used."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(count) for _ in range(1 + 6 * numbers // count)])
    lengths = rng.integers(LENGTHS[0], LENGTHS[1] + 1, numbers)
    ends = np.cumsum(lengths)
    return [order[end - length:end] for length, end in zip(lengths, ends)]


def measure_form(classifier: DigitClassifier, x_val: np.ndarray, y_val: np.ndarray, chosen: list[np.ndarray],
                 form: str, seed: int, pairs: PairModels | None = None) -> dict:
    rng = np.random.default_rng([seed, ALL_FORMS.index(form)])
    whole = bound = miscut = cut_digits = digits_right = split = alone = cut = 0
    times, cpu_times = [], []  # wall and this process's CPU seconds (one core: the interpreter has 1 thread)
    for indices in chosen:
        number = write(x_val[indices], form, rng)
        buffer = io.BytesIO()
        number.image.save(buffer, "PNG")  # lossless: the JPEG forms' pixels as decoded
        start, cpu = time.perf_counter(), time.process_time()
        reading = read_image(classifier, buffer.getvalue(), name=form, pairs=pairs)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
        truth = "".join(str(label) for label in y_val[indices])
        perfect = classifier.predict(np.stack([from_ink(ink / ink.max()) for ink in number.inks])).argmax(axis=1)
        whole += reading.text == truth
        bound += bool(np.all(perfect == y_val[indices]))
        split += sum(d.split for d in reading.digits)
        alone, cut = np.add((alone, cut), cut_alone(reading, number))
        if len(reading.text) == len(truth):
            cut_digits += len(truth)
            digits_right += sum(a == b for a, b in zip(reading.text, truth))
        else:
            miscut += 1
    n = len(chosen)
    return {"numbers": n, "whole": whole / n, "bound": bound / n, "gap": (bound - whole) / n, "miscut": miscut / n,
            "digits": digits_right / max(cut_digits, 1), "cut%": 100 * int(cut) / max(int(alone), 1),
            "alone": int(alone), "split": split, "ms": 1000 * float(np.median(times)),
            "slowest_cpu_ms": 1000 * max(cpu_times)}


def measure_non_numbers(classifier: DigitClassifier, count: int, seed: int, pairs: PairModels | None = None) -> dict:
    """Per kind of image that holds no number: how many, how many refused, what was read from the
    rest, and the slowest image's CPU milliseconds (decoding included)."""
    kinds = {kind: {"images": 0, "refused": 0, "read": [], "slowest_cpu_ms": 0.0} for kind in KINDS}
    for kind, image in non_numbers(count, seed):
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        row = kinds[kind]
        start = time.process_time()
        try:
            row["read"].append(read_image(classifier, buffer.getvalue(), name=kind, pairs=pairs).text)
        except ImageError:
            row["refused"] += 1
        row["images"] += 1
        row["slowest_cpu_ms"] = max(row["slowest_cpu_ms"], 1000 * (time.process_time() - start))
    for kind, row in kinds.items():
        print(f"{kind:<9}{row['refused']:>4d} of {row['images']:<4d} refused{row['slowest_cpu_ms']:>9.0f} ms CPU slowest"
              + (f"  read: {', '.join(row['read'][:5])}" if row["read"] else ""), flush=True)
    return kinds


def measure(classifier: DigitClassifier, x_val: np.ndarray, y_val: np.ndarray, numbers: int, seed: int,
            forms: tuple[str, ...] = ALL_FORMS, pairs: PairModels | None = None, before: dict | None = None) -> dict:
    """Every form's figures, a line each as it is measured; `before`: an earlier run's figures per form."""
    chosen = picks(len(y_val), numbers, seed)
    plain = classifier.predict(x_val).argmax(axis=1)
    results = {"validation_digits": len(y_val), "numbers": numbers, "plain_28x28": float(np.mean(plain == y_val)),
               "forms": {}}
    for form in forms:
        row = results["forms"][form] = measure_form(classifier, x_val, y_val, chosen, form, seed, pairs)
        print(f"{form:<13}" + "".join(f"{row[c]:>9.4f}" for c in COLUMNS[:5]) + f"{row['cut%']:>7.2f}"
              f"{row['split']:>7d}{row['ms']:>8.1f}" + was(row, (before or {}).get(form)), flush=True)
    return results


def was(row: dict, earlier: dict | None) -> str:
    """A form's whole and cut% in an earlier run (--before), and the change in whole numbers in points."""
    if earlier is None:
        return ""
    return f"   was {earlier['whole']:.4f} {earlier['cut%']:5.2f}  {100 * (row['whole'] - earlier['whole']):+5.1f} pt"


def read_before(path: str) -> dict:
    """An earlier run's figures (its --out), or one line on what is wrong with the file."""
    from competition.data.reading import read_json

    try:
        before = read_json(path, ("forms",))
        for row in before["forms"].values():
            float(row["whole"]), float(row["cut%"])
        return before
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # ValueError: read_json's FileError too
        sys.exit(f"read_accuracy: --before {path}: not the figures of an earlier --out ({type(err).__name__}: {err})")


def load_digits(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """The validation digits (N, 784) and labels, and where they came from."""
    if args.digits:
        with np.load(args.digits) as saved:
            return saved["x"], saved["y"], str(saved["run"])
    from competition.data.digits import load_train
    from competition.runs.choosing import default_model, model_by_id
    from competition.runs.rows import run_split
    from edge.export.exported import run_data_dir

    chosen = model_by_id(args.models_dir, args.run) if args.run else default_model(args.models_dir)
    if not args.run:
        print(chosen.line())
    folder = chosen.folder
    _, x_val, _, y_val = run_split(folder, load_train(run_data_dir(folder, args.data_dir)))
    return x_val.reshape(len(x_val), -1), y_val, folder.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flag(parser)
    add_models_dir(parser)
    add_data_dir(parser, default=None, what="train.csv to split (default: the run's own data)")
    parser.add_argument("--variant", default="int8", help="exported variant to read with (default: %(default)s)")
    parser.add_argument("--model", default=None, help="a .tflite file instead of the run's --variant")
    parser.add_argument("--digits", default=None, help="validation digits saved by --digits_out, instead of the run's")
    parser.add_argument("--digits_out", default=None, help="save the run's validation digits here (npz)")
    parser.add_argument("--numbers", type=int, default=1050, help="numbers per form (default: %(default)s)")
    parser.add_argument("--forms", default=",".join(ALL_FORMS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    parser.add_argument("--pairs", default=None, help="a folder of pair models (default: the model's own)")
    parser.add_argument("--no_pairs", action="store_true", help="find touching digits by the reader's rules alone")
    parser.add_argument("--no_reader", action="store_true", help="without the pair reader: the finder alone")
    parser.add_argument("--non_numbers", type=int, default=70, help="images holding no number (default: %(default)s; 0: none)")
    parser.add_argument("--out", default=None, help="also write the figures here as JSON")
    parser.add_argument("--before", default=None, help="an earlier run's --out, shown beside each form's figures")
    args = parser.parse_args(argv)
    before = read_before(args.before) if args.before else None
    forms = tuple(args.forms.split(","))
    if unknown := set(forms) - set(ALL_FORMS):
        parser.error(f"unknown forms {', '.join(sorted(unknown))}; known: {', '.join(ALL_FORMS)}")
    x_val, y_val, run = load_digits(args)
    if args.digits_out:
        np.savez_compressed(args.digits_out, x=x_val, y=y_val, run=run)
    if args.model:
        model = Path(args.model)
    else:
        from competition.runs.choosing import model_by_id
        from edge.export.exported import EXPORT_DIR, variant_file

        model = model_by_id(args.models_dir, run).folder / EXPORT_DIR / variant_file(args.variant)
    classifier = DigitClassifier(model, num_threads=1)
    pairs = None if args.no_pairs else pair_models_beside(Path(args.pairs) / model.name if args.pairs else model, 1)
    if pairs and args.no_reader:
        pairs = PairModels(pairs.finder)
    print(f"run {run}, {model.name} on {classifier.backend}, 1 thread; {len(y_val)} validation digits; "
          f"{args.numbers} numbers of {LENGTHS[0]}-{LENGTHS[1]} digits per form, seed {args.seed}; touching digits by "
          + touching_line(pairs))
    if before:
        print(f"before: {args.before} (run {before.get('run')}, {before.get('numbers')} numbers a form, "
              f"{'the pair reader' if before.get('pair_reader') else 'no pair reader'})")
    print(f"{'form':<13}" + "".join(f"{c:>9}" for c in COLUMNS[:5]) + f"{'cut%':>7}{'split':>7}{'ms':>8}"
          + ("   was  whole  cut%  whole" if before else ""))
    results = measure(classifier, x_val, y_val, args.numbers, args.seed, forms, pairs, before and before["forms"])
    print(f"plain 28x28 digits: {results['plain_28x28']:.4f}")
    results["non_numbers"] = {}
    if args.non_numbers:
        print(f"\nno number: {args.non_numbers} images, up to 2048x2048, seed {args.seed}")
        results["non_numbers"] = measure_non_numbers(classifier, args.non_numbers, args.seed, pairs)
    refused = sum(row["refused"] for row in results["non_numbers"].values())
    slowest = max([row["slowest_cpu_ms"] for row in results["forms"].values()]
                  + [row["slowest_cpu_ms"] for row in results["non_numbers"].values()])
    earlier = (f" (before: {sum(row['refused'] for row in before['non_numbers'].values())} of "
               f"{sum(row['images'] for row in before['non_numbers'].values())})" if before and before.get("non_numbers") else "")
    none_line = f"refused {refused} of {args.non_numbers} images holding no number{earlier}; " if args.non_numbers else ""
    print(f"{none_line}the slowest image of all took {slowest:.0f} ms of CPU (one core: the interpreter on 1 thread)")
    if args.out:
        write_json(args.out, {"run": run, "model": str(model), "pairs": bool(pairs),
                              "pair_reader": bool(pairs and pairs.reader), **results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
