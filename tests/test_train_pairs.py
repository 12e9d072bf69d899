"""make pair-models: the reader's pair models as ordinary runs, once per data set, reused not retrained."""

import csv
import json
import signal
import sys
import time

import keras
import numpy as np
import pytest
from test_faults import start, usage_error_line, visible, wait_for

from competition import train_pairs
from competition.config import PAIR_DESIGNS, PAIR_RUNS_DIR, PairConfig
from competition.data.digits import load_train
from competition.data.reading import load_model
from competition.model import designs
from competition.training import pair_runs


@pytest.fixture(scope="module")
def pair_models(demo_dir, tmp_path_factory):
    """The three pair models, 200 made pieces and one epoch each, trained by the command."""
    models = tmp_path_factory.mktemp("pair-runs")
    assert train_pairs.main(["--data_dir", str(demo_dir), "--models_dir", str(models), "--examples", "200",
                             "--epochs", "1", "--threads", "1"]) == 0
    return models


def runs_of(models):
    return sorted(p.name for p in (models / PAIR_RUNS_DIR).iterdir())


def test_the_designs_have_the_sizes_their_docstrings_give():
    assert designs.pair_finder_model().count_params() == 240_514
    reader = designs.pair_reader_model((28, 56))
    assert reader.count_params() == 1_081_108 and [o.shape for o in reader.outputs] == [(None, 10), (None, 10)]
    assert designs.pair_reader_sides(reader).output.shape == (None, 20)


def test_merged_finders_call_a_piece_two_as_far_as_the_less_sure_one_does():
    finders = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        finders.append(designs.pair_finder_model())
    merged = designs.pair_finders_merged(finders)
    pieces = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1)).astype(np.float32)
    each = np.stack([finder.predict(pieces, verbose=0) for finder in finders])
    called = merged.predict(pieces, verbose=0)
    assert not np.allclose(each[0], each[1], atol=1e-3)  # two different finders, or the test shows nothing
    assert np.allclose(called[:, 1], each[:, :, 1].min(axis=0), atol=1e-6)
    assert np.allclose(called[:, 0], each[:, :, 0].max(axis=0), atol=1e-6)
    assert np.allclose(called.sum(axis=1), 1, atol=1e-5)


def test_each_pair_model_is_a_self_describing_run(pair_models, demo_dir):
    names = runs_of(pair_models)
    assert [name.split("-", 2)[2] for name in names] == ["pair_finder", "pair_finder_bold", "pair_reader"]
    sha = load_train(demo_dir).fingerprint()["sha256"]
    for name, shape, outputs in zip(names, [(28, 28, 1), (28, 28, 1), (28, 56, 1)], [2, 2, 20]):
        run = pair_models / PAIR_RUNS_DIR / name
        config = json.loads((run / "config.json").read_text())
        assert config["examples"] == 200 and config["epochs"] == 1 and config["run_id"] == name
        fingerprint = json.loads((run / "data_fingerprint.json").read_text())
        assert fingerprint["sha256"] == sha and fingerprint["n_train"] == 1294 and fingerprint["n_val"] == 144
        with open(run / "history.csv") as f:
            assert len(list(csv.DictReader(f))) == 1
        log = (run / "train.log").read_text()
        assert "epoch 1/1:" in log and "pieces/s" in log and "held out 20 p" in log
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["design"] == config["design"] and metrics["held_out"]["pieces"] == 20
        assert "validation" not in metrics  # so that no command takes a pair run for the best digit run
        calibration = np.load(run / "calibration.npy")
        assert calibration.dtype == np.uint8 and calibration.shape == (200, *shape)
        model = load_model(run / "model.keras")
        assert model.predict(calibration[:3], verbose=0).shape == (3, outputs)
        figures = pair_runs.held_out_figures(config["design"], model, *pair_runs.made(
            config["design"], *held_out_digits(demo_dir), 20, (config["seed"], 1), "again", shapes=config["shapes"],
            strokes=config["strokes"]))
        assert figures == metrics["held_out"]  # the figure is the saved model's, on pieces of validation digits


def held_out_digits(demo_dir):
    from competition.data.splits import split

    _, x_val, _, y_val = split(load_train(demo_dir), PairConfig())
    return x_val, y_val


def test_a_finished_run_of_the_same_data_and_settings_is_reused(pair_models, demo_dir, capsys):
    before = runs_of(pair_models)
    assert train_pairs.main(["--data_dir", str(demo_dir), "--models_dir", str(pair_models), "--examples", "200",
                             "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert runs_of(pair_models) == before and out.count("reused") == len(PAIR_DESIGNS)


def test_a_pair_run_killed_in_an_epoch_resumes_from_its_last_finished_one(demo_dir, tmp_path, capsys):
    models = tmp_path / "models"
    flags = ["--data_dir", str(demo_dir), "--models_dir", str(models), "--design", "pair_finder", "--examples", "2000",
             "--epochs", "4", "--batch_size", "8", "--threads", "1"]
    checkpoint = lambda: [json.loads(p.read_text())["epoch"]  # noqa: E731
                          for p in models.glob(f"{PAIR_RUNS_DIR}/.resume-pair_finder-*/training_metadata.json")
                          if p.stat().st_size]
    log = tmp_path / "first.log"
    first = start([sys.executable, "-m", "competition.train_pairs", *flags], log)
    wait_for(first, lambda: checkpoint() == [1], log)
    time.sleep(0.3)  # into the second epoch
    first.send_signal(signal.SIGKILL)
    first.wait()
    done = checkpoint()[0]
    assert 1 <= done < 4 and visible(models / PAIR_RUNS_DIR) == [], log.read_text()[-2000:]

    assert train_pairs.main(flags) == 0
    out = capsys.readouterr().out
    assert f"resume: {done} of 4 epochs were finished" in out and f"training on from epoch {done + 1}" in out
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("epoch ")] == \
        [f"epoch {n}/4" for n in range(done + 1, 5)], "only the epochs the killed run had not finished"
    (run,) = [models / PAIR_RUNS_DIR / name for name in visible(models / PAIR_RUNS_DIR)]
    history = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["0", "1", "2", "3"]
    assert json.loads((run / "metrics.json").read_text())["resumed_from_epoch"] == done
    assert not list((models / PAIR_RUNS_DIR).glob(".resume-*")), "the checkpoints go once the run is in place"


def test_pieces_are_the_same_however_many_workers_make_them(demo_dir, monkeypatch):
    x_val, y_val = held_out_digits(demo_dir)
    monkeypatch.setattr(pair_runs, "SHARED_FROM", 20)
    alone = pair_runs.made("pair_reader", x_val, y_val, 40, (3, 0), "alone", workers=1)
    shared = pair_runs.made("pair_reader", x_val, y_val, 40, (3, 0), "shared", workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(alone, shared))
    pieces, labels = pair_runs.made("pair_finder", x_val, y_val, 30, (3, 0), "finder")
    assert pieces.shape == (30, 28, 28, 1) and labels.tolist() == [0, 1] * 15


def test_each_design_takes_its_preset_shapes_strokes_and_seed_unless_told():
    finder, bold, reader = (pair_runs.resolved(PairConfig(design=design))
                            for design in ("pair_finder", "pair_finder_bold", "pair_reader"))
    assert (finder.shapes, bold.shapes, reader.shapes) == (0.3, 0.3, 0.0)
    assert (finder.examples, bold.examples, reader.epochs) == (240_000, 240_000, 8)
    assert (finder.strokes, bold.strokes, reader.strokes) == (0.0, 0.4, 0.0)
    assert (finder.seed, bold.seed, reader.seed) == (0, 1, 0)  # the two finders differ in their weights too
    told = pair_runs.resolved(PairConfig(design="pair_finder", shapes=0.0, strokes=0.4, seed=5))
    assert (told.shapes, told.strokes, told.seed) == (0.0, 0.4, 5)
    assert pair_runs.resolved(told) == told


def test_find_pair_run_takes_the_newest_of_the_same_data(pair_models, tmp_path, demo_dir):
    sha = load_train(demo_dir).fingerprint()["sha256"]
    finder = pair_models / PAIR_RUNS_DIR / runs_of(pair_models)[0]
    assert pair_runs.find_pair_run(pair_models, "pair_finder", sha) == finder
    assert pair_runs.find_pair_run(pair_models, "pair_finder", "another data set") is None
    settings = json.loads((finder / "config.json").read_text())
    assert pair_runs.find_pair_run(pair_models, "pair_finder", sha, {**settings, "epochs": 2}) is None
    assert pair_runs.find_pair_run(pair_models, "pair_finder", sha, {**settings, "strokes": 0.5}) is None
    older = {key: value for key, value in settings.items() if key not in pair_runs.ADDED_LATER}
    (finder / "config.json").write_text(json.dumps(older))  # a run made before shapes and strokes were settings
    try:
        assert pair_runs.find_pair_run(pair_models, "pair_finder", sha, {**settings, "shapes": 0.0, "strokes": 0.0}) == finder
        assert pair_runs.find_pair_run(pair_models, "pair_finder", sha, {**settings, "shapes": 0.0, "strokes": 0.4}) is None
    finally:
        (finder / "config.json").write_text(json.dumps(settings))
    assert pair_runs.find_pair_run(tmp_path, "pair_finder", sha) is None


@pytest.mark.parametrize("flags, said", [
    (["--examples", "5"], "--examples"),
    (["--val_size", "0"], "--val_size"),
    (["--design", "pair_maker"], "invalid choice"),
    (["--shapes", "1.5"], "--shapes"),
    (["--strokes", "-0.5"], "--strokes"),
])
def test_bad_flags_are_refused_in_one_line(flags, said, capsys):
    with pytest.raises(SystemExit) as exit_:
        train_pairs.main(flags)
    assert exit_.value.code == 2
    usage_error_line(capsys.readouterr().err, said)


def test_a_folder_without_data_is_one_line_and_exit_2(tmp_path, capsys):
    assert train_pairs.main(["--data_dir", str(tmp_path), "--models_dir", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "train.csv" in err
    assert not (tmp_path / "m" / PAIR_RUNS_DIR).exists()


def test_touch_offset_is_the_first_column_where_six_pixels_of_ink_are_shared(demo_dir):
    """edge/forms/written.py's touch_offset (whole rows at once, for the pair models' pieces) against
    its definition, pixel by pixel: sliding the right digit in from just apart, the first offset at
    which the two share 6 pixels of ink over 0.3, the right one dy pixels lower."""
    from edge.forms.written import touch_offset, written_digit

    def by_pixels(left, right, dy):
        a, b = left > 0.3, right > 0.3
        for x in range(left.shape[1], 0, -1):
            shared = sum(int(a[row, x + col] and b[row - dy, col]) for row in range(a.shape[0])
                         for col in range(b.shape[1]) if 0 <= row - dy < b.shape[0] and x + col < a.shape[1])
            if shared >= 6:
                return x
        return left.shape[1] // 2

    digits, rng = load_train(demo_dir).images, np.random.default_rng(0)
    for _ in range(40):
        left, right = (written_digit(digits[rng.integers(len(digits))], float(rng.uniform(20, 45)), "paper", rng,
                                     last=False) for _ in range(2))
        dy = int(rng.integers(-30, 30))
        assert touch_offset(left, right, dy) == by_pixels(left, right, dy)
    assert touch_offset(np.ones((5, 5)), np.ones((5, 5)), 10) == 2  # no rows in common: half the left one's width
