"""The report of the tiny trained run: its figures, its page, and the page in a real browser."""

import base64
import csv
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_faults import one_error_line

from competition.config import ROOT
import browser
from competition.report import build

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVERY_RUN = {"class_distribution", "sample_digits", "learning_curves", "confusion_matrix", "misclassified",
             "conv_filters", "augmentations"}
# The report model: conv, pool, conv, pool.
# Named by position and layer type: Keras' layer names depend on what else the process built.
FEATURE_MAPS = {"feature_maps_1_conv2d", "feature_maps_2_maxpooling2d", "feature_maps_3_conv2d",
                "feature_maps_4_maxpooling2d"}


@pytest.fixture(scope="module")
def report(trained_run):
    return build.build_report(run=str(trained_run), models_dir=trained_run.parent)


def embedded_images(page: str) -> list[bytes]:
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert all(src.startswith("data:image/png;base64,") for src in sources), "every image is an embedded PNG"
    return [base64.b64decode(src.split(",", 1)[1]) for src in sources]


def test_every_figure_is_a_legible_png(report, trained_run):
    assert report == trained_run / "report" / "report.html"
    pngs = {p.stem: p for p in report.parent.glob("*.png")}
    assert set(pngs) == EVERY_RUN | FEATURE_MAPS  # no tuning or edge figure: this run has neither
    for name, path in pngs.items():
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
            pixels = np.asarray(image.convert("L"))
        assert 500 <= width <= 2000 and 200 <= height <= 2000, f"{name}: {width}x{height}"
        assert pixels.std() > 10, f"{name} is blank"
    assert not list(report.parent.glob(".*.tmp")), "no half-written file left"


def test_page_embeds_every_figure_and_links_nothing_outside(report):
    page = report.read_text()
    images = embedded_images(page)
    figures = sorted(p.read_bytes() for p in report.parent.glob("*.png"))
    assert sorted(images) == figures  # each figure embedded once, byte for byte
    markup = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "PNG", page)
    assert not re.search(r"https?:|file:|//|<script|@import|url\(|src=\"(?!PNG)", markup, re.I)
    assert re.findall(r'href="([^"]*)"', markup) == ["data:,"] + [f"#{anchor}" for anchor in
                                                                  re.findall(r'<section id="([^"]+)"', page)]


def test_header_says_which_data_model_and_metrics(report, trained_run):
    page = report.read_text()
    metrics = json.loads((trained_run / "metrics.json").read_text())["validation"]
    assert '<div class="banner demo">DEMO data: scikit-learn digits' in page
    assert "DEMO set (scikit-learn digits)" in page and "Kaggle train.csv" not in page
    assert trained_run.name in page and "Conv2D(32, 5x5) → MaxPool → BatchNorm → Dropout(0.25)" in page
    assert "858,122" in page
    assert f"{metrics['accuracy']:.5f}" in page and f"{metrics['loss']:.4f}" in page
    assert f"{metrics['errors']} of {metrics['n']}" in page
    # The misclassified figure is the run's own: as many errors as metrics.json counts.
    assert f"{metrics['errors']} misclassified of {metrics['n']:,} validation digits" in page


def test_tuned_run_shows_trials_and_edge_check(trained_run, tmp_path):
    """A run that names a search's best hyperparameters, and has an edge check table beside it."""
    models = tmp_path / "models"
    run = copy_run(trained_run, models)
    search = models / "search-hyperband"
    search.mkdir()
    fields = ["trial", "n_conv_blocks", "val_loss", "val_accuracy", "epochs", "seconds", "tuner", "status"]
    with open(search / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for k, loss in enumerate([0.09, 0.05, "", 0.07, 0.031]):
            writer.writerow({"trial": f"000{k}", "n_conv_blocks": 2 + k % 3, "val_loss": loss, "val_accuracy": 0.98,
                             "epochs": 3, "seconds": 12.5, "tuner": "chief",
                             "status": "FAILED" if loss == "" else "COMPLETED"})
    best = {"hyperparameters": {"n_conv_blocks": 4, "fc_dropout": 0.5}, "model": {"conv_filters": [64, 64, 128, 128]},
            "val_loss": 0.031, "trial": "0004", "tuner": "hyperband"}
    (search / "best_hyperparameters.json").write_text(json.dumps(best))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "hparams": str(search / "best_hyperparameters.json")}))
    (run / "tflite").mkdir(exist_ok=True)  # the shared run may have been exported by the edge tests
    check = {"run": run.name, "rows": [{"variant": "keras", "accuracy": 0.97, "bytes": 10355522},
                                       {"variant": "int8", "accuracy": 0.96,
                                        "latency_ms_1_threads": {"median": 0.158, "p99": 0.25}}], "passed": True}
    (run / "tflite" / "check.json").write_text(json.dumps(check))

    page = build.build_report(run=str(run), models_dir=models).read_text()
    assert (run / "report" / "tuning_trials.png").is_file()
    assert len(embedded_images(page)) == len(EVERY_RUN | FEATURE_MAPS) + 1
    assert 'id="tuning"' in page
    assert "<h3>The 10 best trials</h3>" in page and "0.03100 (trial 0004, hyperband)" in page
    assert "64, 64, 128, 128" in page
    assert 'id="edge"' in page and "10,355,522" in page and "median 0.1580, p99 0.2500" in page


def test_data_other_than_the_runs_is_refused(trained_run, demo_dir, tmp_path, capsys):
    other = shutil.copytree(demo_dir, tmp_path / "data")
    lines = (other / "train.csv").read_text().splitlines()
    (other / "train.csv").write_text("\n".join(lines[:-1]) + "\n")  # one row fewer
    code = build.main(["--run", str(trained_run), "--data_dir", str(other)])
    assert code == 2
    one_error_line(capsys.readouterr().err, str(other / "train.csv"),
                   f"is not the data {trained_run.name} was trained on")


def copy_run(trained_run, models, config=None, fingerprint=None, metrics=None):
    """The tiny run, copied under `models` with some of its records changed."""
    run = shutil.copytree(trained_run, models / trained_run.name, ignore=shutil.ignore_patterns("report"))
    for name, changes in (("config.json", config), ("data_fingerprint.json", fingerprint), ("metrics.json", metrics)):
        if changes:
            (run / name).write_text(json.dumps({**json.loads((run / name).read_text()), **changes}))
    return run


def test_run_without_validation_rows_on_another_architecture(trained_run, tmp_path):
    """val_size 0 (every row trained) and the strong model: no validation figures, 7 conv layers' maps."""
    from competition.model.designs import build as build_model

    run = copy_run(trained_run, tmp_path, config={"val_size": 0.0, "arch": "strong"}, fingerprint={"n_val": 0},
                   metrics={"validation": None, "restored_epoch": None})
    build_model("strong").save(run / "model.keras")  # untrained: the report only reads its layers and weights
    page = build.build_report(run=str(run), models_dir=tmp_path).read_text()
    names = {p.stem for p in (run / "report").glob("*.png")}
    assert not names & {"confusion_matrix", "misclassified"}
    assert len([n for n in names if n.startswith("feature_maps_")]) == 7  # strided convs, no pooling
    assert "none: this run trained on every row (val_size 0)" in page and "training digit #1" in page
    assert "Conv2D(32, 5x5, stride 2)" in page and "weights of the last epoch" in page
    assert len(embedded_images(page)) == len(names)


def test_residual_network_and_an_ensemble_member(trained_run, tmp_path):
    """A functional model (branches joined by Add), as an ensemble's member run: every conv layer's maps."""
    import keras

    from competition.model.designs import build as build_model

    run = copy_run(trained_run, tmp_path / "ensemble-mix" / "member-1", config={"arch": "resnet"})
    model = build_model("resnet")
    model.compile(loss="categorical_crossentropy")
    model.save(run / "model.keras")  # untrained: the report reads its layers, weights and predictions
    page = build.build_report(run=str(run), models_dir=tmp_path).read_text()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    maps = [p for p in (run / "report").glob("feature_maps_*.png")]
    assert len(maps) == len(convs) == 7
    assert "Add" in page and "GlobalAveragePooling2D" in page and "265,770" in page
    assert {"confusion_matrix", "misclassified"} <= {p.stem for p in (run / "report").glob("*.png")}


def test_run_whose_rows_came_from_elsewhere_is_refused(trained_run, tmp_path, capsys):
    """A cross-validation fold: its validation rows are not its config's split."""
    run = copy_run(trained_run, tmp_path, fingerprint={"n_val": 287})
    assert build.main(["--run", str(run)]) == 2
    one_error_line(capsys.readouterr().err, f"{run.name} was validated on 287 rows")
    assert not (run / "report").exists()


def test_no_run_says_what_to_do(tmp_path, capsys):
    assert build.main(["--models_dir", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, str(tmp_path), "make train")


def chromium_or_skip() -> None:
    """Install Debian's chromium (make setup-browser) if it is missing; skip only if that fails."""
    if browser.find_chromium():
        return
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and this system has no apt-get to install it")
    try:  # sudo -n: fail rather than wait for a password
        result = subprocess.run(["make", "setup-browser", "SUDO=sudo -n"], cwd=ROOT, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=900)
        said = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit {result.returncode}"]
    except (OSError, subprocess.TimeoutExpired) as err:
        said = [str(err)]
    if browser.find_chromium() is None:
        pytest.skip(f"chromium is not installed and `make setup-browser` could not install it: {said[0]}")


def test_page_in_headless_chromium(report, tmp_path):
    chromium_or_skip()
    result = browser.check_page(report, screenshots=tmp_path)
    figures = len(list(report.parent.glob("*.png")))
    assert len(result["images"]) == figures
    for image in result["images"]:
        assert image["complete"] and image["naturalWidth"] > 0 and image["naturalHeight"] > 0, image
        assert not image["error"], image
    assert result["console_errors"] == []
    assert result["screenshots"] and all(p.read_bytes()[:8] == PNG_SIGNATURE for p in result["screenshots"])


def test_browser_check_sees_broken_images_and_console_errors(tmp_path):
    """The check itself: a page with a bad image, a missing one, a console.error and an exception."""
    chromium_or_skip()
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    '<img alt="bad" src="data:image/png;base64,AAAA"><img alt="gone" src="missing.png">'
                    '<script>console.error("boom"); throw new Error("uncaught");</script></body></html>')
    result = browser.check_page(page)
    assert [image["naturalWidth"] for image in result["images"]] == [0, 0]
    errors = "\n".join(result["console_errors"])
    assert "boom" in errors and "uncaught" in errors and "missing.png" in errors
