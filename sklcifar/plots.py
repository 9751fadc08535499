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
from .robustness import RobustnessReport, _listing, check_labels

__all__ = [
    "check_class_names",
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


def check_class_names(
    class_names: Sequence[str], classes: ArrayLike, *, name: str = "class_names"
) -> list[str]:
    """``class_names`` as a list of str, one name per class of ``classes``, in order.

    A list of another length would draw a matrix over other classes than the model's
    (zeros, or predictions dropped), so it is refused.

    Raises
    ------
    ValueError
        ``class_names`` is a single string, or differs from ``classes`` in length.

    Examples
    --------
    >>> from sklcifar.plots import check_class_names
    >>> check_class_names(["cat", "dog"], [3, 5])
    ['cat', 'dog']
    """
    if isinstance(class_names, str | bytes):
        raise ValueError(
            f"{name} must be a sequence of names, one per class; got the string {class_names!r}"
        )
    class_names, classes = [str(label) for label in class_names], np.asarray(classes)
    if len(class_names) != len(classes):
        raise ValueError(
            f"{name} holds {len(class_names)} names but there are {len(classes)} classes "
            f"({_listing(classes.tolist())}); expected one name per class, in the order of "
            "the classes"
        )
    return class_names


def plot_confusion_matrix(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    class_names: Sequence[str],
    *,
    classes: ArrayLike | None = None,
    ax: Axes | None = None,
    normalize: bool = True,
) -> Axes:
    """Draw the confusion matrix of predictions, true classes as rows.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_images,)
        Labels, each among ``classes``.
    class_names : sequence of str
        One name per class, in the order of ``classes``.
    classes : array-like of shape (n_classes,), optional
        The classes the labels name, e.g. the model's ``classes_``: the rows and columns
        of the matrix. By default the integers ``0 .. len(class_names) - 1`` (class
        indices, as ``load_cifar`` gives them) for integer labels, ``class_names``
        itself for string labels.
    ax : matplotlib Axes, optional
        Where to draw; a new figure otherwise.
    normalize : bool, default=True
        Show each row as shares of its true class (its recall on the diagonal) rather
        than counts.

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    ValueError
        ``class_names`` of another length than ``classes``, or a label outside
        ``classes`` (which the matrix would silently drop).

    Examples
    --------
    >>> from sklcifar.plots import plot_confusion_matrix
    >>> ax = plot_confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], ["cat", "dog", "frog"])
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['cat', 'dog', 'frog']
    >>> ax = plot_confusion_matrix([3, 5, 5], [3, 5, 3], ["cat", "dog"], classes=[3, 5])
    >>> ax.images[0].get_array().tolist()
    [[1.0, 0.0], [0.5, 0.5]]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if classes is None:
        # Integer labels index class_names (load_cifar's targets); others are the names.
        integers = y_true.dtype.kind in "iu"
        classes = np.arange(len(class_names)) if integers else np.asarray(class_names)
        owner = (
            "the indices of class_names (pass classes=model.classes_ for other labels)"
            if integers
            else "class_names"
        )
    else:
        owner = "classes"
    class_names = check_class_names(class_names, classes)
    check_labels(y_true, classes, name="y_true", owner=owner)
    check_labels(y_pred, classes, name="y_pred", owner=owner)
    matrix = confusion_matrix(
        y_true, y_pred, labels=np.asarray(classes), normalize="true" if normalize else None
    )
    ax = _new_axes(width=7, height=6) if ax is None else ax
    annotate = len(class_names) <= _MAX_ANNOTATED_CLASSES
    ConfusionMatrixDisplay(matrix, display_labels=class_names).plot(
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
