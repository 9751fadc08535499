"""Prediction speed: test-time augmentation's views, batch, XLA and folding, one saved model.

Scores a fitted pipeline (``sklcifar train`` or ``sklcifar search`` wrote it) on the
CIFAR test split with ``tta=False`` (one view), ``True`` (the image and its mirror image)
and ``"multicrop"`` (those and two diagonal one-pixel shifts of both, airbench's six
views), the last two at each ``--tta-margins`` (default 1,0.5: every image gets every view,
and only images whose one-view lead is at most 0.5), timing each prediction of the whole
split::

    python benchmarks/tta_views.py --model runs/search/model.joblib --out benchmarks/out/tta

``--batch-sizes 512,2048`` also varies the prediction batch (the classifier predicts in
batches of ``max(batch_size, 512)``, so each value sets its ``batch_size``) and ``--xla``
adds the same predictions compiled with XLA (``jit_compile=True``). ``--unfolded`` adds
them with the network as trained, as the classifiers predicted before they folded its
BatchNorm into its convolutions (``sklcifar.inference``); ``--keras-predict`` adds
them predicted through ``keras.Model.predict``, as the classifiers did before they called
the network through one traced function. Each figure is the
median of ``--repeats`` timed predictions after a warm-up prediction of the same images,
so that no timed call traces the prediction function anew for a new last-batch shape.
``--images 1`` times the answer for one image instead of the whole split.

Prints the machine and a markdown table (test accuracy; with a margin the share of images
that skipped the other views and of predictions that every image's views would give;
images/s, seconds); writes DIR/tta_views.csv with the machine's facts. Figures:
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from unittest import mock

import numpy as np
from _common import (
    DEFAULT_DATA,
    ResultsTable,
    comma_separated_integers,
    comma_separated_numbers,
    machine_header,
)
from sklearn.utils import Bunch

from sklcifar import inference
from sklcifar.base import SMALLEST_PREDICTION_BATCH
from sklcifar.datasets import load_cifar
from sklcifar.persistence import load_model

MODES = (False, True, "multicrop")  # tta


def tta_margins(text: str) -> list[float]:
    """Parse ``--tta-margins``: comma-separated numbers in [0, 1]."""
    margins = comma_separated_numbers(text, example="1,0.5")
    if not all(0 <= margin <= 1 for margin in margins):
        raise argparse.ArgumentTypeError(f"tta margins lie in [0, 1]; got {text!r}")
    return margins


def batch_sizes(text: str) -> list[int]:
    """Parse ``--batch-sizes``: comma-separated prediction batches of at least 512."""
    sizes = comma_separated_integers(text, example="512,2048")
    if min(sizes) < SMALLEST_PREDICTION_BATCH:
        raise argparse.ArgumentTypeError(
            f"prediction batches are at least {SMALLEST_PREDICTION_BATCH} images; got {text!r}"
        )
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a saved pipeline")
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR archive (its test split)")
    parser.add_argument("--label-mode", default="coarse", help="CIFAR-100 label mode")
    parser.add_argument(
        "--batch-sizes", type=batch_sizes, default=None, help="e.g. 512,2048 (default: its own)"
    )
    parser.add_argument(
        "--tta-margins", type=tta_margins, default=[1.0, 0.5], help="e.g. 1,0.5 (the default)"
    )
    parser.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    parser.add_argument(
        "--unfolded", action="store_true", help="also time the network as trained, unfolded"
    )
    parser.add_argument(
        "--keras-predict", action="store_true", help="also time keras.Model.predict's calls"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed predictions per row")
    parser.add_argument(
        "--images", type=int, default=None, help="predict the first N test images (default: all)"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1; got {args.repeats}")
    if args.images is not None and args.images < 1:
        parser.error(f"--images must be at least 1; got {args.images}")
    print(machine_header(), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    classifier = model.steps[-1][1]
    sizes = args.batch_sizes or [classifier.get_params()["batch_size"]]  # None: its recipe's
    test = load_cifar(args.data, split="test", label_mode=args.label_mode)
    if args.images is not None:  # e.g. 1: the time a user waits for one image's answer
        test = Bunch(images=test.images[: args.images], target=test.target[: args.images])
    table = ResultsTable(
        ["network", "call", "tta", "margin", "compile", "batch"]
        + ["test_accuracy", "skipped", "same_as_every_view", "images_per_s", "seconds"],
        text_columns=5,
        csv_path=args.out / "tta_views.csv",
    )
    networks = {"folded": inference.prediction_network, "as trained": lambda network: network}
    calls = {"traced": inference.predictor, "keras.predict": keras_predictor}
    for jit_compile in (False, True) if args.xla else (False,):
        # The fitted Keras model's own switch, which its folded copy takes over.
        classifier.model_.jit_compile = jit_compile
        modes = [(False, 1.0)] + [(tta, m) for tta in MODES[1:] for m in args.tta_margins]
        for mode, margin in modes:
            for size in sizes:
                classifier.set_params(tta=mode, tta_margin=margin, batch_size=size)
                # Side by side, row after row, so that a drift of the machine hits both.
                for name in ("folded", "as trained") if args.unfolded else ("folded",):
                    for call in calls if args.keras_predict else ("traced",):
                        with (
                            mock.patch.object(inference, "prediction_network", networks[name]),
                            mock.patch.object(inference, "predictor", calls[call]),
                        ):
                            timed = time_predictions(model, test, args.repeats)
                        row = {"network": name, "call": call, **timed}
                        table.add(row, [str(value) for value in row.values()])


def keras_predictor(model):
    """``inference.predictor`` through ``keras.Model.predict``, as the classifiers once did."""
    network = inference.prediction_network(model)
    return lambda images, batch_size: network.predict(images, batch_size=batch_size, verbose=0)


def time_predictions(model, test, repeats: int) -> dict:
    """The median of ``repeats`` timed predictions of the test split, after a warm-up one."""
    classifier = model.steps[-1][1]
    predicted = model.predict(test.images)  # warm-up: traces every batch shape
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        predicted = model.predict(test.images)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    # With a margin: the share of images that kept their one-view prediction, and of
    # predictions that the views of every image would give.
    skipped = same = ""
    if classifier.tta and classifier.tta_margin < 1:
        tta, margin = classifier.tta, classifier.tta_margin
        classifier.set_params(tta=False)
        top_two = np.sort(model.predict_proba(test.images), axis=1)[:, -2:]
        classifier.set_params(tta=tta, tta_margin=1.0)
        every_view = model.predict(test.images)
        classifier.set_params(tta_margin=margin)
        skipped = round(float((top_two[:, 1] - top_two[:, 0] > margin).mean()), 4)
        same = round(float((predicted == every_view).mean()), 4)
    return {
        "tta": str(classifier.tta),
        "margin": classifier.tta_margin if classifier.tta else "",
        "compile": "xla" if classifier.model_.jit_compile else "graph",
        "batch": max(classifier._setting("batch_size"), SMALLEST_PREDICTION_BATCH),
        "test_accuracy": round(float((predicted == test.target).mean()), 4),
        "skipped": skipped,
        "same_as_every_view": same,
        "images_per_s": round(len(test.target) / median),
        "seconds": round(median, 4),
    }


if __name__ == "__main__":
    main()
