"""Figures for trained models: confusion matrix, training curves, robustness.

Each function draws on the ``ax`` (or ``axes``) it is given, or on a new figure, and
returns what it drew on; `save_figure` writes it as PNG. New figures are plain
``matplotlib.figure.Figure`` objects rendered with Agg, never pyplot's: nothing opens a
window, and nothing is left in pyplot's list of open figures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

from .files import atomic_path
from .robustness import RobustnessReport

__all__ = [
    "plot_confusion_matrix",
    "plot_robustness",
    "plot_robustness_comparison",
    "plot_training_curves",
    "save_figure",
]

# Above this many classes the cells are too small for their values to be legible.
_MAX_ANNOTATED_CLASSES = 20


def _new_axes(ncols: int = 1, *, width: float, height: float):
    """Axes (an array of them for ``ncols > 1``) on a new Agg-rendered figure."""
    return Figure(figsize=(width, height), layout="constrained").subplots(1, ncols)


def _side_by_side_bars(
    ax: Axes, positions: np.ndarray, series: Mapping[str, Sequence[float]]
) -> None:
    """A group of bars at each position, one bar per series (its legend label) in order."""
    width = 0.8 / len(series)
    for j, (label, heights) in enumerate(series.items()):
        offset = (j - (len(series) - 1) / 2) * width
        ax.bar(positions + offset, heights, width, label=label)


def _label_accuracy_axes(
    ax: Axes, labels: Sequence[str], *, ylabel: str, title: str, legend_columns: int = 1
) -> None:
    """Condition names under the bar groups, an accuracy axis from 0 to 1, title, legend."""
    ax.set_xticks(np.arange(len(labels)), labels, rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="small", ncols=legend_columns)


def _accuracies(report: RobustnessReport, corruptions: Sequence[str]) -> list[float]:
    """Clean, pixel-noise, each corruption's (mean over severities), mean-corruption accuracy."""
    grid = report.accuracy_grid()
    per_corruption = [np.nanmean(grid.accuracy[grid.corruptions.index(c)]) for c in corruptions]
    return [
        report.clean_accuracy,
        report.noise_accuracy,
        *per_corruption,
        report.mean_corruption_accuracy,
    ]


def plot_confusion_matrix(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    class_names: Sequence[str],
    *,
    ax: Axes | None = None,
    normalize: bool = True,
) -> Axes:
    """Draw the confusion matrix of predictions, true classes as rows.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_images,)
        Integer class indices into ``class_names`` (as ``load_cifar`` gives them), or
        the class names themselves.
    class_names : sequence of str
    ax : matplotlib Axes, optional
        Where to draw; a new figure otherwise.
    normalize : bool, default=True
        Show each row as shares of its true class (its recall on the diagonal) rather
        than counts.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> from sklcifar.plots import plot_confusion_matrix
    >>> ax = plot_confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], ["cat", "dog", "frog"])
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['cat', 'dog', 'frog']
    """
    ax = _new_axes(width=7, height=6) if ax is None else ax
    y_true = np.asarray(y_true)
    labels = np.arange(len(class_names)) if y_true.dtype.kind in "iu" else list(class_names)
    matrix = confusion_matrix(
        y_true, y_pred, labels=labels, normalize="true" if normalize else None
    )
    annotate = len(class_names) <= _MAX_ANNOTATED_CLASSES
    ConfusionMatrixDisplay(matrix, display_labels=list(class_names)).plot(
        ax=ax,
        include_values=annotate,
        values_format=".2f" if normalize else "d",
        xticks_rotation="vertical",
        colorbar=True,
    )
    ax.set_title("Confusion matrix" + (" (rows: share of true class)" if normalize else ""))
    return ax


def plot_training_curves(history: Mapping[str, Sequence[float]], *, axes=None) -> np.ndarray:
    """Draw loss and accuracy per epoch, training against validation, in two panels.

    Parameters
    ----------
    history : mapping
        Per-epoch ``"loss"`` and ``"accuracy"`` and, optionally, ``"val_loss"`` and
        ``"val_accuracy"``: an ``ImageClassifier``'s ``history_``.
    axes : sequence of two matplotlib Axes, optional
        The loss and accuracy panels; a new figure otherwise.

    Returns
    -------
    axes : ndarray of two matplotlib Axes

    Examples
    --------
    >>> from sklcifar.plots import plot_training_curves
    >>> history = {"loss": [2.0, 1.5], "accuracy": [0.3, 0.5],
    ...            "val_loss": [1.9, 1.7], "val_accuracy": [0.35, 0.4]}
    >>> [ax.get_ylabel() for ax in plot_training_curves(history)]
    ['loss', 'accuracy']
    """
    missing = [key for key in ("loss", "accuracy") if key not in history]
    if missing:
        raise ValueError(
            f"history lacks {missing}; expected per-epoch 'loss' and 'accuracy' lists "
            f"(and optionally 'val_loss', 'val_accuracy'); got keys {sorted(history)}"
        )
    axes = _new_axes(2, width=10, height=4) if axes is None else np.asarray(axes)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if key in history:
                values = history[key]
                ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"Model {metric}")
        ax.legend()
    return axes


def plot_robustness(
    report: RobustnessReport, *, ax: Axes | None = None, by_severity: bool = False
) -> Axes:
    """Draw the accuracy under each corruption, against clean and pixel-noise accuracy.

    Parameters
    ----------
    report : RobustnessReport
    ax : matplotlib Axes, optional
        Where to draw; a new figure otherwise.
    by_severity : bool, default=False
        One bar per corruption with its accuracy averaged over the severities, or a
        group of bars per corruption, one per severity.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklcifar.plots import plot_robustness
    >>> from sklcifar.robustness import evaluate_robustness
    >>> X = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    >>> y = np.arange(8) % 2
    >>> model = DummyClassifier().fit(X, y)
    >>> report = evaluate_robustness(model, X, y, corruptions=["fog", "snow"])
    >>> [label.get_text() for label in plot_robustness(report).get_xticklabels()]
    ['fog', 'snow']
    """
    ax = _new_axes(width=10, height=5) if ax is None else ax
    grid = report.accuracy_grid()
    positions = np.arange(len(grid.corruptions))
    if by_severity:
        by_level = {f"severity {s}": grid.accuracy[:, j] for j, s in enumerate(grid.severities)}
        _side_by_side_bars(ax, positions, by_level)
    else:
        ax.bar(positions, np.nanmean(grid.accuracy, axis=1), 0.7, color="tab:gray")
    references = (
        (report.clean_accuracy, "clean", "tab:green", "-"),
        (report.noise_accuracy, f"pixel noise {report.noise_fraction * 100:g}%", "tab:red", "--"),
        (report.mean_corruption_accuracy, "mean corruption", "black", ":"),
    )
    for value, label, color, style in references:
        ax.axhline(value, color=color, linestyle=style, label=f"{label}: {value:.3f}")
    _label_accuracy_axes(
        ax,
        grid.corruptions,
        ylabel="accuracy" + ("" if by_severity else " (mean over severities)"),
        title=f"Accuracy under corruptions ({report.n_images} images)",
        legend_columns=2,
    )
    return ax


def plot_robustness_comparison(
    reports: Mapping[str, RobustnessReport], *, ax: Axes | None = None
) -> Axes:
    """Draw several models side by side: clean, pixel noise and each corruption.

    One group of bars per condition (clean, the seed's pixel noise, each corruption
    averaged over its severities, and the mean over all corruption cells), one bar per
    model, as the seed study's figures compare its models.

    Parameters
    ----------
    reports : mapping of str to RobustnessReport
        Reports by model name (legend label), in drawing order.
    ax : matplotlib Axes, optional
        Where to draw; a new figure otherwise.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklcifar.plots import plot_robustness_comparison
    >>> from sklcifar.robustness import evaluate_robustness
    >>> X = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    >>> y = np.arange(8) % 2
    >>> report = evaluate_robustness(DummyClassifier().fit(X, y), X, y, corruptions=["fog"])
    >>> ax = plot_robustness_comparison({"a": report, "b": report})
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['clean', 'pixel noise', 'fog', 'mean corruption']
    """
    if not reports:
        raise ValueError("give at least one report to compare")
    ax = _new_axes(width=12, height=5) if ax is None else ax
    corruptions = next(iter(reports.values())).accuracy_grid().corruptions
    labels = ["clean", "pixel noise", *corruptions, "mean corruption"]
    by_model = {name: _accuracies(report, corruptions) for name, report in reports.items()}
    _side_by_side_bars(ax, np.arange(len(labels)), by_model)
    _label_accuracy_axes(
        ax,
        labels,
        ylabel="accuracy (corruptions: mean over severities)",
        title="Robustness of the models side by side",
    )
    return ax


def save_figure(
    fig_or_ax, path: str | os.PathLike[str], *, dpi: int = 100, overwrite: bool = False
) -> Path:
    """Write the figure of a Figure, an Axes or an array of Axes to ``path`` as PNG.

    Written atomically; an existing file is replaced only with ``overwrite=True``.

    Examples
    --------
    >>> from sklcifar.plots import plot_training_curves, save_figure
    >>> axes = plot_training_curves({"loss": [1.0], "accuracy": [0.5]})
    >>> save_figure(axes, "curves.png")  # doctest: +SKIP
    PosixPath('curves.png')
    """
    first = np.ravel(fig_or_ax)[0] if isinstance(fig_or_ax, np.ndarray) else fig_or_ax
    figure = first if isinstance(first, Figure) else first.figure
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return path
