"""Build what the edge tests and the emulated Pi need, in the main environment (it has TensorFlow).

    python scripts/edge_fixtures.py [--out build/edge-fixtures]

Trains the report's model briefly on the offline demo set, and the reader's pair models small and
fast as `make pair-models` trains them (competition/training/pair_runs.py), exports them as
`make tflite` does, and writes beside the four .tflite files, the pair models (pairs_int8.tflite
and pair_reader_int8.tflite) and manifest.json:
  digits.csv      the run's validation digits, competition format (label, pixel0..pixel783)
  reference.json  the Keras model's probabilities and labels for them, the float reference
The edge suites (edge/tests) then run in environments without TensorFlow, offline. The folder
appears whole: built under a temporary name, then renamed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from competition import startup  # noqa: E402

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.writing import write_json  # noqa: E402
from competition.config import PAIR_DESIGNS, PairConfig, TrainConfig  # noqa: E402
from competition.data.demo import write_demo_data  # noqa: E402

EPOCHS = 16  # about 98% on the demo validation digits (BatchNorm needs a few hundred steps to settle)
LEARNING_RATE = 1e-3
PAIR_EXAMPLES, PAIR_EPOCHS = 8000, 4  # each pair model: a minute or two, not make pair-models' hour
PAIR_SHAPES = 0.0  # no wide, slanted, bold or grainy pieces (shapes, strokes): from 8,000 pieces a finder that saw them called a drawn 0 two
# (make pair-models' finder, from 240,000, calls it one: docs/experiments.md)


def build(out: Path) -> None:
    from competition.data import splits
    from competition.data.digits import load_train
    from competition.training import pair_runs, trainer
    from edge.export.convert import export
    from edge.export.exported import keras_probabilities

    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_demo_data(tmp / "demo")
    folder = trainer.train_model(TrainConfig(name="edge-fixture", data_dir=str(tmp / "demo"), models_dir=str(tmp / "models"),
                                      epochs=EPOCHS, learning_rate=LEARNING_RATE, batch_size=32))
    for design in PAIR_DESIGNS:
        pair_runs.train_pair_run(PairConfig(design=design, data_dir=str(tmp / "demo"), models_dir=str(tmp / "models"),
                                            examples=PAIR_EXAMPLES, epochs=PAIR_EPOCHS, shapes=PAIR_SHAPES,
                                            strokes=PAIR_SHAPES))
    export(folder, calibration_size=200, out_dir=tmp, pairs_from=tmp / "models")
    _, x_val, _, y_val = splits.split(load_train(tmp / "demo"), TrainConfig())
    rows = x_val.reshape(len(x_val), -1)
    lines = ["label," + ",".join(f"pixel{i}" for i in range(rows.shape[1]))]
    lines += [f"{label}," + ",".join(map(str, row)) for label, row in zip(y_val, rows)]
    (tmp / "digits.csv").write_text("\n".join(lines) + "\n")
    probabilities = keras_probabilities(folder, x_val)
    write_json(tmp / "reference.json", {"run": folder.name, "labels": y_val.tolist(),
                                        "keras_labels": probabilities.argmax(axis=1).tolist(),
                                        "keras_probabilities": probabilities.round(7).tolist()})
    shutil.rmtree(tmp / "models")  # the .keras files are not needed past this point
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    accuracy = (probabilities.argmax(axis=1) == y_val).mean()
    print(f"fixtures: {len(y_val)} digits, Keras accuracy {accuracy:.3f} -> {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "build" / "edge-fixtures"), help="(default: %(default)s)")
    build(Path(parser.parse_args(argv).out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
