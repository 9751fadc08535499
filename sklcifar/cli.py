"""The ``sklcifar`` command: train, perturb, score and report.

Each subcommand is one function below, taking the parsed arguments and returning the
exit status; its docstring is its help. Usage errors and bad input (unknown names,
out-of-range values, missing, corrupt or foreign files, images of the wrong shape) end
with one line on stderr and exit status 2; anything else is a bug and shows its
traceback.

Examples
--------
::

    sklcifar train --data cifar-10-python.tar.gz --subset 5000 --epochs 5 --out m.joblib
    sklcifar perturb --data cifar-10-python.tar.gz --corruption fog --severity 3 --out fog3.npz
    sklcifar score m.joblib --data fog3.npz --json
    sklcifar report m.joblib --data cifar-10-python.tar.gz --out report/
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
from sklearn.metrics import accuracy_score, log_loss

from .datasets import load_cifar, stratified_subset
from .persistence import final_classifier, load_model, save_model
from .perturbations import CORRUPTIONS
from .pipelines import CLASSIFIERS, DEFAULT_CLASSIFIER, make_pipeline
from .plots import plot_confusion_matrix, plot_robustness, plot_training_curves, save_figure
from .robustness import PERTURBATIONS, SEVERITIES, evaluate_robustness, perturb

__all__ = ["main"]

PROG = "sklcifar"
# Exit status of usage errors and bad input, as argparse uses for usage errors.
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input; `main` prints the message and exits with status 2."""


class _Parser(argparse.ArgumentParser):
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
        return values

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
    return name, severity or 0, 0.03 if fraction is None else fraction


def _read_data(path: Path, label_mode: str) -> tuple[np.ndarray, np.ndarray, list | None]:
    """(images, labels, class names or None) of an .npz from `perturb` (a zip file, by
    any name) or an archive's test split."""
    if path.suffix != ".npz" and not (path.is_file() and zipfile.is_zipfile(path)):
        test = load_cifar(path, split="test", label_mode=label_mode)
        return test.images, test.target, test.target_names
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz file: {exc}") from exc
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
    """(name, severity, images, labels, class names or None): --data read and perturbed
    as --corruption, --severity, --noise-fraction and --random-state say; the images
    checked against ``model``'s image size first, if given."""
    name, severity, fraction = _perturbation(args)
    images, labels, names = _read_data(args.data, args.label_mode)
    if model is not None:
        _check_image_size(images, model, args.data)
    images = perturb(
        images,
        name,
        severity,
        noise_fraction=fraction,
        random_state=args.random_state,
        progress=_interactive(),
    )
    return name, severity, images, labels, names


def _check_image_size(images: np.ndarray, model, data: Path) -> None:
    height, width = final_classifier(model).image_shape_[:2]
    if images.shape[1:3] != (height, width):
        raise ValueError(
            f"{data} holds images of {images.shape[1]}x{images.shape[2]} pixels, but the "
            f"model was fitted on {height}x{width} images"
        )


def _check_folder(path: Path) -> None:
    """Fail before the work, not after it, when an output file cannot be written."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} of {str(path)!r} does not exist")


def _classifier_params(args: argparse.Namespace) -> dict:
    """Classifier parameters from the dedicated flags and the repeatable --param."""
    params = {
        key: value
        for key, value in (
            ("preset", args.preset),
            ("epochs", args.epochs),
            ("batch_size", args.batch_size),
            ("validation_fraction", args.validation_fraction),
            ("random_state", args.random_state),
        )
        if value is not None
    }
    known = CLASSIFIERS[args.classifier]().get_params(deep=False)
    if args.preset is not None and "preset" not in known:
        raise UsageError(
            f"--preset is for the convnet classifier (the seed study's m1..m12); "
            f"{args.classifier} has none"
        )
    for key, value in args.param:
        if key in params:
            raise UsageError(f"--param {key}=... repeats a value given by a flag or --param")
        # Double-underscore names are routed by scikeras (e.g. optimizer__momentum).
        if key not in known and "__" not in key:
            raise UsageError(
                f"--param {key}: {args.classifier} has no parameter {key!r}; "
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
    split and saves the fitted pipeline with joblib. Classifier parameters without a
    flag of their own are set with --param KEY=VALUE, the value read as a Python literal
    (or else taken as a string), e.g. --param dense='(64,)' --param optimizer=nesterov.
    """
    params = _classifier_params(args)
    _check_folder(args.out)
    train = load_cifar(args.data, split="train", label_mode=args.label_mode)
    test = load_cifar(args.data, split="test", label_mode=args.label_mode)
    X, y = train.images, train.target
    if args.subset is not None:
        X, y = stratified_subset(X, y, args.subset, random_state=args.random_state)
    pipeline = make_pipeline(args.classifier, **params)
    start = time.perf_counter()
    pipeline.fit(X, y)
    seconds = time.perf_counter() - start
    accuracy = pipeline.score(test.images, test.target)
    save_model(pipeline, args.out)
    print(
        f"trained {args.classifier} on {len(y)} images in {seconds:.0f} s; "
        f"test accuracy {accuracy:.4f} on {len(test.target)} images; saved {args.out}"
    )
    return 0


def perturb_command(args: argparse.Namespace) -> int:
    """Write a perturbed copy of a test set as .npz.

    Reads the test split of a CIFAR archive (or the arrays of an .npz), applies one
    perturbation (a CIFAR-C corruption at a severity, the seed study's pixel noise, or
    none: clean) and writes the arrays 'images', 'labels' and 'target_names' to OUT,
    for `sklcifar score`. With the same --random-state the images are those that
    `sklcifar report` scores in that row.
    """
    _check_folder(args.out)
    name, severity, images, labels, names = _perturbed_data(args)
    arrays = {"images": images, "labels": labels}
    if names is not None:
        arrays["target_names"] = np.asarray(names, dtype=str)
    # np.savez given a name appends ".npz" to it; given a file it writes where asked.
    with args.out.open("wb") as file:
        np.savez(file, **arrays)
    print(f"wrote {len(images)} images ({name}, severity {severity}) to {args.out}")
    return 0


def score_command(args: argparse.Namespace) -> int:
    """Print a saved model's accuracy and log-loss on a test set.

    Scores MODEL on the test split of a CIFAR archive or on the arrays of an .npz from
    `sklcifar perturb`, optionally perturbed first (--corruption, --severity). The
    log-loss is scikit-learn's log_loss over the model's classes, of the predicted
    probabilities renormalised to sum to one in float64. --json prints one
    JSON object with the keys accuracy, log_loss, n_images, corruption, severity and
    model (severity 0 means none: clean or pixel_noise).
    """
    model = load_model(args.model)
    name, severity, images, labels, _ = _perturbed_data(args, model)
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
    """
    model = load_model(args.model)
    images, labels, names = _read_data(args.data, args.label_mode)
    _check_image_size(images, model, args.data)
    if args.subset is not None:
        images, labels = stratified_subset(
            images, labels, args.subset, random_state=args.random_state
        )
    args.out.mkdir(parents=True, exist_ok=True)
    noise_fraction = 0.03 if args.noise_fraction is None else args.noise_fraction
    result = evaluate_robustness(
        model,
        images,
        labels,
        corruptions=args.corruptions,
        severities=args.severities,
        noise_fraction=noise_fraction,
        random_state=args.random_state,
        progress=_interactive(),
    )
    table = result.to_markdown()
    (args.out / "robustness.md").write_text(
        f"# Robustness of {args.model}\n\n"
        f"{result.n_images} test images from {args.data}; pixel_noise replaces "
        f"{noise_fraction * 100:g}% of the pixels; drop = clean accuracy - accuracy; "
        "severity 0: not a CIFAR-C level.\n\n" + table
    )
    result.to_csv(args.out / "robustness.csv")
    summary = {"model": str(args.model), "data": str(args.data), **result.to_dict()}
    (args.out / "robustness.json").write_text(json.dumps(summary, indent=2) + "\n")
    save_figure(plot_robustness(result), args.out / "robustness.png")
    if names is None:
        names = [str(label) for label in model.classes_]
    confusion = plot_confusion_matrix(labels, model.predict(images), names)
    save_figure(confusion, args.out / "confusion_matrix.png")
    save_figure(
        plot_training_curves(final_classifier(model).history_), args.out / "training_curves.png"
    )
    print(table, end="")
    print(f"wrote the report to {args.out}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- parser
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": train_command,
    "perturb": perturb_command,
    "score": score_command,
    "report": report_command,
}


def _add_data_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="PATH", help=what)
    parser.add_argument(
        "--label-mode",
        choices=("coarse", "fine"),
        default="coarse",
        help="CIFAR-100 labels: 20 superclasses or 100 classes (default: %(default)s)",
    )
    parser.add_argument(
        "--random-state",
        type=int,
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
        help="share of the pixels pixel_noise replaces, in [0, 1] (default: 0.03)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sklcifar`` command."""
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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

    train = sub["train"]
    _add_data_arguments(train, "CIFAR-10/100 archive (.tar.gz) or its extracted folder")
    train.add_argument(
        "--classifier",
        choices=sorted(CLASSIFIERS),
        default=DEFAULT_CLASSIFIER,
        help="classifier family (default: %(default)s)",
    )
    train.add_argument("--preset", help="architecture preset of the family, e.g. m12")
    train.add_argument("--epochs", type=_positive_int, metavar="N")
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
        default=Path("model.joblib"),
        metavar="MODEL.joblib",
        help="where to save the model (default: %(default)s)",
    )

    perturb_parser = sub["perturb"]
    _add_data_arguments(perturb_parser, "CIFAR archive or folder (test split), or an .npz")
    _add_perturbation_arguments(perturb_parser, required=True)
    perturb_parser.add_argument("--out", type=Path, required=True, metavar="FILE.npz")

    score = sub["score"]
    score.add_argument("model", type=Path, metavar="MODEL.joblib")
    _add_data_arguments(score, "CIFAR archive or folder (test split), or an .npz")
    _add_perturbation_arguments(score, required=False)
    score.add_argument("--json", action="store_true", help="print one JSON object")

    report = sub["report"]
    report.add_argument("model", type=Path, metavar="MODEL.joblib")
    _add_data_arguments(report, "CIFAR archive or folder (test split), or an .npz")
    report.add_argument("--out", type=Path, required=True, metavar="DIR")
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
