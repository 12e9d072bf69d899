"""python -m edge.pi.classify: images and CSVs in; labels, or a submission-style CSV, out."""

import subprocess
import sys

import numpy as np
from conftest import ROOT, model_path
from PIL import Image

from edge.pi import classify


def write_csv(path, pixels, labels=None):
    header = ([] if labels is None else ["label"]) + [f"pixel{i}" for i in range(784)]
    rows = [",".join(map(str, ([] if labels is None else [labels[i]]) + list(p))) for i, p in enumerate(pixels)]
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")


def test_csv_to_submission_file(tmp_path, fixtures, digits, capsys):
    pixels, labels = digits
    csv, out = tmp_path / "test.csv", tmp_path / "out" / "submission.csv"
    write_csv(csv, pixels[:30])
    code = classify.main([str(model_path(fixtures, "int8")), "--csv", str(csv), "--out", str(out), "--threads", "1"])
    assert code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 31 and lines[1].startswith("1,")
    written = np.array([int(line.split(",")[1]) for line in lines[1:]])
    assert np.mean(written == labels[:30]) >= 0.9
    err = capsys.readouterr().err
    assert "30 digits from" in err and "1 threads" in err and not list(out.parent.glob(".*.tmp"))


def test_labelled_csv_to_stdout_reports_accuracy(fixtures, capsys):
    code = classify.main([str(model_path(fixtures, "float16")), "--csv", str(fixtures / "digits.csv")])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ImageId,Label\n1,") and len(captured.out.splitlines()) == 145
    assert "accuracy 0.9" in captured.err


def test_images_print_label_and_top_k(tmp_path, fixtures, digits, capsys):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(255 - np.kron(digits[0][i].reshape(28, 28), np.ones((5, 5), np.uint8))).save(paths[-1])
    code = classify.main([str(model_path(fixtures, "int8")), *map(str, paths), "--top_k", "2"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"{paths[0]}: ") and "(top 2: " in lines[0]


def test_bad_csv_names_file_line_and_column(tmp_path, fixtures, capsys):
    csv = tmp_path / "bad.csv"
    write_csv(csv, [[0] * 784, [0] * 783 + [256]])
    assert classify.main([str(model_path(fixtures, "int8")), "--csv", str(csv)]) == 2
    assert "bad.csv, line 3, column 784: expected 0..255, got 256" in capsys.readouterr().err
    csv.write_text("a,b\n1,2\n")
    assert classify.main([str(model_path(fixtures, "int8")), "--csv", str(csv)]) == 2
    assert "bad.csv, line 1 (header)" in capsys.readouterr().err


def test_bad_image_and_flags(tmp_path, fixtures, capsys):
    blank = tmp_path / "blank.png"
    Image.new("L", (40, 40), 0).save(blank)
    assert classify.main([str(model_path(fixtures, "int8")), str(blank)]) == 2
    assert "blank.png: no digit found" in capsys.readouterr().err
    for argv in ([str(model_path(fixtures, "int8"))], [str(model_path(fixtures, "int8")), "--top_k", "11", "x.png"]):
        try:
            classify.main(argv)
        except SystemExit as exit_:
            assert exit_.code == 2
        else:
            raise AssertionError(f"{argv} was accepted")


def test_module_runs_with_snake_case_flags(fixtures):
    result = subprocess.run([sys.executable, "-m", "edge.pi.classify", "--help"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert "--top_k TOP_K" in result.stdout and "(default: 3)" in result.stdout
    result = subprocess.run([sys.executable, "-m", "edge.pi.classify", str(model_path(fixtures, "int8")),
                             "--csv", str(fixtures / "digits.csv")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 145


def test_csv_with_a_byte_order_mark_is_read(tmp_path, fixtures, digits, capsys):
    csv = tmp_path / "bom.csv"
    write_csv(csv, digits[0][:3], digits[1][:3])
    csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())  # as spreadsheet programs save UTF-8
    assert classify.main([str(model_path(fixtures, "int8")), "--csv", str(csv)]) == 0
    assert capsys.readouterr().out.startswith("ImageId,Label\n1,")


def test_header_errors_show_what_differs(tmp_path, fixtures, capsys):
    csv = tmp_path / "space.csv"
    write_csv(csv, [[0] * 784])
    csv.write_text(csv.read_text().replace("pixel3,", "pixel3 ,", 1))
    assert classify.main([str(model_path(fixtures, "int8")), "--csv", str(csv)]) == 2
    assert "space.csv, line 1 (header), column 4: expected 'pixel3', got 'pixel3 '" in capsys.readouterr().err
    csv.write_text(csv.read_text().replace(",", ";"))
    assert classify.main([str(model_path(fixtures, "int8")), "--csv", str(csv)]) == 2
    assert "separated by ';'" in capsys.readouterr().err


def test_out_under_a_file_is_one_line_and_writes_nothing(tmp_path, fixtures, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    out = tmp_path / "taken" / "sub" / "submission.csv"
    code = classify.main([str(model_path(fixtures, "int8")), "--csv", str(fixtures / "digits.csv"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert f"{tmp_path / 'taken'} is a file, not a folder" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_errors_are_one_line_without_traceback_unless_debug(tmp_path, fixtures):
    tiny = tmp_path / "tiny.png"
    Image.new("L", (1, 1)).save(tiny)
    command = [sys.executable, "-m", "edge.pi.classify", str(model_path(fixtures, "int8")), str(tiny)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "tiny.png: too small, 1x1 pixels" in result.stderr
    assert "Traceback" not in result.stderr
    result = subprocess.run([*command, "--debug"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" in result.stderr and "ImageError" in result.stderr
