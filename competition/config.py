"""Every setting of the trainer, written once: paths, the run configurations with what each field
does, the presets, and the recipes built from them.

Command lines override them (competition/cli.py makes one --flag per field, its help the field's
own); the resolved TrainConfig is saved beside every model. The recipes' figures and the commands
behind them: docs/experiments.md.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from common.digits_csv import IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS  # noqa: F401  (the format's sizes)
from common.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

# Where the competition's CSVs are read from: --data_dir beats $DIGITS_DATA_DIR beats data/.
DATA_DIR = Path(os.environ.get("DIGITS_DATA_DIR", ROOT / "data"))
DEMO_DATA_DIR = ROOT / "data" / "demo"
# The competition data beside the checkout: the default of the scripts that measure on it.
SHARED_DATA_DIR = ROOT.parent / "shared" / "data" / "digit-recognizer"
# Every run writes its own folder here.
MODELS_DIR = Path(os.environ.get("DIGITS_MODELS_DIR", ROOT / "models"))

COMPETITION_TRAIN_ROWS = 42_000  # train.csv's rows: what the recipes' cross-validations measured on
# Compute precisions (--precision). Weights stay float32 in all; mixed_bfloat16 runs the
# convolutions in bfloat16, mixed_float16 in float16 with the loss scaled (Keras wraps the optimizer
# in a LossScaleOptimizer), for GPUs with float16 tensor cores but none for bfloat16 (T4, V100).
# "auto" picks one only where the hardware runs it natively (competition/training/hardware.py):
# elsewhere it is emulated and slower than float32.
COMPUTE_PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
PRECISIONS = ("auto", *COMPUTE_PRECISIONS)
# The model designs (--arch): competition/model/designs.py builds each.
ARCH_NAMES = ("report", "strong", "resnet", "vgg", "wresnet")
TUNERS = ("hyperband", "random", "bayesian")
SCHEDULES = ("epoch", "onecycle")


def setting(default, help: str):
    """A config field: its default and what it does, shown by --help."""
    return dataclasses.field(default=default, metadata={"help": help})


def help_of(cls: type, name: str) -> str:
    return next(f.metadata["help"] for f in dataclasses.fields(cls) if f.name == name)


@dataclasses.dataclass
class _Data:
    """What every run shares: where its data and run folders are, the split, the seed, the threads."""

    data_dir: str = setting(str(DATA_DIR), "folder with train.csv and test.csv (plain, .gz, or the competition's zip)")
    models_dir: str = setting(str(MODELS_DIR), "folder the run folders go to")
    # Split: train_test_split(test_size=0.1, random_state=15), as the report.
    val_size: float = setting(0.1, "share of train.csv held out for validation; 0 trains on every row")
    split_seed: int = setting(15, "seed of the train/validation split (15: the report's)")
    seed: int = setting(0, "seed of the weights, the shuffling and the augmentation")
    threads: int = setting(0, "TensorFlow threads; 0: every core this process may use")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _DataAndFit(_Data):
    """What a training run and a search share beside the data: the optimiser's step, augmentation."""

    # Optimisation: Adam 1e-4, batch 32, as the report.
    batch_size: int = setting(32, "images per training step")
    learning_rate: float = setting(1e-4, "Adam's learning rate (the first epoch's, with --lr_decay)")
    # Augmentation: rotation, shift, zoom and shear, never flips (a flipped 2 is not a 2).
    augment: bool = setting(False, "warp each training image randomly: rotation, shift, zoom, shear (never flips)")
    rotation_deg: float = setting(10.0, "largest rotation of --augment, in degrees")
    shift_frac: float = setting(0.1, "largest shift of --augment, as a share of the side")
    zoom_frac: float = setting(0.1, "largest zoom in or out of --augment, as a share")
    shear_deg: float = setting(0.0, "largest shear of --augment, in degrees (0: none)")
    grid_px: float = setting(0.0, "with --augment: bend each image too, moving the inner points of a 4x4 grid up to "
                                  "this many pixels each way (ttdoucet's Augmentor distortion; 0: none)")


@dataclasses.dataclass
class TrainConfig(_DataAndFit):
    """One training run. Defaults are the report's (../shared/REPORT.md, models 1 and 2)."""

    name: str = setting("report", "suffix of the run's folder (models/<time>-<name>; cv-<name>, ensemble-<name>)")
    arch: str = setting("report", f"the model design: {', '.join(ARCH_NAMES)}")
    width: float = setting(1.0, "every design but report: multiply every layer's filters by this (FLOPs scale by "
                                "about its square)")
    dropout: float = setting(0.4, "every design but report: the rate of its dropout layers")
    epochs: int = setting(40, "epochs to train, at most (early stopping may end sooner)")
    # EarlyStopping(val_loss, patience 10, min_delta 0.005, restore best) and
    # ReduceLROnPlateau(val_loss, patience 3), as the report's model 2.
    early_stopping: bool = setting(True, "stop when validation loss stops improving, keeping the best epoch's weights")
    early_stopping_patience: int = setting(10, "epochs without improvement before early stopping stops")
    early_stopping_min_delta: float = setting(0.005, "smallest fall in validation loss that counts as an improvement")
    reduce_lr_patience: int = setting(3, "epochs without improvement before the learning rate is cut (without "
                                         "--lr_decay)")
    lr_decay: float = setting(0.0, "multiply the learning rate by this each epoch (0: cut it on plateaus instead)")
    # One-cycle (Smith 2018), as the training-speed records use: a short linear rise to a high peak,
    # then a fall to zero, set every step rather than every epoch.
    schedule: str = setting("epoch", f"learning-rate schedule, one of {', '.join(SCHEDULES)}; epoch: --lr_decay or "
                                     "cuts on plateaus; onecycle: rise to --learning_rate over --warmup of the steps, "
                                     "then a cosine fall to zero")
    warmup: float = setting(0.2, "with --schedule onecycle: share of the steps that rise to --learning_rate")
    # Matuzas77's last epoch: the warps' distortions unlearnt at the end, on the digits as they are.
    plain_epochs: int = setting(0, "with --augment: the last this many epochs train on the digits unwarped")
    label_smoothing: float = setting(0.0, "train towards 1 - this on the true digit and the rest spread evenly (0: off)")
    # 0.999 averages about the last 1,000 steps; metrics.json scores both the average and the last step.
    ema: float = setting(0.0, "keep a moving average of the weights with this momentum and save it (0: off; "
                              "0.999 ~ 1,000 steps)")
    precision: str = setting("auto", f"compute precision, one of {', '.join(PRECISIONS)}; auto: bfloat16 only where "
                                     "the hardware runs it natively (the saved model is float32 either way)")
    # Semi-supervised (competition/training/pseudo.py).
    pseudo: str = setting("", "a run, ensemble or CV folder whose models label test.csv's digits to train on too")
    pseudo_min_confidence: float = setting(0.9, "keep a pseudo-labelled digit when its labellers' mean probability "
                                                "reaches this")
    hparams: str = setting("", "a search's best_hyperparameters.json: train that model instead of --arch")

    def __post_init__(self):
        problems = self.problems()
        if problems:
            raise ConfigError(problems[0])

    def problems(self) -> list[str]:
        """What is wrong with these settings, each as one line naming the flags (none: they hold
        together). Checked whenever a TrainConfig is made or replaced, however it is made."""
        checks = [
            (self.arch in ARCH_NAMES, f"--arch {self.arch!r}: choose from {', '.join(ARCH_NAMES)}"),
            (self.precision in PRECISIONS, f"--precision {self.precision!r}: choose from {', '.join(PRECISIONS)}"),
            (self.epochs >= 1 and self.batch_size >= 1 and 0 <= self.val_size < 1,
             "--epochs and --batch_size must be at least 1, --val_size in [0, 1)"),
            (0 <= self.ema < 1, f"--ema {self.ema}: a momentum in [0, 1); 0 is off"),
            (0 <= self.shear_deg < 90, f"--shear_deg {self.shear_deg}: degrees in [0, 90)"),
            (0 <= self.grid_px < 4, f"--grid_px {self.grid_px}: pixels in [0, 4) (the grid's cells are 6.75 px)"),
            (self.plain_epochs == 0 or (self.augment and 0 < self.plain_epochs < self.epochs),
             "--plain_epochs needs --augment and must leave at least one warped epoch (fewer than --epochs)"),
            (self.arch != "report" or (self.width, self.dropout) == (TrainConfig.width, TrainConfig.dropout),
             "--width and --dropout are for every --arch but report (the report's design has its own)"),
            (self.width > 0 and 0 <= self.dropout < 1, "--width must be above 0, --dropout in [0, 1)"),
            (self.schedule in SCHEDULES, f"--schedule {self.schedule!r}: choose from {', '.join(SCHEDULES)}"),
            (0 <= self.warmup < 1 and 0 <= self.label_smoothing < 1, "--warmup and --label_smoothing must be in [0, 1)"),
            (self.schedule != "onecycle" or not (self.lr_decay or self.early_stopping),
             "--schedule onecycle sets every step's rate: give it --lr_decay 0 and --no-early_stopping"),
            # early stopping's restored best epoch would silently replace the average
            (not (self.ema and self.early_stopping), "--ema needs --no-early_stopping (use --lr_decay, as the strong "
                                                      "preset does)"),
        ]
        return [message for holds, message in checks if not holds]


@dataclasses.dataclass
class SearchConfig(_DataAndFit):
    """A keras-tuner search of the report's space (../shared/REPORT.md, model 3).

    The defaults finish in about an hour on a 2-core CPU: Hyperband with max_epochs 9 and factor 3
    plans 23 trials and 75 epochs. The report's own search (90 trials, 5.5 hours for its author) is
    --max_epochs 40 --factor 3 --iterations 1 --budget_minutes 0.
    """

    name: str = setting("", "the search lives in models/search-<name>/ (default: the tuner's name)")
    tuner: str = setting("hyperband", ", ".join(TUNERS))
    max_epochs: int = setting(9, "Hyperband: epochs of the longest trials; the others: epochs of every trial")
    factor: int = setting(3, "Hyperband's reduction factor between rounds")
    iterations: int = setting(1, "Hyperband iterations (whole sweeps of its brackets)")
    max_trials: int = setting(20, "random and bayesian search: trials to run")
    budget_minutes: float = setting(60.0, "start no trial after this many minutes (0: no limit); running it again "
                                          "resumes")
    augment: bool = setting(True, "warp each training image randomly, as training does (the report's model 3 did)")


# Settings added after runs and searches began to resume, at the value that leaves training as it
# was: a record or checkpoint from before one existed did that (training/trainer.py, tuning.py).
ADDED_OFF = {"shear_deg": 0.0, "plain_epochs": 0, "grid_px": 0.0}


# Named starting points for TrainConfig (--preset); explicit flags still override them.
PRESETS = {
    "report": {},
    # The report's model 2, as `make train-aug` trains it.
    "report-aug": dict(augment=True),
    # `make demo`: the report's model 2 on the 1,294 training digits of the demo set. At batch 32 an
    # epoch is 40 steps, too few for batch normalisation's moving statistics (momentum 0.99), so the
    # validation accuracy stays near chance for epochs while the plateau cut on 144 digits drops the
    # rate to 1e-5. Batch 8 gives 162 steps an epoch; a rate that decays each epoch learns visibly in
    # every one (docs/training.md).
    "demo": dict(augment=True, epochs=12, batch_size=8, learning_rate=5e-4, lr_decay=0.85, early_stopping=False),
    # Beyond the report: the strong architecture, trained with a learning rate that decays each
    # epoch and no early stopping, as the best honest Kaggle solutions do. Batch 64 and no XLA are
    # the fastest settings measured on a 2-core CPU; its CV and minutes: docs/experiments.md.
    "strong": dict(arch="strong", augment=True, epochs=25, batch_size=64, learning_rate=1e-3, lr_decay=0.9,
                   early_stopping=False),
}
# Twice the epochs, the decay's square root so the last epoch's learning rate is the preset's: one
# model better on the held-out folds at twice the minutes; 4x the epochs gained nothing more
# (docs/experiments.md).
PRESETS["strong-long"] = dict(PRESETS["strong"], epochs=50, lr_decay=0.9 ** 0.5)
# The long recipe with the weights' moving average saved in place of the last step's, and its
# residual twin: the members of the best recipes.
PRESETS["strong-long-ema"] = dict(PRESETS["strong-long"], ema=0.999)
PRESETS["resnet-long-ema"] = dict(PRESETS["strong-long-ema"], arch="resnet")
# Time to accuracy (docs/experiments.md): the least training that gets close. A short run is
# undertrained, not overfit: less dropout, a per-step one-cycle rate with a 3x higher peak, and a
# narrower model for more epochs in the same FLOPs.
PRESETS["strong-short"] = dict(PRESETS["strong"], width=0.75, dropout=0.2, epochs=6, lr_decay=0.0,
                               schedule="onecycle", learning_rate=3e-3)
# The fast recipe's model: strong-short for 15 epochs at a 2e-3 peak, the fewest FLOPs measured
# whose float32 CV (an AVX2 laptop's precision) is at least 0.995; 11 epochs was under it in float32.
PRESETS["strong-fast"] = dict(PRESETS["strong-short"], epochs=15, learning_rate=2e-3)
# The residual network in half its epochs: the same one-cycle rate, peaking at 3e-3, and the weights' average.
PRESETS["resnet-short-ema"] = dict(PRESETS["resnet-long-ema"], epochs=25, lr_decay=0.0, schedule="onecycle",
                                   learning_rate=3e-3)
# The wide designs of the accuracy anchors (issue 45), at half their width: the anchors' warps, a
# one-cycle rate that ends at zero and the weights' average. Screened on folds 1-2 at x0.5, x0.75 and
# x1 (docs/experiments.md): level with the resnet, so starting points, not recipes.
PRESETS["vgg-wide"] = dict(PRESETS["resnet-short-ema"], arch="vgg", width=0.5, dropout=0.25, epochs=20,
                           learning_rate=2e-3)
PRESETS["wresnet-wide"] = dict(PRESETS["vgg-wide"], arch="wresnet")
# Matuzas77's levers on top (shear 10 degrees, zoom 0.2, the last epoch on plain digits): +4 digits a fold
# on vgg, level on the resnet, and together the best mixed pair measured (docs/experiments.md).
MATUZAS_LEVERS = dict(shear_deg=10.0, zoom_frac=0.2, plain_epochs=1)
PRESETS["resnet-matuzas"] = dict(PRESETS["resnet-short-ema"], **MATUZAS_LEVERS)
PRESETS["vgg-matuzas"] = dict(PRESETS["vgg-wide"], **MATUZAS_LEVERS)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Held-out accuracy that a cross-validation measured for a recipe's first `members` models."""

    accuracy: float
    std: float | None
    source: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named way from the data to a submission (`make best RECIPE=<name>`, competition/training/recipes.py)."""

    name: str
    summary: str
    members: tuple[tuple[str, int], ...]  # (preset, seeds), trained in this order
    val_size: float  # 0: every row trains; the CV below is the estimate
    tta: int  # warped copies per test digit in the submission
    estimates: dict[int, Estimate]  # by how many members are trained

    def estimate(self, trained: int) -> Estimate | None:
        """What the CV says of an ensemble of the first `trained` members (fewer under a budget)."""
        known = [n for n in self.estimates if n <= trained]
        return self.estimates[max(known)] if known else None


RECIPES = {recipe.name: recipe for recipe in (
    Recipe("report", "the report's model 2 (augmented CNN), validated on the report's 90/10 split",
           (("report-aug", 1),), val_size=0.1, tta=0,
           estimates={1: Estimate(0.99190, None, "its validation digits, docs/experiments.md")}),
    Recipe("fast", "one strong model three quarters wide, 15 epochs of a one-cycle rate, on every row",
           (("strong-fast", 1),), val_size=0.0, tta=0,
           estimates={1: Estimate(0.99519, 0.00040, "5-fold CV in float32, docs/experiments.md")}),
    Recipe("fast-short", "the fast recipe of issue 29: one strong model three quarters wide, 6 epochs, on every row",
           (("strong-short", 1),), val_size=0.0, tta=0,
           estimates={1: Estimate(0.99369, 0.00040, "5-fold CV, docs/experiments.md")}),
    Recipe("fast-v1", "the fast recipe before issue 29: one strong model, 25 epochs, on every row",
           (("strong", 1),), val_size=0.0, tta=0,
           estimates={1: Estimate(0.99524, 0.00042, "5-fold CV, docs/experiments.md")}),
    Recipe("best-single", "one residual network on every row, 25 epochs of a one-cycle rate, weights' average, "
           "TTA x4", (("resnet-short-ema", 1),), val_size=0.0, tta=4,
           estimates={1: Estimate(0.99645, 0.00036, "5-fold CV with TTA x4, docs/experiments.md")}),
    Recipe("best-single-v1", "best-single before issue 29: one residual network, 50 epochs, weights' average, TTA x4",
           (("resnet-long-ema", 1),), val_size=0.0, tta=4,
           estimates={1: Estimate(0.99638, 0.00041, "5-fold CV with TTA x4, docs/experiments.md")}),
    Recipe("best-ensemble", "a residual network and a half-wide vgg, Matuzas77's warps and last plain epoch, "
           "weights' average, averaged, TTA x4", (("resnet-matuzas", 1), ("vgg-matuzas", 1)), val_size=0.0, tta=4,
           estimates={1: Estimate(0.99645, 0.00027, "its first member alone, 5-fold CV with TTA x4, docs/experiments.md"),
                      2: Estimate(0.99667, 0.00021, "each fold's 2 models, 5-fold CV with TTA x4, docs/experiments.md")}),
    Recipe("best-ensemble-v1", "best-ensemble before issue 45: a residual network and two strong models, long schedule, "
           "weights' average, averaged", (("resnet-long-ema", 1), ("strong-long-ema", 2)), val_size=0.0, tta=0,
           estimates={1: Estimate(0.99602, 0.00038, "its first member alone, 5-fold CV, docs/experiments.md"),
                      3: Estimate(0.99638, 0.00047, "each fold's 3 models, 5-fold CV, docs/experiments.md")}),
)}


# ---- The reader's pair models (issue 43): `make pair-models`, competition/train_pairs.py ----
# Kept in one block at the end of the module, apart from the digit runs' settings above.

# The pair models (competition/model/designs.py): two finders (one digit or two touching?), the
# second of bolder, grainier strokes too, and the reader (which two?).
PAIR_DESIGNS = ("pair_finder", "pair_finder_bold", "pair_reader")
# make tflite merges the finders into one model: a piece is two digits as far as the less sure
# finder says so (each alone cut more lone digits than both: docs/experiments.md).
PAIR_FINDERS = ("pair_finder", "pair_finder_bold")
# Pair runs live in models/pair-models/<time>-<design>/: outside the folder of digit runs, so that
# no command picks one as "the best run"; make tflite takes the newest of each design whose data is
# the exported run's (same sha256).
PAIR_RUNS_DIR = "pair-models"


@dataclasses.dataclass
class PairConfig(_Data):
    """One pair-model run: made pieces of a data set's training digits (those the split leaves for
    training), held out on pieces made of its validation digits, float32 on every machine."""

    # The shared settings whose words differ for pieces (each keeps its place in the flags).
    models_dir: str = setting(str(MODELS_DIR), f"folder whose {PAIR_RUNS_DIR}/ the pair runs go to")
    seed: int = setting(-1, "seed of the made pieces and the weights (-1: the design's preset; the finders' differ)")
    design: str = setting("pair_finder", f"which pair model: {', '.join(PAIR_DESIGNS)}")
    examples: int = setting(0, "made pieces to train on (0: the design's preset)")
    epochs: int = setting(0, "epochs (0: the design's preset)")
    batch_size: int = setting(128, "pieces per training step")
    learning_rate: float = setting(1e-3, "Adam's learning rate")
    held_out: float = setting(0.1, "pieces made of the validation digits, as a share of --examples: the held-out "
                                   "figure")
    calibration: int = setting(500, "training pieces kept beside the model to calibrate its int8 export")
    shapes: float = setting(-1.0, "share of the made digits drawn wider and of the pieces slanted, 0-1 (-1: the "
                                  "design's preset)")
    strokes: float = setting(-1.0, "share of the made digits drawn bolder and of the pieces grainy, 0-1 (-1: the "
                                   "design's preset)")


# Each design's examples and epochs: fewer pieces or epochs called many more single digits pairs;
# the reader on 240,000 pairs read 0.8 points fewer pairs right than on 480,000 (docs/experiments.md, "The Pi reader").
PAIR_PRESETS = {
    "pair_finder": dict(examples=240_000, epochs=20, shapes=0.3, strokes=0.0, seed=0),  # half of them pairs;
    # wide and slanted single digits too (a finder that never saw one cut wide 0s and bold 1s in two)
    "pair_finder_bold": dict(examples=240_000, epochs=20, shapes=0.3, strokes=0.4, seed=1),  # and bold, grainy
    # ones: alone it cut fewer chalk digits but more of the other forms'; with the first, fewer of every form's
    "pair_reader": dict(examples=480_000, epochs=8, shapes=0.0, strokes=0.0, seed=0),  # every one a touching pair
}
