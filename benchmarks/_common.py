"""Shared helpers for the benchmark scripts: the real data, timing callbacks, machine facts."""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from sklcifar import training
from sklcifar.datasets import load_cifar, stratified_subset
from sklcifar.files import atomic_write
from sklcifar.machine import CPU_FLAGS, describe_machine
from sklcifar.transformers import Grayscale

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar-10-python.tar.gz"


def grayscale_cifar(source: str | os.PathLike | None = None, split: str = "train"):
    """Real CIFAR images as uint8 (N, 32, 32, 1) grayscale plus labels."""
    X, y = load_cifar(source or DEFAULT_DATA, split=split, return_X_y=True)
    return Grayscale().transform(X), y


def train_and_test_images(
    source: str | os.PathLike,
    *,
    subset: int | None = None,
    test_images: int | None = None,
    seed: int = 0,
):
    """CIFAR training and test images (RGB) with labels: ``X, y, X_test, y_test``, each
    split cut to a stratified ``subset`` / ``test_images`` when given (and smaller)."""
    X, y = load_cifar(source, split="train", return_X_y=True)
    if subset is not None:
        X, y = stratified_subset(X, y, subset, random_state=seed)
    X_test, y_test = load_cifar(source, split="test", return_X_y=True)
    if test_images is not None and test_images < len(y_test):
        X_test, y_test = stratified_subset(X_test, y_test, test_images, random_state=seed)
    return X, y, X_test, y_test


def machine_facts() -> dict[str, str | int | bool]:
    """The CPU, its core count and flags, GPUs, library versions and today's date.

    Every benchmark stores these in its CSV (``write_csv``) so that each figure names the
    machine it was measured on; RESULTS.md files figures under a heading per CPU.
    """
    return {**describe_machine(), "date": time.strftime("%Y-%m-%d")}


def machine_header() -> str:
    """One line for the top of a benchmark's output: CPU, cores, flags, TensorFlow, date.

    e.g. ``# Intel(R) Xeon(R) Processor, 2 cores, avx2 avx512f avx512_bf16 (no amx_tile
    amx_bf16), no GPU, TensorFlow 2.21.0, Keras 3.15.0, 2026-11-29``
    """
    facts = machine_facts()
    present = [flag for flag in CPU_FLAGS if facts[flag]]
    absent = [flag for flag in CPU_FLAGS if not facts[flag]]
    flags = " ".join(present) or "none of the listed flags"
    if absent:
        flags += f" (no {' '.join(absent)})"
    gpus = f"GPU {facts['gpus']}" if facts["gpus"] else "no GPU"
    return (
        f"# {facts['cpu']}, {facts['cores']} cores, {flags}, {gpus}, "
        f"TensorFlow {facts['tensorflow']}, Keras {facts['keras']}, {facts['date']}"
    )


def write_csv(path: str | os.PathLike, rows: list[dict], *, overwrite: bool = True) -> None:
    """Write benchmark rows to CSV, each with the machine's facts in its first columns.

    Written atomically (a run killed mid-write leaves the previous file); benchmarks rewrite
    their CSV after every row, so ``overwrite`` defaults to True.
    """
    if not rows:
        raise ValueError(f"no rows to write to {path}: the benchmark measured nothing.")
    facts = machine_facts()
    table = [{**facts, **row} for row in rows]
    fields = list(dict.fromkeys(key for row in table for key in row))
    with atomic_write(path, "w", overwrite=overwrite, encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)


class ResultsTable:
    """A benchmark's results: markdown rows printed as they come, and the CSV of them.

    Each row is printed as soon as it is measured, so that a long run shows its progress,
    and the CSV (if any) is rewritten with all rows so far (``write_csv``), so that a run
    stopped midway keeps what it measured.

    Parameters
    ----------
    columns : sequence of str
        Column headings of the markdown table, printed at once.
    text_columns : int, default=1
        How many of the first columns hold text (left-aligned); the others hold numbers
        (right-aligned).
    csv_path : path-like or None
        Where to write the rows, with the machine's facts; None writes no CSV.
    """

    def __init__(
        self,
        columns: Sequence[str],
        *,
        text_columns: int = 1,
        csv_path: str | os.PathLike | None = None,
    ):
        self.n_columns = len(columns)
        self.csv_path = csv_path
        self.rows: list[dict] = []
        alignments = ["---"] * text_columns + ["---:"] * (self.n_columns - text_columns)
        print("| " + " | ".join(columns) + " |")
        print("|" + "|".join(alignments) + "|")

    def add(self, row: dict, cells: Sequence[str]) -> None:
        """Print ``cells`` as the table's next row, and keep ``row`` for the CSV."""
        if len(cells) != self.n_columns:
            raise ValueError(f"a row of this table has {self.n_columns} cells; got {len(cells)}")
        self.rows.append(row)
        print("| " + " | ".join(cells) + " |", flush=True)
        if self.csv_path is not None:
            write_csv(self.csv_path, self.rows)


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each training epoch, without the validation pass at its end."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        # Keras validates inside the epoch; stop the clock there.
        if hasattr(self, "_start"):
            self.seconds.append(time.perf_counter() - self._start)
            del self._start

    def on_epoch_end(self, epoch, logs=None):
        if hasattr(self, "_start"):
            self.seconds.append(time.perf_counter() - self._start)
            del self._start


def plain_keras_fit(
    classifier, X: np.ndarray, y: np.ndarray, *, epochs: int, callbacks: list, jit_compile="auto"
) -> None:
    """keras.Model.fit of a fresh copy of a fitted classifier's network on in-memory arrays.

    The baseline the package's own loop is compared with: no augmentation, no validation,
    Nesterov SGD, the classifier's batch size; ``callbacks`` time it.
    """
    model = keras.models.clone_model(classifier.model_)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        loss=training.SparseCrossentropy(0.0),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    model.fit(
        X.astype("float32") / 255,
        classifier.target_encoder_.transform(y),
        batch_size=classifier._setting("batch_size"),
        epochs=epochs,
        callbacks=callbacks,
        verbose=0,
    )


def images_per_second(n_images: int, seconds: list[float]) -> float:
    """Throughput from per-epoch times, the first epoch (tracing, warm-up) left out."""
    steady = seconds[1:] or seconds
    return n_images / float(np.median(steady))


def comma_separated_integers(text: str, *, example: str = "1,2,3") -> list[int]:
    """An argparse type: at least one integer, separated by commas (``example`` shows how)."""
    return _comma_separated(text, int, "integer", example)


def comma_separated_numbers(text: str, *, example: str = "1,0.5") -> list[float]:
    """An argparse type: at least one number, separated by commas (``example`` shows how)."""
    return _comma_separated(text, float, "number", example)


def _comma_separated(text: str, kind: type, noun: str, example: str) -> list:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {noun}s separated by commas, e.g. {example}; got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one {noun}, e.g. {example}")
    return values
