"""How well a fitted image classifier holds up under noise and common corruptions.

``evaluate_robustness(model, X_test, y_test)`` scores ``model`` on the clean images, on
the seed study's pixel noise (3% of the pixels replaced by random values) and on each of
the 15 CIFAR-C corruptions at severities 1 to 5, and returns a tidy `RobustnessReport`:
one row per perturbation and severity, with the accuracy and its drop from the clean
accuracy, plus the mean over the corruption cells.

Each perturbation acts in the space where it is defined. The CIFAR-C corruptions act on
the raw images ``X`` (RGB uint8 for CIFAR, as CIFAR-C corrupts them), so a Pipeline's
``Grayscale`` step converts the corrupted colour images, as it would real ones. The seed
study's pixel noise replaced pixels of the grey images its classifier saw: it acts on
the images after a Pipeline's preprocessing steps, right before the final estimator
(`classifier_input`).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from numbers import Integral, Real
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import accuracy_score
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from tqdm.auto import tqdm

from .files import atomic_write
from .perturbations import CORRUPTIONS, SEED_NOISE_FRACTION, corrupt, pixel_noise

__all__ = [
    "PERTURBATIONS",
    "SEVERITIES",
    "AccuracyGrid",
    "RobustnessReport",
    "check_choices",
    "check_labels",
    "classifier_input",
    "evaluate_robustness",
    "fingerprint_test_set",
    "perturb",
]

#: CIFAR-C severity levels.
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
#: Names `perturb` accepts: no perturbation, the seed study's noise, the CIFAR-C corruptions.
PERTURBATIONS: tuple[str, ...] = ("clean", "pixel_noise", *CORRUPTIONS)
#: Name of the report row that averages all corruption cells.
MEAN_CORRUPTION = "mean_corruption"

# Images perturbed per call: the corruptions' float working arrays of 1,000 CIFAR images
# stay in cache, and the 15 corruptions run about 1.6x faster than on 10,000 at once.
_CHUNK_SIZE = 1000
# Cells are predicted together until a call holds this many images: each Keras predict
# call costs a few tenths of a second besides the images, which for a 200-image test set
# would be most of the report's time.
_PREDICT_IMAGES = 10_000
# Groups of perturbed test sets computed ahead of the model's predictions.
_PREFETCH = 2


# ---------------------------------------------------------------------------- perturbing
def _check_perturbation(name: str, severity: int) -> None:
    if name not in PERTURBATIONS:
        raise ValueError(
            f"unknown perturbation {name!r}; expected one of: {', '.join(PERTURBATIONS)}"
        )
    if name in CORRUPTIONS:
        if isinstance(severity, bool) or not isinstance(severity, Integral):
            raise ValueError(f"severity of {name} must be an integer 1..5; got {severity!r}")
        if severity not in SEVERITIES:
            raise ValueError(f"severity of {name} must be 1..5; got {severity!r}")
    elif severity != 0:
        raise ValueError(
            f"{name} has no severity levels (pass severity=0, its report value); got {severity!r}"
        )


def _listing(values: Sequence, limit: int = 20) -> str:
    """``values`` comma-separated as their reprs, the first ``limit`` of a longer list."""
    shown = ", ".join(map(repr, values[:limit]))
    return shown if len(values) <= limit else f"{shown}, ... ({len(values)} in all)"


def check_choices(values: Iterable, choices: Sequence, *, name: str) -> tuple:
    """``values`` as a tuple of distinct members of ``choices``, or a clear error.

    Serves `evaluate_robustness` and the command line's lists (``--corruptions``,
    ``--severities``). A member must be of its choices' kind: ``2.0`` and ``True`` equal
    the severity 2 and 1 but are refused, as is a bare string (which would iterate its
    characters) or number. Repeats are refused: each would weigh again in a mean.

    Parameters
    ----------
    values : iterable
        The caller's selection, e.g. ``["fog", "snow"]``.
    choices : sequence of str or of int
        The valid values, all of one kind.
    name : str
        How the messages call ``values``.

    Returns
    -------
    tuple

    Raises
    ------
    TypeError
        ``values`` is a string or not iterable.
    ValueError
        ``values`` is empty, or holds a value outside ``choices`` or one twice.

    Examples
    --------
    >>> from sklcifar.robustness import check_choices
    >>> check_choices(["fog", "snow"], ("fog", "snow", "frost"), name="corruptions")
    ('fog', 'snow')
    >>> check_choices(["fog", "fog"], ("fog", "snow"), name="corruptions")
    Traceback (most recent call last):
    ...
    ValueError: corruptions lists 'fog' more than once; give each value once
    """
    expected = f"expected values from: {', '.join(map(str, choices))}"
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(
            f"{name} must be a sequence such as a list, not {type(values).__name__} "
            f"{values!r} (for one value pass [{values!r}]); {expected}"
        )
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} is empty; give at least one; {expected}")
    # A member must be of the choices' kind: 2.0 == 2 and True == 1, but are not severities.
    kind = str if isinstance(choices[0], str) else Integral
    for value in values:
        if isinstance(value, bool) or not isinstance(value, kind) or value not in choices:
            raise ValueError(f"{name} holds {value!r}, which is not a valid value; {expected}")
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{name} lists {value!r} more than once; give each value once")
        seen.add(value)
    return values


def _label_key(value: Any) -> tuple[str, Any]:
    """A label's kind and value: 1.0 == 1 == True, but a float or a bool label does not
    name an integer class."""
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, Integral):
        return ("int", int(value))
    if isinstance(value, Real):
        return ("float", float(value))
    return (type(value).__name__, value)


def check_labels(
    y: ArrayLike, classes: ArrayLike, *, name: str = "y", owner: str = "the model's classes"
) -> np.ndarray:
    """Refuse labels that are not among a fitted classifier's ``classes_``.

    Every accuracy of a label outside the classes would be 0 and say nothing about the
    model; sklearn's metrics fail late and vaguely on them (or on strings against an
    integer model). Labels must equal a class in value and kind: ``1.0`` or ``"1"`` is
    not the class ``1``.

    Parameters
    ----------
    y : array-like of shape (n_images,)
        The labels.
    classes : array-like of shape (n_classes,)
        The classes, e.g. a fitted classifier's ``classes_``.
    name : str, default="y"
        How the message calls the labels (e.g. naming their file).
    owner : str, default="the model's classes"
        How the message calls the classes.

    Returns
    -------
    ndarray
        ``y`` as an array.

    Raises
    ------
    ValueError
        ``y`` is not 1-D or holds labels outside ``classes``; the message lists them and
        the classes.

    Examples
    --------
    >>> from sklcifar.robustness import check_labels
    >>> check_labels([10, 0, 11], [0, 1, 2])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: y holds labels that are not among the model's classes: 10, 11 (int); ...
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels; got shape {y.shape}")
    classes = np.asarray(classes).tolist()
    known = {_label_key(label) for label in classes}
    # dict.fromkeys: the distinct labels, even of mixed types that np.unique cannot sort.
    labels = dict.fromkeys(y.tolist())
    unknown = [label for label in labels if _label_key(label) not in known]
    if unknown:
        kinds = {_label_key(label)[0] for label in unknown}
        class_kinds = {_label_key(label)[0] for label in classes}
        raise ValueError(
            f"{name} holds labels that are not among {owner}: {_listing(unknown)} "
            f"({', '.join(sorted(kinds))}); expected labels from {_listing(classes)} "
            f"({', '.join(sorted(class_kinds))})"
        )
    return y


def _check_fraction(noise_fraction: float) -> None:
    valid = isinstance(noise_fraction, Real) and not isinstance(noise_fraction, bool)
    if not (valid and 0 <= noise_fraction <= 1):
        raise ValueError(
            f"noise_fraction must be a share of the pixels in [0, 1]; got {noise_fraction!r}"
        )


def perturb(
    images: ArrayLike,
    name: str,
    severity: int = 0,
    *,
    noise_fraction: float = SEED_NOISE_FRACTION,
    random_state: int | np.random.Generator | None = 0,
    progress: bool = False,
) -> np.ndarray:
    """Apply one perturbation of a robustness report to a batch of images.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width[, channels])
        uint8, or float in [0, 1]; 1 or 3 channels.
    name : str
        One of `PERTURBATIONS`: ``"clean"`` (a copy), ``"pixel_noise"``
        (``sklcifar.perturbations.pixel_noise`` with ``noise_fraction``) or a CIFAR-C
        corruption from ``sklcifar.perturbations.CORRUPTIONS``.
    severity : int, default=0
        1 to 5 for a CIFAR-C corruption; 0 for ``"clean"`` and ``"pixel_noise"``, which
        have no levels.
    noise_fraction : float, default=SEED_NOISE_FRACTION (0.03)
        Share of each image's pixels that ``"pixel_noise"`` replaces, in [0, 1]. The
        noise acts on ``images`` as given: pass the images a classifier sees (see
        `classifier_input`).
    random_state : int, numpy.random.Generator or None, default=0
        Seeds the perturbation. The images are perturbed in chunks of 1,000 that draw in
        turn from ``numpy.random.default_rng(random_state)``, so up to 1,000 images the
        result equals the ``sklcifar.perturbations`` function called with
        ``random_state``.
    progress : bool, default=False
        Show a tqdm progress bar over the chunks.

    Returns
    -------
    ndarray
        A new array of the shape and dtype of ``images``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklcifar.robustness import perturb
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> perturb(images, "fog", 3).shape
    (4, 32, 32, 3)
    >>> int((perturb(images, "pixel_noise") != images).any(axis=-1).sum(axis=(1, 2))[0])
    30
    """
    _check_perturbation(name, severity)
    _check_fraction(noise_fraction)
    images = np.asarray(images)
    if name == "clean":
        return images.copy()
    if name == "pixel_noise":
        apply = partial(pixel_noise, fraction=noise_fraction)
    else:
        apply = partial(corrupt, name=name, severity=severity)
    rng = np.random.default_rng(random_state)
    out = np.empty_like(images)
    starts = range(0, len(images), _CHUNK_SIZE)
    for start in tqdm(starts, desc=name, unit="chunk", disable=not progress, leave=False):
        part = slice(start, start + _CHUNK_SIZE)
        out[part] = apply(images[part], random_state=rng)
    return out


def classifier_input(estimator, X: ArrayLike) -> tuple[Any, np.ndarray]:
    """``(final estimator, X as it reaches it)``: X through a Pipeline's preprocessing.

    For a Pipeline (nested ones too) ``X`` goes through the ``transform`` of every step
    but the last; any other estimator gets ``X`` as is. The seed study's pixel noise acts
    on these images, so that its noisy pixels are uniform over the range of the grey
    images the classifier sees, not means of three uniform RGB draws.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklcifar.transformers import Grayscale
    >>> X = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    >>> pipe = make_pipeline(Grayscale(), DummyClassifier()).fit(X, [0, 1, 0, 1])
    >>> final, seen = classifier_input(pipe, X)
    >>> type(final).__name__, seen.shape
    ('DummyClassifier', (4, 8, 8, 1))
    """
    X = np.asarray(X)
    while isinstance(estimator, Pipeline):
        if len(estimator) > 1:
            X = np.asarray(estimator[:-1].transform(X))
        estimator = estimator[-1]
    return estimator, X


def fingerprint_test_set(X: ArrayLike, y: ArrayLike) -> str:
    """A short hash of the test images and labels, to tell reports on other test sets."""
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(X), np.asarray(y).astype(str)):
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


# -------------------------------------------------------------------------------- report
class AccuracyGrid(NamedTuple):
    """Accuracy per corruption (rows) and severity (columns) of a `RobustnessReport`."""

    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    accuracy: np.ndarray


@dataclass(frozen=True)
class RobustnessReport:
    """Accuracies of a classifier under perturbations: a tidy table, one row per cell.

    Each row is a dict with ``perturbation``, ``severity``, ``accuracy`` and ``drop``
    (clean accuracy minus ``accuracy``). The rows are, in order: ``"clean"``,
    ``"pixel_noise"``, each corruption at each severity, and ``"mean_corruption"``, the
    mean over the corruption cells. ``severity`` is 0 on the rows that are not one
    CIFAR-C level (clean, pixel_noise and mean_corruption).

    Parameters
    ----------
    rows : tuple of dict
    n_images : int
        Test images each accuracy is measured on.
    noise_fraction : float
        Share of the pixels the ``pixel_noise`` row replaced.
    random_state : int or None
        Seed of the perturbations (None when they were not seeded with an int).
    test_set : str, default=""
        `fingerprint_test_set` of the test images and labels ("" if unknown): reports
        are compared (`sklcifar.corruption_error`) only on the same test set.

    Attributes
    ----------
    clean_accuracy, noise_accuracy, mean_corruption_accuracy, mean_corruption_drop : float

    See Also
    --------
    evaluate_robustness : Builds the report.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklcifar.robustness import evaluate_robustness
    >>> X = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    >>> y = np.arange(20) % 4
    >>> model = DummyClassifier(strategy="most_frequent").fit(X, y)
    >>> report = evaluate_robustness(model, X, y, corruptions=["fog"], severities=[1, 5])
    >>> [(row["perturbation"], row["severity"]) for row in report.rows]
    [('clean', 0), ('pixel_noise', 0), ('fog', 1), ('fog', 5), ('mean_corruption', 0)]
    >>> report.clean_accuracy, report.mean_corruption_drop
    (0.25, 0.0)
    """

    rows: tuple[dict[str, Any], ...]
    n_images: int
    noise_fraction: float
    random_state: int | None
    test_set: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessReport:
        """The report `to_dict` gave (e.g. read back from ``robustness.json``)."""
        try:
            report = cls(
                rows=tuple(dict(row) for row in data["rows"]),
                n_images=int(data["n_images"]),
                noise_fraction=float(data["noise_fraction"]),
                random_state=data["random_state"],
                test_set=str(data.get("test_set", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                "not a robustness report: expected the keys rows, n_images, "
                f"noise_fraction and random_state of RobustnessReport.to_dict ({exc!r})"
            ) from exc
        _check_rows(report.rows)
        return report

    def row(self, perturbation: str, severity: int = 0) -> dict[str, Any]:
        """The row of one perturbation and severity."""
        for row in self.rows:
            if row["perturbation"] == perturbation and row["severity"] == severity:
                return row
        raise KeyError(f"no row for perturbation {perturbation!r} at severity {severity}")

    @property
    def clean_accuracy(self) -> float:
        return self.row("clean")["accuracy"]

    @property
    def noise_accuracy(self) -> float:
        return self.row("pixel_noise")["accuracy"]

    @property
    def mean_corruption_accuracy(self) -> float:
        return self.row(MEAN_CORRUPTION)["accuracy"]

    @property
    def mean_corruption_drop(self) -> float:
        return self.row(MEAN_CORRUPTION)["drop"]

    def accuracy_grid(self) -> AccuracyGrid:
        """The corruption cells as a (corruption, severity) matrix, for plots."""
        cells = [row for row in self.rows if row["perturbation"] in CORRUPTIONS]
        corruptions = tuple(dict.fromkeys(row["perturbation"] for row in cells))
        severities = tuple(sorted({row["severity"] for row in cells}))
        accuracy = np.full((len(corruptions), len(severities)), np.nan)
        for row in cells:
            i = corruptions.index(row["perturbation"])
            accuracy[i, severities.index(row["severity"])] = row["accuracy"]
        return AccuracyGrid(corruptions, severities, accuracy)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the settings, the headline accuracies and the rows."""
        return {
            "n_images": self.n_images,
            "noise_fraction": self.noise_fraction,
            "random_state": self.random_state,
            "test_set": self.test_set,
            "clean_accuracy": self.clean_accuracy,
            "noise_accuracy": self.noise_accuracy,
            "mean_corruption_accuracy": self.mean_corruption_accuracy,
            "mean_corruption_drop": self.mean_corruption_drop,
            "rows": [dict(row) for row in self.rows],
        }

    def to_markdown(self, digits: int = 4) -> str:
        """The rows as a Markdown table, accuracies rounded to ``digits`` decimals."""
        lines = [
            "| perturbation | severity | accuracy | drop |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {row['perturbation']} | {row['severity']} | {row['accuracy']:.{digits}f} | "
            f"{row['drop']:.{digits}f} |"
            for row in self.rows
        ]
        return "\n".join(lines) + "\n"

    def to_csv(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the rows to ``path`` as CSV with a header line; full float precision.

        Written atomically; an existing file is replaced only with ``overwrite=True``.
        """
        path = Path(path)
        with atomic_write(path, "w", overwrite=overwrite, newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(_COLUMNS))
            writer.writeheader()
            writer.writerows(self.rows)
        return path


_COLUMNS = ("perturbation", "severity", "accuracy", "drop")


def _check_rows(rows: tuple[dict[str, Any], ...]) -> None:
    """Refuse rows no report holds, which would fail later as a bare KeyError or count a
    cell twice: a missing column, an unknown or repeated cell, no clean, pixel_noise,
    mean_corruption or corruption row."""
    cells = []
    for row in rows:
        missing = [key for key in _COLUMNS if key not in row]
        if missing:
            raise ValueError(
                f"not a robustness report: a row lacks {missing}; expected the keys "
                f"{', '.join(_COLUMNS)} in every row"
            )
        cells.append((row["perturbation"], row["severity"]))
    for i, cell in enumerate(cells):
        if cell[0] not in (*PERTURBATIONS, MEAN_CORRUPTION):
            raise ValueError(
                f"not a robustness report: unknown perturbation {cell[0]!r}; expected rows "
                f"of {', '.join(PERTURBATIONS)} and {MEAN_CORRUPTION}"
            )
        if cell in cells[:i]:  # a list: JSON values may be unhashable
            raise ValueError(f"not a robustness report: the row {cell} appears twice")
    needed = [(name, 0) for name in ("clean", "pixel_noise", MEAN_CORRUPTION)]
    absent = [cell for cell in needed if cell not in cells]
    if absent or not any(name in CORRUPTIONS for name, _ in cells):
        raise ValueError(
            "not a robustness report: expected a clean, a pixel_noise and a "
            f"{MEAN_CORRUPTION} row (severity 0) and at least one corruption row; got the "
            f"rows {_listing(cells) or '(none)'}"
        )


def _rows(accuracies: list[tuple[str, int, float]]) -> tuple[dict[str, Any], ...]:
    """Report rows, the mean over the corruption cells appended, with drops from clean."""
    clean = next(acc for name, _, acc in accuracies if name == "clean")
    cells = [acc for name, _, acc in accuracies if name in CORRUPTIONS]
    accuracies = [*accuracies, (MEAN_CORRUPTION, 0, float(np.mean(cells)))]
    return tuple(
        dict(zip(_COLUMNS, (name, severity, acc, clean - acc), strict=True))
        for name, severity, acc in accuracies
    )


# ---------------------------------------------------------------------------- evaluating
def _prefetched(
    pool: Executor, func: Callable[[Any], Any], items: Iterable, ahead: int
) -> Iterator:
    """``func(item)`` for each item in order, computed in ``pool`` up to ``ahead`` early."""
    items = iter(items)
    pending = deque(pool.submit(func, item) for item in itertools.islice(items, ahead))
    while pending:
        done = pending.popleft()
        # Queue the next item before handing this result over, so the pool keeps working
        # while the caller uses it.
        pending.extend(pool.submit(func, item) for item in itertools.islice(items, 1))
        yield done.result()


def evaluate_robustness(
    estimator,
    X: ArrayLike,
    y: ArrayLike,
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    noise_fraction: float = SEED_NOISE_FRACTION,
    random_state: int | np.random.Generator | None = 0,
    progress: bool = False,
    corrupted_images: Callable[[str, int], ArrayLike] | None = None,
) -> RobustnessReport:
    """Score a fitted classifier on clean, noisy and corrupted copies of a test set.

    Each corrupted copy of ``X`` is built with `perturb` in a background thread while
    the estimator predicts the previous ones; copies are predicted together, in calls
    of at least 10,000 images (or one copy of a larger ``X``). The pixel-noise row
    perturbs the images the final estimator sees (`classifier_input`: after a
    Pipeline's preprocessing, e.g. the grey images after ``Grayscale``).

    Parameters
    ----------
    estimator : fitted classifier
        Anything with ``predict`` taking the raw images ``X``, such as a Pipeline from
        ``sklcifar.pipelines.make_pipeline``.
    X : array-like of shape (n_images, height, width[, channels])
        Test images, uint8 or float in [0, 1], as the estimator takes them (RGB for
        CIFAR: the corruptions act on colour images as in CIFAR-C).
    y : array-like of shape (n_images,)
        Their labels.
    corruptions : sequence of str, default=CORRUPTIONS
        CIFAR-C corruptions to apply (at least one, each once).
    severities : sequence of int, default=(1, 2, 3, 4, 5)
        Their severity levels (at least one, each once).
    noise_fraction : float, default=SEED_NOISE_FRACTION (0.03)
        Share of the pixels replaced in the ``pixel_noise`` row (the seed study's 3%).
    random_state : int, numpy.random.Generator or None, default=0
        An int seeds every cell alike, so the images of a row are
        ``perturb(X, perturbation, severity, noise_fraction=..., random_state=random_state)``.
        A Generator is drawn from cell after cell; None gives fresh draws.
    progress : bool, default=False
        Show a tqdm progress bar over the cells.
    corrupted_images : callable, optional
        ``corrupted_images(corruption, severity)`` gives the corrupted copy of ``X``
        (same shape, same order), e.g. read from the official CIFAR-10-C files with
        `sklcifar.datasets.load_cifar_c`; by default the copies are computed with
        `perturb`.

    Returns
    -------
    RobustnessReport

    Raises
    ------
    TypeError
        For ``corruptions`` or ``severities`` given as one name or number rather than a
        sequence.
    ValueError
        For a corruption outside `CORRUPTIONS`, a severity outside 1..5, either given
        twice, a noise fraction outside [0, 1], empty or mismatched ``X`` and ``y``, labels
        ``y`` not among the estimator's ``classes_``; before any prediction is made. For
        pixel noise on images whose range cannot be told (standardised ones) and for
        ``corrupted_images`` of another shape than ``X``.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    Examples
    --------
    >>> from sklcifar.robustness import evaluate_robustness
    >>> report = evaluate_robustness(model, X_test, y_test, progress=True)  # doctest: +SKIP
    >>> print(report.to_markdown())  # doctest: +SKIP
    | perturbation | severity | accuracy | drop |
    |---|---:|---:|---:|
    | clean | 0 | 0.6120 | 0.0000 |
    ...
    """
    check_is_fitted(estimator)
    X, y = np.asarray(X), np.asarray(y)
    check_consistent_length(X, y)
    if len(y) == 0:
        raise ValueError("X and y are empty; robustness needs at least one test image")
    if hasattr(estimator, "classes_"):
        y = check_labels(y, estimator.classes_)
    corruptions = check_choices(corruptions, CORRUPTIONS, name="corruptions")
    severities = check_choices(severities, SEVERITIES, name="severities")
    _check_fraction(noise_fraction)
    cells = [("clean", 0)]
    cells += [(name, severity) for name in corruptions for severity in severities]
    final_estimator, seen = classifier_input(estimator, X)
    noisy = perturb(seen, "pixel_noise", noise_fraction=noise_fraction, random_state=random_state)
    noise_accuracy = float(accuracy_score(y, final_estimator.predict(noisy)))

    def copy_of_X(name: str, severity: int) -> np.ndarray:
        if corrupted_images is None or name == "clean":
            return perturb(X, name, severity, random_state=random_state)
        images = np.asarray(corrupted_images(name, severity))
        if images.shape != X.shape:
            raise ValueError(
                f"corrupted_images({name!r}, {severity}) gave images of shape "
                f"{images.shape}; expected the shape of X, {X.shape}"
            )
        return images

    def perturbed(group: list[tuple[str, int]]) -> np.ndarray:
        return np.concatenate([copy_of_X(*cell) for cell in group])

    size = max(1, _PREDICT_IMAGES // len(y))
    groups = [cells[start : start + size] for start in range(0, len(cells), size)]
    accuracies = []
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sklcifar-perturb")
    try:
        images = _prefetched(pool, perturbed, groups, _PREFETCH)
        with tqdm(total=len(cells), desc="robustness", unit="cell", disable=not progress) as bar:
            for group, X_group in zip(groups, images, strict=True):
                bar.set_postfix_str("{} {}".format(*group[-1]))
                predictions = np.split(np.asarray(estimator.predict(X_group)), len(group))
                for (name, severity), y_pred in zip(group, predictions, strict=True):
                    accuracies.append((name, severity, float(accuracy_score(y, y_pred))))
                bar.update(len(group))
    finally:
        # On an error, drop the queued perturbations instead of computing them.
        pool.shutdown(cancel_futures=True)
    accuracies.insert(1, ("pixel_noise", 0, noise_accuracy))
    return RobustnessReport(
        rows=_rows(accuracies),
        n_images=len(y),
        noise_fraction=float(noise_fraction),
        random_state=int(random_state) if isinstance(random_state, Integral) else None,
        test_set=fingerprint_test_set(X, y),
    )
