import gzip
import shutil
import zipfile

import numpy as np
import pytest

from competition.data.demo import demo_images
from competition.data.digits import (
    DEMO_MARKER,
    PIXEL_COLUMNS,
    DataError,
    find_csv,
    load_test,
    load_train,
)


def write_train(folder, rows=3, edit=None):
    """A small valid train.csv (labels 0.., pixels i), then `edit(lines)` to break it."""
    header = ",".join(["label", *PIXEL_COLUMNS])
    lines = [header] + [",".join([str(r % 10)] + [str((r + i) % 256) for i in range(784)]) for r in range(rows)]
    if edit:
        edit(lines)
    path = folder / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def set_field(lines, line_no, column, value):
    fields = lines[line_no - 1].split(",")
    fields[column] = value
    lines[line_no - 1] = ",".join(fields)


def test_demo_set_is_kaggle_format_and_labelled(demo_dir):
    train, test = load_train(demo_dir), load_test(demo_dir)
    assert train.demo and test.demo
    assert len(train) + len(test) == 1797  # all of scikit-learn's digits
    assert train.images.shape == (len(train), 28, 28, 1) and train.images.dtype == np.uint8
    assert test.labels is None
    assert set(np.unique(train.labels)) == set(range(10))
    assert train.images.max() == 255 and train.images.min() == 0
    assert (demo_dir / DEMO_MARKER).is_file()
    # The digit sits in the central 20x20 box, as MNIST's do.
    assert train.images[:, :4].max() == 0 and train.images[:, -4:].max() == 0


def test_demo_images_match_sklearn_digits():
    from scipy import ndimage
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = demo_images()
    assert images.shape == (1797, 28, 28)
    np.testing.assert_array_equal(labels, digits.target)
    # Shrinking the central 20x20 box back to 8x8 gives back the original digits.
    back = ndimage.zoom(images[:, 4:24, 4:24] / 255, (1, 8 / 20, 8 / 20), order=1)
    assert np.abs(back - digits.images / 16).mean() < 0.1


def test_reads_plain_gzip_and_zip_alike(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    write_train(plain)
    expected = load_train(plain)
    assert expected.labels.tolist() == [0, 1, 2] and not expected.demo
    assert expected.images[1, 0, 1, 0] == 2  # pixel1 of row 1 sits at row 0, column 1

    gz = tmp_path / "gz"
    gz.mkdir()
    with open(plain / "train.csv", "rb") as src, gzip.open(gz / "train.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    zipped = tmp_path / "zip"
    zipped.mkdir()
    with zipfile.ZipFile(zipped / "digit-recognizer.zip", "w") as zf:
        zf.write(plain / "train.csv", "train.csv")

    for folder in (gz, zipped):
        got = load_train(folder)
        np.testing.assert_array_equal(got.images, expected.images)
        np.testing.assert_array_equal(got.labels, expected.labels)
        assert got.fingerprint()["sha256"] == expected.fingerprint()["sha256"]
    assert find_csv(zipped, "train.csv").endswith("digit-recognizer.zip::train.csv")


def test_missing_files_say_what_to_run(tmp_path):
    with pytest.raises(DataError, match=r"no train.csv.*make data.*make demo-data"):
        load_train(tmp_path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda l: set_field(l, 1, 0, "lable"), r"line 1 \(header\), column 1: expected 'label', got 'lable'"),
        (lambda l: l.__setitem__(0, l[0].rsplit(",", 1)[0]), r"line 1 \(header\), column 785: expected 'pixel783'"),
        (lambda l: set_field(l, 3, 13, "300"), r"line 3, column pixel12: expected an integer 0..255, got 300"),
        (lambda l: set_field(l, 4, 1, "-1"), r"line 4, column pixel0: expected an integer 0..255, got -1"),
        (lambda l: set_field(l, 2, 0, "10"), r"line 2, column label: expected an integer 0..9, got 10"),
        (lambda l: set_field(l, 3, 5, "1.5"), r"line 3, column pixel4: expected an integer, got '?1.5'?"),
        (lambda l: set_field(l, 4, 5, "abc"), r"line 4, column pixel4: expected an integer, got 'abc'"),
        (lambda l: set_field(l, 2, 100, ""), r"line 2, column pixel99: missing value"),
        (lambda l: l.append(l[1] + ",7"), r"not a well-formed CSV"),
        (lambda l: l.__delitem__(slice(1, None)), r"no data rows after the header"),
    ],
)
def test_bad_input_names_file_line_and_column(tmp_path, edit, message):
    path = write_train(tmp_path, edit=edit)
    with pytest.raises(DataError, match=message) as info:
        load_train(tmp_path)
    assert str(path) in str(info.value)


def test_empty_file(tmp_path):
    (tmp_path / "test.csv").write_text("")
    with pytest.raises(DataError, match=r"test.csv: the file is empty"):
        load_test(tmp_path)


def test_test_csv_must_not_have_a_label_column(tmp_path):
    write_train(tmp_path).rename(tmp_path / "test.csv")
    with pytest.raises(DataError, match=r"test.csv, line 1 \(header\), column 1: expected 'pixel0', got 'label'"):
        load_test(tmp_path)


def test_corrupt_zip(tmp_path):
    (tmp_path / "digit-recognizer.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"digit-recognizer.zip: cannot be read"):
        load_train(tmp_path)
