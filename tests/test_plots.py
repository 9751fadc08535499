"""Tests of sklcifar.plots: what each figure shows, and that it is written as PNG."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.dummy import DummyClassifier

from sklcifar.plots import (
    plot_confusion_matrix,
    plot_robustness,
    plot_training_curves,
    save_figure,
)
from sklcifar.robustness import evaluate_robustness

HISTORY = {
    "loss": [2.1, 1.8, 1.6],
    "accuracy": [0.2, 0.3, 0.4],
    "val_loss": [2.0, 1.9, 1.85],
    "val_accuracy": [0.25, 0.3, 0.32],
}


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


@pytest.fixture(scope="module")
def report():
    X = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    model = DummyClassifier(strategy="most_frequent").fit(X, y)
    return evaluate_robustness(model, X, y, corruptions=["fog", "snow", "contrast"])


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """The plots must not open pyplot figures (windows, or memory that is never freed)."""
    yield
    assert plt.get_fignums() == []


@pytest.mark.parametrize("labels", ["indices", "names"])
def test_confusion_matrix_normalised_by_true_class(labels, tmp_path):
    names = ["cat", "dog", "frog"]
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2])
    if labels == "names":
        y_true, y_pred = np.take(names, y_true), np.take(names, y_pred)
    ax = plot_confusion_matrix(y_true, y_pred, names)
    assert isinstance(ax, Axes)
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown, [[0.5, 0.5, 0], [0, 2 / 3, 1 / 3], [0, 0, 1]])
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert_png(save_figure(ax, tmp_path / "confusion.png"))


def test_confusion_matrix_counts_on_given_axes():
    ax = Figure().subplots()
    returned = plot_confusion_matrix([0, 1, 1], [1, 1, 1], ["a", "b"], ax=ax, normalize=False)
    assert returned is ax
    np.testing.assert_array_equal(ax.images[0].get_array(), [[0, 1], [0, 2]])
    assert sorted(text.get_text() for text in ax.texts) == ["0", "0", "1", "2"]


def test_confusion_matrix_is_over_the_given_classes():
    # Integer labels that are not 0..n-1 (a model's classes_) map to the names in order.
    ax = plot_confusion_matrix(
        [1, 2, 1, 2, 2], [1, 2, 2, 2, 1], ["1", "2"], classes=[1, 2], normalize=False
    )
    np.testing.assert_array_equal(ax.images[0].get_array(), [[1, 1], [1, 2]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2"]


@pytest.mark.parametrize(
    ("y_true", "y_pred", "names", "classes", "message"),
    [
        # Without classes, integer labels index the names: label 2 has none.
        (
            [1, 2, 1],
            [1, 2, 2],
            ["1", "2"],
            None,
            "y_true holds labels that are not among the indices of class_names (pass "
            "classes=model.classes_ for other labels): 2 (int)",
        ),
        (
            np.arange(10),
            np.arange(10),
            ["a", "b"],
            np.arange(10),
            "class_names holds 2 names but there are 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, "
            "9); expected one name per class",
        ),
        ([0, 1], [0, 5], ["a", "b"], [0, 1], "y_pred holds labels that are not among classes: 5"),
        (["0", "1"], [0, 1], ["a", "b"], [0, 1], "y_true holds labels that are not among"),
        (["cat", "cow"], ["cat", "cat"], ["cat", "dog"], None, "among class_names: 'cow'"),
        ([0, 1], [0, 1], "ab", None, "class_names must be a sequence of names"),
    ],
)
def test_confusion_matrix_refuses_labels_or_names_of_other_classes(
    y_true, y_pred, names, classes, message
):
    with pytest.raises(ValueError, match=re.escape(message)):
        plot_confusion_matrix(y_true, y_pred, names, classes=classes)


def test_confusion_matrix_of_many_classes_has_no_cell_values():
    y = np.arange(100)
    ax = plot_confusion_matrix(y, y, [f"c{i}" for i in range(100)])
    assert ax.images[0].get_array().shape == (100, 100) and not ax.texts


def test_training_curves_show_training_and_validation(tmp_path):
    axes = plot_training_curves(HISTORY)
    assert axes.shape == (2,) and all(isinstance(ax, Axes) for ax in axes)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        assert ax.get_ylabel() == metric
        train, validation = ax.get_lines()
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(train.get_ydata(), HISTORY[metric])
        np.testing.assert_array_equal(validation.get_ydata(), HISTORY[f"val_{metric}"])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]
    assert_png(save_figure(axes, tmp_path / "curves.png"))


def test_training_curves_without_validation_on_given_axes():
    axes = Figure().subplots(2, 1)
    returned = plot_training_curves({"loss": [1.0, 0.9], "accuracy": [0.5, 0.6]}, axes=axes)
    assert list(returned) == list(axes)
    assert [len(ax.get_lines()) for ax in axes] == [1, 1]


def test_training_curves_need_loss_and_accuracy():
    with pytest.raises(ValueError, match=r"history lacks \['accuracy'\]"):
        plot_training_curves({"loss": [1.0]})


def test_robustness_bars_average_severities(report, tmp_path):
    ax = plot_robustness(report)
    grid = report.accuracy_grid()
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_allclose(heights, grid.accuracy.mean(axis=1))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fog", "snow", "contrast"]
    reference = [line.get_ydata()[0] for line in ax.get_lines()]
    expected = [report.clean_accuracy, report.noise_accuracy, report.mean_corruption_accuracy]
    assert reference == expected
    assert_png(save_figure(ax, tmp_path / "robustness.png"))


def test_robustness_bars_grouped_by_severity_on_given_axes(report):
    ax = Figure().subplots()
    assert plot_robustness(report, ax=ax, by_severity=True) is ax
    heights = [patch.get_height() for patch in ax.patches]
    # One bar container per severity, each with one bar per corruption.
    np.testing.assert_allclose(heights, report.accuracy_grid().accuracy.T.ravel())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[3:] == [f"severity {s}" for s in range(1, 6)]


def test_save_figure_takes_a_figure(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    assert_png(save_figure(figure, tmp_path / "figure.png"))
