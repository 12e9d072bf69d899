"""An offline demo set in the competition's format, from the digits scikit-learn ships (make demo-data).

scikit-learn's 1,797 digits are 8x8 with values 0..16. Each is upscaled to 20x20 and centred in a
28x28 frame with values 0..255, as MNIST's digits are, then split into a Kaggle-style train.csv
(with labels) and test.csv (without). The folder gets a DEMO_DATA.md marker, so every run on it is
labelled as demo data. This is for trying the pipeline and for tests, not for Kaggle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.datasets import load_digits

from common.writing import atomic_path, write_text
from competition.config import IMAGE_SIZE
from competition.data.digits import DEMO_MARKER, DEMO_TEST_LABELS, PIXEL_COLUMNS

TEST_FRACTION = 0.2
MARKER_TEXT = """# Demo data, not the competition's

Made by `make demo-data` (competition/demo_data.py) from the 1,797 8x8 handwritten digits that
scikit-learn ships, upscaled to 28x28 and 0..255 in the Kaggle "Digit Recognizer" format.
Runs on this folder are labelled `demo`; their submissions are not for Kaggle.
`test_labels.csv` holds the demo test set's labels (the real competition hides them).
"""


def demo_images() -> tuple[np.ndarray, np.ndarray]:
    """All of scikit-learn's digits as uint8 (N, 28, 28) in 0..255, and their labels."""
    digits = load_digits()
    small = digits.images / 16.0  # 0..1
    inner = 20  # MNIST fits each digit in a 20x20 box inside the 28x28 frame
    pad = (IMAGE_SIZE - inner) // 2
    big = ndimage.zoom(small, (1, inner / 8, inner / 8), order=1)
    frames = np.zeros((len(big), IMAGE_SIZE, IMAGE_SIZE))
    frames[:, pad : pad + inner, pad : pad + inner] = np.clip(big, 0, 1)
    return np.rint(frames * 255).astype(np.uint8), digits.target.astype(np.int64)


def write_demo_data(out_dir: str | Path, seed: int = 0) -> dict[str, int]:
    """Write train.csv, test.csv, test_labels.csv and the marker; return row counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images, labels = demo_images()
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(len(images) * TEST_FRACTION)
    test_idx, train_idx = order[:n_test], order[n_test:]

    pixels = images.reshape(len(images), -1)
    train = pd.DataFrame(pixels[train_idx], columns=PIXEL_COLUMNS)
    train.insert(0, "label", labels[train_idx])
    test = pd.DataFrame(pixels[test_idx], columns=PIXEL_COLUMNS)
    test_labels = pd.DataFrame({"ImageId": np.arange(1, n_test + 1), "Label": labels[test_idx]})

    write_text(out / DEMO_MARKER, MARKER_TEXT)
    for name, frame in (("train.csv", train), ("test.csv", test), (DEMO_TEST_LABELS, test_labels)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    return {"train": len(train), "test": len(test)}
