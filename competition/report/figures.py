"""The report's figures: each function takes arrays and returns a matplotlib Figure; `save` writes it.

Figures are built on matplotlib's Agg backend (files only, no display). Each has a title, axis labels
and, where colour carries a value, a colour bar. Digits are drawn as on paper: ink dark, 0 white.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are only written to files

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from common.writing import atomic_path
from competition.config import NUM_CLASSES

DPI = 100
DIGIT_CMAP = "gray_r"  # 0 white, 255 black: ink is dark, as on the page
MAX_MISCLASSIFIED = 40  # digits shown, worst first
MAX_FILTERS = 64  # filters or feature maps shown per layer


def save(fig: Figure, path: Path) -> Path:
    """Write fig as a PNG, whole (temporary name, then renamed)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


DIGIT = {"cmap": DIGIT_CMAP, "vmin": 0, "vmax": 255}


def tiled(entries: list[tuple[np.ndarray, str, dict]], cols: int, tile_inches: float = 0.9, title_lines: int = 1,
          frame: bool = False, highlight: int | None = None,
          colorbar_room: bool = False) -> tuple[Figure, object, list]:
    """A figure with one axes holding many small images, each titled above: (image, title, imshow kwargs).

    One axes for the lot: matplotlib lays out an axes per image (hundreds, for feature maps) slowly.
    Every tile takes the last image's size; `highlight` frames one tile in red. Returns the figure,
    the axes and the images drawn (for a colour bar).
    """
    h, w = entries[-1][0].shape[:2]  # (h, w) or (h, w, 1); 1x1 feature maps stay 2-d
    gap_x, gap_y = 0.15 * w, (0.12 + 0.3 * title_lines) * h
    rows = max(1, math.ceil(len(entries) / cols))
    width, height = cols * (w + gap_x), rows * (h + gap_y)
    inches = tile_inches / w
    fig = Figure(figsize=(width * inches + (1.4 if colorbar_room else 0.2), height * inches + 0.6),
                 layout="constrained")
    ax = fig.add_subplot()
    drawn = []
    for k, (image, title, style) in enumerate(entries):
        row, col = divmod(k, cols)
        x0, y0 = col * (w + gap_x), row * (h + gap_y) + gap_y
        drawn.append(ax.imshow(image.reshape(image.shape[:2]), extent=(x0, x0 + w, y0 + h, y0), **style))
        ax.text(x0 + w / 2, y0 - 0.05 * h, title, ha="center", va="bottom", fontsize=8)
        if frame or k == highlight:
            red = k == highlight
            ax.add_patch(Rectangle((x0, y0), w, h, fill=False, lw=2 if red else 0.8,
                                   edgecolor="tab:red" if red else "0.35"))
    ax.set(xlim=(-gap_x / 2, width - gap_x / 2), ylim=(height, 0), aspect="equal")
    ax.set_axis_off()
    return fig, ax, drawn


def _log_y(ax, subs: tuple = (1, 2, 3, 5), fmt: str = "g") -> None:
    """A log y axis labelled in plain numbers (0.02, 0.03, 0.05, 0.1) rather than 2x10^-2."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format(value, fmt)))
    ax.yaxis.set_minor_formatter(NullFormatter())


def class_distribution(labels: np.ndarray, source: str) -> Figure:
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(range(NUM_CLASSES), counts, color="tab:blue")
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=9)
    ax.axhline(counts.mean(), ls="--", color="tab:gray", label=f"mean {counts.mean():,.0f}")
    ax.set(xticks=range(NUM_CLASSES), xlabel="label", ylabel="digits",
           title=f"Class distribution: {len(labels):,} digits of {Path(source.split('::')[-1]).name}")
    ax.margins(y=0.12)
    ax.legend(loc="lower right")
    return fig


def sample_digits(images: np.ndarray, labels: np.ndarray, per_class: int = 4, seed: int = 0) -> Figure:
    """`per_class` random digits of each label, one column per label."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == label), size=per_class, replace=False)
              if (labels == label).sum() >= per_class else np.flatnonzero(labels == label)[:per_class]
              for label in range(NUM_CLASSES)]
    entries = [(images[chosen[label][row]], f"label {label}", DIGIT)
               for row in range(per_class) for label in range(NUM_CLASSES) if row < len(chosen[label])]
    fig, _, _ = tiled(entries, NUM_CLASSES)
    fig.suptitle(f"Sample digits from train.csv, {per_class} of each label")
    return fig


def learning_curves(history: pd.DataFrame, restored_epoch: int | None) -> Figure:
    """Loss, accuracy and F1 per epoch, train against validation, and the learning rate."""
    panels = [("loss", "loss (cross-entropy)"), ("accuracy", "accuracy"),
              ("f1", "F1 (micro, threshold 0.5)"), ("learning_rate", "learning rate")]
    panels = [(key, name) for key, name in panels if key in history]
    epochs = history["epoch"].to_numpy() + 1
    fig = Figure(figsize=(11, 3.75 * math.ceil(len(panels) / 2)), layout="constrained")
    axes = fig.subplots(math.ceil(len(panels) / 2), 2, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    for ax, (key, name) in zip(axes, panels):
        ax.plot(epochs, history[key], "o-", ms=3, label="train" if key != "learning_rate" else "learning rate")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", ms=3, label="validation")
        if key in ("loss", "learning_rate"):
            _log_y(ax, *((1, 2, 3, 5), "g") if key == "loss" else ((1,), ".0e"))
        if restored_epoch:
            ax.axvline(restored_epoch, color="tab:gray", ls=":", label=f"weights kept (epoch {restored_epoch})")
        ax.set(xlabel="epoch", ylabel=name, title=f"{name} per epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(f"Learning curves ({len(epochs)} epochs)")
    return fig


def confusion_matrix(matrix: np.ndarray) -> Figure:
    """Counts in every cell; colour on a log scale so that single mistakes show beside the diagonal."""
    matrix = np.asarray(matrix)
    n, errors = int(matrix.sum()), int(matrix.sum() - np.trace(matrix))
    fig = Figure(figsize=(8, 6.8), layout="constrained")
    ax = fig.add_subplot()
    norm = LogNorm(vmin=1, vmax=max(int(matrix.max()), 2))
    image = ax.imshow(np.ma.masked_equal(matrix, 0), cmap="Blues", norm=norm)
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count and norm(count) > 0.6 else ("black" if count else "#bbbbbb")
        weight = "bold" if count and row != col else "normal"
        ax.text(col, row, str(count), ha="center", va="center", fontsize=9, color=colour, fontweight=weight)
    fig.colorbar(image, ax=ax, label="digits (log scale; empty cells white)")
    ax.set(xticks=range(NUM_CLASSES), yticks=range(NUM_CLASSES), xlabel="predicted label", ylabel="true label",
           title=f"Confusion matrix, validation: {n:,} digits, {errors} errors")
    return fig


def misclassified(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                  limit: int = MAX_MISCLASSIFIED) -> Figure:
    """Wrong predictions, the most confident first, with the probability of the true and predicted label."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    order = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:limit]
    if not len(order):
        fig = Figure(figsize=(8, 1.5))
        fig.text(0.5, 0.5, "No misclassified validation digits.", ha="center", va="center", fontsize=14)
        return fig
    p = probabilities
    entries = [(images[i], f"true {labels[i]} ({p[i, labels[i]]:.2f})\npred {predicted[i]} ({p[i, predicted[i]]:.2f})",
                DIGIT) for i in order]
    fig, _, _ = tiled(entries, min(10, max(len(order), 5)), tile_inches=1.0, title_lines=2)
    fig.suptitle(f"Misclassified validation digits, worst first: {len(order)} of {len(wrong)} shown\n"
                 "(in brackets: the probability the model gave to that label)")
    return fig


def conv_filters(kernel: np.ndarray, layer_name: str) -> Figure:
    """A Conv2D kernel (k, k, in, out) as one image per filter (first input channel), weights 0 white."""
    weights = kernel[:, :, 0, :MAX_FILTERS]
    count = weights.shape[-1]
    limit = float(np.abs(weights).max()) or 1.0
    style = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    fig, ax, drawn = tiled([(weights[:, :, k], f"filter {k + 1}", style) for k in range(count)], 8,
                           tile_inches=0.95, frame=True, colorbar_room=True)
    fig.colorbar(drawn[-1], ax=ax, label="weight (red +, blue -)", shrink=0.8)
    size = "x".join(map(str, kernel.shape[:2]))
    shown = f"first {count} of {kernel.shape[-1]}" if count < kernel.shape[-1] else f"all {count}"
    fig.suptitle(f"First conv layer ({layer_name}): {shown} filters, {size}")
    return fig


def feature_maps(image: np.ndarray, maps: np.ndarray, layer: str, digit_title: str) -> Figure:
    """One layer's output (h, w, channels) for one digit, the digit itself first; one colour scale."""
    shown = maps[:, :, :MAX_FILTERS]
    count = shown.shape[-1]
    # One scale for the layer, square-root so that weak maps still show their pattern (ReLU: all >= 0).
    low = min(0.0, float(shown.min()))
    style = {"cmap": "viridis", "norm": PowerNorm(0.5, vmin=low, vmax=max(float(shown.max()), low + 1e-6))}
    entries = [(image, "input", DIGIT)] + [(shown[:, :, k], f"ch {k + 1}", style) for k in range(count)]
    fig, ax, drawn = tiled(entries, 12, tile_inches=0.85, colorbar_room=True)
    fig.colorbar(drawn[-1], ax=ax, label="activation (square-root scale)", shrink=0.8)
    h, w, c = maps.shape
    channels = f"first {count} of {c} channels" if count < c else f"all {c} channels"
    fig.suptitle(f"{layer}: output {h}x{w}x{c}, {channels}\n{digit_title}")
    return fig


def augmentations(image: np.ndarray, augmented: np.ndarray, settings: str) -> Figure:
    """The digit (framed), then each random warp of it."""
    entries = [(image, "original", DIGIT)] + [(np.clip(a, 0, 255), f"augmented {k + 1}", DIGIT)
                                               for k, a in enumerate(augmented)]
    fig, _, _ = tiled(entries, 8, tile_inches=1.0, highlight=0)
    fig.suptitle(f"One digit (framed) and {len(augmented)} random augmentations ({settings})")
    return fig


def tuning_trials(results: pd.DataFrame) -> Figure:
    """val_loss of each finished trial in the order they started, coloured by epochs trained, with the best so far."""
    done = results[pd.to_numeric(results["val_loss"], errors="coerce").notna()].reset_index(drop=True)
    losses = done["val_loss"].astype(float).to_numpy()
    order = np.arange(1, len(done) + 1)
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.add_subplot()
    if len(done):
        epochs = pd.to_numeric(done.get("epochs", pd.Series([np.nan] * len(done))), errors="coerce")
        points = ax.scatter(order, losses, c=epochs, cmap="viridis", s=36, zorder=3)
        fig.colorbar(points, ax=ax, label="epochs trained in the trial")
        ax.step(order, np.minimum.accumulate(losses), where="post", color="tab:red", label="best so far")
        best = int(np.argmin(losses))
        ax.scatter(order[best], losses[best], marker="*", s=300, facecolor="none", edgecolor="tab:red", zorder=4,
                   label=f"best: trial {done['trial'][best]}, val_loss {losses[best]:.4f}")
        _log_y(ax)
        ax.legend(loc="upper right")
    skipped = len(results) - len(done)
    ax.set(xlabel="trial, in the order they were started", ylabel="val_loss (log scale)",
           title=f"Tuning: val_loss of {len(done)} trials" + (f" ({skipped} without a result)" if skipped else ""))
    ax.grid(alpha=0.3)
    return fig
