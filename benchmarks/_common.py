"""Shared helpers for the benchmark scripts: the real data, timing callbacks, machine facts."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import keras
import numpy as np

from sklcifar.datasets import load_cifar
from sklcifar.transformers import Grayscale

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar-10-python.tar.gz"


def grayscale_cifar(source: str | os.PathLike | None = None, split: str = "train"):
    """Real CIFAR images as uint8 (N, 32, 32, 1) grayscale plus labels."""
    X, y = load_cifar(source or DEFAULT_DATA, split=split, return_X_y=True)
    return Grayscale().transform(X), y


def machine() -> str:
    """One line naming the CPU, its core count and the date, for RESULTS.md."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"


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


def images_per_second(n_images: int, seconds: list[float]) -> float:
    """Throughput from per-epoch times, the first epoch (tracing, warm-up) left out."""
    steady = seconds[1:] or seconds
    return n_images / float(np.median(steady))
