"""The ``sklcifar`` command: train, perturb, score, report and search.

Each subcommand is one function below, taking the parsed arguments and returning the
exit status; its docstring is its help. Usage errors and bad input (unknown names,
out-of-range values, missing, corrupt or foreign files, images of the wrong shape) end
with one line on stderr and exit status 2; anything else is a bug and shows its
traceback.

Examples
--------
::

    sklcifar train --data cifar-10-python.tar.gz --subset 5000 --epochs 5 --out m.sklcifar
    sklcifar perturb --data cifar-10-python.tar.gz --corruption fog --severity 3 --out fog3.npz
    sklcifar score m.sklcifar --data fog3.npz --json
    sklcifar report m.sklcifar --data cifar-10-python.tar.gz --out report/

Model files: .sklcifar (safe: JSON and a Keras network, loaded without running code from
the file) or .joblib (a pickle: loading one runs any code it names, so only load joblib
files you trust). Outputs are written atomically and never replace an existing file
without --force.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, log_loss

from .checkpoints import checkpoint_interval, read_checkpoint_epoch
from .corruption_error import compare_reports, comparison_markdown
from .datasets import load_cifar, load_cifar_c, stratified_subset
from .files import atomic_write, check_output_path
from .persistence import final_classifier, load_model, model_format, save_model
from .perturbations import CORRUPTIONS, SEED_NOISE_FRACTION
from .pipelines import CLASSIFIERS, DEFAULT_CLASSIFIER, make_pipeline
from .plots import (
    check_class_names,
    plot_confusion_matrix,
    plot_robustness,
    plot_robustness_comparison,
    plot_training_curves,
    save_figure,
)
from .robustness import (
    PERTURBATIONS,
    SEVERITIES,
    RobustnessReport,
    check_choices,
    check_labels,
    classifier_input,
    evaluate_robustness,
    perturb,
)
from .transformers import Grayscale

__all__ = ["main"]

PROG = "sklcifar"
# Exit status of usage errors and bad input, as argparse uses for usage errors.
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input; `main` prints the message and exits with status 2."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        # "--epoch 3" must not pass for "--epochs 3": no abbreviated options, here and in
        # every subcommand's parser (add_parser builds them with this class).
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        # argparse prints the whole usage and calls sys.exit; report one line instead,
        # and let main() return the status so that it can be called in-process.
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _interactive() -> bool:
    """Show progress bars only to a person watching a terminal, not in logs."""
    return sys.stderr.isatty()


# ------------------------------------------------------------------- argument types
def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1]; got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def _zero_or(parse: Callable[[str], object], zeros: tuple[str, ...], what: str) -> Callable:
    """An argument type: one of ``zeros`` for 0, else what ``parse`` accepts."""

    def parse_or_zero(text: str):
        try:
            return 0 if text.strip() in zeros else parse(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"must be 0 or {what}; got {text!r}") from None

    return parse_or_zero


# Seeds (--random-state, the search's --seed) and counts that may be 0: argparse names
# the flag in its error, which the library's own seed checks cannot.
_non_negative_int = _zero_or(_positive_int, ("0",), "a positive integer")


def _checkpoint_every(text: str) -> int | str:
    """``--checkpoint-every``: a number of epochs or a duration (``10min``)."""
    value = int(text) if text.strip().isdigit() else text
    try:
        checkpoint_interval(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("checkpoint_every ", "")) from None
    return value


def _comma_list(choices: Sequence, convert: Callable = str) -> Callable[[str], tuple]:
    """Type parsing ``"a,b,c"`` into a tuple of ``convert``-ed members of ``choices``."""

    def parse(text: str) -> tuple:
        try:
            values = tuple(convert(part.strip()) for part in text.split(","))
        except ValueError:
            values = ()
        if not values or not set(values) <= set(choices):
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list from {', '.join(map(str, choices))}; got {text!r}"
            )
        try:  # the library's rules: each value once
            return check_choices(values, choices, name=repr(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE a Python literal, or else the bare text as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        # So that `--param optimizer=adam` works without shell-quoted Python quotes.
        return key, value


# --------------------------------------------------------------------- shared steps
def _perturbation(args: argparse.Namespace) -> tuple[str, int, float]:
    """(name, severity, noise fraction) of --corruption, --severity, --noise-fraction."""
    name, severity, fraction = args.corruption, args.severity, args.noise_fraction
    if name in CORRUPTIONS and severity is None:
        raise UsageError(f"--corruption {name} needs --severity 1..5")
    if name not in CORRUPTIONS and severity is not None:
        raise UsageError(f"--severity applies to the CIFAR-C corruptions, not to {name}")
    if name != "pixel_noise" and fraction is not None:
        raise UsageError(f"--noise-fraction applies to --corruption pixel_noise, not to {name}")
    return name, severity or 0, SEED_NOISE_FRACTION if fraction is None else fraction


def _is_cifar_c(path: Path) -> bool:
    """An official CIFAR-10-C / CIFAR-100-C folder (``<corruption>.npy``, ``labels.npy``)."""
    return path.is_dir() and (path / "labels.npy").is_file()


def _read_data(path: Path, label_mode: str) -> tuple[np.ndarray, np.ndarray, list | None]:
    """(images, labels, class names or None) of an .npz from `perturb` (a zip file, by
    any name) or an archive's test split."""
    if path.suffix != ".npz" and not (path.is_file() and zipfile.is_zipfile(path)):
        test = load_cifar(path, split="test", label_mode=label_mode)
        return test.images, test.target, test.target_names
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):  # numpy would read it as a pickle and advise allowing that
        raise ValueError(
            f"{path} is not an .npz file (not a zip archive); expected the images and labels "
            f"that `{PROG} perturb` writes, or a CIFAR archive or folder"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz file: {exc}") from exc
    # numpy hands back a member without the .npy header as raw bytes.
    raw = sorted(key for key, value in arrays.items() if not isinstance(value, np.ndarray))
    if raw:
        raise ValueError(f"{path} is not a readable .npz file: {raw} are not numpy arrays")
    missing = {"images", "labels"} - set(arrays)
    if missing:
        raise ValueError(
            f"{path} lacks {sorted(missing)}; expected the arrays 'images', 'labels' and "
            f"optionally 'target_names' (as `{PROG} perturb` writes); got {sorted(arrays)}"
        )
    images, labels = arrays["images"], arrays["labels"]
    rgb_or_gray = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3))
    if not rgb_or_gray:
        raise ValueError(
            f"{path}: 'images' has shape {images.shape}; expected (n_images, height, width) "
            "or (n_images, height, width, channels) with 1 or 3 channels"
        )
    if labels.shape != images.shape[:1]:
        raise ValueError(
            f"{path}: 'labels' has shape {labels.shape}; expected one label per image, "
            f"shape ({len(images)},)"
        )
    names = arrays.get("target_names")
    return images, labels, None if names is None else names.tolist()


def _perturbed_data(args: argparse.Namespace, model=None) -> tuple:
    """(name, severity, images, labels, class names or None, estimator to score with):
    --data read and perturbed as --corruption, --severity, --noise-fraction and
    --random-state say, the images checked against ``model``'s image size first.

    A CIFAR-C folder gives its stored corruption images. The seed's pixel noise acts on
    the grey images a classifier sees: after ``model``'s preprocessing (then the images
    are scored by its final estimator), or, without a model, on ``Grayscale`` images.
    """
    name, severity, fraction = _perturbation(args)
    if _is_cifar_c(args.data):
        if name not in CORRUPTIONS:
            raise UsageError(
                f"{args.data} is a CIFAR-C folder: give --corruption NAME --severity K of "
                f"one of its corruptions, not {name}"
            )
        images, labels = load_cifar_c(args.data, name, severity, return_X_y=True)
        if model is not None:
            _check_image_size(images, model, args.data)
        return name, severity, images, labels, None, model
    images, labels, names = _read_data(args.data, args.label_mode)
    if model is not None:
        _check_image_size(images, model, args.data)
    if name == "pixel_noise":
        if model is None:
            images = Grayscale().fit_transform(images)
        else:
            model, images = classifier_input(model, images)
    images = perturb(
        images,
        name,
        severity,
        noise_fraction=fraction,
        random_state=args.random_state,
        progress=_interactive(),
    )
    return name, severity, images, labels, names, model


def _check_image_size(images: np.ndarray, model, data: Path) -> None:
    height, width = final_classifier(model).image_shape_[:2]
    if images.shape[1:3] != (height, width):
        raise ValueError(
            f"{data} holds images of {images.shape[1]}x{images.shape[2]} pixels, but the "
            f"model was fitted on {height}x{width} images"
        )


def _check_outputs(args: argparse.Namespace, *paths: Path) -> None:
    """Fail before the work, not after it, when an output cannot be written: it exists
    (without --force), is one of the inputs, or its folder is missing or read-only."""
    inputs = [
        getattr(args, name, None) for name in ("data", "model", "baseline", "cifar_c", "init")
    ]
    for path in paths:
        check_output_path(path, overwrite=args.force, inputs=[p for p in inputs if p])


def _classifier_params(args: argparse.Namespace) -> dict:
    """Classifier parameters from the dedicated flags and the repeatable --param."""
    params = {
        key: value
        for key, value in (
            ("preset", args.preset),
            ("epochs", args.epochs),
            ("time_budget", None if args.minutes is None else args.minutes * 60),
            ("batch_size", args.batch_size),
            ("validation_fraction", args.validation_fraction),
            ("random_state", args.random_state),
            ("checkpoint_dir", None if args.checkpoint_dir is None else str(args.checkpoint_dir)),
            ("checkpoint_every", args.checkpoint_every),
        )
        if value is not None
    }
    family = args.classifier or DEFAULT_CLASSIFIER
    known = CLASSIFIERS[family]().get_params(deep=False)
    if args.preset is not None and "preset" not in known:
        raise UsageError(
            f"--preset is for the convnet classifier (the seed study's m1..m12); {family} has none"
        )
    for key, value in args.param:
        if key == "random_state":  # always in params: --random-state has a default
            raise UsageError(
                "--param random_state: the seed has a flag of its own; give --random-state N"
            )
        if key in params:
            raise UsageError(f"--param {key}=... repeats a value given by a flag or --param")
        # Double-underscore names are routed by scikeras (e.g. optimizer__momentum).
        if key not in known and "__" not in key:
            raise UsageError(
                f"--param {key}: {family} has no parameter {key!r}; "
                f"its parameters are {', '.join(sorted(known))}"
            )
        params[key] = value
    params.setdefault("verbose", int(_interactive()))  # Keras' per-epoch progress bar
    return params


# ---------------------------------------------------------------------- subcommands
def train_command(args: argparse.Namespace) -> int:
    """Train a pipeline on a CIFAR archive and save it.

    Fits `make_pipeline(CLASSIFIER, ...)` (grayscale conversion, then the classifier) on
    the train split, or on a stratified subset of it, prints the accuracy on the test
    split and saves the fitted pipeline to OUT: a .sklcifar file (the safe format, loaded
    without running code from it) or a .joblib pickle (loading a pickle runs any code it
    names: only load joblib files you trust). OUT is checked before training; an existing
    OUT is replaced only with --force. Classifier parameters without a
    flag of their own are set with --param KEY=VALUE, the value read as a Python literal
    (or else taken as a string), e.g. --param dense='(64,)' --param optimizer=nesterov.
    """
    if args.checkpoint_every is not None and args.checkpoint_dir is None:
        raise UsageError("--checkpoint-every needs --checkpoint-dir")
    if args.minutes is not None and args.checkpoint_dir is not None:
        raise UsageError("--checkpoint-dir cannot be combined with --minutes; give --epochs")
    base = None if args.init is None else _fine_tuning_base(args)
    args.classifier = args.classifier or DEFAULT_CLASSIFIER
    params = _classifier_params(args)
    model_format(args.out)
    _check_outputs(args, args.out)
    train = load_cifar(args.data, split="train", label_mode=args.label_mode)
    test = load_cifar(args.data, split="test", label_mode=args.label_mode)
    X, y = train.images, train.target
    if args.subset is not None:
        X, y = stratified_subset(X, y, args.subset, random_state=args.random_state)
    if base is None:
        pipeline = make_pipeline(args.classifier, **params)
    else:  # the saved model's steps and recipe; its checkpoints belong to its own fit
        pipeline = clone(base)
        final_classifier(pipeline).set_params(
            **{"checkpoint_dir": None, **params, "init": str(args.init)}
        )
    if args.checkpoint_dir is not None and read_checkpoint_epoch(args.checkpoint_dir):
        done = read_checkpoint_epoch(args.checkpoint_dir)
        print(f"resuming from {args.checkpoint_dir}: {done} epochs done", file=sys.stderr)
    start = time.perf_counter()
    pipeline.fit(X, y)
    seconds = time.perf_counter() - start
    accuracy = pipeline.score(test.images, test.target)
    save_model(pipeline, args.out, overwrite=args.force)
    fitted = final_classifier(pipeline)
    # What a time budget decided: the epochs, and FastNet's width="auto".
    ran = f"{fitted.epochs_} epoch{'' if fitted.epochs_ == 1 else 's'}"
    if getattr(fitted, "width_", None) is not None:
        ran += f", width {fitted.width_}"
    print(
        f"trained {args.classifier} ({ran}) on {len(y)} images in {seconds:.0f} s; "
        f"test accuracy {accuracy:.4f} on {len(test.target)} images; saved {args.out}"
    )
    return 0


def _fine_tuning_base(args: argparse.Namespace):
    """The model of --init, once the flags are checked against it."""
    model = load_model(args.init)
    kind = type(final_classifier(model))
    family = next((name for name, known in CLASSIFIERS.items() if known is kind), None)
    if family is None:
        raise UsageError(f"--init {args.init}: its classifier {kind.__name__} has no family name")
    if args.classifier not in (None, family):
        raise UsageError(
            f"--classifier {args.classifier}: --init {args.init} is a {family}; a fine-tuned "
            "model keeps its family"
        )
    if args.preset is not None:
        raise UsageError("--preset sets an architecture; with --init the network is the model's")
    args.classifier = family
    return model


def perturb_command(args: argparse.Namespace) -> int:
    """Write a perturbed copy of a test set as .npz.

    Reads the test split of a CIFAR archive (or the arrays of an .npz), applies one
    perturbation (a CIFAR-C corruption at a severity, the seed study's pixel noise, or
    none: clean) and writes the arrays 'images', 'labels' and 'target_names' to OUT,
    for `sklcifar score`. The corruptions act on the RGB images; the pixel noise, as in
    the seed study, on grey ones: its OUT holds grey images. With the same
    --random-state the images are those that `sklcifar report` scores in that row for
    a model whose preprocessing is grayscale conversion.
    """
    _check_outputs(args, args.out)
    name, severity, images, labels, names, _ = _perturbed_data(args)
    arrays = {"images": images, "labels": labels}
    if names is not None:
        arrays["target_names"] = np.asarray(names, dtype=str)
    # np.savez given a name appends ".npz" to it; given a file it writes where asked.
    with atomic_write(args.out, overwrite=args.force) as file:
        np.savez(file, **arrays)
    print(f"wrote {len(images)} images ({name}, severity {severity}) to {args.out}")
    return 0


def score_command(args: argparse.Namespace) -> int:
    """Print a saved model's accuracy and log-loss on a test set.

    Scores MODEL on the test split of a CIFAR archive or on the arrays of an .npz from
    `sklcifar perturb`, optionally perturbed first (--corruption, --severity), or on
    one corruption and severity of an official CIFAR-10-C / CIFAR-100-C folder. The
    pixel noise acts on the images MODEL's classifier sees (after its grayscale
    conversion), as in the seed study. The
    log-loss is scikit-learn's log_loss over the model's classes, of the predicted
    probabilities renormalised to sum to one in float64. --json prints one
    JSON object with the keys accuracy, log_loss, n_images, corruption, severity and
    model (severity 0 means none: clean or pixel_noise).
    """
    name, severity, images, labels, _, model = _perturbed_data(args, load_model(args.model))
    check_labels(labels, model.classes_, name=str(args.data), owner=f"the classes of {args.model}")
    proba = model.predict_proba(images)  # rows renormalised to sum to 1 in float64
    result = {
        "accuracy": float(accuracy_score(labels, model.classes_[proba.argmax(axis=1)])),
        "log_loss": float(log_loss(labels, proba, labels=model.classes_)),
        "n_images": len(labels),
        "corruption": name,
        "severity": severity,
        "model": str(args.model),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.model} on {args.data} ({name}"
            + (f", severity {severity}" if severity else "")
            + f", {len(labels)} images): accuracy {result['accuracy']:.4f}, "
            f"log-loss {result['log_loss']:.4f}"
        )
    return 0


def report_command(args: argparse.Namespace) -> int:
    """Write a robustness report of a saved model to a folder.

    Scores MODEL on the test split (or a stratified subset) clean, with the seed
    study's pixel noise and under each CIFAR-C corruption at each severity, and writes
    robustness.md, robustness.csv and robustness.json (the table), robustness.png (the
    accuracy per corruption), confusion_matrix.png (clean test images) and
    training_curves.png (the classifier's history_) to OUT; prints the Markdown table.
    The pixel noise acts on the images the classifier sees (after the grayscale
    conversion), the corruptions on the RGB images; with --cifar-c they are read from
    an official CIFAR-10-C / CIFAR-100-C folder instead of computed.

    --baseline BASE (a saved model, scored on the same images, or the robustness.json
    of an earlier report on the same test set) adds comparison.md, comparison.json
    (mCE and relative mCE of MODEL against BASE, Hendrycks & Dietterich 2019) and
    comparison.png (the two models side by side).
    """
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # exist_ok passes folders only
        raise UsageError(
            f"--out {args.out} is a file or lies under one ({exc.strerror}); --out must be a "
            "folder (created if missing)"
        ) from exc
    outputs = REPORT_FILES + (COMPARISON_FILES if args.baseline is not None else ())
    _check_outputs(args, *(args.out / name for name in outputs))
    model = load_model(args.model)
    baseline = None if args.baseline is None else _baseline(args.baseline)
    images, labels, names = _read_data(args.data, args.label_mode)
    _check_image_size(images, model, args.data)
    # Before any scoring or writing: foreign labels would make every accuracy 0, and
    # names for other classes would draw a confusion matrix of other classes.
    check_labels(labels, model.classes_, name=str(args.data), owner=f"the classes of {args.model}")
    if baseline is not None and not isinstance(baseline, RobustnessReport):
        owner = f"the classes of --baseline {args.baseline}"
        check_labels(labels, baseline.classes_, name=str(args.data), owner=owner)
    if names is None:
        names = [str(label) for label in model.classes_]
    else:
        names = check_class_names(names, model.classes_, name=f"the target_names of {args.data}")
    rows = np.arange(len(labels))
    if args.subset is not None:
        rows, _ = stratified_subset(rows, labels, args.subset, random_state=args.random_state)
        images, labels = images[rows], labels[rows]
    noise_fraction = SEED_NOISE_FRACTION if args.noise_fraction is None else args.noise_fraction
    settings = {
        "corruptions": args.corruptions,
        "severities": args.severities,
        "noise_fraction": noise_fraction,
        "random_state": args.random_state,
        "progress": _interactive(),
        "corrupted_images": None
        if args.cifar_c is None
        else _cifar_c_rows(args.cifar_c, rows, labels),
    }
    result = evaluate_robustness(model, images, labels, **settings)
    if baseline is not None:
        if not isinstance(baseline, RobustnessReport):
            baseline = evaluate_robustness(baseline, images, labels, **settings)
        _write_comparison(
            {str(args.model): result, f"baseline {args.baseline}": baseline},
            args.out,
            overwrite=args.force,
        )
    table = result.to_markdown()
    with atomic_write(args.out / "robustness.md", "w", overwrite=args.force) as file:
        file.write(
            f"# Robustness of {args.model}\n\n"
            f"{result.n_images} test images from {args.data}; pixel_noise replaces "
            f"{noise_fraction * 100:g}% of the pixels the classifier sees (grey, after the "
            "model's preprocessing); drop = clean accuracy - accuracy; "
            "severity 0: not a CIFAR-C level.\n\n" + table
        )
    result.to_csv(args.out / "robustness.csv", overwrite=args.force)
    summary = {"model": str(args.model), "data": str(args.data), **result.to_dict()}
    with atomic_write(args.out / "robustness.json", "w", overwrite=args.force) as file:
        file.write(json.dumps(summary, indent=2) + "\n")
    figures = {"robustness.png": plot_robustness(result)}
    figures["confusion_matrix.png"] = plot_confusion_matrix(
        labels, model.predict(images), names, classes=model.classes_
    )
    figures["training_curves.png"] = plot_training_curves(final_classifier(model).history_)
    for name, figure in figures.items():
        save_figure(figure, args.out / name, overwrite=args.force)
    print(table, end="")
    print(f"wrote the report to {args.out}", file=sys.stderr)
    return 0


def _baseline(path: Path):
    """A saved model, or a RobustnessReport read from a report's robustness.json."""
    if path.suffix != ".json":
        return load_model(path)
    try:
        return RobustnessReport.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ValueError(f"--baseline {path} is not a JSON robustness report: {exc}") from exc
    except ValueError as exc:  # from_dict's message cannot know the file
        raise ValueError(f"--baseline {path}: {exc}") from exc


def _cifar_c_rows(folder: Path, rows: np.ndarray, labels: np.ndarray) -> Callable:
    """``corrupted_images`` of `evaluate_robustness` reading ``rows`` of a CIFAR-C folder."""

    def corrupted(name: str, severity: int) -> np.ndarray:
        images, stored = load_cifar_c(folder, name, severity, return_X_y=True)
        if len(stored) <= rows.max() or not np.array_equal(stored[rows], labels):
            raise ValueError(
                f"the labels of {folder} differ from those of --data's test split: give the "
                "CIFAR-C folder of the same data set (CIFAR-10-C for CIFAR-10)"
            )
        return images[rows]

    return corrupted


# The files `sklcifar report` writes, checked before any work.
REPORT_FILES = (
    "robustness.md",
    "robustness.csv",
    "robustness.json",
    "robustness.png",
    "confusion_matrix.png",
    "training_curves.png",
)
COMPARISON_FILES = ("comparison.md", "comparison.json", "comparison.png")


def _write_comparison(reports: dict[str, RobustnessReport], out: Path, *, overwrite: bool) -> None:
    """comparison.md, .json and .png of the reports, the last one the baseline."""
    rows = compare_reports(reports, baseline=list(reports)[-1])
    table = comparison_markdown(rows)
    with atomic_write(out / "comparison.md", "w", overwrite=overwrite) as file:
        file.write(
            "# Robustness compared\n\nAccuracies and ratios in %; mce and relative_mce: "
            "corruption errors relative to the baseline's (Hendrycks & Dietterich 2019; "
            "100 = as robust as the baseline, lower is better).\n\n" + table
        )
    with atomic_write(out / "comparison.json", "w", overwrite=overwrite) as file:
        json.dump(rows, file, indent=2)
    save_figure(plot_robustness_comparison(reports), out / "comparison.png", overwrite=overwrite)
    print(table, end="")


def search_command(args: argparse.Namespace) -> int:
    """Search a classifier's design and training with Optuna, then refit and test it.

    Trials (Hyperband on epochs and training images by default: --pruner, --fidelity)
    train on a stratified subset of the train split, each in a process of its own, and
    maximise the validation accuracy (clean, with the seed's pixel noise, or their mean:
    --objective); the best configuration is refit on the whole train split for
    --refit-minutes (or --refit-epochs) and saved as model.joblib in --output with its
    robustness report, best_params.json, trials.csv, summary.json and Optuna's plots. The
    study lives in --output/study.db or in --storage (PostgreSQL for several machines);
    rerunning resumes it, and replaces the earlier run's other outputs only with --force
    (checked before any work). --space reads a search space from a TOML or JSON file or a
    Python function; --show-space prints the space and the fidelity schedule. The engine
    is sklcifar.search (sklcifar.search.command).
    """
    from .search.command import run_command

    return run_command(args)


# --------------------------------------------------------------------------- parser
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": train_command,
    "perturb": perturb_command,
    "score": score_command,
    "report": report_command,
    "search": search_command,
}


MODEL_HELP = (
    "a saved model: .sklcifar (safe format: loading runs no code from the file) or .joblib "
    "(a pickle: loading it runs any code it names; only load joblib files you trust)"
)


def _add_force_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing output files (otherwise an existing output is an error)",
    )


def _add_source_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str, *, required: bool = True
) -> None:
    """--data (help ``what``) and --label-mode, on a parser or an argument group; every
    subcommand reading CIFAR data declares them here (the search too)."""
    parser.add_argument("--data", type=Path, required=required, metavar="PATH", help=what)
    parser.add_argument(
        "--label-mode",
        choices=("coarse", "fine"),
        default="coarse",
        help="CIFAR-100 labels: 20 superclasses or 100 classes (default: %(default)s)",
    )


def _add_data_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    _add_source_arguments(parser, what)
    parser.add_argument(
        "--random-state",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="seed of the subset, the perturbations and training (default: %(default)s)",
    )


def _add_perturbation_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--corruption",
        choices=PERTURBATIONS,
        required=required,
        default=None if required else "clean",
        metavar="NAME",
        help=f"one of: {', '.join(PERTURBATIONS)}"
        + ("" if required else " (default: %(default)s)"),
    )
    parser.add_argument(
        "--severity",
        type=int,
        choices=SEVERITIES,
        metavar="K",
        help="severity 1..5 of a CIFAR-C corruption",
    )
    _add_noise_argument(parser)


def _add_noise_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--noise-fraction",
        type=_fraction,
        metavar="F",
        help="share of the grey pixels pixel_noise replaces, in [0, 1] (default: "
        f"{SEED_NOISE_FRACTION}, the seed study's)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sklcifar`` command."""
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The search keeps its options with its engine, which imports this module's argument
    # types: imported once this module is loaded.
    from .search.command import add_arguments as add_search_arguments

    sub = {}
    for name, function in COMMANDS.items():
        doc = inspect.getdoc(function)
        sub[name] = commands.add_parser(
            name,
            help=doc.splitlines()[0],
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub[name].set_defaults(run=function)

    add_search_arguments(sub["search"])
    train = sub["train"]
    _add_data_arguments(train, "CIFAR-10/100 archive (.tar.gz) or its extracted folder")
    train.add_argument(
        "--classifier",
        choices=sorted(CLASSIFIERS),
        help=f"classifier family (default: {DEFAULT_CLASSIFIER}; with --init, the model's)",
    )
    train.add_argument("--preset", help="architecture preset of the family, e.g. m12")
    train.add_argument(
        "--init",
        type=Path,
        metavar="MODEL",
        help="fine-tune this saved model: train a copy of its network (family, architecture, "
        "preprocessing) with the recipe it was trained with, changed by the flags given",
    )
    train.add_argument(
        "--checkpoint-dir",
        type=Path,
        metavar="DIR",
        help="write a checkpoint to DIR during training; when DIR holds one, resume from it "
        "(run the same command on the same data)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=_checkpoint_every,
        metavar="N|TIME",
        help="epochs between checkpoints, or a time such as 10min, 90s, 2h (default: 1)",
    )
    train.add_argument("--epochs", type=_positive_int, metavar="N")
    train.add_argument(
        "--minutes",
        type=_positive_number,
        metavar="M",
        help="train for at most M minutes: the classifier's time_budget plans the epochs so "
        "that its whole schedule fits (loading the data is not counted; --epochs caps it)",
    )
    train.add_argument("--batch-size", type=_positive_int, metavar="N")
    train.add_argument("--subset", type=_positive_int, metavar="N", help="train on N images")
    train.add_argument(
        "--validation-fraction",
        type=_fraction,
        metavar="F",
        help="share held out for early stopping",
    )
    train.add_argument(
        "--param",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other classifier parameter (repeatable)",
    )
    train.add_argument(
        "--out",
        type=Path,
        default=Path("model.sklcifar"),
        metavar="MODEL",
        help="where to save the model: .sklcifar (safe format) or .joblib (a pickle) "
        "(default: %(default)s)",
    )
    _add_force_argument(train)

    perturb_parser = sub["perturb"]
    _add_data_arguments(perturb_parser, "CIFAR archive or folder (test split), or an .npz")
    _add_perturbation_arguments(perturb_parser, required=True)
    perturb_parser.add_argument("--out", type=Path, required=True, metavar="FILE.npz")
    _add_force_argument(perturb_parser)

    score = sub["score"]
    score.add_argument("model", type=Path, metavar="MODEL", help=MODEL_HELP)
    _add_data_arguments(score, "CIFAR archive or folder (test split), or an .npz")
    _add_perturbation_arguments(score, required=False)
    score.add_argument("--json", action="store_true", help="print one JSON object")

    report = sub["report"]
    report.add_argument("model", type=Path, metavar="MODEL", help=MODEL_HELP)
    _add_data_arguments(report, "CIFAR archive or folder (test split), or an .npz")
    report.add_argument("--out", type=Path, required=True, metavar="DIR")
    _add_force_argument(report)
    report.add_argument(
        "--subset", type=_positive_int, metavar="N", help="score a stratified subset of N"
    )
    report.add_argument(
        "--severities",
        type=_comma_list(SEVERITIES, int),
        default=SEVERITIES,
        metavar="1,2,3,4,5",
        help="CIFAR-C severities (default: all)",
    )
    report.add_argument(
        "--corruptions",
        type=_comma_list(CORRUPTIONS),
        default=CORRUPTIONS,
        metavar="NAME,...",
        help="CIFAR-C corruptions (default: all 15)",
    )
    _add_noise_argument(report)
    report.add_argument(
        "--baseline",
        type=Path,
        metavar="BASE",
        help="baseline for mCE: a saved model (.sklcifar or .joblib) or an earlier report's "
        "robustness.json",
    )
    report.add_argument(
        "--cifar-c",
        type=Path,
        metavar="DIR",
        help="official CIFAR-10-C / CIFAR-100-C folder to read the corruptions from",
    )
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sklcifar`` command line with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 2 on usage errors and bad input (one line on stderr), 130 when
        interrupted.

    Examples
    --------
    >>> from sklcifar.cli import main
    >>> main(["score", "model.joblib", "--data", "fog3.npz", "--json"])  # doctest: +SKIP
    {"accuracy": 0.4213, "log_loss": 1.61, "n_images": 10000, ...}
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code
    try:
        return args.run(args)
    # Bad input reaches here as these types: the messages name the file or value.
    except (UsageError, ValueError, OSError) as exc:
        print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
